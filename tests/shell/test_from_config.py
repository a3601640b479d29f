"""``from_config(path=None, profile=None, **kwargs)`` on both clients and both agents (YAML profiles)."""

from __future__ import annotations

from pathlib import Path

import pytest

from thalovant import (
    AsyncThalovantAgent,
    AsyncThalovantClient,
    ThalovantAgent,
    ThalovantClient,
    ThalovantIdentityError,
)
from thalovant.testing import MemoryHub

CONFIG = """\
default_profile: home
profiles:
  home:
    access_key: "home-access-key-0123456789"
    password: "home-password-0123456789"
    site_id: kitchen
    default_master: https://hub.example.invalid
  lab:
    access_key: "lab-access-key-0123456789"
    password: "lab-password-0123456789"
    site_id: bench
    default_master: https://lab.example.invalid
"""

CLASSES = [AsyncThalovantClient, ThalovantClient, ThalovantAgent, AsyncThalovantAgent]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    path.chmod(0o600)
    return path


def site_of(made: object) -> str:
    client = getattr(made, "client", made)
    return str(client.identity.site_id)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_from_config_picks_the_profile_and_passes_the_options(cls: type, config: Path) -> None:
    made = cls.from_config(config, "lab", transport=MemoryHub(), protocol="wss")
    assert site_of(made) == "bench"
    assert getattr(made, "client", made).protocol == "wss"
    assert site_of(cls.from_config(config, transport=MemoryHub())) == "kitchen"  # the file's default_profile


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_from_config_defaults_come_from_the_environment(
    cls: type, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THALOVANT_CONFIG", str(config))
    monkeypatch.setenv("THALOVANT_PROFILE", "lab")
    assert site_of(cls.from_config(transport=MemoryHub())) == "bench"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_from_config_with_a_missing_profile_is_typed(cls: type, config: Path) -> None:
    with pytest.raises(ThalovantIdentityError) as info:
        cls.from_config(config, "nowhere", transport=MemoryHub())
    assert "lab-password" not in str(info.value) and "home-access-key" not in str(info.value)


def test_the_blocking_client_from_config_connects(config: Path) -> None:
    with ThalovantClient.from_config(config, "lab", transport=MemoryHub(), protocol="wss") as client:
        assert client.ask("hi").text == "echo: hi"
