"""A crypto_key the pre-shared path cannot use (issue 12 item 5): it fails, naming the field, only when needed.

0.4.7 loads an identity whose ``crypto_key`` is shorter than 16 characters. The v1 handshake then
treats that key as absent while another path works, and fails (``unusable-crypto-key``, never
retried, naming ``crypto_key`` and never its value) only when the pre-shared path is the only way in.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.handshake.test_v1 import fixed, offer
from tests.core.session.test_session_pair import CRYPTO_KEY, PASSWORD, FakeHub, new_session, pump
from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.contract import HandshakeDone, HandshakeFailed, SendHandshake
from thalovant.core.handshake.v1 import Handshake
from thalovant.core.handshake.v1_crypto import PRESHARED_KEY_RULE, preshared_key, usable_preshared_key
from thalovant.core.machine import Output
from thalovant.core.session.events import SessionFailed
from thalovant.core.session.machine import LinkOpened, SendFrame, SessionState
from thalovant.core.wire.bitstring import decode_bitstring
from thalovant.core.wire.message import MsgType

SHORT = "sh0rt-k3y"
PSK_ONLY = {"password": False, "preshared_key": True, "handshake": False}


def failure(outputs: list[Output]) -> HandshakeFailed:
    (failed,) = outputs
    assert isinstance(failed, HandshakeFailed)
    return failed


def test_a_short_key_fails_naming_crypto_key_when_the_hub_offers_only_the_preshared_path() -> None:
    hs = Handshake(entropy=fixed(), started_at=0.0, crypto_key=SHORT)
    failed = failure(hs.handle(offer(**PSK_ONLY), now=0.1))
    assert failed.code == "unusable-crypto-key" and failed.auth
    assert "crypto_key" in failed.detail and SHORT not in failed.detail and hs.path is None


def test_a_short_key_is_ignored_while_the_password_path_works() -> None:
    hs = Handshake(entropy=fixed(), started_at=0.0, password="pw", crypto_key=SHORT, prefer="psk")
    (shake,) = hs.handle(offer(preshared_key=True, password=True), now=0.1)
    assert isinstance(shake, SendHandshake) and hs.path == "password"


def test_a_short_key_fails_a_bitstring_client_whose_hub_holds_a_crypto_key() -> None:
    hs = Handshake(entropy=fixed(), started_at=0.0, password="pw", crypto_key=SHORT, bitstring=True)
    failed = failure(hs.handle(offer(preshared_key=True, password=True), now=0.1))
    assert failed.code == "unusable-crypto-key" and SHORT not in failed.detail


def test_a_short_key_with_a_password_only_hub_is_never_used() -> None:
    hs = Handshake(entropy=fixed(), started_at=0.0, crypto_key=SHORT)
    failed = failure(hs.handle(offer(), now=0.1))  # the hub offers the password path; we have none
    assert failed.code == "no-credentials"


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_usable_preshared_key_is_total_and_agrees_with_preshared_key(key: str) -> None:
    usable = usable_preshared_key(key)
    assert usable is None or (len(usable) == 16 and usable == key[:16].encode("ascii"))
    if usable is None:
        with pytest.raises(LocalProtocolError, match="crypto_key"):
            preshared_key(key)
    else:
        assert preshared_key(key) == usable
    assert PRESHARED_KEY_RULE.startswith("crypto_key")


@pytest.mark.parametrize("wire", ["text", "bitstring"])
def test_a_session_with_a_short_key_fails_typed_when_the_hub_wants_the_preshared_key(wire: str) -> None:
    hub = FakeHub(crypto_key=CRYPTO_KEY)  # a pre-shared-key-only hub
    s = new_session(crypto_key=SHORT, wire=wire, trigger_hello=wire == "bitstring")
    first = s.handle(LinkOpened(), now=0.0)
    if wire == "bitstring":  # the trigger HELLO goes out in clear: the unusable key cannot seal it
        (trigger,) = first
        assert isinstance(trigger, SendFrame) and isinstance(trigger.data, bytes)
        assert decode_bitstring(trigger.data).unwrap().msg_type is MsgType.HELLO
    outs = pump(s, hub, hub.greeting())
    failed = [o for o in outs if isinstance(o, SessionFailed)]
    assert s.state is SessionState.FAILED and len(failed) == 1
    assert failed[0].code == "unusable-crypto-key" and not failed[0].retryable and failed[0].auth
    assert "crypto_key" in failed[0].detail and SHORT not in failed[0].detail


def test_a_session_with_a_short_key_and_a_password_reaches_ready() -> None:
    hub = FakeHub(password=PASSWORD)
    s = new_session(password=PASSWORD, crypto_key=SHORT)
    s.handle(LinkOpened(), now=0.0)
    outs = pump(s, hub, hub.greeting())
    assert s.state is SessionState.READY and s.handshake.path == "password"
    assert not any(isinstance(o, SessionFailed) for o in outs)
    assert not any(isinstance(o, HandshakeDone) for o in outs)  # absorbed by the session
