"""The driver loop with a toy machine, on asyncio and trio (small real timeouts, all bounded)."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.machine import Entropy, Input, Output, Tick
from thalovant.core.trace import Recorder, RecordingEntropy, TraceHeader
from thalovant.shell.driver import Driver

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- a toy machine --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Number(Input):
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule(Input):
    delay: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop(Input):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Echo(Output):
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Fired(Output):
    at: float
    due: float


class ToyState(enum.Enum):
    RUNNING = "running"
    DONE = "done"


class Toy:
    """Echoes numbers (two outputs each), fires one output per scheduled timer, stops on Stop."""

    def __init__(self, entropy: Entropy | None = None) -> None:
        self._state = ToyState.RUNNING
        self._due: list[float] = []
        self.early_ticks = 0
        self.seen: list[Input] = []
        self._entropy = entropy

    @property
    def state(self) -> ToyState:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state is ToyState.DONE

    @property
    def deadline(self) -> float | None:
        return min(self._due) if self._due else None

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        self.seen.append(inp)
        if self._entropy is not None:
            self._entropy(2)
        if isinstance(inp, Number):
            return [Echo(n=inp.n), Echo(n=-inp.n)]
        if isinstance(inp, Schedule):
            self._due.append(now + inp.delay)
            return []
        if isinstance(inp, Stop):
            self._state = ToyState.DONE
            return []
        if isinstance(inp, Tick):
            fired = [Fired(at=now, due=d) for d in sorted(self._due) if d <= now]
            if not fired:
                self.early_ticks += 1
            self._due = [d for d in self._due if d > now]
            return list(fired)
        raise AssertionError(inp)


class Collect:
    def __init__(self) -> None:
        self.outputs: list[Output] = []

    async def __call__(self, out: Output) -> None:
        self.outputs.append(out)


# -- tests ----------------------------------------------------------------------------------------


async def test_inputs_are_processed_and_outputs_executed_in_order() -> None:
    toy = Toy()
    driver = Driver(toy)
    for n in range(1, 51):
        assert driver.post_nowait(Number(n=n))
    await driver.post(Stop())
    done = Collect()
    with anyio.fail_after(3):
        await driver.run(done)
    assert done.outputs == [e for n in range(1, 51) for e in (Echo(n=n), Echo(n=-n))]
    assert driver.finished and driver.steps == 51
    assert await driver.post(Number(n=99)) is False  # closed after the run


async def test_deadline_fires_a_tick_and_inputs_do_not_delay_it() -> None:
    toy = Toy()
    driver = Driver(toy)
    done = Collect()
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run, done)
        await driver.post(Schedule(delay=0.15))
        await driver.post(Schedule(delay=0.05))
        for n in range(3):  # inputs arriving before the deadline are handled at once
            await anyio.sleep(0.01)
            await driver.post(Number(n=n))
        await wait_for(lambda: sum(isinstance(o, Fired) for o in done.outputs) >= 2)
        await driver.post(Stop())
    fired = [o for o in done.outputs if isinstance(o, Fired)]
    assert [f.due for f in fired] == sorted(f.due for f in fired)
    for f in fired:
        assert f.at >= f.due  # never fired before it was due
        assert f.at - f.due < 1.0
    assert fired[0].due - start == pytest.approx(0.05, abs=0.05)
    assert done.outputs.index(Echo(n=0)) < done.outputs.index(fired[0])


async def test_early_wakeups_are_harmless() -> None:
    """A clock slower than anyio's makes every wait end before the machine's deadline."""
    origin = anyio.current_time()

    def slow_clock() -> float:
        return origin + (anyio.current_time() - origin) * 0.5

    toy = Toy()
    driver = Driver(toy, clock=slow_clock)
    done = Collect()
    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run, done)
        await driver.post(Schedule(delay=0.05))
        await wait_for(lambda: any(isinstance(o, Fired) for o in done.outputs))
        await driver.post(Stop())
    assert toy.early_ticks >= 1  # the machine saw Ticks before the deadline ...
    assert sum(isinstance(o, Fired) for o in done.outputs) == 1  # ... and fired exactly once


async def wait_for(cond: Callable[[], bool]) -> None:
    for _ in range(300):  # bounded: at most ~3 s
        if cond():
            return
        await anyio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_close_stops_the_loop_and_drops_later_posts() -> None:
    toy = Toy()
    driver = Driver(toy)
    done = Collect()
    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run, done)
        await driver.post(Number(n=1))
        await anyio.sleep(0.05)
        driver.close()
    assert done.outputs == [Echo(n=1), Echo(n=-1)]
    assert toy.state is ToyState.RUNNING  # stopped by close, not by the machine
    assert driver.post_nowait(Number(n=2)) is False


async def test_finished_attribute_wins_over_state() -> None:
    class Finisher(Toy):
        finished = False

        def handle(self, inp: Input, *, now: float) -> list[Output]:
            out = super().handle(inp, now=now)
            self.finished = isinstance(inp, Number) and inp.n == 3
            return out

    toy = Finisher()
    driver = Driver(toy)
    for n in range(1, 6):
        driver.post_nowait(Number(n=n))
    done = Collect()
    with anyio.fail_after(3):
        await driver.run(done)
    assert done.outputs[-1] == Echo(n=-3)


async def test_cancellation_leaves_no_stray_tasks() -> None:
    before = len(anyio.get_running_tasks())
    toy = Toy()
    driver = Driver(toy)
    with anyio.move_on_after(0.1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(driver.run, Collect())
            await driver.post(Schedule(delay=10))
            await anyio.sleep(5)
    assert len(anyio.get_running_tasks()) == before
    assert driver.post_nowait(Number(n=1)) is False


async def test_run_twice_at_once_is_refused() -> None:
    driver = Driver(Toy())
    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run, Collect())
        await anyio.sleep(0.01)
        with pytest.raises(RuntimeError, match="already running"):
            await driver.run(Collect())
        driver.close()


async def test_machine_that_never_advances_its_deadline_is_reported() -> None:
    class Stuck(Toy):
        @property
        def deadline(self) -> float | None:
            return 0.0

    with anyio.fail_after(5), pytest.raises(RuntimeError, match="past deadline"):
        await Driver(Stuck()).run(Collect())


async def test_recorder_gets_each_step_with_its_entropy_draws() -> None:
    tap = RecordingEntropy(lambda n: bytes(range(n)))
    toy = Toy(entropy=tap)
    times = iter([10.0, 10.5, 11.0])
    recorder = Recorder(TraceHeader(machine="toy"))
    driver = Driver(toy, clock=lambda: next(times, 99.0), recorder=recorder, entropy=tap)
    driver.post_nowait(Schedule(delay=100.0))
    driver.post_nowait(Number(n=7))
    driver.post_nowait(Stop())
    with anyio.fail_after(3):
        await driver.run(Collect())
    steps = [json.loads(line) for line in recorder.lines[1:]]
    assert [s["seq"] for s in steps] == [0, 1, 2]
    assert [s["entropy"] for s in steps] == [["0001"], ["0001"], ["0001"]]
    assert [s["deadline"] for s in steps] == [110.0, 110.0, 110.0]
    assert len(steps[1]["out"]) == 2


async def test_duck_typed_recorder_sees_inputs_outputs_and_deadline() -> None:
    seen: list[tuple[Any, ...]] = []

    class Fake:
        def record_step(
            self, now: float, inp: Input, outputs: Any, deadline: float | None, entropy: Any = None
        ) -> None:
            seen.append((now, inp, tuple(outputs), deadline, entropy))

    driver = Driver(Toy(), clock=lambda: 1.0, recorder=Fake())
    driver.post_nowait(Number(n=2))
    driver.post_nowait(Stop())
    await driver.run(Collect())
    assert seen == [(1.0, Number(n=2), (Echo(n=2), Echo(n=-2)), None, None), (1.0, Stop(), (), None, None)]


@settings(max_examples=40, deadline=None)
@given(ns=st.lists(st.integers(-1000, 1000), max_size=40), size=st.integers(1, 8))
def test_property_order_is_preserved_for_any_inbox_size(ns: list[int], size: int) -> None:
    async def main() -> list[Output]:
        driver = Driver(Toy(), inbox_size=size)
        done = Collect()

        async def feed(post: Callable[[Input], Any]) -> None:
            for n in ns:
                await post(Number(n=n))
            await post(Stop())

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed, driver.post)
            with anyio.fail_after(5):
                await driver.run(done)
        return done.outputs

    assert anyio.run(main) == [e for n in ns for e in (Echo(n=n), Echo(n=-n))]


async def test_input_queued_before_a_deadline_is_handled_before_its_tick() -> None:
    """The loop is held past a deadline (a slow execute): what was already queued comes before the Tick."""
    now = [0.0]
    toy = Toy()
    driver = Driver(toy, clock=lambda: now[0])
    gate = anyio.Event()
    done: list[Output] = []

    async def execute(out: Output) -> None:
        done.append(out)
        if out == Echo(n=1):
            await gate.wait()  # e.g. a large send, awaited on the driver's task

    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run, execute)
        await driver.post(Schedule(delay=5.0))  # due at t=5
        await driver.post(Number(n=1))
        await wait_for(lambda: Echo(n=1) in done)
        driver.post_nowait(Number(n=2))  # arrives at t=0, before the deadline (a pong, say)
        now[0] = 6.0  # the loop is still held when the deadline passes
        gate.set()
        await wait_for(lambda: any(isinstance(o, Fired) for o in done))
        await driver.post(Stop())
    fired = next(o for o in done if isinstance(o, Fired))
    assert done.index(Echo(n=2)) < done.index(fired)


async def test_a_flood_of_inputs_does_not_starve_an_overdue_tick() -> None:
    """Each handled input queues another: the Tick still comes after the inputs queued when it fell due."""
    now = [0.0]
    toy = Toy()
    driver = Driver(toy, clock=lambda: now[0], inbox_size=16)
    gate = anyio.Event()
    done: list[Output] = []
    fed = [0]

    async def execute(out: Output) -> None:
        done.append(out)
        if out == Echo(n=1):
            await gate.wait()
        elif isinstance(out, Echo) and out.n > 1 and fed[0] < 500:  # a bounded flood
            fed[0] += 1
            driver.post_nowait(Number(n=out.n + 1))

    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run, execute)
        await driver.post(Schedule(delay=5.0))  # due at t=5
        await driver.post(Number(n=1))
        await wait_for(lambda: Echo(n=1) in done)
        for n in range(1, 9):
            driver.post_nowait(Number(n=100 * n))  # queued before the deadline
        now[0] = 6.0
        gate.set()
        await wait_for(lambda: any(isinstance(o, Fired) for o in done))
        await driver.post(Stop())
    fired = done.index(next(o for o in done if isinstance(o, Fired)))
    assert [o.n for o in done[:fired] if isinstance(o, Echo) and o.n > 0] == [1, 100, 200, 300, 400, 500, 600, 700, 800]
