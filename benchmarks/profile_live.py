"""Profile thalovant against the live hub with pyinstrument: warm connects and sequential asks.

Usage (from the project root, project venv)::

    python -m benchmarks.profile_live                 # wss connects + asks on wss, https, mqtt
    python -m benchmarks.profile_live --asks 100 --connects 20

Writes ``benchmarks/results/profile-live-<what>.txt`` (pyinstrument text, async mode off so that the
event loop's own frames show; ``epoll.poll`` is time spent waiting for the hub) and prints the client's
CPU time per operation next to the wall time. Starts and always stops its own hub.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._livehub import REF_USER_AGENT, live_hub

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _profile(label: str, coro_fn: Any, count: int) -> str:
    import anyio
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    box: dict[str, float] = {}

    async def wrapped() -> None:
        await coro_fn(box, profiler)

    anyio.run(wrapped)
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    path = RESULTS / f"profile-live-{label}.txt"
    head = (
        f"# {label}: {count} operations; client CPU {box['cpu'] / count * 1000:.2f} ms/op, "
        f"wall {box['wall'] / count * 1000:.1f} ms/op (python -m benchmarks.profile_live)\n"
    )
    path.write_text(head + text)
    return head.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_live", description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=50)
    parser.add_argument("--connects", type=int, default=10)
    args = parser.parse_args(argv)
    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.identity_io import ThalovantIdentity

    RESULTS.mkdir(parents=True, exist_ok=True)
    with live_hub("profile") as hub:
        ident = ThalovantIdentity.from_file(hub.identity_path("psk"))

        async def connects(box: dict[str, float], profiler: Any) -> None:
            async with AsyncThalovantClient(ident, protocol="wss", useragent=REF_USER_AGENT):
                pass  # warm: the hub's first connection and our lazy imports are not profiled
            cpu0, t0 = _cpu(), time.perf_counter()
            profiler.start()
            for _ in range(args.connects):
                async with AsyncThalovantClient(ident, protocol="wss", useragent=REF_USER_AGENT):
                    pass
            profiler.stop()
            box.update(cpu=_cpu() - cpu0, wall=time.perf_counter() - t0)

        print(_profile("connect-wss", connects, args.connects), file=sys.stderr)
        for protocol in ("wss", "https", "mqtt"):

            async def asks(box: dict[str, float], profiler: Any, protocol: str = protocol) -> None:
                async with AsyncThalovantClient(ident, protocol=protocol, useragent=REF_USER_AGENT) as client:
                    await client.ask("warm up", timeout=10)
                    cpu0, t0 = _cpu(), time.perf_counter()
                    profiler.start()
                    for i in range(args.asks):
                        await client.ask(f"hello {i}", timeout=10)
                    profiler.stop()
                    box.update(cpu=_cpu() - cpu0, wall=time.perf_counter() - t0)

            print(_profile(f"ask-{protocol}", asks, args.asks), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
