"""Routing what the connection machine reports to the callers that wait for it.

The runtime hands every user-facing output of the
:class:`~thalovant.core.client.connection.Connection` machine to one :class:`Results`
(on the event loop thread). Results keeps one :class:`Slot` per pending send
(by ``ref``) and per pending ask (by ask id), fans events out to the listeners,
and passes status changes on (to the client's engine).

Deadlines. The core owns them: an ask ends by its deadline wherever it is
(``connection`` Rule 2, ``correlate``), a send by its deadline while queued; a
send the transport holds ends by the transport's own timeouts (``send_timeout``
again). The ask waits here only *wait for the core's answer*, with a guard
:data:`GUARD_SLACK` seconds after that same deadline, so that a caller is
never stranded if an answer is lost (e.g. two asks given the same request id
share one slot); the guard is not a second deadline: the core answers first.

A send's wait is different: it ends :data:`SEND_SLACK` after the caller's deadline. The
transport's timeouts start when *its* write starts, and writes go one at a time (MQTT waits
for each PUBACK, HTTP for each POST's answer): a send behind a stalled write would otherwise
be answered only by the guard, ``send_timeout`` + 1 s after the call. The caller then hears
"not taken in time"; the core still holds the message and may write it later, never twice
(``outbox`` Rule 1).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import anyio

from thalovant.core.client import connection as cx
from thalovant.core.client import correlate as corr
from thalovant.core.machine import Output
from thalovant.core.wire.message import HiveMessage
from thalovant.shell.listeners import ListenerRegistry

__all__ = ["GUARD_SLACK", "SEND_SLACK", "Bell", "Results", "Slot", "ask_settled"]

log = logging.getLogger("thalovant")

#: Seconds after a caller's deadline at which a wait stops even without the core's answer (a guard).
GUARD_SLACK = 1.0
#: Seconds after a caller's deadline at which a send's wait ends (see the module docstring).
SEND_SLACK = 0.1


class Bell:
    """Rings whenever one of the slots sharing it is set (an ask's send and ask slots share one)."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        """Return at the next ring (or at once if one came since the last wait)."""
        await self._event.wait()
        self._event = anyio.Event()


class Slot:
    """A one-shot result, set on the event loop thread; the first value wins."""

    def __init__(self, bell: Bell | None = None) -> None:
        self.event = anyio.Event()
        self.value: Output | None = None
        self._bell = bell

    def set(self, value: Output) -> None:
        if self.value is None:
            self.value = value
            self.event.set()
            if self._bell is not None:
                self._bell.ring()


def ask_settled(send: Slot, ask: Slot) -> bool:
    """Whether the core has said all an ask's caller needs.

    That is: the send failed for a reason of its own (not the link: a lost link ends the ask
    as well), or both the send and the ask ended, or the ask's deadline passed (the core's
    ``timeout``) even though the transport still holds the send.
    """
    sent, ended = send.value, ask.value
    if isinstance(sent, cx.SendError) and sent.kind != "link_lost":
        return True
    if sent is not None and ended is not None:
        return True
    return isinstance(ended, corr.AskFailed) and ended.kind == "timeout"


class Results:
    """The runtime's outcome sink for one client.

    Args:
        listeners: where delivered events go.
        on_status: called with every ``StatusChanged``.
    """

    def __init__(self, listeners: ListenerRegistry, on_status: Callable[[cx.StatusChanged], None]) -> None:
        self._listeners = listeners
        self._on_status = on_status
        self._refs = itertools.count(1)
        self._sends: dict[int, Slot] = {}
        self._asks: dict[str, Slot] = {}
        #: Called, in order, with every non-bus frame the hub delivers (binary, mesh, query answers).
        self.frame_handlers: list[Callable[[HiveMessage], None]] = []
        #: Called with every ``SynthWanted`` (a ``synth`` ask wants its speech rendered: the engine sends it).
        self.on_synth: Callable[[corr.SynthWanted], None] = lambda wanted: None

    def __call__(self, output: Output) -> None:
        if isinstance(output, cx.EventDelivered):
            self._listeners.publish(output.event)
        elif isinstance(output, cx.FrameDelivered):
            self._frame(output.message)
        elif isinstance(output, cx.SendDone | cx.SendError):
            slot = self._sends.pop(output.ref, None)
            if slot is not None:
                slot.set(output)
        elif isinstance(output, corr.AskFinished | corr.AskFailed):
            slot = self._asks.pop(output.ask_id, None)
            if slot is not None:
                slot.set(output)
        elif isinstance(output, cx.StatusChanged):
            self._on_status(output)
        elif isinstance(output, corr.SynthWanted):
            self.on_synth(output)
        elif isinstance(output, corr.UnattributedDenial):
            log.warning("the hub refused a message: %s", output.denial.message())

    def _frame(self, message: HiveMessage) -> None:
        if not self.frame_handlers:
            log.debug("ignored a %s frame (nothing handles it)", message.msg_type.value)
        for handler in tuple(self.frame_handlers):
            handler(message)

    def expect_send(self, bell: Bell | None = None) -> tuple[int, Slot]:
        """A fresh send ref and the slot its ``SendDone``/``SendError`` will fill."""
        ref = next(self._refs)
        slot = self._sends[ref] = Slot(bell)
        return ref, slot

    def forget_send(self, ref: int) -> None:
        """Drop the slot of a send the core never received (it will never be answered)."""
        self._sends.pop(ref, None)

    def expect_ask(self, ask_id: str, bell: Bell) -> Slot:
        """The slot the ask's ``AskFinished``/``AskFailed`` will fill."""
        slot = self._asks[ask_id] = Slot(bell)
        return slot

    def forget_ask(self, ask_id: str) -> None:
        self._asks.pop(ask_id, None)

    def fail_pending(self, reason: str) -> None:
        """End every wait still open (the client was closed)."""
        for slot in [*self._sends.values(), *self._asks.values()]:
            slot.set(cx.SendError(ref=0, reason=reason, kind="closed"))

    @staticmethod
    async def wait_send(slot: Slot, deadline: float) -> None:
        """Wait for the core to end a send due at ``deadline``, at most until ``deadline`` + :data:`SEND_SLACK`."""
        with anyio.CancelScope(deadline=deadline + SEND_SLACK):
            await slot.event.wait()

    @staticmethod
    async def wait_ask(send: Slot, ask: Slot, bell: Bell, deadline: float) -> None:
        """Wait until :func:`ask_settled` for an ask due at ``deadline`` (guarded, see the module docstring)."""
        with anyio.CancelScope(deadline=deadline + GUARD_SLACK):
            while not ask_settled(send, ask):
                await bell.wait()
