"""0.4.7 value shapes and imports: events, replies, health, handler types, the control plane's session seam."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import pytest

from thalovant import (
    EventHandler,
    EventPredicate,
    SelectedHubEndpoint,
    ThalovantAPIError,
    ThalovantControlPlane,
    ThalovantEvent,
    ThalovantHealth,
    ThalovantReply,
    ThalovantUnsupportedProtocolError,
)


class RawMessage:
    """What a 0.4.7 transport handed to handlers."""

    def __init__(self, data: dict[str, Any], context: dict[str, Any] | None = None, msg_type: str | None = None):
        self.data, self.context, self.msg_type = data, context or {}, msg_type


def test_events_are_built_as_in_0_4_7() -> None:
    raw = RawMessage({"utterance": "hi"}, msg_type="speak")
    with pytest.warns(DeprecationWarning, match=r"ThalovantEvent\(name=\.\.\.\)"):
        event = ThalovantEvent(name="speak", data=raw.data, context=raw.context, raw=raw)
    positional = ThalovantEvent("speak", {"utterance": "hi"}, {}, raw)
    assert event == positional and event.name == event.type == "speak" and event.text == "hi"
    assert event.raw is raw and positional.raw is raw
    assert "raw" not in event.as_dict() and "RawMessage" not in repr(event)
    assert dataclasses.replace(event, data={"utterance": "bye"}).text == "bye"
    with pytest.raises(TypeError):
        ThalovantEvent(type="speak", name="write")


def test_replies_are_built_as_in_0_4_7() -> None:
    speak = ThalovantEvent("speak", {"utterance": "hello from cli"}, {})
    reply = ThalovantReply("hello from cli", ("hello from cli",), True, None, "request-1", None, (speak,))
    assert reply.ok and reply.request_id == "request-1" and reply.events == (speak,)
    assert ThalovantReply(text="hello from cli", handled=True).ok
    with pytest.warns(DeprecationWarning, match="raw_messages"):
        assert reply.raw_messages == (speak,)
    raw = RawMessage({"utterance": "x"})
    with pytest.warns(DeprecationWarning, match=r"ThalovantReply\(raw_messages=\.\.\.\)"):
        given = ThalovantReply(text="x", handled=True, raw_messages=(raw,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the attribute warned once already
        assert given.raw_messages == (raw,)
    assert given == ThalovantReply(text="x", handled=True)  # raw transport objects take no part in equality


def test_health_is_built_as_in_0_4_7() -> None:
    by_position = ThalovantHealth(True, True, True)
    by_keyword = ThalovantHealth(connected=True, handshake_complete=True, transport_alive=True)
    assert by_position == by_keyword and by_position.ok
    failed = ThalovantHealth(True, True, True, "boom")
    assert not failed.ok and failed.as_dict()["last_error"] == "boom"


def test_handler_type_aliases_are_importable() -> None:
    def on_speak(event: ThalovantEvent) -> None:
        return None

    handler: EventHandler = on_speak
    predicate: EventPredicate = lambda event: event.type == "speak"  # noqa: E731
    assert handler(ThalovantEvent("speak")) is None and predicate(ThalovantEvent("speak"))


# ---- the control plane through a requests-style session ----------------------------------------------


class FakeResponse:
    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code = status_code
        self._body = body
        self.text = str(body)

    def json(self) -> Any:
        if isinstance(self._body, str):
            raise ValueError("not JSON")
        return self._body


HUB = {
    "id": "hub-1",
    "name": "joke-garden",
    "domain": "jokes.example.test",
    "spec": {"protocols": {"wss": {"enabled": True}, "http": {"enabled": True}, "mqtt": {"enabled": False}}},
}


class FakeSession:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        self.requests.append((method, url, kwargs))
        if url.endswith("/v1/auth/token"):
            return FakeResponse(200, {"access_token": "token-1", "expires_in": 3600})
        if url.endswith("/v1/hubs/hub-1"):
            return FakeResponse(200, HUB)
        if url.endswith("/v1/hubs"):
            return FakeResponse(200, {"items": [HUB]})
        if url.endswith("/v1/clients"):
            spec = kwargs["json"]["spec"]
            assert spec["apiKey"] and spec["password"] and spec["cryptoKey"]
            return FakeResponse(201, {"id": "client-1", "name": kwargs["json"]["name"], "spec": {"version": "1"}})
        return FakeResponse(404, {"detail": "no such route"})


def test_control_plane_goes_through_a_requests_style_session() -> None:
    session = FakeSession()
    api = ThalovantControlPlane("https://dash.example.test/api", session=session)
    assert api.login("ada@example.test", "secret")["access_token"] == "token-1"
    result = api.create_client_identity("hub-1", name="kiosk")
    assert result.identity.site_id == "kiosk" and result.identity.crypto_key
    assert result.endpoint == SelectedHubEndpoint("https", "https://jokes.example.test")
    assert (result.endpoint.protocol, result.selected_protocol) == ("https", "https")
    assert api.require_runtime_protocol(result, protocol="wss").endpoint == "wss://jokes.example.test"
    with pytest.raises(ThalovantUnsupportedProtocolError, match="MQTT"):
        api.require_runtime_protocol(result, protocol="mqtt")
    assert api.list_hubs(limit=5)["items"][0]["id"] == "hub-1"
    methods = [(method, url) for method, url, _ in session.requests]
    assert methods == [
        ("POST", "https://dash.example.test/api/v1/auth/token"),
        ("GET", "https://dash.example.test/api/v1/hubs/hub-1"),
        ("POST", "https://dash.example.test/api/v1/clients"),
        ("GET", "https://dash.example.test/api/v1/hubs"),
    ]
    login, _, create, listing = (kwargs for _, _, kwargs in session.requests)
    assert login["json"] == {"email": "ada@example.test", "password": "secret"}
    assert "authorization" not in login["headers"]
    assert create["headers"]["authorization"] == "Bearer token-1" and create["headers"]["Idempotency-Key"]
    assert listing["params"] == {"limit": "5"} and listing["timeout"] == api._async.timeout
    assert api.session is session


def test_control_plane_session_failures_are_api_errors() -> None:
    class Broken:
        def request(self, method: str, url: str, **kwargs: Any) -> Any:
            raise OSError("network is unreachable")

    api = ThalovantControlPlane("https://dash.example.test/api", session=FakeSession(), access_token="token-1")
    with pytest.raises(ThalovantAPIError) as failed:
        api.get_hub("missing")
    assert failed.value.status_code == 404 and "no such route" in str(failed.value)
    with pytest.raises(ThalovantAPIError, match="Could not reach"):
        ThalovantControlPlane("https://dash.example.test", session=Broken(), access_token="t").list_hubs()


def test_control_plane_api_url_keyword() -> None:
    with pytest.warns(DeprecationWarning, match="api_url"):
        api = ThalovantControlPlane(api_url="https://dash.example.test/api", session=FakeSession())
    assert api.base_url == "https://dash.example.test/api"
