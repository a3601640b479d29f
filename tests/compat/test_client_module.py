"""``thalovant.client``: 0.4.7's import path, the transport classes users patch, and its private helpers.

0.4.7 users swap a transport class with ``monkeypatch.setattr("thalovant.client.HiveMindMQTTTransport",
Fake)`` and expect the client to build their fake with 0.4.7's constructor call. Before this module
existed each of these tests failed with ``ModuleNotFoundError: thalovant.client`` (or, for
``_authorized_wss_url``, an AttributeError).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import thalovant
from tests.compat.fakes import BusFake, FakeMessage
from thalovant import (
    AsyncThalovantClient,
    HubDataPlaneEndpoints,
    HubProtocolSettings,
    MqttBrokerCredentials,
    ThalovantClient,
    ThalovantConnectionError,
    ThalovantIdentity,
)

MQTT_PASSWORD = "broker-password-never-shown"


class RecordingTransport(BusFake):
    """A 0.4.7 fake built the 0.4.7 way: ``cls(identity, **kwargs)``; answers every utterance."""

    made: list[tuple[ThalovantIdentity, dict[str, Any]]] = []

    def __init__(self, identity: ThalovantIdentity, **kwargs: Any) -> None:
        super().__init__()
        RecordingTransport.made.append((identity, kwargs))

    def emit_event(self, event_type: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        for name, body in (("speak", {"utterance": f"fake {type(self).__name__}"}), ("ovos.utterance.handled", {})):
            for fn in list(self.handlers.get(name, [])):
                fn(FakeMessage(body))


@pytest.fixture(autouse=True)
def fresh_records() -> None:
    RecordingTransport.made = []


def mqtt_identity() -> ThalovantIdentity:
    return ThalovantIdentity(
        access_key="key",
        password="password",
        crypto_key="0123456789abcdef",
        site_id="site",
        default_master="https://hub.local",
        default_port=443,
        data_plane_endpoints=HubDataPlaneEndpoints(
            https="https://hub.local/hivemind/public", wss="wss://hub.local/hivemind/public"
        ),
        protocols=HubProtocolSettings(wss=True, http=True, mqtt=True),
        mqtt=MqttBrokerCredentials(
            endpoint="mqtts://mqtt.example.com:8883",
            username="key",
            password=MQTT_PASSWORD,
            topic_prefix="hivemind/hub/key",
        ),
    )


def test_the_module_re_exports_the_public_clients() -> None:
    import thalovant.client as old

    assert old.ThalovantClient is thalovant.ThalovantClient
    assert old.AsyncThalovantClient is thalovant.AsyncThalovantClient
    assert old.HiveMindMQTTTransport is thalovant.transport.HiveMindMQTTTransport
    assert old.ThalovantIdentity is ThalovantIdentity


@pytest.mark.parametrize(
    ("name", "protocol"),
    [("HiveMindMQTTTransport", "mqtt"), ("HiveMindWSSTransport", "wss"), ("HiveMindHTTPTransport", "https")],
)
def test_a_patched_transport_class_is_built_with_0_4_7s_call(
    monkeypatch: pytest.MonkeyPatch, name: str, protocol: str
) -> None:
    monkeypatch.setattr(f"thalovant.client.{name}", RecordingTransport)

    with ThalovantClient(mqtt_identity(), protocol=protocol, connect_timeout=3, send_timeout=2) as client:
        assert client.ask("hi").text == "fake RecordingTransport"

    [(identity, kwargs)] = RecordingTransport.made
    assert identity == mqtt_identity()
    assert kwargs["useragent"].startswith("ThalovantPythonSDK/")
    assert (kwargs["connect_timeout"], kwargs["handshake_timeout"], kwargs["send_timeout"]) == (3, 10.0, 2)


def test_only_the_patched_protocol_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("thalovant.client.HiveMindMQTTTransport", RecordingTransport)
    client = AsyncThalovantClient(mqtt_identity(), protocol="wss")
    assert client._transport is None  # its own links, as without the patch
    assert RecordingTransport.made == []


def test_an_unpatched_module_changes_nothing() -> None:
    import thalovant.client  # noqa: F401 - loaded, not patched

    assert AsyncThalovantClient(mqtt_identity(), protocol="mqtt")._transport is None


def test_a_patched_class_still_needs_what_0_4_7_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("thalovant.client.HiveMindMQTTTransport", RecordingTransport)
    no_broker = ThalovantIdentity(access_key="key", password="password", site_id="s", default_master="https://hub.local")
    with pytest.raises(thalovant.ThalovantUnsupportedProtocolError, match="MQTT"):
        ThalovantClient(no_broker, protocol="mqtt")
    assert RecordingTransport.made == []


def test_runtime_crypto_key_helper() -> None:
    from thalovant.client import _runtime_crypto_key

    assert _runtime_crypto_key("  abcdefghijklmnopqrstuvwxyz  ") == "abcdefghijklmnop"
    assert _runtime_crypto_key("short") == "short"
    assert _runtime_crypto_key("   ") is None
    assert _runtime_crypto_key(None) is None


def test_runtime_bus_context_helper() -> None:
    from thalovant.client import _runtime_bus_context

    given = {"source": "mine", "session": {"session_id": "default", "pipeline": ["x"]}}
    context = _runtime_bus_context(given, useragent="SDK", session_id="runtime", site_id="Office")
    assert context == {
        "source": "mine",
        "platform": "SDK",
        "destination": "HiveMind",
        "session": {"session_id": "runtime", "pipeline": ["x"], "site_id": "Office"},
    }
    assert given["session"] == {"session_id": "default", "pipeline": ["x"]}  # not modified
    kept = _runtime_bus_context({"session": {"session_id": "c-1"}}, useragent="SDK", session_id="r", site_id=None)
    assert kept["session"] == {"session_id": "c-1"}


def wss_identity(endpoint: str | None) -> ThalovantIdentity:
    return ThalovantIdentity(
        access_key="key",
        password="password",
        site_id="site",
        default_master="https://hub.local",
        default_port=443,
        data_plane_endpoints=HubDataPlaneEndpoints(wss=endpoint),
        protocols=HubProtocolSettings(wss=True),
    )


def test_authorized_wss_url_keeps_path_and_query_and_replaces_a_stale_token(caplog: pytest.LogCaptureFixture) -> None:
    from thalovant.transport import HiveMindWSSTransport

    caplog.set_level(logging.DEBUG)
    transport = HiveMindWSSTransport(wss_identity("wss://hub.local:8443/hive/public?x=1&authorization=old&y=2"))
    url = transport._authorized_wss_url(key="key", useragent="ua")
    assert url == "wss://hub.local:8443/hive/public?x=1&y=2&authorization=dWE6a2V5"
    plain = HiveMindWSSTransport(wss_identity("ws://hub.local:5678"))
    assert plain._authorized_wss_url(key="key", useragent="ua") == "ws://hub.local:5678?authorization=dWE6a2V5"
    shown = repr(transport) + repr(transport.identity) + caplog.text
    assert "dWE6a2V5" not in shown and "authorization=old" not in shown


def test_authorized_wss_url_without_a_wss_endpoint_is_a_typed_error() -> None:
    from thalovant.transport import HiveMindWSSTransport

    transport = HiveMindWSSTransport(wss_identity("wss://hub.local/x"))
    object.__setattr__(transport, "identity", wss_identity(None))
    with pytest.raises(ThalovantConnectionError, match="ws:// or wss://"):
        transport._authorized_wss_url(key="key", useragent="ua")
