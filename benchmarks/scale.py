"""Item 4: N concurrent async clients in one process against one real hub.

One hub 4.x (``tests.harness``, started and always stopped here). For each N, in one asyncio
process (``anyio.run``):

1. **connect**: N ``AsyncThalovantClient`` s connect at the same time (WebSocket, identity ``psk``:
   hub 4.x allows one live HTTP or MQTT connection per identity (harness pitfall P16) but many
   WebSocket connections, so N clients means WebSocket). Reported: wall time until all are
   ready, connects (link + handshake) per second, failures.
2. **memory**: this process's RSS before and after, divided by N (resident memory per client),
   and the hub process's RSS growth.
3. **asks**: every client asks ``k`` times in a row, all clients at once. Reported: asks per
   second over the whole phase, the per-ask p50 / p95, errors.
4. **who is the limit**: CPU seconds used during the ask phase by this process and by each hub
   process (hivemind-core, ovos-messagebus, echo agent, from ``/proc/<pid>/stat``), divided by
   the phase's wall time. A process near 1.0 is saturating one core (CPython: one core is the
   most it can use); the hub log is scanned for errors.

All waits are bounded (``fail_after``); clients are closed before the next N.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._livehub import REF_USER_AGENT, hub_log_problems, live_hub, summarize_ms

__all__ = ["render", "run", "target_rows"]

_TICK = os.sysconf("SC_CLK_TCK")
#: Longer than the client's default (10 s): all N start at once and the hub hashes one PBKDF2 key per
#: connection (the password handshake, spec §4.2), so a queue of handshakes builds up at the hub.
HANDSHAKE_TIMEOUT = 60.0


def _rss_kib(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _self_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


class _Counter:
    """Counts up to ``target``, then sets ``done``."""

    def __init__(self, target: int) -> None:
        import anyio

        self.target, self.count, self.done = target, 0, anyio.Event()
        if target <= 0:
            self.done.set()

    def add(self) -> None:
        self.count += 1
        if self.count >= self.target:
            self.done.set()


def _one_n(identity_path: Path, n: int, asks_each: int, hub_pids: dict[str, int]) -> dict[str, Any]:
    import anyio

    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.identity_io import ThalovantIdentity

    ident = ThalovantIdentity.from_file(identity_path)

    async def main() -> dict[str, Any]:
        rss0 = _rss_kib()
        hub_rss0 = _rss_kib(hub_pids["hub"])
        connect_times: list[float] = []
        connect_errors: list[str] = []
        latencies: list[float] = []
        ask_errors: list[str] = []
        close_errors: list[str] = []
        arrived = _Counter(n)  # connected or failed
        finished = _Counter(n)  # asked k times, or never connected
        go, leave = anyio.Event(), anyio.Event()

        async def life(idx: int) -> None:
            # connect() and close() must run in the same task, so each client lives in its own task
            client = AsyncThalovantClient(
                ident,
                protocol="wss",
                useragent=REF_USER_AGENT,
                connect_timeout=HANDSHAKE_TIMEOUT + 30.0,
                handshake_timeout=HANDSHAKE_TIMEOUT,
                auto_reconnect=False,
            )
            t = time.perf_counter()
            connected = False
            try:
                async with client:
                    connected = True
                    connect_times.append(time.perf_counter() - t)
                    arrived.add()
                    await go.wait()
                    for i in range(asks_each):
                        t = time.perf_counter()
                        try:
                            reply = await client.ask(f"c{idx} q{i}", timeout=60)
                        except Exception as exc:  # counted, reported
                            ask_errors.append(f"{type(exc).__name__}: {exc}"[:160])
                            continue
                        latencies.append(time.perf_counter() - t)
                        if reply.text != f"echo: c{idx} q{i}":
                            ask_errors.append(f"unexpected reply {reply.text[:60]!r}")
                    finished.add()
                    await leave.wait()
            except Exception as exc:  # counted, reported
                text = f"{type(exc).__name__}: {exc}"[:160]
                (close_errors if connected else connect_errors).append(text)
                if not connected:
                    arrived.add()
                    finished.add()

        out: dict[str, Any] = {"n": n, "asks_each": asks_each}
        with anyio.fail_after(600):
            async with anyio.create_task_group() as tg:
                cpu_c0 = {name: _cpu_s(pid) for name, pid in hub_pids.items()}
                self_c0 = _self_cpu()
                start = time.perf_counter()
                for idx in range(n):
                    tg.start_soon(life, idx)
                with anyio.fail_after(HANDSHAKE_TIMEOUT + 60.0):
                    await arrived.done.wait()
                wall = time.perf_counter() - start
                cpu_c = {name: round((_cpu_s(pid) - cpu_c0[name]) / wall, 2) for name, pid in hub_pids.items()}
                cpu_c["client (this process)"] = round((_self_cpu() - self_c0) / wall, 2)
                out["connect_cpu_share"] = cpu_c
                ok = len(connect_times)
                out["connect"] = {
                    "wall_s": round(wall, 3),
                    "ok": ok,
                    "failed": len(connect_errors),
                    "per_s": round(ok / wall, 1) if wall else None,
                    "each_ms": summarize_ms(connect_times),
                    "errors": connect_errors[:3],
                }
                await anyio.sleep(0.5)  # let the handshakes' garbage settle before reading RSS
                out["client_rss_kib"] = {"before": rss0, "after": _rss_kib()}
                out["per_client_kib"] = round((_rss_kib() - rss0) / max(1, ok), 1)
                out["hub_rss_kib"] = {"before": hub_rss0, "after": _rss_kib(hub_pids["hub"])}
                cpu0 = {name: _cpu_s(pid) for name, pid in hub_pids.items()}
                self0 = _self_cpu()
                start = time.perf_counter()
                go.set()
                with anyio.fail_after(300):
                    await finished.done.wait()
                wall = time.perf_counter() - start
                cpu = {name: round((_cpu_s(pid) - cpu0[name]) / wall, 2) for name, pid in hub_pids.items()}
                cpu["client (this process)"] = round((_self_cpu() - self0) / wall, 2)
                out["asks"] = {
                    "wall_s": round(wall, 3),
                    "ok": len(latencies),
                    "failed": len(ask_errors),
                    "per_s": round(len(latencies) / wall, 1) if wall else None,
                    "each_ms": summarize_ms(latencies),
                    "errors": ask_errors[:3],
                }
                out["cpu_share"] = cpu
                out["hub_rss_kib"]["after_asks"] = _rss_kib(hub_pids["hub"])
                leave.set()
        out["close_errors"] = close_errors[:3]
        return out

    result: dict[str, Any] = anyio.run(main)
    return result


def _child(identity_path: Path, n: int, k: int, hub_pids: dict[str, int]) -> dict[str, Any]:
    """Run one N in a fresh interpreter, so its RSS growth belongs to these N clients alone."""
    job = json.dumps({"identity": str(identity_path), "n": n, "k": k, "pids": hub_pids})
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--child"],
        input=job,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=str(Path(__file__).resolve().parent.parent),
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child exit {proc.returncode}: {proc.stderr.strip()[-600:]}")
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def run(*, quick: bool = False) -> dict[str, Any]:
    """Measure N = 10, 100, 500 concurrent clients (quick: 10, 50); see the module docstring."""
    plan = ((10, 2), (50, 2)) if quick else ((10, 10), (100, 4), (500, 2))
    rows: list[dict[str, Any]] = []
    with live_hub("scale") as hub:
        pids = {name: hub._procs.pid(name) for name in ("hub", "bus", "echo")}
        hub_pids = {name: pid for name, pid in pids.items() if pid is not None}
        for n, k in plan:
            try:
                rows.append(_child(hub.identity_path("psk"), n, k, hub_pids))
            except Exception as exc:  # one N failing must not hide the others
                rows.append({"n": n, "asks_each": k, "error": f"{type(exc).__name__}: {exc}"[:400]})
            if not hub.hub_alive():
                rows[-1]["hub_died"] = True
                break
            time.sleep(1.0)  # let the hub drop the closed connections before the next N
        problems = hub_log_problems(hub)
        memory = hub.memory_kib()
    return {
        "name": "scale",
        "status": "ok",
        "transport": "wss",
        "rows": rows,
        "hub_log": problems,
        "hub_rss_kib_end": memory,
    }


def target_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Item 4 has no numeric target; one row says what was measured."""
    done = [r for r in result.get("rows", []) if "asks" in r]
    if not done:
        return [("Scale: concurrent async clients (item 4)", "no N completed", "**not met**")]
    top = max(done, key=lambda r: r["n"])
    measured = (
        f"up to N={top['n']}: {top['asks']['per_s']} asks/s, {top['per_client_kib']} KiB/client, "
        f"{top['asks']['failed']} ask errors"
    )
    return [("Scale: concurrent async clients (item 4), reported", measured, "measured")]


def render(result: dict[str, Any]) -> list[str]:
    """Markdown for RESULTS.md."""
    if result.get("status") != "ok":
        return [f"**Not run.** {result.get('note', '')}".rstrip()]
    lines = [
        "One process, asyncio, N `AsyncThalovantClient`s over WebSocket with one psk identity (hub 4.x allows "
        "one live HTTP or MQTT connection per identity, harness pitfall P16, so N clients means WebSocket). "
        "All N connect at once; then every client asks k times in a row, all clients at once. Memory per client "
        "= growth of this process's RSS over N. CPU share = CPU seconds during the ask phase ÷ its wall time "
        "(1.0 = one core busy; each hub process is single-threaded CPython, so ≈ 1.0 means that process is the "
        "limit; the machine has 2 cores).",
        "",
        "| N | connect wall (s) | connects/s | connect p50 / p95 (ms) | failed | RSS per client (KiB) "
        "| hub RSS before → after (MiB) | k | asks/s | ask p50 / p95 (ms) | ask errors | CPU share: "
        "client / hub / bus / echo |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result.get("rows", []):
        if "error" in r:
            lines.append(f"| {r['n']} | failed: {r['error'][:120].replace('|', '/')} |" + " |" * 10)
            continue
        c, a = r["connect"], r.get("asks", {})
        h = r["hub_rss_kib"]
        cpu = r.get("cpu_share", {})
        lines.append(
            f"| {r['n']} | {c['wall_s']} | {c['per_s']} | {c['each_ms'].get('p50', '-')} / "
            f"{c['each_ms'].get('p95', '-')} | {c['failed']} | {r['per_client_kib']} | "
            f"{h['before'] / 1024:.0f} → {h.get('after_asks', h['after']) / 1024:.0f} | {r['asks_each']} | "
            f"{a.get('per_s', '-')} | {a.get('each_ms', {}).get('p50', '-')} / {a.get('each_ms', {}).get('p95', '-')}"
            f" | {a.get('failed', '-')} | {cpu.get('client (this process)', '-')} / {cpu.get('hub', '-')} / "
            f"{cpu.get('bus', '-')} / {cpu.get('echo', '-')} |"
        )
    lines += [
        "",
        "CPU share per process (connect phase | ask phase), and this process's RSS before → after connecting:",
        "",
        "| N | client | hivemind-core | ovos-messagebus | echo agent | client RSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in result.get("rows", []):
        if "error" in r:
            continue
        cc, ca = r.get("connect_cpu_share", {}), r.get("cpu_share", {})
        cells = [f"{cc.get(k, '-')} \\| {ca.get(k, '-')}" for k in ("client (this process)", "hub", "bus", "echo")]
        rss = r.get("client_rss_kib", {})
        mib = f"{rss.get('before', 0) / 1024:.1f} → {rss.get('after', 0) / 1024:.1f}"
        lines.append(f"| {r['n']} | " + " | ".join(cells) + f" | {mib} |")
    errs = [
        e
        for r in result.get("rows", [])
        for e in (r.get("connect", {}).get("errors", []) + r.get("asks", {}).get("errors", []))
    ]
    if errs:
        lines += ["", "First errors: " + "; ".join(f"`{e}`" for e in errs[:4])]
    log = result.get("hub_log") or {}
    if log.get("errors") is not None:
        lines += [
            "",
            f"Hub log after the run: {log['errors']} ERROR/Traceback/guard lines"
            + (": " + "; ".join(f"`{x[-120:]}`" for x in log.get("first", [])[:3]) if log.get("first") else "."),
        ]
    return lines


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        spec = json.loads(sys.stdin.read())
        child = _one_n(Path(spec["identity"]), int(spec["n"]), int(spec["k"]), dict(spec["pids"]))
        json.dump(child, sys.stdout)
    else:
        sys.exit("usage: python -m benchmarks.run --only scale")
