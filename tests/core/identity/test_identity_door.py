"""Identities refuse bad text at the door (issue 13 item 6), drop ``?authorization=``, and say what is wrong.

Every text field refuses lone surrogates and control characters, naming the field and never the
value; an ``authorization`` query parameter never survives loading and is never shown; URL problems
are named for what they are; a ``crypto_key`` the pre-shared path cannot use still loads (issue 12
item 5; the failure comes from the handshake, see ``tests/core/handshake/test_v1_short_key.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from tests.core.identity.test_identity import KEY, PSK, PW, base
from thalovant import HubDataPlaneEndpoints, ThalovantIdentity
from thalovant.core.errors import ThalovantIdentityError
from thalovant.core.identity.env import identity_from_environ
from thalovant.core.identity.fields import CRYPTO_KEY_RULE, crypto_key_problem, text_problem, without_userinfo
from thalovant.core.identity.model import Identity
from thalovant.core.identity.parse import parse_identity

SECRET = "tok-" + "S3CR3T" * 4

#: Every text field of an identity and a mapping that puts ``value`` there.
FIELDS: dict[str, Any] = {
    "access_key": lambda v: base(access_key=v),
    "password": lambda v: base(password=v),
    "crypto_key": lambda v: base(crypto_key=v),
    "site_id": lambda v: base(site_id=v),
    "default_master": lambda v: base(default_master="http://" + v),
    "default_path": lambda v: base(default_path="/" + v),
    "data_plane_endpoints.wss": lambda v: base(data_plane_endpoints={"wss": "ws://" + v}),
    "mqtt.username": lambda v: base(mqtt={"endpoint": "mqtt://127.0.0.1:1883", "username": v, "password": "p"}),
    "mqtt.password": lambda v: base(mqtt={"endpoint": "mqtt://127.0.0.1:1883", "username": "u", "password": v}),
}

BAD_CHARACTERS = ["\ud800", "\udfff", "\udc80", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u202e", "\u2066"]


def problems(values: object) -> list[tuple[str, str]]:
    result = parse_identity(values)
    assert isinstance(result, Failure), result
    return [(p.path, p.message) for p in result.failure()]


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("bad", BAD_CHARACTERS, ids=ascii)
def test_every_text_field_refuses_surrogates_and_controls_naming_the_field(field: str, bad: str) -> None:
    values = FIELDS[field]("ab" + bad + "cd" + SECRET)
    found = problems(values)
    assert [path for path, _ in found] == [field]
    with pytest.raises(ThalovantIdentityError) as info:
        ThalovantIdentity.from_mapping(values)
    shown = str(info.value) + repr(info.value) + repr(info.value.problems)
    assert SECRET not in shown and bad not in shown and field in shown
    assert ("surrogate" in shown) == ("\ud800" <= bad <= "\udfff")


@given(
    field=st.sampled_from(["access_key", "password", "crypto_key", "site_id"]),
    head=st.text(alphabet="abcdefXYZ0189-_.", min_size=0, max_size=20),
    surrogate=st.integers(0xD800, 0xDFFF).map(chr),
)
def test_a_surrogate_anywhere_is_refused_and_never_shown(field: str, head: str, surrogate: str) -> None:
    value = head + surrogate + "0123456789abcdef"
    values = base(**{field: value})
    [(path, message)] = problems(values)
    assert path == field and "surrogate" in message and value not in message


@pytest.mark.parametrize("metadata", [{"app": "x\ud800"}, {"a\udc80": 1}, {"deep": [{"x": ["\udfff"]}]}], ids=ascii)
def test_metadata_with_a_lone_surrogate_is_refused(metadata: dict[str, Any]) -> None:
    [(path, message)] = problems(base(metadata=metadata))
    assert path == "metadata" and "valid Unicode" in message


def test_the_environment_s_undecodable_bytes_are_refused() -> None:
    environ = {
        "THALOVANT_ACCESS_KEY": b"key\xff".decode("utf-8", "surrogateescape"),  # what os.environ holds
        "THALOVANT_PASSWORD": PW,
        "THALOVANT_SITE_ID": "den",
        "THALOVANT_HUB_HTTP_HOST": "127.0.0.1",
    }
    [(path, message)] = problems(identity_from_environ(environ))
    assert path == "access_key" and "surrogate" in message


def test_an_identity_built_directly_is_checked_too() -> None:
    with pytest.raises(ThalovantIdentityError) as info:
        Identity(access_key=KEY + "\ud800", password=None, crypto_key=PSK, default_master="h", site_id=5)  # type: ignore[arg-type]
    assert [path for path, _ in info.value.problems] == ["access_key", "site_id"]
    assert KEY not in str(info.value)
    Identity(access_key=KEY, password=PW, default_master="127.0.0.1", site_id="s")  # a clean one is fine


def test_text_problem_accepts_ordinary_unicode() -> None:
    for fine in ("pässwörd", "日本語のパスワード", "emoji \U0001f600 ok", "a b"):
        assert text_problem(fine) is None
    assert text_problem("a\x00") == "must not contain control characters"


# ---- the authorization query ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        (f"wss://127.0.0.1:5678/?authorization={SECRET}", "wss://127.0.0.1:5678"),
        (f"wss://127.0.0.1:5678/hub?a=1&authorization={SECRET}&b=2", "wss://127.0.0.1:5678/hub?a=1&b=2"),
        (f"ws://127.0.0.1:5678?Authorization={SECRET}", "ws://127.0.0.1:5678"),
    ],
)
def test_an_authorization_query_is_dropped_from_endpoints_at_load(url: str, kept: str) -> None:
    ident = ThalovantIdentity.from_mapping(base(data_plane_endpoints={"wss": url}))
    assert ident.data_plane_endpoints.wss == kept
    shown = [
        repr(ident),
        str(ident),
        json.dumps(ident.as_dict()),
        json.dumps(ident.as_dict(include_secrets=True)),
        repr(ident.data_plane_endpoints),
        ident.endpoint_for("wss") or "",
    ]
    assert not any(SECRET in text for text in shown)


def test_https_endpoint_with_only_an_authorization_query_loads_without_it() -> None:
    result = parse_identity(base(data_plane_endpoints={"https": f"https://127.0.0.1/?authorization={SECRET}"}))
    assert isinstance(result, Success) and result.unwrap().endpoint_base() == "https://127.0.0.1"


def test_an_authorization_query_in_default_master_is_refused_without_showing_it() -> None:
    [(path, message)] = problems(base(default_master=f"https://127.0.0.1/?authorization={SECRET}"))
    assert path == "default_master" and "authorization" in message and SECRET not in message


def test_shown_urls_never_carry_an_authorization_query_even_when_built_by_hand() -> None:
    assert without_userinfo(f"wss://u:p@h:1/x?authorization={SECRET}&k=v") == "wss://h:1/x?k=v"
    endpoints = HubDataPlaneEndpoints(wss=f"wss://h/?authorization={SECRET}")
    assert SECRET not in json.dumps(endpoints.as_dict(redact_credentials=True))


# ---- what URL problems say -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("master", "says"),
    [
        ("https://", "must name a host"),
        ("https:///", "must name a host"),
        ("wss://", "must name a host"),
        ("javascript:x", "must be a host name, host:port or a URL such as https://host:port"),
        ("127.0.0.1:abc", "must be a host name, host:port or a URL such as https://host:port"),
        ("http://127.0.0.1:abc", "has a port that is not a number"),
        ("127.0.0.1:99999", "has a port outside 1..65535"),
        ("http://127.0.0.1:0", "has a port outside 1..65535"),
        ("http://127.0.0.1:", "no port number"),
    ],
)
def test_default_master_problems_name_the_real_problem(master: str, says: str) -> None:
    [(path, message)] = problems(base(default_master=master))
    assert path == "default_master" and says in message
    assert "port outside" not in message or says == "has a port outside 1..65535"


@pytest.mark.parametrize(
    ("url", "says"),
    [("wss://", "must name a host"), ("javascript:x", "must be a URL"), ("ws://h:x", "not a number")],
)
def test_endpoint_problems_name_the_real_problem(url: str, says: str) -> None:
    [(path, message)] = problems(base(data_plane_endpoints={"wss": url}))
    assert path == "data_plane_endpoints.wss" and says in message


# ---- a crypto_key the pre-shared path cannot use (issue 12 item 5) --------------------------------


@pytest.mark.parametrize("value", ["0123456789abcde", "ééééééééééééééééé", "short", "k"])
def test_a_crypto_key_the_psk_path_cannot_use_still_loads(value: str) -> None:
    result = parse_identity(base(crypto_key=value))
    assert isinstance(result, Success) and result.unwrap().crypto_key == value
    assert crypto_key_problem(value) == CRYPTO_KEY_RULE and "crypto_key[:16]" in CRYPTO_KEY_RULE
    assert crypto_key_problem(PSK) is None and crypto_key_problem(None) is None


def test_a_short_crypto_key_alone_is_still_a_credential() -> None:
    result = parse_identity(base(password=..., crypto_key="short"))
    assert isinstance(result, Success) and result.unwrap().password is None
