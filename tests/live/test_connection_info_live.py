"""``connection_info()`` on the real hubs 4.x and 5.x over WebSocket: generation, cipher/encoding, peer, times."""

from __future__ import annotations

import time

import anyio
import pytest

from tests.live.live_support import report_in_summary
from thalovant import AsyncThalovantClient, ThalovantClient

pytestmark = pytest.mark.hub


@pytest.mark.parametrize("generation", [4, 5])
def test_connection_info_on_a_real_hub(request: pytest.FixtureRequest, generation: int) -> None:
    hub = request.getfixturevalue("real_hub" if generation == 4 else "real_hub_v3")
    kwargs = {"auth_encoding": "percent"} if generation == 5 else {}
    before = time.time()
    with ThalovantClient.from_identity_file(hub.identity_path("psk"), protocol="wss", **kwargs) as client:
        info = client.connection_info()
        session_id = client._async.session_id
        health = client.healthcheck()
        started = time.monotonic()
        client.close(timeout=0.5)
        closed_in = time.monotonic() - started
    shown = info.as_dict()
    report_in_summary(request, f"info-{generation}", f"connection info, hub {generation}.x", [f"{shown}"])
    assert info.transport == "wss" and info.phase == "ready" and health.connection == info
    if generation == 4:  # the psk identity: the pre-shared path, AES-GCM over JSON-HEX (spec §5)
        assert (info.generation, info.cipher, info.encoding) == (1, "AES-GCM", "JSON-HEX")
    else:
        assert info.generation == 3 and info.cipher is not None and "ChaChaPoly" in info.cipher
        assert info.encoding is None
    assert info.hub_peer is not None and info.hub_peer.startswith(f"{client._async.useragent}::")
    if generation == 4:  # hub 4.x ends the peer with our session id; hub 5.x with a uuid of its own (seen 2026-12-07)
        assert info.hub_peer.endswith(f"::{session_id}") and info.node_id is not None
    assert info.started_at is not None and info.connected_at is not None and info.connect_ms is not None
    assert before <= info.started_at <= info.connected_at <= time.time()
    assert 0 < info.connect_ms < 10_000
    assert closed_in < 0.5 + 0.2
    assert client.connection_info().phase == "closed" and client.wait_closed(timeout=0)


def test_the_async_client_connects_with_info_on_hub_5(request: pytest.FixtureRequest) -> None:
    hub = request.getfixturevalue("real_hub_v3")

    async def scenario() -> tuple[str, int | None]:
        client = AsyncThalovantClient.from_identity_file(
            hub.identity_path("psk"), protocol="wss", auth_encoding="percent"
        )
        info = await client.connect_with_info()
        await client.close(timeout=0.5)
        assert await client.wait_closed(timeout=0)
        return info.phase, info.generation

    assert anyio.run(scenario) == ("ready", 3)
