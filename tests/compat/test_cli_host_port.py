"""0.4.7's global ``--host`` and ``--port``: accepted before or after the command, and they really move the endpoint.

(0.4.7 itself only replaced ``default_master``/``default_port``, which an https endpoint in the
identity silently overrode; here every endpoint the identity has is moved.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import thalovant.cli as cli
from tests.compat.conftest import PASSWORD
from tests.shell.inmemory import MemoryHubNet
from thalovant.shell.links import dial
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub


def identity_file(tmp_path: Path) -> Path:
    """A README-shaped identity whose hub is somewhere else (a name that never resolves)."""
    path = tmp_path / "_identity.json"
    values = {
        "access_key": THROWAWAY_ACCESS_KEY,
        "password": PASSWORD,
        "site_id": "site",
        "default_master": "https://hub.example.invalid",
        "default_port": 443,
        "data_plane_endpoints": {
            "https": "https://hub.example.invalid/hivemind/public",
            "wss": "wss://hub.example.invalid/hivemind/public",
        },
        "protocols": {"wss": {"enabled": True}, "http": {"enabled": True}},
    }
    path.write_text(json.dumps(values), encoding="utf-8")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def local_hub(monkeypatch: pytest.MonkeyPatch) -> MemoryHubNet:
    net = MemoryHubNet(FakeHub(password=PASSWORD), protocol="wss", access_key=THROWAWAY_ACCESS_KEY)
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    return net


@pytest.mark.parametrize("where", ["before", "after"])
def test_host_and_port_override_the_identity_endpoint(
    where: str, tmp_path: Path, local_hub: MemoryHubNet, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = ["--host", "http://127.0.0.1", "--port", "5678"]
    command = ["ask", "hello"]
    argv = ["--identity", str(identity_file(tmp_path))] + (moved + command if where == "before" else command + moved)
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == "echo: hello\n"
    dialed = local_hub.dials[0]
    assert (dialed.host, dialed.port, dialed.tls) == ("127.0.0.1", 5678, False)


def test_a_bare_host_keeps_the_scheme_and_port(tmp_path: Path, local_hub: MemoryHubNet) -> None:
    assert cli.main(["--identity", str(identity_file(tmp_path)), "health", "--host", "127.0.0.1"]) == 0
    dialed = local_hub.dials[0]
    assert (dialed.host, dialed.port, dialed.tls) == ("127.0.0.1", 443, True)  # wss kept, its default port


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--host", "not a host"], "--host must be a host name or a URL"), (["--port", "0"], "--port must be between")],
)
def test_bad_host_or_port_is_a_usage_error(
    option: list[str], message: str, tmp_path: Path, local_hub: MemoryHubNet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--identity", str(identity_file(tmp_path)), *option, "health"]) == 2
    assert message in capsys.readouterr().err and not local_hub.dials
