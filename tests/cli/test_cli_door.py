"""What the CLI shows of an identity that carries ``?authorization=`` or a short ``crypto_key`` (issues 13, 12).

The authorization query is dropped when the identity loads, so neither ``identity check`` (text or
JSON) nor ``doctor`` ever prints it; a short crypto_key loads (exit 0) without being shown.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import SECRETS, identity_file, no_env
from thalovant import cli

TOKEN = "QQauthTOKENQQ-91x"
WSS = f"ws://127.0.0.1:9/?authorization={TOKEN}"


@pytest.mark.parametrize("as_json", [False, True])
def test_identity_check_never_shows_an_authorization_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    path = identity_file(tmp_path, data_plane_endpoints={"wss": WSS})
    assert cli.main(["identity", "check", str(path), *(["--json"] if as_json else [])]) == 0
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err and "authorization" not in captured.out
    assert "ws://127.0.0.1:9" in captured.out
    if as_json:
        assert json.loads(captured.out)["identity"]["data_plane_endpoints"]["wss"] == "ws://127.0.0.1:9"


def test_doctor_never_shows_an_authorization_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_env(monkeypatch)
    path = identity_file(tmp_path, data_plane_endpoints={"wss": WSS}, protocols={"wss": True})
    code = cli.main(["-i", str(path), "--protocol", "wss", "--timeout", "2", "--json", "doctor"])
    captured = capsys.readouterr()
    assert code in (0, 1) and captured.out.strip()  # port 9 on loopback refuses: the doctor reports it
    assert TOKEN not in captured.out + captured.err
    assert all(secret not in captured.out + captured.err for secret in SECRETS.values())


def test_identity_check_of_a_short_crypto_key_loads_and_hides_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = identity_file(tmp_path, crypto_key="shrtKEY")
    assert cli.main(["identity", "check", str(path)]) == 0
    captured = capsys.readouterr()
    assert "shrtKEY" not in captured.out + captured.err
