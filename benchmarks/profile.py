"""Profile thalovant's codec round trip with pyinstrument (a dev tool, not a project dependency).

Usage::

    python -m benchmarks.profile [--size 200] [--proto v1|v3] [--rounds 20000]

Writes ``benchmarks/results/profile-codec-<proto>-<size>.txt`` (the call tree as text) and
prints it. The findings and fixes are summarised in ``benchmarks/NOTES.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import codec

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("--size", type=int, default=200, help="bus message size in bytes")
    parser.add_argument("--proto", choices=("v1", "v3"), default="v1")
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed: pip install pyinstrument", file=sys.stderr)
        return 2
    wl = codec.workload(args.size)
    fn = codec.ours_v1(wl) if args.proto == "v1" else codec.ours_v3(wl)
    rounds = max(1, min(args.rounds, 1_000_000))
    profiler = Profiler(interval=0.0001)
    profiler.start()
    for _ in range(rounds):
        fn()
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=True)
    out = Path(__file__).resolve().parent / "results" / f"profile-codec-{args.proto}-{args.size}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
