"""The outbound queue of a :class:`~thalovant.core.client.connection.Connection` (its Rule 1).

Theory of operation
-------------------
Every ``SendRequested(ref)`` becomes one :class:`Queued` item, which is in exactly one place:

* *waiting*: in the queue (bounded by ``max_queue``) while no session is ready, until it
  ``expires`` (the earlier of the caller's deadline and the connection's ``queue_timeout``);
* *in flight*: handed to a session, not yet confirmed by the transport;
* *ended*: exactly one ``SendDone(ref)`` or ``SendError(ref)`` was given; it is forgotten.

Rule 1 (nothing lost, nothing twice). An item in flight is never handed to another session: if
its link dies before the transport confirmed it, it fails with ``maybe_sent=True`` instead of
being repeated. Only a send that the link reports surely unsent goes back to the front of the
queue: the hub never saw it. An ask that does so is withdrawn from the correlator until it is
handed over again (``not_sent`` names it).

Rule 2 (asks end). An ask whose message never leaves the queue (expired, full, cancelled, closed,
gave up) fails right after its ``SendError`` (:func:`.correlate.ask_failed`). An ask waits in the
queue until its own deadline; a plain send at most ``queue_timeout`` (the connection sets
``expires``).

The outbox decides nothing about *when* an item is handed over; the connection does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from thalovant.core.client import correlate as corr
from thalovant.core.client.connection_events import SendDone, SendError, SendErrorKind
from thalovant.core.links.base import FrameNotSent
from thalovant.core.machine import Output
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

__all__ = ["Outbox", "Queued", "refuse", "sent_input"]


@dataclass(frozen=True, slots=True)
class Queued:
    """One send the connection owes an answer: its ref, message, expiry and (for an ask) the ask."""

    ref: int
    message: BusMessage | HiveMessage
    expires: float
    ask: corr.AskStarted | None


def sent_input(message: BusMessage | HiveMessage) -> corr.MessageSent:
    """What the correlator learns of a plain send: the bus type and request id (of a frame's inner bus message).

    A hub may refuse what a mesh wrapper carries (``hive.policy.denied`` names the inner type), so a
    wrapper is remembered by its inner bus message; a frame without one by its ``msg_type``.
    """
    if isinstance(message, HiveMessage):
        inner = message.payload.get("payload") if isinstance(message.payload, dict) else None
        bus = HiveMessage(msg_type=MsgType.BUS, payload=inner).bus() if isinstance(inner, dict) else None
        if bus is None:
            return corr.MessageSent(msg_type=message.msg_type.value)
        message = bus
    return corr.MessageSent(msg_type=message.type, request_id=corr.request_id_of(message))


def refuse(item: Queued, reason: str, kind: SendErrorKind, ask_kind: corr.FailKind) -> list[Output]:
    """End a send that never left: its ``SendError``, then the failure of its ask (if it is one)."""
    return [SendError(ref=item.ref, reason=reason, kind=kind), *corr.ask_failed(item.ask, ask_kind, reason)]


class Outbox:
    """The waiting queue and the in-flight set of one connection.

    Args:
        max_queue: how many sends may wait; one more is refused with ``queue_full``.
    """

    def __init__(self, *, max_queue: int) -> None:
        self._max_queue = max_queue
        self.waiting: deque[Queued] = deque()
        self.inflight: dict[int, Queued] = {}  # handed to the session, not confirmed yet

    def uses(self, ref: int) -> bool:
        """``ref`` belongs to a send that has not ended yet."""
        return ref in self.inflight or any(q.ref == ref for q in self.waiting)

    @property
    def expiry(self) -> float | None:
        """The earliest time a waiting send expires."""
        return min((q.expires for q in self.waiting), default=None)

    def wait(self, item: Queued) -> list[Output]:
        """Queue ``item`` until a session is ready, or refuse it when the queue is full."""
        if len(self.waiting) >= self._max_queue:
            return refuse(item, "the outbound queue is full", "queue_full", "link_lost")
        self.waiting.append(item)
        return []

    def hand_over(self, item: Queued) -> None:
        """``item`` goes to the session now: from here on it is never sent again."""
        self.inflight[item.ref] = item

    def expire(self, now: float, last_error: str) -> list[Output]:
        """Fail every waiting send whose time is up."""
        out: list[Output] = []
        for q in [q for q in self.waiting if q.expires <= now]:
            self.waiting.remove(q)
            why = "not connected to the hub in time"
            if last_error:
                why += f" (last error: {last_error})"
            out += refuse(q, why, "timeout", "timeout")
        return out

    def cancel(self, ask_id: str) -> list[Output] | None:
        """Drop the waiting send of ask ``ask_id`` and end it; None when no waiting send is that ask."""
        queued = next((q for q in self.waiting if q.ask is not None and q.ask.ask_id == ask_id), None)
        if queued is None:
            return None
        self.waiting.remove(queued)  # never sent: drop it, end the send and the ask
        return refuse(queued, "the ask was cancelled before it was sent", "closed", "cancelled")

    def fail_waiting(self, reason: str, kind: Literal["closed", "gave_up"]) -> list[Output]:
        """Fail every waiting send (the client closed, or the reconnect policy gave up)."""
        out: list[Output] = []
        for q in self.waiting:
            out += refuse(q, reason, kind, "link_lost")
        self.waiting.clear()
        return out

    def confirmed(self, refs: tuple[int, ...]) -> list[Output]:
        """The transport wrote the frame completing ``refs``."""
        out: list[Output] = []
        for ref in refs:
            if self.inflight.pop(ref, None) is not None:
                out.append(SendDone(ref=ref))
        return out

    def refused(self, ref: int, reason: str) -> list[Output]:
        """The session refused the send ``ref`` (it will never be written)."""
        return [SendError(ref=ref, reason=reason, kind="refused")] if self.inflight.pop(ref, None) is not None else []

    def not_sent(self, o: FrameNotSent) -> tuple[list[Output], list[str]]:
        """A frame did not make it. Sends that surely never left go back to the queue (Rule 1 still
        holds: the hub never saw them); anything that may have left fails instead.

        Returns:
            The outputs, and the ids of the asks that went back to the queue (the caller stops
            following them until they are handed over again).
        """
        out: list[Output] = []
        requeued: list[str] = []
        for ref in reversed(o.refs):
            item = self.inflight.pop(ref, None)
            if item is None:
                continue
            if o.unsent:
                self.waiting.appendleft(item)
                requeued += [item.ask.ask_id] if item.ask is not None else []
            else:
                out.append(SendError(ref=ref, reason=o.reason, kind="link_lost", maybe_sent=True))
        out.reverse()
        return out, requeued

    def fail_inflight(self, reason: str, kind: Literal["link_lost", "closed"]) -> list[Output]:
        """Fail every send in flight: it may have left, so it is reported, never repeated."""
        out: list[Output] = [
            SendError(ref=ref, reason=reason, kind=kind, maybe_sent=True) for ref in sorted(self.inflight)
        ]
        self.inflight.clear()
        return out
