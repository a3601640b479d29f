"""``close(timeout=)`` and ``wait_closed(timeout=)``: a hub that never answers the goodbye cannot hold ``close()``.

The hub is a :class:`~thalovant.testing.FakeHub` behind a real WebSocket on 127.0.0.1
(:class:`tests.shell.hostile.TcpWsHub`): the session becomes ready, then the hub ignores the client's close
frame. ``close(timeout=t)`` returns within ``t`` (+0.2 s) and never raises; ``close()`` keeps its 2 s grace.
``wait_closed`` reports whether a close from another task or thread has finished. On main, ``close`` took no
``timeout`` (TypeError) and ``wait_closed`` did not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
import pytest

import thalovant
from tests.shell.hostile import TcpWsHub, identity_for, loopback_server
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub

pytestmark = pytest.mark.anyio

PASSWORD = "a-throwaway-password"
SLACK = 0.2


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def deaf_hub() -> AsyncIterator[tuple[TcpWsHub, dict[str, object]]]:
    """A ready-making hub that never answers a close frame, and an identity pointing at it."""
    tcp = TcpWsHub(FakeHub(password=PASSWORD))
    async with loopback_server(tcp.serve) as port:
        yield tcp, identity_for("wss", port, password=PASSWORD, access_key=THROWAWAY_ACCESS_KEY)


@pytest.mark.parametrize("limit", [0.0, 0.3, 0.8])
async def test_close_ends_within_its_timeout_when_the_hub_never_answers(limit: float) -> None:
    with anyio.fail_after(10):
        async with deaf_hub() as (tcp, identity):
            await _close_within(tcp, identity, limit)


async def _close_within(tcp: TcpWsHub, identity: dict[str, object], limit: float) -> None:
    client = thalovant.AsyncThalovantClient(identity, protocol="wss", noise_key_file=False, connect_timeout=5)
    await client.connect()
    assert client.connected
    started = anyio.current_time()
    await client.close(timeout=limit)  # no fail_after here: the client's task group must close in its own scope
    elapsed = anyio.current_time() - started
    assert elapsed < limit + SLACK, f"close(timeout={limit}) took {elapsed:.3f} s"
    assert not client.connected
    if limit > 0:
        assert tcp.close_frames == 1  # the goodbye was sent; the hub just never answered it
    assert await client.wait_closed(timeout=0)


async def test_wait_closed_waits_for_a_close_from_another_task() -> None:
    with anyio.fail_after(10):
        async with deaf_hub() as (_, identity):
            await _wait_closed(identity)


async def _wait_closed(identity: dict[str, object]) -> None:
    client = thalovant.AsyncThalovantClient(identity, protocol="wss", noise_key_file=False, connect_timeout=5)
    assert await client.wait_closed(timeout=0)  # never connected: closed
    results: list[bool] = []

    async def waiter() -> None:
        results.append(await client.wait_closed())

    async with anyio.create_task_group() as tg:  # connect and close in the same scope (the client's task group)
        await client.connect()
        started = anyio.current_time()
        assert not await client.wait_closed(timeout=0.2)  # open: the wait runs out, no exception
        assert 0.2 <= anyio.current_time() - started < 0.2 + SLACK
        tg.start_soon(waiter)
        await anyio.sleep(0.05)
        assert results == []
        await client.close(timeout=0.3)
    assert results == [True]


async def test_close_and_wait_closed_reject_a_bad_timeout_by_name() -> None:
    identity = identity_for("wss", 9, password=PASSWORD, access_key=THROWAWAY_ACCESS_KEY)
    client = thalovant.AsyncThalovantClient(identity, protocol="wss", noise_key_file=False)
    for bad in (-1, float("nan"), "2"):
        with pytest.raises(thalovant.ThalovantArgumentError, match="timeout"):
            await client.close(timeout=bad)  # type: ignore[arg-type]
        with pytest.raises(thalovant.ThalovantArgumentError, match="timeout"):
            await client.wait_closed(timeout=bad)  # type: ignore[arg-type]


def test_the_blocking_client_closes_within_its_timeout_too() -> None:
    async def scenario() -> tuple[float, bool, bool]:
        tcp = TcpWsHub(FakeHub(password=PASSWORD))
        async with loopback_server(tcp.serve) as port:
            identity = identity_for("wss", port, password=PASSWORD, access_key=THROWAWAY_ACCESS_KEY)
            client = thalovant.ThalovantClient(identity, protocol="wss", noise_key_file=False, connect_timeout=5)
            await anyio.to_thread.run_sync(client.connect)
            before = client.wait_closed(timeout=0)
            started = anyio.current_time()
            await anyio.to_thread.run_sync(lambda: client.close(timeout=0.4))
            elapsed = anyio.current_time() - started
            return elapsed, before, client.wait_closed(timeout=0)

    elapsed, before, after = anyio.run(scenario)
    assert elapsed < 0.4 + SLACK, f"close(timeout=0.4) took {elapsed:.3f} s"
    assert (before, after) == (False, True)


def test_a_blocking_close_timeout_applies_to_that_close_only() -> None:
    async def scenario() -> tuple[int, int]:
        tcp = TcpWsHub(FakeHub(password=PASSWORD))
        async with loopback_server(tcp.serve) as port:
            identity = identity_for("wss", port, password=PASSWORD, access_key=THROWAWAY_ACCESS_KEY)
            client = thalovant.ThalovantClient(identity, protocol="wss", noise_key_file=False, connect_timeout=5)
            await anyio.to_thread.run_sync(client.connect)
            await anyio.to_thread.run_sync(lambda: client.close(timeout=0))  # dropped at once: no goodbye
            dropped = tcp.close_frames
            await anyio.to_thread.run_sync(client.connect)
            await anyio.to_thread.run_sync(client.close)  # the default 2 s grace again: a polite goodbye
            return dropped, tcp.close_frames

    assert anyio.run(scenario) == (0, 1)
