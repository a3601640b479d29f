"""v3 transport framing and NoiseChannel (thalovant.core.handshake.v3_channel): spec §7.7, vector N3 transport."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from tests.paths import TESTS
from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.contract import SecureChannel
from thalovant.core.handshake.noise import PATTERN_XX, SUITE_AESGCM, SUITE_CHACHA, CipherState, NoiseProblem
from thalovant.core.handshake.v3_channel import (
    CHUNK_BODY,
    MAX_REASSEMBLED,
    BodyKind,
    NoiseChannel,
    Reassembler,
    frame_plaintexts,
)
from thalovant.core.wire.codec import decode_json
from thalovant.core.wire.frame import FrameProblem
from thalovant.core.wire.message import HiveMessage, MsgType

VECTORS = json.loads((TESTS / "vectors" / "protocol-vectors.json").read_text("utf-8"))["noise_v3"]
N3 = VECTORS["N3_XXpsk2_ChaChaPoly"]
H = bytes.fromhex


def channels(suite: str = SUITE_CHACHA) -> tuple[NoiseChannel, NoiseChannel]:
    """A (client, hub) channel pair sharing two fresh directional keys."""
    k1, k2 = bytes(range(32)), bytes(range(32, 64))
    client = NoiseChannel(
        send=CipherState(suite, k1),
        receive=CipherState(suite, k2),
        pattern=PATTERN_XX,
        suite=suite,
        local_static=b"c" * 32,
        remote_static=b"h" * 32,
    )
    hub = NoiseChannel(
        send=CipherState(suite, k2),
        receive=CipherState(suite, k1),
        pattern=PATTERN_XX,
        suite=suite,
        local_static=b"h" * 32,
        remote_static=b"c" * 32,
    )
    return client, hub


def bus(data: dict[str, Any]) -> HiveMessage:
    return HiveMessage(msg_type=MsgType.BUS, payload={"type": "speak", "data": data, "context": {}})


# ---- plaintext framing ---------------------------------------------------------------------------


def test_chunking_vector_70082_bytes_gives_frames_of_65017_and_5099() -> None:
    check = N3["chunking_check"]
    client, _hub = channels()
    plaintexts = frame_plaintexts(BodyKind.JSON, b"A" * check["plaintext_len"])
    assert [p[0] for p in plaintexts] == [0x02, 0x05]
    frames = [client._send.encrypt_with_ad(b"", p) for p in plaintexts]
    assert [len(f) for f in frames] == check["frame_lens"]


@given(size=st.sampled_from([0, 1, CHUNK_BODY - 1, CHUNK_BODY, CHUNK_BODY + 1, 2 * CHUNK_BODY, 3 * CHUNK_BODY + 7]))
@settings(max_examples=30, deadline=None)
def test_frame_then_reassemble_round_trips(size: int) -> None:
    body = bytes(i % 251 for i in range(size))
    for kind in BodyKind:
        parts = frame_plaintexts(kind, body)
        assert all(len(p) <= CHUNK_BODY + 1 for p in parts)
        assert len(parts) == max(1, -(-size // CHUNK_BODY))
        reasm = Reassembler()
        results = [reasm.feed(p) for p in parts]
        assert results[:-1] == [Success(None)] * (len(parts) - 1)
        assert results[-1] == Success((kind, body))
        assert not reasm.in_progress


def test_reassembler_order_violations_are_problems() -> None:
    first, last = frame_plaintexts(BodyKind.JSON, bytes(CHUNK_BODY + 1))
    reasm = Reassembler()
    assert reasm.feed(last) == Failure(NoiseProblem("bad-marker", "a continuation chunk without a first chunk"))
    assert reasm.feed(b"") == Failure(NoiseProblem("bad-marker", "empty transport plaintext"))
    assert reasm.feed(b"\x06{}").failure().code == "bad-marker"
    assert reasm.feed(first) == Success(None)
    assert reasm.feed(b"\x00{}") == Failure(NoiseProblem("bad-marker", "a new message started inside a chunk sequence"))


def test_reassembly_cap_is_32_mib() -> None:
    reasm = Reassembler()
    chunk = bytes(CHUNK_BODY)
    assert reasm.feed(b"\x03" + chunk) == Success(None)
    result: Any = Success(None)
    for _ in range(MAX_REASSEMBLED // CHUNK_BODY + 1):
        result = reasm.feed(b"\x04" + chunk)
        if isinstance(result, Failure):
            break
    assert result == Failure(NoiseProblem("too-long", "reassembled message exceeds 32 MiB"))
    with pytest.raises(LocalProtocolError):
        frame_plaintexts(BodyKind.JSON, bytes(MAX_REASSEMBLED + 1))


# ---- the channel ---------------------------------------------------------------------------------


def test_channel_satisfies_the_secure_channel_protocol() -> None:
    client, _ = channels()
    as_protocol: SecureChannel = client
    assert as_protocol.generation == 3


def test_channel_reproduces_vector_frames_and_opens_the_hub_frame() -> None:
    """With the N3 transport keys, seal() yields the vector bytes (JSON encoding included)."""
    from tests.core.handshake.test_noise import pair  # the handshake over the vector keys

    client_hs, hub_hs = pair(PATTERN_XX, SUITE_CHACHA, ["XXpsk2"])
    hub_hs.read_message(client_hs.write_message(b""))
    client_hs.read_message(hub_hs.write_message(b""))
    hub_hs.read_message(client_hs.write_message(b""))
    send, receive = client_hs.split()
    channel = NoiseChannel(
        send=send, receive=receive, pattern=PATTERN_XX, suite=SUITE_CHACHA, local_static=b"", remote_static=b""
    )
    for vec in N3["transport"]["client_to_hub"]:
        message = decode_json(vec["plaintext_json"]).unwrap()
        assert channel.seal(message) == [H(vec["frame_hex"])]
    speak = N3["transport"]["hub_to_client"][0]
    opened = channel.open(H(speak["frame_hex"]))
    assert opened == Success(decode_json(speak["plaintext_json"]).unwrap())
    assert opened.unwrap().bus().data == {"utterance": "echo: hello"}


@pytest.mark.parametrize("suite", [SUITE_CHACHA, SUITE_AESGCM])
def test_seal_open_round_trip_json_bitstring_and_binary(suite: str) -> None:
    client, hub = channels(suite)
    msg = bus({"utterance": "héllo", "n": 1})
    assert [hub.open(f) for f in client.seal(msg)] == [Success(msg)]
    bits = [hub.open(f) for f in client.seal(msg, binary=True)]
    assert len(bits) == 1
    got = bits[0].unwrap()
    assert got.msg_type is MsgType.BUS and got.payload == msg.payload
    blob = HiveMessage(msg_type=MsgType.BINARY, payload=b"\x00\xffaudio", bin_type=1)
    [frame] = hub.seal(blob)  # bytes payloads go out as bitstrings automatically
    opened = client.open(frame).unwrap()
    assert opened.payload == b"\x00\xffaudio" and opened.bin_type == 1


def test_large_message_is_chunked_and_reassembled() -> None:
    client, hub = channels()
    msg = bus({"blob": "x" * 200_000})
    frames = client.seal(msg)
    assert len(frames) == 4 and all(isinstance(f, bytes) and len(f) <= 65017 for f in frames)
    results = [hub.open(f) for f in frames]
    assert results == [Success(None)] * 3 + [Success(msg)]


@given(texts=st.lists(st.text(max_size=40), min_size=1, max_size=5))
@settings(max_examples=50, deadline=None)
def test_many_messages_round_trip_in_order(texts: list[str]) -> None:
    client, hub = channels()
    msgs = [bus({"t": t, "i": i}) for i, t in enumerate(texts)]
    for m in msgs:
        assert [hub.open(f) for f in client.seal(m)] == [Success(m)]
        assert [client.open(f) for f in hub.seal(m)] == [Success(m)]


def test_text_frame_after_handshake_is_a_fatal_downgrade() -> None:
    client, hub = channels()
    assert hub.open('{"msg_type": "bus"}') == Failure(FrameProblem("downgrade", "text frame after the Noise handshake"))
    assert hub.failed
    [frame] = client.seal(bus({}))
    assert hub.open(frame) == Failure(FrameProblem("channel-failed", "an earlier Noise frame failed"))


@given(pos=st.integers(min_value=0), bit=st.integers(0, 7))
@settings(max_examples=100, deadline=None)
def test_tampered_frame_fails_authentication_and_poisons(pos: int, bit: int) -> None:
    client, hub = channels()
    [frame] = client.seal(bus({"a": 1}))
    bad = bytearray(frame)
    bad[pos % len(bad)] ^= 1 << bit
    result = hub.open(bytes(bad))
    assert isinstance(result, Failure) and result.failure().code == "auth-failed"
    assert hub.open(frame).failure().code == "channel-failed"


def test_reordered_or_replayed_frames_fail() -> None:
    client, hub = channels()
    client.seal(bus({"n": 1}))  # nonce 0, never delivered
    second = client.seal(bus({"n": 2}))
    assert hub.open(second[0]).failure().code == "auth-failed"
    client2, hub2 = channels()
    [f0] = client2.seal(bus({"n": 1}))
    assert isinstance(hub2.open(f0), Success)
    assert hub2.open(f0).failure().code == "auth-failed"  # replay


def test_complete_frame_inside_a_chunk_sequence_is_fatal() -> None:
    client, hub = channels()
    first_chunk = frame_plaintexts(BodyKind.JSON, bytes(70_000))[0]
    assert hub.open(client._send.encrypt_with_ad(b"", first_chunk)) == Success(None)
    [small] = client.seal(bus({}))  # authentic, in sequence, but a complete frame mid-chunking
    result = hub.open(small)
    assert result.failure().code == "bad-frame"
    assert hub.failed


def test_decrypted_but_unparsable_body_is_reported_without_poisoning() -> None:
    client, hub = channels()
    frame = client._send.encrypt_with_ad(b"", b"\x00not json")
    assert hub.open(frame).failure().code == "bad-json"
    assert not hub.failed
    assert [hub.open(f) for f in client.seal(bus({}))] == [Success(bus({}))]


@given(garbage=st.one_of(st.binary(max_size=200), st.text(max_size=50)))
@settings(max_examples=200, deadline=None)
def test_garbage_frames_give_typed_problems_only(garbage: bytes | str) -> None:
    _, hub = channels()
    result = hub.open(garbage)
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), FrameProblem)
    assert result.failure().code in {"downgrade", "auth-failed", "bad-frame"}


@given(body=st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_authentic_garbage_plaintexts_never_raise(body: bytes) -> None:
    """Even a hub holding the key cannot make open() raise, whatever it encrypts."""
    client, hub = channels()
    result = client.open(hub._send.encrypt_with_ad(b"", body))
    assert isinstance(result, Success | Failure)
    if isinstance(result, Failure):
        assert isinstance(result.failure(), FrameProblem)


def test_oversized_frame_is_refused_and_repr_hides_keys() -> None:
    client, hub = channels()
    assert hub.open(bytes(65536)).failure().code == "bad-frame"
    text = repr(client)
    assert bytes(range(32)).hex() not in text and "sent=0" in text
    assert client.hub_static == b"h" * 32 and client.client_static == b"c" * 32
