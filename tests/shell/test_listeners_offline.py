"""Listeners and subscriptions (``thalovant.shell.listeners``) on their own: fan-out, filters, limits, endings."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.errors import ThalovantConnectionError
from thalovant.shell.listeners import Listener, ListenerRegistry, Subscription

pytestmark = pytest.mark.anyio

WAIT = 5.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def speak(text: str, **context: str) -> ThalovantEvent:
    return ThalovantEvent(type="speak", data={"utterance": text}, context=context)


def listener(registry: ListenerRegistry, *types: str, **kwargs: Any) -> Listener:
    return registry.add(Listener(registry, EventFilter(types=types or ("*",)), **kwargs))


async def drain(source: Listener) -> list[str]:
    with anyio.fail_after(WAIT):
        return [str(e.data.get("utterance", e.type)) async for e in source]


async def test_publish_fans_out_to_every_matching_listener() -> None:
    registry = ListenerRegistry()
    speaks = listener(registry, "speak", max_events=2)
    everything = listener(registry, "*", max_events=3)
    registry.publish(speak("one"))
    registry.publish(ThalovantEvent(type="mycroft.ready"))
    registry.publish(speak("two"))
    assert await drain(speaks) == ["one", "two"]
    assert await drain(everything) == ["one", "mycroft.ready", "two"]
    assert len(registry) == 0  # a finished listener leaves the registry


async def test_session_filter_and_predicate_select_events() -> None:
    registry = ListenerRegistry()
    flt = EventFilter(types=("speak",), session_id="s1")
    mine = registry.add(Listener(registry, flt, predicate=lambda e: "keep" in e.data["utterance"], max_events=1))
    registry.publish(speak("keep but other session", session_id="s2"))
    registry.publish(speak("drop: predicate says no", session_id="s1"))
    registry.publish(speak("keep this", session_id="s1"))
    assert await drain(mine) == ["keep this"]


async def test_a_raising_predicate_skips_the_event_for_that_listener_only(caplog: pytest.LogCaptureFixture) -> None:
    registry = ListenerRegistry()

    def broken(event: ThalovantEvent) -> bool:
        raise ValueError("bug in user code")

    picky = listener(registry, "speak", predicate=broken, timeout=0.0)
    plain = listener(registry, "speak", max_events=1)
    with caplog.at_level(logging.ERROR, logger="thalovant"):
        registry.publish(speak("hello"))
    assert await drain(plain) == ["hello"]
    assert await drain(picky) == []
    assert "predicate raised" in caplog.text


async def test_a_slow_consumer_loses_the_oldest_events_and_counts_them() -> None:
    registry = ListenerRegistry()
    slow = listener(registry, "speak", buffer=2, max_events=2)
    for n in range(5):
        registry.publish(speak(f"n{n}"))
    assert slow.dropped == 3
    assert await drain(slow) == ["n3", "n4"]


async def test_an_overflowing_listener_warns_once_and_counts_every_drop(caplog: pytest.LogCaptureFixture) -> None:
    registry = ListenerRegistry()
    slow = listener(registry, "speak", buffer=10)
    with caplog.at_level(logging.WARNING, logger="thalovant"):
        for n in range(5000):
            registry.publish(speak(f"n{n}"))
    assert (slow.dropped, slow.buffered) == (4990, 10)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "oldest events are dropped" in caplog.text


async def test_timeout_ends_the_iteration_quietly() -> None:
    registry = ListenerRegistry()
    quiet = listener(registry, "speak", timeout=0.05)
    assert await drain(quiet) == []
    assert len(registry) == 0


async def test_fail_raises_once_then_the_listener_is_closed() -> None:
    registry = ListenerRegistry()
    doomed = listener(registry, "speak")
    registry.publish(speak("before the failure"))
    registry.fail_all(ThalovantConnectionError("gave up"))
    with anyio.fail_after(WAIT):
        assert (await doomed.__anext__()).data["utterance"] == "before the failure"
        with pytest.raises(ThalovantConnectionError, match="gave up"):
            await doomed.__anext__()
        with pytest.raises(StopAsyncIteration):
            await doomed.__anext__()


async def test_close_wakes_a_waiting_consumer() -> None:
    registry = ListenerRegistry()
    waiting = listener(registry, "speak")
    got: list[list[str]] = []

    async def consume() -> None:
        got.append(await drain(waiting))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()  # the consumer is parked on an empty listener
        await waiting.aclose()
    assert got == [[]]
    registry.publish(speak("after close"))
    assert len(registry) == 0


async def test_an_event_wakes_a_waiting_consumer() -> None:
    registry = ListenerRegistry()
    waiting = listener(registry, "speak", max_events=1)
    got: list[list[str]] = []

    async def consume() -> None:
        got.append(await drain(waiting))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        registry.publish(speak("wake up"))
    assert got == [["wake up"]]


async def test_subscription_runs_sync_and_async_handlers_in_order_and_survives_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ListenerRegistry()
    seen: list[str] = []
    done = anyio.Event()

    async def handler(event: ThalovantEvent) -> None:
        text = str(event.data["utterance"])
        if text == "boom":
            raise RuntimeError("handler bug")
        seen.append(text)
        if text == "last":
            done.set()

    sub = Subscription(listener(registry, "speak"), handler, "speak")
    with caplog.at_level(logging.ERROR, logger="thalovant"):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sub.run)
            for text in ("first", "boom", "last"):
                registry.publish(speak(text))
            with anyio.fail_after(WAIT):
                await done.wait()
            sub.close()
    assert seen == ["first", "last"]
    assert (sub.handled, sub.failed) == (2, 1)
    assert "keeps running" in caplog.text


async def test_subscription_with_a_custom_call_and_as_a_context_manager() -> None:
    registry = ListenerRegistry()
    calls: list[str] = []
    done = anyio.Event()

    async def call(handler: object, event: ThalovantEvent) -> None:
        calls.append(f"via call: {event.data['utterance']}")
        done.set()

    with Subscription(listener(registry, "speak"), print, "speak", call=call) as sub:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sub.run)
            registry.publish(speak("x"))
            with anyio.fail_after(WAIT):
                await done.wait()
            sub.unsubscribe()
    assert calls == ["via call: x"] and sub.handled == 1
    assert len(registry) == 0


async def test_settle_waits_until_the_consumer_comes_back_or_the_event_is_dropped() -> None:
    registry = ListenerRegistry()
    source = listener(registry, "speak", buffer=1)
    registry.publish(speak("one"))
    assert (source.accepted, source.settled) == (1, 0)
    registry.publish(speak("two"))  # the buffer holds one: "one" is dropped, which settles it
    assert (source.accepted, source.settled, source.dropped) == (2, 1, 1)
    with anyio.fail_after(WAIT):
        await source.settle(1)
    assert (await source.__anext__()).data["utterance"] == "two"
    assert source.settled == 1  # taken, not yet done with
    with anyio.move_on_after(0.05):
        await source.settle(2)
    assert source.settled == 1
    with anyio.move_on_after(0.05):
        await source.__anext__()  # the consumer came back for more: done with "two"
    assert source.settled == 2
    source.close()
    with anyio.fail_after(WAIT):
        await source.settle(99)  # a closed listener settles everything


async def test_a_subscription_marks_its_listener_awaited() -> None:
    registry = ListenerRegistry()
    plain = listener(registry, "speak")
    sub = Subscription(listener(registry, "speak"), lambda event: None, "speak")
    assert not plain.awaited and sub._listener.awaited
