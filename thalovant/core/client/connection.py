"""Connection: one client's whole conversation with a hub, as one pure machine.

Theory of operation
-------------------
A client needs five machines to talk to a hub: the reconnect policy (:mod:`.reconnect`), a
link for its transport (:mod:`.links`), a session with its handshake (:mod:`.session`), the ask
correlator (:mod:`.correlate`) and an outbound queue (:mod:`.outbox`). ``Connection`` composes
them and routes every output of one machine to the input of the next, so the shell only has to
execute transport orders and deliver results; a recorded trace of its inputs replays the client.

Epochs. Each link attempt gets a new *epoch* number, a fresh link machine and a fresh session
(:mod:`.epoch`). Transport facts arrive as ``LinkFact(epoch, fact)`` and orders leave as
``LinkOrder(epoch, order)``; facts from an older epoch are ignored::

    IDLE --Connect--> CONNECTING       Reconnect: OpenLink -> new epoch
    CONNECTING: link LinkUp    -> session LinkOpened (handshake starts)
                session Ready  -> queue flushed (after the HELLO)
                link confirms the HELLO's frame -> READY; Reconnect LinkUp
    READY: link LinkDown / session failed / HubSessionLost -> CONNECTING; asks in flight
                                  fail at once, unconfirmed sends fail, Reconnect LinkLost
    CONNECTING: Reconnect GiveUp -> GAVE_UP; everything queued fails
    any --Disconnect--> CLOSED         (links told to stop politely)

The life-cycle states move only through :mod:`.lifecycle`'s table. One HTTP or MQTT link at a
time: hub 4.x keeps one connection per access key, so an OpenLink waits until the previous link
finished closing (its ``/disconnect`` or ``offline`` must reach the hub before the new hello).

Rule 1 (nothing lost, nothing twice). Every ``SendRequested(ref)`` ends in exactly one
``SendDone(ref)`` or ``SendError(ref)`` (:mod:`.outbox`).

Rule 2 (asks end promptly, exactly once). An ask is registered with the correlator when its
utterance is handed to the session. When the link drops, every ask in flight fails at once
(``link_lost``). An ask issued while no session is ready waits for one until its own deadline,
and one whose frame surely never left goes back to wait; an ask that never leaves the queue
(expired, full, closed, gave up, cancelled) fails right after its ``SendError``.

Rule 3 (no secrets). Credentials live in ``ConnectionConfig`` fields that are excluded from
``repr``; outputs carry only what the shell needs.

Deadline: the earliest of every child machine's deadline, the queue's expiry times and the keep-alive.
"""

from __future__ import annotations

from typing import Literal

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
    FrameDelivered,
    LinkFact,
    LinkOrder,
    OpenWebSocket,
    Protocol,
    SendDone,
    SendError,
    SendRequested,
    StatusChanged,
)
from thalovant.core.client.delivery import delivered_event
from thalovant.core.client.epoch import Epoch
from thalovant.core.client.lifecycle import TERMINAL, Lifecycle
from thalovant.core.client.outbox import Outbox, Queued, refuse, sent_input
from thalovant.core.errors import LocalProtocolError
from thalovant.core.links import base as link_io
from thalovant.core.links.mqtt import HubSessionLost
from thalovant.core.links.mqtt import SessionEstablished as MqttSessionReady
from thalovant.core.links.mqtt_map import MqttMap
from thalovant.core.links.ws import WsClosed, WsLink
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Tick, earliest
from thalovant.core.session import events as session_io
from thalovant.core.session.machine import SessionState
from thalovant.core.wire.auth import authorization_token
from thalovant.core.wire.message import HiveMessage, MsgType

_S = ConnectionState
_STOPPING_DROPS = (link_io.FrameSent, link_io.InboundFrame, link_io.LinkUp, link_io.LinkDown)  # no longer matter
_LINK_OUT = (*_STOPPING_DROPS, link_io.FrameNotSent, Note)


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
        self._life = Lifecycle()
        self._reconnect = rc.Reconnect(entropy=entropy, config=config.reconnect)
        self._correlator = corr.Correlator()
        self._ep = Epoch()  # the current link attempt (number 0: none yet)
        self._outbox = Outbox(max_queue=config.max_queue)
        self._last_error = ""
        self._open_after: int | None = None  # an OpenLink held until the previous link finished closing

    def __repr__(self) -> str:
        return (
            f"<Connection protocol={self._cfg.protocol} state={self.state.value} epoch={self._ep.number} "
            f"queued={len(self._outbox.waiting)} inflight={len(self._outbox.inflight)}>"
        )

    # ---- contract -------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._life.state  # moved only by self._life.move (the lifecycle table)

    @property
    def finished(self) -> bool:
        """Terminal, nothing in flight, and the last link done closing (an MQTT link still owes
        its ``offline`` publish and DISCONNECT; a WebSocket its close handshake)."""
        link_done = self._ep.link is None or self._ep.link.finished
        return self.state in TERMINAL and not self._outbox.inflight and link_done

    @property
    def epoch(self) -> int:
        return self._ep.number

    @property
    def last_error(self) -> str:
        return self._last_error

    @property
    def generation(self) -> int | None:
        return self._ep.session.generation if self._ep.session is not None else None

    @property
    def deadline(self) -> float | None:
        link = self._ep.link.deadline if self._ep.link is not None else None
        session = self._ep.session.deadline if self._ep.session is not None else None
        ping = self._ep.ping_at(self._cfg.keepalive)
        return earliest(self._reconnect.deadline, link, session, self._correlator.deadline, self._outbox.expiry, ping)

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
        if not self._life.move(Connect):
            return []  # already running: connect is idempotent
        out: list[Output] = [StatusChanged(state=self.state, detail="connecting")]
        out += self._reconnect_do(rc.OpenRequested(), now)
        return out

    def _on_disconnect(self, now: float) -> list[Output]:
        if not self._life.move(Disconnect):
            return []  # already closed
        out: list[Output] = []
        if self._reconnect.state not in (rc.ReconnectState.CLOSED, rc.ReconnectState.GAVE_UP):
            out += self._reconnect.handle(rc.UserClose(), now=now)
        out += self._outbox.fail_waiting("the client was closed", "closed")
        out += self._correlator_do(corr.LinkLost(reason="the client was closed"), now)
        if self._ep.session is not None and not self._ep.session.finished:
            out += self._session_do(session_io.UserClose(), now)
        out += self._stop_link(now)
        out += self._outbox.fail_inflight("the client was closed before the hub confirmed it", "closed")
        out.append(StatusChanged(state=self.state, detail="closed by the client", epoch=self._ep.number))
        return out

    def _on_send(self, inp: SendRequested, now: float) -> list[Output]:
        if inp.ref < 1:
            raise LocalProtocolError(f"send ref {inp.ref} is reserved: refs below 1 are the connection's own")
        if self._outbox.uses(inp.ref):
            raise LocalProtocolError(f"send ref {inp.ref} is already in use")
        # an ask waits for a session within its own timeout; a plain send at most queue_timeout
        expires = inp.deadline if inp.ask is not None else min(inp.deadline, now + self._cfg.queue_timeout)
        item = Queued(inp.ref, inp.message, expires, inp.ask)
        if self.state in TERMINAL:
            why = "the client is closed" if self.state is _S.CLOSED else f"not connected: {self._last_error}"
            kind: Literal["closed", "gave_up"] = "closed" if self.state is _S.CLOSED else "gave_up"
            return refuse(item, why, kind, "link_lost")
        if self._ep.ready and not self._outbox.waiting:
            return self._hand_over(item, now)
        return self._outbox.wait(item)

    def _on_cancel(self, ask_id: str, now: float) -> list[Output]:
        ended = self._outbox.cancel(ask_id)
        return ended if ended is not None else self._correlator_do(corr.AskCancelled(ask_id=ask_id), now)

    # ---- time -----------------------------------------------------------------------------------

    def _on_tick(self, now: float) -> list[Output]:
        out = self._outbox.expire(now, self._last_error)
        out += self._reconnect_do(Tick(), now)
        if self._ep.link is not None:
            out += self._link_do(Tick(), now)
        if self._ep.session is not None and self._ep.session.state is SessionState.HANDSHAKING:
            out += self._session_do(Tick(), now)
        out += self._correlator_do(Tick(), now)
        ping_at = self._ep.ping_at(self._cfg.keepalive)
        if ping_at is not None and now >= ping_at and self._ep.session is not None:
            self._ep.last_sent = now
            ping = HiveMessage(msg_type=MsgType.PING, payload={"keepalive": True})
            out += self._session_do(session_io.UserSend(message=ping, ref=0), now)
        return out

    # ---- reconnect ------------------------------------------------------------------------------

    def _reconnect_do(self, inp: Input, now: float) -> list[Output]:
        out: list[Output] = []
        for o in self._reconnect.handle(inp, now=now):
            if isinstance(o, rc.OpenLink):
                out += self._open_link(o.attempt, now)
            elif isinstance(o, rc.GiveUp):
                out += self._give_up(o, now)
            elif isinstance(o, Note):
                out.append(o)
        return out

    def _give_up(self, o: rc.GiveUp, now: float) -> list[Output]:
        self._life.move(rc.GiveUp)
        self._last_error = o.reason
        out: list[Output] = [StatusChanged(state=self.state, detail=o.reason, epoch=self._ep.number, auth=o.auth)]
        out += self._outbox.fail_waiting(f"gave up connecting: {o.reason}", "gave_up")
        return out

    def _open_link(self, attempt: int, now: float) -> list[Output]:
        if self._ep.link is not None and not isinstance(self._ep.link, WsLink):
            self._open_after = attempt  # one HTTP or MQTT link at a time (module docstring)
            return []
        out: list[Output] = []
        if self._ep.link is not None:  # the old WebSocket is still closing: let the shell drop it
            out.append(DropLink(epoch=self._ep.number))
        self._ep = self._ep.successor(self._cfg, self._token, self._entropy)
        out.append(Note(level=NoteLevel.INFO, text=f"opening link {self._ep.number} (attempt {attempt})"))
        if isinstance(self._ep.link, WsLink):
            out.append(LinkOrder(epoch=self._ep.number, order=OpenWebSocket(target=self._ep.link.target)))
            return out
        out += self._link_do(link_io.Started(), now)
        return out

    # ---- link -----------------------------------------------------------------------------------

    def _on_fact(self, inp: LinkFact, now: float) -> list[Output]:
        if inp.epoch != self._ep.number or self._ep.link is None:
            return []  # a fact from a link we already left behind
        if isinstance(inp.fact, WsClosed):
            self._ep.close_code = inp.fact.code
        return self._link_do(inp.fact, now)

    def _link_do(self, inp: Input, now: float) -> list[Output]:
        if self._ep.link is None:
            return []
        out: list[Output] = []
        link = self._ep.link
        for o in link.handle(inp, now=now):
            if link is not self._ep.link:
                break  # the link was replaced while routing (should not happen; be safe)
            out += self._route_link_output(o, now)
        return out

    def _route_link_output(self, o: Output, now: float) -> list[Output]:
        if isinstance(o, HubSessionLost):
            return self._hub_lost_us(o.reason, now)
        if not isinstance(o, _LINK_OUT):
            return [LinkOrder(epoch=self._ep.number, order=o)]
        if isinstance(o, Note):
            return [o]
        session = self._ep.session
        if session is None:
            return []
        if isinstance(o, link_io.LinkUp):
            return self._session_do(session_io.LinkOpened(), now)
        if isinstance(o, link_io.InboundFrame):
            live = session.state in (SessionState.HANDSHAKING, SessionState.READY)
            return self._session_do(session_io.FrameReceived(data=o.data), now) if live else []
        if isinstance(o, link_io.FrameSent):
            if session_io.HELLO_REF in o.refs:
                self._ep.hello_confirmed = True
            return self._outbox.confirmed(o.refs) + self._announce_ready(now)
        if isinstance(o, link_io.FrameNotSent):
            return self._not_sent(o, now)
        if isinstance(o, link_io.LinkDown):
            return self._link_lost(o.reason, o.retryable, o.auth, now)
        return []

    def _stop_link(self, now: float) -> list[Output]:
        """Ask the current link to close politely; drop it once it is finished."""
        out: list[Output] = []
        link = self._ep.link
        if link is not None and not link.finished:
            for o in link.handle(link_io.StopRequested(), now=now):
                if not isinstance(o, _STOPPING_DROPS):
                    out += self._route_link_output(o, now)
        return out + self._drop_finished_link(now)

    def _drop_finished_link(self, now: float) -> list[Output]:
        if self._ep.link is None or not self._ep.link.finished:
            return []
        self._ep.drop_link()
        out: list[Output] = [DropLink(epoch=self._ep.number)]
        attempt, self._open_after = self._open_after, None
        if attempt is not None and self.state not in TERMINAL:
            out += self._open_link(attempt, now)  # the held OpenLink: the previous link is gone now
        return out

    def _hub_lost_us(self, reason: str, now: float) -> list[Output]:
        """The hub no longer holds our session (MQTT status topics): end it, stop the link politely, reconnect."""
        out: list[Output] = [Note(level=NoteLevel.WARNING, text=f"session lost: {reason}")]
        if self._ep.session is not None and not self._ep.session.finished:
            out += self._session_do(session_io.UserClose(), now)  # its CloseLink stops the link
        out += self._stop_link(now)
        return out + self._link_lost(reason, True, False, now)

    def _not_sent(self, o: link_io.FrameNotSent, now: float) -> list[Output]:
        """A frame did not make it; the correlator forgets the asks that go back to the queue (Rule 2)."""
        out, requeued = self._outbox.not_sent(o)
        for ask_id in requeued:
            self._correlator_do(corr.AskCancelled(ask_id=ask_id), now)  # its "cancelled" end is not the ask's
        return out

    def _link_lost(self, reason: str, retryable: bool, auth: bool, now: float) -> list[Output]:
        """The current link is gone (link LinkDown, or the session failed and we dropped it)."""
        lost, out = self._ep.lost, self._drop_finished_link(now)  # (dropping may open the held next epoch)
        if lost:
            return out  # already accounted for (e.g. the session failed first, then the socket closed)
        self._ep.lost = True
        reason, retryable, auth, suspect, failed = self._ep.session_verdict(reason, retryable, auth, now)
        for so in failed:
            out += self._route_session_output(so, now)
        self._ep.ready = False
        self._last_error = reason
        out += self._correlator_do(corr.LinkLost(reason=reason), now)
        out += self._outbox.fail_inflight(f"the link was lost before the hub confirmed it: {reason}", "link_lost")
        if self.state is _S.CLOSED:
            return out
        if self._life.move(rc.LinkLost):
            out.append(StatusChanged(state=self.state, detail=f"reconnecting: {reason}", epoch=self._ep.number))
        out += self._reconnect_do(rc.LinkLost(reason=reason, retryable=retryable, auth=auth, suspect=suspect), now)
        return out

    # ---- session --------------------------------------------------------------------------------

    def _session_do(self, inp: Input, now: float) -> list[Output]:
        out: list[Output] = []
        if self._ep.session is not None:
            for so in self._ep.session.handle(inp, now=now):
                out += self._route_session_output(so, now)
        return out

    def _route_session_output(self, o: Output, now: float) -> list[Output]:
        if isinstance(o, session_io.SendFrame):
            return self._link_do(link_io.OutboundFrame(data=o.data, refs=tuple(o.refs)), now)
        if isinstance(o, session_io.Deliver):
            return self._deliver(o.message, now)
        if isinstance(o, session_io.SessionReady):
            return self._on_ready(o, now)
        if isinstance(o, session_io.SendFailed):
            return self._outbox.refused(o.ref, o.reason)
        if isinstance(o, session_io.SessionFailed):
            out: list[Output] = [Note(level=NoteLevel.WARNING, text=f"session failed: {o.detail}")]
            out += self._stop_link(now)
            out += self._link_lost(o.detail, o.retryable, o.auth, now)
            return out
        if isinstance(o, session_io.CloseLink):
            return self._stop_link(now) if self.state is not _S.CLOSED else []
        if isinstance(o, Note):
            return [o]
        return []

    def _on_ready(self, o: session_io.SessionReady, now: float) -> list[Output]:
        """Keys exist and the HELLO is handed to the link: sends flow (after the HELLO, in order).

        The connection reports READY only when the link confirms the HELLO's frame
        (:meth:`_announce_ready`): over HTTP the hub has then registered this client, so a
        ``connect()`` that returned means the hub can address it.
        """
        self._ep.ready = True
        self._ep.ready_generation = o.generation
        self._ep.last_sent = now
        out: list[Output] = []
        if isinstance(self._ep.link, MqttMap):
            out += self._link_do(MqttSessionReady(), now)
        while self._outbox.waiting and self._ep.ready:
            out += self._hand_over(self._outbox.waiting.popleft(), now)
        return out + self._announce_ready(now)

    def _announce_ready(self, now: float) -> list[Output]:
        """READY, once the session is ready and the link confirmed its HELLO (in either order)."""
        if not (self._ep.ready and self._ep.hello_confirmed) or not self._life.move(session_io.SessionReady):
            return []
        gen = self._ep.ready_generation
        out: list[Output] = [StatusChanged(state=self.state, detail="ready", generation=gen, epoch=self._ep.number)]
        out += self._reconnect_do(rc.LinkUp(), now)
        return out

    def _hand_over(self, item: Queued, now: float) -> list[Output]:
        """Give one message to the ready session: from here on it is never sent again."""
        assert self._ep.session is not None
        out: list[Output] = []
        self._ep.last_sent = now
        self._outbox.hand_over(item)
        if item.ask is not None:
            out += self._correlator_do(item.ask, now)
        else:
            out += self._correlator_do(sent_input(item.message), now)  # a frame: its inner bus message, if any
        out += self._session_do(session_io.UserSend(message=item.message, ref=item.ref), now)
        return out

    def _deliver(self, message: HiveMessage, now: float) -> list[Output]:
        event = delivered_event(message, self._cfg.access_key)
        if isinstance(event, Note):  # no bus event: a frame for the shell; a TTS clip may belong to an ask
            frame = [FrameDelivered(message=message), *self._correlator_do(corr.FrameArrived(message=message), now)]
            return frame if message.bus() is None else [event]
        served = self._reconnect_do(rc.Served(), now)  # the hub answers: this link ends the outage when lost
        return [EventDelivered(event=event), *served, *self._correlator_do(corr.EventArrived(event=event), now)]

    def _correlator_do(self, inp: Input, now: float) -> list[Output]:
        try:
            return list(self._correlator.handle(inp, now=now))
        except LocalProtocolError as exc:  # a duplicate ask id or unknown cancel: report, don't crash
            return [Note(level=NoteLevel.WARNING, text=f"correlator: {exc}")]


__all__ = [  # grouped: machine and config, inputs, outputs
    "Connection", "ConnectionConfig", "ConnectionState", "Protocol", "CancelAsk", "Connect", "Disconnect",
    "LinkFact", "SendRequested", "DropLink", "EventDelivered", "FrameDelivered", "LinkOrder", "OpenWebSocket",
    "SendDone", "SendError", "StatusChanged",
]  # fmt: skip
