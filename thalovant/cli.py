"""The ``thalovant`` command (skeleton: commands are filled in as the SDK grows).

Imports stay lazy so ``thalovant --help`` and ``--version`` are fast.
Exit codes: 0 success, 1 remote failure, 2 usage or identity error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_REMOTE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from thalovant._version import __version__

    parser = argparse.ArgumentParser(
        prog="thalovant",
        description="Talk to a HiveMind-protocol hub over WebSocket, HTTP polling or MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"thalovant {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    sub.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command == "version":
        from thalovant._version import __version__

        print(f"thalovant {__version__}")
        return EXIT_OK
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
