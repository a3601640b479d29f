"""Child processes of the harness: start with logs, record by pid, stop only what is provably ours.

Every process is recorded in ``<run dir>/pids.json`` as ``{name: {"pid", "marker"}}``.  Before a
signal is sent, ``/proc/<pid>/cmdline`` must contain the marker and ``/proc/<pid>/environ`` must carry
``THALOVANT_HARNESS_RUN=<run dir>``, so a recycled pid or another harness's process is never touched.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

RUN_ENV = "THALOVANT_HARNESS_RUN"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(port: int, target: str, timeout: float = 1.0) -> int | None:
    """Status code of a bare ``GET target`` on loopback, or None when nothing sensible answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(f"    | {line}" for line in text.strip().splitlines()[-lines:])


def proc_belongs(pid: int, marker: str, run_dir: Path) -> bool:
    """True when ``pid`` is alive, its command line has ``marker`` and it was started for ``run_dir``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return marker in cmdline and f"{RUN_ENV}={run_dir}".encode() in environ


class ProcessTable:
    """The processes of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "pids.json"
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def recorded(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def start(self, name: str, cmd: list[str], env: dict[str, str], log: Path, marker: str, *,
              bound_to_parent: bool = False) -> int:
        """Start ``cmd`` in its own session, output appended to ``log``.

        With ``bound_to_parent`` the kernel sends the child SIGTERM when this process dies, so a
        test session killed with SIGKILL leaves no hub behind.
        """
        env = dict(env, **{RUN_ENV: str(self.run_dir)})
        with open(log, "ab") as out:
            child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     cwd=self.run_dir, start_new_session=True,
                                     preexec_fn=_die_with_parent if bound_to_parent else None)
        self.children[name] = child
        table = self.recorded()
        table[name] = {"pid": child.pid, "marker": marker, "log": str(log)}
        self.path.write_text(json.dumps(table, indent=1))
        return child.pid

    def alive(self, name: str) -> bool:
        entry = self.recorded().get(name)
        if not entry:
            return False
        child = self.children.get(name)
        if child is not None:  # our own child: the Popen object knows best (no /proc race right after exec)
            return child.poll() is None
        return proc_belongs(int(str(entry["pid"])), str(entry["marker"]), self.run_dir)

    def pid(self, name: str) -> int | None:
        entry = self.recorded().get(name)
        return int(str(entry["pid"])) if entry else None

    def stop(self, name: str, *, kill: bool = False, grace: float = 5.0) -> None:
        """SIGTERM (or SIGKILL), wait up to ``grace`` seconds, then SIGKILL."""
        table = self.recorded()
        entry = table.pop(name, None)
        child = self.children.pop(name, None)
        if entry is not None:
            pid, marker = int(str(entry["pid"])), str(entry["marker"])
            if proc_belongs(pid, marker, self.run_dir):
                _signal(pid, signal.SIGKILL if kill else signal.SIGTERM)
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and _still_running(pid, child):
                    time.sleep(0.05)
                if _still_running(pid, child) and proc_belongs(pid, marker, self.run_dir):
                    _signal(pid, signal.SIGKILL)
                    deadline = time.monotonic() + grace
                    while time.monotonic() < deadline and _still_running(pid, child):
                        time.sleep(0.05)
            self.path.write_text(json.dumps(table, indent=1))
        if child is not None:
            try:
                child.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass

    def stop_all(self) -> None:
        for name in reversed(list(self.recorded())):
            self.stop(name)

    def rss_kib(self) -> dict[str, int]:
        sizes = {}
        for name, entry in self.recorded().items():
            try:
                for line in Path(f"/proc/{entry['pid']}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes[name] = int(line.split()[1])
            except OSError:
                continue
        return sizes


def _die_with_parent() -> None:
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _still_running(pid: int, child: subprocess.Popen[bytes] | None) -> bool:
    if child is not None:
        return child.poll() is None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_until(what: str, check: Callable[[], bool], timeout: float, *, alive: Callable[[], bool] | None = None,
               logs: tuple[Path, ...] = ()) -> float:
    """Poll ``check`` every 50 ms; return the seconds it took or raise with log tails."""
    from tests.harness.install import HarnessError

    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic() - started
        if alive is not None and not alive():
            break
        time.sleep(0.05)
    state = "exited" if alive is not None and not alive() else f"was not ready after {timeout:.0f}s"
    tails = "\n".join(f"  {log}:\n{log_tail(log)}" for log in logs)
    raise HarnessError(f"{what} {state}\n{tails}")
