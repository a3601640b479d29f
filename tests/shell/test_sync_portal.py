"""The one blocking portal, offline: life cycle, calls, short-lived loops, iteration, handlers, stop and signals."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from thalovant.errors import LocalProtocolError
from thalovant.shell.sync.portal import Portal, StopRequest, in_worker_thread, refuse_in_event_loop


class Numbers:
    """An async stream of 0..n-1 that records its closing."""

    def __init__(self, n: int) -> None:
        self._left = list(range(n))
        self.closed = False

    async def __anext__(self) -> int:
        if not self._left:
            raise StopAsyncIteration
        return self._left.pop(0)

    async def aclose(self) -> None:
        self.closed = True


async def loop_thread() -> int:
    return threading.get_ident()


def settle(count: int) -> bool:
    """Wait a moment for portal threads to end; True once ``threading.active_count() <= count``."""
    deadline = time.monotonic() + 5
    while threading.active_count() > count and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count() <= count


def test_a_closed_portal_without_autostart_refuses_calls() -> None:
    portal = Portal()
    assert not portal.is_open and repr(portal) == "<Portal open=False>"
    with pytest.raises(RuntimeError, match="not open"):
        portal.call(loop_thread)
    portal.close()  # closing a closed portal is a no-op


def test_open_calls_run_on_one_background_loop_until_close() -> None:
    before = threading.active_count()
    portal = Portal()
    portal.open()
    portal.open()  # already open: a no-op
    try:
        first, second = portal.call(loop_thread), portal.call(loop_thread)
        assert first == second != threading.get_ident()
        assert portal.call_sync(threading.get_ident) == first
        assert portal.call(anyio.sleep, 0) is None
    finally:
        portal.close()
    portal.close()
    assert not portal.is_open and settle(before)


def test_autostart_opens_the_portal_on_first_use() -> None:
    opened: list[bool] = []
    portal: Portal

    def start() -> None:
        opened.append(True)
        portal.open()

    portal = Portal(autostart=start)
    try:
        assert portal.call(loop_thread) != threading.get_ident()
        portal.call(loop_thread)
        assert opened == [True]
    finally:
        portal.close()


def test_serve_is_held_entered_on_the_loop_until_close() -> None:
    log: list[str] = []

    @asynccontextmanager
    async def serving() -> AsyncIterator[None]:
        log.append("enter")
        yield
        log.append("exit")

    async def before() -> None:
        log.append("before")

    portal = Portal()
    portal.open(serve=serving())
    assert log == ["enter"]
    portal.close(before=before)
    assert log == ["enter", "before", "exit"]


def test_a_failing_serve_raises_from_open_and_leaves_no_thread() -> None:
    before = threading.active_count()

    @asynccontextmanager
    async def refusing() -> AsyncIterator[None]:
        raise LocalProtocolError("no")
        yield  # pragma: no cover

    portal = Portal()
    with pytest.raises(LocalProtocolError, match="no"):
        portal.open(serve=refusing())
    assert not portal.is_open and settle(before)


def test_errors_on_the_way_out_surface_from_close_and_the_loop_still_stops() -> None:
    before = threading.active_count()

    @asynccontextmanager
    async def failing_exit() -> AsyncIterator[None]:
        yield
        raise ValueError("exit failed")

    async def failing_before() -> None:
        raise KeyError("before failed")

    portal = Portal()
    portal.open(serve=failing_exit())
    with pytest.raises(ValueError, match="exit failed"):
        portal.close()
    portal.open()
    with pytest.raises(KeyError):
        portal.close(before=failing_before)
    assert not portal.is_open and settle(before)


def test_run_uses_the_open_loop_or_a_short_lived_one() -> None:
    before = threading.active_count()
    cleaned: list[int] = []

    async def cleanup() -> None:
        cleaned.append(threading.get_ident())

    portal = Portal()
    short = portal.run(loop_thread, after=cleanup)
    assert short != threading.get_ident() and cleaned == [short]
    assert settle(before)
    with pytest.raises(ZeroDivisionError):
        portal.run(lambda: anyio.sleep(1 / 0), after=cleanup)
    assert len(cleaned) == 2  # ``after`` runs when the call fails too
    portal.open()
    try:
        assert portal.run(loop_thread, after=cleanup) == portal.call(loop_thread)
        assert len(cleaned) == 2  # not on the open loop
    finally:
        portal.close()


def test_iterate_blocks_through_an_async_stream_and_closes_it() -> None:
    portal = Portal()
    portal.open()
    try:
        whole = Numbers(3)
        assert list(portal.iterate(whole)) == [0, 1, 2] and whole.closed
        part = Numbers(10)
        items = portal.iterate(part)
        assert next(items) == 0 and not part.closed
        items.close()  # type: ignore[attr-defined]
        assert part.closed
    finally:
        portal.close()


def test_in_worker_thread_runs_a_plain_handler_off_the_loop() -> None:
    seen: list[tuple[int, Any]] = []

    def handler(item: Any) -> None:
        seen.append((threading.get_ident(), item))

    portal = Portal()
    portal.open()
    try:
        loop = portal.call(loop_thread)
        portal.call(in_worker_thread, handler, "event")
    finally:
        portal.close()
    ((thread, item),) = seen
    assert item == "event" and thread not in (loop, threading.get_ident())


def test_blocking_calls_are_refused_inside_an_event_loop() -> None:
    refuse_in_event_loop("never raised outside a loop")

    async def main() -> None:
        refuse_in_event_loop("blocks; use the async class")

    with pytest.raises(LocalProtocolError, match="use the async class"):
        anyio.run(main)


# ---- StopRequest --------------------------------------------------------------------------------


def test_stop_request_wakes_a_waiter_from_another_thread() -> None:
    stop = StopRequest()
    assert not stop.wait(0.01)
    threading.Timer(0.05, stop.set).start()
    assert stop.wait(5)
    stop.clear()
    assert not stop.wait(0)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_request_catches_signals_and_restores_the_handlers(signum: int) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals need the main thread")
    before = signal.getsignal(signum)
    stop, got = StopRequest(), []
    with stop.on_signals((signal.SIGINT, signal.SIGTERM), got.append):
        assert signal.getsignal(signum) is not before
        os.kill(os.getpid(), signum)
        assert stop.wait(5)
    assert got == [signum] and signal.getsignal(signum) is before


def test_stop_request_installs_nothing_when_disabled_or_off_the_main_thread() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []
    with StopRequest().on_signals((signal.SIGTERM,), seen.append, enabled=False):
        seen.append(signal.getsignal(signal.SIGTERM))

    def in_worker() -> None:
        with StopRequest().on_signals((signal.SIGTERM,), seen.append):
            seen.append(signal.getsignal(signal.SIGTERM))

    worker = threading.Thread(target=in_worker)
    worker.start()
    worker.join(5)
    assert seen == [before, before]
