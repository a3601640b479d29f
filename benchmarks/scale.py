"""Item 4: N concurrent async clients against the real hub. NOT IMPLEMENTED YET.

Same hook contract as :mod:`benchmarks.latency`: ``run(quick=...) -> dict`` with ``name``,
``status`` and the figures; ``render(result) -> list[str]`` of Markdown lines.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render", "run"]


def run(*, quick: bool = False) -> dict[str, Any]:
    """Report honestly that nothing was measured."""
    return {
        "name": "scale",
        "status": "not-run",
        "note": "The concurrent-clients benchmark needs the finished async client",
    }


def render(result: dict[str, Any]) -> list[str]:
    """Markdown for RESULTS.md."""
    return [f"**Not run yet.** {result.get('note', '')}"]
