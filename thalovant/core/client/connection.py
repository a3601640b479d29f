"""Connection: one client's whole conversation with a hub, as one pure machine.

Theory of operation
-------------------
A client needs five machines to talk to a hub: the reconnect policy
(:mod:`.reconnect`), a link for its transport (:mod:`.links`), a session
with its handshake (:mod:`.session`), the ask correlator (:mod:`.correlate`)
and an outbound queue. ``Connection`` composes them and routes every
output of one machine to the input of the next, so the shell only has to
execute transport orders and deliver results. Because the whole client is
one machine, a recorded trace of its inputs replays the whole client.

Epochs. Each link attempt gets a new *epoch* number, a fresh link machine
and a fresh session. Transport facts arrive wrapped as
``LinkFact(epoch, fact)`` and transport orders leave wrapped as
``LinkOrder(epoch, order)``; facts from an older epoch are ignored, so a
slow reader of a dead socket can never disturb the new link::

    IDLE --Connect--> RUNNING          Reconnect: OpenLink -> new epoch
    RUNNING: link LinkUp       -> session LinkOpened (handshake starts)
             session Ready     -> READY; queue flushed; Reconnect LinkUp
             link LinkDown / session failed -> asks in flight fail at once,
                                  unconfirmed sends fail, Reconnect LinkLost
             Reconnect GiveUp  -> GAVE_UP; everything queued fails
    any --Disconnect--> CLOSED         (links told to stop politely)

Rule 1 (nothing lost, nothing twice). Every ``SendRequested(ref)`` ends in
exactly one ``SendDone(ref)`` or ``SendError(ref)``. A message waits in the
queue (bounded by ``max_queue``) while no session is ready, for at most
``queue_timeout`` seconds or its own deadline; once handed to a session it
is never handed to another one: if that link dies before the transport
confirmed it, it fails with ``maybe_sent=True`` instead of being repeated.

Rule 2 (asks end promptly, exactly once). An ask is registered with the
correlator when its utterance is handed to the session. When the link drops,
every ask in flight fails at once (``link_lost``), never waiting out its
timeout. An ask whose message never leaves the queue (expired, full, closed,
gave up, cancelled) fails here too, right after its ``SendError``.

Rule 3 (no secrets). Credentials live in ``ConnectionConfig`` fields that
are excluded from ``repr``; outputs carry only what the shell needs.

Deadline: the earliest of every child machine's deadline and the queue's
expiry times.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Literal

from returns.result import Success

from thalovant.core.bus.events import normalize
from thalovant.core.client import correlate as corr
from thalovant.core.client import reconnect as rc
from thalovant.core.client.connection_events import (
    CancelAsk,
    Connect,
    ConnectionConfig,
    ConnectionState,
    Disconnect,
    DropLink,
    EventDelivered,
    LinkFact,
    LinkOrder,
    OpenWebSocket,
    Protocol,
    SendDone,
    SendError,
    SendRequested,
    StatusChanged,
)
from thalovant.core.client.correlate import ask_failed as _ask_failed
from thalovant.core.client.correlate import request_id_of as _request_id
from thalovant.core.client.redact import scrub_message
from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.base import (
    FrameNotSent,
    FrameSent,
    InboundFrame,
    LinkDown,
    LinkUp,
    OutboundFrame,
    Started,
    StopRequested,
)
from thalovant.core.links.http_poll import HttpPoll
from thalovant.core.links.mqtt import SessionEstablished as MqttSessionReady
from thalovant.core.links.mqtt_map import MqttMap
from thalovant.core.links.ws import WsClosed, WsLink
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Tick, earliest
from thalovant.core.session.machine import (
    CloseLink,
    Deliver,
    FrameReceived,
    LinkClosed,
    LinkOpened,
    SendFailed,
    SendFrame,
    Session,
    SessionFailed,
    SessionReady,
    UserSend,
)
from thalovant.core.session.machine import UserClose as SessionClose
from thalovant.core.wire.auth import authorization_token
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType


@dataclass(frozen=True, slots=True)
class _Queued:
    ref: int
    message: BusMessage
    expires: float
    ask: corr.AskStarted | None


_S = ConnectionState
_LINK_OUT = (FrameSent, FrameNotSent, InboundFrame, LinkUp, LinkDown, Note)


class Connection:
    """The composite client machine. See the module docstring.

    Args:
        config: what to connect to and how.
        entropy: random bytes for every child machine.
    """

    def __init__(self, *, config: ConnectionConfig, entropy: Entropy) -> None:
        self._cfg = config
        self._entropy = entropy
        self._token = authorization_token(config.useragent, config.access_key)
        self._state = _S.IDLE
        self._reconnect = rc.Reconnect(entropy=entropy, config=config.reconnect)
        self._correlator = corr.Correlator()
        self._epoch = 0
        self._link: Any = None
        self._session: Session | None = None
        self._session_ready = False
        self._queue: deque[_Queued] = deque()
        self._inflight: dict[int, _Queued] = {}  # handed to the session, not confirmed yet
        self._last_close_code: int | None = None
        self._last_error = ""
        self._epoch_lost = False
        self._last_sent = 0.0

    def __repr__(self) -> str:
        return (
            f"<Connection protocol={self._cfg.protocol} state={self._state.value} epoch={self._epoch} "
            f"queued={len(self._queue)} inflight={len(self._inflight)}>"
        )

    # ---- contract -------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def finished(self) -> bool:
        """Terminal, nothing in flight, and the last link done closing (an MQTT link still owes
        its ``offline`` publish and DISCONNECT; a WebSocket its close handshake)."""
        link_done = self._link is None or bool(self._link.finished)
        return self._state in (_S.CLOSED, _S.GAVE_UP) and not self._inflight and link_done

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def last_error(self) -> str:
        return self._last_error

    @property
    def generation(self) -> int | None:
        return self._session.generation if self._session is not None else None

    @property
    def deadline(self) -> float | None:
        link = self._link.deadline if self._link is not None else None
        session = self._session.deadline if self._session is not None else None
        queued = min((q.expires for q in self._queue), default=None)
        return earliest(self._reconnect.deadline, link, session, self._correlator.deadline, queued, self._ping_at())

    def _ping_at(self) -> float | None:
        if self._cfg.keepalive is None or not self._session_ready:
            return None
        return self._last_sent + self._cfg.keepalive

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns the orders for the shell, in order.

        Raises:
            LocalProtocolError: misuse (e.g. a reused send ref); the state is unchanged.
        """
        if isinstance(inp, Tick):
            return self._on_tick(now)
        if isinstance(inp, LinkFact):
            return self._on_fact(inp, now)
        if isinstance(inp, SendRequested):
            return self._on_send(inp, now)
        if isinstance(inp, CancelAsk):
            return self._on_cancel(inp.ask_id, now)
        if isinstance(inp, Connect):
            return self._on_connect(now)
        if isinstance(inp, Disconnect):
            return self._on_disconnect(now)
        raise LocalProtocolError(f"Connection cannot take {type(inp).__name__}")

    # ---- user commands --------------------------------------------------------------------------

    def _on_connect(self, now: float) -> list[Output]:
        if self._state is not _S.IDLE:
            return []  # already running: connect is idempotent
        self._state = _S.CONNECTING
        out: list[Output] = [StatusChanged(state=_S.CONNECTING, detail="connecting")]
        out += self._reconnect_do(rc.OpenRequested(), now)
        return out

    def _on_disconnect(self, now: float) -> list[Output]:
        if self._state in (_S.CLOSED,):
            return []
        out: list[Output] = []
        self._state = _S.CLOSED
        if self._reconnect.state not in (rc.ReconnectState.CLOSED, rc.ReconnectState.GAVE_UP):
            out += self._reconnect.handle(rc.UserClose(), now=now)
        out += self._fail_queue("the client was closed", "closed")
        out += self._correlator_do(corr.LinkLost(reason="the client was closed"), now)
        if self._session is not None and self._session.state.name in ("IDLE", "HANDSHAKING", "READY"):
            for o in self._session.handle(SessionClose(), now=now):
                out += self._route_session_output(o, now)
        out += self._stop_link(now)
        out += self._fail_inflight("the client was closed before the hub confirmed it", "closed")
        out.append(StatusChanged(state=_S.CLOSED, detail="closed by the client", epoch=self._epoch))
        return out

    def _on_send(self, inp: SendRequested, now: float) -> list[Output]:
        if inp.ref in self._inflight or any(q.ref == inp.ref for q in self._queue):
            raise LocalProtocolError(f"send ref {inp.ref} is already in use")
        if self._state in (_S.CLOSED, _S.GAVE_UP):
            why = "the client is closed" if self._state is _S.CLOSED else f"not connected: {self._last_error}"
            kind: Literal["closed", "gave_up"] = "closed" if self._state is _S.CLOSED else "gave_up"
            return [SendError(ref=inp.ref, reason=why, kind=kind), *_ask_failed(inp.ask, "link_lost", why)]
        item = _Queued(inp.ref, inp.message, min(inp.deadline, now + self._cfg.queue_timeout), inp.ask)
        if self._session_ready and not self._queue:
            return self._hand_over(item, now)
        if len(self._queue) >= self._cfg.max_queue:
            why = "the outbound queue is full"
            return [SendError(ref=inp.ref, reason=why, kind="queue_full"), *_ask_failed(inp.ask, "link_lost", why)]
        self._queue.append(item)
        return []

    # ---- time -----------------------------------------------------------------------------------

    def _on_tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        expired = [q for q in self._queue if q.expires <= now]
        for q in expired:
            self._queue.remove(q)
            why = "not connected to the hub in time"
            if self._last_error:
                why += f" (last error: {self._last_error})"
            out += [SendError(ref=q.ref, reason=why, kind="timeout"), *_ask_failed(q.ask, "timeout", why)]
        out += self._reconnect_do(Tick(), now)
        if self._link is not None:
            out += self._link_do(Tick(), now)
        if self._session is not None and self._session.state.name == "HANDSHAKING":
            for o in self._session.handle(Tick(), now=now):
                out += self._route_session_output(o, now)
        out += self._correlator_do(Tick(), now)
        ping_at = self._ping_at()
        if ping_at is not None and now >= ping_at and self._session is not None:
            self._last_sent = now
            ping = HiveMessage(msg_type=MsgType.PING, payload={"keepalive": True})
            for so in self._session.handle(UserSend(message=ping, ref=0), now=now):
                out += self._route_session_output(so, now)
        return out

    # ---- reconnect ------------------------------------------------------------------------------

    def _reconnect_do(self, inp: Input, now: float) -> list[Output]:
        out: list[Output] = []
        for o in self._reconnect.handle(inp, now=now):
            if isinstance(o, rc.OpenLink):
                out += self._open_link(o.attempt, now)
            elif isinstance(o, rc.GiveUp):
                out += self._give_up(o.reason, o.auth, now)
            elif isinstance(o, Note):
                out.append(o)
        return out

    def _give_up(self, reason: str, auth: bool, now: float) -> list[Output]:
        self._state = _S.GAVE_UP
        self._last_error = reason
        out: list[Output] = [StatusChanged(state=_S.GAVE_UP, detail=reason, epoch=self._epoch, auth=auth)]
        out += self._fail_queue(f"gave up connecting: {reason}", "gave_up")
        return out

    def _open_link(self, attempt: int, now: float) -> list[Output]:
        out: list[Output] = []
        if self._link is not None:  # the old link never finished closing: let the shell drop it
            out.append(DropLink(epoch=self._epoch))
            self._link = None
        self._epoch += 1
        self._epoch_lost = False
        self._session_ready = False
        self._last_close_code = None
        cfg = self._cfg
        self._session = Session(
            session_id=cfg.session_id,
            useragent=cfg.useragent,
            entropy=self._entropy,
            site_id=cfg.site_id,
            access_key=cfg.access_key,
            password=cfg.password,
            crypto_key=cfg.crypto_key,
            wire="bitstring" if cfg.protocol == "mqtt" else "text",
            binary_ok=cfg.protocol != "https",
            trigger_hello=cfg.protocol == "mqtt",
            handshake_timeout=cfg.handshake_timeout,
            v3_options=dict(cfg.v3_options),
        )
        out.append(Note(level=NoteLevel.INFO, text=f"opening link {self._epoch} (attempt {attempt})"))
        if cfg.protocol == "wss":
            self._link = WsLink(authorization=self._token, auth_encoding=cfg.auth_encoding, useragent=cfg.useragent)
            out.append(LinkOrder(epoch=self._epoch, order=OpenWebSocket(target=self._link.target)))
            return out
        if cfg.protocol == "https":
            http_cfg = cfg.http if not cfg.http_base_path else replace(cfg.http, base_path=cfg.http_base_path)
            # v1 sessions never produce binary frames over HTTP (binary_ok=False); v3 Noise frames are
            # always binary and only hub 5.x offers v3, which takes ``binary=1`` uploads.
            http_cfg = replace(http_cfg, binary_uploads=True)
            self._link = HttpPoll(
                authorization=self._token,
                useragent=cfg.useragent,
                entropy=self._entropy,
                config=http_cfg,
            )
        else:
            self._link = MqttMap(
                access_key=cfg.access_key,
                topic_prefix=cfg.mqtt_topic_prefix,
                entropy=self._entropy,
                layout=cfg.mqtt_layout,
                overrides=cfg.mqtt_overrides,
                qos=cfg.mqtt_qos,
            )
        out += self._link_do(Started(), now)
        return out

    # ---- link -----------------------------------------------------------------------------------

    def _on_fact(self, inp: LinkFact, now: float) -> list[Output]:
        if inp.epoch != self._epoch or self._link is None:
            return []  # a fact from a link we already left behind
        if isinstance(inp.fact, WsClosed):
            self._last_close_code = inp.fact.code
        return self._link_do(inp.fact, now)

    def _link_do(self, inp: Input, now: float) -> list[Output]:
        if self._link is None:
            return []
        out: list[Output] = []
        link = self._link
        for o in link.handle(inp, now=now):
            if link is not self._link:
                break  # the link was replaced while routing (should not happen; be safe)
            out += self._route_link_output(o, now)
        return out

    def _route_link_output(self, o: Output, now: float) -> list[Output]:
        if not isinstance(o, _LINK_OUT):
            return [LinkOrder(epoch=self._epoch, order=o)]
        if isinstance(o, Note):
            return [o]
        session = self._session
        if session is None:
            return []
        out: list[Output] = []
        if isinstance(o, LinkUp):
            for so in session.handle(LinkOpened(), now=now):
                out += self._route_session_output(so, now)
        elif isinstance(o, InboundFrame):
            if session.state.name in ("HANDSHAKING", "READY"):
                for so in session.handle(FrameReceived(data=o.data), now=now):
                    out += self._route_session_output(so, now)
        elif isinstance(o, FrameSent):
            for ref in o.refs:
                if self._inflight.pop(ref, None) is not None:
                    out.append(SendDone(ref=ref))
        elif isinstance(o, FrameNotSent):
            out += self._not_sent(o)
        elif isinstance(o, LinkDown):
            out += self._link_lost(o.reason, o.retryable, o.auth, now)
        return out

    def _not_sent(self, o: FrameNotSent) -> list[Output]:
        """A frame did not make it. Plain sends that surely never left go back to the queue (Rule 1
        still holds: the hub never saw them); anything that may have left, and asks (their turn is
        already being followed), fail instead."""
        out: list[Output] = []
        for ref in reversed(o.refs):
            item = self._inflight.pop(ref, None)
            if item is None:
                continue
            if o.unsent and item.ask is None:
                self._queue.appendleft(item)
            else:
                out.append(SendError(ref=ref, reason=o.reason, kind="link_lost", maybe_sent=not o.unsent))
        out.reverse()
        return out

    def _stop_link(self, now: float) -> list[Output]:
        """Ask the current link to close politely; drop it once it is finished."""
        out: list[Output] = []
        link = self._link
        if link is not None and not link.finished:
            for o in link.handle(StopRequested(), now=now):
                if isinstance(o, Note):
                    out.append(o)
                elif isinstance(o, FrameNotSent):
                    out += self._route_link_output(o, now)
                elif not isinstance(o, _LINK_OUT):
                    out.append(LinkOrder(epoch=self._epoch, order=o))
        if link is not None and link.finished:
            out.append(DropLink(epoch=self._epoch))
            self._link = None
        return out

    def _link_lost(self, reason: str, retryable: bool, auth: bool, now: float) -> list[Output]:
        """The current link is gone (link LinkDown, or the session failed and we dropped it)."""
        out: list[Output] = []
        if self._link is not None and self._link.finished:
            out.append(DropLink(epoch=self._epoch))
            self._link = None
        if self._epoch_lost:
            return out  # already accounted for (e.g. the session failed first, then the socket closed)
        self._epoch_lost = True
        session = self._session
        if session is not None and session.state.name in ("IDLE", "HANDSHAKING", "READY"):
            for so in session.handle(LinkClosed(code=self._last_close_code, reason=reason), now=now):
                if isinstance(so, SessionFailed):
                    reason = reason if auth else (so.detail or reason)  # a link's refusal says it best
                    auth = auth or so.auth
                    retryable = retryable and so.retryable
                elif isinstance(so, SendFailed):
                    out += self._route_session_output(so, now)
        self._session_ready = False
        self._last_error = reason
        out += self._correlator_do(corr.LinkLost(reason=reason), now)
        out += self._fail_inflight(f"the link was lost before the hub confirmed it: {reason}", "link_lost")
        if self._state is _S.CLOSED:
            return out
        if self._state is _S.READY:
            self._state = _S.CONNECTING
            out.append(StatusChanged(state=_S.CONNECTING, detail=f"reconnecting: {reason}", epoch=self._epoch))
        out += self._reconnect_do(rc.LinkLost(reason=reason, retryable=retryable, auth=auth), now)
        return out

    # ---- session --------------------------------------------------------------------------------

    def _route_session_output(self, o: Output, now: float) -> list[Output]:
        if isinstance(o, SendFrame):
            return self._link_do(OutboundFrame(data=o.data, refs=tuple(o.refs)), now)
        if isinstance(o, Deliver):
            return self._deliver(o.message, now)
        if isinstance(o, SessionReady):
            return self._on_ready(o, now)
        if isinstance(o, SendFailed):
            item = self._inflight.pop(o.ref, None)
            return [SendError(ref=o.ref, reason=o.reason, kind="refused")] if item is not None else []
        if isinstance(o, SessionFailed):
            out: list[Output] = [Note(level=NoteLevel.WARNING, text=f"session failed: {o.detail}")]
            out += self._stop_link(now)
            out += self._link_lost(o.detail, o.retryable, o.auth, now)
            return out
        if isinstance(o, CloseLink):
            return self._stop_link(now) if self._state is not _S.CLOSED else []
        if isinstance(o, Note):
            return [o]
        return []

    def _on_ready(self, o: SessionReady, now: float) -> list[Output]:
        self._session_ready = True
        self._last_sent = now
        self._state = _S.READY
        out: list[Output] = [StatusChanged(state=_S.READY, detail="ready", generation=o.generation, epoch=self._epoch)]
        out += self._reconnect_do(rc.LinkUp(), now)
        if isinstance(self._link, MqttMap):
            out += self._link_do(MqttSessionReady(), now)
        while self._queue and self._session_ready:
            out += self._hand_over(self._queue.popleft(), now)
        return out

    def _hand_over(self, item: _Queued, now: float) -> list[Output]:
        """Give one message to the ready session: from here on it is never sent again."""
        assert self._session is not None
        out: list[Output] = []
        self._last_sent = now
        self._inflight[item.ref] = item
        if item.ask is not None:
            out += self._correlator_do(item.ask, now)
        else:
            out += self._correlator_do(
                corr.MessageSent(msg_type=item.message.type, request_id=_request_id(item.message)), now
            )
        for so in self._session.handle(UserSend(message=item.message, ref=item.ref), now=now):
            out += self._route_session_output(so, now)
        return out

    def _deliver(self, message: HiveMessage, now: float) -> list[Output]:
        bus = message.bus()
        if bus is None:
            return [Note(level=NoteLevel.DEBUG, text=f"ignored {message.msg_type.value} frame")]
        if self._cfg.access_key:
            # MQTT on hub 4.x uses the access key as the user agent, so peer ids in
            # contexts carry it: scrub it before anything reaches users or logs.
            bus = scrub_message(bus, self._cfg.access_key)
        result = normalize(bus)
        if not isinstance(result, Success):
            return [Note(level=NoteLevel.DEBUG, text="ignored a malformed bus message")]
        event = result.unwrap()
        out: list[Output] = [EventDelivered(event=event)]
        out += self._correlator_do(corr.EventArrived(event=event), now)
        return out

    # ---- correlator -----------------------------------------------------------------------------

    def _correlator_do(self, inp: Input, now: float) -> list[Output]:
        try:
            return list(self._correlator.handle(inp, now=now))
        except LocalProtocolError as exc:  # a duplicate ask id or unknown cancel: report, don't crash
            return [Note(level=NoteLevel.WARNING, text=f"correlator: {exc}")]

    # ---- failure helpers ------------------------------------------------------------------------

    def _fail_queue(self, reason: str, kind: Literal["closed", "gave_up"]) -> list[Output]:
        out: list[Output] = []
        for q in self._queue:
            out += [SendError(ref=q.ref, reason=reason, kind=kind), *_ask_failed(q.ask, "link_lost", reason)]
        self._queue.clear()
        return out

    def _on_cancel(self, ask_id: str, now: float) -> list[Output]:
        queued = next((q for q in self._queue if q.ask is not None and q.ask.ask_id == ask_id), None)
        if queued is None:
            return self._correlator_do(corr.AskCancelled(ask_id=ask_id), now)
        self._queue.remove(queued)  # never sent: drop it, end the send and the ask
        why = "the ask was cancelled before it was sent"
        return [SendError(ref=queued.ref, reason=why, kind="closed"), *_ask_failed(queued.ask, "cancelled", why)]

    def _fail_inflight(self, reason: str, kind: Literal["link_lost", "closed"]) -> list[Output]:
        out: list[Output] = [
            SendError(ref=ref, reason=reason, kind=kind, maybe_sent=True) for ref in sorted(self._inflight)
        ]
        self._inflight.clear()
        return out


__all__ = [  # grouped: machine and config, inputs, outputs
    "Connection", "ConnectionConfig", "ConnectionState", "Protocol",
    "CancelAsk", "Connect", "Disconnect", "LinkFact", "SendRequested",
    "DropLink", "EventDelivered", "LinkOrder", "OpenWebSocket", "SendDone", "SendError", "StatusChanged",
]  # fmt: skip
