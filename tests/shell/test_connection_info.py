"""``connection_info()`` / ``connect_with_info()`` / ``ThalovantHealth.connection`` against the in-memory hub.

The info carries what the handshake negotiated (generation, cipher, encoding, the hub's peer id and node id)
and the times the shell measured (``started_at``/``connected_at`` wall clock, ``connect_ms``). On main none of
these existed.
"""

from __future__ import annotations

import json

import anyio
import pytest

import thalovant
from thalovant import AsyncThalovantClient, ThalovantClient, ThalovantConnectionInfo
from thalovant.testing import MemoryHub

IDENTITY = {
    "access_key": "info-access-key-not-shown",
    "password": "info-password-not-shown",
    "default_master": "https://hub.example.invalid",
    "site_id": "kitchen",
}
SECRETS = ("info-access-key-not-shown", "info-password-not-shown")


def _check_negotiated(info: ThalovantConnectionInfo, generation: int) -> None:
    assert info.transport == "wss" and info.phase == "ready" and info.generation == generation
    if generation == 1:
        assert (info.cipher, info.encoding) == ("AES-GCM", "JSON-HEX")  # what the fake hub picks
        assert info.node_id == "fakehub:0.0.0.0"
    else:
        assert info.cipher == "25519_ChaChaPoly_SHA256" and info.encoding is None
    assert info.hub_peer is not None and "::" in info.hub_peer  # the peer id the hub gave us
    assert info.started_at is not None and info.connected_at is not None and info.connect_ms is not None
    assert info.started_at <= info.connected_at
    assert 0 <= info.connect_ms <= (info.connected_at - info.started_at) * 1000 + 50
    assert info.reconnects == 0
    shown = repr(info) + json.dumps(info.as_dict())
    assert not any(secret in shown for secret in SECRETS)


@pytest.mark.parametrize("generation", [1, 3])
def test_the_blocking_client_reports_what_it_negotiated(generation: int) -> None:
    client = ThalovantClient(IDENTITY, transport=MemoryHub(generation=generation), protocol="wss")
    before = client.connection_info()
    assert (before.phase, before.generation, before.cipher, before.connect_ms) == ("idle", None, None, None)
    info = client.connect_with_info()
    try:
        _check_negotiated(info, generation)
        assert client.connection_info() == info
        health = client.healthcheck()
        assert health.connection == info and health.as_dict()["connection"] == info.as_dict()
    finally:
        client.close()
    after = client.connection_info()
    assert after.phase == "closed" and after.generation == generation and after.connect_ms == info.connect_ms


@pytest.mark.parametrize("generation", [1, 3])
def test_the_async_client_reports_what_it_negotiated(generation: int) -> None:
    async def scenario() -> tuple[ThalovantConnectionInfo, ThalovantConnectionInfo]:
        client = AsyncThalovantClient(IDENTITY, transport=MemoryHub(generation=generation), protocol="wss")
        info = await client.connect_with_info()
        await client.close()
        return info, client.connection_info()

    info, after = anyio.run(scenario)
    _check_negotiated(info, generation)
    assert after.phase == "closed"


def test_the_info_is_exported_and_json_ready() -> None:
    info = ThalovantConnectionInfo(transport="mqtt", phase="connecting")
    assert thalovant.ThalovantConnectionInfo is ThalovantConnectionInfo
    assert json.loads(json.dumps(info.as_dict()))["phase"] == "connecting"
