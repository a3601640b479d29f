"""``shell.keys``: the client's Noise static key file (hub 5.x pins it, so it must survive restarts)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

import thalovant
from thalovant.shell.keys import KEY_SIZE, default_noise_key_path, load_or_create_key, noise_static_key

ACCESS_KEY = "0123456789abcdef0123456789abcdef"


def counter() -> Callable[[int], bytes]:
    draws = iter(range(1, 1000))
    return lambda n: bytes([next(draws)]) * n


def test_a_key_file_is_created_private_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "k.key"
    entropy = counter()
    first = load_or_create_key(path, entropy)
    assert len(first) == KEY_SIZE and path.read_bytes() == first
    if os.name != "nt":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(path, entropy) == first


def test_a_malformed_key_file_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"short")
    key = load_or_create_key(path, counter())
    assert len(key) == KEY_SIZE and path.read_bytes() == key
    assert "malformed key file" in caplog.text


def test_the_default_path_hashes_the_access_key_under_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    path = default_noise_key_path(ACCESS_KEY)
    assert path.parent == tmp_path / "thalovant" / "noise-keys" and path.suffix == ".key"
    assert ACCESS_KEY not in str(path) and len(path.stem) == 24


def test_only_a_password_identity_gets_a_key_and_false_keeps_it_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    entropy = counter()
    assert noise_static_key(password=None, access_key=ACCESS_KEY, key_file=None, entropy=entropy) is None
    memory = noise_static_key(password="pw", access_key=ACCESS_KEY, key_file=False, entropy=entropy)
    assert memory is not None and len(memory) == KEY_SIZE and not (tmp_path / "thalovant").exists()
    stored = noise_static_key(password="pw", access_key=ACCESS_KEY, key_file=None, entropy=entropy)
    assert stored == default_noise_key_path(ACCESS_KEY).read_bytes()
    chosen = tmp_path / "mine.key"
    assert (
        noise_static_key(password="pw", access_key=ACCESS_KEY, key_file=chosen, entropy=entropy) == chosen.read_bytes()
    )


def test_a_client_reads_its_key_only_after_checking_the_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    identity = {"access_key": ACCESS_KEY, "password": "pw", "default_master": "http://hub.invalid", "site_id": "den"}
    with pytest.raises(thalovant.ThalovantUnsupportedProtocolError):
        thalovant.AsyncThalovantClient(identity, protocol="mqtt")
    assert not (tmp_path / "thalovant").exists()
    client = thalovant.AsyncThalovantClient(identity, protocol="https")
    assert default_noise_key_path(ACCESS_KEY).exists() and client.protocol == "https"
