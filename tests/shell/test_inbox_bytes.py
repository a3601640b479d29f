"""The runtime's inbox is bounded in bytes as well as in items; listeners are bounded in bytes too."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.client import connection as cx
from thalovant.core.jsontree import weight
from thalovant.core.links.ws import WsMessage
from thalovant.core.machine import Input, Output
from thalovant.shell import runtime as rt
from thalovant.shell.listeners import Listener, ListenerRegistry, event_weight
from thalovant.shell.runtime import INBOX_BYTES, ConnectionRuntime, Endpoint, payload_size

MIB = 1024 * 1024


class Recorder:
    """A stand-in machine (duck-typed like ``Connection``): it only records what it is handed."""

    def __init__(self) -> None:
        self.seen: list[Input] = []
        self.finished = False
        self.deadline = None
        self.state = "running"
        self.two = anyio.Event()

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        self.seen.append(inp)
        if len(self.seen) == 2:
            self.two.set()
        return []


def _fact(size: int) -> cx.LinkFact:
    return cx.LinkFact(epoch=1, fact=WsMessage(data=b"x" * size))


def test_payload_size_counts_what_a_link_read_and_nothing_else() -> None:
    assert payload_size(_fact(10)) == 10
    assert payload_size(cx.LinkFact(epoch=1, fact=WsMessage(data="héllo"))) == 5
    assert payload_size(cx.Connect()) == 0


@pytest.mark.anyio
async def test_a_read_that_would_pass_the_byte_budget_waits_until_the_machine_takes_one() -> None:
    machine = Recorder()
    runtime = ConnectionRuntime(machine, endpoint=Endpoint(host="127.0.0.1", port=1), outcomes=lambda o: None)  # type: ignore[arg-type]
    big = INBOX_BYTES // 2 + 1
    delivered: list[int] = []
    both = anyio.Event()

    async def read(n: int) -> None:
        await runtime.deliver(_fact(big))
        delivered.append(n)
        if len(delivered) == 2:
            both.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(read, 1)
        tg.start_soon(read, 2)
        await anyio.sleep(0.1)
        assert len(delivered) == 1 and runtime.inbox_bytes == big  # the other read waits: 2 x big > budget
        tg.start_soon(runtime.run)
        with anyio.fail_after(5):
            await machine.two.wait()
            await both.wait()
        assert sorted(delivered) == [1, 2] and runtime.inbox_bytes == 0
        runtime.stop()


@pytest.mark.anyio
async def test_one_payload_larger_than_the_budget_still_goes_in_alone() -> None:
    machine = Recorder()
    runtime = ConnectionRuntime(machine, endpoint=Endpoint(host="127.0.0.1", port=1), outcomes=lambda o: None)  # type: ignore[arg-type]
    with anyio.fail_after(5):
        await runtime.deliver(_fact(INBOX_BYTES + 1))
    assert runtime.inbox_bytes == INBOX_BYTES + 1


@pytest.mark.anyio
async def test_a_cancelled_read_gives_its_bytes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "INBOX_BYTES", 100)
    machine = Recorder()
    runtime = ConnectionRuntime(machine, endpoint=Endpoint(host="127.0.0.1", port=1), outcomes=lambda o: None)  # type: ignore[arg-type]
    for _ in range(256):  # fill the inbox in items with empty payloads
        await runtime.deliver(cx.LinkFact(epoch=1, fact=WsMessage(data=b"")))
    with anyio.move_on_after(0.1):
        await runtime.deliver(_fact(50))  # waits for an item slot, then is cancelled
    assert runtime.inbox_bytes == 0


def _event(n: int, size: int) -> ThalovantEvent:
    return ThalovantEvent("speak", {"utterance": f"{n} ".ljust(size, "x")})


def test_a_listener_keeps_at_most_its_byte_budget_and_always_the_newest_event() -> None:
    registry = ListenerRegistry()
    listener = registry.add(Listener(registry, EventFilter(types=("speak",)), buffer=1000, buffer_bytes=1000))
    for n in range(10):
        registry.publish(_event(n, 300))
    assert listener.buffered_bytes <= 1000 and listener.buffered == 3 and listener.dropped == 7
    registry.publish(_event(99, 5000))  # larger than the budget alone: kept, everything older dropped
    assert listener.buffered == 1 and listener.dropped == 10
    assert listener.buffered_bytes == event_weight(_event(99, 5000))


@pytest.mark.anyio
async def test_reading_a_listener_gives_its_bytes_back() -> None:
    registry = ListenerRegistry()
    listener = registry.add(Listener(registry, EventFilter(types=("speak",)), timeout=0, buffer_bytes=10_000))
    registry.publish(_event(1, 300))
    assert listener.buffered_bytes > 300
    assert [e.data["utterance"][:2] async for e in listener] == ["1 "]
    assert listener.buffered_bytes == 0


json_values: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=30,
)


@given(json_values)
def test_weight_is_close_to_the_json_size_and_never_raises(value: Any) -> None:
    import json

    exact = len(json.dumps(value, ensure_ascii=False))
    assert exact / 4 - 8 <= weight(value) <= exact + 8 * exact + 16


@given(json_values, st.integers(min_value=0, max_value=50))
def test_weight_stops_counting_soon_after_its_limit(value: Any, stop_at: int) -> None:
    full = weight(value)
    assert weight(value, stop_at=stop_at) == full or weight(value, stop_at=stop_at) > stop_at


def test_weight_of_a_deep_tree_does_not_recurse() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert weight(deep) > 100_000
