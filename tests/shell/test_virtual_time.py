"""``VirtualTimeLoop``: asyncio on virtual time (the idle loop jumps to its next timer)."""

from __future__ import annotations

import asyncio
import threading
import time

import anyio
import pytest

from thalovant.shell.virtual_time import VirtualTimeLoop


def test_sleeps_and_timeouts_take_no_real_time() -> None:
    async def main() -> tuple[float, bool]:
        start = anyio.current_time()
        await anyio.sleep(3600)
        with anyio.move_on_after(60) as scope:
            await anyio.Event().wait()
        return anyio.current_time() - start, scope.cancelled_caught

    real = time.monotonic()
    virtual, cancelled = anyio.run(main, backend="asyncio", backend_options={"loop_factory": VirtualTimeLoop})
    assert virtual == pytest.approx(3660) and cancelled
    assert time.monotonic() - real < 2


def test_without_a_timer_it_waits_for_real_for_another_thread() -> None:
    loop = VirtualTimeLoop()
    try:
        future: asyncio.Future[str] = loop.create_future()
        threading.Timer(0.05, loop.call_soon_threadsafe, (future.set_result, "woken")).start()
        assert loop.run_until_complete(future) == "woken"
        assert loop.time() == 0.0 and loop.jumped == 0.0  # no timer was due: nothing jumped
        with pytest.raises(ValueError):
            loop.advance(-1)
        assert "VirtualTimeLoop" in repr(loop)
    finally:
        loop.close()
