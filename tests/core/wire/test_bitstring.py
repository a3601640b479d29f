"""bitstring: the HIVEMIND-WIRE-1 vectors, refusals, totality, round-trips."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from tests.vectors.load import legacy
from thalovant.core.errors import LocalProtocolError
from thalovant.core.wire.bitstring import decode_bitstring, encode_bitstring
from thalovant.core.wire.frame import FrameProblem
from thalovant.core.wire.message import HiveMessage, MsgType

FAST = settings(max_examples=150, deadline=None)
L8 = legacy()["L8_bitstring"]


def test_bus_vectors_decode_to_the_l8_payload_and_reencode() -> None:
    plain = bytes.fromhex(L8["bus_uncompressed_hex"])
    packed = bytes.fromhex(L8["bus_compressed_hex"])
    msg = decode_bitstring(plain).unwrap()
    assert msg.msg_type is MsgType.BUS
    assert msg.payload == __import__("json").loads(L8["bus_uncompressed_payload_json"])
    assert decode_bitstring(packed).unwrap() == msg
    assert encode_bitstring(msg) == plain  # default: uncompressed
    assert encode_bitstring(msg, compress=True) == packed
    assert encode_bitstring(msg, compress=None) == packed  # auto keeps the shorter (L8 bus_auto_choice)
    assert L8["bus_auto_choice"] == "compressed"


def test_hello_vector() -> None:
    raw = bytes.fromhex(L8["hello_uncompressed_hex"])
    msg = decode_bitstring(raw).unwrap()
    assert msg.msg_type is MsgType.HELLO
    assert raw[0] == 0x8C
    assert encode_bitstring(msg) == raw


def test_binary_vector_is_shifted_by_four_bits() -> None:
    raw = bytes.fromhex(L8["binary_tts_hex"])
    msg = decode_bitstring(raw).unwrap()
    assert msg.msg_type is MsgType.BINARY
    assert msg.bin_type == L8["binary_tts"]["bin_type"] == 6
    assert msg.metadata == L8["binary_tts"]["metadata"]
    assert msg.payload == bytes.fromhex(L8["binary_tts"]["payload_hex"])
    assert encode_bitstring(msg) == raw
    assert raw[0] >> 4 == 0  # 4 zero bits of padding


def test_version_flag_with_version_one_is_accepted() -> None:
    # marker 1, V=1, version 00000001, code BUS(1), C=0, M=0 -> 24 bits, then payload "{}"
    bits = "1" + "1" + "00000001" + "00001" + "0" + "00000000"
    head = int(bits, 2).to_bytes(3, "big")
    assert decode_bitstring(head + b"{}").unwrap() == HiveMessage(msg_type=MsgType.BUS, payload={})
    bad = int("1" + "1" + "00000010" + "00001" + "0" + "00000000", 2).to_bytes(3, "big")
    assert isinstance(decode_bitstring(bad + b"{}"), Failure)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\x00\x00\x80\x00{}",  # more than 7 bits of padding
        bytes([0x80 | 13 << 1, 0]) + b"{}",  # unassigned code 13
        bytes([0x80 | 31 << 1, 0]) + b"{}",
        bytes([0x82, 5]) + b"{}",  # metadata longer than the frame
        bytes([0x82, 0]) + b"[1]",  # payload not an object
        bytes([0x82, 0]),  # empty payload
        bytes([0x83, 0]) + b"not zlib",
        bytes([0x83, 0]) + zlib.compress(b"{}")[:-2],  # truncated zlib
        bytes([0x82, 2]) + b"[]{}",  # metadata not an object
        bytes([0x82]),
    ],
)
def test_malformed_frames_are_refused(raw: bytes) -> None:
    result = decode_bitstring(raw)
    assert isinstance(result, Failure)
    assert result.failure().code == "bad-bitstring"


def test_encoder_refuses_what_the_spec_refuses() -> None:
    with pytest.raises(LocalProtocolError):
        encode_bitstring(HiveMessage(msg_type=MsgType.INTERCOM, payload={}))
    with pytest.raises(LocalProtocolError):
        encode_bitstring(HiveMessage(msg_type=MsgType.BUS, payload=b"x"))
    with pytest.raises(LocalProtocolError):
        encode_bitstring(HiveMessage(msg_type=MsgType.BINARY, payload={}))
    with pytest.raises(LocalProtocolError):
        encode_bitstring(HiveMessage(msg_type=MsgType.BUS, payload={}, metadata={"k": "x" * 300}))


def test_decompression_is_bounded() -> None:
    bomb = zlib.compress(b'{"a": "' + b"0" * (33 * 1024 * 1024) + b'"}', 9)
    raw = bytes([0x83, 0]) + bomb
    result = decode_bitstring(raw)
    assert isinstance(result, Failure)
    assert "inflates past" in result.failure().detail


@FAST
@given(st.binary(max_size=400))
def test_decode_is_total_on_random_bytes(raw: bytes) -> None:
    result = decode_bitstring(raw)
    assert isinstance(result, Success | Failure)
    if isinstance(result, Failure):
        assert isinstance(result.failure(), FrameProblem)


@FAST
@given(st.binary(min_size=2, max_size=60), st.integers(0, 3))
def test_decode_is_total_on_frames_with_valid_headers(tail: bytes, code_pick: int) -> None:
    code = [1, 6, 12, 0][code_pick]
    for flag in (0, 1):
        assert isinstance(decode_bitstring(bytes([0x80 | code << 1 | flag]) + tail), Success | Failure)


json_leaf = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=12)
json_obj = st.dictionaries(st.text(max_size=6), json_leaf | st.lists(json_leaf, max_size=3), max_size=4)
small_meta = st.dictionaries(st.text(max_size=5), st.integers(0, 99) | st.text(max_size=5), max_size=3)
coded_types = st.sampled_from([t for t in MsgType if t.code is not None and t is not MsgType.BINARY])


@FAST
@given(coded_types, json_obj, small_meta, st.sampled_from([False, True, None]))
def test_round_trip_json_types(msg_type: MsgType, payload: dict, metadata: dict, compress: bool | None) -> None:
    msg = HiveMessage(msg_type=msg_type, payload=payload, metadata=metadata)
    assert decode_bitstring(encode_bitstring(msg, compress=compress)) == Success(msg)


@FAST
@given(st.binary(max_size=300), st.integers(0, 15), small_meta, st.booleans())
def test_round_trip_binary(payload: bytes, bin_type: int, metadata: dict, compress: bool) -> None:
    msg = HiveMessage(msg_type=MsgType.BINARY, payload=payload, metadata=metadata, bin_type=bin_type)
    assert decode_bitstring(encode_bitstring(msg, compress=compress)) == Success(msg)
