"""``client.doctor()`` against the real hub: every check passes, and a dead endpoint is reported, not raised."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from thalovant import ThalovantClient, ThalovantDoctorReport


@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
def test_doctor_passes_every_check_through_a_probe_client(real_hub: Any, protocol: str) -> None:
    if protocol == "mqtt" and not real_hub.mqtt_available:
        pytest.skip(real_hub.mqtt_unavailable_reason)
    client = ThalovantClient.from_identity_file(real_hub.identity_path("psk"), protocol=protocol)
    report = client.doctor(timeout=10)
    assert isinstance(report, ThalovantDoctorReport)
    assert report.ok, report.format()
    names = [c.name for c in report.checks]
    assert names == ["identity", "endpoint", "dns", "tcp", "tls", "admission", "handshake", "link"]
    assert report.check("handshake").status == "ok" and "protocol v1" in report.check("handshake").detail
    text = report.format() + json.dumps(report.as_dict())
    ident = real_hub.identity("psk")
    for secret in (ident["access_key"], ident["password"], ident["crypto_key"]):
        assert secret not in text


def test_doctor_on_a_connected_client_uses_its_live_link(real_hub: Any) -> None:
    with ThalovantClient.from_identity_file(real_hub.identity_path("password"), protocol="wss") as client:
        assert client.ask("before the doctor").text == "echo: before the doctor"
        report = client.doctor(timeout=10)
        assert report.ok, report.format()
        assert client.ask("after the doctor").text == "echo: after the doctor"


def test_doctor_reports_a_closed_port_instead_of_raising(real_hub: Any) -> None:
    with socket.socket() as s:  # a port nothing listens on (bound and closed again)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ident = dict(real_hub.identity("psk"))
    ident["data_plane_endpoints"] = {**ident["data_plane_endpoints"], "wss": f"ws://127.0.0.1:{port}"}
    report = ThalovantClient(ident, protocol="wss").doctor(timeout=3)
    assert not report.ok
    tcp = report.check("tcp")
    assert tcp.status == "failed" and "refused" in tcp.detail and tcp.hint
    assert [report.check(n).status for n in ("tls", "admission", "handshake", "link")] == ["skipped"] * 4
