"""The in-memory hub behind a public client: the real Connection machine, the network in memory.

Theory of operation
-------------------
``AsyncThalovantClient(identity, transport=MemoryHub())`` (``thalovant.testing.MemoryHub``) runs the
same :class:`~thalovant.core.client.connection.Connection` machine as a networked client, in a
:class:`MemoryRuntime` instead of a :class:`~thalovant.shell.runtime.ConnectionRuntime`: each transport
order (``LinkOrder``, ``DropLink``) goes to the hub's order-level transport, which answers at once by
queueing transport facts (a perfect network); they are posted into the machine's inbox in order, at
once while it has room, else by one feeder task. Everything else the machine says goes to the
client's outcome sink, as with a real network. No thread, socket or timer of its own: time is the
event loop's, so a virtual clock (trio's ``MockClock``) makes a 12 s ask timeout pass at once.

Hub actions a test takes (``MemoryHub.push``, ``drop_link`` ...), from any thread, run on the client's
event loop (:meth:`MemoryRuntime.on_loop`, bound with ``MemoryHub.bind``), so the hub and the machine
are only ever touched from that loop; what the hub says is in the machine's inbox before the action
returns, so a call the test makes next is seen after it (a dropped link is noticed first).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import anyio
import anyio.from_thread
import anyio.lowlevel

from thalovant.core.client import connection as cx
from thalovant.core.machine import Input, Note, NoteLevel, Output
from thalovant.core.trace import RecordingEntropy
from thalovant.shell.driver import Driver, StepRecorder
from thalovant.shell.runtime import Outcomes

__all__ = ["LinkLevelTransport", "MemoryBackend", "MemoryRuntime", "OrderTransport"]

log = logging.getLogger("thalovant")

_LOG_LEVEL = {NoteLevel.DEBUG: logging.DEBUG, NoteLevel.INFO: logging.INFO, NoteLevel.WARNING: logging.WARNING}


class OrderTransport(Protocol):
    """Answers a Connection's transport orders in memory (``thalovant.testing.FakeTransport`` is one)."""

    @property
    def facts(self) -> deque[cx.LinkFact]: ...

    def execute(self, output: Output) -> bool:
        """Run ``output`` if it is a transport order (its answers go to ``facts``); False otherwise."""


class LinkLevelTransport(Protocol):
    """What ``transport=`` accepts for an in-memory network (``thalovant.testing.MemoryHub`` is one)."""

    def attach(self, config: cx.ConnectionConfig) -> OrderTransport:
        """A client with ``config`` starts: the order transport to use."""

    def bind(self, run: Callable[[Callable[[], None]], None] | None) -> None:
        """Route the hub's own actions through ``run`` (None: stop routing)."""


class MemoryRuntime:
    """Drives a Connection whose transport orders are answered in memory (see the module docstring).

    Args:
        machine: the Connection.
        transport: answers its orders.
        outcomes: receives every user-facing output, on the event loop thread.
        recorder / entropy: record the steps (``trace=``), as :class:`~thalovant.shell.driver.Driver` does.
        hub: the hub to bind for the duration of :meth:`run` (its actions then run on this loop).
    """

    def __init__(
        self,
        machine: cx.Connection,
        transport: OrderTransport,
        *,
        outcomes: Outcomes,
        recorder: StepRecorder | None = None,
        entropy: RecordingEntropy | None = None,
        hub: LinkLevelTransport | None = None,
    ) -> None:
        self.machine = machine
        self.transport = transport
        self.outcomes = outcomes
        self.driver = Driver(machine, recorder=recorder, entropy=entropy, stop_when=lambda: machine.finished)
        self.done = anyio.Event()
        self._hub = hub
        self._wake = anyio.Event()
        self._feeding = False  # the feeder holds a fact it is waiting to post: nobody may overtake it
        self._loop_thread: int | None = None
        self._token: Any = None

    def __repr__(self) -> str:
        return f"<MemoryRuntime {self.machine!r} pending={len(self.transport.facts)}>"

    async def run(self) -> None:
        """Run until the machine finishes or :meth:`stop` is called."""
        self._loop_thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()
        if self._hub is not None:
            self._hub.bind(self.on_loop)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._feed)
                try:
                    await self.driver.run(self._execute)
                finally:
                    tg.cancel_scope.cancel()
        finally:
            if self._hub is not None:
                self._hub.bind(None)
            self._loop_thread = None
            self.done.set()

    def stop(self) -> None:
        self.driver.close()

    async def post(self, inp: Input) -> bool:
        return await self.driver.post(inp)

    def post_nowait(self, inp: Input) -> bool:
        return self.driver.post_nowait(inp)

    async def _execute(self, out: Output) -> None:
        if self.transport.execute(out):
            self._push_facts()
        elif isinstance(out, Note):
            log.log(_LOG_LEVEL.get(out.level, logging.DEBUG), "%s", out.text)
        else:
            self.outcomes(out)

    def _push_facts(self) -> None:
        """Post the transport's answers now, in order, while the inbox has room; the feeder does the rest."""
        facts = self.transport.facts
        while facts and not self._feeding:
            try:
                posted = self.driver.post_nowait(facts[0])
            except anyio.WouldBlock:
                break
            facts.popleft()
            if not posted:
                facts.clear()  # the driver stopped: nobody will read them
        if facts:
            self._wake.set()

    async def _feed(self) -> None:
        """Post the answers :meth:`_push_facts` could not, in order, waiting for room."""
        facts = self.transport.facts
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while facts:
                self._feeding = True
                posted = await self.driver.post(facts.popleft())
                self._feeding = False
                if not posted:
                    facts.clear()
                    return

    def on_loop(self, action: Callable[[], None]) -> None:
        """Run a hub ``action`` on this runtime's event loop (from any thread), then deliver its answers."""

        def run_and_wake() -> None:
            action()
            self._push_facts()

        if self._loop_thread is None or threading.get_ident() == self._loop_thread:
            run_and_wake()
            return
        try:
            anyio.from_thread.run_sync(run_and_wake, token=self._token)
        except RuntimeError:  # the loop just ended: nothing runs there any more, so run it here
            action()


class MemoryBackend:
    """The engine backend for a :class:`LinkLevelTransport` (``transport=MemoryHub()``)."""

    def __init__(self, hub: LinkLevelTransport) -> None:
        self.hub = hub

    def __repr__(self) -> str:
        return f"<MemoryBackend {self.hub!r}>"

    def runtime(
        self,
        config: cx.ConnectionConfig,
        *,
        entropy: Any,
        outcomes: Outcomes,
        recorder: StepRecorder | None,
        recording: RecordingEntropy | None,
    ) -> MemoryRuntime:
        """A fresh Connection for ``config`` over the hub's in-memory transport."""
        transport = self.hub.attach(config)
        machine = cx.Connection(config=config, entropy=entropy)
        return MemoryRuntime(machine, transport, outcomes=outcomes, recorder=recorder, entropy=recording, hub=self.hub)
