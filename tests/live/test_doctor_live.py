"""run_doctor against the real test hub, over every transport, with the client's handshake and link callbacks."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from thalovant.core.client.plan import DEFAULT_USERAGENT
from thalovant.core.doctor import ThalovantDoctorReport
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.doctor import run_doctor
from thalovant.shell.identity_io import ThalovantIdentity


def _secrets(identity: dict[str, Any]) -> list[str]:
    import base64

    found = [identity.get("access_key"), identity.get("password"), identity.get("crypto_key")]
    found.append((identity.get("mqtt") or {}).get("password"))
    found.append(base64.b64encode(f"{DEFAULT_USERAGENT}:{identity['access_key']}".encode()).decode())
    return [s for s in found if s]


async def _doctor_with_client(identity: ThalovantIdentity, protocol: str) -> ThalovantDoctorReport:
    client = AsyncThalovantClient(identity, protocol=protocol, connect_timeout=10)

    async def handshake() -> str:
        await client.connect()
        return "connected and handshake completed"

    async def link() -> str:
        health = await client.healthcheck()
        if not health.ok:
            raise RuntimeError(f"link not healthy: {health.as_dict()}")
        return f"{health.protocol} link alive"

    with anyio.fail_after(60):  # the client's task group opens and closes inside this scope
        try:
            return await run_doctor(
                identity, protocol=protocol, timeout=5.0, handshake_probe=handshake, link_probe=link
            )
        finally:
            await client.close()


@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
def test_every_check_passes_on_the_real_hub(real_hub: Any, protocol: str) -> None:
    if protocol == "mqtt" and not real_hub.mqtt_available:
        pytest.skip(f"MQTT unavailable: {real_hub.mqtt_unavailable_reason}")
    raw = real_hub.identity("psk")
    identity = ThalovantIdentity.from_mapping(raw)
    report = anyio.run(_doctor_with_client, identity, protocol)
    text = report.format()
    assert report.ok, text
    wanted = {"identity": "ok", "endpoint": "ok", "dns": "ok", "tcp": "ok", "admission": "ok", "handshake": "ok"}
    assert {c.name: c.status for c in report.checks if c.name in wanted} == wanted, text
    assert report.check("link").status == "ok", text  # type: ignore[union-attr]
    for secret in _secrets(raw):
        assert secret not in text + json.dumps(report.as_dict())


def test_unknown_access_key_fails_admission_on_the_real_hub(real_hub: Any) -> None:
    raw = dict(real_hub.identity("psk"))
    raw["access_key"] = "0" * 32
    identity = ThalovantIdentity.from_mapping(raw)
    for protocol in ("https", "wss"):
        report = anyio.run(lambda p=protocol: run_doctor(identity, protocol=p, timeout=5.0))  # type: ignore[misc]
        admission = report.check("admission")
        assert admission is not None and admission.status == "failed", report.format()
        assert "access key" in admission.hint


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_admission_on_hub_5(real_hub_v3: Any, protocol: str) -> None:
    raw = real_hub_v3.identity("psk2")
    identity = ThalovantIdentity.from_mapping(raw)
    report = anyio.run(
        lambda: run_doctor(identity, protocol=protocol, timeout=5.0, auth_encoding="percent")  # type: ignore[misc]
    )
    assert report.ok and report.check("admission").status == "ok", report.format()  # type: ignore[union-attr]
    for secret in _secrets(raw):
        assert secret not in report.format() + json.dumps(report.as_dict())
