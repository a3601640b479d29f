"""`make demo`: show thalovant working on this machine (grows with the SDK)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    exe = Path(sys.executable).parent / "thalovant"
    print("[demo] thalovant --version")
    subprocess.run([str(exe), "--version"], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
