"""Hub key pinning in the core: the pure decisions (``core.handshake.pins``) and the connection machine
carrying the pin from link to link, retrying a failed KKpsk0 with XXpsk2, and saying why it stopped."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Success

from thalovant.core.client.connection import ConnectionState
from thalovant.core.client.hub_keys import key_stop, learned_hub_key, refusal_possible, repinned
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.handshake.pins import PinDecision, decide, fingerprint, parse_hub_key, pin_id, pin_name
from thalovant.testing import InMemoryHubSession

PASSWORD = "throwaway-password-for-pins"
FAST = ReconnectConfig(base=0.01, cap=0.05)
keys = st.binary(min_size=32, max_size=32)


# ---- the pure decisions ---------------------------------------------------------------------------


@given(keys, keys)
def test_decide_pins_on_first_use_keeps_the_same_and_stops_on_another(pinned: bytes, presented: bytes) -> None:
    assert decide(None, presented) is PinDecision.PIN
    assert decide(presented, presented) is PinDecision.KEEP
    expected = PinDecision.KEEP if pinned == presented else PinDecision.MISMATCH
    assert decide(pinned, presented) is expected


@given(keys)
def test_a_fingerprint_is_the_sha256_of_the_key_and_parse_reads_any_hex_spelling(key: bytes) -> None:
    shown = fingerprint(key)
    assert shown.startswith("SHA256:") and "=" not in shown
    assert base64.b64decode(shown[7:] + "=") == hashlib.sha256(key).digest()
    spaced = ":".join(key.hex()[i : i + 2] for i in range(0, 64, 2)).upper()
    assert parse_hub_key(key.hex()).unwrap() == parse_hub_key(spaced).unwrap() == key


@given(st.text(max_size=80))
def test_parse_hub_key_never_raises_and_never_echoes_its_input(text: str) -> None:
    result = parse_hub_key(text)
    if not isinstance(result, Success):
        assert result.failure() == "must be the hub's 32-byte public key as 64 hex digits"
    else:
        assert len(result.unwrap()) == 32


@given(
    st.sampled_from(["ws", "wss", "http", "https", "mqtt", "WSS"]),
    st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True),
    st.one_of(st.none(), st.integers(1, 65535)),
    st.from_regex(r"[A-Za-z0-9=&]{0,20}", fullmatch=True),
)
def test_pin_id_drops_query_and_user_info(scheme: str, host: str, port: int | None, query: str) -> None:
    url = f"{scheme}://user:secret@{host}{f':{port}' if port else ''}/?authorization={query}"
    shown = pin_id(url)
    assert "secret" not in shown and "authorization" not in shown and shown.startswith(scheme.lower() + "://")
    assert pin_id(url) == pin_id(url.replace("user:secret@", "")) == pin_id(url.partition("?")[0])
    name = pin_name(url, "access-key")
    assert len(name) == 24 and all(c in "0123456789abcdef" for c in name)
    assert name != pin_name(url, "another-key")


# ---- the connection machine ---------------------------------------------------------------------


def session(**extra: object) -> InMemoryHubSession:
    return InMemoryHubSession(protocol="wss", password=PASSWORD, generation=3, reconnect=FAST, **extra)


def test_a_pin_learned_on_first_contact_is_checked_on_every_later_link() -> None:
    s = session()
    assert s.connect() is ConnectionState.READY
    assert learned_hub_key(s.connection) == s.hub.static_public
    s.drop_link()  # the hub keeps our key: the next link runs KKpsk0 with the pin learned on link 1
    s.run(2.0, stop=lambda _: s.connection.state is ConnectionState.READY and s.connection.epoch == 2)
    assert s.hub.patterns == ["XXpsk2", "KKpsk0"] and s.connection.state is ConnectionState.READY


def test_a_changed_hub_key_after_a_failed_kk_is_a_hard_stop_with_both_keys() -> None:
    s = session()
    assert s.connect() is ConnectionState.READY
    old = s.hub.static_public
    s.hub.restart(new_key=True, keep_pins=True)
    s.drop_link()
    s.run(5.0, stop=lambda _: s.connection.state is ConnectionState.GAVE_UP)
    assert s.connection.state is ConnectionState.GAVE_UP
    assert s.hub.patterns == ["XXpsk2", "KKpsk0", "XXpsk2"]  # KK failed (1008), one XX told why, then no more
    stop = key_stop(s.connection, "wss://hub:1")
    assert stop is not None and stop.kind == "hub-key-changed"
    assert (stop.pinned, stop.presented, stop.endpoint) == (old, s.hub.static_public, "wss://hub:1")
    assert learned_hub_key(s.connection) is None


def test_a_configured_pin_is_kept_and_repinned_replaces_only_the_pin() -> None:
    s = session()
    with_pin = repinned(s.config, b"\x01" * 32)
    assert dict(with_pin.v3_options)["pinned_hub_key"] == b"\x01" * 32
    assert dict(with_pin.v3_options)["static_key"] == dict(s.config.v3_options)["static_key"]
    assert "pinned_hub_key" not in dict(repinned(with_pin, None).v3_options)
    plain = InMemoryHubSession(protocol="wss", password=None, crypto_key="0123456789abcdef").config
    assert repinned(plain, b"\x01" * 32) == plain  # no Noise, no pin


def test_the_hub_refusing_our_key_is_a_key_stop() -> None:
    first = session()
    assert first.connect() is ConnectionState.READY
    other = session(hub=first.hub, v3_options=(*session().config.v3_options[:1], ("static_key", b"\x07" * 32)))
    other.connect()
    assert other.connection.state is ConnectionState.GAVE_UP
    stop = key_stop(other.connection, "wss://hub:1")
    assert stop is not None and stop.kind == "client-key-rejected"


def test_a_close_right_after_an_xx_the_hub_did_not_need_is_taken_as_that_refusal() -> None:
    first = session()
    assert first.connect() is ConnectionState.READY
    second = session(hub=first.hub)  # the same client key, no hub pin: XX although the hub offers KK
    assert second.connect() is ConnectionState.READY
    assert refusal_possible(second.connection)
    second.close_link(1008, "invalid message")  # what hub 5.x often sends instead of its reason
    second.run(1.0, stop=lambda _: second.connection.state is ConnectionState.GAVE_UP)
    stop = key_stop(second.connection, "wss://hub:1")
    assert stop is not None and stop.kind == "client-key-rejected"
    assert not refusal_possible(first.connection)  # a first contact ran XX where the hub offered only XX
