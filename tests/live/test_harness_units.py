"""Offline checks of the harness helpers (no hub needed): key/token choice and the raw MQTT packet codec."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.harness import procs
from tests.harness.hub import default_user_agent, padded_key, portable_key, token_can_be_portable, token_for
from tests.harness.install import HUB4, HUB5, flavour_hash, harness_home
from tests.harness.rawmqtt import RawMqtt, _remaining_length

user_agents = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"),
                      min_size=1, max_size=40)


@settings(max_examples=100, deadline=None)
@given(user_agents)
def test_portable_key_gives_a_token_without_url_special_characters(user_agent: str) -> None:
    key = portable_key(user_agent)
    token = token_for(user_agent, key)
    assert not token.endswith("="), "never padded, whatever the user agent"
    assume(token_can_be_portable(user_agent))
    assert not set(token) & set("=+/")
    assert urllib.parse.quote(token, safe="") == token
    assert base64.b64decode(token).decode() == f"{user_agent}:{key}"
    assert all(c in "0123456789abcdef" for c in key) and 32 <= len(key) <= 34


@settings(max_examples=100, deadline=None)
@given(user_agents)
def test_padded_key_gives_a_token_that_needs_percent_encoding(user_agent: str) -> None:
    token = token_for(user_agent, padded_key(user_agent))
    assert token.endswith("=")
    assert urllib.parse.quote(token, safe="") != token


def test_the_default_user_agent_allows_portable_tokens() -> None:
    assert token_can_be_portable(default_user_agent())
    assert not token_can_be_portable("00>")  # "00>:" encodes to "MDA+Og": the user agent forces a "+"


def _decode_remaining_length(data: bytes) -> tuple[int, int]:
    value, multiplier = 0, 1
    for index, byte in enumerate(data):
        value += (byte & 0x7F) * multiplier
        multiplier *= 128
        if not byte & 0x80:
            return value, index + 1
    raise AssertionError("unterminated remaining length")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=268_435_455))
def test_mqtt_remaining_length_round_trips(n: int) -> None:
    encoded = _remaining_length(n)
    assert 1 <= len(encoded) <= 4
    assert _decode_remaining_length(encoded) == (n, len(encoded))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5), st.data())
def test_mqtt_packet_parser_is_indifferent_to_chunking(bodies: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(bytes([0x30]) + _remaining_length(len(body)) + body for body in bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    parser = RawMqtt.__new__(RawMqtt)
    parser._buf = b""
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        parser._buf += stream[start:end]
        while (packet := parser._parse()) is not None:
            got.append(packet)
    assert got == [(0x30, body) for body in bodies]


def test_flavour_hash_is_stable_and_distinct() -> None:
    assert flavour_hash(HUB4) == flavour_hash(HUB4)
    assert flavour_hash(HUB4) != flavour_hash(HUB5)
    assert len(flavour_hash(HUB4)) == 12


def test_harness_home_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("THALOVANT_TEST_HUB_HOME", str(tmp_path / "explicit"))
    assert harness_home() == tmp_path / "explicit"
    monkeypatch.delenv("THALOVANT_TEST_HUB_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert harness_home() == tmp_path / "cache" / "thalovant-test-hub"


def test_process_guard_refuses_foreign_pids(tmp_path: Path) -> None:
    # our own pid runs pytest, not a harness process of this run directory
    import os

    assert not procs.proc_belongs(os.getpid(), "mosquitto.conf", tmp_path)
    assert not procs.proc_belongs(2**22 + 12345, "anything", tmp_path)
    port = procs.free_port()
    assert 1024 <= port <= 65535
    assert not procs.port_open(port)


@pytest.mark.parametrize("v3", [False, True])
def test_broker_acl_scopes_each_login_to_its_own_topics(v3: bool) -> None:
    from tests.harness.config import Client, broker_acl, client_topics, mqtt_prefix
    from tests.harness.hub import KINDS

    clients = [Client(spec=spec, access_key=f"{n}" * 32, password=None, crypto_key=None, broker_password="x")
               for n, spec in enumerate(KINDS[:2])]
    acl = broker_acl(clients, v3=v3)
    assert acl[:2] == ["user hivemind-hub", "topic readwrite hivemind/#"]
    for client in clients:
        key = client.access_key
        c2s, s2c, status = client_topics(v3, key)
        assert (c2s, s2c, status) == ((f"hivemind/{key}/in", f"hivemind/{key}/out", f"hivemind/{key}/status") if v3
                                      else tuple(f"hivemind/thalovant-test-hub/{k}/{key}" for k in ("c2s", "s2c",
                                                                                                     "status")))
        at = acl.index(f"user {key}")
        assert acl[at + 1 : at + 4] == [f"topic write {c2s}", f"topic read {s2c}", f"topic readwrite {status}"]
        # the hub's presence, readable: hub 4.x <base>/status/hub, hub 5.x <root>/<node name>/status
        presence = "hivemind/unnamed-node/status" if v3 else "hivemind/thalovant-test-hub/status/hub"
        assert acl[at + 4] == f"topic read {presence}"
        assert mqtt_prefix(v3, key) == (f"hivemind/{key}" if v3 else "hivemind/thalovant-test-hub")
