"""BusConnection: a client over a bus-level transport (0.4.7's ``transport=``), as one pure machine.

Theory of operation
-------------------
A bus-level transport (:mod:`.bus_events`) already speaks bus messages, so this machine is a
:class:`~thalovant.core.client.connection.Connection` without the link and the session: the same
life cycle (:mod:`.lifecycle`), reconnect policy, outbound queue and correlator, talking to the
transport through four orders (``OpenBus``, ``EmitBus``, ``ProbeBus``, ``CloseBus``) that the
shell runs in a worker thread, one at a time, in order::

    IDLE --Connect--> CONNECTING: OpenBus(epoch)
    CONNECTING --BusOpened--> READY: queued sends flow, one EmitBus at a time
    READY --BusEmitFailed(link_down) / BusProbed(alive=False)--> CONNECTING: CloseBus, asks fail,
          the reconnect policy opens the next epoch
    CONNECTING --BusOpenFailed--> CONNECTING (backoff) or GAVE_UP (always on the very first connect,
          unless ``retry_first_connect``: ``client.connect()`` raises what the transport raised, as in 0.4.7)
    any --Disconnect--> CLOSED: CloseBus, everything pending fails

Rule 1 (never twice). One send is handed to the transport at a time. A send the transport may
have taken (it returned, or timed out) is never sent again. A send it refused before taking it
(``emit_event`` raised a connection error) goes back to the front of the queue **once** and is
sent again on the next connection (0.4.7 re-sent after any failure).

Rule 2 (replies arrive early). A transport may call its handlers from inside ``emit_event``, so an
ask is registered with the correlator *before* its ``EmitBus`` leaves: a reply that arrives
before ``BusEmitted`` is already attributed.

Rule 3 (attribution, spec notes §f.4). The correlator is :class:`LoneAskCorrelator`: a reply with
no request id and no conflicting session id belongs to the ask in flight when there is exactly one;
with several it is delivered to listeners only. Duplicate suppression is off: a transport that
repeats an event means it (two asks in a row get the same ``handled`` message from a fake).

Rule 4 (no frames). A bus-level transport carries bus messages only: a BINARY send is refused, and a
``synth`` ask is run as a plain one (no clip can come back, so it neither asks for one nor waits).

Deadline: the earliest of the reconnect policy's, the correlator's, the queue's expiry and the next
``is_connected()`` probe while ready.
"""

from __future__ import annotations

from dataclasses import replace

from returns.result import Success

from thalovant.core.bus.events import ThalovantEvent, normalize
from thalovant.core.client import correlate as corr
from thalovant.core.client import reconnect as rc
from thalovant.core.client.bus_events import (
    BusClosed,
    BusConfig,
    BusEmitFailed,
    BusEmitted,
    BusFact,
    BusOpened,
    BusOpenFailed,
    BusProbed,
    BusReceived,
    BusTaken,
    CloseBus,
    EmitBus,
    OpenBus,
    ProbeBus,
)
from thalovant.core.client.connection_events import (
    CancelAsk,
    Connect,
    ConnectionState,
    Disconnect,
    EventDelivered,
    SendError,
    SendErrorKind,
    SendRequested,
    StatusChanged,
)
from thalovant.core.client.lifecycle import TERMINAL, Lifecycle
from thalovant.core.client.outbox import Outbox, Queued, refuse, sent_input
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Tick, earliest
from thalovant.core.session.events import SessionReady
from thalovant.core.wire.message import BusMessage, MsgType

__all__ = ["BusConnection", "LoneAskCorrelator"]

_S = ConnectionState


class LoneAskCorrelator(corr.Correlator):
    """The correlator of a bus transport: a reply with no request id goes to the only ask in flight.

    Exactly :class:`~thalovant.core.client.correlate.Correlator`, plus one rule (Rule 3 above): an event
    that carries no correlation id, is not a refusal (those have their own rule) and has no session id
    that contradicts the ask's belongs to the pending ask when exactly one is pending. Duplicates are not
    suppressed.
    """

    def __init__(self, *, send_window: float = 10.0) -> None:
        # dedup_size=1: the correlator evicts before it looks, so it never remembers an earlier event
        # quiet_grace=0: a transport of the caller's delivers in the order it chose
        super().__init__(send_window=send_window, dedup_window=0.0, dedup_size=1, quiet_grace=0.0)

    def _owner(self, event: ThalovantEvent, now: float) -> corr._Pending | None:
        owner = super()._owner(event, now)
        if owner is not None or event.request_ids or event.is_policy_denied or len(self._pending) != 1:
            return owner
        (only,) = self._pending.values()
        session = event.session_id
        if session is not None and only.session_id is not None and session != only.session_id:
            return None
        return only


class BusConnection:
    """The client machine over a bus-level transport. See the module docstring.

    Args:
        config: the queue, reconnect and probe settings.
        entropy: random bytes (the reconnect policy's jitter).
    """

    def __init__(self, *, config: BusConfig, entropy: Entropy) -> None:
        self._cfg = config
        self._life = Lifecycle()
        self._reconnect = rc.Reconnect(entropy=entropy, config=config.reconnect)
        self._correlator = LoneAskCorrelator()
        self._outbox = Outbox(max_queue=config.max_queue)
        self._epoch = 0
        self._open: int | None = None  # the epoch whose connect() was ordered and not failed or closed
        self._ready = False
        self._ever_ready = False
        self._closing: set[int] = set()  # epochs whose disconnect() has not returned yet
        self._retried: set[int] = set()  # refs already sent again once (Rule 1)
        self._probe_at: float | None = None
        self._last_error = ""

    def __repr__(self) -> str:
        return (
            f"<BusConnection state={self.state.value} epoch={self._epoch} queued={len(self._outbox.waiting)} "
            f"inflight={len(self._outbox.inflight)}>"
        )

    # ---- contract -------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._life.state

    @property
    def finished(self) -> bool:
        """Terminal, nothing in flight and every ``disconnect()`` returned."""
        return self.state in TERMINAL and not self._outbox.inflight and not self._closing

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def last_error(self) -> str:
        return self._last_error

    @property
    def pending_asks(self) -> tuple[str, ...]:
        """The ask ids in flight, oldest first."""
        return self._correlator.pending

    @property
    def deadline(self) -> float | None:
        probe = self._probe_at if self._ready else None
        return earliest(self._reconnect.deadline, self._correlator.deadline, self._outbox.expiry, probe)

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns the orders for the shell, in order.

        Raises:
            LocalProtocolError: misuse (e.g. a reused send ref); the state is unchanged.
        """
        if isinstance(inp, Tick):
            return self._on_tick(now)
        if isinstance(inp, BusFact):
            return self._on_fact(inp, now)
        if isinstance(inp, SendRequested):
            return self._on_send(inp, now)
        if isinstance(inp, CancelAsk):
            ended = self._outbox.cancel(inp.ask_id)
            return ended if ended is not None else self._correlator_do(corr.AskCancelled(ask_id=inp.ask_id), now)
        if isinstance(inp, Connect):
            return self._on_connect(now)
        if isinstance(inp, Disconnect):
            return self._on_disconnect(now)
        raise LocalProtocolError(f"BusConnection cannot take {type(inp).__name__}")

    # ---- user commands --------------------------------------------------------------------------

    def _on_connect(self, now: float) -> list[Output]:
        if not self._life.move(Connect):
            return []  # already running
        out: list[Output] = [StatusChanged(state=self.state, detail="connecting")]
        return out + self._reconnect_do(rc.OpenRequested(), now)

    def _on_disconnect(self, now: float) -> list[Output]:
        if not self._life.move(Disconnect):
            return []  # already closed
        out: list[Output] = []
        out += self._reconnect.handle(rc.UserClose(), now=now)
        out += self._outbox.fail_waiting("the client was closed", "closed")
        out += self._correlator_do(corr.LinkLost(reason="the client was closed"), now)
        out += self._close_transport()
        out += self._outbox.fail_inflight("the client was closed before the transport took it", "closed")
        self._ready = False
        out.append(StatusChanged(state=self.state, detail="closed by the client", epoch=self._epoch))
        return out

    def _on_send(self, inp: SendRequested, now: float) -> list[Output]:
        if inp.ref < 1:
            raise LocalProtocolError(f"send ref {inp.ref} is reserved")
        if self._outbox.uses(inp.ref):
            raise LocalProtocolError(f"send ref {inp.ref} is already in use")
        ask = replace(inp.ask, synth=False) if inp.ask is not None and inp.ask.synth else inp.ask  # no audio comes
        item = Queued(inp.ref, inp.message, min(inp.deadline, now + self._cfg.queue_timeout), ask)
        if not isinstance(inp.message, BusMessage):  # a bus-level transport carries bus messages only
            why = f"this transport cannot send a {inp.message.msg_type.value} frame (bus messages only)"
            if inp.message.msg_type is MsgType.BINARY:  # the binary API raises ThalovantBinaryUnsupportedError
                why = "this transport cannot carry binary frames"
            return refuse(item, why, "refused", "link_lost")
        if self.state in TERMINAL:
            closed = self.state is _S.CLOSED
            why = "the client is closed" if closed else f"not connected: {self._last_error}"
            return refuse(item, why, "closed" if closed else "gave_up", "link_lost")
        return self._outbox.wait(item) + self._pump(now)

    # ---- time -----------------------------------------------------------------------------------

    def _on_tick(self, now: float) -> list[Output]:
        out = self._outbox.expire(now, self._last_error)
        out += self._reconnect_do(Tick(), now)
        out += self._correlator_do(Tick(), now)
        if self._ready and self._probe_at is not None and now >= self._probe_at:
            self._probe_at = None  # none until this probe answers
            out.append(ProbeBus(epoch=self._epoch))
        return out

    # ---- the transport --------------------------------------------------------------------------

    def _reconnect_do(self, inp: Input, now: float) -> list[Output]:
        out: list[Output] = []
        for o in self._reconnect.handle(inp, now=now):
            if isinstance(o, rc.OpenLink):
                self._epoch += 1
                self._open = self._epoch
                out.append(Note(level=NoteLevel.INFO, text=f"connecting the transport (attempt {o.attempt})"))
                out.append(OpenBus(epoch=self._epoch))
            elif isinstance(o, rc.GiveUp):
                self._life.move(rc.GiveUp)
                self._last_error = o.reason
                out.append(StatusChanged(state=self.state, detail=o.reason, epoch=self._epoch, auth=o.auth))
                out += self._outbox.fail_waiting(f"gave up connecting: {o.reason}", "gave_up")
            elif isinstance(o, Note):
                out.append(o)
        return out

    def _on_fact(self, inp: BusFact, now: float) -> list[Output]:
        fact = inp.fact
        if isinstance(fact, BusReceived):
            taken: list[Output] = [BusTaken(receipt=fact.receipt)] if fact.receipt else []
            return self._deliver(fact.message, now) + taken
        if isinstance(fact, BusEmitted):
            out = self._outbox.confirmed((fact.ref,))
            self._retried.discard(fact.ref)
            return out + self._pump(now)
        if isinstance(fact, BusEmitFailed):
            return self._emit_failed(fact, inp.epoch, now)
        if isinstance(fact, BusClosed):
            self._closing.discard(inp.epoch)
            return []
        if inp.epoch != self._epoch:
            return []  # an older attempt: already left behind
        if isinstance(fact, BusOpened):
            return self._opened(now)
        if isinstance(fact, BusOpenFailed):
            self._open = None
            retryable = fact.retryable and (self._ever_ready or self._cfg.retry_first_connect)
            return self._lost(fact.reason, retryable, fact.auth, now)
        if isinstance(fact, BusProbed):
            if fact.alive:
                self._probe_at = now + self._cfg.probe_interval if self._ready else None
                return []
            return self._lost(fact.reason or "the transport is not connected", True, False, now)
        return [Note(level=NoteLevel.DEBUG, text=f"ignored fact {type(fact).__name__}")]

    def _opened(self, now: float) -> list[Output]:
        if self._ready or self.state is not _S.CONNECTING:
            return []
        self._ready = self._ever_ready = True
        self._probe_at = now + self._cfg.probe_interval
        out: list[Output] = []
        if self._life.move(SessionReady):
            out.append(StatusChanged(state=self.state, detail="ready", epoch=self._epoch))
        out += self._reconnect.handle(rc.LinkUp(), now=now)
        return out + self._pump(now)

    def _emit_failed(self, fact: BusEmitFailed, epoch: int, now: float) -> list[Output]:
        item = self._outbox.inflight.pop(fact.ref, None)
        if item is None:
            return []  # already ended (the client was closed meanwhile)
        out: list[Output] = []
        ask = item.ask
        asked = ask is not None and ask.ask_id in self._correlator.pending
        retry = (
            self._cfg.retry_unsent
            and fact.link_down
            and not fact.taken
            and fact.ref not in self._retried
            and self.state not in TERMINAL
            and (ask is None or asked)
        )
        if retry:
            self._retried.add(fact.ref)
            if ask is not None:  # forget it quietly: it is registered again when sent again
                self._correlator.handle(corr.AskCancelled(ask_id=ask.ask_id), now=now)
            self._outbox.waiting.appendleft(item)
        else:
            self._retried.discard(fact.ref)
            kind: SendErrorKind = "link_lost" if fact.link_down else "refused"
            out.append(SendError(ref=fact.ref, reason=fact.reason, kind=kind, maybe_sent=fact.taken))
            if ask is not None and asked and not fact.link_down:
                out += self._correlator_do(corr.AskCancelled(ask_id=ask.ask_id), now)
        if fact.link_down and epoch == self._epoch and self._open == epoch:
            return out + self._lost(fact.reason, True, False, now)
        return out + self._pump(now)

    def _lost(self, reason: str, retryable: bool, auth: bool, now: float) -> list[Output]:
        """The current attempt failed or its connection is gone: close it, fail the asks, reconnect."""
        self._ready = False
        self._probe_at = None
        self._last_error = reason
        out = self._close_transport()
        out += self._correlator_do(corr.LinkLost(reason=reason), now)
        if self.state in TERMINAL:
            return out
        if self._life.move(rc.LinkLost):
            out.append(StatusChanged(state=self.state, detail=f"reconnecting: {reason}", epoch=self._epoch))
        return out + self._reconnect_do(rc.LinkLost(reason=reason, retryable=retryable, auth=auth), now)

    def _close_transport(self) -> list[Output]:
        if self._open is None:
            return []
        epoch, self._open = self._open, None
        self._closing.add(epoch)
        return [CloseBus(epoch=epoch)]

    def _pump(self, now: float) -> list[Output]:
        """Hand the next waiting send to the transport (one at a time: Rule 1)."""
        if not self._ready or self._outbox.inflight or not self._outbox.waiting:
            return []
        item = self._outbox.waiting.popleft()
        self._outbox.hand_over(item)
        out: list[Output] = []
        if item.ask is not None:  # before the message leaves (Rule 2)
            out += self._correlator_do(item.ask, now)
        else:
            out += self._correlator_do(sent_input(item.message), now)
        assert isinstance(item.message, BusMessage)  # _on_send refuses frames
        out.append(EmitBus(epoch=self._epoch, ref=item.ref, message=item.message))
        return out

    # ---- events ---------------------------------------------------------------------------------

    def _deliver(self, message: BusMessage, now: float) -> list[Output]:
        result = normalize(message)
        if not isinstance(result, Success):
            return [Note(level=NoteLevel.DEBUG, text="ignored a malformed bus message")]
        event: ThalovantEvent = result.unwrap()
        return [EventDelivered(event=event), *self._correlator_do(corr.EventArrived(event=event), now)]

    def _correlator_do(self, inp: Input, now: float) -> list[Output]:
        try:
            return list(self._correlator.handle(inp, now=now))
        except LocalProtocolError as exc:  # a duplicate ask id or unknown cancel: report, don't crash
            return [Note(level=NoteLevel.WARNING, text=f"correlator: {exc}")]
