"""The one loop that runs a core machine: inbox in, ``handle``, outputs out.

Theory of operation
-------------------
A :class:`Driver` owns exactly one machine. Everything that happens to the
machine arrives through one inbox (an anyio memory object stream): facts from
link reader tasks, user commands, and results of spawned effects. The loop:

1. ask the machine for its ``deadline``;
2. wait for the next inbox item, but no longer than the deadline; if the wait
   runs out, the input is a ``Tick()``. Once the deadline has passed, the inputs
   that were already queued when the loop saw it pass are taken first (at most
   that many, so a flood never starves the Tick): an input that arrived before
   a deadline is handled before that deadline's Tick, even when the loop was
   held past the deadline (a slow ``execute``). A pong queued at t=10.1 is not
   a ping unanswered at t=15 because a send held the loop until t=16;
3. read the clock once and call ``machine.handle(inp, now=now)``;
4. hand the step to the recorder (if any), with the entropy drawn during it
   (the trace format is :mod:`thalovant.core.trace`);
5. ``await execute(out)`` for each output, in order;
6. stop when the machine reports it is finished, or after :meth:`Driver.close`.

Waking early is harmless by contract (a Tick before the deadline does
nothing), so the loop never tries to be precise. Memory object streams lose
nothing when a receive is cancelled, so a deadline never drops an input.

The driver spawns no tasks. Cancelling the task that runs :meth:`Driver.run`
stops it at the next await; nothing is left behind. ``execute`` must not
block for long: it runs on the driver's task, so timers wait while it runs.
Slow effects belong in their own tasks that post a result fact back.

The run ends when the machine says it is ``finished`` (every core machine has it:
:class:`~thalovant.core.machine.Machine`); pass ``stop_when`` to decide otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from thalovant.core.machine import Input, Machine, Output, Tick
from thalovant.core.trace import RecordingEntropy

__all__ = ["Driver", "StepRecorder"]


_STALE_TICK_LIMIT = 1000


class StepRecorder(Protocol):
    """What the driver needs from a recorder; :class:`thalovant.core.trace.Recorder` fits."""

    def record_step(
        self,
        now: float,
        inp: Input,
        outputs: Iterable[Output],
        deadline: float | None,
        entropy: Iterable[str] | None = None,
    ) -> object:
        """Store one step: the input at ``now``, the outputs, the new deadline and hex draws."""


class Driver:
    """Run one machine from one inbox.

    Args:
        machine: a :class:`~thalovant.core.machine.Machine` (``handle(inp, *, now)``, ``deadline``,
            ``state``, ``finished``).
        clock: the monotonic clock (seconds); ``anyio.current_time`` by default.
        recorder: optional duck-typed :class:`StepRecorder`.
        entropy: the :class:`~thalovant.core.trace.RecordingEntropy` the machine
            draws from; its draws go to the recorder with each step. Leave it
            None when the recorder was given the wrapper itself.
        stop_when: overrides the "machine is finished" test.
        inbox_size: how many inputs may wait before :meth:`post` blocks.
        taken: called with each input as the loop takes it from the inbox (before ``handle``).
    """

    def __init__(
        self,
        machine: Machine[Any],
        *,
        clock: Callable[[], float] = anyio.current_time,
        recorder: StepRecorder | None = None,
        entropy: RecordingEntropy | None = None,
        stop_when: Callable[[], bool] | None = None,
        inbox_size: int = 256,
        taken: Callable[[Input], None] | None = None,
    ) -> None:
        self.machine = machine
        self._clock = clock
        self._recorder = recorder
        self._entropy = entropy
        self._stop_when = stop_when
        self._taken = taken
        send: MemoryObjectSendStream[Input]
        receive: MemoryObjectReceiveStream[Input]
        send, receive = anyio.create_memory_object_stream[Input](inbox_size)
        self._send = send
        self._receive = receive
        self._closed = False
        self._running = False
        self._owed: int | None = None  # inputs queued when the loop saw the deadline pass, not yet taken
        self.steps = 0

    def __repr__(self) -> str:
        return f"<Driver {type(self.machine).__name__} steps={self.steps} closed={self._closed}>"

    @property
    def finished(self) -> bool:
        """True once the machine reports it is done."""
        if self._stop_when is not None:
            return self._stop_when()
        return self.machine.finished

    # -- the inbox -------------------------------------------------------------------------------

    async def post(self, inp: Input) -> bool:
        """Queue an input, waiting while the inbox is full.

        Returns:
            False if the driver is closed (the input is dropped), else True.
        """
        if self._closed:
            return False
        try:
            await self._send.send(inp)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def post_nowait(self, inp: Input) -> bool:
        """Queue an input without waiting.

        Returns:
            False if the driver is closed (the input is dropped), else True.

        Raises:
            anyio.WouldBlock: the inbox is full (a caller bug or a stuck driver).
        """
        if self._closed:
            return False
        try:
            self._send.send_nowait(inp)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def close(self) -> None:
        """Stop the loop after the current step; inputs still queued are dropped."""
        self._closed = True
        self._send.close()

    # -- the loop --------------------------------------------------------------------------------

    async def run(self, execute: Callable[[Output], Awaitable[None]]) -> None:
        """Drive the machine until it finishes or :meth:`close` is called.

        Args:
            execute: carries out one output order; called in order, on this task.

        Raises:
            RuntimeError: ``run`` is already running, or the machine keeps a
                deadline in the past after being ticked (a machine bug).
        """
        if self._running:
            raise RuntimeError("Driver.run is already running")
        self._running = True
        stale = 0
        try:
            while not self._closed and not self.finished:
                deadline = self.machine.deadline
                inp = await self._next_input(deadline)
                if inp is None:
                    break
                if self._taken is not None and not isinstance(inp, Tick):
                    self._taken(inp)
                now = self._clock()
                outputs = self._step(inp, now)
                if isinstance(inp, Tick) and deadline is not None and now >= deadline:
                    stale = stale + 1 if self.machine.deadline == deadline else 0
                    if stale >= _STALE_TICK_LIMIT:
                        raise RuntimeError(f"{type(self.machine).__name__} keeps a past deadline after Tick")
                for out in outputs:
                    await execute(out)
        finally:
            self._running = False
            self._closed = True
            self._send.close()
            self._receive.close()

    async def _next_input(self, deadline: float | None) -> Input | None:
        wait = math.inf if deadline is None else deadline - self._clock()
        if wait <= 0:
            return await self._overdue_input()
        self._owed = None
        with anyio.move_on_after(wait):
            try:
                return await self._receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return None
        return Tick()

    async def _overdue_input(self) -> Input | None:
        """The deadline has passed: first what was queued before it (counted once), then the Tick."""
        await anyio.lowlevel.checkpoint()
        if self._owed is None:
            stats = self._receive.statistics()
            self._owed = stats.current_buffer_used + stats.tasks_waiting_send
        if self._owed > 0:
            self._owed -= 1
            try:
                return self._receive.receive_nowait()
            except anyio.WouldBlock:
                pass
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return None
        self._owed = None
        return Tick()

    def _step(self, inp: Input, now: float) -> list[Output]:
        outputs: list[Output] = self.machine.handle(inp, now=now)
        self.steps += 1
        if self._recorder is not None:
            draws = self._entropy.take() if self._entropy is not None else None
            self._recorder.record_step(now, inp, tuple(outputs), self.machine.deadline, draws)
        return outputs
