"""``connect()`` raises at ``connect_timeout`` (+ at most 0.2 s) whatever a hostile peer on 127.0.0.1 does.

Each peer accepts TCP and then stays silent or trickles bytes: before the WebSocket upgrade, after
it, in an HTTP answer, or where an MQTT broker should send its CONNACK. ``connect()`` used to raise
2 s late (3.05 s for ``connect_timeout=1``): its failure closed the half-open link politely and
waited out the close grace for a goodbye the peer never sends. A link that never became ready is
now dropped at once.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

import thalovant
from tests.shell.hostile import (
    Handler,
    http_trickle,
    identity_for,
    loopback_server,
    silent,
    upgrade_then_silent,
    upgrade_then_trickle,
)
from thalovant.testing import THROWAWAY_ACCESS_KEY

pytestmark = pytest.mark.anyio

TIMEOUT = 1.0
SLACK = 0.2  # the timing promise: a public wait ends within this long after its timeout

PEERS: dict[str, tuple[str, Handler]] = {
    "wss-silent-before-upgrade": ("wss", silent),
    "wss-silent-after-upgrade": ("wss", upgrade_then_silent),
    "wss-trickle-after-upgrade": ("wss", upgrade_then_trickle),
    "https-silent": ("https", silent),
    "https-trickle": ("https", http_trickle),
    "mqtt-silent-broker": ("mqtt", silent),
}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("peer", list(PEERS))
async def test_connect_raises_at_its_timeout(peer: str) -> None:
    protocol, handler = PEERS[peer]
    async with loopback_server(handler) as port:
        identity = identity_for(protocol, port, password="a-throwaway-password", access_key=THROWAWAY_ACCESS_KEY)
        client = thalovant.AsyncThalovantClient(
            identity, protocol=protocol, connect_timeout=TIMEOUT, noise_key_file=False
        )
        started = anyio.current_time()
        with anyio.fail_after(TIMEOUT + 5), pytest.raises(thalovant.ThalovantTimeoutError) as caught:
            await client.connect()
        elapsed = anyio.current_time() - started
        await client.close()
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK, f"{peer}: raised after {elapsed:.3f} s"
    assert f"within {TIMEOUT:g} s" in str(caught.value)


def test_the_blocking_client_raises_at_its_timeout_too() -> None:
    async def scenario() -> float:
        async with loopback_server(upgrade_then_silent) as port:
            identity = identity_for("wss", port, password="a-throwaway-password", access_key=THROWAWAY_ACCESS_KEY)
            client = thalovant.ThalovantClient(identity, protocol="wss", connect_timeout=TIMEOUT, noise_key_file=False)
            started = anyio.current_time()
            with pytest.raises(thalovant.ThalovantTimeoutError):
                await anyio.to_thread.run_sync(client.connect)
            elapsed = anyio.current_time() - started
            await anyio.to_thread.run_sync(client.close)
            return elapsed

    elapsed = anyio.run(scenario)
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK, f"raised after {elapsed:.3f} s"
