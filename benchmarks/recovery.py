"""Recovery after a hub restart (issue 16): how soon a client with default settings is usable again.

For each hub generation (4.x and 5.x: WebSocket, HTTP, MQTT) and transport, one client (``psk``
identity, default settings; on hub 5.x MQTT the plugin's topic layout, ``mqtt_layout="modern"``)
connects to a fresh hub from ``tests/harness`` on loopback and asks once. Then, ``restarts`` times:
hivemind-core is killed with SIGKILL and started again (same ports, keys and node identity). The
clock starts when the restarted hub answers on every port (the harness's readiness check, polled
every 5 ms: WebSocket and HTTP answer, and over MQTT the hub has connected to the broker). From that
moment two probes run side by side:

* *peer*: the harness pushes a bus message to every connected peer (``push_event``) until the hub
  reaches our client: the hub has it as a peer again;
* *ask*: ``client.ask`` (issued at that moment, timeout 20 s) returns the echo agent's answer.

The targets are median <= 1.0 s and max <= 2.0 s for both. Negative times mean the client was back
before the last port answered. Over MQTT the broker stays up across the restart: the client learns of
it from the hub's presence topic (hub 4.x ``<base>/status/hub``, hub 5.x ``<root>/<node name>/status``).

Usage::

    python -m benchmarks.run --only recovery        # 12 restarts per cell; writes RESULTS.md
    python -m benchmarks.recovery --restarts 3      # an ad-hoc run: prints the table only
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

__all__ = ["main", "render", "run", "target_rows"]

MEDIAN_TARGET, MAX_TARGET = 1.0, 2.0
LABELS = {"wss": "WebSocket", "https": "HTTP", "mqtt": "MQTT"}
_POLL = 0.005
_WAIT = 20.0
# The harness starts hub processes with PR_SET_PDEATHSIG, which the kernel ties to the forking *thread*:
# start them from this long-lived thread, never from an anyio worker thread that may exit.
_HUB_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recovery-hub")


@contextmanager
def _hub(generation: int) -> Iterator[Any]:
    """A fresh loopback hub of ``generation`` (4 or 5) in a temporary run directory, always stopped."""
    from tests.harness.hub import HUB4, HUB5, TestHub

    base = Path(tempfile.mkdtemp(prefix=f"thalovant-bench-recovery-{generation}-"))
    hub = TestHub(HUB4 if generation == 4 else HUB5, base / "run", bound_to_parent=True)
    try:
        _HUB_THREAD.submit(hub.start).result()
        yield hub
    finally:
        try:
            _HUB_THREAD.submit(hub.stop).result()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def _answers_everywhere(hub: Any, log: Path, offset: int) -> bool:
    """The harness's readiness check: WebSocket and HTTP answer; over MQTT the hub reached the broker."""
    from tests.harness import procs

    ports = hub.ports
    if procs.http_status(ports.ws, "/", 0.5) != 400 or procs.http_status(ports.http, "/get_messages", 0.5) != 400:
        return False
    if not hub.mqtt_available:
        return True
    with open(log, "rb") as fh:
        fh.seek(offset)
        return b"[MQTT] Connected to broker" in fh.read()


def _restart(hub: Any) -> float:
    """SIGKILL the hub, start it again; the monotonic time at which it answered on every port."""
    log = Path(hub.run_dir) / "logs" / "hub.log"
    hub.kill_hub()
    offset = log.stat().st_size if log.exists() else 0
    ready: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 90.0
        while not stop.is_set() and time.monotonic() < deadline:
            if _answers_everywhere(hub, log, offset):
                ready.append(time.monotonic())
                return
            time.sleep(_POLL)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    hub.start_hub()  # returns once the harness saw it ready (it polls every 50 ms)
    watcher.join(5.0)
    stop.set()
    return ready[0] if ready else time.monotonic()


def _peer_again(hub: Any, since: float) -> float:
    """Seconds from ``since`` until a push from the hub reaches a peer (ours: the only client)."""
    deadline = since + _WAIT
    while time.monotonic() < deadline:
        try:
            if hub.push_event("thalovant.bench.recovery", {}, timeout=0.5, wait_for_peer=0):
                return time.monotonic() - since
        except Exception:  # the hub's bus link may not be back yet: try again
            pass
        time.sleep(0.01)
    raise TimeoutError(f"no peer within {_WAIT:g} s")


async def _measure(hub: Any, protocol: str, restarts: int, trace: Path | None = None) -> dict[str, Any]:
    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.recording import TraceWriter

    peer: list[float] = []
    ask: list[float] = []
    failures: list[str] = []
    # the Noise key kept in the hub's run directory (hub 5.x pins the first key it sees for an access key)
    key_file = Path(hub.run_dir) / "noise-client.key"
    identity = hub.identity_path("psk")
    recorder = TraceWriter(trace) if trace is not None else None
    layout: dict[str, Any] = {"mqtt_layout": "modern"} if protocol == "mqtt" and hub.v3 else {}
    client = AsyncThalovantClient.from_identity_file(
        identity, protocol=protocol, noise_key_file=key_file, trace=recorder, **layout
    )
    readies: list[float] = []  # on the event loop's clock (a trace's "now")
    async with client:
        await client.ask("warm-up", timeout=_WAIT)
        for n in range(restarts):
            ready = await anyio.to_thread.run_sync(_HUB_THREAD.submit(_restart, hub).result)
            readies.append(anyio.current_time() - (time.monotonic() - ready))
            asked: list[float] = []

            async def probe_ask(n: int = n, ready: float = ready, asked: list[float] = asked) -> None:
                try:
                    reply = await client.ask(f"recovery {n}", timeout=_WAIT)
                    if reply.text == f"echo: recovery {n}":
                        asked.append(time.monotonic() - ready)
                    else:
                        failures.append(f"restart {n}: ask answered {reply.text!r}")
                except Exception as exc:
                    failures.append(f"restart {n}: ask {type(exc).__name__}: {exc}"[:200])

            async with anyio.create_task_group() as tg:
                tg.start_soon(probe_ask)
                try:
                    peer.append(await anyio.to_thread.run_sync(_peer_again, hub, ready))
                except TimeoutError as exc:
                    failures.append(f"restart {n}: {exc}")
            ask += asked
            await anyio.sleep(0.5)  # settle before the next kill
    return {"peer_s": peer, "ask_s": ask, "failures": failures, "ready_at": readies}


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def run(
    *,
    quick: bool = False,
    restarts: int | None = None,
    generations: tuple[int, ...] = (4, 5),
    protocols: tuple[str, ...] = ("wss", "https", "mqtt"),
    traces: Path | None = None,
) -> dict[str, Any]:
    """Measure recovery for every generation and transport; see the module docstring."""
    count = restarts if restarts is not None else (3 if quick else 12)
    rows: list[dict[str, Any]] = []
    for generation in generations:
        with _hub(generation) as hub:
            for protocol in protocols:
                row: dict[str, Any] = {"generation": generation, "protocol": protocol, "label": LABELS[protocol]}
                if protocol == "mqtt" and not hub.mqtt_available:
                    row["skipped"] = "no mosquitto"
                    rows.append(row)
                    continue
                print(f"[recovery] hub {generation}.x {protocol}: {count} restarts", file=sys.stderr, flush=True)
                try:
                    trace = traces / f"recovery-{generation}-{protocol}.jsonl" if traces is not None else None
                    raw = anyio.run(_measure, hub, protocol, count, trace)
                except Exception as exc:  # one broken cell must not hide the others
                    row["error"] = f"{type(exc).__name__}: {exc}"[:400]
                else:
                    row.update(raw, peer=_stats(raw["peer_s"]), ask=_stats(raw["ask_s"]))
                rows.append(row)
                if not hub.hub_alive():
                    _HUB_THREAD.submit(hub.start_hub).result()
    return {"name": "recovery", "status": "ok", "restarts": count, "rows": rows}


def _met(stats: dict[str, Any], restarts: int) -> bool:
    return (
        bool(stats.get("n"))
        and stats["n"] == restarts
        and stats["median"] <= MEDIAN_TARGET
        and (stats["max"] <= MAX_TARGET)
    )


def target_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows for RESULTS.md's target table."""
    out: list[tuple[str, str, str]] = []
    restarts = int(result.get("restarts", 0))
    for row in result.get("rows", []):
        if "skipped" in row:
            continue
        name = f"recovery hub {row['generation']}.x {row['label']}: median ≤ 1.0 s, max ≤ 2.0 s"
        if "error" in row:
            out.append((name, "failed", "**not met**"))
            continue
        peer, ask = row["peer"], row["ask"]
        got = f"peer {peer.get('median', '-')} / {peer.get('max', '-')} s, ask {ask.get('median', '-')} / "
        got += f"{ask.get('max', '-')} s ({ask.get('n', 0)}/{restarts})"
        ok = _met(peer, restarts) and _met(ask, restarts) and not row["failures"]
        out.append((name, got, "met" if ok else "**not met**"))
    return out


def render(result: dict[str, Any]) -> list[str]:
    """Markdown for RESULTS.md."""
    if result.get("status") != "ok":
        return [f"**Not run.** {result.get('note', '')}".rstrip()]
    lines = [
        f"Hub 4.0.0 and 5.3.10a1 from `tests/harness` on loopback; per cell one client with default settings "
        f"(`psk` identity) and {result.get('restarts')} restarts (SIGKILL, then start). Seconds from the moment "
        "the restarted hub answers on every port until the hub reaches the client with a push (*peer*) and "
        "until an ask issued at that moment is answered (*ask*). Targets: median ≤ 1.0 s, max ≤ 2.0 s.",
        "",
        "| hub | transport | peer again: median / max | ask answered: median / max | failures |",
        "|---|---|---|---|---|",
    ]
    for row in result.get("rows", []):
        head = f"| {row['generation']}.x | {row['label']} |"
        if "skipped" in row:
            lines.append(f"{head} (skipped: {row['skipped']}) | | |")
        elif "error" in row:
            lines.append(f"{head} failed | | {row['error'][:160].replace('|', '/')} |")
        else:
            peer, ask = row["peer"], row["ask"]
            fails = "; ".join(row["failures"])[:200].replace("|", "/") or "0"
            lines.append(
                f"{head} {peer.get('median', '-')} / {peer.get('max', '-')} s (n={peer.get('n', 0)}) | "
                f"{ask.get('median', '-')} / {ask.get('max', '-')} s (n={ask.get('n', 0)}) | {fails} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run ad hoc and print the table (``python -m benchmarks.run --only recovery`` records it)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recovery", description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=12, help="restarts per generation and transport")
    parser.add_argument("--generations", default="4,5", help="comma-separated hub generations (4, 5)")
    parser.add_argument("--transports", default="wss,https,mqtt", help="comma-separated transports")
    parser.add_argument("--log", action="store_true", help="log the client's steps (DEBUG) to stderr")
    parser.add_argument("--traces", type=Path, help="record each client's machine steps in this directory")
    args = parser.parse_args(argv)
    if args.log:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)9.0f %(name)s %(message)s")
    generations = tuple(int(g) for g in args.generations.split(",") if g.strip())
    protocols = tuple(p.strip() for p in args.transports.split(",") if p.strip())
    result = run(restarts=args.restarts, generations=generations, protocols=protocols, traces=args.traces)
    print("\n".join(render(result)))
    for target, measured, verdict in target_rows(result):
        print(f"{verdict:>12}  {target}: {measured}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
