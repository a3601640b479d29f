"""Timing and statistics helpers (stdlib only: the reference-venv worker imports this file too).

A *sample* is the mean time of one op over a small batch, so that ops of a few
microseconds are not lost in ``perf_counter`` resolution; medians and p95 are
taken over samples. The garbage collector is left on (users run with it on),
but one collection runs before each measurement so that earlier garbage is not
billed to the next contender.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["batch_size_for", "measure", "percentile", "summarize"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(samples: Sequence[float]) -> dict[str, Any]:
    """Median, p95, mean, min and count of a list of per-op times (seconds)."""
    return {
        "median": statistics.median(samples),
        "p95": percentile(samples, 95),
        "mean": statistics.fmean(samples),
        "min": min(samples),
        "n": len(samples),
    }


def batch_size_for(fn: Callable[[], object], *, target: float = 0.002, cap: int = 1000) -> int:
    """How many calls of ``fn`` take about ``target`` seconds (at least 1, at most ``cap``)."""
    fn()  # warm caches, imports, lazy objects
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(cap, int(target / once)))


def measure(fn: Callable[[], object], *, samples: int, batch: int | None = None, warmup: int = 3) -> dict[str, Any]:
    """Time ``fn``: ``samples`` batches of ``batch`` calls; returns ``summarize`` of per-call seconds."""
    if batch is None:
        batch = batch_size_for(fn)
    for _ in range(warmup):
        fn()
    gc.collect()
    per_call: list[float] = []
    clock = time.perf_counter
    for _ in range(samples):
        start = clock()
        for _ in range(batch):
            fn()
        per_call.append((clock() - start) / batch)
    result = summarize(per_call)
    result["batch"] = batch
    return result
