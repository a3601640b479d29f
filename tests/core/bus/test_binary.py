"""``core/bus/binary.py``: kinds, the checks at the send door, and BINARY frames through the bitstring (issue 14).

Property tests: garbage never raises anything untyped, kind names and ``bin_type`` round-trip, and any
bytes with any metadata that fits survive encode -> bitstring -> decode -> :func:`binary_of` unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from thalovant.core.bus.binary import (
    AUDIO_KINDS,
    BIN_TYPES,
    MAX_BINARY_BYTES,
    ThalovantBinary,
    audio_metadata,
    bin_type_of,
    binary_message,
    binary_of,
    file_metadata,
    kind_of,
    outgoing_binary,
)
from thalovant.core.errors import ThalovantArgumentError, ThalovantError, ThalovantPayloadTooLargeError
from thalovant.core.wire.bitstring import decode_bitstring, encode_bitstring
from thalovant.core.wire.message import HiveMessage, MsgType

JSON_LEAF = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
METADATA = st.dictionaries(st.text(max_size=12), JSON, max_size=5)
KINDS = st.sampled_from(sorted(BIN_TYPES)) | st.integers(0, 15).map(lambda n: f"binary:{n}") | st.integers(0, 15)
ANYTHING = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=20)


def fits(metadata: dict[str, Any]) -> bool:
    return len(json.dumps(metadata).encode()) <= 200  # well inside the 255-byte limit (json.dumps spacing aside)


@given(st.integers(-100, 100))
def test_kind_of_and_bin_type_of_round_trip(n: int) -> None:
    if 0 <= n <= 15:
        assert bin_type_of(kind_of(n)) == n and bin_type_of(n) == n
    else:
        assert bin_type_of(n) is None


@pytest.mark.parametrize("name", ["binary:\u00b2", "binary:\u0663", "binary:16", "binary:", "binary:-1", "BINARY:3"])
def test_odd_binary_names_name_no_bin_type(name: str) -> None:
    assert bin_type_of(name) is None  # "binary:\u00b2" raised ValueError (str.isdigit is true, int() refuses it)


@given(st.text(max_size=20) | st.text(max_size=4).map(lambda t: "binary:" + t))
def test_bin_type_of_a_name_is_none_or_round_trips(name: str) -> None:
    found = bin_type_of(name)
    assert found is None or (0 <= found <= 15 and bin_type_of(kind_of(found)) == found)


@given(data=st.binary(max_size=4096), kind=KINDS, metadata=METADATA, compress=st.sampled_from([False, True, None]))
def test_any_bytes_and_metadata_survive_the_bitstring(
    data: bytes, kind: str | int, metadata: dict[str, Any], compress: bool | None
) -> None:
    if not fits(metadata):
        return
    sent = outgoing_binary(data, kind, metadata)
    frame = encode_bitstring(binary_message(sent), compress=compress)
    decoded = decode_bitstring(frame)
    assert isinstance(decoded, Success)
    got = binary_of(decoded.unwrap()).unwrap()
    assert (got.kind, got.bin_type, got.data, dict(got.metadata)) == (sent.kind, sent.bin_type, data, metadata)
    assert got == sent


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_garbage_bitstrings_never_raise(blob: bytes) -> None:
    decoded = decode_bitstring(blob)
    if isinstance(decoded, Success):
        result = binary_of(decoded.unwrap())
        assert isinstance(result, Success | Failure)


@given(
    msg_type=st.sampled_from(list(MsgType)),
    payload=st.binary(max_size=64) | st.dictionaries(st.text(max_size=5), JSON_LEAF, max_size=3),
    metadata=st.dictionaries(st.text(max_size=5), JSON_LEAF, max_size=3),
    bin_type=st.integers(-5, 40),
    cap=st.integers(0, 100),
)
def test_binary_of_any_message_is_a_value(
    msg_type: MsgType, payload: Any, metadata: dict[str, Any], bin_type: int, cap: int
) -> None:
    result = binary_of(
        HiveMessage(msg_type=msg_type, payload=payload, metadata=metadata, bin_type=bin_type), max_bytes=cap
    )
    if isinstance(result, Success):
        binary = result.unwrap()
        assert msg_type is MsgType.BINARY and len(binary.data) <= cap and 0 <= binary.bin_type <= 15
        assert bin_type_of(binary.kind) == binary.bin_type
    else:
        assert isinstance(result.failure().reason, str)
        assert not isinstance(payload, bytes) or str(payload) not in result.failure().reason  # sizes, never bytes


@given(data=ANYTHING | st.binary(max_size=50), kind=ANYTHING | KINDS, metadata=ANYTHING | METADATA)
def test_the_send_door_raises_only_typed_errors(data: Any, kind: Any, metadata: Any) -> None:
    try:
        sent = outgoing_binary(data, kind, metadata, max_bytes=40)
    except ThalovantArgumentError as exc:  # PayloadTooLarge and ArgumentTypeError are ArgumentErrors too
        assert isinstance(exc, ThalovantError) and exc.argument in ("data", "kind", "metadata")
    else:
        assert isinstance(sent, ThalovantBinary) and len(sent.data) <= 40


@given(kind=ANYTHING | st.sampled_from(AUDIO_KINDS), rate=ANYTHING, width=ANYTHING, lang=ANYTHING)
def test_audio_metadata_raises_only_typed_errors(kind: Any, rate: Any, width: Any, lang: Any) -> None:
    try:
        meta = audio_metadata(kind=kind, sample_rate=rate, sample_width=width, lang=lang)
    except ThalovantArgumentError:
        return
    assert meta["sample_rate"] == rate and meta["sample_width"] in (1, 2, 3, 4) and kind in AUDIO_KINDS


@given(st.text(max_size=250) | ANYTHING)
def test_file_names_are_plain_names_or_typed_errors(name: Any) -> None:
    try:
        meta = file_metadata(name)
    except ThalovantArgumentError:
        return
    assert "/" not in name and "\\" not in name and "\0" not in name and name not in ("", ".", "..")
    assert meta == {"file_name": name}


def test_the_cap_error_names_size_and_cap_but_no_content() -> None:
    with pytest.raises(ThalovantPayloadTooLargeError) as raised:
        outgoing_binary(b"SECRET-PCM" * 10, "raw_audio", max_bytes=50)
    assert (raised.value.size, raised.value.limit, raised.value.argument) == (100, 50, "data")
    assert "SECRET" not in str(raised.value) and "100 bytes" in str(raised.value) and "50" in str(raised.value)
    assert MAX_BINARY_BYTES == 16 * 1024 * 1024


def test_repr_shows_sizes_and_keys_only() -> None:
    clip = outgoing_binary(b"\x00secret-audio", "tts_audio", {"utterance": "private words"})
    assert repr(clip) == "ThalovantBinary(kind='tts_audio', size=13, metadata_keys=['utterance'])"
