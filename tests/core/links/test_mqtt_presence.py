"""The hub's presence on hub 5.x (plugin 0.2.5a2): the status wildcard, learning the hub's topic, handing it on.

Seen live (hub 5.3.10a1, mosquitto 2.0.11): the plugin publishes a retained ``online`` on
``<prefix>/<node name>/status`` when it connects to the broker and leaves ``offline`` there as its last
will; the node name (``unnamed-node`` by default) is nowhere in what the client holds or hears. mosquitto
grants a ``<prefix>/+/status`` subscription and delivers on it only the topics the ACL lets the login read.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.client.connection_events import ConnectionConfig
from thalovant.core.client.epoch import Epoch
from thalovant.core.links.base import InboundFrame, LinkUp, Started, StopRequested
from thalovant.core.links.mqtt import (
    DisconnectMqtt,
    HubSessionLost,
    MqttConnected,
    MqttDisconnected,
    MqttLayout,
    MqttMessage,
    MqttPublished,
    MqttSubscribed,
    Publish,
    Subscribe,
    mqtt_topics,
)
from thalovant.core.links.mqtt_map import MqttMap, MqttState
from thalovant.core.links.mqtt_presence import MAX_FOREIGN, HubPresence
from thalovant.core.machine import Note, Output, Tick

KEY = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"
S2C, STATUS, WILD = f"hivemind/{KEY}/out", f"hivemind/{KEY}/status", "hivemind/+/status"
HUB = "hivemind/unnamed-node/status"
OFFLINE, ONLINE = b"offline", b"online"
HELLO = b'{"msg_type": "hello"}'


def make(**kw: object) -> MqttMap:
    args: dict[str, object] = {"access_key": KEY, "topic_prefix": f"hivemind/{KEY}", "entropy": lambda n: b"\xab" * n}
    args.update({"watch_status": True, "layout": MqttLayout.MODERN, **kw})
    return MqttMap(**args)  # type: ignore[arg-type]


def msg(topic: str, payload: bytes) -> MqttMessage:
    return MqttMessage(topic=topic, payload=payload, qos=1)


def connect(m: MqttMap, retained: dict[str, bytes], now: float = 0.0) -> list[Output]:
    """Started, the wildcard's SUBACK and the retained statuses it brings, the s2c SUBACK, the reset's PUBACK."""
    m.handle(Started(), now=now)
    assert m.handle(MqttConnected(), now=now) == [Subscribe(topic=WILD, qos=1), Subscribe(topic=S2C, qos=1)]
    assert m.handle(MqttSubscribed(granted_qos=1), now=now) == []
    for topic, value in retained.items():
        assert m.handle(msg(topic, value), now=now) == []
    (reset,) = m.handle(MqttSubscribed(granted_qos=1), now=now)
    assert isinstance(reset, Publish) and (reset.topic, reset.payload, reset.retain) == (STATUS, OFFLINE, True)
    assert m.handle(msg(STATUS, OFFLINE), now=now) == []  # our reset, read back through the wildcard
    return m.handle(MqttPublished(pub_id=reset.pub_id), now=now)


def greeted(m: MqttMap, retained: dict[str, bytes]) -> MqttMap:
    assert connect(m, retained) == [LinkUp()]
    assert m.handle(msg(S2C, HELLO), now=0.1) == [InboundFrame(data=HELLO.decode())]
    return m


# ---- HubPresence: which topics --------------------------------------------------------------------------------


def presence(layout: MqttLayout = MqttLayout.MODERN, prefix: str = f"hivemind/{KEY}", **kw: str) -> HubPresence:
    return HubPresence(mqtt_topics(access_key=KEY, topic_prefix=prefix, layout=layout).unwrap(), layout=layout, **kw)


def test_the_modern_layout_subscribes_the_status_wildcard_and_the_legacy_one_the_exact_topics() -> None:
    modern = presence()
    assert (modern.wildcard, modern.hub_topic, modern.subscriptions()) == (WILD, None, [WILD])
    legacy = presence(MqttLayout.LEGACY, "hivemind/hub-1")
    assert legacy.wildcard is None and legacy.hub_name is None
    assert legacy.subscriptions() == ["hivemind/hub-1/status/hub", f"hivemind/hub-1/status/{KEY}"]
    deep = presence(prefix=f"site/a/{KEY}")
    assert deep.subscriptions() == ["site/a/+/status"]


def test_a_status_topic_of_another_shape_has_no_presence() -> None:
    topics = mqtt_topics(
        access_key=KEY, topic_prefix="x", layout=MqttLayout.MODERN, overrides=None
    ).unwrap()  # "x/status": no level for the client
    p = HubPresence(topics, layout=MqttLayout.MODERN)
    assert p.wildcard is None and p.subscriptions() == ["x/status"] and p.route("x/status") == "status"


def test_a_given_hub_name_is_the_hub_topic_unless_it_is_not_one_plain_level_or_is_our_own() -> None:
    assert presence(hub_name="unnamed-node").hub_topic == HUB
    assert presence(hub_name="unnamed-node").hub_name == "unnamed-node"
    for bad in ("a/b", "+", "#", "$SYS", "", KEY, "bad\x00"):
        assert presence(hub_name=bad).hub_topic is None, bad


levels = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(levels, min_size=0, max_size=5).map("/".join))
def test_route_never_raises_and_other_means_exactly_one_plain_level_under_the_root(topic: str) -> None:
    p = presence()
    which = p.route(topic)
    if topic == STATUS:
        assert which == "status"
    elif which == "other":
        head, level, tail = topic.split("/")[0], topic.split("/")[1:-1], topic.split("/")[-1]
        assert (head, tail, len(level)) == ("hivemind", "status", 1) and level[0] not in ("", "+", "#")
    else:
        assert which is None


@settings(max_examples=200, deadline=None)
@given(levels)
def test_a_hub_name_round_trips_when_it_is_one_plain_level(name: str) -> None:
    p = presence(hub_name=name)
    plain = bool(name) and name != KEY and not name.startswith("$")
    plain = plain and all(c.isprintable() and c not in "/+#" for c in name)
    assert p.hub_name == (name if plain else None)
    if plain:
        assert p.route(f"hivemind/{name}/status") == "hub"


# ---- MqttMap: learning ----------------------------------------------------------------------------------------


def test_the_hub_is_learned_when_it_greets_and_its_last_will_then_says_the_session_is_lost() -> None:
    m = greeted(make(), {HUB: ONLINE})
    assert m.hub_name == "unnamed-node" and m.route(HUB).unwrap() == "hub"
    (lost,) = m.handle(msg(HUB, OFFLINE), now=1.0)
    assert isinstance(lost, HubSessionLost) and "offline" in lost.reason
    assert KEY not in repr(m) and "unnamed-node" not in repr(m)


def test_a_restarted_hub_online_again_says_the_session_is_lost() -> None:
    m = greeted(make(), {HUB: ONLINE})
    (lost,) = m.handle(msg(HUB, ONLINE), now=1.0)
    assert isinstance(lost, HubSessionLost) and "restarted" in lost.reason


def test_nothing_is_learned_from_several_online_topics_or_none() -> None:
    crowd = greeted(make(), {HUB: ONLINE, f"hivemind/{OTHER}/status": ONLINE})
    assert crowd.hub_name is None
    assert crowd.handle(msg(HUB, OFFLINE), now=1.0) == []  # which one is the hub is not known: no signal
    quiet = greeted(make(), {f"hivemind/{OTHER}/status": OFFLINE})
    assert quiet.hub_name is None


def test_an_open_acl_with_many_status_topics_turns_learning_off() -> None:
    many = {f"hivemind/client-{n}/status": OFFLINE for n in range(MAX_FOREIGN)} | {HUB: ONLINE}
    m = greeted(make(), many)
    assert m.hub_name is None


def test_an_online_before_the_greeting_comes_from_whatever_topic_says_it_last() -> None:
    m = make()
    assert connect(m, {HUB: OFFLINE}) == [LinkUp()]  # nothing known yet: an offline elsewhere holds nothing
    assert m.handle(msg(HUB, ONLINE), now=0.05) == []
    m.handle(msg(S2C, HELLO), now=0.1)
    assert m.hub_name == "unnamed-node"


# ---- MqttMap: a pinned hub (what the previous link learned) ---------------------------------------------------


def test_a_link_told_the_hub_name_waits_while_the_hub_is_offline_and_goes_up_when_it_returns() -> None:
    m = make(hub_name="unnamed-node", hub_wait=10.0)
    outs = connect(m, {HUB: OFFLINE, f"hivemind/{OTHER}/status": ONLINE})
    assert m.state is MqttState.AWAITING_HUB and m.deadline == 10.0
    assert all(isinstance(o, Note) for o in outs)
    assert m.handle(msg(f"hivemind/{OTHER}/status", ONLINE), now=0.5) == []  # not the hub
    assert m.state is MqttState.AWAITING_HUB
    outs = m.handle(msg(HUB, ONLINE), now=1.2)  # the restarted hub's retained online
    assert LinkUp() in outs and m.state is MqttState.UP


def test_a_hub_that_stays_offline_is_tried_anyway_after_hub_wait() -> None:
    m = make(hub_name="unnamed-node", hub_wait=3.0)
    connect(m, {HUB: OFFLINE})
    assert m.handle(Tick(), now=2.9) == [] and m.state is MqttState.AWAITING_HUB
    assert LinkUp() in m.handle(Tick(), now=3.0)


def test_the_close_still_waits_for_the_tombstone_read_through_the_wildcard() -> None:
    m = greeted(make(), {HUB: ONLINE})
    (bye,) = m.handle(StopRequested(), now=1.0)
    assert isinstance(bye, Publish) and (bye.topic, bye.payload) == (STATUS, OFFLINE)
    assert m.handle(MqttPublished(pub_id=bye.pub_id), now=1.0) == []
    assert m.handle(msg(STATUS, OFFLINE), now=1.01) == []  # ours
    assert m.handle(msg(STATUS, OFFLINE), now=1.02)[0] == DisconnectMqtt()  # the hub's tombstone


# ---- a broker that refuses the wildcard ---------------------------------------------------------------------


def test_a_refused_wildcard_falls_back_to_the_exact_status_topic() -> None:
    m = make()
    m.handle(Started(), now=0.0)
    m.handle(MqttConnected(), now=0.0)
    assert m.handle(MqttSubscribed(granted_qos=0x80), now=0.0) == [Subscribe(topic=STATUS, qos=1)]
    (reset,) = m.handle(MqttSubscribed(granted_qos=1), now=0.0)  # the s2c SUBACK still ends SUBSCRIBING
    assert isinstance(reset, Publish)
    assert m.handle(MqttPublished(pub_id=reset.pub_id), now=0.0) == [LinkUp()]
    assert m.handle(MqttSubscribed(granted_qos=1), now=0.0) == []  # the fallback's SUBACK, late: ignored
    assert m.route(STATUS).unwrap() == "status" and m.route(HUB).value_or(None) is None


# ---- the connection hands the learned name to the next link ---------------------------------------------------


def test_the_next_epoch_link_is_told_what_the_finished_link_learned() -> None:
    cfg = ConnectionConfig(
        protocol="mqtt",
        useragent="t",
        session_id="s",
        access_key=KEY,
        password="pw",
        mqtt_topic_prefix=f"hivemind/{KEY}",
        mqtt_layout=MqttLayout.MODERN,
    )
    first = Epoch.start(1, cfg, "token", lambda n: b"\x01" * n)
    assert isinstance(first.link, MqttMap)
    greeted(first.link, {HUB: ONLINE})
    first.link.handle(MqttDisconnected(rc=7), now=2.0)
    first.drop_link()
    assert first.link is None and first.hub_name == "unnamed-node"
    second = first.successor(cfg, "token", lambda n: b"\x02" * n)
    assert second.number == 2 and isinstance(second.link, MqttMap)
    assert second.link.hub_name == "unnamed-node" and second.link.route(HUB).unwrap() == "hub"
    third = second.successor(cfg, "token", lambda n: b"\x03" * n)  # a link that learned nothing keeps the name
    second.drop_link()
    assert second.hub_name == "unnamed-node" and third.hub_name == "unnamed-node"
