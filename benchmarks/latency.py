"""Item 1: ask latency on the real local hub per transport (WS, HTTP, MQTT). NOT IMPLEMENTED YET.

Plan (for whoever fills this in once the client is ready): p50/p95 of 50 sequential asks on one
connection per transport, for thalovant, the reference 0.4.7 (``benchmarks.refvenv``; with its
defaults and with its settle wait off) and a floor, against the hub started by
``tests/harness``. ``run`` must return ``{"name": "latency", "status": "ok", ...}`` and
``render`` the Markdown lines, like :mod:`benchmarks.codec`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render", "run"]


def run(*, quick: bool = False) -> dict[str, Any]:
    """Report honestly that nothing was measured."""
    return {
        "name": "latency",
        "status": "not-run",
        "note": "The ask-latency benchmark needs the finished client and is still to be written",
    }


def render(result: dict[str, Any]) -> list[str]:
    """Markdown for RESULTS.md."""
    return [f"**Not run yet.** {result.get('note', '')}"]
