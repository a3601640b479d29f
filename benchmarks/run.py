"""Run the benchmarks and write ``benchmarks/results/*.json`` and ``benchmarks/RESULTS.md``.

Usage (from the project root, with the project venv)::

    python -m benchmarks.run                       # everything, full sample counts
    python -m benchmarks.run --quick               # fewer samples (a smoke run)
    python -m benchmarks.run --only codec,coldstart

Benchmarks: ``latency`` (item 1), ``codec`` (2), ``coldstart`` (3), ``scale`` (4),
``handshake`` (5), ``recovery`` (issue 16). Results of benchmarks not selected are kept from earlier runs, so
RESULTS.md always shows every item with the command and time that produced it.
The reference client's venv is built on first use (``python -m benchmarks.refvenv``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from typing import Any

from benchmarks import machine, report

__all__ = ["main"]


def _command(argv: list[str]) -> str:
    return " ".join(["python -m benchmarks.run", *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description="thalovant benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer samples; a smoke run, not for RESULTS.md")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {','.join(report.ORDER)}")
    parser.add_argument("--no-report", action="store_true", help="write the JSON results only")
    parser.add_argument("--render-only", action="store_true", help="re-render RESULTS.md from the stored JSON")
    args = parser.parse_args(argv)
    if args.render_only:
        _write_report(machine.describe())
        return 0
    selected = [s.strip() for s in args.only.split(",") if s.strip()] or list(report.ORDER)
    unknown = [s for s in selected if s not in report.ORDER]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    info = machine.describe()
    command = _command(argv)
    report.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name in selected:
        module = report.ORDER[name][2]
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            result: dict[str, Any] = module.run(quick=args.quick)
        except Exception as exc:  # a broken benchmark is reported, the others still run
            failures += 1
            traceback.print_exc()
            result = {"name": name, "status": "error", "error": f"{type(exc).__name__}: {exc}"[-500:]}
        result.update(
            when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            command=command,
            quick=args.quick,
            machine=info,
            seconds=round(time.monotonic() - start, 1),
        )
        (report.RESULTS_DIR / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"[bench] {name}: {result['status']} in {result['seconds']} s", file=sys.stderr, flush=True)
    if not args.no_report:
        _write_report(info)
    return 1 if failures else 0


def _write_report(info: dict[str, Any]) -> None:
    results = report.load_results()
    # machine figures of the newest measured run, so a re-render does not claim a new run
    stored = [r["machine"] for r in results.values() if r.get("status") == "ok" and r.get("machine")]
    text = report.render(results, stored[-1] if stored else info)
    (report.RESULTS_DIR.parent / "RESULTS.md").write_text(text)
    print(f"[bench] wrote {report.RESULTS_DIR.parent / 'RESULTS.md'}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
