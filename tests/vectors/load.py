"""Access to the copied protocol vectors (tests never read /work/shared)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent / "protocol-vectors.json"


@cache
def vectors() -> dict[str, Any]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))


def legacy() -> dict[str, Any]:
    return vectors()["legacy_v1"]


def live() -> dict[str, Any]:
    return vectors()["live_captures"]
