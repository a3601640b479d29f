"""On-demand, cached installation of the test hub's own virtualenvs and of mosquitto.

The hub packages pin versions that clash with the project's (paho-mqtt 1.x, old tornado stacks),
so each hub flavour lives in a separate virtualenv under the harness home:

    ${THALOVANT_TEST_HUB_HOME:-${XDG_CACHE_HOME:-~/.cache}/thalovant-test-hub}/<flavour>-<hash>/venv

``<hash>`` covers the requirements file, the constraints file and the Python version, so editing
a pin builds a fresh venv next to the old one instead of mutating a venv a running hub may use.
A venv counts as installed only once its import check passed (stamp file ``installed.json``).
Concurrent test sessions serialise on a file lock; the second one finds the stamp and reuses it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# pip output that means "this machine cannot reach a package index", as opposed to a broken pin.
_OFFLINE_MARKERS = (
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "NewConnectionError",
    "Failed to establish a new connection",
    "ConnectTimeoutError",
    "Max retries exceeded",
    "Connection refused",
    "Read timed out",
)


class HarnessUnavailable(RuntimeError):
    """The machine cannot provide what the hub needs (no package index, not root for apt...)."""


class HarnessError(RuntimeError):
    """The harness itself is broken (bad pins, a process that will not start...)."""


@dataclass(frozen=True)
class Flavour:
    """One kind of hub: the packages of its venv and a module import proving the venv works."""

    name: str
    requirements: Path
    constraints: Path
    import_check: str
    pip_args: tuple[str, ...] = ()
    #: server.json's ``binary_protocol`` for this hub (None: no binary-data plugin), and bus types every client
    #: may send on top of the defaults (an optional extra such as ``tests/harness/tts.py`` sets both).
    binary_protocol: dict[str, Any] | None = None
    extra_types: tuple[str, ...] = ()


HUB4 = Flavour(
    name="hub4",
    requirements=HERE / "hub4-requirements.txt",
    constraints=HERE / "hub4-constraints.txt",
    import_check=(
        "import hivemind_core, hivemind_websocket_protocol, hivemind_http_protocol, hivemind_mqtt_protocol, "
        "hivemind_ovos_agent_plugin, ovos_messagebus, hivemind_bus_client.serialization"
    ),
)

HUB5 = Flavour(
    name="hub5",
    requirements=HERE / "hub5-requirements.txt",
    constraints=HERE / "hub5-constraints.txt",
    import_check=(
        "import hivemind_core, hivemind_websocket_protocol, hivemind_http_protocol, hivemind_mqtt_protocol, "
        "hivemind_ovos_agent_plugin, ovos_messagebus"
    ),
    pip_args=("--pre",),
)


def harness_home() -> Path:
    """The cache root, honouring ``THALOVANT_TEST_HUB_HOME`` and ``XDG_CACHE_HOME``."""
    explicit = os.environ.get("THALOVANT_TEST_HUB_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return (Path(cache).expanduser() / "thalovant-test-hub").resolve()


def flavour_hash(flavour: Flavour) -> str:
    digest = hashlib.sha256()
    for path in (flavour.requirements, flavour.constraints):
        digest.update(path.read_bytes())
    digest.update(" ".join(flavour.pip_args).encode())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class InstallResult:
    """Where the venv is, and what it cost to get it."""

    venv: Path
    seconds: float
    cached: bool

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def _base_python() -> str:
    # A venv made from inside our own venv is based on the same interpreter anyway; prefer the base.
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if Path(base).exists() else sys.executable


def ensure_venv(flavour: Flavour, *, log: Callable[[str], None] | None = None) -> InstallResult:
    """Return the flavour's venv, creating it first if needed (bounded: 15 minutes for pip)."""
    started = time.monotonic()
    root = harness_home() / f"{flavour.name}-{flavour_hash(flavour)}"
    stamp = root / "installed.json"
    venv = root / "venv"
    if stamp.is_file():
        return InstallResult(venv, time.monotonic() - started, True)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file():  # another session finished it while we waited
            return InstallResult(venv, time.monotonic() - started, True)
        if log:
            log(f"installing the {flavour.name} venv at {venv} (first use; cached afterwards)")
        shutil.rmtree(venv, ignore_errors=True)
        pip_log = root / "pip.log"
        _run([_base_python(), "-m", "venv", str(venv)], pip_log, 120)
        cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "--no-input", *flavour.pip_args, "-r", str(flavour.requirements), "-c", str(flavour.constraints)]
        ok = _run(cmd, pip_log, 900, check=False)
        if not ok:
            text = pip_log.read_text(errors="replace")
            errors = [line.strip() for line in text.splitlines() if line.startswith(("ERROR", "WARNING: Retrying"))]
            tail = " | ".join(errors[-3:]) or "\n".join(text.strip().splitlines()[-15:])
            if any(marker in text for marker in _OFFLINE_MARKERS) or not _index_answers(venv, pip_log):
                raise HarnessUnavailable(f"cannot install the {flavour.name} hub: the package index is not "
                                         f"reachable from this machine (pip log {pip_log}): {tail}")
            raise HarnessError(f"pip failed for the {flavour.name} hub venv although the package index answers "
                               f"(log {pip_log}):\n{tail}")
        if not _run([str(venv / "bin" / "python"), "-c", flavour.import_check], pip_log, 120, check=False):
            raise HarnessError(f"the {flavour.name} hub venv does not import (log {pip_log})")
        freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True,
                                text=True, timeout=120, check=False).stdout.split()
        seconds = time.monotonic() - started
        stamp.write_text(json.dumps({"seconds": round(seconds, 1), "freeze": freeze}, indent=1))
        return InstallResult(venv, seconds, False)


def _index_answers(venv: Path, log_path: Path) -> bool:
    """Whether the configured package index lists hivemind-core (tells "offline" from "bad pins")."""
    if os.environ.get("PIP_NO_INDEX", "").lower() in ("1", "true", "yes"):
        return False
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "index", "versions", "--pre", "hivemind-core"]
    try:
        return _run(cmd, log_path, 120, check=False)
    except HarnessUnavailable:
        return False


def _run(cmd: list[str], log_path: Path, timeout: float, *, check: bool = True) -> bool:
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise HarnessUnavailable(f"{cmd[0]} took longer than {timeout:.0f}s (log {log_path})") from exc
    if check and proc.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} failed with {proc.returncode} (log {log_path})")
    return proc.returncode == 0


def find_mosquitto() -> tuple[str, str] | None:
    """Paths of ``mosquitto`` and ``mosquitto_passwd``, or None."""
    found = []
    for name in ("mosquitto", "mosquitto_passwd"):
        path = shutil.which(name) or next(
            (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def ensure_mosquitto() -> tuple[str, str]:
    """mosquitto from Debian: installed with apt-get when root and missing.

    Raises:
        HarnessUnavailable: with the reason it cannot be had on this machine.
    """
    found = find_mosquitto()
    if found:
        return found
    if os.geteuid() != 0:
        raise HarnessUnavailable("mosquitto is not installed and this is not root (sudo apt-get install -y mosquitto)")
    if shutil.which("apt-get") is None:
        raise HarnessUnavailable("mosquitto is not installed and there is no apt-get to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300, check=False)
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", "mosquitto"], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired as exc:
        raise HarnessUnavailable("apt-get install mosquitto timed out") from exc
    found = find_mosquitto()
    if not found:
        raise HarnessUnavailable(f"apt-get install mosquitto failed: {proc.stderr.strip()[-400:]}")
    return found
