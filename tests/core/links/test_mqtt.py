"""MqttMap: topic layouts, validation, §8.3 ordering (will, subscribe first, offline reset), payloads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.maybe import Nothing, Some
from returns.result import Failure, Success

from thalovant.core.errors import LocalProtocolError
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
    ConnectMqtt,
    DisconnectMqtt,
    MqttConnected,
    MqttDisconnected,
    MqttLayout,
    MqttMessage,
    MqttPublished,
    MqttPublishFailed,
    MqttSubscribed,
    Publish,
    SessionEstablished,
    SetWill,
    Subscribe,
    TopicOverrides,
    classify_payload,
    mqtt_topics,
    validate_topic,
)
from thalovant.core.links.mqtt_map import TABLE, MqttMap, MqttState
from thalovant.core.links.mqtt_topics import classify_rc
from thalovant.core.machine import Input, Note, Output, Tick

KEY = "0123456789abcdef0123456789abcdef"
PREFIX = "hivemind/thalovant-test-hub"
C2S, S2C, STATUS = (f"{PREFIX}/{k}/{KEY}" for k in ("c2s", "s2c", "status"))


def make(**kw: object) -> MqttMap:
    args: dict[str, object] = {"access_key": KEY, "topic_prefix": PREFIX, "entropy": lambda n: b"\xab" * n}
    args.update(kw)
    return MqttMap(**args)  # type: ignore[arg-type]


def up(**kw: object) -> MqttMap:
    m = make(**kw)
    m.handle(Started(), now=0.0)
    m.handle(MqttConnected(session_present=False), now=0.0)
    (reset,) = m.handle(MqttSubscribed(granted_qos=1), now=0.0)
    assert isinstance(reset, Publish)
    assert m.handle(MqttPublished(pub_id=reset.pub_id), now=0.0) == [LinkUp()]
    return m


def test_legacy_topics_match_plugin_0_1_0a2() -> None:
    topics = mqtt_topics(access_key=KEY, topic_prefix=PREFIX, layout=MqttLayout.LEGACY).unwrap()
    assert (topics.c2s, topics.s2c, topics.status) == (C2S, S2C, STATUS)
    assert KEY not in repr(topics)


def test_modern_topics_and_overrides() -> None:
    topics = mqtt_topics(access_key=KEY, topic_prefix=f"hivemind/{KEY}", layout=MqttLayout.MODERN).unwrap()
    base = f"hivemind/{KEY}"
    assert (topics.c2s, topics.s2c, topics.status) == (f"{base}/in", f"{base}/out", f"{base}/status")
    over = mqtt_topics(
        access_key=KEY, topic_prefix=PREFIX, layout=MqttLayout.LEGACY, overrides=TopicOverrides(s2c="x/down")
    ).unwrap()
    assert (over.c2s, over.s2c) == (C2S, "x/down")


@pytest.mark.parametrize(
    ("prefix", "code"),
    [
        ("", "empty"),
        ("hivemind/+", "wildcard"),
        ("hive#", "wildcard"),
        ("hive\x00mind", "control-char"),
        ("hive\nmind", "control-char"),
        ("/hivemind", "empty-level"),
        ("hivemind/", "empty-level"),
        ("hive//mind", "empty-level"),
        ("$SYS/x", "reserved"),
        ("a" * 70000, "too-long"),
    ],
)
def test_bad_prefixes_are_problems_not_exceptions(prefix: str, code: str) -> None:
    result = validate_topic(prefix, what="topic_prefix")
    assert isinstance(result, Failure) and result.failure().code == code
    assert "topic_prefix" in result.failure().detail
    with pytest.raises(LocalProtocolError):
        make(topic_prefix=prefix)


def test_a_key_that_is_not_a_topic_level_is_rejected_on_the_legacy_layout() -> None:
    assert isinstance(mqtt_topics(access_key="a/b", topic_prefix=PREFIX, layout=MqttLayout.LEGACY), Failure)
    assert isinstance(mqtt_topics(access_key="a+", topic_prefix=PREFIX, layout=MqttLayout.LEGACY), Failure)
    assert validate_topic("hivemind/hub/c2s/key") == Success("hivemind/hub/c2s/key")


def test_startup_order_will_connect_subscribe_then_offline_reset_then_up() -> None:
    m = make()
    assert m.client_id is None  # drawn inside the Started step
    assert m.handle(Started(), now=0.0) == [
        SetWill(topic=STATUS, payload=b"offline", qos=1, retain=True),
        ConnectMqtt(client_id="thalovant-" + "ab" * 8, keepalive=60),
    ]
    m.handle(OutboundFrame(data=b"\x86hello", refs=(1,)), now=0.0)  # queued: nothing before the subscribe
    assert m.handle(MqttConnected(session_present=True), now=0.1) == [Subscribe(topic=S2C, qos=1)]
    assert m.handle(MqttSubscribed(granted_qos=1), now=0.2) == [
        Publish(pub_id=1, topic=STATUS, payload=b"offline", qos=1, retain=True)
    ]
    assert m.state is MqttState.RESETTING
    assert m.handle(MqttPublished(pub_id=1), now=0.3) == [
        LinkUp(),
        Publish(pub_id=2, topic=C2S, payload=b"\x86hello", qos=1, retain=False),
    ]
    assert m.handle(MqttPublished(pub_id=2), now=0.4) == [FrameSent(refs=(1,))]


def test_reset_can_be_skipped_and_a_failed_reset_is_only_a_warning() -> None:
    m = make(reset_on_connect=False)
    m.handle(Started(), now=0.0)
    m.handle(MqttConnected(), now=0.0)
    assert m.handle(MqttSubscribed(granted_qos=0), now=0.0) == [LinkUp()]
    m2 = make()
    m2.handle(Started(), now=0.0)
    m2.handle(MqttConnected(), now=0.0)
    m2.handle(MqttSubscribed(granted_qos=1), now=0.0)
    outs = m2.handle(MqttPublishFailed(pub_id=1, reason="timeout"), now=0.0)
    assert isinstance(outs[0], Note) and outs[-1] == LinkUp()


def test_refused_subscription_is_fatal() -> None:
    m = make()
    m.handle(Started(), now=0.0)
    m.handle(MqttConnected(), now=0.0)
    outs = m.handle(MqttSubscribed(granted_qos=0x80), now=0.0)
    assert outs[0] == DisconnectMqtt() and isinstance(outs[-1], LinkDown) and not outs[-1].retryable


def test_inbound_payloads_are_classified_and_foreign_topics_dropped() -> None:
    m = up()
    hello = json.dumps({"msg_type": "hello", "payload": {}}).encode()
    assert m.handle(MqttMessage(topic=S2C, payload=hello, qos=1), now=1.0) == [InboundFrame(data=hello.decode())]
    assert m.handle(MqttMessage(topic=S2C, payload=b"\x80\x01", qos=0), now=1.0) == [InboundFrame(data=b"\x80\x01")]
    assert m.handle(MqttMessage(topic=S2C, payload=b"[1, 2]", qos=0), now=1.0) == [InboundFrame(data=b"[1, 2]")]
    (note,) = m.handle(MqttMessage(topic=C2S, payload=hello, qos=1), now=1.0)
    assert isinstance(note, Note)
    assert m.route(S2C) == Some("s2c") and m.route("other") == Nothing


def test_frames_before_link_up_are_stale_and_dropped() -> None:
    m = make()
    m.handle(Started(), now=0.0)
    m.handle(MqttConnected(), now=0.0)
    (note,) = m.handle(MqttMessage(topic=S2C, payload=b"{}", qos=1), now=0.0)
    assert isinstance(note, Note)


def test_text_frames_are_published_as_utf8_and_failures_answered() -> None:
    m = up()
    (pub,) = m.handle(OutboundFrame(data='{"é": 1}', refs=(4,)), now=0.0)
    assert isinstance(pub, Publish) and pub.payload == '{"é": 1}'.encode() and pub.topic == C2S
    assert m.handle(MqttPublishFailed(pub_id=pub.pub_id, reason="no PUBACK"), now=0.1) == [
        FrameNotSent(refs=(4,), reason="publish failed: no PUBACK")
    ]


def test_online_announcement_is_optional() -> None:
    assert up().handle(SessionEstablished(), now=0.0) == []
    (pub,) = up(announce_online=True).handle(SessionEstablished(), now=0.0)
    assert isinstance(pub, Publish) and (pub.topic, pub.payload, pub.retain) == (STATUS, b"online", True)


def test_stop_publishes_offline_then_disconnects() -> None:
    m = up(close_timeout=3.0)
    (frame_pub,) = m.handle(OutboundFrame(data=b"x", refs=(1,)), now=0.0)
    (off,) = m.handle(StopRequested(), now=1.0)
    assert isinstance(off, Publish) and (off.topic, off.payload, off.retain) == (STATUS, b"offline", True)
    assert m.deadline == 4.0
    assert m.handle(MqttPublished(pub_id=frame_pub.pub_id), now=1.1) == [FrameSent(refs=(1,))]
    assert m.handle(OutboundFrame(data=b"y", refs=(2,)), now=1.1) == [FrameNotSent(refs=(2,), reason="link closed")]
    assert m.handle(MqttPublished(pub_id=off.pub_id), now=1.2) == [
        DisconnectMqtt(),
        LinkDown(reason="closed by the client", retryable=False),
    ]
    assert m.finished and m.deadline is None
    m2 = up(close_timeout=3.0)
    m2.handle(StopRequested(), now=0.0)
    assert m2.handle(Tick(), now=2.9) == []
    assert m2.handle(Tick(), now=3.0)[-1] == LinkDown(reason="closed by the client", retryable=False)


@pytest.mark.parametrize(
    ("rc", "retryable", "auth"),
    [
        *[(4, False, True), (5, False, True), (134, False, True), (135, False, True), (1, False, False)],
        *[(2, False, False), (3, True, False), (7, True, False), (142, True, False), (999, True, False)],
    ],
)
def test_reason_codes(rc: int, retryable: bool, auth: bool) -> None:
    down = classify_rc(rc)
    assert (down.retryable, down.auth) == (retryable, auth)


def test_disconnect_fails_pending_and_queued_frames() -> None:
    m = up()
    m.handle(OutboundFrame(data=b"a", refs=(1,)), now=0.0)
    outs = m.handle(MqttDisconnected(rc=7), now=0.1)
    assert outs[0] == FrameNotSent(refs=(1,), reason="link down")
    assert outs[-1] == LinkDown(reason="broker connection ended (rc 7: connection lost)", retryable=True)
    early = make()
    early.handle(Started(), now=0.0)
    assert early.handle(MqttDisconnected(rc=5), now=0.0)[-1].auth is True  # type: ignore[attr-defined]


def test_secrets_stay_out_of_reprs() -> None:
    m = up()
    (pub,) = m.handle(OutboundFrame(data=b"a", refs=(1,)), now=0.0)
    for value in (m, pub, m.will, Subscribe(topic=S2C, qos=1), MqttMessage(topic=S2C, payload=b"", qos=0)):
        assert KEY not in repr(value)


def test_misuse_raises_and_table_is_consistent() -> None:
    with pytest.raises(LocalProtocolError):
        make(qos=3)
    with pytest.raises(LocalProtocolError):
        make().handle(Input(), now=0.0)
    for (state, kind), row in TABLE.items():
        assert isinstance(state, MqttState) and issubclass(kind, Input)
        assert getattr(MqttMap, row.act.__name__) is row.act
        assert all(isinstance(end, MqttState) for end in row.ends)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=64) | st.text(max_size=30).map(str.encode))
def test_payload_classification_never_raises_and_keeps_bytes(payload: bytes) -> None:
    frame = classify_payload(payload)
    assert frame == payload or (isinstance(frame, str) and frame.encode() == payload)
    if isinstance(frame, str):
        assert isinstance(json.loads(frame), dict)


mqtt_inputs = st.one_of(
    st.builds(Started),
    st.builds(MqttConnected, session_present=st.booleans()),
    st.builds(MqttSubscribed, granted_qos=st.integers(-5, 300)),
    st.builds(MqttPublished, pub_id=st.integers(-2, 8)),
    st.builds(MqttPublishFailed, pub_id=st.integers(-2, 8), reason=st.text(max_size=10)),
    st.builds(
        MqttMessage, topic=st.sampled_from([S2C, C2S, "", "x/#"]), payload=st.binary(max_size=20), qos=st.integers()
    ),
    st.builds(MqttDisconnected, rc=st.integers(-10, 300)),
    st.builds(OutboundFrame, data=st.binary(max_size=5), refs=st.tuples(st.integers(0, 10**6))),
    st.builds(SessionEstablished),
    st.builds(StopRequested),
    st.builds(Tick),
)


@settings(max_examples=200, deadline=None)
@given(inputs=st.lists(mqtt_inputs, max_size=15))
def test_garbage_sequences_never_raise_and_frames_are_answered_once(inputs: list[Input]) -> None:
    m = make()
    sent, answered, downs = 0, 0, 0
    for i, inp in enumerate(inputs):
        if isinstance(inp, Started) and m.state is not MqttState.IDLE:
            continue
        before, row = m.state, TABLE.get((m.state, type(inp)))
        outs = m.handle(inp, now=float(i))
        assert m.state in (row.ends if row else {before})  # every step stays within its table row
        assert all(isinstance(o, Output) for o in outs)
        sent += isinstance(inp, OutboundFrame)
        answered += sum(isinstance(o, FrameSent | FrameNotSent) for o in outs)
        downs += sum(isinstance(o, LinkDown) for o in outs)
        assert answered <= sent
    assert downs <= 1
    if m.finished:
        assert answered == sent
