"""``thalovant info``: the connection's info as ``name=value`` lines or JSON (``--json``), from the in-memory hub.

On main the command did not exist (argparse exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import thalovant.cli as cli
from tests.compat.test_cli_patch_point import RecordingClient
from tests.shell.inmemory import MemoryHubNet
from thalovant import ThalovantConnectionInfo
from thalovant.cli import main
from thalovant.shell.links import dial
from thalovant.testing import FakeHub, MemoryHub

IDENTITY = {
    "access_key": "cli-info-access-key",
    "password": "cli-info-password",
    "default_master": "https://hub.example.invalid",
    "site_id": "kitchen",
}


@pytest.fixture
def identity_path(tmp_path: Path) -> str:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(IDENTITY))
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize("generation", [1, 3])
def test_info_json_reports_the_negotiated_connection(
    identity_path: str, generation: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-i", identity_path, "--json", "info"], transport=MemoryHub(generation=generation)) == 0
    printed = capsys.readouterr()
    info = json.loads(printed.out)
    assert info["transport"] == "https" and info["phase"] == "ready" and info["generation"] == generation
    assert info["cipher"] == ("AES-GCM" if generation == 1 else "25519_ChaChaPoly_SHA256")
    assert info["connect_ms"] >= 0 and info["started_at"] <= info["connected_at"]
    assert not any(secret in printed.out + printed.err for secret in ("cli-info-access-key", "cli-info-password"))


def test_info_text_prints_one_line_per_known_field(identity_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-i", identity_path, "info"], transport=MemoryHub()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["transport=https", "phase=ready", "generation=1"]
    assert "encoding=JSON-HEX" in lines and not any(line.endswith("=None") for line in lines)


PHASES = ("dns_ms", "tcp_ms", "tls_ms", "admission_ms", "handshake_ms")


def test_info_text_shows_the_phase_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over the real drivers (in-memory streams at the dial seam): admission and handshake are measured, the
    dial phases are not (the seam replaced the dial) and print as ``-``."""
    path = tmp_path / "ws-identity.json"
    path.write_text(json.dumps({**IDENTITY, "data_plane_endpoints": {"wss": "ws://hub.invalid:5678"}}))
    path.chmod(0o600)
    net = MemoryHubNet(FakeHub(password=IDENTITY["password"]), protocol="wss", access_key=IDENTITY["access_key"])
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    assert main(["-i", str(path), "--protocol", "wss", "info"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert [lines[name] for name in PHASES[:3]] == ["-", "-", "-"]
    admission, handshake, total = (float(lines[name]) for name in ("admission_ms", "handshake_ms", "connect_ms"))
    assert 0 <= admission and 0 <= handshake and admission + handshake <= total + 0.2


def test_info_text_of_an_in_memory_hub_marks_every_phase_unmeasured(
    identity_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-i", identity_path, "info"], transport=MemoryHub()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [f"{name}=-" for name in PHASES] == [line for line in lines if line.split("=")[0] in PHASES]


def test_info_through_a_swapped_client_gives_a_minimal_info(
    identity_path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """0.4.7's clients (swapped in for ``thalovant.cli.ThalovantClient``, ``shell/cli_seam.py``) had no
    ``connection_info()``: ``thalovant info`` prints what the seam knows instead of an AttributeError."""
    RecordingClient.made = []
    monkeypatch.setattr(cli, "ThalovantClient", RecordingClient)
    assert main(["-i", identity_path, "info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["transport=https", "phase=ready"] and "dns_ms=-" in lines
    assert main(["-i", identity_path, "--json", "info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["transport"], info["phase"], info["generation"], info["connect_ms"]) == ("https", "ready", None, None)
    assert len(RecordingClient.made) == 2 and all(client.entered == 0 for client in RecordingClient.made)


def test_info_through_a_swapped_client_with_its_own_info(
    identity_path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class InfoClient(RecordingClient):
        def connection_info(self) -> ThalovantConnectionInfo:
            return ThalovantConnectionInfo(transport="mqtt", phase="ready", generation=3, handshake_ms=12.5)

    monkeypatch.setattr(cli, "ThalovantClient", InfoClient)
    assert main(["-i", identity_path, "--json", "info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["transport"], info["generation"], info["handshake_ms"]) == ("mqtt", 3, 12.5)
