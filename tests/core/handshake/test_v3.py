"""The v3 handshake machine (thalovant.core.handshake.v3): spec §0.2, §7, §10.2; vectors N3-N6."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from tests.paths import TESTS
from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.contract import GreetingReceived, HandshakeDone, HandshakeFailed, SendHandshake
from thalovant.core.handshake.noise import (
    PATTERN_KK,
    PATTERN_XX,
    SUITE_AESGCM,
    SUITE_CHACHA,
    build_prologue,
    protocol_name,
    public_key,
)
from thalovant.core.handshake.noise_handshaker import NoiseHandshaker
from thalovant.core.handshake.pins import fingerprint
from thalovant.core.handshake.v3 import (
    TABLE,
    NoiseChannel,
    NoiseHandshake,
    NoiseHandshakeState,
    StartHandshake,
    negotiate,
    offer_generation,
)
from thalovant.core.machine import Input, Note, Output, Tick
from thalovant.core.wire.codec import decode_json, hello_message
from thalovant.core.wire.message import HiveMessage, MsgType

ALL = json.loads((TESTS / "vectors" / "protocol-vectors.json").read_text("utf-8"))
VECTORS = ALL["noise_v3"]
LIVE = ALL["live_captures"]
KEYS = VECTORS["N2_keys"]
WIRE = VECTORS["N6_wire_frames"]
N1 = VECTORS["N1_psk"]
PSK = bytes.fromhex(N1["psk_hex"])
H = bytes.fromhex
S = NoiseHandshakeState

HELLO = decode_json(WIRE["hub_hello_cleartext"]).unwrap()
OFFER_XX = decode_json(WIRE["hub_handshake_offer_cleartext"]).unwrap()


def offer(patterns: list[str], suites: list[str] | None = None) -> HiveMessage:
    payload = dict(KEYS["handshake_offer_payload"])
    payload["noise"] = {"patterns": patterns, "suites": suites or payload["noise"]["suites"]}
    return HiveMessage(msg_type=MsgType.HANDSHAKE, payload=payload)


def fixed_entropy(hex_key: str) -> Any:
    return lambda n: H(hex_key)[:n]


class CountingEntropy:
    """Deterministic, distinct bytes per draw (a recorded tape would do the same)."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.count = seed, 0

    def __call__(self, n: int) -> bytes:
        self.count += 1
        return hashlib.sha256(self.seed + self.count.to_bytes(4, "big")).digest()[:n]


def machine(**overrides: Any) -> NoiseHandshake:
    args: dict[str, Any] = {
        "password": N1["password"],
        "access_key": "0123456789abcdef0123456789abcdef",
        "useragent": "TestClient/1.0",
        "entropy": fixed_entropy(KEYS["client_ephemeral_priv_hex"]),
        "started_at": 100.0,
        "timeout": 10.0,
        "offer": OFFER_XX,
        "hello": HELLO,
        "static_key": H(KEYS["client_static_priv_hex"]),
        "psk": PSK,
    }
    args.update(overrides)
    return NoiseHandshake(**args)


def hub_reply(msg_hex: str) -> GreetingReceived:
    return GreetingReceived(message=HiveMessage(msg_type=MsgType.HANDSHAKE, payload={"noise": {"msg": msg_hex}}))


def only(outputs: list[Output], kind: type[Output]) -> list[Any]:
    return [o for o in outputs if isinstance(o, kind)]


# ---- generation detection and negotiation --------------------------------------------------------


def test_offer_generation_on_real_offers() -> None:
    assert offer_generation(OFFER_XX.payload) == 3
    assert offer_generation(decode_json(LIVE["hub5_ws_offer_first_contact"]).unwrap().payload) == 3
    assert offer_generation(decode_json(LIVE["hub4_ws_offer_password_only_user"]).unwrap().payload) == 1
    assert offer_generation({"max_protocol_version": 2, "noise": {}}) == 1
    assert offer_generation({"max_protocol_version": True, "noise": {}}) == 1
    assert offer_generation({"max_protocol_version": 3, "noise": "yes"}) == 1


@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.dictionaries(st.text(max_size=20), c, max_size=4) | st.lists(c, max_size=3),
        max_leaves=12,
    )
)
@settings(max_examples=200, deadline=None)
def test_offer_generation_is_total(payload: Any) -> None:
    assert offer_generation(payload) in {1, 3}
    assert negotiate(payload, have_pin=True) is not None  # never raises


def test_negotiate_prefers_chacha_and_kk_only_with_a_pin() -> None:
    both = {"noise": {"patterns": ["KKpsk0", "XXpsk2"], "suites": [SUITE_AESGCM, SUITE_CHACHA]}}
    assert negotiate(both, have_pin=True) == Success((PATTERN_KK, SUITE_CHACHA))
    assert negotiate(both, have_pin=False) == Success((PATTERN_XX, SUITE_CHACHA))
    assert negotiate(both, have_pin=False, suites=[SUITE_AESGCM]) == Success((PATTERN_XX, SUITE_AESGCM))
    assert negotiate({"noise": {"patterns": ["KKpsk0"], "suites": [SUITE_CHACHA]}}, have_pin=False).failure()
    assert negotiate({"noise": {"patterns": ["XXpsk2"], "suites": ["25519_Other"]}}, have_pin=False).failure()


# ---- vectors through the machine -----------------------------------------------------------------

MACHINE_CASES = [
    ("N3_XXpsk2_ChaChaPoly", OFFER_XX, [SUITE_CHACHA, SUITE_AESGCM], None),
    ("N4_XXpsk2_AESGCM", OFFER_XX, [SUITE_AESGCM], None),
    ("N5_KKpsk0_ChaChaPoly", offer(["KKpsk0", "XXpsk2"]), [SUITE_CHACHA], KEYS["hub_static_pub_hex"]),
]


@pytest.mark.parametrize(("name", "hub_offer", "suites", "pin"), MACHINE_CASES)
def test_machine_reproduces_every_vector(name: str, hub_offer: HiveMessage, suites: list[str], pin: str | None) -> None:
    vec = VECTORS[name]
    m = machine(offer=hub_offer, suites=suites, pinned_hub_key=H(pin) if pin else None)
    [first] = m.start(now=100.0)
    assert isinstance(first, SendHandshake)
    noise = first.message.payload["noise"]
    assert noise["msg"] == vec["msg1_hex"]
    assert vec["protocol_name"] == protocol_name(noise["pattern"], noise["suite"])
    assert m.state is S.WAIT_REPLY and m.deadline == 110.0
    out = m.handle(hub_reply(vec["msg2_hex"]), now=101.0)
    sends = only(out, SendHandshake)
    if "msg3_hex" in vec:
        assert [s.message.payload for s in sends] == [{"noise": {"msg": vec["msg3_hex"]}}]
    else:
        assert sends == []
    [done] = only(out, HandshakeDone)
    assert out[-1] is done  # message 3 goes out before the session sends HELLO
    assert done.hub_peer == KEYS["hello_payload"]["peer"] and done.node_id == KEYS["hello_payload"]["node_id"]
    assert m.state is S.DONE and m.deadline is None
    assert m.hub_static == H(KEYS["hub_static_pub_hex"]) and m.verified_psk == PSK
    channel = done.channel
    assert isinstance(channel, NoiseChannel) and channel.generation == 3
    hello = decode_json(vec["transport"]["client_to_hub"][0]["plaintext_json"]).unwrap()
    assert channel.seal(hello) == [H(vec["transport"]["client_to_hub"][0]["frame_hex"])]
    speak = vec["transport"]["hub_to_client"][0]
    assert channel.open(H(speak["frame_hex"])) == Success(decode_json(speak["plaintext_json"]).unwrap())


def test_msg1_wire_frame_matches_n6() -> None:
    [first] = machine().start(now=100.0)
    expected = json.loads(WIRE["client_msg1_frame"])
    assert first.message.msg_type.value == expected["msg_type"]
    assert first.message.payload == expected["payload"]


def test_msg3_wire_frame_matches_n6() -> None:
    m = machine()
    m.start(now=100.0)
    msg2 = decode_json(WIRE["hub_msg2_frame"]).unwrap()
    [send, _done] = m.handle(GreetingReceived(message=msg2), now=100.5)
    assert send.message.payload == json.loads(WIRE["client_msg3_frame"])["payload"]


def test_machine_derives_the_psk_with_argon2id_when_none_is_cached() -> None:
    m = machine(psk=None)
    [first] = m.start(now=100.0)
    assert first.message.payload["noise"]["msg"] == VECTORS["N3_XXpsk2_ChaChaPoly"]["msg1_hex"]
    assert m.verified_psk is None  # not verified before message 2
    m.handle(hub_reply(VECTORS["N3_XXpsk2_ChaChaPoly"]["msg2_hex"]), now=100.5)
    assert m.verified_psk == PSK


# ---- ordering, timeouts, failures ----------------------------------------------------------------


def test_hello_after_offer_is_awaited_and_repeated_offers_are_ignored() -> None:
    m = machine(hello=None)
    [note] = m.start(now=100.0)
    assert isinstance(note, Note) and m.state is S.WAIT_HELLO
    assert only(m.handle(GreetingReceived(message=OFFER_XX), now=100.1), SendHandshake) == []
    [send] = m.handle(GreetingReceived(message=HELLO), now=100.2)
    assert send.message.payload["noise"]["msg"] == VECTORS["N3_XXpsk2_ChaChaPoly"]["msg1_hex"]
    assert only(m.handle(GreetingReceived(message=OFFER_XX), now=100.3), SendHandshake) == []
    assert m.state is S.WAIT_REPLY


def test_hello_fed_before_start_is_kept() -> None:
    m = machine(hello=None)
    assert m.handle(GreetingReceived(message=HELLO), now=100.0) == []
    [send] = m.start(now=100.0)
    assert isinstance(send, SendHandshake)


def test_wrong_password_is_an_auth_failure_at_message_2() -> None:
    m = machine(psk=bytes(32))
    m.start(now=100.0)
    [failed] = m.handle(hub_reply(VECTORS["N3_XXpsk2_ChaChaPoly"]["msg2_hex"]), now=100.5)
    assert isinstance(failed, HandshakeFailed) and failed.auth and failed.code == "auth-failed"
    assert m.state is S.FAILED and m.deadline is None and m.verified_psk is None
    assert m.handle(Tick(), now=1e9) == []


def test_changed_hub_key_is_a_hard_failure_before_message_3() -> None:
    m = machine(pinned_hub_key=public_key(bytes(range(1, 33))))  # offer is XX only, so XX runs
    [first] = m.start(now=100.0)
    assert first.message.payload["noise"]["pattern"] == PATTERN_XX
    out = m.handle(hub_reply(VECTORS["N3_XXpsk2_ChaChaPoly"]["msg2_hex"]), now=100.5)
    assert out == [HandshakeFailed(code="hub-key-changed", detail=out[0].detail, auth=False, retryable=False)]
    assert m.state is S.FAILED and m.failure == "hub-key-changed"
    presented = H(KEYS["hub_static_pub_hex"])
    assert m.hub_static == presented and m.pinned_hub_key == public_key(bytes(range(1, 33)))
    assert fingerprint(presented) in out[0].detail and fingerprint(m.pinned_hub_key) in out[0].detail


def test_allow_kk_false_forces_xx_but_still_checks_the_pin() -> None:
    pin = H(KEYS["hub_static_pub_hex"])
    m = machine(offer=offer(["KKpsk0", "XXpsk2"]), pinned_hub_key=pin, allow_kk=False)
    [first] = m.start(now=100.0)
    assert first.message.payload["noise"]["pattern"] == PATTERN_XX


def test_timeout_fires_at_the_deadline_and_not_before() -> None:
    m = machine()
    m.start(now=100.0)
    assert m.handle(Tick(), now=109.9) == []
    [failed] = m.handle(Tick(), now=110.0)
    assert isinstance(failed, HandshakeFailed) and failed.code == "timeout" and not failed.auth
    late = machine(hello=None)
    assert only(late.start(now=111.0), HandshakeFailed)[0].code == "timeout"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"noise": {"msg": "zz"}}, "bad-reply"),
        ({"noise": {"msg": 12}}, "bad-reply"),
        ({"noise": {"msg": "00" * 10}}, "bad-reply"),
        ({"noise": {"msg": "00" * 200}}, "bad-reply"),  # all-zero ephemeral: low-order point
        ({"noise": {"msg": "ab" * 200}}, "auth-failed"),
    ],
)
def test_malformed_message_2(payload: dict[str, Any], code: str) -> None:
    m = machine()
    m.start(now=100.0)
    [failed] = m.handle(GreetingReceived(message=HiveMessage(msg_type=MsgType.HANDSHAKE, payload=payload)), now=101)
    assert isinstance(failed, HandshakeFailed) and failed.code == code


def test_bad_hello_and_unsupported_offer_fail_without_raising() -> None:
    m = machine(hello=HiveMessage(msg_type=MsgType.HELLO, payload={"peer": "x"}))
    assert only(m.start(now=100.0), HandshakeFailed)[0].code == "bad-hello"
    m2 = machine(offer=offer(["KKpsk0"]))  # no pin, so KK is impossible
    assert only(m2.start(now=100.0), HandshakeFailed)[0].code == "unsupported"


def test_misuse_raises_local_protocol_error_and_changes_nothing() -> None:
    m = machine()
    m.start(now=100.0)
    with pytest.raises(LocalProtocolError):
        m.start(now=100.0)

    class Strange(Input):
        pass

    with pytest.raises(LocalProtocolError):
        m.handle(Strange(), now=100.0)
    assert m.state is S.WAIT_REPLY
    legacy = decode_json(LIVE["hub4_ws_offer_password_only_user"]).unwrap()
    for bad in ({"offer": legacy}, {"timeout": 0}, {"static_key": b"short"}, {"psk": b"x"}, {"suites": ["nope"]}):
        with pytest.raises(LocalProtocolError):
            machine(**bad)


def test_transition_table_covers_every_state_and_input() -> None:
    every = {(s, i) for s in NoiseHandshakeState for i in (GreetingReceived, Tick)}
    assert set(TABLE) == every | {(S.CREATED, StartHandshake)}
    for (state, _kind), row in TABLE.items():
        if state in (S.DONE, S.FAILED):
            assert row.ends == {state}, "a terminal state is never left"
        else:
            assert S.FAILED in row.ends or row.to is S.CREATED or state is S.CREATED


def test_start_row_ends_where_the_table_says() -> None:
    row = TABLE[(S.CREATED, StartHandshake)]
    with_hello = machine()
    with_hello.start(now=100.0)
    without_hello = machine(hello=None)
    without_hello.start(now=100.0)
    late = machine()
    late.start(now=10_000.0)
    assert with_hello.state is row.to
    assert {without_hello.state, late.state} == row.exits
    assert late.finished and not with_hello.finished and not without_hello.finished


def test_secrets_never_show_in_reprs_or_outputs() -> None:
    m = machine()
    outs = m.start(now=100.0) + m.handle(hub_reply(VECTORS["N3_XXpsk2_ChaChaPoly"]["msg2_hex"]), now=101)
    bad = machine(psk=bytes(range(32)))
    bad.start(now=100.0)
    outs += bad.handle(hub_reply(VECTORS["N3_XXpsk2_ChaChaPoly"]["msg2_hex"]), now=101)
    text = repr(m) + repr(bad) + repr(outs)
    for secret in (N1["password"], PSK.hex(), KEYS["client_static_priv_hex"], bytes(range(32)).hex()):
        assert secret not in text


@given(
    payload=st.dictionaries(
        st.sampled_from(["noise", "msg", "x"]),
        st.one_of(
            st.none(),
            st.text(max_size=10),
            st.dictionaries(st.sampled_from(["msg", "pattern"]), st.one_of(st.text(max_size=300), st.integers())),
        ),
        max_size=3,
    ),
    msg_type=st.sampled_from([MsgType.HANDSHAKE, MsgType.HELLO, MsgType.BUS]),
)
@settings(max_examples=200, deadline=None)
def test_garbage_greetings_give_only_typed_outputs(payload: dict[str, Any], msg_type: MsgType) -> None:
    m = machine()
    m.start(now=100.0)
    out = m.handle(GreetingReceived(message=HiveMessage(msg_type=msg_type, payload=payload)), now=100.5)
    assert all(isinstance(o, Note | HandshakeFailed) for o in out)
    assert m.state in {S.WAIT_REPLY, S.FAILED}


@given(raw=st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_garbage_message_2_bytes_never_complete_the_handshake(raw: bytes) -> None:
    m = machine()
    m.start(now=100.0)
    [failed] = m.handle(hub_reply(raw.hex()), now=100.5)
    assert isinstance(failed, HandshakeFailed)
    assert failed.code in {"auth-failed", "bad-reply"}


# ---- pair test with an in-test hub (responder side) ---------------------------------------------


class FakeNoiseHub:
    """The hub side of spec §7: greets, answers message 1, pins the client after XX."""

    def __init__(self, *, password_psk: bytes, seed: bytes) -> None:
        self.static = hashlib.sha256(b"hub-static" + seed).digest()
        self.psk = password_psk
        self.entropy = CountingEntropy(seed)
        self.pinned_client: bytes | None = None
        self.hello = HiveMessage(msg_type=MsgType.HELLO, payload=dict(KEYS["hello_payload"], peer="ua::1::sat::s1"))
        self.noise: NoiseHandshaker | None = None
        self.channel: NoiseChannel | None = None

    def offer(self) -> HiveMessage:
        return offer(["KKpsk0", "XXpsk2"] if self.pinned_client else ["XXpsk2"])

    def on_shake(self, message: HiveMessage, offered: HiveMessage) -> HiveMessage | None:
        """Returns message 2, or None when the hub would close with 1008."""
        assert isinstance(message.payload, dict)
        noise = message.payload["noise"]
        if self.noise is None:
            pattern, suite = noise["pattern"], noise["suite"]
            prologue = build_prologue(self.hello.payload, offered.payload, protocol_name(pattern, suite))
            self.noise = NoiseHandshaker(
                pattern=pattern,
                suite=suite,
                psk=self.psk,
                prologue=prologue,
                static_private=self.static,
                entropy=self.entropy,
                initiator=False,
                remote_static=self.pinned_client if pattern == PATTERN_KK else None,
            )
            if not isinstance(self.noise.read_message(H(noise["msg"])), Success):
                return None
            msg2 = self.noise.write_message(json.dumps({"encoding": "JSON-HEX"}).encode())
            self._maybe_finish()
            return HiveMessage(msg_type=MsgType.HANDSHAKE, payload={"noise": {"msg": msg2.hex()}})
        if not isinstance(self.noise.read_message(H(noise["msg"])), Success):
            return None
        self._maybe_finish()
        return None

    def _maybe_finish(self) -> None:
        assert self.noise is not None
        if self.noise.finished:
            send, receive = self.noise.split()
            self.pinned_client = self.noise.remote_static
            self.channel = NoiseChannel(
                send=send,
                receive=receive,
                pattern=self.noise.pattern,
                suite=self.noise.suite,
                local_static=public_key(self.static),
                remote_static=self.noise.remote_static or b"",
            )


def connect(
    hub: FakeNoiseHub, *, psk: bytes, static: bytes, pin: bytes | None, allow_kk: bool = True
) -> tuple[NoiseHandshake, list[Any]]:
    hub.noise, hub.channel = None, None
    offered = hub.offer()
    m = machine(
        offer=offered,
        hello=hub.hello,
        entropy=CountingEntropy(b"client" + static),
        static_key=static,
        pinned_hub_key=pin,
        psk=psk,
        allow_kk=allow_kk,
    )
    pending: list[Output] = m.start(now=0.0)
    results: list[Any] = []
    for _ in range(10):  # bounded
        if not pending:
            break
        out = pending.pop(0)
        results.append(out)
        if isinstance(out, SendHandshake):
            reply = hub.on_shake(out.message, offered)
            if reply is not None:
                pending += m.handle(GreetingReceived(message=reply), now=0.1)
    return m, results


def test_pair_first_contact_xx_then_second_contact_kk() -> None:
    psk = hashlib.sha256(b"pretend-argon2-output").digest()
    hub = FakeNoiseHub(password_psk=psk, seed=b"hub-1")
    static = hashlib.sha256(b"client-static").digest()

    m, results = connect(hub, psk=psk, static=static, pin=None)
    assert m.pattern == PATTERN_XX and m.state is S.DONE
    [done] = only(results, HandshakeDone)
    assert hub.channel is not None and hub.pinned_client == public_key(static)
    assert m.hub_static == public_key(hub.static)
    client_ch = done.channel
    hello = hello_message(session_id="thalovant-python-abc", site_id="kitchen")
    assert [hub.channel.open(f) for f in client_ch.seal(hello)] == [Success(hello)]
    reply = HiveMessage(msg_type=MsgType.BUS, payload={"type": "speak", "data": {"utterance": "hi" * 40_000}})
    assert [client_ch.open(f) for f in hub.channel.seal(reply)][-1] == Success(reply)

    m2, results2 = connect(hub, psk=psk, static=static, pin=m.hub_static)
    assert m2.pattern == PATTERN_KK and m2.state is S.DONE
    assert len(only(results2, SendHandshake)) == 1  # KK: no message 3
    [done2] = only(results2, HandshakeDone)
    assert hub.channel is not None
    assert [hub.channel.open(f) for f in done2.channel.seal(hello)] == [Success(hello)]


def test_pair_wrong_password_xx_fails_on_the_client_kk_fails_on_the_hub() -> None:
    hub = FakeNoiseHub(password_psk=hashlib.sha256(b"right").digest(), seed=b"hub-2")
    wrong = hashlib.sha256(b"wrong").digest()
    static = hashlib.sha256(b"client-2").digest()
    _, results = connect(hub, psk=wrong, static=static, pin=None)
    assert [r.code for r in only(results, HandshakeFailed)] == ["auth-failed"]
    assert only(results, HandshakeFailed)[0].auth and hub.channel is None

    hub.pinned_client = public_key(static)  # pretend an earlier XX succeeded
    m2, _ = connect(hub, psk=wrong, static=static, pin=public_key(hub.static))
    assert m2.pattern == PATTERN_KK
    assert hub.channel is None and m2.state is S.WAIT_REPLY  # the hub refused msg1 (it would close 1008)
    [failed] = m2.handle(Tick(), now=110.0)
    assert failed.code == "timeout"


def test_pair_xx_retry_after_kk_tells_a_changed_hub_key_from_a_wrong_password() -> None:
    psk = hashlib.sha256(b"pw").digest()
    static = hashlib.sha256(b"client-3").digest()
    hub = FakeNoiseHub(password_psk=psk, seed=b"hub-3")
    hub.pinned_client = public_key(static)
    stale_pin = public_key(hashlib.sha256(b"the old hub").digest())
    m, results = connect(hub, psk=psk, static=static, pin=stale_pin, allow_kk=False)
    assert m.pattern == PATTERN_XX
    [failed] = only(results, HandshakeFailed)
    assert failed.code == "hub-key-changed" and not failed.auth
    assert len(only(results, SendHandshake)) == 1  # message 3 (our static key) never went out
