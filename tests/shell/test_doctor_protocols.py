"""run_doctor's admission check for WebSocket (wsproto servers on 127.0.0.1) and MQTT (a local mosquitto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.abc
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, RejectConnection, Request, TextMessage

from tests.shell.test_doctor import KEY, PASSWORD, UA, assert_no_secret, serve, statuses
from thalovant.core.doctor import ThalovantDoctorReport
from thalovant.shell.doctor import run_doctor
from thalovant.shell.identity_io import ThalovantIdentity


def ws_ident(port: int) -> ThalovantIdentity:
    return ThalovantIdentity.from_mapping(
        {
            "access_key": KEY,
            "password": PASSWORD,
            "default_master": "http://127.0.0.1",
            "site_id": "den",
            "data_plane_endpoints": {"wss": f"ws://127.0.0.1:{port}"},
            "protocols": {"wss": True},
        }
    )


def ws_hub(behaviour: str, targets: list[str]) -> Any:
    """A WebSocket server that, after the upgrade request, greets / closes 1008 / stays silent / rejects 404."""

    async def handle(stream: anyio.abc.ByteStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        for _ in range(50):
            ws.receive_data(await stream.receive())
            for event in ws.events():
                if not isinstance(event, Request):
                    continue
                targets.append(event.target)
                if behaviour == "reject":
                    await stream.send(ws.send(RejectConnection(status_code=404)))
                    return
                await stream.send(ws.send(AcceptConnection()))
                if behaviour == "greet":
                    await stream.send(ws.send(TextMessage(data='{"msg_type": "hello", "payload": {}}')))
                elif behaviour == "close":
                    await stream.send(ws.send(CloseConnection(code=1008, reason="invalid api key")))
                await anyio.sleep(5)
                return

    return handle


def run_ws(behaviour: str, targets: list[str], **kwargs: Any) -> ThalovantDoctorReport:
    async def body(port: int) -> ThalovantDoctorReport:
        return await run_doctor(ws_ident(port), protocol="ws", timeout=1.0, useragent=UA, **kwargs)

    return anyio.run(serve, ws_hub(behaviour, targets), body)


def test_ws_hub_that_greets_is_admitted_with_the_raw_token() -> None:
    targets: list[str] = []
    report = run_ws("greet", targets)
    assert report.protocol == "wss" and statuses(report)["admission"] == "ok" and report.ok
    assert statuses(report)["tls"] == "skipped"  # plain ws://
    assert targets == ["/?authorization=RG9jdG9yVGVzdDpmMDBkZmVlZGYwMGRmZWVkZjAwZGZlZWRmMDBkZmVlZA=="]
    assert_no_secret(report)


def test_ws_percent_encoding_for_hub_5() -> None:
    targets: list[str] = []
    report = run_ws("greet", targets, auth_encoding="percent")
    assert report.ok and targets == ["/?authorization=RG9jdG9yVGVzdDpmMDBkZmVlZGYwMGRmZWVkZjAwZGZlZWRmMDBkZmVlZA%3D%3D"]


def test_ws_hub_closing_after_upgrade_fails_with_the_access_key_hint() -> None:
    report = run_ws("close", [])
    admission = report.check("admission")
    assert admission is not None and admission.status == "failed" and "1008" in admission.detail
    assert "access key" in admission.hint and statuses(report)["handshake"] == "skipped"


def test_ws_server_that_never_greets_is_a_warning() -> None:
    report = run_ws("silent", [])
    admission = report.check("admission")
    assert admission is not None and admission.status == "warning" and "sent nothing" in admission.detail
    assert report.ok


def test_ws_upgrade_refused_404_hints_at_the_port() -> None:
    report = run_ws("reject", [])
    admission = report.check("admission")
    assert admission is not None and admission.status == "failed" and "404" in admission.detail
    assert "5678" in admission.hint


# ---- MQTT (skipped when mosquitto is not installed) ----------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.shell.links.test_mqtt import start_broker

    b = start_broker(tmp_path_factory.mktemp("doctor-mosq"))
    yield b
    b.kill()


def mqtt_ident(port: int, password: str) -> ThalovantIdentity:
    return ThalovantIdentity.from_mapping(
        {
            "access_key": KEY,
            "password": PASSWORD,
            "default_master": "http://127.0.0.1",
            "site_id": "den",
            "mqtt": {"endpoint": f"mqtt://127.0.0.1:{port}", "username": "alice", "password": password, "tls": False},
            "protocols": {"mqtt": True},
        }
    )


def test_mqtt_broker_accepting_the_login(broker: Any) -> None:
    from tests.shell.links.test_mqtt import ALICE_PW

    report = anyio.run(lambda: run_doctor(mqtt_ident(broker.port, ALICE_PW), protocol="mqtt", timeout=5.0))
    assert report.protocol == "mqtt" and statuses(report)["admission"] == "ok" and report.ok
    assert ALICE_PW not in report.format() + json.dumps(report.as_dict())


def test_mqtt_broker_refusing_the_password(broker: Any) -> None:
    wrong = "wrong-broker-password-123"
    report = anyio.run(lambda: run_doctor(mqtt_ident(broker.port, wrong), protocol="mqtt", timeout=5.0))
    admission = report.check("admission")
    assert admission is not None and admission.status == "failed" and "MQTT" in admission.hint
    assert wrong not in report.format() + json.dumps(report.as_dict())


def test_mqtt_closed_port() -> None:
    from tests.shell.test_doctor import free_port

    report = anyio.run(lambda: run_doctor(mqtt_ident(free_port(), "x" * 12), protocol="mqtt", timeout=2.0))
    assert statuses(report)["tcp"] == "failed" and "1883" in report.check("tcp").hint  # type: ignore[union-attr]
