"""0.4.7's fakes fire ``on()`` handlers from their own ``push(...)``: the handler has run when ``push`` returns.

In 0.4.7 a handler registered with ``client.on`` was the transport's handler itself, so a fake that
calls its handlers from ``push`` on the test's thread saw them run before ``push`` returned, and
tests assert right after it. Here the client hands the event to its loop and the transport's thread
waits (bounded) until the ``on()`` handlers ran; on the loop's own thread, and inside the client's
own calls to the transport (a fake answering from inside ``emit_event``), nothing ever waits. Before
this, the first three tests saw no event at all (the push returned before delivery).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

from tests.compat.fakes import BusFake, bus_identity
from thalovant import AsyncThalovantClient, ThalovantClient
from thalovant.shell import bus_transport

WAIT = 5.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class FakeTransport(BusFake):
    """A 0.4.7 user's fake: ``emit_event`` answers ``ping`` with ``pong`` from inside itself."""

    def emit_event(self, event_type: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        super().emit_event(event_type, data, context)
        if event_type == "ping":
            self.push("pong", {"n": data.get("n")})


identity = bus_identity


def test_the_handler_has_run_when_push_returns() -> None:
    transport = FakeTransport()
    with ThalovantClient(identity(), transport=transport) as client:
        events: list[Any] = []
        threads: list[int] = []

        def handler(event: Any) -> None:
            threads.append(threading.get_ident())
            events.append(event)

        subscription = client.on("custom.event", handler)
        for n in range(3):
            transport.push("custom.event", {"n": n})
            assert [event.data["n"] for event in events] == list(range(n + 1))
        subscription.close()
        transport.push("custom.event", {"n": 99})
        assert len(events) == 3
        assert threading.get_ident() not in threads  # handlers still run on a worker thread


def test_a_push_from_another_thread_waits_for_the_handler_too() -> None:
    transport = FakeTransport()
    with ThalovantClient(identity(), transport=transport) as client:
        seen: list[int] = []
        with client.on("custom.event", lambda event: seen.append(event.data["n"]), session_id="wanted"):
            after_push: list[list[int]] = []

            def pusher() -> None:
                transport.push("custom.event", {"n": 1}, {"session": {"session_id": "other"}})
                transport.push("custom.event", {"n": 2}, {"session": {"session_id": "wanted"}})
                after_push.append(list(seen))

            thread = threading.Thread(target=pusher)
            thread.start()
            thread.join(WAIT)
            assert after_push == [[2]]


def test_listen_has_a_pushed_event_buffered_when_push_returns() -> None:
    transport = FakeTransport()
    with ThalovantClient(identity(), transport=transport) as client:
        events = client.listen("custom.event", timeout=0, max_events=1)  # timeout=0: what is buffered
        transport.push("custom.event", {"n": 5})
        assert [event.data for event in events] == [{"n": 5}]


def test_a_handler_that_never_returns_holds_push_only_for_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_transport, "DELIVER_WAIT", 0.3)
    transport = FakeTransport()
    release = threading.Event()
    with ThalovantClient(identity(), transport=transport) as client:
        with client.on("custom.event", lambda event: release.wait(WAIT)):
            started = time.monotonic()
            transport.push("custom.event", {"n": 1})
            took = time.monotonic() - started
            release.set()
    assert 0.25 <= took < 0.3 + 0.2


def test_a_handler_fired_inside_emit_event_may_call_the_client() -> None:
    """The fake answers from inside ``emit_event``: that thread never waits, so a handler that
    emits itself (on the client's one worker) is not stuck behind it."""
    transport = FakeTransport()
    with ThalovantClient(identity(), transport=transport) as client:
        done = threading.Event()

        def on_pong(event: Any) -> None:
            client.emit("after.pong", {"n": event.data["n"]})
            done.set()

        with client.on("pong", on_pong):
            started = time.monotonic()
            client.emit("ping", {"n": 1})
            assert done.wait(WAIT)
            assert time.monotonic() - started < 1.0  # far below DELIVER_WAIT
    assert [kind for kind, _, _ in transport.emitted] == ["ping", "after.pong"]


@pytest.mark.anyio
async def test_async_client_push_on_the_loop_thread_never_blocks() -> None:
    transport = FakeTransport()
    async with AsyncThalovantClient(identity(), transport=transport) as client:
        ran = anyio.Event()
        values: list[int] = []

        async def handler(event: Any) -> None:
            values.append(event.data["n"])
            ran.set()

        with client.on("custom.event", handler):
            started = time.monotonic()
            transport.push("custom.event", {"n": 7})  # the loop's own thread: it cannot wait for itself
            assert time.monotonic() - started < 0.1
            assert values == []
            with anyio.fail_after(WAIT):
                await ran.wait()
        assert values == [7]


@pytest.mark.anyio
async def test_async_client_push_from_a_thread_waits_for_the_coroutine_handler() -> None:
    transport = FakeTransport()
    async with AsyncThalovantClient(identity(), transport=transport) as client:
        values: list[int] = []

        async def handler(event: Any) -> None:
            await anyio.sleep(0.01)
            values.append(event.data["n"])

        with client.on("custom.event", handler):
            await anyio.to_thread.run_sync(transport.push, "custom.event", {"n": 1})
            assert values == [1]


@pytest.mark.anyio
async def test_async_client_handler_fired_inside_emit_event() -> None:
    transport = FakeTransport()
    async with AsyncThalovantClient(identity(), transport=transport) as client:
        pongs: list[int] = []
        ponged = anyio.Event()

        def on_pong(event: Any) -> None:
            pongs.append(event.data["n"])
            ponged.set()

        with client.on("pong", on_pong):
            with anyio.fail_after(1.0):  # far below DELIVER_WAIT: emit_event's thread never waited
                await client.emit("ping", {"n": 3})
                await ponged.wait()
        assert pongs == [3]


@pytest.mark.anyio
async def test_deliveries_nobody_waits_for_keep_nothing_behind() -> None:
    """Events pushed on the loop's thread, or fired inside emit_event, wait for nothing: the client
    keeps no record of them (a record is kept only while a transport's thread waits)."""
    transport = FakeTransport()
    async with AsyncThalovantClient(identity(), transport=transport) as client:
        seen = anyio.Event()
        count = 0

        def handler(event: Any) -> None:
            nonlocal count
            count += 1
            if count == 101:
                seen.set()

        with client.on("pong", handler):
            for n in range(100):
                transport.push("pong", {"n": n})
            await client.emit("ping", {"n": 100})
            with anyio.fail_after(WAIT):
                await seen.wait()
            assert client._listeners._book.take() == []  # type: ignore[attr-defined]
