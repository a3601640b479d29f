"""``connection_info()`` / ``connect_with_info()`` / ``ThalovantHealth.connection`` against the in-memory hub.

The info carries what the handshake negotiated (generation, cipher, encoding, the hub's peer id and node id)
and the times the shell measured (``started_at``/``connected_at`` wall clock, ``connect_ms``). On main none of
these existed.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

import thalovant
from tests.shell.test_offline_client import WAIT, client_for, hub_net
from thalovant import AsyncThalovantClient, ThalovantClient, ThalovantConnectionInfo
from thalovant.shell.links import dial
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


PHASES = ("dns_ms", "tcp_ms", "tls_ms", "admission_ms", "handshake_ms")


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_the_phase_times_of_a_link_through_the_dial_seam(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    """The real runtime and drivers over in-memory streams: the dial phases stay None (the seam replaced the
    dial), the hub's admission (101 / first answer) and the handshake after it are measured and ordered."""
    net = hub_net(monkeypatch, protocol)

    async def scenario() -> ThalovantConnectionInfo:
        client = client_for(protocol)
        with anyio.fail_after(WAIT):
            info = await client.connect_with_info()
            await client.close()
        return info

    info = anyio.run(scenario)
    assert net.dials and info.phase == "ready"
    assert (info.dns_ms, info.tcp_ms, info.tls_ms) == (None, None, None)
    assert info.admission_ms is not None and info.handshake_ms is not None and info.connect_ms is not None
    assert 0 <= info.admission_ms and 0 <= info.handshake_ms
    assert info.admission_ms + info.handshake_ms <= info.connect_ms + 0.2
    assert set(PHASES) <= set(info.as_dict())


def test_an_in_memory_hub_measures_no_phase() -> None:
    with ThalovantClient(IDENTITY, transport=MemoryHub(), protocol="wss") as client:
        info = client.connection_info()
    assert info.phase == "ready" and all(getattr(info, name) is None for name in PHASES)


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_after_a_reconnect_the_phase_times_are_the_new_links(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    net = hub_net(monkeypatch, protocol)
    dials: list[float] = []

    async def marking_dial(*args: Any, **kwargs: Any) -> Any:
        """The in-memory dial, recording a tcp time that names the link (as the real dial records its own)."""
        stream = await net.open_stream(*args, **kwargs)
        times = dial.current_times()
        if times is not None and not times.dialed:
            dials.append(float(len(dials) + 1))
            times.dialed, times.tcp_ms = True, dials[-1]
        return stream

    monkeypatch.setattr(dial, "open_stream", marking_dial)

    async def scenario() -> tuple[ThalovantConnectionInfo, ThalovantConnectionInfo]:
        client = client_for(protocol)
        with anyio.fail_after(WAIT):
            first = await client.connect_with_info()
            net.drop()
            await net.wait_until(lambda: net.hub.connections == 2)
            assert (await client.ask("after the drop", timeout=WAIT)).text == "echo: after the drop"  # new link ready
            second = client.connection_info()
            await client.close()
        return first, second

    first, second = anyio.run(scenario)
    assert (first.tcp_ms, first.reconnects) == (1.0, 0) and (second.tcp_ms, second.reconnects) == (2.0, 1)
    assert second.connect_ms == first.connect_ms  # connect() to the first ready session: unchanged
    assert second.handshake_ms is not None and second.admission_ms is not None
    assert first.connected_at is not None and second.connected_at is not None
    assert second.connected_at > first.connected_at
