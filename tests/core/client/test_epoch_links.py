"""``epoch.new_link``: the MQTT link follows the status discipline on both topic layouts.

Both hub MQTT plugins answer a client's ``offline`` by dropping its connection and publishing their own
``offline`` (a tombstone) on that client's status topic, which they read back and act on: plugin 0.1.0a2
(hub 4.x) and 0.2.5a2 (hub 5.x) alike (tests/harness/NOTES.md; ``test_v3_mqtt_live.py`` shows it raw on
hub 5.x). So on either layout the link reads its status topic and, on close, waits for the tombstone.
"""

from __future__ import annotations

import pytest
from returns.result import Success

from thalovant.core.client.connection_events import ConnectionConfig
from thalovant.core.client.epoch import new_link, new_session
from thalovant.core.links.base import LinkUp, Started, StopRequested
from thalovant.core.links.mqtt import (
    DisconnectMqtt,
    MqttConnected,
    MqttLayout,
    MqttMessage,
    MqttPublished,
    MqttSubscribed,
    Publish,
    Subscribe,
)
from thalovant.core.links.mqtt_map import MqttMap, MqttState
from thalovant.core.machine import Tick
from thalovant.core.session.events import LinkOpened, SendFrame
from thalovant.core.wire.bitstring import decode_bitstring
from thalovant.core.wire.message import MsgType

KEY = "0123456789abcdef0123456789abcdef"
OFFLINE = b"offline"
LAYOUTS = {
    MqttLayout.LEGACY: ("hivemind/hub", f"hivemind/hub/s2c/{KEY}", f"hivemind/hub/status/{KEY}"),
    MqttLayout.MODERN: (f"hivemind/{KEY}", f"hivemind/{KEY}/out", f"hivemind/{KEY}/status"),
}
#: the subscription that covers the status topic (hub 5.x: the wildcard that also brings the hub's presence)
COVERS = {MqttLayout.LEGACY: f"hivemind/hub/status/{KEY}", MqttLayout.MODERN: "hivemind/+/status"}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_mqtt_link_reads_its_status_topic_and_waits_for_the_tombstone_on_close(layout: MqttLayout) -> None:
    prefix, s2c, status = LAYOUTS[layout]
    cfg = ConnectionConfig(
        protocol="mqtt", useragent="t", session_id="s", access_key=KEY, mqtt_topic_prefix=prefix, mqtt_layout=layout
    )
    link = new_link(cfg, "token", lambda n: b"\x01" * n)
    assert isinstance(link, MqttMap)
    link.handle(Started(), now=0.0)
    subscribed = [o.topic for o in link.handle(MqttConnected(), now=0.0) if isinstance(o, Subscribe)]
    assert COVERS[layout] in subscribed and subscribed[-1] == s2c
    for _ in subscribed[:-1]:
        assert link.handle(MqttSubscribed(granted_qos=1), now=0.0) == []
    (reset,) = link.handle(MqttSubscribed(granted_qos=1), now=0.0)
    assert isinstance(reset, Publish) and (reset.topic, reset.payload) == (status, OFFLINE)
    assert link.handle(MqttMessage(topic=status, payload=OFFLINE, qos=1), now=0.0) == []  # our reset, read back
    assert link.handle(MqttPublished(pub_id=reset.pub_id), now=0.0) == [LinkUp()]
    link.handle(MqttMessage(topic=s2c, payload=b'{"msg_type": "hello"}', qos=1), now=0.1)  # the hub spoke
    (bye,) = link.handle(StopRequested(), now=1.0)
    assert isinstance(bye, Publish) and (bye.topic, bye.payload) == (status, OFFLINE)
    assert link.handle(MqttPublished(pub_id=bye.pub_id), now=1.0) == []
    assert link.state is MqttState.CLOSING  # waiting for the hub's tombstone
    assert link.handle(MqttMessage(topic=status, payload=OFFLINE, qos=1), now=1.01) == []  # ours, read back
    outs = link.handle(MqttMessage(topic=status, payload=OFFLINE, qos=1), now=1.02)  # the hub's tombstone
    assert outs[0] == DisconnectMqtt()


CRYPTO_KEY = "0123456789abcdef"  # 16 characters: a usable legacy pre-shared key


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_trigger_hello_is_sealed_only_for_hub_4x(layout: MqttLayout) -> None:
    # Hub 4.x's plugin decrypts every binary frame with the crypto_key; hub 5.x's (Noise only) reads a binary
    # frame before the Noise session as a cleartext bitstring. A sealed trigger there was random bytes to it:
    # "malformed binary frame: unassigned WIRE-1 message-type code 15" (or 16, 17, "Max Supported Version"...)
    # in the hub's log, once per connect of every identity with a crypto_key.
    prefix = LAYOUTS[layout][0]
    cfg = ConnectionConfig(
        protocol="mqtt", useragent="t", session_id="s", access_key=KEY, password="pw-0123456789abcdef",
        crypto_key=CRYPTO_KEY, mqtt_topic_prefix=prefix, mqtt_layout=layout,
    )  # fmt: skip
    session = new_session(cfg, lambda n: bytes(range(1, n + 1)))
    (trigger,) = session.handle(LinkOpened(), now=0.0)
    (again,) = [o for o in session.handle(Tick(), now=0.5) if isinstance(o, SendFrame)]  # no greeting yet
    for frame in (trigger, again):
        assert isinstance(frame, SendFrame) and isinstance(frame.data, bytes)
        decoded = decode_bitstring(frame.data)
        if layout is MqttLayout.MODERN:
            assert isinstance(decoded, Success) and decoded.unwrap().msg_type is MsgType.HELLO
            assert decoded.unwrap().payload["session"]["session_id"] == "s"
        else:
            assert not isinstance(decoded, Success)  # sealed: nonce || ciphertext || tag
