"""The session's pure helpers (frame and close classification, outbound encoding, handshake plan) and
``Session.finished``."""

from __future__ import annotations

import pytest

from thalovant.core.errors import LocalProtocolError
from thalovant.core.session.classify import Verdict, classify_close, classify_frame, shown_peer
from thalovant.core.session.handshakes import HandshakePlan
from thalovant.core.session.machine import LinkClosed, LinkOpened, Session, SessionState, UserClose
from thalovant.core.session.outbound import Outbound
from thalovant.core.wire.bitstring import encode_bitstring
from thalovant.core.wire.codec import encode_json
from thalovant.core.wire.frame import FrameProblem
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

PASSWORD = "throwaway-password-for-tests"
PING = HiveMessage(msg_type=MsgType.PING, payload={"n": 1})


def new_session() -> Session:
    return Session(session_id="s1", useragent="UA", entropy=lambda n: bytes(n), password=PASSWORD)


def test_finished_is_true_exactly_in_the_terminal_states() -> None:
    s = new_session()
    assert s.state is SessionState.IDLE and not s.finished
    s.handle(LinkOpened(), now=0.0)
    assert s.state is SessionState.HANDSHAKING and not s.finished
    s.handle(UserClose(), now=1.0)
    assert s.state is SessionState.CLOSED and s.finished
    failed = new_session()
    failed.handle(LinkClosed(code=1006), now=0.0)
    assert failed.state is SessionState.FAILED and failed.finished


def test_frames_are_classified_by_kind() -> None:
    assert classify_frame(encode_json(PING), keyed=False, handshaking=True) == PING
    sealed = '{"ciphertext": "00", "nonce": "11"}'
    assert classify_frame(sealed, keyed=False, handshaking=True) == sealed
    assert classify_frame(sealed.encode(), keyed=True, handshaking=False) == sealed  # MQTT JSON bytes
    assert classify_frame(encode_bitstring(PING), keyed=False, handshaking=False) == PING
    assert classify_frame(b"\x00\x01", keyed=True, handshaking=False) == b"\x00\x01"  # sealed binary
    assert classify_frame(b"\xff", keyed=False, handshaking=True) == b"\xff"  # stale key: dropped as sealed
    assert isinstance(classify_frame(b"\xff", keyed=False, handshaking=False), FrameProblem)
    assert isinstance(classify_frame("not json", keyed=False, handshaking=True), FrameProblem)


@pytest.mark.parametrize(
    ("code", "reason", "ready", "greeted", "expected"),
    [
        # hub 5.x refused one frame type (QUERY without the grant): the link was fine, reconnect
        (4003, "QUERY is not allowed for this client", True, True, ("request-refused", True, False)),
        (4003, "", False, True, ("refused", False, False)),  # during the handshake: a redial would repeat it
        (1008, "bad key", False, True, ("refused", False, True)),
        (1008, "noise required", False, True, ("v3-required", False, False)),
        # hub 5.x: a KKpsk0 message 1 it cannot read (its key changed): retry with XX, not "v3 required"
        (1008, "hub refused the Noise handshake (close 1008 'handshake failure: ')", False, True,
         ("handshake-refused", True, False)),
        (1008, "client Noise static key contradicts the pinned key", True, True, ("client-key-rejected", False, True)),
        (1005, "", False, False, ("refused", False, True)),
        (1006, "", False, True, ("link-closed", True, False)),
        (1006, "", True, True, ("link-closed", True, False)),
    ],
)
def test_closes_are_classified(
    code: int, reason: str, ready: bool, greeted: bool, expected: tuple[str, bool, bool]
) -> None:
    verdict = classify_close(
        LinkClosed(code=code, reason=reason), ready=ready, greeted=greeted, silent_start=False, path=None, generation=1
    )
    assert isinstance(verdict, Verdict)
    assert (verdict.code, verdict.retryable, verdict.auth) == expected


def test_a_silent_close_right_after_the_handshake_is_a_refusal() -> None:
    close = LinkClosed(code=1000)
    quiet = {"ready": True, "greeted": True, "silent_start": True}
    assert classify_close(close, **quiet, path="psk", generation=1).code == "refused-after-handshake"
    assert classify_close(close, **quiet, path=None, generation=3).auth
    assert classify_close(close, **quiet, path="password", generation=1).code == "link-closed"


def test_shown_peer_names_our_session_and_hides_the_access_key() -> None:
    assert shown_peer(None, session_id="s1", access_key="k") is None
    assert shown_peer("UA::2::default", session_id="s1", access_key="") == "UA::2::s1"
    assert shown_peer("key123::s1", session_id="s1", access_key="key123") == "<access-key>::s1"


def test_outbound_encodes_for_its_wire_and_refuses_what_it_cannot_send() -> None:
    text = Outbound(session_id="s1", site_id="home", useragent="UA", wire="text")
    bits = Outbound(session_id="s1", site_id="home", useragent="UA", wire="bitstring")
    assert text.clear(PING) == encode_json(PING)
    assert bits.clear(PING) == encode_bitstring(PING)
    assert bits.clear(PING, v3=True) == encode_json(PING)  # Noise handshake messages are JSON text
    bus = text.message(BusMessage(type="speak", data={"utterance": "hi"}))
    assert bus.msg_type is MsgType.BUS
    assert text.hello().msg_type is MsgType.HELLO
    with pytest.raises(LocalProtocolError):
        text.message("not a message")


def test_handshake_plan_never_shows_a_credential() -> None:
    plan = HandshakePlan(
        entropy=lambda n: bytes(n),
        timeout=10.0,
        password=PASSWORD,
        crypto_key="0f1e2d3c4b5a6978",
        access_key="secret-access-key",
        useragent="UA",
        prefer="password",
        binarize=False,
        encodings=("JSON-HEX",),
        ciphers=("AES-GCM",),
        bitstring=False,
        v3_options={"psk": b"\x01" * 32},
    )
    shown = repr(plan)
    assert all(secret not in shown for secret in (PASSWORD, "0f1e2d3c4b5a6978", "secret-access-key", "psk"))
    assert plan.legacy(started_at=5.0).deadline == 15.0
