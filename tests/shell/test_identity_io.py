"""The public identity's IO constructors: ``from_file``, ``from_env`` and ``from_config``.

The pure parsing they rely on is tested in ``tests/core/identity``.
"""

from __future__ import annotations

import os
import shutil
import stat
import warnings
from pathlib import Path

import pytest

from tests.core.identity.test_identity import ENV, FIXTURES, PW
from tests.core.identity.test_profiles import CONFIG, KEY
from thalovant.core.errors import ThalovantIdentityError
from thalovant.shell.identity_io import (
    ThalovantIdentity,
    ThalovantSecurityWarning,
    default_config_path,
    load_identity_file,
)

# ---- from_file ------------------------------------------------------------------------------------


def private_copy(tmp_path: Path, name: str, mode: int = 0o600) -> Path:
    target = tmp_path / name
    shutil.copy(FIXTURES / name, target)
    target.chmod(mode)
    return target


def test_from_file_private_file_gives_no_warning(tmp_path: Path) -> None:
    path = private_copy(tmp_path, "password-only.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ident = ThalovantIdentity.from_file(path)
    assert ident.password == "00112233445566778899aabbccddeeff" and ident.crypto_key is None
    assert load_identity_file(str(path)) == ident


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_from_file_readable_by_others_warns(tmp_path: Path, mode: int) -> None:
    path = private_copy(tmp_path, "full.json", mode)
    with pytest.warns(ThalovantSecurityWarning, match=f"mode {mode:04o}.*chmod 600") as record:
        ThalovantIdentity.from_file(path)
    assert all(PW not in str(w.message) for w in record)
    assert record[0].filename == __file__  # points at the caller, not at thalovant


def test_from_file_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    private_copy(tmp_path, "password-only.json")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ThalovantIdentity.from_file("~/password-only.json").site_id == "loopback-test"


def test_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ThalovantIdentityError, match="unable to read identity file") as info:
        ThalovantIdentity.from_file(tmp_path / "missing.json")
    assert str(tmp_path / "missing.json") in str(info.value)
    with pytest.raises(ThalovantIdentityError, match="not a regular file"):
        ThalovantIdentity.from_file(tmp_path)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (1024 * 1024 + 1))
    big.chmod(0o600)
    with pytest.raises(ThalovantIdentityError, match="larger than"):
        ThalovantIdentity.from_file(big)
    bad = private_copy(tmp_path, "truncated.json")
    with pytest.raises(ThalovantIdentityError, match=f"invalid identity file {bad}"):
        ThalovantIdentity.from_file(bad)


def test_projected_kubernetes_secret_does_not_warn(tmp_path: Path) -> None:
    data = tmp_path / "..data"
    data.mkdir()
    real = private_copy(data, "password-only.json", 0o644)
    link = tmp_path / "identity.json"
    link.symlink_to(Path("..data") / real.name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ThalovantIdentity.from_file(link).site_id == "loopback-test"
    assert stat.S_IMODE(real.stat().st_mode) == 0o644


# ---- from_env -------------------------------------------------------------------------------------


def test_env_custom_prefix_and_default_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    custom = {k.replace("THALOVANT_", "HUB1_"): v for k, v in ENV.items()}
    assert ThalovantIdentity.from_environ(custom, prefix="HUB1_") == ThalovantIdentity.from_environ(ENV)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert ThalovantIdentity.from_env() == ThalovantIdentity.from_environ(ENV)
    assert ThalovantIdentity.from_env("HUB1_", custom).site_id == "env-site"


# ---- from_config ----------------------------------------------------------------------------------


def write_config(folder: Path, text: str = CONFIG, mode: int = 0o600) -> Path:
    path = folder / "thalovant" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_from_config_default_location_and_profiles(tmp_path: Path) -> None:
    write_config(tmp_path)
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    home = ThalovantIdentity.from_config(environ=env)
    assert (home.access_key, home.password, home.site_id, home.default_port) == (KEY, "it's # not a comment", "12", 443)
    assert home.enabled_protocols() == ("https", "mqtt")
    assert home.mqtt is not None and home.mqtt.qos == 0
    assert home.metadata == {"room": "kitchen", "tags": ["a", "b c"]}
    lab = ThalovantIdentity.from_config(profile="lab", environ=env)
    assert (lab.site_id, lab.password, lab.crypto_key) == ("lab", None, "6b1f0c2a9d3e4f57")
    assert ThalovantIdentity.from_config(environ={**env, "THALOVANT_PROFILE": "lab"}) == lab
    assert type(lab) is ThalovantIdentity


def test_default_config_path_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path({}) == tmp_path / ".config" / "thalovant" / "config.yaml"
    assert default_config_path({"XDG_CONFIG_HOME": "relative"}) == tmp_path / ".config" / "thalovant" / "config.yaml"
    assert default_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/thalovant/config.yaml")
    assert default_config_path({"THALOVANT_CONFIG": "~/c.yaml", "XDG_CONFIG_HOME": "/x"}) == tmp_path / "c.yaml"


def test_from_config_explicit_path_and_errors(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    assert ThalovantIdentity.from_config(path, "lab", environ={}).site_id == "lab"
    with pytest.raises(ThalovantIdentityError, match="unable to read config file"):
        ThalovantIdentity.from_config(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ThalovantIdentityError, match=r"profiles\.work: no profile 'work' \(have: home, lab\)"):
        ThalovantIdentity.from_config(path, "work", environ={})
    broken = write_config(tmp_path / "b", "profiles:\n  a:\n    key: &x 1\n")
    with pytest.raises(ThalovantIdentityError, match="line 3: anchors"):
        ThalovantIdentity.from_config(broken, environ={})
    invalid = write_config(tmp_path / "c", "profiles:\n  a:\n    access_key: 'ZQk:eyQZ'\n")
    with pytest.raises(ThalovantIdentityError, match="profile in config file") as info:
        ThalovantIdentity.from_config(invalid, environ={})
    assert "ZQk:eyQZ" not in str(info.value)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_from_config_readable_by_others_warns(tmp_path: Path) -> None:
    path = write_config(tmp_path, mode=0o644)
    with pytest.warns(ThalovantSecurityWarning, match=r"config file .* \(mode 0644\)"):
        ThalovantIdentity.from_config(path, environ={})
