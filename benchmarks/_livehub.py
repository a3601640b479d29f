"""A real hub 4.x (``tests.harness``) for the live benchmarks, always stopped, plus small shared helpers.

The hub runs from a fresh temporary run directory that is removed afterwards. Its access keys are
tuned for the reference client's user agent (``ThalovantPythonSDK/0.4.7``) so that the reference's
percent-encoded ``authorization`` token is the same as the raw one (harness pitfall P8); thalovant
sends the raw token, which works with any key.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["REF_USER_AGENT", "hub_log_problems", "live_hub", "summarize_ms"]

REF_USER_AGENT = "ThalovantPythonSDK/0.4.7"


@contextmanager
def live_hub(label: str) -> Iterator[Any]:
    """Start hub 4.x (WS, HTTP, MQTT) in a temporary run directory; stop it and remove the directory at exit."""
    from tests.harness.hub import HUB4, TestHub

    base = Path(tempfile.mkdtemp(prefix=f"thalovant-bench-{label}-"))
    hub = TestHub(HUB4, base / "run", user_agent=REF_USER_AGENT, bound_to_parent=True)
    try:
        hub.start()
        yield hub
    finally:
        try:
            hub.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def hub_log_problems(hub: Any, *, limit: int = 5) -> dict[str, Any]:
    """Count ERROR / Traceback / guard lines in the hub's log (and keep the first few)."""
    try:
        lines = (Path(hub.run_dir) / "logs" / "hub.log").read_text(errors="replace").splitlines()
    except OSError:
        return {"errors": None, "first": []}
    bad = [ln for ln in lines if "ERROR" in ln or "Traceback" in ln or "[harness guard]" in ln]
    return {"errors": len(bad), "first": [ln[-200:] for ln in bad[:limit]]}


def summarize_ms(seconds: list[float]) -> dict[str, Any]:
    """p50 / p95 / min / max / mean in milliseconds (p95 by nearest rank)."""
    if not seconds:
        return {"n": 0}
    ms = sorted(s * 1000.0 for s in seconds)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]
    return {
        "n": len(ms),
        "p50": round(statistics.median(ms), 2),
        "p95": round(p95, 2),
        "min": round(ms[0], 2),
        "max": round(ms[-1], 2),
        "mean": round(statistics.fmean(ms), 2),
    }
