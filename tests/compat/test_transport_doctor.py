"""``client.doctor()`` with ``transport=``: thalovant 0.4.7's four checks and its identity summary.

0.4.7 users assert ``[c.name for c in report.checks] == ["identity", "endpoint", "connect",
"transport"]`` and compare ``report.identity`` with 0.4.7's ``as_dict()``. Before, a transport client
reported our eight network checks (four of them skipped) and an identity summary with ``protocols``.
A client without a transport keeps the eight (``tests/core/test_doctor.py``).
"""

from __future__ import annotations

import json
from typing import Any

from tests.compat.fakes import BusFake
from thalovant import (
    HubDataPlaneEndpoints,
    HubProtocolSettings,
    MqttBrokerCredentials,
    ThalovantClient,
    ThalovantConnectionError,
    ThalovantIdentity,
)

ACCESS_KEY = "access-key-never-shown-0123"
BROKER_PASSWORD = "broker-password-never-shown"


class FakeTransport(BusFake):
    """The shared 0.4.7 fake; ``refuse=True`` makes ``connect()`` fail the way a hub refusal does."""

    def __init__(self, *, refuse: bool = False) -> None:
        super().__init__()
        self.refuse = refuse

    def connect(self) -> None:
        if self.refuse:
            raise ThalovantConnectionError(f"hub said no to {ACCESS_KEY}")
        super().connect()


def identity(**extra: Any) -> ThalovantIdentity:
    return ThalovantIdentity(
        access_key=ACCESS_KEY,
        password="password",
        site_id="site",
        default_master="http://hub.local",
        default_port=5679,
        **extra,
    )


def test_four_checks_and_0_4_7s_identity_summary() -> None:
    transport = FakeTransport()
    report = ThalovantClient(identity(), transport=transport).doctor()

    assert report.ok, report.format()
    assert [check.name for check in report.checks] == ["identity", "endpoint", "connect", "transport"]
    assert report.identity == {
        "site_id": "site",
        "default_master": "http://hub.local",
        "default_port": 5679,
        "default_path": "",
    }
    assert "http://hub.local:5679" in report.checks[1].detail and "FakeTransport" in report.checks[1].detail
    assert not transport.connected  # connected for the check, closed again


def test_the_summary_names_endpoints_mqtt_and_metadata_only_when_present_and_never_secrets() -> None:
    rich = identity(
        data_plane_endpoints=HubDataPlaneEndpoints(wss="wss://hub.local/hive"),
        protocols=HubProtocolSettings(wss=True, mqtt=True),
        mqtt=MqttBrokerCredentials(
            endpoint="mqtts://broker.local:8883", username="user", password=BROKER_PASSWORD, topic_prefix="hivemind"
        ),
        metadata={"tenant": "acme"},
    )
    report = ThalovantClient(rich, transport=FakeTransport()).doctor()
    assert report.identity["data_plane_endpoints"] == {"wss": "wss://hub.local/hive"}
    assert report.identity["mqtt"] == {"endpoint": "mqtts://broker.local:8883", "tls": True}
    assert report.identity["metadata"] == {"tenant": "acme"}
    assert "protocols" not in report.identity
    shown = json.dumps(report.as_dict()) + report.format()
    assert BROKER_PASSWORD not in shown and ACCESS_KEY not in shown


def test_a_refused_connect_fails_the_check_with_a_hint_and_skips_the_transport_check() -> None:
    report = ThalovantClient(identity(), transport=FakeTransport(refuse=True)).doctor()

    assert not report.ok
    assert [(check.name, check.status) for check in report.checks] == [
        ("identity", "ok"),
        ("endpoint", "ok"),
        ("connect", "failed"),
        ("transport", "skipped"),
    ]
    connect = report.checks[2]
    assert connect.hint and "hub said no" in connect.detail
    assert ACCESS_KEY not in json.dumps(report.as_dict()) + report.format()
