"""Control-plane client against the fake API on 127.0.0.1 (sync facade and async class)."""

from __future__ import annotations

import email.utils
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from tests.fakes.control_server import FakeControlServer, Reply
from thalovant.core.identity.protocols import SelectedHubEndpoint
from thalovant.errors import (
    LocalProtocolError,
    ThalovantAPIError,
    ThalovantUnsupportedProtocolError,
)
from thalovant.shell.control_plane import USER_AGENT, AsyncThalovantControlPlane, BootstrapIdentityResult
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.sync.control_plane import ThalovantControlPlane

EMAIL, PASSWORD = "dev@example.test", "correct horse battery"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
def srv() -> Iterator[FakeControlServer]:
    with FakeControlServer() as server:
        yield server


@pytest.fixture
def cp(srv: FakeControlServer) -> Iterator[ThalovantControlPlane]:
    with ThalovantControlPlane(srv.url, timeout=3.0) as plane:
        plane.login(EMAIL, PASSWORD)
        yield plane


def sent_spec(srv: FakeControlServer, index: int = -1) -> dict[str, Any]:
    posts = [r for r in srv.requests if r.method == "POST" and r.path == "/v1/clients"]
    return dict(json.loads(posts[index].body)["spec"])


def mapping_of(result: BootstrapIdentityResult) -> dict[str, Any]:
    return result.identity_mapping(include_secrets=True)


# ------------------------------------------------------------------ sign-in and reads


def test_login_stores_the_token_and_later_calls_send_it(srv: FakeControlServer) -> None:
    with ThalovantControlPlane(srv.url) as plane:
        assert not plane.authenticated
        answer = plane.login(EMAIL, PASSWORD)
        assert plane.authenticated and answer["token_type"] == "bearer"
        plane.list_hubs()
    login, listing = srv.requests
    assert "authorization" not in login.headers
    assert json.loads(login.body) == {"email": EMAIL, "password": PASSWORD}
    assert listing.headers["authorization"] == f"Bearer {answer['access_token']}"
    assert listing.headers["user-agent"] == USER_AGENT and listing.headers["accept"] == "application/json"
    assert srv.connections == 1  # keep-alive across calls inside ``with``


def test_access_token_argument_is_used_without_login(srv: FakeControlServer) -> None:
    srv.tokens.add("preissued-token-123")
    assert ThalovantControlPlane(srv.url, "preissued-token-123").get_hub("hub-1")["name"] == "Jokes"


def test_wrong_password_is_401_with_code(srv: FakeControlServer) -> None:
    with pytest.raises(ThalovantAPIError) as info:
        ThalovantControlPlane(srv.url).login(EMAIL, "wrong password!")
    assert (info.value.status_code, info.value.code) == (401, "invalid_credentials")
    assert "wrong password!" not in str(info.value)


def test_mfa_login_needs_the_one_time_code(srv: FakeControlServer) -> None:
    plane = ThalovantControlPlane(srv.url)
    with pytest.raises(ThalovantAPIError) as info:
        plane.login("mfa@example.test", "mfa password 123")
    assert info.value.code == "mfa_required"
    plane.login("mfa@example.test", "mfa password 123", otp_code="424242")
    assert plane.authenticated
    assert json.loads(srv.requests[-1].body)["otp_code"] == "424242"


def test_login_answer_without_token_is_an_error(srv: FakeControlServer) -> None:
    srv.script("POST", "/v1/auth/token", Reply(status=200, body={"token_type": "bearer"}))
    plane = ThalovantControlPlane(srv.url)
    with pytest.raises(ThalovantAPIError, match="no access_token"):
        plane.login(EMAIL, PASSWORD)
    assert not plane.authenticated


def test_calls_without_a_token_fail_before_sending(srv: FakeControlServer) -> None:
    with pytest.raises(ThalovantAPIError, match="access token"):
        ThalovantControlPlane(srv.url).list_hubs()
    assert srv.requests == []


def test_list_hubs_passes_paging(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    page = cp.list_hubs(limit=2, cursor="a b&c")
    assert len(page["items"]) == 2
    assert srv.requests[-1].query == {"limit": ["2"], "cursor": ["a b&c"]}


@pytest.mark.parametrize(("hub_id", "raw_path"), [("we ird/id", "/v1/hubs/we%20ird%2Fid"), ("../x", "/v1/hubs/..%2Fx")])
def test_get_hub_url_encodes_the_id(
    cp: ThalovantControlPlane, srv: FakeControlServer, hub_id: str, raw_path: str
) -> None:
    try:
        cp.get_hub(hub_id)
    except ThalovantAPIError as exc:
        assert exc.status_code == 404
    assert srv.requests[-1].path == raw_path


def test_bad_arguments_are_local_errors(cp: ThalovantControlPlane) -> None:
    with pytest.raises(LocalProtocolError):
        cp.get_hub("")
    with pytest.raises(LocalProtocolError):
        cp.list_hubs(limit=0)


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="https"):
        ThalovantControlPlane("http://api.example.test")
    assert ThalovantControlPlane("http://api.example.test", allow_http=True).base_url == "http://api.example.test"
    with pytest.raises(LocalProtocolError):
        ThalovantControlPlane("ftp://x")


def test_sync_facade_refuses_to_run_inside_an_event_loop(srv: FakeControlServer) -> None:
    async def main() -> None:
        ThalovantControlPlane(srv.url).list_hubs()

    with pytest.raises(LocalProtocolError, match="AsyncThalovantControlPlane"):
        anyio.run(main)


def client_threads() -> set[threading.Thread]:
    """Every live thread but the fake server's own per-connection handlers.

    ``ThreadingHTTPServer`` serves each connection on a thread of its own that ends a moment after
    the client closed the connection; those belong to the server, not to the SDK under test.
    """
    return {t for t in threading.enumerate() if not t.name.endswith("(process_request_thread)")}


def test_sync_calls_without_with_leave_no_thread_behind(srv: FakeControlServer) -> None:
    before = client_threads()
    plane = ThalovantControlPlane(srv.url)
    plane.login(EMAIL, PASSWORD)
    plane.get_hub("hub-1")
    assert client_threads() == before


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_client_on_both_backends(srv: FakeControlServer, backend: str) -> None:
    async def main() -> BootstrapIdentityResult:
        async with AsyncThalovantControlPlane(srv.url, timeout=3.0) as plane:
            await plane.login(EMAIL, PASSWORD)
            assert (await plane.get_hub("hub-1"))["id"] == "hub-1"
            return await plane.create_client_identity("hub-1", name="async client")

    result = anyio.run(main, backend=backend)
    assert result.selected_protocol == "https"
    assert srv.connections == 1


# ------------------------------------------------------------------ provisioning


def test_create_client_identity_generates_and_sends_secrets_once(
    cp: ThalovantControlPlane, srv: FakeControlServer
) -> None:
    result = cp.create_client_identity("hub-1", name="Kitchen  pad_2")
    spec = sent_spec(srv)
    assert HEX32.fullmatch(spec["apiKey"]) and HEX32.fullmatch(spec["password"]) and HEX16.fullmatch(spec["cryptoKey"])
    assert spec["siteId"] == "Kitchen-pad-2" and spec["version"] == "1"
    post = [r for r in srv.requests if r.method == "POST" and r.path == "/v1/clients"]
    assert len(post) == 1 and UUID4.fullmatch(post[0].headers["idempotency-key"])
    ident = mapping_of(result)
    assert (ident["access_key"], ident["password"], ident["crypto_key"]) == (
        spec["apiKey"],
        spec["password"],
        spec["cryptoKey"],
    )
    assert ident["default_master"] == "https://jokes.example.test" and ident["default_port"] == 443
    assert ident["protocols"]["http"] == {"enabled": True} and "mqtt" not in ident
    assert result.endpoint == SelectedHubEndpoint("https", "https://jokes.example.test")
    assert result.require_protocol("wss") == "wss://jokes.example.test"
    with pytest.raises(ThalovantUnsupportedProtocolError):
        result.require_protocol("mqtt")
    # the API's answer only had references: kept in the safe view
    assert result.client["spec"]["apiKeyRef"]["name"].startswith("vault/")


def test_identity_is_a_usable_thalovant_identity(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    result = cp.create_client_identity("hub-mqtt", name="typed")
    spec = sent_spec(srv)
    ident = result.identity
    assert isinstance(ident, ThalovantIdentity)
    assert (ident.access_key, ident.password, ident.crypto_key) == (spec["apiKey"], spec["password"], spec["cryptoKey"])
    assert ident.mqtt is not None and ident.mqtt.password in srv.issued_secrets and ident.mqtt.tls is True
    assert ident.endpoint_for("mqtt") == "mqtts://broker.example.test:8883"
    assert spec["apiKey"] not in repr(ident)
    assert cp.require_runtime_protocol(result, protocol="wss") == SelectedHubEndpoint("wss", "wss://mqtt-hub.example.test")


def test_answer_that_makes_no_valid_identity_is_an_api_error(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    bad = {"id": "c-9", "initial_identify": {"default_master": "https://h.test", "default_port": "not a port"}}
    srv.script("POST", "/v1/clients", Reply(status=201, body=bad))
    with pytest.raises(ThalovantAPIError) as info:
        cp.create_client_identity("hub-1", name="bad")
    spec = sent_spec(srv)
    assert info.value.code == "invalid_identity" and "default_port" in str(info.value)
    assert spec["apiKey"] not in str(info.value) and spec["password"] not in str(info.value)


def test_spec_from_caller_is_kept_but_cannot_override_secrets(
    cp: ThalovantControlPlane, srv: FakeControlServer
) -> None:
    cp.create_client_identity(
        "hub-1", name="n", spec={"apiKey": "mine", "lang": "de-de"}, site_id="lab 1", owner_id="u-1", active=False
    )
    body = json.loads([r for r in srv.requests if r.path == "/v1/clients"][-1].body)
    assert body["spec"]["lang"] == "de-de" and body["spec"]["apiKey"] != "mine" and body["spec"]["siteId"] == "lab-1"
    assert body["owner_id"] == "u-1" and body["active"] is False and body["hub_id"] == "hub-1"


def test_two_calls_never_share_a_secret(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    cp.create_client_identity("hub-1", name="one")
    cp.create_client_identity("hub-1", name="two")
    a, b = sent_spec(srv, 0), sent_spec(srv, 1)
    values = [a["apiKey"], a["password"], a["cryptoKey"], b["apiKey"], b["password"], b["cryptoKey"]]
    assert len(set(values)) == 6
    keys = [r.headers["idempotency-key"] for r in srv.requests if r.path == "/v1/clients"]
    assert keys[0] != keys[1]


def test_mqtt_hub_gives_per_client_broker_credentials(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    result = cp.create_client_identity("hub-mqtt", name="pad", preferred_protocols=("mqtt", "https"))
    spec = sent_spec(srv)
    ident = mapping_of(result)
    mqtt = ident["mqtt"]
    assert mqtt["password"] in srv.issued_secrets and mqtt["username"] == spec["apiKey"]
    assert mqtt["endpoint"] == "mqtts://broker.example.test:8883" and mqtt["tls"] is True
    assert mqtt["topic_prefix"] == "hivemind/hub-mqtt"
    # initial_identify sent a *reference* for the password: the local secret fills it
    assert ident["password"] == spec["password"]
    assert result.endpoint == SelectedHubEndpoint("mqtt", "mqtts://broker.example.test:8883")
    assert result.require_protocol("mqtt") == "mqtts://broker.example.test:8883"
    safe = json.dumps(result.as_dict())
    assert mqtt["password"] not in safe and spec["apiKey"] not in safe


def test_mqtt_enabled_but_no_credentials_is_reported(cp: ThalovantControlPlane) -> None:
    result = cp.create_client_identity("hub-norefs-mqtt", name="x", preferred_protocols=("mqtt", "wss"))
    assert result.endpoint == SelectedHubEndpoint("wss", "ws://127.0.0.1:5678")
    assert result.notes and "MQTT" in result.notes[0]
    with pytest.raises(ThalovantUnsupportedProtocolError):
        result.require_protocol("mqtt")
    with pytest.raises(ThalovantUnsupportedProtocolError):
        result.require_protocol("carrier-pigeon")


def test_hub_mapping_skips_the_hub_lookup(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    hub = cp.get_hub("hub-1")
    count = len(srv.requests)
    cp.create_client_identity(hub, name="z")
    assert [r.path for r in srv.requests[count:]] == ["/v1/clients"]
    with pytest.raises(ThalovantAPIError, match="no string 'id'"):
        cp.create_client_identity({"name": "no id"}, name="z")


def test_hub_without_any_endpoint_is_an_api_error(cp: ThalovantControlPlane) -> None:
    with pytest.raises(ThalovantAPIError) as info:
        cp.create_client_identity("hub-bare", name="x")
    assert info.value.code == "no_endpoint"


def test_conflict_is_409_and_the_post_is_not_retried(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    cp.create_client_identity("hub-1", name="dup")
    with pytest.raises(ThalovantAPIError) as info:
        cp.create_client_identity("hub-1", name="dup")
    assert (info.value.status_code, info.value.code) == (409, "client_exists")
    assert len([r for r in srv.requests if r.path == "/v1/clients"]) == 2


def test_caller_idempotency_key_is_sent(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    cp.create_client_identity("hub-1", name="idem", idempotency_key="my-key-1")
    assert srv.requests[-1].headers["idempotency-key"] == "my-key-1"


def test_422_echoing_the_secrets_is_scrubbed(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    with pytest.raises(ThalovantAPIError) as info:
        cp.create_client_identity("hub-422", name="strict")
    spec = sent_spec(srv)
    text = str(info.value) + repr(info.value) + str(info.value.detail)
    assert info.value.status_code == 422 and "body.spec.apiKey: value is not allowed here" in text
    for secret in (spec["apiKey"], spec["password"], spec["cryptoKey"]):
        assert secret not in text


def test_result_repr_and_safe_dict_hold_no_secret(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    result = cp.create_client_identity("hub-mqtt", name="repr")
    spec = sent_spec(srv)
    secrets = [spec["apiKey"], spec["password"], spec["cryptoKey"], *srv.issued_secrets]
    shown = repr(result) + json.dumps(result.as_dict()) + repr(result.client) + repr(cp)
    assert not [s for s in secrets if s in shown]
    full = json.dumps(result.as_dict(include_secrets=True))
    assert all(s in full for s in (spec["apiKey"], spec["password"], spec["cryptoKey"]))


# ------------------------------------------------------------------ error answers


@pytest.mark.parametrize(
    ("status", "headers", "retry_after", "hint"),
    [
        (400, {}, None, "invalid"),
        (401, {}, None, "login()"),
        (403, {}, None, "not allowed"),
        (404, {}, None, "check the id"),
        (409, {}, None, "conflict"),
        (412, {}, None, "precondition"),
        (429, {"Retry-After": "7"}, 7.0, "retry after 7 s"),
        (500, {}, None, "try again later"),
        (503, {"Retry-After": "30"}, 30.0, "retry after 30 s"),
    ],
)
def test_error_statuses_become_structured_api_errors(
    cp: ThalovantControlPlane,
    srv: FakeControlServer,
    status: int,
    headers: dict[str, str],
    retry_after: float | None,
    hint: str,
) -> None:
    srv.script(
        "GET",
        "/v1/hubs",
        Reply(status=status, headers=headers, body={"code": f"e{status}", "detail": f"went\nwrong {status}"}),
    )
    with pytest.raises(ThalovantAPIError) as info:
        cp.list_hubs()
    err = info.value
    assert (err.status_code, err.code, err.detail, err.retry_after) == (
        status,
        f"e{status}",
        f"went wrong {status}",
        retry_after,
    )
    assert hint in str(err) and "\n" not in str(err)


def test_retry_after_as_http_date(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    srv.script("GET", "/v1/hubs", Reply(status=429, headers={"Retry-After": when}, body={"detail": "slow down"}))
    with pytest.raises(ThalovantAPIError) as info:
        cp.list_hubs()
    assert info.value.retry_after is not None and 100 <= info.value.retry_after <= 121


def test_non_json_error_body_is_never_quoted(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    html = b"<html><body>Bad gateway from upstream proxy 10.0.0.7 internal-trace-xyz</body></html>"
    srv.script("GET", "/v1/hubs", Reply(status=502, body=html, headers={"content-type": "text/html"}))
    with pytest.raises(ThalovantAPIError) as info:
        cp.list_hubs()
    assert info.value.status_code == 502 and info.value.detail is None
    assert "internal-trace" not in str(info.value) and "<html>" not in str(info.value)


def test_long_detail_is_cut_to_200_characters(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    srv.script("GET", "/v1/hubs", Reply(status=400, body={"detail": "x" * 5000}))
    with pytest.raises(ThalovantAPIError) as info:
        cp.list_hubs()
    assert info.value.detail is not None and len(info.value.detail) <= 200


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_success_status_with_bad_body_is_invalid_response(
    cp: ThalovantControlPlane, srv: FakeControlServer, body: bytes
) -> None:
    srv.script("GET", "/v1/hubs", Reply(status=200, body=body))
    with pytest.raises(ThalovantAPIError) as info:
        cp.list_hubs()
    assert info.value.code == "invalid_response" and info.value.status_code == 200


def test_slow_response_times_out(srv: FakeControlServer) -> None:
    srv.script("GET", "/v1/hubs", Reply(delay=3.0, body={"items": []}))
    srv.tokens.add("tok-slow-1")
    plane = ThalovantControlPlane(srv.url, "tok-slow-1", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ThalovantAPIError) as info:
        plane.list_hubs()
    assert time.monotonic() - started < 2.5
    assert info.value.code == "timeout" and isinstance(info.value.__cause__, TimeoutError)


def test_slow_create_is_not_retried_and_names_the_idempotency_key(srv: FakeControlServer) -> None:
    srv.tokens.add("tok-slow-2")
    srv.script("POST", "/v1/clients", Reply(delay=1.5, status=201, body={"id": "late"}))
    plane = ThalovantControlPlane(srv.url, "tok-slow-2", timeout=0.3)
    with pytest.raises(ThalovantAPIError, match="idempotency_key=") as info:
        plane.create_client_identity(srv.hubs["hub-1"], name="slow")
    assert info.value.code == "timeout"
    assert len([r for r in srv.requests if r.path == "/v1/clients"]) == 1


def test_truncated_response_is_an_api_error(cp: ThalovantControlPlane, srv: FakeControlServer) -> None:
    srv.script("GET", "/v1/hubs", Reply(body={"items": ["a" * 100]}, truncate_to=20))
    with pytest.raises(ThalovantAPIError, match="incomplete") as info:
        cp.list_hubs()
    assert info.value.code == "unreachable" and info.value.status_code is None
    assert cp.list_hubs()["items"]  # the next call dials a fresh connection


def test_oversized_response_is_refused(srv: FakeControlServer) -> None:
    srv.tokens.add("tok-big-1")
    srv.script("GET", "/v1/hubs", Reply(body={"items": ["b" * 10_000]}))
    with pytest.raises(ThalovantAPIError) as info:
        ThalovantControlPlane(srv.url, "tok-big-1", max_body=4096).list_hubs()
    assert info.value.code == "response_too_large"


def test_unreachable_api(srv: FakeControlServer) -> None:
    url = srv.url
    srv.stop()
    with pytest.raises(ThalovantAPIError, match="Could not reach") as info:
        ThalovantControlPlane(url, timeout=2).login(EMAIL, PASSWORD)
    assert info.value.code == "unreachable" and PASSWORD not in str(info.value)


# ------------------------------------------------------------------ nothing leaks


def test_no_secret_is_logged_raised_or_printed_in_any_scenario(
    srv: FakeControlServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []

    def attempt(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            shown.extend([str(exc), repr(exc), str(getattr(exc, "detail", "")), str(exc.__cause__)])
            return None
        if isinstance(value, BootstrapIdentityResult):  # plain dicts are raw API data the caller asked for
            shown.append(repr(value))
            shown.append(json.dumps(value.as_dict()))
            shown.append(repr(value.client))
        return value

    with ThalovantControlPlane(srv.url, timeout=0.5) as plane:
        attempt(plane.login, EMAIL, "a wrong password value")
        attempt(plane.login, "mfa@example.test", "mfa password 123")
        attempt(plane.login, "mfa@example.test", "mfa password 123", otp_code="424242")
        attempt(plane.login, EMAIL, PASSWORD)
        shown.append(repr(plane))
        attempt(plane.list_hubs)
        attempt(plane.get_hub, "hub-1")
        for hub in ("hub-1", "hub-mqtt", "hub-norefs-mqtt", "hub-422", "hub-bare", "nope"):
            attempt(plane.create_client_identity, hub, name="leak test")
        attempt(plane.create_client_identity, "hub-1", name="leak test")  # 409
        for status in (400, 401, 403, 404, 409, 412, 429, 500):
            srv.script(
                "GET",
                "/v1/hubs",
                Reply(status=status, headers={"Retry-After": "1"}, body={"detail": "bad", "code": "c"}),
            )
            attempt(plane.list_hubs)
        srv.script("GET", "/v1/hubs", Reply(delay=1.0))
        attempt(plane.list_hubs)
        srv.script("GET", "/v1/hubs", Reply(body={"items": ["x" * 200]}, truncate_to=10))
        attempt(plane.list_hubs)
        srv.script("POST", "/v1/clients", Reply(delay=1.0))
        attempt(plane.create_client_identity, "hub-1", name="slow one")
    srv.tokens.add("tok-small-1")
    srv.script("GET", "/v1/hubs", Reply(body={"items": ["y" * 5000]}))
    attempt(ThalovantControlPlane(srv.url, "tok-small-1", max_body=1000).list_hubs)

    secrets = {"a wrong password value", PASSWORD, "mfa password 123", "424242", "tok-small-1", *srv.issued_secrets}
    for client in srv.clients:
        secrets.update(client["spec"][k] for k in ("apiKey", "password", "cryptoKey"))
    for rec in srv.requests:
        if rec.path == "/v1/clients":
            secrets.update(json.loads(rec.body)["spec"][k] for k in ("apiKey", "password", "cryptoKey"))
    out = capsys.readouterr()
    haystack = "\n".join([*shown, caplog.text, *(r.getMessage() for r in caplog.records), out.out, out.err])
    assert len(secrets) > 20 and len(caplog.records) > 10  # the scenarios really ran and logged
    leaked = sorted(s for s in secrets if s in haystack)
    assert leaked == []
