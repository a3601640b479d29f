"""``connection_info()`` on the real hubs 4.x and 5.x: every value checked against what the harness configured.

Cells: hub 4.x and hub 5.x over wss, https and mqtt (plain, as the harness serves them), each with the
identity's IP-literal endpoint and with ``localhost`` (resolved: ``dns_ms`` measured), two client kinds on
wss; and the harness's TLS hub (4.x) over wss and https on ``localhost`` (``tls_ms`` measured).
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest

from tests.harness.tls import TlsTestHub
from tests.live.live_support import hub_of_generation, need_protocol, report_in_summary
from tests.live.test_tls_live import tls_hub as tls_hub  # the TLS hub fixture (module-scoped here too)
from thalovant import AsyncThalovantClient, ThalovantClient, ThalovantConnectionInfo

pytestmark = pytest.mark.hub

PHASES = ("dns_ms", "tcp_ms", "tls_ms", "admission_ms", "handshake_ms")
#: Rounding: every time is rounded to 0.1 ms on its own.
EPSILON_MS = 0.5


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


def on_host(identity: dict[str, Any], host: str) -> dict[str, Any]:
    """``identity`` with every endpoint's ``127.0.0.1`` replaced by ``host``."""
    return json.loads(json.dumps(identity).replace("://127.0.0.1:", f"://{host}:"))


def server_config(hub: Any) -> dict[str, Any]:
    """The hub's ``server.json`` as the harness wrote it (allowed ciphers and encodings)."""
    config: dict[str, Any] = json.loads((hub.run_dir / "config" / "hivemind-core" / "server.json").read_text())
    return config


def check_against_harness(
    info: ThalovantConnectionInfo, hub: Any, *, generation: int, protocol: str, kind: str, host: str, tls: bool
) -> None:
    """Every value of ``info`` against what the harness configured for ``hub``."""
    server = server_config(hub)
    assert info.transport == protocol and info.phase == "ready" and info.reconnects == 0
    assert info.generation == generation
    if generation == 1:
        assert info.cipher in server["allowed_ciphers"] and info.encoding in server["allowed_encodings"]
        if kind == "psk":  # the pre-shared path: AES-GCM over JSON-HEX (spec §5)
            assert (info.cipher, info.encoding) == ("AES-GCM", "JSON-HEX")
        assert info.node_id == "master:0.0.0.0"  # the harness names no node: hub 4.x's default identity
    else:  # Noise: the suite's cipher is one the harness allows; nothing else is negotiated
        assert "CHACHA20-POLY1305" in server["allowed_ciphers"] and info.cipher == "25519_ChaChaPoly_SHA256"
        assert info.encoding is None and info.node_id is None
    assert info.hub_peer is not None and info.hub_peer.split("::")[2] == f"sdk-{kind}"  # the harness's client name
    # over MQTT the hub names the peer after the broker login, the access key: shown scrubbed, never in clear
    agent = "<access-key>" if protocol == "mqtt" else "ThalovantPythonSDK/"
    assert info.hub_peer.startswith(agent) and hub.identity(kind)["access_key"] not in repr(info)
    assert (info.dns_ms is None) == (host == "127.0.0.1")  # an IP literal is not resolved
    assert (info.tls_ms is None) == (not tls)
    assert info.tcp_ms is not None and info.admission_ms is not None and info.handshake_ms is not None
    assert info.connect_ms is not None and 0 < info.connect_ms < 20_000
    measured = [getattr(info, name) for name in PHASES if getattr(info, name) is not None]
    assert all(t >= 0 for t in measured) and sum(measured) <= info.connect_ms + EPSILON_MS


CELLS = [(g, p) for g in ("hub4", "hub5") for p in ("wss", "https", "mqtt")]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize(("generation", "protocol"), CELLS)
def test_every_value_matches_the_harness(
    request: pytest.FixtureRequest, generation: str, protocol: str, host: str
) -> None:
    hub = hub_of_generation(request)
    need_protocol(hub, protocol)
    kwargs: dict[str, Any] = {"auth_encoding": "percent", "mqtt_layout": "modern"} if generation == "hub5" else {}
    with ThalovantClient(on_host(hub.identity("psk"), host), protocol=protocol, connect_timeout=20, **kwargs) as c:
        info = c.connection_info()
    report_in_summary(
        request,
        f"phases-{generation}-{protocol}-{host}",
        f"{generation} {protocol} {host}",
        [" ".join(f"{name}={getattr(info, name)}" for name in (*PHASES, "connect_ms", "cipher", "encoding"))],
    )
    check_against_harness(
        info, hub, generation=1 if generation == "hub4" else 3, protocol=protocol, kind="psk", host=host, tls=False
    )


@pytest.mark.parametrize("generation", ["hub4", "hub5"])
def test_a_password_client_reports_what_it_negotiated(request: pytest.FixtureRequest, generation: str) -> None:
    hub = hub_of_generation(request)
    kwargs: dict[str, Any] = {"auth_encoding": "percent"} if generation == "hub5" else {}
    with ThalovantClient(hub.identity("password"), protocol="wss", connect_timeout=20, **kwargs) as client:
        info = client.connection_info()
    report_in_summary(request, f"password-{generation}", f"{generation} password", [f"{info.cipher} {info.encoding}"])
    check_against_harness(
        info,
        hub,
        generation=1 if generation == "hub4" else 3,
        protocol="wss",
        kind="password",
        host="127.0.0.1",
        tls=False,
    )


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_over_tls_the_tls_phase_is_measured(
    request: pytest.FixtureRequest, tls_hub: TlsTestHub, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert tls_hub.tls is not None
    identity = on_host(tls_hub.identity("psk"), "localhost")  # the certificate names localhost too
    with ThalovantClient(identity, protocol=protocol, ca_file=str(tls_hub.tls.ca_file), connect_timeout=20) as client:
        info = client.connection_info()
    report_in_summary(request, f"tls-{protocol}", f"tls {protocol}", [f"{info.as_dict()}"])
    check_against_harness(info, tls_hub, generation=1, protocol=protocol, kind="psk", host="localhost", tls=True)
