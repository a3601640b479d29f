"""``thalovant.transport``: 0.4.7's transport classes, built directly as 0.4.7 code does.

They run thalovant's own links: here over in-memory streams to a FakeHub (the dial seam of
``tests/shell/inmemory.py``), with wsproto/h11, the handshake and the encryption all real.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import thalovant
from tests.shell.inmemory import MemoryHubNet
from thalovant.shell.links import dial
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub
from thalovant.transport import (
    HiveMindHTTPTransport,
    HiveMindMQTTTransport,
    HiveMindWSSTransport,
    MqttTopicSet,
    Transport,
    TransportMessage,
)

UA = "LegacyApp/0.4.7"
PASSWORD = "a-throwaway-password"
ENDPOINTS = {"wss": "ws://hub.invalid:5678", "https": "http://hub.invalid:5679"}
CLASSES = {"wss": HiveMindWSSTransport, "https": HiveMindHTTPTransport}


def identity(protocol: str) -> thalovant.ThalovantIdentity:
    return thalovant.ThalovantIdentity.from_mapping(
        {
            "access_key": THROWAWAY_ACCESS_KEY,
            "password": PASSWORD,
            "default_master": "http://hub.invalid",
            "site_id": "den",
            "data_plane_endpoints": {protocol: ENDPOINTS[protocol]},
            "protocols": {protocol: True},
        }
    )


@pytest.fixture
def hub_for(monkeypatch: pytest.MonkeyPatch) -> Any:
    def make(protocol: str) -> MemoryHubNet:
        net = MemoryHubNet(FakeHub(password=PASSWORD), protocol=protocol, useragent=UA, access_key=THROWAWAY_ACCESS_KEY)
        monkeypatch.setattr(dial, "open_stream", net.open_stream)
        return net

    return make


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_a_transport_built_directly_speaks_the_duck_type(hub_for: Any, protocol: str) -> None:
    net = hub_for(protocol)
    transport = CLASSES[protocol](identity(protocol), useragent=UA, connect_timeout=2, handshake_timeout=3)
    assert isinstance(transport, Transport) and not transport.is_connected()
    assert not transport.healthcheck().ok and transport.last_error() is None
    with pytest.raises(thalovant.ThalovantConnectionError, match="connect"):
        transport.emit_event("x", {}, {})
    got: list[TransportMessage] = []
    done = threading.Event()

    def on_handled(message: TransportMessage) -> None:
        got.append(message)
        done.set()

    transport.on_mycroft("speak", got.append)
    transport.on_mycroft("ovos.utterance.handled", on_handled)
    transport.connect()
    try:
        assert transport.is_connected() and transport.healthcheck().ok
        transport.emit_event("recognizer_loop:utterance", {"utterances": ["hi"]}, {"request_id": "r-1"})
        assert done.wait(5)
        assert [m.msg_type for m in got] == ["speak", "ovos.utterance.handled"]
        assert got[0].data["utterance"] == "echo: hi" and got[0].context["request_id"] == "r-1"
        transport.remove_mycroft("speak", got.append)
        transport.remove_mycroft("speak", got.append)  # unknown: no-op
    finally:
        transport.disconnect()
    assert not transport.is_connected()
    assert net.hub.received[0].data == {"utterances": ["hi"]}


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_a_client_given_a_transport_class_talks_through_it(hub_for: Any, protocol: str) -> None:
    hub_for(protocol)
    transport = CLASSES[protocol](identity(protocol), useragent=UA)
    with thalovant.ThalovantClient(identity(protocol), transport=transport) as client:
        assert client.ask("through the adapter", timeout=5).text == "echo: through the adapter"
        assert transport.is_connected()
    assert not transport.is_connected()


def test_connect_failure_is_remembered(hub_for: Any) -> None:
    net = hub_for("wss")
    net.fail_dial = ConnectionRefusedError("refused")
    transport = HiveMindWSSTransport(identity("wss"), useragent=UA, connect_timeout=0.5, handshake_timeout=0.5)
    with pytest.raises(thalovant.ThalovantError):
        transport.connect()
    assert isinstance(transport.last_error(), thalovant.ThalovantError) and not transport.healthcheck().ok


def test_the_mqtt_transport_keeps_0_4_7_attributes() -> None:
    ident = thalovant.ThalovantIdentity.from_mapping(
        {
            "access_key": "key",
            "password": PASSWORD,
            "default_master": "https://hub.invalid",
            "site_id": "den",
            "mqtt": {
                "endpoint": "mqtts://broker.invalid",
                "username": "u",
                "password": "broker-secret",
                "topic_prefix": "hivemind/hub",
            },
        }
    )
    transport = HiveMindMQTTTransport(ident, useragent=UA, handshake_poll_interval=0.5)  # an ignored 0.4.7 keyword
    assert transport.session_id.startswith("thalovant-python-mqtt-") and len(transport.session_id) == 22 + 32
    assert isinstance(transport.topics, MqttTopicSet)
    assert transport.topics.c2s.endswith("/c2s/key") and transport.topics.s2c.endswith("/s2c/key")
    assert "broker-secret" not in repr(transport) and PASSWORD not in repr(transport)
    no_broker = thalovant.ThalovantIdentity.from_mapping(
        {"access_key": "key", "password": PASSWORD, "default_master": "https://hub.invalid", "site_id": "den"}
    )
    with pytest.raises(thalovant.ThalovantUnsupportedProtocolError):
        HiveMindMQTTTransport(no_broker, useragent=UA)
