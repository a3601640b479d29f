"""0.4.7 users test their CLI use by swapping a fake in for ``thalovant.cli.ThalovantClient``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import thalovant.cli as cli
from thalovant import ThalovantHealth, ThalovantReply
from thalovant.shell.sync.client import ThalovantClient as RealClient


class RecordingClient:
    """Built as 0.4.7's CLI built its client: ``ThalovantClient(identity)``; blocking methods, ``with``."""

    made: list[RecordingClient] = []

    def __init__(self, identity: Any) -> None:
        self.identity, self.calls, self.entered = identity, [], 0
        RecordingClient.made.append(self)

    def __enter__(self) -> RecordingClient:
        self.entered += 1
        return self

    def __exit__(self, *_: object) -> None:
        self.entered -= 1

    def ask(self, text: str, **kwargs: Any) -> ThalovantReply:
        self.calls.append(("ask", text))
        return ThalovantReply(text="answer from the fake", handled=True)

    def emit(self, event: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        self.calls.append(("emit", event, data, context))

    def send_utterance(self, text: str, **kwargs: Any) -> None:
        self.calls.append(("utter", text))

    def healthcheck(self) -> ThalovantHealth:
        return ThalovantHealth(connected=True, handshake_complete=True, transport_alive=True)


@pytest.fixture
def identity_path(tmp_path: Path) -> str:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps({"access_key": "a-key", "password": "a-password", "site_id": "desk",
                                "default_master": "https://hub.example.com", "default_port": 443}))
    path.chmod(0o600)
    return str(path)


@pytest.fixture(autouse=True)
def swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    RecordingClient.made = []
    monkeypatch.setattr(cli, "ThalovantClient", RecordingClient)


def test_ask_through_a_swapped_client_prints_its_reply(identity_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--identity", identity_path, "ask", "hello"]) == 0
    assert capsys.readouterr().out == "answer from the fake\n"
    (client,) = RecordingClient.made
    assert client.calls == [("ask", "hello")] and client.entered == 0  # entered, then left
    assert client.identity.site_id == "desk"


def test_emit_and_utter_through_a_swapped_client(identity_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--identity", identity_path, "emit", "thing.happened", "--data", '{"n": 1}', "--context", '{"c": 2}']
    assert cli.main(argv) == 0
    assert cli.main(["--identity", identity_path, "utter", "lights on"]) == 0
    assert capsys.readouterr().out == "sent\nsent\n"
    assert [c.calls for c in RecordingClient.made] == [[("emit", "thing.happened", {"n": 1}, {"c": 2})],
                                                       [("utter", "lights on")]]


def test_the_unswapped_name_is_the_blocking_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    assert cli.ThalovantClient is RealClient
