"""Item 3: cold start. Wall time and peak memory of ``import thalovant`` and ``thalovant --help``.

Each command runs as a fresh process from a neutral working directory (so
``import thalovant`` finds the installed package, never the source tree by
accident for the reference) with ``XDG_CONFIG_HOME`` pointed at a temporary
directory. Runs alternate between contenders so that machine noise hits both
alike. The floor is a bare interpreter, ``python -c pass``.

Peak memory comes from a second, separate run under GNU ``/usr/bin/time -f %M``.
``ru_maxrss`` of a child started straight from this process is useless: Linux
carries the high-water mark of the mm the child was (v)forked from across
``exec``, so every child would report at least this benchmark's own RSS.
``time`` forks the command from a 2 MB process, which keeps the figure honest.
Without ``/usr/bin/time`` the memory columns say "n/a".

Bytecode caches exist for both sides (one untimed warm-up run each): "cold"
means a new process, not an empty page cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._timing import summarize
from benchmarks.refvenv import ensure_ref_venv

__all__ = ["commands", "render", "run", "run_once"]

_ROOT = Path(__file__).resolve().parent.parent


def commands() -> dict[str, dict[str, list[str]]]:
    """``{case: {impl: argv}}``; the reference entries are missing if its venv cannot be built."""
    ours_bin = Path(sys.executable).parent
    cases: dict[str, dict[str, list[str]]] = {
        "python -c 'import thalovant'": {"thalovant": [sys.executable, "-c", "import thalovant"]},
        "thalovant --help": {"thalovant": [str(ours_bin / "thalovant"), "--help"]},
    }
    try:
        ref_python = ensure_ref_venv(quiet=True)
    except (RuntimeError, OSError):
        pass
    else:
        cases["python -c 'import thalovant'"]["reference"] = [str(ref_python), "-c", "import thalovant"]
        cases["thalovant --help"]["reference"] = [str(ref_python.parent / "thalovant"), "--help"]
    for impls in cases.values():
        impls["floor"] = [sys.executable, "-c", "pass"]
    return cases


_GNU_TIME = "/usr/bin/time"


def run_once(argv: list[str], *, cwd: str, env: dict[str, str]) -> tuple[float, int, int]:
    """Run ``argv`` once; returns (wall seconds, exit status, peak RSS in KiB or -1 if unknown).

    Wall time comes from a direct run; the peak RSS from a second run under GNU time.
    """
    start = time.perf_counter()
    code = subprocess.call(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    peak = -1
    if os.path.exists(_GNU_TIME):
        out = Path(cwd) / "maxrss.txt"
        subprocess.call(
            [_GNU_TIME, "-q", "-f", "%M", "-o", str(out), *argv],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            peak = int(out.read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            peak = -1
    return wall, code, peak


def run(*, quick: bool = False) -> dict[str, Any]:
    """Alternate the contenders ``runs`` times per case."""
    runs = 5 if quick else 25
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="thalovant-bench-") as tmp:
        env = dict(os.environ, XDG_CONFIG_HOME=tmp, PYTHONDONTWRITEBYTECODE="")
        env.pop("PYTHONPATH", None)
        for case, impls in commands().items():
            walls: dict[str, list[float]] = {k: [] for k in impls}
            rss: dict[str, list[float]] = {k: [] for k in impls}
            for impl, argv in impls.items():  # warm-up: bytecode caches, page cache
                _, code, _ = run_once(argv, cwd=tmp, env=env)
                if code != 0:
                    raise RuntimeError(f"{impl}: {' '.join(argv)} exited with {code}")
            for _ in range(runs):
                for impl, argv in impls.items():
                    wall, _, peak = run_once(argv, cwd=tmp, env=env)
                    walls[impl].append(wall)
                    if peak > 0:
                        rss[impl].append(float(peak))
            for impl in impls:
                rows.append(
                    {
                        "case": case,
                        "impl": impl,
                        "wall": summarize(walls[impl]),
                        "rss_kib": summarize(rss[impl]) if rss[impl] else None,
                    }
                )
    return {"name": "coldstart", "status": "ok", "rows": rows, "runs": runs}


def render(result: dict[str, Any]) -> list[str]:
    """Markdown for RESULTS.md."""
    lines = [
        f"Fresh process per run, {result['runs']} runs per contender, alternated. Wall time in ms (p50 / p95); "
        "peak RSS in MiB (p50, GNU time). Floor = `python -c pass`. Target: thalovant ≤ 0.5x the reference.",
        "",
        "| command | thalovant wall | reference wall | floor wall | thalovant ÷ reference (wall) "
        "| thalovant RSS | reference RSS | floor RSS | thalovant ÷ reference (RSS) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cases: dict[str, dict[str, dict[str, Any]]] = {}
    for r in result["rows"]:
        cases.setdefault(r["case"], {})[r["impl"]] = r
    for case, impls in cases.items():

        def wall(k: str, impls: dict[str, dict[str, Any]] = impls) -> str:
            r = impls.get(k)
            return f"{r['wall']['median'] * 1e3:.0f} / {r['wall']['p95'] * 1e3:.0f}" if r else "not run"

        def mem(k: str, impls: dict[str, dict[str, Any]] = impls) -> str:
            r = impls.get(k)
            if not r:
                return "not run"
            peak = r["rss_kib"]
            return f"{peak['median'] / 1024:.1f}" if peak else "n/a"

        ours, ref = impls.get("thalovant"), impls.get("reference")
        wall_ratio = f"{ours['wall']['median'] / ref['wall']['median']:.2f}x" if ours and ref else "n/a"
        ours_rss = ours["rss_kib"] if ours else None
        ref_rss = ref["rss_kib"] if ref else None
        rss_ratio = f"{ours_rss['median'] / ref_rss['median']:.2f}x" if ours_rss and ref_rss else "n/a"
        lines.append(
            f"| `{case}` | {wall('thalovant')} | {wall('reference')} | {wall('floor')} | {wall_ratio} "
            f"| {mem('thalovant')} | {mem('reference')} | {mem('floor')} | {rss_ratio} |"
        )
    return lines
