"""codec: JSON envelopes reproduce the spec vectors; decoding is total; round-trips hold."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from tests.vectors.load import legacy, live
from thalovant.core.errors import LocalProtocolError
from thalovant.core.wire.codec import bus_message, decode_json, encode_json, hello_message
from thalovant.core.wire.frame import FrameProblem
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

FAST = settings(max_examples=150, deadline=None)

L7_KEYS = sorted(legacy()["L7_hivemessage_json"])
LIVE_JSON = sorted(live())


@pytest.mark.parametrize("name", L7_KEYS)
def test_l7_vectors_decode_and_reencode_byte_for_byte(name: str) -> None:
    text = legacy()["L7_hivemessage_json"][name]
    message = decode_json(text).unwrap()
    assert encode_json(message) == text
    assert decode_json(text.encode("utf-8")).unwrap() == message


@pytest.mark.parametrize("name", LIVE_JSON)
def test_live_captures_decode_and_reencode(name: str) -> None:
    text = live()[name]
    message = decode_json(text).unwrap()
    # hub 4.x frames carry all 8 keys in spec order, so they come back identical
    assert json.loads(encode_json(message)) == json.loads(text)


def test_encode_writes_exactly_the_eight_keys_in_spec_order() -> None:
    msg = HiveMessage(msg_type=MsgType.BUS, payload={"type": "x", "data": {}, "context": {}})
    keys = list(json.loads(encode_json(msg)))
    assert keys == [
        "msg_type",
        "payload",
        "metadata",
        "route",
        "node",
        "target_site_id",
        "target_pubkey",
        "source_peer",
    ]


def test_hello_builder_reproduces_the_l7_client_hello() -> None:
    hello = hello_message(session_id="7d30cce8-5b71-4b96-ac1a-9b6ef487732c", site_id="kitchen", pubkey="")
    assert encode_json(hello) == legacy()["L7_hivemessage_json"]["client_hello"]


def test_hello_builder_omits_pubkey_by_default_and_refuses_default_session() -> None:
    hello = hello_message(session_id="s-1", site_id="lab")
    assert isinstance(hello.payload, dict)
    assert "pubkey" not in hello.payload
    assert hello.payload["session"] == {"session_id": "s-1", "site_id": "lab"}
    for bad in ("default", ""):
        with pytest.raises(LocalProtocolError):
            hello_message(session_id=bad)


def test_bus_builder_fills_context_and_keeps_caller_values() -> None:
    msg = bus_message(
        BusMessage(type="recognizer_loop:utterance", data={"utterances": ["hi"]}, context={"request_id": "r1"}),
        session_id="sess-9",
        site_id="kitchen",
        useragent="UA/1",
    )
    assert isinstance(msg.payload, dict)
    ctx = msg.payload["context"]
    assert ctx["session"] == {"session_id": "sess-9", "site_id": "kitchen"}
    assert ctx["source"] == ctx["platform"] == "UA/1"
    assert ctx["destination"] == "HiveMind"
    assert ctx["request_id"] == "r1"
    # a caller-chosen session id survives, a "default" one is replaced
    own = bus_message(BusMessage(type="t", context={"session": {"session_id": "mine"}}), session_id="conn")
    assert isinstance(own.payload, dict)
    assert own.payload["context"]["session"]["session_id"] == "mine"
    dflt = bus_message(BusMessage(type="t", context={"session": {"session_id": "default"}}), session_id="conn")
    assert isinstance(dflt.payload, dict)
    assert dflt.payload["context"]["session"]["session_id"] == "conn"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "bad-json"),
        ("[]", "bad-json"),
        ('"x"', "bad-json"),
        (b"\xff\xfe", "bad-json"),
        ('{"msg_type": "nope", "payload": {}}', "unknown-type"),
        ('{"payload": {}}', "bad-envelope"),
        ('{"msg_type": "bus", "payload": "str"}', "bad-envelope"),
        ('{"msg_type": "bus", "payload": null}', "bad-envelope"),
        ('{"msg_type": "bin", "payload": {}}', "bad-envelope"),
        ('{"msg_type": "bus", "payload": {}, "route": [1]}', "bad-envelope"),
        ('{"msg_type": "bus", "payload": {}, "node": 3}', "bad-envelope"),
        ('{"msg_type": "bus", "payload": {"x": NaN}}', "bad-json"),
        ("[" * 100000, "too-deep"),
        ('{"msg_type": "bus", "payload": {"data": ' + "[" * 127 + "]" * 127 + "}}", "too-deep"),
    ],
)
def test_garbage_gives_typed_failures(raw: str | bytes, code: str) -> None:
    result = decode_json(raw)
    assert isinstance(result, Failure)
    assert result.failure().code == code


def test_encoding_a_bytes_payload_is_caller_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        encode_json(HiveMessage(msg_type=MsgType.BINARY, payload=b"\x00"))


@FAST
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_decode_json_is_total_on_random_input(raw: str | bytes) -> None:
    result = decode_json(raw)
    assert isinstance(result, Success | Failure)
    if isinstance(result, Failure):
        assert isinstance(result.failure(), FrameProblem)


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
json_types = st.sampled_from([t for t in MsgType if t is not MsgType.BINARY])


@FAST
@given(st.dictionaries(st.sampled_from(["msg_type", "payload", "metadata", "route", "node", "x"]), json_values))
def test_decode_json_is_total_on_random_json_objects(obj: dict[str, object]) -> None:
    result = decode_json(json.dumps(obj))
    assert isinstance(result, Success | Failure)


hive_messages = st.builds(
    HiveMessage,
    msg_type=json_types,
    payload=json_objects,
    metadata=json_objects,
    route=st.lists(st.fixed_dictionaries({"source": st.text(max_size=8)}), max_size=2).map(tuple),
    node=st.none() | st.text(max_size=8),
    target_site_id=st.none() | st.text(max_size=8),
    target_pubkey=st.none() | st.text(max_size=8),
    source_peer=st.none() | st.text(max_size=8),
)


@FAST
@given(hive_messages)
def test_encode_then_decode_round_trips(message: HiveMessage) -> None:
    assert decode_json(encode_json(message)) == Success(message)
    assert decode_json(encode_json(message).encode("utf-8")) == Success(message)
