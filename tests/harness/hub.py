"""A real HiveMind hub on loopback for integration tests: mosquitto + ovos-messagebus + echo agent + hivemind-core.

Theory of operation
-------------------
``TestHub.start()`` installs what is missing (``install.py``: a cached venv per hub flavour, mosquitto
from Debian), picks free loopback ports by binding to port 0, writes every configuration file and
fresh credentials into its run directory, then starts and readiness-checks, in order:

1. mosquitto (password file + per-client ACL; skipped, with ``mqtt_available = False``, if it cannot
   be installed), run as the current user and logging to a file;
2. ovos-messagebus on ``ws://127.0.0.1:<bus>/core``;
3. the echo agent (``echo_agent.py``), which answers utterances and records bus traffic;
4. hivemind-core through ``hub_launcher.py`` (start-up race fix, disconnect guards, push hook).

Every process gets ``XDG_*`` directories inside the run directory, so nothing touches ``~/.config``,
and is recorded in ``pids.json`` (see ``procs.py``); ``stop()`` signals only verified pids.
``kill_hub()`` / ``start_hub()`` / ``restart_hub()`` cycle hivemind-core alone, keeping ports, the
client database and the hub's node identity.

Identities are written in the thalovant identity-file format, one per client kind (``KINDS``).
Access keys are chosen against ``user_agent`` so that the URL token
``base64(user_agent + ":" + key)`` has no ``=``, ``+`` or ``/`` (raw and percent-encoded forms are
the same), except for the ``padded`` kind, whose token ends in ``=`` on purpose.

CLI: ``python -m tests.harness.hub start|stop|status|stop-all [--v3]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import procs
from tests.harness.bus import BusClient
from tests.harness.install import (
    HUB4,
    HUB5,
    Flavour,
    HarnessError,
    HarnessUnavailable,
    ensure_mosquitto,
    ensure_venv,
    harness_home,
)

__all__ = [
    "HUB4", "HUB5", "KINDS", "ClientSpec", "HarnessError", "HarnessUnavailable", "Ports", "TestHub", "Timings",
    "default_user_agent", "padded_key", "portable_key", "token_can_be_portable", "token_for",
]

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
HUB_ID = "thalovant-test-hub"
TOPIC_ROOT = "hivemind"
SITE_ID = "loopback-test"
HUB_SITE_ID = "thalovant-hub-site"  # the hub's own site (node identity): wrappers with this target_site_id inject
READY_TIMEOUT = float(os.environ.get("THALOVANT_TEST_HUB_READY_TIMEOUT", "60"))
PUSH_TYPE = "thalovant.harness.push"
PUSH_DONE_TYPE = "thalovant.harness.push.done"
EMIT_TYPE = "thalovant.harness.emit"


def default_user_agent() -> str:
    """The user agent the keys are tuned for (``THALOVANT_TEST_USER_AGENT`` overrides)."""
    explicit = os.environ.get("THALOVANT_TEST_USER_AGENT")
    if explicit:
        return explicit
    from thalovant._version import __version__

    return f"ThalovantPythonSDK/{__version__}"


def token_for(user_agent: str, access_key: str) -> str:
    """The §3.1 ``authorization`` token: standard base64 of ``user_agent:access_key``."""
    return base64.b64encode(f"{user_agent}:{access_key}".encode()).decode()


def token_can_be_portable(user_agent: str) -> bool:
    """Whether some key makes the token URL-safe: the base64 groups made of the user agent alone must be."""
    prefix = f"{user_agent}:".encode()
    fixed = prefix[: len(prefix) // 3 * 3]
    return not set(base64.b64encode(fixed).decode()) & set("+/")


def portable_key(user_agent: str) -> str:
    """A hex access key whose token is identical raw and percent-encoded (no ``=``, ``+``, ``/``).

    When the user agent itself rules that out (see ``token_can_be_portable``), the key still avoids
    ``=`` padding, but the token keeps the ``+`` or ``/`` that the user agent forces.
    """
    length = next(n for n in (32, 33, 34) if (len(user_agent.encode()) + 1 + n) % 3 == 0)
    if not token_can_be_portable(user_agent):
        return secrets.token_hex(17)[:length]
    for _ in range(10_000):
        key = secrets.token_hex(17)[:length]
        if not set(token_for(user_agent, key)) & set("=+/"):
            return key
    raise HarnessError(f"no portable access key found for user agent {user_agent!r}")


def padded_key(user_agent: str) -> str:
    """A hex access key whose token ends in ``=`` padding (exercises raw-vs-percent encoding)."""
    length = next(n for n in (32, 33, 34) if (len(user_agent.encode()) + 1 + n) % 3 != 0)
    return secrets.token_hex(17)[:length]


@dataclass(frozen=True)
class ClientSpec:
    """One client added to the hub database; ``kind`` names its identity file."""

    kind: str
    name: str
    password: bool = True
    crypto_key: bool = False
    admin: bool = False
    padded: bool = False
    hub5: bool = True  # hub 5.x admits only password users
    extra_types: tuple[str, ...] = ()  # allowed on top of the default ACL
    grants_off: tuple[str, ...] = ()  # client DB flags set to False (can_escalate, can_propagate, can_broadcast)


KINDS: tuple[ClientSpec, ...] = (
    ClientSpec("psk", "sdk-psk", crypto_key=True),
    ClientSpec("password", "sdk-password"),
    ClientSpec("psk2", "sdk-psk-second", crypto_key=True),
    ClientSpec("psk-only", "sdk-psk-only", password=False, crypto_key=True, hub5=False),
    ClientSpec("admin", "harness-admin", admin=True),
    ClientSpec("padded", "sdk-padded", padded=True),
    # like "psk", but its ACL also admits these bus types (for emit() tests; hub 4.x drops others silently)
    ClientSpec("wide", "sdk-wide", crypto_key=True, extra_types=("thalovant.test.emit", "speak")),
    # no escalate grant: hub 5.x closes a QUERY (and an ESCALATE) from it with 4003
    ClientSpec("noescalate", "sdk-no-escalate", grants_off=("can_escalate",)),
)


@dataclass
class Ports:
    """Loopback TCP ports of one hub instance."""

    ws: int
    http: int
    bus: int
    mqtt: int | None

    def as_dict(self) -> dict[str, int | None]:
        return {"ws": self.ws, "http": self.http, "bus": self.bus, "mqtt": self.mqtt}


@dataclass
class Timings:
    """Seconds spent in each phase (install is 0-ish when the venv was cached)."""

    install: float = 0.0
    install_cached: bool = True
    configure: float = 0.0
    start: dict[str, float] = field(default_factory=dict)
    stop: float = 0.0


class TestHub:
    """One loopback hub instance and everything it needs; see the module docstring."""

    __test__ = False  # not a pytest test class

    def __init__(self, flavour: Flavour = HUB4, run_dir: Path | None = None, *, user_agent: str | None = None,
                 bound_to_parent: bool = False, log: Callable[[str], None] | None = None) -> None:
        self.flavour = flavour
        self.run_dir = Path(run_dir or harness_home() / f"run-{flavour.name}").resolve()
        self.user_agent = user_agent or default_user_agent()
        self.bound_to_parent = bound_to_parent
        self.timings = Timings()
        self.mqtt_available = False
        self.mqtt_unavailable_reason: str | None = None
        self.ports: Ports | None = None
        self._log = log or (lambda msg: None)
        self._procs = procs.ProcessTable(self.run_dir)
        self._venv: Path | None = None
        self._mosquitto: tuple[str, str] | None = None
        self._hub_log_offset = 0

    def __repr__(self) -> str:
        return f"TestHub({self.flavour.name}, run_dir={str(self.run_dir)!r}, ports={self.ports})"

    # -- public API used by tests ---------------------------------------------------------------------

    @property
    def v3(self) -> bool:
        return self.flavour is HUB5

    @property
    def kinds(self) -> list[str]:
        return [spec.kind for spec in KINDS if spec.hub5 or not self.v3]

    def identity_path(self, kind: str) -> Path:
        """Path of the identity JSON file of a client kind (``psk``, ``password``, ``psk2``, ``admin``...)."""
        if kind not in self.kinds:
            raise KeyError(f"no client kind {kind!r} on this hub (kinds: {', '.join(self.kinds)})")
        return self.run_dir / "identities" / f"{kind}.json"

    def identity(self, kind: str) -> dict[str, Any]:
        """The identity file's content as a dict (contains secrets: never log it)."""
        data: dict[str, Any] = json.loads(self.identity_path(kind).read_text())
        return data

    def token(self, kind: str) -> str:
        """The raw (not percent-encoded) ``authorization`` token of a kind, for ``user_agent``."""
        return token_for(self.user_agent, self.identity(kind)["access_key"])

    def echo_log(self, *, include_own: bool = False, msg_type: str | None = None) -> list[dict[str, Any]]:
        """Bus messages the echo agent has seen so far: ``{"ts", "type", "data", "context", "own"}``."""
        entries = []
        try:
            lines = (self.run_dir / "logs" / "echo-record.jsonl").read_text().splitlines()
        except OSError:
            return []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the agent may be mid-write
            if (include_own or not entry.get("own")) and (msg_type is None or entry.get("type") == msg_type):
                entries.append(entry)
        return entries

    def wait_echo(self, msg_type: str, timeout: float = 10.0, **data_match: Any) -> dict[str, Any]:
        """Wait (bounded) until the echo agent has recorded a message of ``msg_type`` matching ``data_match``."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.echo_log(msg_type=msg_type):
                data = entry.get("data") or {}
                if all(data.get(k) == v for k, v in data_match.items()):
                    return entry
            if time.monotonic() > deadline:
                raise TimeoutError(f"the echo agent recorded no {msg_type!r} matching {data_match} in {timeout}s")
            time.sleep(0.05)

    def bus(self, timeout: float = 5.0) -> BusClient:
        """A fresh blocking client of the hub's OVOS bus (close it, or use it as a context manager)."""
        return BusClient(self._ports().bus, timeout=timeout)

    def push_event(self, msg_type: str, data: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
                   *, peers: list[str] | None = None, timeout: float = 5.0, wait_for_peer: float = 2.0,
                   copies: int = 1) -> list[str]:
        """Send a BUS message from the hub to every connected client (or to ``peers``); return the peers reached.

        Delivery is what an admin BROADCAST's inner message does, without an admin session.
        Only clients whose HELLO the hub has handled are connected peers. Over WebSocket nothing
        acknowledges a HELLO, so a client that has just connected may be a millisecond away from
        being one: while the push reaches nobody, it is sent again (it reached nobody, so nothing
        is duplicated) for up to ``wait_for_peer`` seconds. ``wait_for_peer=0`` pushes once.
        ``copies`` (1..5) writes the one sealed frame that many times, as hub 4.x sometimes does.
        """
        give_up = time.monotonic() + wait_for_peer
        with self.bus(timeout) as bus:
            while True:
                token = secrets.token_hex(8)
                bus.emit(PUSH_TYPE, {"type": msg_type, "data": data or {}, "context": context or {}, "peers": peers,
                                     "token": token, "copies": copies})
                reached = list(bus.wait_for(PUSH_DONE_TYPE, timeout, token=token)["data"].get("peers") or [])
                if reached or time.monotonic() >= give_up:
                    return reached
                time.sleep(0.02)

    def agent_emit(self, msg_type: str, data: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
                   *, peer: str | None = None) -> None:
        """Make the echo agent emit a bus message (``context.destination = peer``): the normal reply path."""
        with self.bus() as bus:
            bus.emit(EMIT_TYPE, {"type": msg_type, "data": data or {}, "context": context or {}, "peer": peer})

    def memory_kib(self) -> dict[str, int]:
        """Resident set size of each harness process, in KiB."""
        return self._procs.rss_kib()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> TestHub:
        """Install (cached), configure and start everything; raises HarnessUnavailable or HarnessError."""
        install = ensure_venv(self.flavour, log=self._log)
        self._venv = install.venv
        self.timings.install, self.timings.install_cached = install.seconds, install.cached
        if os.environ.get("THALOVANT_TEST_HUB_NO_MQTT") == "1":
            self.mqtt_unavailable_reason = "MQTT turned off by THALOVANT_TEST_HUB_NO_MQTT=1"
        else:
            try:
                self._mosquitto = ensure_mosquitto()
            except HarnessUnavailable as exc:
                self.mqtt_unavailable_reason = str(exc)
        self.mqtt_available = self._mosquitto is not None
        t0 = time.monotonic()
        self._fresh_run_dir()
        self.ports = Ports(ws=procs.free_port(), http=procs.free_port(), bus=procs.free_port(),
                           mqtt=procs.free_port() if self.mqtt_available else None)
        self._configure()
        self.timings.configure = time.monotonic() - t0
        try:
            if self.mqtt_available:
                self._start_mosquitto()
            self._start_bus()
            self._start_echo()
            self.start_hub()
        except BaseException:
            self.stop()
            raise
        self._write_manifest()
        return self

    def stop(self) -> None:
        """Stop every process this instance started (verified by pid, command line and run directory)."""
        t0 = time.monotonic()
        for name in ("hub", "echo", "bus", "mosquitto"):
            self._procs.stop(name)
        self._procs.stop_all()
        self.timings.stop = time.monotonic() - t0

    def kill_hub(self) -> None:
        """SIGKILL hivemind-core (the other processes keep running)."""
        self._procs.stop("hub", kill=True)

    def start_hub(self) -> None:
        """Start hivemind-core on the same ports and wait until WS, HTTP (and MQTT) answer."""
        ports = self._ports()
        log = self.run_dir / "logs" / "hub.log"
        self._hub_log_offset = log.stat().st_size if log.exists() else 0
        t0 = time.monotonic()
        launcher = str(HERE / "hub_launcher.py")
        self._spawn("hub", [self._python(), "-u", launcher, "--log-level", "INFO", "--log-path", "stdout"], log,
                    "hub_launcher.py")

        def ready() -> bool:
            if procs.http_status(ports.ws, "/") != 400 or procs.http_status(ports.http, "/get_messages") != 400:
                return False
            return not self.mqtt_available or "[MQTT] Connected to broker" in self._hub_log()

        procs.wait_until("hivemind-core", ready, READY_TIMEOUT, alive=lambda: self._procs.alive("hub"), logs=(log,))
        self.timings.start["hub"] = time.monotonic() - t0

    def restart_hub(self, *, noise_key: str | None = None) -> None:
        """Kill hivemind-core and start it again (ports, credentials and node identity are kept).

        ``noise_key`` (hub 5.x): the hub comes back with this Noise static key file content (64 hex digits);
        ``""`` lets it make a new one. Its RSA node identity, so the node id and the PSK salt, stay.
        """
        self.kill_hub()
        if noise_key is not None:
            path = self.noise_key_path()
            path.unlink(missing_ok=True)
            if noise_key:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as fh:
                    fh.write(noise_key)
        self.start_hub()

    def noise_key_path(self) -> Path:
        """Hub 5.x's Noise static key file (hex, made on the first v3 handshake): ``config/hivemind/``."""
        return self.run_dir / "config" / "hivemind" / "unnamed-node_noise.key"

    def hub_alive(self) -> bool:
        return self._procs.alive("hub")

    # -- internals ---------------------------------------------------------------------------------------

    def _ports(self) -> Ports:
        if self.ports is None:
            raise HarnessError("the hub was never started")
        return self.ports

    def _python(self) -> str:
        if self._venv is None:
            raise HarnessError("the hub venv is not installed")
        return str(self._venv / "bin" / "python")

    def _hub_log(self) -> str:
        try:
            with open(self.run_dir / "logs" / "hub.log", "rb") as fh:
                fh.seek(self._hub_log_offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "PYTHON", "VIRTUAL_ENV"))}
        env.update(XDG_CONFIG_HOME=str(self.run_dir / "config"), XDG_DATA_HOME=str(self.run_dir / "data"),
                   XDG_STATE_HOME=str(self.run_dir / "state"), XDG_CACHE_HOME=str(self.run_dir / "cache"),
                   PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
                   # hub 5.x already guards its client table and sends; the 4.0.0 patches do not apply there
                   HARNESS_GUARDS="0" if self.v3 else "1")
        return env

    def _spawn(self, name: str, cmd: list[str], log: Path, marker: str) -> None:
        self._procs.start(name, cmd, self._env(), log, marker, bound_to_parent=self.bound_to_parent)

    def _fresh_run_dir(self) -> None:
        marker = self.run_dir / ".thalovant-test-hub"
        if self.run_dir.exists() and any(self.run_dir.iterdir()) and not marker.exists():
            raise HarnessError(f"{self.run_dir} is not empty and was not made by the harness; refusing to wipe it")
        if self.run_dir.exists():
            procs.ProcessTable(self.run_dir).stop_all()
            shutil.rmtree(self.run_dir)
        for sub in ("config/hivemind-core", "config/mycroft", "data", "state", "cache", "logs", "identities",
                    "mosquitto"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)
        marker.write_text("")

    def _configure(self) -> None:
        from tests.harness import config

        clients = config.make_clients(self, KINDS)
        config.write_all(self, clients)

    def _start_mosquitto(self) -> None:
        assert self._mosquitto is not None and self.ports is not None and self.ports.mqtt is not None
        t0 = time.monotonic()
        conf = self.run_dir / "mosquitto" / "mosquitto.conf"
        self._spawn("mosquitto", [self._mosquitto[0], "-c", str(conf)], self.run_dir / "logs" / "mosquitto.out",
                    str(conf))
        port = self.ports.mqtt
        procs.wait_until("mosquitto", lambda: procs.port_open(port), READY_TIMEOUT,
                         alive=lambda: self._procs.alive("mosquitto"),
                         logs=(self.run_dir / "logs" / "mosquitto.out", self.run_dir / "logs" / "mosquitto.log"))
        self.timings.start["mosquitto"] = time.monotonic() - t0

    def _start_bus(self) -> None:
        port = self._ports().bus
        t0 = time.monotonic()
        log = self.run_dir / "logs" / "bus.log"
        self._spawn("bus", [self._python(), str(Path(self._python()).parent / "ovos-messagebus")], log,
                    "ovos-messagebus")
        procs.wait_until("ovos-messagebus", lambda: procs.port_open(port), READY_TIMEOUT,
                         alive=lambda: self._procs.alive("bus"), logs=(log,))
        self.timings.start["bus"] = time.monotonic() - t0

    def _start_echo(self) -> None:
        t0 = time.monotonic()
        log = self.run_dir / "logs" / "echo.log"
        ready = self.run_dir / "echo.ready"
        self._spawn("echo", [self._python(), "-u", str(HERE / "echo_agent.py"), "--port", str(self._ports().bus),
                             "--record", str(self.run_dir / "logs" / "echo-record.jsonl"), "--ready-file", str(ready)],
                    log, "echo_agent.py")
        procs.wait_until("echo agent", ready.exists, READY_TIMEOUT, alive=lambda: self._procs.alive("echo"),
                         logs=(log,))
        self.timings.start["echo"] = time.monotonic() - t0

    def _write_manifest(self) -> None:
        manifest = {
            "flavour": self.flavour.name, "run_dir": str(self.run_dir), "ports": self._ports().as_dict(),
            "user_agent": self.user_agent, "mqtt_available": self.mqtt_available,
            "mqtt_unavailable_reason": self.mqtt_unavailable_reason,
            "identities": {kind: str(self.identity_path(kind)) for kind in self.kinds},
            "pids": {name: entry["pid"] for name, entry in self._procs.recorded().items()},
        }
        (self.run_dir / "harness.json").write_text(json.dumps(manifest, indent=1))


# -- CLI ---------------------------------------------------------------------------------------------------


def _print_paths(hub_run: Path) -> None:
    manifest = json.loads((hub_run / "harness.json").read_text())
    print(f"HUB_RUN_DIR={manifest['run_dir']}")
    for kind, path in manifest["identities"].items():
        print(f"IDENTITY_{kind.upper().replace('-', '_')}={path}")
    for name, port in manifest["ports"].items():
        print(f"PORT_{name.upper()}={port}")
    print(f"USER_AGENT={manifest['user_agent']}")
    if not manifest["mqtt_available"]:
        print(f"# MQTT unavailable: {manifest['mqtt_unavailable_reason']}")


def _stop_dir(run_dir: Path) -> None:
    if (run_dir / ".thalovant-test-hub").exists():
        procs.ProcessTable(run_dir).stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.hub", description="thalovant loopback test hub")
    parser.add_argument("command", choices=("start", "stop", "status", "restart-hub", "stop-all"))
    parser.add_argument("--v3", action="store_true", help="hivemind-core 5.x (Noise, protocol v3) instead of 4.0.0")
    parser.add_argument("--run-dir", type=Path)
    args = parser.parse_args(argv)
    flavour = HUB5 if args.v3 else HUB4
    run_dir = (args.run_dir or harness_home() / f"run-{flavour.name}").resolve()

    def say(msg: str) -> None:
        print(f"[hub] {msg}", file=sys.stderr)

    if args.command == "stop-all":
        for candidate in sorted(harness_home().glob("run*")) + sorted(harness_home().glob("runs/*")):
            _stop_dir(candidate)
        return 0
    table = procs.ProcessTable(run_dir)
    if args.command == "stop":
        _stop_dir(run_dir)
        return 0
    alive = {name: table.alive(name) for name in table.recorded()}
    if args.command == "status":
        for name, ok in alive.items():
            print(f"{name}: {'alive' if ok else 'DEAD'} (pid {table.pid(name)})")
        if alive and all(alive.values()):
            _print_paths(run_dir)
            return 0
        print("not running")
        return 1
    if args.command == "start" and alive and all(alive.values()):
        _print_paths(run_dir)
        return 0
    hub = TestHub(flavour, run_dir, log=say)
    try:
        if args.command == "restart-hub":
            raise HarnessError("restart-hub is only available from Python (TestHub.restart_hub)")
        hub.start()
    except (HarnessError, HarnessUnavailable) as exc:
        say(f"ERROR: {exc}")
        return 1
    say(f"started in {sum(hub.timings.start.values()) + hub.timings.configure:.1f}s "
        f"(install {hub.timings.install:.1f}s{' cached' if hub.timings.install_cached else ''})")
    _print_paths(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
