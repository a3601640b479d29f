"""The pure Session against the real hub 4.x harness: every v1 path over WS and MQTT (loopback only).

Drives ``Session`` with the harness's raw synchronous clients (no shell involved), so a failure here
is a wire-core bug. Marked ``hub``; skipped with the reason when the harness cannot be installed.
The hub gets its own run directory (not the integration fixture's) and is stopped at module end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wsproto.events import BytesMessage, TextMessage

from tests.harness.hub import HUB4, HUB5, TestHub
from tests.harness.pytest_plugin import private_hub
from tests.harness.rawmqtt import RawMqtt
from tests.harness.rawws import RawWebSocket, WsClosed
from thalovant.core.machine import Tick
from thalovant.core.session.machine import (
    Deliver,
    FrameReceived,
    LinkClosed,
    LinkOpened,
    SendFrame,
    Session,
    SessionFailed,
    SessionReady,
    SessionState,
    UserSend,
)
from thalovant.core.wire.message import BusMessage

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def hub4() -> Iterator[TestHub]:
    yield from private_hub(HUB4, "session-live")


@pytest.fixture(scope="module")
def hub5() -> Iterator[TestHub]:
    yield from private_hub(HUB5, "session-live")


def converse(session: Session, send: Callable[[str | bytes], None], recv: Callable[[float], Any]) -> dict[str, Any]:
    """Connect, ask once, and collect outputs until the turn ends or 15 s pass."""
    t0 = time.monotonic()
    seen: dict[str, Any] = {"types": [], "ready": None, "failed": None}

    def run(outputs: list[Any]) -> None:
        for out in outputs:
            if isinstance(out, SendFrame):
                send(out.data)
            elif isinstance(out, Deliver) and (bus := out.message.bus()) is not None:
                seen["types"].append(bus.type)
                seen.setdefault("context", bus.context)
            elif isinstance(out, SessionReady):
                seen["ready"] = out
            elif isinstance(out, SessionFailed):
                seen["failed"] = out

    run(session.handle(LinkOpened(), now=0.0))
    ask = BusMessage(type="recognizer_loop:utterance", data={"utterances": ["hello"]}, context={"request_id": "live-1"})
    run(session.handle(UserSend(message=ask, ref=1), now=0.0))
    while time.monotonic() - t0 < 15.0 and session.state is not SessionState.FAILED:
        if "ovos.utterance.handled" in seen["types"]:
            break
        try:
            frame = recv(1.0)
        except TimeoutError:
            run(session.handle(Tick(), now=time.monotonic() - t0))
            continue
        except WsClosed as closed:
            run(session.handle(LinkClosed(code=closed.code, reason=closed.reason), now=time.monotonic() - t0))
            break
        run(session.handle(FrameReceived(data=frame), now=time.monotonic() - t0))
    return seen


def ws_session(hub: TestHub, kind: str, **kw: Any) -> tuple[Session, RawWebSocket]:
    ident = hub.identity(kind)
    ws = RawWebSocket(hub.ports.ws, "/?authorization=" + hub.token(kind), timeout=5.0)  # type: ignore[union-attr]
    creds = {"password": ident.get("password"), "crypto_key": ident.get("crypto_key")} | kw.pop("creds", {})
    session = Session(
        session_id=f"live-{kind}-{time.monotonic_ns()}",
        site_id="loopback-test",
        useragent=hub.user_agent,
        entropy=os.urandom,
        access_key=ident["access_key"],
        **creds,
        **kw,
    )
    return session, ws


def ws_send(ws: RawWebSocket) -> Callable[[str | bytes], None]:
    def send(data: str | bytes) -> None:
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        ws._sock.sendall(ws._ws.send(event))

    return send


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("password", {}),
        ("psk", {}),
        ("psk", {"prefer": "psk"}),
        ("psk-only", {}),
        ("password", {"wire": "bitstring"}),
        ("password", {"encodings": ["JSON-B64"], "ciphers": ["CHACHA20-POLY1305"]}),
        ("password", {"binarize": True}),
    ],
)
def test_ws_every_v1_path_gets_an_answer(hub4: TestHub, kind: str, options: dict[str, Any]) -> None:
    session, ws = ws_session(hub4, kind, **options)
    with ws:
        seen = converse(session, ws_send(ws), ws.recv)
    assert seen["failed"] is None, seen["failed"]
    assert seen["ready"] is not None and seen["ready"].generation == 1
    assert seen["types"][:1] == ["speak"] and "ovos.utterance.handled" in seen["types"]
    assert seen["context"]["request_id"] == "live-1"
    assert seen["context"]["session"]["session_id"] == session.session_id


def test_ws_wrong_password_is_detected_by_the_client(hub4: TestHub) -> None:
    session, ws = ws_session(hub4, "password", creds={"password": "0" * 32})
    with ws:
        seen = converse(session, ws_send(ws), ws.recv)
    assert seen["failed"] is not None and seen["failed"].code == "wrong-password" and seen["failed"].auth


def test_ws_wrong_crypto_key_is_reported_as_refused(hub4: TestHub) -> None:
    session, ws = ws_session(hub4, "psk-only", creds={"crypto_key": "0" * 16})
    with ws:
        seen = converse(session, ws_send(ws), ws.recv)
    assert seen["failed"] is not None and seen["failed"].code == "refused-after-handshake" and seen["failed"].auth


@pytest.mark.parametrize("kind", ["password", "psk", "psk-only"])
def test_mqtt_bitstring_session_gets_an_answer(hub4: TestHub, kind: str) -> None:
    if not hub4.mqtt_available:
        pytest.skip(f"no MQTT broker: {hub4.mqtt_unavailable_reason}")
    ident = hub4.identity(kind)
    mqtt, key = ident["mqtt"], ident["access_key"]
    prefix = mqtt["topic_prefix"]
    with RawMqtt(hub4.ports.mqtt, client_id=f"wire-{kind}", username=mqtt["username"], password=mqtt["password"]) as mq:  # type: ignore[arg-type]
        assert mq.subscribe(f"{prefix}/s2c/{key}") == 1
        mq.publish(f"{prefix}/status/{key}", b"offline", retain=True)  # drop any stale hub-side connection
        session = Session(
            session_id=f"live-mqtt-{kind}-{time.monotonic_ns()}",
            useragent=hub4.user_agent,
            entropy=os.urandom,
            access_key=key,
            password=ident.get("password"),
            crypto_key=ident.get("crypto_key"),
            wire="bitstring",
            trigger_hello=True,
        )
        seen = converse(session, lambda data: mq.publish(f"{prefix}/c2s/{key}", data), lambda t: mq.receive(t)[1])
        mq.publish(f"{prefix}/status/{key}", b"offline", retain=True)
    assert seen["failed"] is None, seen["failed"]
    assert "speak" in seen["types"] and "ovos.utterance.handled" in seen["types"]
    assert key not in str(seen["ready"])


def test_ws_hub5_offer_hands_over_to_noise_and_gets_an_answer(hub5: TestHub) -> None:
    session, ws = ws_session(hub5, "password")
    with ws:
        seen = converse(session, ws_send(ws), ws.recv)
    assert seen["failed"] is None, seen["failed"]
    assert seen["ready"] is not None and seen["ready"].generation == 3
    assert "speak" in seen["types"] and "ovos.utterance.handled" in seen["types"]
    assert seen["context"]["request_id"] == "live-1"
