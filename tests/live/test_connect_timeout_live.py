"""A ``connect()`` that times out mid-handshake on a real hub leaves no link, socket, task or session behind.

The client reaches hubs 4.x and 5.x through the harness's fault proxy (``tests/harness/faultproxy.py``) set to
``DELAY``: every chunk waits, so the upgrade and the handshake outlive ``connect_timeout``. ``connect()``
raises ``ThalovantTimeoutError`` within its timeout (+0.2 s); the proxy then holds no connection (the client
closed its end and the proxy closed the hub's: the hub ends the session), the process holds no more file
descriptors than before and no task of the client runs; with the proxy back to ``PASS`` the same client
object connects and gets its echo.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import anyio
import pytest

from tests.harness.faultproxy import Fault, FaultProxy, identity_through
from tests.live.live_support import hub_of_generation, need_protocol, report_in_summary, tag
from thalovant import AsyncThalovantClient
from thalovant.errors import ThalovantTimeoutError

pytestmark = [pytest.mark.hub, pytest.mark.anyio]

TIMEOUT = 1.0
SLACK = 0.2
DELAY = 0.4  # per chunk and direction: the upgrade alone takes 0.8 s, the handshake's round trips go past 1 s
SETTLE = 8.0

CELLS = [(g, p) for g in ("hub4", "hub5") for p in ("wss", "https", "mqtt")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def client_tasks() -> int:
    """Running tasks of thalovant's code (anyio names a task after its function)."""
    return sum(task.get_name().startswith("thalovant.") for task in asyncio.all_tasks())


async def eventually(condition: Any, what: str) -> None:
    deadline = anyio.current_time() + SETTLE
    while not condition():
        assert anyio.current_time() < deadline, what
        await anyio.sleep(0.05)


@pytest.mark.parametrize(("generation", "protocol"), CELLS)
async def test_a_connect_that_times_out_mid_handshake_leaves_nothing(
    request: pytest.FixtureRequest, generation: str, protocol: str
) -> None:
    hub = hub_of_generation(request)
    need_protocol(hub, protocol)
    upstream = {"wss": hub.ports.ws, "https": hub.ports.http, "mqtt": hub.ports.mqtt}[protocol]
    kwargs: dict[str, Any] = {"auth_encoding": "percent", "mqtt_layout": "modern"} if generation == "hub5" else {}
    async with FaultProxy(upstream) as proxy:
        identity = identity_through(hub.identity("psk"), protocol, proxy.port)
        fds = open_fds()
        proxy.set(Fault.DELAY, delay=DELAY)
        client = AsyncThalovantClient(identity, protocol=protocol, connect_timeout=TIMEOUT, **kwargs)
        started = anyio.current_time()
        with pytest.raises(ThalovantTimeoutError):
            await client.connect()
        elapsed = anyio.current_time() - started
        moved = (proxy.stats["c2s bytes"], proxy.stats["s2c bytes"])
        await eventually(lambda: proxy.open_connections == 0, "the hub still holds a connection of the connect")
        await eventually(lambda: open_fds() <= fds, f"file descriptors: {open_fds()} > {fds} before")
        assert client_tasks() == 0 and client._engine.runtime is None
        report_in_summary(
            request,
            f"timeout-{generation}-{protocol}",
            f"timed-out connect {generation} {protocol}",
            [f"raised after {elapsed:.3f} s; bytes c2s/s2c before giving up {moved}"],
        )
        assert elapsed < TIMEOUT + SLACK
        assert moved[0] > 0  # the client was mid-way: it had reached the hub and sent its opening

        proxy.set(Fault.PASS)
        client.connect_timeout = 20.0
        marker = tag("after-timeout")
        await client.connect()
        try:
            assert (await client.ask(marker, timeout=10)).text == f"echo: {marker}"
        finally:
            await client.close()
