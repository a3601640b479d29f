"""``thalovant.transport`` on the real hub 4.0.0: 0.4.7's transport classes, alone and as ``transport=``.

Built directly, each class connects, delivers the hub's events to handlers registered by name and
sends bus messages; given to a client as ``transport=``, the client's asks run through it (the
0.4.7-style seam over thalovant's own links).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.live.live_support import need_protocol, tag, wait_until
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.sync.client import ThalovantClient
from thalovant.transport import HiveMindHTTPTransport, HiveMindMQTTTransport, HiveMindWSSTransport, TransportMessage

CLASSES = {"wss": HiveMindWSSTransport, "https": HiveMindHTTPTransport, "mqtt": HiveMindMQTTTransport}


@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
def test_a_transport_class_on_its_own(real_hub: Any, protocol: str) -> None:
    need_protocol(real_hub, protocol)
    identity = ThalovantIdentity.from_file(real_hub.identity_path("password"))
    transport = CLASSES[protocol](identity, connect_timeout=10, handshake_timeout=10)
    marker = tag(f"transport-{protocol}")
    heard: list[TransportMessage] = []
    pushed = threading.Event()

    def on_speak(message: TransportMessage) -> None:
        heard.append(message)
        if message.data.get("utterance") == f"push {marker}":
            pushed.set()

    transport.on_mycroft("speak", on_speak)
    transport.connect()
    try:
        assert transport.is_connected() and transport.healthcheck().ok
        transport.emit_event("recognizer_loop:utterance", {"utterances": [f"emit {marker}"]}, {"request_id": marker})
        assert wait_until(lambda: any(m.data.get("utterance") == f"echo: emit {marker}" for m in heard), 10)
        assert real_hub.push_event("speak", {"utterance": f"push {marker}"})
        assert pushed.wait(10)
    finally:
        transport.disconnect()
    assert not transport.is_connected()


@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
def test_a_client_asks_through_a_transport_class(real_hub: Any, protocol: str) -> None:
    need_protocol(real_hub, protocol)
    identity = ThalovantIdentity.from_file(real_hub.identity_path("psk"))
    marker = tag(f"seam-{protocol}")
    transport = CLASSES[protocol](identity, connect_timeout=10, handshake_timeout=10)
    with ThalovantClient(identity, transport=transport) as client:
        assert client.ask(f"ask {marker}", timeout=10).text == f"echo: ask {marker}"
        with client.conversation(session_id=f"conv-{marker}") as convo:
            assert convo.ask(f"again {marker}", timeout=10).text == f"echo: again {marker}"
    assert not transport.is_connected()


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_a_transport_class_on_hub_5(real_hub_v3: Any, protocol: str) -> None:
    """Hub 5.x pins a client's Noise key on first contact: the adapter keeps the default key file."""
    identity = ThalovantIdentity.from_file(real_hub_v3.identity_path("password"))
    marker = tag(f"v3-{protocol}")
    transport = CLASSES[protocol](identity, connect_timeout=10, handshake_timeout=20, auth_encoding="percent")
    with ThalovantClient(identity, transport=transport) as client:
        assert client.ask(f"ask {marker}", timeout=10).text == f"echo: ask {marker}"
        assert transport.healthcheck().generation == 3
