"""``epoch.new_link``: the MQTT link follows the status discipline on both topic layouts.

Both hub MQTT plugins answer a client's ``offline`` by dropping its connection and publishing their own
``offline`` (a tombstone) on that client's status topic, which they read back and act on: plugin 0.1.0a2
(hub 4.x) and 0.2.5a2 (hub 5.x) alike (tests/harness/NOTES.md; ``test_v3_mqtt_live.py`` shows it raw on
hub 5.x). So on either layout the link reads its status topic and, on close, waits for the tombstone.
"""

from __future__ import annotations

import pytest

from thalovant.core.client.connection_events import ConnectionConfig
from thalovant.core.client.epoch import new_link
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
