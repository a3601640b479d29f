"""handshake_v1: the L2/L4 vectors through the machine, path choice, failures, totality."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from tests.vectors.load import legacy
from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.contract import GreetingReceived, HandshakeDone, HandshakeFailed, SendHandshake
from thalovant.core.handshake.v1 import Handshake, HandshakeState, NoiseOffered
from thalovant.core.handshake.v1_crypto import Cipher, Encoding, LegacyChannel
from thalovant.core.machine import Entropy, Input, Note, Output, Tick
from thalovant.core.wire.codec import decode_json, encode_json
from thalovant.core.wire.message import HiveMessage, MsgType

FAST = settings(max_examples=100, deadline=None)
L7 = legacy()["L7_hivemessage_json"]
L2 = legacy()["L2_password_handshake"]


def greet(name: str) -> GreetingReceived:
    return GreetingReceived(message=decode_json(L7[name]).unwrap())


def fixed(*chunks: bytes) -> Entropy:
    it = iter(chunks)
    fallback = itertools.count()

    def entropy(n: int) -> bytes:
        try:
            chunk = next(it)
        except StopIteration:
            k = next(fallback)
            chunk = bytes((k + i) % 256 for i in range(n))
        assert len(chunk) == n
        return chunk

    return entropy


def offer(**fields: Any) -> GreetingReceived:
    payload = {"handshake": True, "max_protocol_version": 1, "preshared_key": False, "password": True} | fields
    return GreetingReceived(message=HiveMessage(msg_type=MsgType.HANDSHAKE, payload=payload))


def test_l2_password_handshake_through_the_machine_byte_for_byte() -> None:
    nonce = bytes.fromhex(legacy()["L3_aes_gcm_json"]["nonce_hex"])
    hs = Handshake(
        entropy=fixed(bytes.fromhex(L2["client_iv_hex"]), nonce),
        started_at=0.0,
        password=L2["password"],
        crypto_key="a1b2c3d4e5f60718",
        encodings=["JSON-HEX"],
        ciphers=["AES-GCM"],
    )
    assert hs.handle(greet("hub_hello"), now=0.1) == []
    assert hs.state is HandshakeState.WAIT_OFFER
    (shake,) = hs.handle(greet("hub_handshake_offer"), now=0.2)  # offers both: password preferred
    assert isinstance(shake, SendHandshake)
    assert encode_json(shake.message) == L7["client_handshake_password"]
    assert hs.state is HandshakeState.WAIT_ENVELOPE
    note, done = hs.handle(greet("hub_handshake_password_response"), now=0.3)
    assert isinstance(note, Note) and isinstance(done, HandshakeDone)
    assert done.hub_peer == "TestClient/1.0::1::my-satellite::default" and done.node_id == "master:0.0.0.0"
    assert hs.state is HandshakeState.READY and hs.deadline is None and hs.path == "password"
    # the derived key is the L2 session key: the channel reproduces the L3 frame
    (frame,) = done.channel.seal(decode_json(legacy()["L3_aes_gcm_json"]["plaintext"]).unwrap())
    assert frame == legacy()["L3_aes_gcm_json"]["wire_by_encoding"]["JSON-HEX"]


def test_l4_preshared_path_when_preferred() -> None:
    l4 = legacy()["L4_preshared_crypto_key"]
    hs = Handshake(
        entropy=fixed(bytes.fromhex(l4["nonce_hex"])),
        started_at=0.0,
        password="pw",
        crypto_key=l4["crypto_key"],
        prefer="psk",
    )
    hs.handle(greet("hub_hello"), now=0.1)
    outs = hs.handle(greet("hub_handshake_offer"), now=0.2)
    done = outs[-1]
    assert isinstance(done, HandshakeDone) and hs.path == "psk"
    assert isinstance(done.channel, LegacyChannel)
    assert (done.channel.cipher, done.channel.encoding) == (Cipher.AES_GCM, Encoding.JSON_HEX)
    (frame,) = done.channel.seal(decode_json(l4["plaintext"]).unwrap())
    assert frame == l4["wire"]


def test_psk_is_used_when_the_hub_has_no_password_for_us() -> None:
    hs = Handshake(entropy=fixed(), started_at=0.0, password="pw", crypto_key="a1b2c3d4e5f60718")
    outs = hs.handle(offer(password=False, preshared_key=True, handshake=False), now=0.1)
    assert isinstance(outs[-1], HandshakeDone) and hs.path == "psk"


def test_offered_lists_are_filtered_to_what_the_hub_allows() -> None:
    hs = Handshake(entropy=fixed(), started_at=0.0, password="pw")
    (shake,) = hs.handle(offer(encodings=["JSON-B64"], ciphers=["CHACHA20-POLY1305"]), now=0.1)
    assert isinstance(shake, SendHandshake) and isinstance(shake.message.payload, dict)
    assert shake.message.payload["encodings"] == ["JSON-B64"]
    assert shake.message.payload["ciphers"] == ["CHACHA20-POLY1305"]
    hs2 = Handshake(entropy=fixed(), started_at=0.0, password="pw")
    (failed,) = hs2.handle(offer(encodings=["JSON-B91"]), now=0.1)
    assert isinstance(failed, HandshakeFailed) and failed.code == "no-common-cipher"


def test_hub_choosing_something_we_did_not_offer_fails() -> None:
    iv_h = bytes(range(8, 16))
    from thalovant.core.handshake.v1_crypto import client_envelope

    hs = Handshake(entropy=fixed(bytes(8)), started_at=0.0, password="pw", ciphers=["AES-GCM"])
    hs.handle(offer(), now=0.1)
    reply = {"envelope": client_envelope("pw", iv_h), "encoding": "JSON-HEX", "cipher": "CHACHA20-POLY1305"}
    (failed,) = hs.handle(GreetingReceived(message=HiveMessage(msg_type=MsgType.HANDSHAKE, payload=reply)), now=0.2)
    assert isinstance(failed, HandshakeFailed) and failed.code == "bad-negotiation" and not failed.auth


@pytest.mark.parametrize("envelope", [None, "", "00" * 24, "0000000000000000" + "ab" * 16, 12])
def test_bad_or_foreign_envelopes_are_auth_failures(envelope: object) -> None:
    hs = Handshake(entropy=fixed(bytes(8)), started_at=0.0, password="pw")
    hs.handle(offer(), now=0.1)
    msg = HiveMessage(msg_type=MsgType.HANDSHAKE, payload={"envelope": envelope})
    (failed,) = hs.handle(GreetingReceived(message=msg), now=0.2)
    assert isinstance(failed, HandshakeFailed) and failed.auth
    assert hs.state is HandshakeState.FAILED
    assert "pw" not in failed.detail.split()


def test_noise_offer_is_handed_over() -> None:
    hs = Handshake(entropy=fixed(), started_at=0.0, password="pw")
    hello = greet("hub_hello")
    hs.handle(hello, now=0.1)
    noise_offer = offer(max_protocol_version=3, noise={"patterns": ["XXpsk2"], "suites": ["25519_ChaChaPoly_SHA256"]})
    (handed,) = hs.handle(noise_offer, now=0.2)
    assert handed == NoiseOffered(offer=noise_offer.message, hello=hello.message)
    assert hs.state is HandshakeState.HANDED_OVER and hs.deadline is None


def test_deadline_and_timeout() -> None:
    hs = Handshake(entropy=fixed(), started_at=10.0, timeout=2.0, password="pw")
    assert hs.deadline == 12.0
    assert hs.handle(Tick(), now=11.0) == []
    (failed,) = hs.handle(Tick(), now=12.0)
    assert isinstance(failed, HandshakeFailed) and failed.code == "timeout"
    assert hs.handle(Tick(), now=13.0) == [] and hs.deadline is None


def test_constructor_and_input_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        Handshake(entropy=fixed(), started_at=0.0)
    with pytest.raises(LocalProtocolError):
        Handshake(entropy=fixed(), started_at=0.0, password="pw", encodings=["JSON-ROT13"])
    Handshake(entropy=fixed(), started_at=0.0, crypto_key="short")  # fails only if the PSK path is needed
    hs = Handshake(entropy=fixed(), started_at=0.0, password="pw")
    with pytest.raises(LocalProtocolError):
        hs.handle(Input(), now=0.0)
    assert hs.state is HandshakeState.WAIT_HELLO


json_leaf = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=60)
payloads = st.dictionaries(
    st.sampled_from(
        [
            "envelope",
            "password",
            "preshared_key",
            "handshake",
            "encodings",
            "ciphers",
            "encoding",
            "cipher",
            "noise",
            "max_protocol_version",
            "peer",
            "node_id",
        ]
    ),
    json_leaf
    | st.lists(st.sampled_from(["JSON-HEX", "AES-GCM", "JSON-B64", "x"]), max_size=3)
    | st.fixed_dictionaries({"patterns": st.just(["XXpsk2"])}),
    max_size=6,
)
greetings = st.builds(
    lambda t, p: GreetingReceived(message=HiveMessage(msg_type=t, payload=p)),
    st.sampled_from([MsgType.HELLO, MsgType.HANDSHAKE, MsgType.BUS]),
    payloads,
)


@FAST
@given(st.lists(greetings | st.just(Tick()), max_size=6), st.booleans(), st.booleans())
def test_random_greetings_never_raise(inputs: list[Input], with_pw: bool, with_psk: bool) -> None:
    hs = Handshake(
        entropy=fixed(),
        started_at=0.0,
        timeout=5.0,
        password="pw" if with_pw or not with_psk else None,
        crypto_key="a1b2c3d4e5f60718" if with_psk else None,
    )
    from thalovant.core.handshake.v1 import TABLE, _kind

    for i, inp in enumerate(inputs):
        before = hs.state
        row = TABLE.get((before, _kind(inp.message))) if isinstance(inp, GreetingReceived) else None
        expired = i >= 5.0 and not hs.finished
        outs: list[Output] = hs.handle(inp, now=float(i))
        for out in outs:
            assert isinstance(out, SendHandshake | HandshakeDone | HandshakeFailed | NoiseOffered | Note)
        if expired:
            assert hs.state is HandshakeState.FAILED
        elif row is not None:
            assert hs.state in row.ends, f"{before.name} + {inp} ended in {hs.state.name}, not in its row"
        else:
            assert hs.state is before, "an input with no row changes nothing"
        assert hs.finished == (hs.state in {HandshakeState.READY, HandshakeState.HANDED_OVER, HandshakeState.FAILED})
    assert isinstance(hs.state, HandshakeState)


def test_transition_table_rows_are_all_live_states() -> None:
    from thalovant.core.handshake.v1 import TABLE

    assert {state for state, _ in TABLE} == {
        HandshakeState.WAIT_HELLO,
        HandshakeState.WAIT_OFFER,
        HandshakeState.WAIT_ENVELOPE,
    }
    terminal = {HandshakeState.READY, HandshakeState.HANDED_OVER, HandshakeState.FAILED}
    reached = {end for row in TABLE.values() for end in row.ends}
    assert terminal <= reached, "every terminal state is the end of some row"
    assert isinstance(decode_json(L7["hub_hello"]), Success)


def test_bitstring_clients_take_the_psk_path_when_the_hub_holds_a_crypto_key() -> None:
    both = offer(preshared_key=True, password=True, handshake=False)
    hs = Handshake(entropy=fixed(), started_at=0.0, password="pw", crypto_key="a1b2c3d4e5f60718", bitstring=True)
    assert isinstance(hs.handle(both, now=0.1)[-1], HandshakeDone) and hs.path == "psk"
    hs2 = Handshake(entropy=fixed(), started_at=0.0, password="pw", bitstring=True)
    (failed,) = hs2.handle(both, now=0.1)
    assert isinstance(failed, HandshakeFailed) and failed.code == "needs-crypto-key"
    hs3 = Handshake(entropy=fixed(), started_at=0.0, password="pw", bitstring=True)
    (shake,) = hs3.handle(offer(), now=0.1)  # password-only user: the cleartext shake is fine
    assert isinstance(shake, SendHandshake)
