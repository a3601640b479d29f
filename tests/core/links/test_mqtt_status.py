"""MqttMap's status discipline (``watch_status``): the hub's presence, its tombstones, the close that waits.

The hub 4.x behaviour these encode was seen live (hub 4.0.0, plugin 0.1.0a2, mosquitto 2.0.11): every
``offline`` on a key's status topic drops the hub's connection for that key and makes the hub publish its own
``offline`` there; its presence topic ``<prefix>/status/hub`` says ``online`` at start and ``offline`` (last
will) when it dies.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.links.base import (
    FrameNotSent,
    FrameSent,
    InboundFrame,
    LinkDown,
    LinkUp,
    OutboundFrame,
    Started,
    StopRequested,
)
from thalovant.core.links.mqtt import (
    DisconnectMqtt,
    HubSessionLost,
    MqttConnected,
    MqttDisconnected,
    MqttLayout,
    MqttMessage,
    MqttPublished,
    MqttPublishFailed,
    MqttSubscribed,
    Publish,
    SessionEstablished,
    Subscribe,
    hub_status_topic,
    mqtt_topics,
)
from thalovant.core.links.mqtt_map import TABLE, MqttMap, MqttState
from thalovant.core.machine import Input, Note, NoteLevel, Output, Tick

KEY = "0123456789abcdef0123456789abcdef"
PREFIX = "hivemind/thalovant-test-hub"
S2C, STATUS, HUB = f"{PREFIX}/s2c/{KEY}", f"{PREFIX}/status/{KEY}", f"{PREFIX}/status/hub"
OFFLINE, ONLINE = b"offline", b"online"


def make(**kw: object) -> MqttMap:
    args: dict[str, object] = {"access_key": KEY, "topic_prefix": PREFIX, "entropy": lambda n: b"\xab" * n}
    args.update({"watch_status": True, **kw})
    return MqttMap(**args)  # type: ignore[arg-type]


def msg(topic: str, payload: bytes) -> MqttMessage:
    return MqttMessage(topic=topic, payload=payload, qos=1)


def connect(m: MqttMap, *, hub: bytes | None = ONLINE, own: bool = True, now: float = 0.0) -> list[Output]:
    """Started, the three SUBACKs with the retained statuses in between, then the reset's PUBACK."""
    m.handle(Started(), now=now)
    assert m.handle(MqttConnected(), now=now) == [
        Subscribe(topic=HUB, qos=1),
        Subscribe(topic=STATUS, qos=1),
        Subscribe(topic=S2C, qos=1),
    ]
    assert m.handle(MqttSubscribed(granted_qos=1), now=now) == []
    if hub is not None:
        assert m.handle(msg(HUB, hub), now=now) == []
    assert m.handle(MqttSubscribed(granted_qos=1), now=now) == []
    (reset,) = m.handle(MqttSubscribed(granted_qos=1), now=now)
    assert isinstance(reset, Publish) and (reset.topic, reset.payload, reset.retain) == (STATUS, OFFLINE, True)
    if own:
        assert m.handle(msg(STATUS, OFFLINE), now=now) == []  # our reset, echoed: the topic is readable
    return m.handle(MqttPublished(pub_id=reset.pub_id), now=now)


def heard(m: MqttMap) -> MqttMap:
    """An up link the hub has spoken to (its greeting)."""
    assert connect(m) == [LinkUp()]
    assert m.handle(msg(S2C, b'{"msg_type": "hello"}'), now=0.1) == [InboundFrame(data='{"msg_type": "hello"}')]
    return m


def test_the_hub_presence_topic_sits_next_to_the_client_status_topic_on_the_legacy_layout_only() -> None:
    legacy = mqtt_topics(access_key=KEY, topic_prefix=PREFIX, layout=MqttLayout.LEGACY).unwrap()
    assert hub_status_topic(legacy) == HUB
    modern = mqtt_topics(access_key=KEY, topic_prefix=f"hivemind/{KEY}", layout=MqttLayout.MODERN).unwrap()
    assert hub_status_topic(modern) is None
    m = make(access_key=KEY, topic_prefix=f"hivemind/{KEY}", layout=MqttLayout.MODERN)
    m.handle(Started(), now=0.0)
    # hub 5.x: the status level's wildcard (own status + the hub's presence, learned: test_mqtt_presence.py)
    assert [o.topic for o in m.handle(MqttConnected(), now=0.0) if isinstance(o, Subscribe)] == [
        "hivemind/+/status",
        f"hivemind/{KEY}/out",
    ]


def test_status_topics_are_subscribed_before_s2c_and_the_reset_waits_for_the_last_suback() -> None:
    m = make()
    m.handle(OutboundFrame(data=b"\x86hello", refs=(1,)), now=0.0)
    outs = connect(m)
    assert outs[0] == LinkUp() and isinstance(outs[1], Publish) and outs[1].payload == b"\x86hello"
    assert m.route(HUB).unwrap() == "hub" and m.route(STATUS).unwrap() == "status"
    assert m.state is MqttState.UP and m.deadline is None


def test_an_offline_hub_holds_the_link_until_it_says_online() -> None:
    m = make(hub_wait=7.0)
    m.handle(OutboundFrame(data=b"\x86hello", refs=(1,)), now=0.0)
    (note,) = connect(m, hub=OFFLINE, now=1.0)
    assert isinstance(note, Note) and m.state is MqttState.AWAITING_HUB and m.deadline == 8.0
    assert m.handle(msg(S2C, b"{}"), now=1.5) == [
        Note(level=NoteLevel.DEBUG, text="mqtt: frame before the link was up (stale); dropped")
    ]
    assert m.handle(Tick(), now=2.0) == [] and m.state is MqttState.AWAITING_HUB  # an early Tick
    outs = m.handle(msg(HUB, ONLINE), now=2.5)
    assert [type(o) for o in outs] == [Note, LinkUp, Publish] and m.state is MqttState.UP and m.deadline is None


def test_a_stale_offline_presence_is_tried_anyway_after_hub_wait() -> None:
    m = make(hub_wait=7.0)
    connect(m, hub=OFFLINE, now=1.0)
    outs = m.handle(Tick(), now=8.0)
    assert isinstance(outs[0], Note) and outs[-1] == LinkUp() and m.state is MqttState.UP


@pytest.mark.parametrize(
    ("topic", "payload", "after_hello", "reason"),
    [
        (HUB, OFFLINE, False, "the hub went offline (its status topic)"),
        (HUB, OFFLINE, True, "the hub went offline (its status topic)"),
        (HUB, ONLINE, True, "the hub restarted (its status topic)"),
        (STATUS, OFFLINE, True, "the hub dropped this client (an offline on its status topic)"),
    ],
)
def test_the_status_topics_say_when_the_hub_lost_the_session(
    topic: str, payload: bytes, after_hello: bool, reason: str
) -> None:
    m = make()
    if after_hello:
        heard(m)
    else:
        connect(m)
    assert m.handle(msg(topic, payload), now=1.0) == [HubSessionLost(reason=reason)]
    assert m.handle(msg(topic, payload), now=1.1) == []  # said once
    assert m.state is MqttState.UP  # the connection stops the link


def test_before_the_hub_spoke_a_late_retained_status_is_no_loss() -> None:
    m = make()
    connect(m)
    assert m.handle(msg(HUB, ONLINE), now=1.0) == []  # retained presence, reported after LinkUp
    assert m.handle(msg(STATUS, OFFLINE), now=1.0) == []  # an earlier tombstone, before our connection
    assert m.handle(msg(STATUS, b"online"), now=1.0) == [] and m.handle(msg(HUB, b"garbage"), now=1.0) == []


def close(m: MqttMap, now: float = 5.0) -> Publish:
    (off,) = m.handle(StopRequested(), now=now)
    assert isinstance(off, Publish) and (off.topic, off.payload, off.retain) == (STATUS, OFFLINE, True)
    return off


def test_a_close_waits_for_the_hub_tombstone_before_it_disconnects() -> None:
    m = heard(make(tombstone_wait=1.0))
    off = close(m)
    assert m.handle(MqttPublished(pub_id=off.pub_id), now=5.01) == []
    assert m.deadline == 6.0
    assert m.handle(msg(STATUS, OFFLINE), now=5.02) == []  # ours, echoed
    assert m.handle(msg(STATUS, OFFLINE), now=5.05) == [  # the hub's tombstone
        DisconnectMqtt(),
        LinkDown(reason="closed by the client", retryable=False),
    ]


def test_the_tombstone_wait_is_bounded() -> None:
    m = heard(make(tombstone_wait=1.0, close_timeout=3.0))
    off = close(m)
    m.handle(msg(STATUS, OFFLINE), now=5.01)
    m.handle(MqttPublished(pub_id=off.pub_id), now=5.02)
    assert m.handle(Tick(), now=5.9) == [] and m.state is MqttState.CLOSING
    assert m.handle(Tick(), now=6.0)[0] == DisconnectMqtt()


def test_the_tombstone_may_come_before_the_puback() -> None:
    m = heard(make())
    off = close(m)
    m.handle(msg(STATUS, OFFLINE), now=5.01)
    m.handle(msg(STATUS, OFFLINE), now=5.02)
    assert m.handle(MqttPublished(pub_id=off.pub_id), now=5.03)[0] == DisconnectMqtt()


@pytest.mark.parametrize("case", ["not heard", "hub offline", "hub restarted", "own status unreadable"])
def test_no_tombstone_is_awaited_when_the_hub_holds_no_connection(case: str) -> None:
    m = make()
    if case == "own status unreadable":
        connect(m, own=False)
        m.handle(msg(S2C, b"{}"), now=0.1)
    elif case == "not heard":
        connect(m)
    else:
        heard(m)
        m.handle(msg(HUB, OFFLINE if case == "hub offline" else ONLINE), now=0.2)
    off = close(m)
    assert m.handle(MqttPublished(pub_id=off.pub_id), now=5.01)[0] == DisconnectMqtt()


def test_the_hub_dying_during_the_close_ends_the_wait() -> None:
    m = heard(make())
    off = close(m)
    m.handle(MqttPublished(pub_id=off.pub_id), now=5.01)
    assert m.handle(msg(HUB, OFFLINE), now=5.02)[0] == DisconnectMqtt()


def test_a_close_while_awaiting_the_hub_publishes_offline_and_ends_at_the_puback() -> None:
    m = make()
    m.handle(OutboundFrame(data=b"x", refs=(3,)), now=0.0)
    connect(m, hub=OFFLINE)
    outs = m.handle(StopRequested(), now=1.0)
    assert outs[0] == FrameNotSent(refs=(3,), reason="link closing") and isinstance(outs[1], Publish)
    assert m.handle(MqttPublished(pub_id=outs[1].pub_id), now=1.1)[0] == DisconnectMqtt()


def test_without_watching_no_status_topic_is_touched() -> None:
    m = make(watch_status=False)
    m.handle(Started(), now=0.0)
    assert m.handle(MqttConnected(), now=0.0) == [Subscribe(topic=S2C, qos=1)]
    assert m.route(HUB).value_or(None) is None and m.route(STATUS).value_or(None) is None


watch_inputs = st.one_of(
    st.builds(Started),
    st.builds(MqttConnected),
    st.builds(MqttSubscribed, granted_qos=st.sampled_from([0, 1, 128])),
    st.builds(MqttPublished, pub_id=st.integers(1, 8)),
    st.builds(MqttPublishFailed, pub_id=st.integers(1, 8)),
    st.builds(msg, st.sampled_from([S2C, STATUS, HUB, "other"]), st.sampled_from([OFFLINE, ONLINE, b"{}", b""])),
    st.builds(MqttDisconnected, rc=st.sampled_from([0, 5, 7])),
    st.builds(OutboundFrame, data=st.binary(max_size=3), refs=st.tuples(st.integers(1, 10**6))),
    st.builds(SessionEstablished),
    st.builds(StopRequested),
    st.builds(Tick),
)


@settings(max_examples=300, deadline=None)
@given(inputs=st.lists(watch_inputs, max_size=25), dt=st.floats(0.0, 4.0))
def test_any_sequence_stays_in_the_table_answers_frames_once_and_says_lost_once(inputs: list[Input], dt: float) -> None:
    m = make(hub_wait=3.0, tombstone_wait=1.0, close_timeout=2.0)
    sent = answered = lost = 0
    for i, inp in enumerate(inputs):
        if isinstance(inp, Started) and m.state is not MqttState.IDLE:
            continue
        before, row = m.state, TABLE.get((m.state, type(inp)))
        outs = m.handle(inp, now=i * dt)
        assert m.state in (row.ends if row else {before})
        sent += isinstance(inp, OutboundFrame)
        answered += sum(isinstance(o, FrameSent | FrameNotSent) for o in outs)
        lost += sum(isinstance(o, HubSessionLost) for o in outs)
        assert answered <= sent and lost <= 1
        deadline = m.deadline
        assert deadline is None or m.state in (MqttState.AWAITING_HUB, MqttState.CLOSING)
    if m.finished:
        assert answered == sent
