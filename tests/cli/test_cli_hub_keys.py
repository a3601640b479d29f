"""``thalovant identity forget-hub-key``: drop the hub key a client pinned (hub 5.x), so a rotation is accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thalovant import ThalovantArgumentError, ThalovantClient, ThalovantHubKeyChangedError
from thalovant.cli import main
from thalovant.core.handshake.pins import fingerprint
from thalovant.testing import MemoryHub

IDENTITY = {
    "access_key": "cli-pin-access-key-0123456789",
    "password": "cli-pin-password-0123456789-strong",
    "default_master": "wss://hub.example.invalid:5678",
    "data_plane_endpoints": {"wss": "wss://hub.example.invalid:5678"},
    "site_id": "den",
    "protocols": {"wss": True},
}


def test_forget_hub_key_drops_the_pin_and_the_next_connection_pins_the_new_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(IDENTITY))
    path.chmod(0o600)
    key_file = tmp_path / "client.key"
    hub = MemoryHub(generation=3)
    with ThalovantClient(IDENTITY, transport=hub, noise_key_file=key_file) as client:
        client.ask("one")
    assert hub.hub is not None
    old = fingerprint(hub.hub.static_public)
    hub.restart(new_key=True)
    with pytest.raises(ThalovantHubKeyChangedError):
        ThalovantClient(IDENTITY, transport=hub, noise_key_file=key_file).connect()

    argv = ["-i", str(path), "identity", "forget-hub-key", "--noise-key-file", str(key_file)]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert f"forgot the hub key {old} pinned for wss://hub.example.invalid:5678" in said.out
    assert IDENTITY["access_key"] not in said.out + said.err and IDENTITY["password"] not in said.out + said.err

    with ThalovantClient(IDENTITY, transport=hub, noise_key_file=key_file) as client:  # the rotation accepted
        assert client.ask("two").text == "echo: two"
        assert client.hub_key_fingerprint == fingerprint(hub.hub.static_public)

    assert main([*argv, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {
        "endpoint": "wss://hub.example.invalid:5678",
        "forgotten": True,
        "fingerprint": fingerprint(hub.hub.static_public),
    }
    assert main(argv) == 0
    assert "no hub key was pinned" in capsys.readouterr().out


def test_a_pin_that_cannot_be_removed_is_a_usage_error_and_a_typed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(IDENTITY))
    path.chmod(0o600)
    key_file = tmp_path / "client.key"
    client = ThalovantClient(IDENTITY, transport=MemoryHub(generation=3), noise_key_file=key_file)
    pin = client._async._hub_keys.path
    assert pin is not None
    pin.mkdir(parents=True)  # something that is not a pin file, in its place
    with pytest.raises(ThalovantArgumentError, match="noise_key_file"):
        client.forget_hub_key()
    argv = ["-i", str(path), "identity", "forget-hub-key", "--noise-key-file", str(key_file)]
    assert main(argv) == 2
    said = capsys.readouterr()
    assert "Traceback" not in said.err and "noise_key_file" in said.err
    assert IDENTITY["access_key"] not in said.out + said.err
