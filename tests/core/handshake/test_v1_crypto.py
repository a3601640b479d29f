"""crypto: every legacy AEAD/KDF vector byte for byte; tampering fails; the channel round-trips."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from tests.vectors.load import legacy, live
from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.v1_crypto import (
    Cipher,
    Encoding,
    LegacyChannel,
    client_envelope,
    decode_text,
    derive_password_key,
    encode_text,
    open_binary,
    open_wrapper,
    preshared_key,
    seal_binary,
    seal_wrapper,
    verify_envelope,
)
from thalovant.core.machine import Entropy
from thalovant.core.wire import basecodecs
from thalovant.core.wire.codec import decode_json, encode_json
from thalovant.core.wire.frame import FrameProblem
from thalovant.core.wire.message import HiveMessage, MsgType

FAST = settings(max_examples=100, deadline=None)
V = legacy()
L2, L3, L4, L5, L6 = (
    V["L2_password_handshake"],
    V["L3_aes_gcm_json"],
    V["L4_preshared_crypto_key"],
    V["L5_chacha20_poly1305_json"],
    V["L6_encrypt_bin"],
)
KEY = bytes.fromhex(L3["key_hex"])


def counter_entropy() -> Entropy:
    counter = itertools.count()

    def entropy(n: int) -> bytes:
        start = next(counter) * 7
        return bytes((start + i) % 256 for i in range(n))

    return entropy


def test_l2_password_envelopes_salt_and_key() -> None:
    iv_c, iv_h = bytes.fromhex(L2["client_iv_hex"]), bytes.fromhex(L2["hub_iv_hex"])
    assert client_envelope(L2["password"], iv_c) == L2["client_envelope"]
    assert client_envelope(L2["password"], iv_h) == L2["hub_envelope"]
    assert verify_envelope(L2["hub_envelope"], L2["password"], own_iv=iv_c) == Success(iv_h)
    assert derive_password_key(L2["password"], iv_c, iv_h).hex() == L2["session_key_hex"]


def test_wrong_password_and_reflection_are_detected() -> None:
    iv_c = bytes.fromhex(L2["client_iv_hex"])
    wrong = verify_envelope(L2["hub_envelope"], "not-the-password", own_iv=iv_c)
    assert isinstance(wrong, Failure) and wrong.failure().code == "wrong-password"
    mirror = verify_envelope(L2["client_envelope"], L2["password"], own_iv=iv_c)
    assert isinstance(mirror, Failure) and mirror.failure().code == "bad-envelope"
    for bad in (None, "", "zz" * 24, "0" * 47, "0" * 81):
        assert isinstance(verify_envelope(bad, L2["password"], own_iv=iv_c), Failure)


def test_live_hub_envelope_has_the_documented_shape() -> None:
    env = json.loads(live()["hub4_ws_password_response"])["payload"]["envelope"]
    assert len(env) == 48
    assert isinstance(verify_envelope(env, "some-password", own_iv=b"\x00" * 8), Failure)


@pytest.mark.parametrize("name", sorted(L3["wire_by_encoding"]))
def test_l3_wrapper_in_every_encoding(name: str) -> None:
    wire = L3["wire_by_encoding"][name]
    enc = Encoding(name)
    nonce = bytes.fromhex(L3["nonce_hex"])
    assert seal_wrapper(L3["plaintext"], key=KEY, cipher=Cipher.AES_GCM, encoding=enc, nonce=nonce) == wire
    assert open_wrapper(wire, key=KEY, cipher=Cipher.AES_GCM, encoding=enc) == Success(L3["plaintext"])


def test_l3_ciphertext_and_tag_hex() -> None:
    wire = json.loads(L3["wire_by_encoding"]["JSON-HEX"])
    assert wire["ciphertext"] + wire["tag"] == L3["ciphertext_and_tag_hex"]


def test_l4_preshared_key() -> None:
    key = preshared_key(L4["crypto_key"])
    assert key.hex() == L4["key_bytes_hex"]
    nonce = bytes.fromhex(L4["nonce_hex"])
    wire = seal_wrapper(L4["plaintext"], key=key, cipher=Cipher.AES_GCM, encoding=Encoding.JSON_HEX, nonce=nonce)
    assert wire == L4["wire"]
    assert preshared_key(L4["crypto_key"] + "extra-ignored") == key  # the hub keeps crypto_key[:16]


def test_l5_chacha20_json_b64() -> None:
    nonce = bytes.fromhex(L5["nonce_hex"])
    key = bytes.fromhex(L5["key_hex"])
    wire = seal_wrapper(
        L5["plaintext"], key=key, cipher=Cipher.CHACHA20_POLY1305, encoding=Encoding.JSON_B64, nonce=nonce
    )
    assert wire == L5["wire"]
    assert open_wrapper(wire, key=key, cipher=Cipher.CHACHA20_POLY1305, encoding=Encoding.JSON_B64) == Success(
        L5["plaintext"]
    )


@pytest.mark.parametrize(
    ("cipher", "name"), [(Cipher.AES_GCM, "aes_gcm"), (Cipher.CHACHA20_POLY1305, "chacha20_poly1305")]
)
def test_l6_binary_frames(cipher: Cipher, name: str) -> None:
    plain = bytes.fromhex(L6["plaintext_hex"])
    frame = seal_binary(plain, key=KEY, cipher=cipher, nonce=bytes.fromhex(L6[name]["nonce_hex"]))
    assert frame.hex() == L6[name]["frame_hex"]
    assert open_binary(frame, key=KEY, cipher=cipher) == Success(plain)


def test_wrapper_without_tag_web_crypto_form_is_accepted() -> None:
    wire = json.loads(L3["wire_by_encoding"]["JSON-HEX"])
    merged = json.dumps({"ciphertext": wire["ciphertext"] + wire["tag"], "nonce": wire["nonce"]})
    assert open_wrapper(merged, key=KEY, cipher=Cipher.AES_GCM, encoding=Encoding.JSON_HEX) == Success(L3["plaintext"])


def test_tampering_and_wrong_keys_fail_with_auth_failed() -> None:
    wire = json.loads(L3["wire_by_encoding"]["JSON-HEX"])
    ct = bytearray.fromhex(wire["ciphertext"])
    ct[5] ^= 1
    tampered = json.dumps({**wire, "ciphertext": ct.hex()})
    for text, key in ((tampered, KEY), (L3["wire_by_encoding"]["JSON-HEX"], bytes(32))):
        res = open_wrapper(text, key=key, cipher=Cipher.AES_GCM, encoding=Encoding.JSON_HEX)
        assert isinstance(res, Failure) and res.failure().code == "auth-failed"
    frame = bytearray.fromhex(L6["aes_gcm"]["frame_hex"])
    frame[-1] ^= 0x80
    assert isinstance(open_binary(bytes(frame), key=KEY, cipher=Cipher.AES_GCM), Failure)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{}",
        '{"ciphertext": 1, "nonce": "00"}',
        '{"ciphertext": "zz", "nonce": "00", "tag": "00"}',
        '{"ciphertext": "00", "nonce": "00", "tag": "00"}',
        '{"ciphertext": "00", "nonce": "' + "00" * 16 + '"}',
    ],
)
def test_malformed_wrappers_fail(text: str) -> None:
    assert isinstance(open_wrapper(text, key=KEY, cipher=Cipher.AES_GCM, encoding=Encoding.JSON_HEX), Failure)


def test_bad_keys_are_caller_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        LegacyChannel(key=bytes(16), cipher=Cipher.CHACHA20_POLY1305, encoding=Encoding.JSON_HEX, entropy=bytes)
    with pytest.raises(LocalProtocolError):
        preshared_key("short")


@FAST
@given(st.binary(max_size=200), st.sampled_from(list(Encoding)))
def test_text_encodings_round_trip(data: bytes, encoding: Encoding) -> None:
    assert decode_text(encode_text(data, encoding), encoding) == Success(data)


@FAST
@given(st.text(max_size=60), st.sampled_from(list(Encoding)))
def test_text_decoders_are_total(text: str, encoding: Encoding) -> None:
    assert isinstance(decode_text(text, encoding), Success | Failure)


def test_basecodec_edge_cases() -> None:
    for data in (b"", b"\x00", b"\xff" * 5, bytes(range(256))):
        assert basecodecs.b91decode(basecodecs.b91encode(data)) == data
        assert basecodecs.z85b_decode(basecodecs.z85b_encode(data)) == data
        assert basecodecs.z85p_decode(basecodecs.z85p_encode(data)) == data
    with pytest.raises(ValueError):
        basecodecs.z85p_decode("\x05abcde")


ciphers = st.sampled_from([(Cipher.AES_GCM, KEY), (Cipher.AES_GCM, bytes(16)), (Cipher.CHACHA20_POLY1305, KEY)])
messages = st.builds(
    HiveMessage,
    msg_type=st.sampled_from([MsgType.BUS, MsgType.HELLO, MsgType.PROPAGATE]),
    payload=st.dictionaries(st.text(max_size=6), st.text(max_size=20) | st.integers(-9, 9), max_size=4),
)


@FAST
@given(ciphers, st.sampled_from(list(Encoding)), messages, st.booleans())
def test_channel_seal_open_round_trip(
    pair: tuple[Cipher, bytes], encoding: Encoding, msg: HiveMessage, binary: bool
) -> None:
    cipher, key = pair
    sender = LegacyChannel(key=key, cipher=cipher, encoding=encoding, entropy=counter_entropy())
    receiver = LegacyChannel(key=key, cipher=cipher, encoding=encoding, entropy=counter_entropy())
    (frame,) = sender.seal(msg, binary=binary)
    assert isinstance(frame, bytes) == binary
    assert receiver.open(frame) == Success(msg)


def test_channel_always_sends_binary_messages_as_binary_frames() -> None:
    chan = LegacyChannel(key=KEY, cipher=Cipher.AES_GCM, encoding=Encoding.JSON_HEX, entropy=counter_entropy())
    msg = HiveMessage(msg_type=MsgType.BINARY, payload=b"\x01\x02", bin_type=1, metadata={"sample_rate": 16000})
    (frame,) = chan.seal(msg)
    assert isinstance(frame, bytes)
    assert chan.open(frame) == Success(msg)


def test_channel_open_opens_the_l3_and_l6_vectors_and_flags_cleartext() -> None:
    chan = LegacyChannel(key=KEY, cipher=Cipher.AES_GCM, encoding=Encoding.JSON_HEX, entropy=counter_entropy())
    assert chan.open(L3["wire_by_encoding"]["JSON-HEX"]) == decode_json(L3["plaintext"])
    bus = chan.open(bytes.fromhex(L6["aes_gcm"]["frame_hex"])).unwrap()
    assert bus is not None and bus.msg_type is MsgType.BUS
    clear = chan.open(encode_json(HiveMessage(msg_type=MsgType.BUS, payload={})))
    assert isinstance(clear, Failure) and clear.failure().code == "downgrade"
    assert "603de8" not in repr(chan)


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_channel_open_is_total(frame: bytes | str) -> None:
    chan = LegacyChannel(key=KEY, cipher=Cipher.AES_GCM, encoding=Encoding.JSON_HEX, entropy=counter_entropy())
    result = chan.open(frame)
    assert isinstance(result, Failure) and isinstance(result.failure(), FrameProblem)


@FAST
@given(st.dictionaries(st.sampled_from(["ciphertext", "tag", "nonce", "x"]), st.text(max_size=40) | st.integers()))
def test_channel_open_is_total_on_wrapper_shaped_json(obj: dict[str, object]) -> None:
    chan = LegacyChannel(key=KEY, cipher=Cipher.AES_GCM, encoding=Encoding.JSON_B64, entropy=counter_entropy())
    assert isinstance(chan.open(json.dumps(obj)), Failure)
