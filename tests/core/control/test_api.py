"""Pure control-plane core: request building, problem parsing, secrets, identity assembly."""

from __future__ import annotations

import email.utils
import itertools
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.pipeline import is_successful

from thalovant.core.control import api as control
from thalovant.core.control.api import ClientSecrets
from thalovant.core.control.identity import (
    assemble_identity,
    hub_endpoints,
    protocol_flags,
    redact_identity,
    select_endpoint,
)
from thalovant.core.errors import LocalProtocolError

FAST = settings(max_examples=150, deadline=None)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
KEYS = st.sampled_from([
    "id", "domain", "spec", "protocols", "network", "data_plane_endpoints", "endpoints", "https", "wss", "mqtt",
    "initial_identify", "access_key", "password", "crypto_key", "default_master", "broker_password", "username",
    "endpoint", "enabled", "http", "metadata", "default_port",
])
SHAPED = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 70000) | st.sampled_from(
        ["https://h.test", "wss://h.test/", "mqtts://b:8883", "ftp://x", "yes", "no", "", "u:p@x"]
    ) | st.text(max_size=10),
    lambda inner: st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)
SECRET_TEXT = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8, max_size=40)


def counter_entropy() -> Callable[[int], bytes]:
    counter = itertools.count(1)
    return lambda n: bytes((next(counter) * 37 + i) % 256 for i in range(n))


SECRETS = ClientSecrets(api_key="a" * 32, password="b" * 32, crypto_key="c" * 16)


# ------------------------------------------------------------------ encoding and requests


@FAST
@given(st.text(max_size=40))
def test_quote_round_trips_and_stays_in_one_segment(text: str) -> None:
    quoted = control.quote(text)
    assert unquote(quoted, errors="strict") == text
    assert re.fullmatch(r"[A-Za-z0-9\-._~%]*", quoted)
    assert "/" not in quoted and "?" not in quoted


def test_requests_have_expected_method_path_and_body() -> None:
    login = control.build_login_request("e@x", "pw", otp_code="123")
    assert (login.method, login.path, login.authenticated) == ("POST", "v1/auth/token", False)
    assert json.loads(login.body or b"") == {"email": "e@x", "password": "pw", "otp_code": "123"}
    assert "pw" not in repr(login)
    hubs = control.build_list_hubs_request(limit=3, cursor="c/1")
    assert hubs.target("/api") == "/api/v1/hubs?limit=3&cursor=c%2F1"
    assert control.build_get_hub_request("a b").target("/") == "/v1/hubs/a%20b"
    create = control.build_create_client_request({"x": 1}, "key-1")
    assert create.idempotency_key == "key-1" and create.method == "POST"


@pytest.mark.parametrize(
    "call",
    [
        lambda: control.build_login_request("", "pw"),
        lambda: control.build_login_request("e", "pw", recovery_code=" "),
        lambda: control.build_list_hubs_request(limit=0),
        lambda: control.build_list_hubs_request(limit=True),
        lambda: control.build_get_hub_request(""),
        lambda: control.build_create_client_request({}, ""),
        lambda: control.generate_client_secrets(lambda n: b"short"),
    ],
)
def test_caller_misuse_raises_local_protocol_error(call: Callable[[], object]) -> None:
    with pytest.raises(LocalProtocolError):
        call()


def test_client_body_overrides_secret_fields_of_the_callers_spec() -> None:
    body = control.build_client_body(
        hub_id="h", name="n", site_id="s", secrets=SECRETS, spec={"apiKey": "x", "version": "2", "lang": "en"}
    )
    assert body["spec"] == {"apiKey": "a" * 32, "password": "b" * 32, "cryptoKey": "c" * 16, "siteId": "s",
                            "version": "2", "lang": "en"}
    assert body["active"] is True and "owner_id" not in body


# ------------------------------------------------------------------ secrets


def test_generated_secrets_have_the_documented_shape() -> None:
    s = control.generate_client_secrets(counter_entropy())
    assert len(s.api_key) == len(s.password) == 32 and len(s.crypto_key) == 16
    assert set(s.api_key + s.password + s.crypto_key) <= set(control.SECRET_ALPHABET)
    assert len(set(s.values())) == 3
    assert s.api_key not in repr(s) and s.crypto_key not in repr(s)


@FAST
@given(st.binary(min_size=40, max_size=40))
def test_secrets_are_a_pure_function_of_the_entropy(tape: bytes) -> None:
    def entropy_from(data: bytes) -> Callable[[int], bytes]:
        pos = 0

        def take(n: int) -> bytes:
            nonlocal pos
            pos += n
            return data[pos - n: pos]

        return take

    a = control.generate_client_secrets(entropy_from(tape))
    b = control.generate_client_secrets(entropy_from(tape))
    assert a == b and a.api_key == tape[:16].hex() and a.crypto_key == tape[32:40].hex()


def test_idempotency_key_is_a_version_4_uuid() -> None:
    key = control.new_idempotency_key(counter_entropy())
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", key)


@pytest.mark.parametrize(
    ("name", "site", "expected"),
    [("Kitchen Pad", None, "Kitchen-Pad"), ("a_b  c", None, "a-b-c"), ("x", " lab 2 ", "lab-2"), ("  ", None, None)],
)
def test_derive_site_id(name: str, site: str | None, expected: str | None) -> None:
    got = control.derive_site_id(name, site, counter_entropy())
    if expected is None:
        assert re.fullmatch(r"thalovant-client-[0-9a-f]{8}", got)
    else:
        assert got == expected


@FAST
@given(st.text(max_size=30), st.none() | st.text(max_size=30))
def test_site_id_is_never_empty_and_has_no_whitespace(name: str, site: str | None) -> None:
    got = control.derive_site_id(name, site, counter_entropy())
    assert got and not re.search(r"\s", got)


# ------------------------------------------------------------------ responses and problems


@FAST
@given(st.binary(max_size=200), st.integers(100, 599), st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30))))
def test_problem_for_any_answer_is_total_and_one_line(body: bytes, status: int, headers: list[tuple[str, str]]) -> None:
    p = control.problem_for_response(method="GET", path="/v1/x", status_code=status, headers=headers, body=body)
    assert p.status_code == status and "\n" not in p.message
    assert p.detail is None or (len(p.detail) <= 200 and "\n" not in p.detail)
    assert p.retry_after is None or p.retry_after >= 0
    assert control.parse_object(body, status_code=200) is not None


@FAST
@given(JSON, SECRET_TEXT, st.sampled_from(["detail", "message", "error", "title", "code"]))
def test_secrets_echoed_by_the_api_never_reach_the_problem(value: Any, secret: str, field: str) -> None:
    body = json.dumps({field: f"rejected {secret}!", "detail_extra": value, "input": {"apiKey": secret}}).encode()
    p = control.problem_for_response(
        method="POST", path="/v1/clients", status_code=422, headers=[], body=body, secrets=[secret]
    )
    assert secret not in p.message and secret not in (p.detail or "") and secret not in (p.code or "")


def test_fastapi_validation_list_keeps_loc_and_msg_only() -> None:
    body = json.dumps({"detail": [{"loc": ["body", "spec", "password"], "msg": "too short", "input": "hunter2!"}]})
    p = control.problem_for_response(method="POST", path="/v1/clients", status_code=422, headers=[],
                                     body=body.encode())
    assert p.detail == "body.spec.password: too short" and "hunter2" not in p.message


def test_error_object_code_and_message_are_read() -> None:
    body = b'{"error": {"code": "plan_limit", "message": "Upgrade your plan"}}'
    p = control.problem_for_response(method="GET", path="/v1/hubs", status_code=403, headers=[], body=body)
    assert (p.code, p.detail) == ("plan_limit", "Upgrade your plan")


@FAST
@given(st.integers(0, 4_000_000_000), st.integers(0, int(control.MAX_RETRY_AFTER)))
def test_retry_after_http_date_matches_the_stdlib(epoch: int, delta: int) -> None:
    header = email.utils.formatdate(epoch + delta, usegmt=True)
    assert control.parse_retry_after(header, now_epoch=float(epoch)) == float(delta)
    assert control.parse_retry_after(str(delta), now_epoch=0.0) == float(delta)


@FAST
@given(st.text(max_size=40))
def test_retry_after_garbage_is_none_or_non_negative(text: str) -> None:
    got = control.parse_retry_after(text, now_epoch=1e9)
    assert got is None or got >= 0


@pytest.mark.parametrize(
    "header", ["Fri, 31 Dec 9999 23:59:59 GMT", "999999999999", "86401", "Sat, 01 Jan 2050 00:00:00 GMT"]
)
def test_retry_after_far_in_the_future_is_capped_at_a_day(header: str) -> None:
    assert control.parse_retry_after(header, now_epoch=1.7e9) == control.MAX_RETRY_AFTER == 86400.0
    problem = control.problem_for_response(
        method="GET", path="/v1/hubs", status_code=429, headers=[("Retry-After", header)], body=b"", now_epoch=1.7e9
    )
    assert problem.retry_after == 86400.0 and "retry after 86400 s" in problem.message


def test_retry_after_in_the_past_is_zero() -> None:
    assert control.parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now_epoch=1e9) == 0.0
    assert control.parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", now_epoch=0) is None
    assert control.parse_retry_after("-5", now_epoch=0) is None
    assert control.parse_retry_after("\u00b9", now_epoch=0) is None  # str.isdigit() is true for it; int() fails


@FAST
@given(st.dictionaries(st.text(max_size=8), JSON, max_size=5))
def test_parse_object_round_trips_objects(value: dict[str, Any]) -> None:
    parsed = control.parse_object(json.dumps(value).encode(), status_code=200)
    assert is_successful(parsed) and parsed.unwrap() == value


def test_login_answer_needs_a_token() -> None:
    assert control.token_from_login({"access_token": "t-1"}).unwrap() == "t-1"
    assert not is_successful(control.token_from_login({"access_token": ""}))


# ------------------------------------------------------------------ redaction


def test_redact_drops_secret_keys_keeps_references_and_scrubs_values() -> None:
    value = {
        "spec": {"apiKey": "k" * 32, "apiKeyRef": {"name": "vault/x", "key": "apiKey"}, "note": "uses " + "k" * 32},
        "mqtt": {"broker_password": "bp", "endpoint": "mqtt://user:pw@b:1883"},
        "items": [{"access_token": "t"}, "plain"],
    }
    out = control.redact(value, ["k" * 32])
    assert out == {
        "spec": {"apiKeyRef": {"name": "vault/x", "key": "apiKey"}, "note": "uses [redacted]"},
        "mqtt": {"endpoint": "mqtt://[redacted]@b:1883"},
        "items": [{}, "plain"],
    }


@FAST
@given(SHAPED, SECRET_TEXT)
def test_redact_identity_never_shows_a_secret(extra: Any, secret: str) -> None:
    mapping = {
        "access_key": secret, "password": secret[::-1] + "x", "crypto_key": "c" * 16, "site_id": "s",
        "default_master": "https://h", "mqtt": {"endpoint": f"mqtt://u:{secret}@b", "username": secret,
                                                  "password": "bp" + secret}, "metadata": {"note": secret, "x": extra},
    }
    shown = json.dumps(redact_identity(mapping))
    assert secret not in shown and "bp" + secret not in shown and "c" * 16 not in shown


# ------------------------------------------------------------------ identity assembly


@FAST
@given(SHAPED, SHAPED)
def test_assembly_never_raises_on_any_hub_or_answer(hub: Any, client: Any) -> None:
    hub = hub if isinstance(hub, dict) else {"x": hub}
    client = client if isinstance(client, dict) else {"y": client}
    result = assemble_identity(hub=hub, client=client, secrets=SECRETS, site_id="s")
    if is_successful(result):
        mapping = result.unwrap().mapping
        assert all(isinstance(mapping[k], str) and mapping[k] for k in ("access_key", "password", "crypto_key"))
        assert str(mapping["default_master"]).startswith(("http", "ws")) or "initial_identify" in client
    else:
        assert result.failure().code == "no_endpoint"


def test_local_identity_from_domain_and_flags() -> None:
    hub = {"id": "h", "domain": "hub.test", "spec": {"protocols": {"http": "yes", "wss": "no", "mqtt": False}}}
    a = assemble_identity(hub=hub, client={"id": "c"}, secrets=SECRETS, site_id="site").unwrap()
    assert a.mapping["data_plane_endpoints"] == {"https": "https://hub.test"}
    assert a.mapping["default_master"] == "https://hub.test" and a.mapping["default_port"] == 443
    assert a.mapping["access_key"] == "a" * 32 and a.mapping["site_id"] == "site"
    assert a.selected == ("https", "https://hub.test") and a.notes == ()
    assert "a" * 32 not in repr(a)


def test_endpoint_cleaning_and_selection() -> None:
    hub = {"endpoints": {"https": "ftp://no", "ws": "ws://h:5678/", "mqtts": "mqtts://b"}, "network": {"websocket": 1}}
    flags = protocol_flags(hub)
    assert flags == {"wss": True, "http": False, "mqtt": False}
    eps = hub_endpoints(hub, flags)
    assert eps == {"wss": "ws://h:5678", "mqtt": "mqtts://b"}
    assert select_endpoint(eps, {**flags, "mqtt": True}, ("mqtt", "wss"), mqtt_ready=False) == ("wss", "ws://h:5678")
    assert select_endpoint(eps, flags, ("https",), mqtt_ready=True) is None


def test_master_origin_drops_url_credentials() -> None:
    hub = {"data_plane_endpoints": {"wss": "wss://user:pw@h.test:8443/x"}}
    a = assemble_identity(hub=hub, client={}, secrets=SECRETS, site_id="s").unwrap()
    assert a.mapping["default_master"] == "https://h.test:8443"


def test_initial_identify_values_win_but_references_fall_back_to_local() -> None:
    client = {"initial_identify": {
        "key": "server-key", "password": {"name": "vault/p", "key": "password"}, "default_master": "wss://m.test",
        "default_port": 8443, "mqtt": {"brokerUrl": "mqtt://b:1883", "brokerUsername": "u", "brokerPassword": "p"},
    }}
    a = assemble_identity(hub={"protocols": {"mqtt": True}}, client=client, secrets=SECRETS, site_id="s").unwrap()
    m = a.mapping
    assert (m["access_key"], m["password"], m["crypto_key"]) == ("server-key", "b" * 32, "c" * 16)
    assert (m["default_master"], m["default_port"]) == ("wss://m.test", 8443)
    assert m["mqtt"] == {"endpoint": "mqtt://b:1883", "username": "u", "password": "p", "tls": False}
    assert m["data_plane_endpoints"]["mqtt"] == "mqtt://b:1883"


@pytest.mark.parametrize("token", ["", "has space", "line\nbreak", "x" * 5000, "caf\u00e9"])
def test_login_token_that_cannot_travel_in_a_header_is_refused(token: str) -> None:
    result = control.token_from_login({"access_token": token})
    assert not is_successful(result) and (not token or token not in result.failure().message)


def test_redirects_are_reported_not_followed() -> None:
    p = control.problem_for_response(method="GET", path="/v1/hubs", status_code=301,
                                     headers=[("location", "https://elsewhere")], body=b"")
    assert "redirects are not followed" in p.message and p.status_code == 301


def test_client_level_mqtt_block_is_used_when_there_is_no_initial_identify() -> None:
    hub = {"domain": "h.test", "protocols": {"http": True, "mqtt": True},
           "endpoints": {"mqtt": "mqtt://b.test:1883"}}
    client = {"mqtt": {"username": "u1", "password": "broker-pw-1", "topicPrefix": "hivemind/h"}}
    a = assemble_identity(hub=hub, client=client, secrets=SECRETS, site_id="s", preferred=("mqtt",)).unwrap()
    assert a.mapping["mqtt"] == {"endpoint": "mqtt://b.test:1883", "username": "u1", "password": "broker-pw-1",
                                 "topic_prefix": "hivemind/h", "tls": False}
    assert a.selected == ("mqtt", "mqtt://b.test:1883") and a.notes == ()
    referenced = {"mqtt": {"username": "u1", "passwordRef": {"name": "vault/x", "key": "password"}}}
    b = assemble_identity(hub=hub, client=referenced, secrets=SECRETS, site_id="s", preferred=("mqtt",)).unwrap()
    assert "mqtt" not in b.mapping and b.selected is None and "MQTT" in b.notes[0]
