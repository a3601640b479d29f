"""Noise primitives (thalovant.core.handshake.noise): spec §7.3-§7.6 and vectors N1-N5 byte for byte."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from tests.paths import TESTS
from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.noise import (
    PATTERN_KK,
    PATTERN_XX,
    SUITE_AESGCM,
    SUITE_CHACHA,
    CipherState,
    NoiseProblem,
    SymmetricState,
    build_prologue,
    canonical_json,
    derive_psk,
    hkdf,
    protocol_name,
    public_key,
)
from thalovant.core.handshake.noise_handshaker import NoiseHandshaker

VECTORS = json.loads((TESTS / "vectors" / "protocol-vectors.json").read_text("utf-8"))["noise_v3"]
KEYS = VECTORS["N2_keys"]
PSK = bytes.fromhex(VECTORS["N1_psk"]["psk_hex"])
H = bytes.fromhex

CASES = [
    ("N3_XXpsk2_ChaChaPoly", PATTERN_XX, SUITE_CHACHA, ["XXpsk2"]),
    ("N4_XXpsk2_AESGCM", PATTERN_XX, SUITE_AESGCM, ["XXpsk2"]),
    ("N5_KKpsk0_ChaChaPoly", PATTERN_KK, SUITE_CHACHA, ["KKpsk0", "XXpsk2"]),
]


def offer_for(patterns: list[str]) -> dict[str, Any]:
    offer = dict(KEYS["handshake_offer_payload"])
    offer["noise"] = {"patterns": patterns, "suites": offer["noise"]["suites"]}
    return offer


def fixed(hex_key: str) -> Any:
    return lambda n: H(hex_key)[:n]


def pair(
    pattern: str, suite: str, patterns: list[str], *, psk_client: bytes = PSK, psk_hub: bytes = PSK
) -> tuple[NoiseHandshaker, NoiseHandshaker]:
    prologue = build_prologue(KEYS["hello_payload"], offer_for(patterns), protocol_name(pattern, suite))
    kk = pattern == PATTERN_KK
    client = NoiseHandshaker(
        pattern=pattern,
        suite=suite,
        psk=psk_client,
        prologue=prologue,
        static_private=H(KEYS["client_static_priv_hex"]),
        entropy=fixed(KEYS["client_ephemeral_priv_hex"]),
        initiator=True,
        remote_static=H(KEYS["hub_static_pub_hex"]) if kk else None,
    )
    hub = NoiseHandshaker(
        pattern=pattern,
        suite=suite,
        psk=psk_hub,
        prologue=prologue,
        static_private=H(KEYS["hub_static_priv_hex"]),
        entropy=fixed(KEYS["hub_ephemeral_priv_hex"]),
        initiator=False,
        remote_static=H(KEYS["client_static_pub_hex"]) if kk else None,
    )
    return client, hub


# ---- N1 / N2 / prologue ---------------------------------------------------------------------------


def test_psk_vector_n1_argon2id() -> None:
    n1 = VECTORS["N1_psk"]
    assert hashlib.sha256(n1["node_id"].encode()).hexdigest() == n1["salt_hex"]
    assert derive_psk(n1["password"], n1["node_id"]).hex() == n1["psk_hex"]


def test_static_public_keys_vector_n2() -> None:
    assert public_key(H(KEYS["client_static_priv_hex"])).hex() == KEYS["client_static_pub_hex"]
    assert public_key(H(KEYS["hub_static_priv_hex"])).hex() == KEYS["hub_static_pub_hex"]


@pytest.mark.parametrize(("name", "pattern", "suite", "patterns"), CASES)
def test_prologue_vectors(name: str, pattern: str, suite: str, patterns: list[str]) -> None:
    vec = VECTORS[name]
    assert protocol_name(pattern, suite) == vec["protocol_name"]
    prologue = build_prologue(KEYS["hello_payload"], offer_for(patterns), vec["protocol_name"])
    assert prologue.hex() == vec["prologue_hex"]
    assert prologue.decode() == vec["prologue_text"]


def test_prologue_is_sensitive_to_list_order() -> None:
    offer = offer_for(["XXpsk2"])
    shuffled = dict(offer, ciphers=list(reversed(offer["ciphers"])))
    name = protocol_name(PATTERN_XX, SUITE_CHACHA)
    assert build_prologue({}, offer, name) != build_prologue({}, shuffled, name)


def test_canonical_json_keeps_non_ascii_and_sorts() -> None:
    assert canonical_json({"z": 1, "a": "ü"}) == '{"a":"ü","z":1}'.encode()


def test_initial_hash_pads_short_names_and_hashes_long_ones() -> None:
    short = protocol_name(PATTERN_XX, SUITE_AESGCM)
    assert len(short) == 32
    assert SymmetricState(short, SUITE_AESGCM).h == short.encode()
    long = protocol_name(PATTERN_XX, SUITE_CHACHA)
    assert SymmetricState(long, SUITE_CHACHA).h == hashlib.sha256(long.encode()).digest()


@given(ck=st.binary(min_size=32, max_size=32), ikm=st.binary(max_size=64))
@settings(max_examples=50, deadline=None)
def test_noise_hkdf_equals_rfc5869_with_empty_info(ck: bytes, ikm: bytes) -> None:
    ours = b"".join(hkdf(ck, ikm, 3))
    reference = HKDF(algorithm=hashes.SHA256(), length=96, salt=ck, info=b"").derive(ikm)
    assert ours == reference


# ---- N3-N5: every handshake message, both roles --------------------------------------------------


@pytest.mark.parametrize(("name", "pattern", "suite", "patterns"), CASES)
def test_handshake_vectors_both_roles(name: str, pattern: str, suite: str, patterns: list[str]) -> None:
    vec = VECTORS[name]
    client, hub = pair(pattern, suite, patterns)
    m1 = client.write_message(vec["msg1_payload"].encode())
    assert m1.hex() == vec["msg1_hex"]
    assert hub.read_message(m1) == Success(vec["msg1_payload"].encode())
    m2 = hub.write_message(vec["msg2_payload"].encode())
    assert m2.hex() == vec["msg2_hex"]
    assert client.read_message(m2) == Success(vec["msg2_payload"].encode())
    if pattern == PATTERN_XX:
        assert not client.finished
        m3 = client.write_message(b"")
        assert m3.hex() == vec["msg3_hex"]
        assert hub.read_message(m3) == Success(b"")
    else:
        assert "msg3_hex" not in vec
    assert client.finished and hub.finished
    assert client.remote_static == H(KEYS["hub_static_pub_hex"])
    assert hub.remote_static == H(KEYS["client_static_pub_hex"])
    assert client.handshake_hash == hub.handshake_hash


@pytest.mark.parametrize(("name", "pattern", "suite", "patterns"), CASES)
def test_transport_vectors_after_split(name: str, pattern: str, suite: str, patterns: list[str]) -> None:
    vec = VECTORS[name]
    client, hub = pair(pattern, suite, patterns)
    client_hub_messages = [b"", b""] if pattern == PATTERN_KK else [b"", b"", b""]
    sides = [client, hub]
    for i, payload in enumerate(client_hub_messages):
        writer, reader = sides[i % 2], sides[(i + 1) % 2]
        assert isinstance(reader.read_message(writer.write_message(payload)), Success)
    c_send, c_recv = client.split()
    h_send, h_recv = hub.split()
    for frame in vec["transport"]["client_to_hub"]:
        plaintext = b"\x00" + frame["plaintext_json"].encode()
        if "marked_plaintext_hex" in frame:
            assert plaintext.hex() == frame["marked_plaintext_hex"]
        sealed = c_send.encrypt_with_ad(b"", plaintext)
        assert sealed.hex() == frame["frame_hex"]
        assert h_recv.decrypt_with_ad(b"", sealed) == Success(plaintext)
    for frame in vec["transport"]["hub_to_client"]:
        plaintext = b"\x00" + frame["plaintext_json"].encode()
        assert h_send.encrypt_with_ad(b"", plaintext).hex() == frame["frame_hex"]
        assert c_recv.decrypt_with_ad(b"", H(frame["frame_hex"])) == Success(plaintext)


# ---- failures ------------------------------------------------------------------------------------


def test_wrong_psk_xx_fails_at_message_2_as_auth() -> None:
    client, hub = pair(PATTERN_XX, SUITE_CHACHA, ["XXpsk2"], psk_hub=bytes(32))
    assert isinstance(hub.read_message(client.write_message(b"{}")), Success)  # XXpsk2 mixes the psk in message 2
    result = client.read_message(hub.write_message(b"x"))
    assert result == Failure(NoiseProblem("auth-failed", "authentication failed at nonce 0"))
    assert client.read_message(b"again") == Failure(NoiseProblem("poisoned", "an earlier handshake message failed"))


def test_wrong_psk_kk_fails_at_message_1_on_the_hub() -> None:
    client, hub = pair(PATTERN_KK, SUITE_CHACHA, ["KKpsk0", "XXpsk2"], psk_hub=bytes(32))
    result = hub.read_message(client.write_message(b"{}"))
    assert isinstance(result, Failure)
    assert result.failure().code == "auth-failed"


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_any_flipped_bit_in_a_handshake_message_is_detected(data: st.DataObject) -> None:
    vec = VECTORS["N3_XXpsk2_ChaChaPoly"]
    which = data.draw(st.sampled_from(["msg1", "msg2", "msg3"]))
    client, hub = pair(PATTERN_XX, SUITE_CHACHA, ["XXpsk2"])
    msgs = {k: bytearray(H(vec[f"{k}_hex"])) for k in ("msg1", "msg2", "msg3")}
    pos = data.draw(st.integers(0, len(msgs[which]) - 1))
    bit = data.draw(st.integers(0, 7))
    msgs[which][pos] ^= 1 << bit
    readers = {"msg1": hub, "msg2": client, "msg3": hub}
    writers = {"msg1": client, "msg2": hub, "msg3": client}
    for k in ("msg1", "msg2", "msg3"):
        writers[k].write_message(vec[f"{k}_payload"].encode() if k != "msg3" else b"")
        result = readers[k].read_message(bytes(msgs[k]))
        if k == which:
            assert isinstance(result, Failure)
            assert result.failure().code in {"auth-failed", "bad-key"}
            return
        assert isinstance(result, Success)


@given(garbage=st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_garbage_handshake_messages_give_typed_problems(garbage: bytes) -> None:
    for pattern, suite, patterns in ((PATTERN_XX, SUITE_CHACHA, ["XXpsk2"]), (PATTERN_KK, SUITE_AESGCM, ["KKpsk0"])):
        client, hub = pair(pattern, suite, patterns)
        hub_result = hub.read_message(garbage)  # garbage as message 1
        assert isinstance(hub_result, Failure)
        assert isinstance(hub_result.failure(), NoiseProblem)
        client.write_message(b"")
        client_result = client.read_message(garbage)  # garbage as message 2
        assert isinstance(client_result, Failure)


def test_low_order_ephemeral_key_is_a_bad_key_problem() -> None:
    client, _hub = pair(PATTERN_XX, SUITE_CHACHA, ["XXpsk2"])
    client.write_message(b"")
    result = client.read_message(bytes(32) + bytes(48) + bytes(16))  # e = 0 -> all-zero DH output
    assert result == Failure(NoiseProblem("bad-key", "the peer sent an unusable X25519 public key"))


def test_oversized_handshake_message_is_refused() -> None:
    client, hub = pair(PATTERN_XX, SUITE_CHACHA, ["XXpsk2"])
    result = hub.read_message(bytes(65536))
    assert isinstance(result, Failure) and result.failure().code == "too-long"
    with pytest.raises(LocalProtocolError):
        client.write_message(bytes(70000))


def test_turn_order_and_split_misuse_raise_local_errors() -> None:
    client, hub = pair(PATTERN_XX, SUITE_CHACHA, ["XXpsk2"])
    with pytest.raises(LocalProtocolError):
        hub.write_message(b"")  # the initiator writes first
    with pytest.raises(LocalProtocolError):
        client.read_message(b"")
    with pytest.raises(LocalProtocolError):
        client.split()
    with pytest.raises(LocalProtocolError):
        NoiseHandshaker(
            pattern=PATTERN_KK,
            suite=SUITE_CHACHA,
            psk=PSK,
            prologue=b"",
            static_private=bytes(32),
            entropy=fixed(KEYS["client_ephemeral_priv_hex"]),
            initiator=True,
        )  # KK without the peer's static key
    with pytest.raises(LocalProtocolError):
        CipherState("25519_Nope_SHA512")


# ---- CipherState ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suite", "aead", "order"), [(SUITE_CHACHA, ChaCha20Poly1305, "little"), (SUITE_AESGCM, AESGCM, "big")]
)
def test_cipher_nonce_layout_and_counter(suite: str, aead: Any, order: Any) -> None:
    key = bytes(range(32))
    cs = CipherState(suite, key)
    for n in range(3):
        expected = aead(key).encrypt(b"\x00" * 4 + n.to_bytes(8, order), b"m", b"ad")
        assert cs.encrypt_with_ad(b"ad", b"m") == expected
    assert cs.nonce == 3


def test_cipher_counter_does_not_move_on_failure_and_repr_hides_key() -> None:
    key = bytes(range(100, 132))
    sender, receiver = CipherState(SUITE_CHACHA, key), CipherState(SUITE_CHACHA, key)
    good = sender.encrypt_with_ad(b"", b"hello")
    assert receiver.decrypt_with_ad(b"", good[:-1] + bytes([good[-1] ^ 1])).failure().code == "auth-failed"
    assert receiver.decrypt_with_ad(b"", b"short").failure().code == "bad-length"
    assert receiver.nonce == 0
    assert receiver.decrypt_with_ad(b"", good) == Success(b"hello")
    assert key.hex() not in repr(receiver) and "keyed=True" in repr(receiver)
    unkeyed = CipherState(SUITE_AESGCM)
    assert unkeyed.encrypt_with_ad(b"", b"clear") == b"clear"
