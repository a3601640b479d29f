"""The live-hub benchmarks' bookkeeping (latency, scale, floor helpers): statistics, verdicts, rendering.

No hub and no timing here: the benchmarks themselves run with ``python -m benchmarks.run``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import latency, report, scale
from benchmarks._livehub import summarize_ms


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=100.0, allow_nan=False), min_size=1, max_size=60))
def test_summary_orders_min_p50_p95_max_and_converts_to_ms(values: list[float]) -> None:
    s = summarize_ms(values)
    assert s["n"] == len(values)
    assert s["min"] <= s["p50"] <= s["max"] and s["min"] <= s["p95"] <= s["max"]
    assert s["min"] == pytest.approx(min(values) * 1000, abs=0.01)
    assert s["max"] == pytest.approx(max(values) * 1000, abs=0.01)


def test_summary_of_nothing_and_nearest_rank_p95() -> None:
    assert summarize_ms([]) == {"n": 0}
    s = summarize_ms([i / 1000 for i in range(1, 21)])  # 1..20 ms
    assert s["p50"] == 10.5 and s["p95"] == 19.0 and s["mean"] == 10.5


def _row(protocol: str, label: str, ours: float, floor: float, ref: float, ref0: float) -> dict[str, Any]:
    def entry(p50: float, **extra: Any) -> dict[str, Any]:
        stats = {"n": 50, "p50": p50, "p95": p50 * 1.1, "min": p50 * 0.9, "max": p50 * 1.2, "mean": p50}
        return {"connect_s": 0.1, "errors": [], "stats": stats, **extra}

    return {
        "protocol": protocol,
        "label": label,
        "contenders": {
            "thalovant": entry(ours),
            "floor": entry(floor, polls=123) if protocol == "https" else entry(floor),
            "reference": entry(ref, identity="wide.json", connect_failures=["x"]),
            "reference (settle 0)": entry(ref0, identity="wide.json"),
        },
    }


def _latency(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "latency", "status": "ok", "n": 50, "rows": rows, "hub_rss_kib": {"hub": 65536}, "hub_log": {}}


def test_latency_verdicts_use_5x_for_http_3x_for_the_others_and_1_2x_of_the_floor() -> None:
    result = _latency(
        [
            _row("wss", "WebSocket", ours=50, floor=45, ref=290, ref0=68),
            _row("https", "HTTP", ours=60, floor=59, ref=290, ref0=280),  # 4.8x: below 5x
            _row("mqtt", "MQTT", ours=120, floor=95, ref=400, ref0=100),  # 1.26x of the floor
        ]
    )
    rows = latency.target_rows(result)
    assert ("ask p50 WebSocket: ≥ 3x lower than the reference (defaults)", "5.8x", "met") in rows
    assert ("ask p50 WebSocket: ≤ 1.2x the floor", "1.11x", "met") in rows
    assert ("ask p50 HTTP: ≥ 5x lower than the reference (defaults)", "4.8x", "**not met**") in rows
    assert ("ask p50 MQTT: ≤ 1.2x the floor", "1.26x", "**not met**") in rows
    assert not any(t.startswith("ask p50 HTTP: ≤") for t, _, _ in rows)  # no floor target for HTTP


def test_latency_render_shows_failures_skips_and_ratios() -> None:
    broken = _row("wss", "WebSocket", ours=50, floor=45, ref=290, ref0=68)
    broken["contenders"]["reference"] = {"error": "RuntimeError: never connected | twice"}
    result = _latency([broken, {"protocol": "mqtt", "label": "MQTT", "skipped": "no mosquitto"}])
    text = "\n".join(latency.render(result))
    assert "| WebSocket | reference | failed |" in text and "never connected / twice" in text
    assert "(skipped: no mosquitto)" in text
    assert "| WebSocket | n/a | 1.4x | 1.11x |" in text  # reference failed, settle-0 and floor ratios still shown
    assert latency.target_rows(result)[0][1] == "reference did not run"
    assert latency.render({"name": "latency", "status": "not-run", "note": "later"}) == ["**Not run.** later"]


def test_latency_render_shows_the_hub_cost_of_sparse_asks() -> None:
    def cost(protocol: str, growth: float | None, cpu: float, requests: float) -> dict[str, Any]:
        return {"protocol": protocol, "hot_growth": growth, "gap_s": 1.2, "hub_cpu_ms_per_ask": cpu,
                "requests_per_ask": requests, "stats": summarize_ms([0.02])}  # fmt: skip

    result = _latency([_row("wss", "WebSocket", ours=50, floor=45, ref=290, ref0=68)])
    result["hub_cost"] = [cost("wss", None, 15.0, 0.0), cost("https", 1.0, 78.8, 178.2),
                          cost("https", None, 27.5, 28.9), {"error": "RuntimeError: x"}]  # fmt: skip
    text = "\n".join(latency.render(result))
    assert "| wss | - | 15.0 | 0.0 | 20.0 |" in text
    assert "| https | 1.0 | 78.8 | 178.2 | 20.0 |" in text
    assert "| https | default (1.2) | 27.5 | 28.9 | 20.0 |" in text
    assert "RuntimeError" not in text  # a failed measurement is left out, not shown as figures


def _scale_row(n: int, *, failed: int = 0) -> dict[str, Any]:
    ms = summarize_ms([0.05, 0.1])
    return {
        "n": n,
        "asks_each": 2,
        "connect": {"wall_s": 1.0, "ok": n - failed, "failed": failed, "per_s": 10.0, "each_ms": ms, "errors": []},
        "connect_cpu_share": {"hub": 0.7, "client (this process)": 0.2},
        "client_rss_kib": {"before": 40960, "after": 40960 + 60 * n},
        "per_client_kib": 60.0,
        "hub_rss_kib": {"before": 61440, "after": 62000, "after_asks": 63000},
        "asks": {"wall_s": 2.0, "ok": 2 * n, "failed": 0, "per_s": n, "each_ms": ms, "errors": []},
        "cpu_share": {"hub": 0.9, "bus": 0.03, "echo": 0.1, "client (this process)": 0.05},
    }


def test_scale_render_and_target_row_report_the_largest_completed_n() -> None:
    result = {
        "name": "scale",
        "status": "ok",
        "rows": [_scale_row(10), _scale_row(100), {"n": 500, "asks_each": 2, "error": "RuntimeError: x"}],
        "hub_log": {"errors": 0, "first": []},
    }
    text = "\n".join(scale.render(result))
    assert "| 100 | 1.0 | 10.0 |" in text and "| 500 | failed: RuntimeError: x |" in text
    assert "| 10 | 0.2 \\| 0.05 | 0.7 \\| 0.9 |" in text
    (row,) = scale.target_rows(result)
    assert row[1].startswith("up to N=100: 100 asks/s, 60.0 KiB/client")
    assert scale.target_rows({"rows": [{"n": 10, "error": "x"}]})[0][2] == "**not met**"


def test_the_report_still_renders_with_live_results() -> None:
    results = {
        "latency": _latency([_row("wss", "WebSocket", ours=50, floor=45, ref=290, ref0=68)]),
        "scale": {"name": "scale", "status": "ok", "rows": [_scale_row(10)], "hub_log": {}},
    }
    info = {"cpu": "X", "nproc": 2, "memory": "1 GiB", "os": "Linux", "loadavg": [0.1, 0.2, 0.3],
            "python": "3.11.7", "implementation": "CPython", "versions": {}, "git": "abc"}  # fmt: skip
    text = report.render(results, info)
    assert "## 1. Ask latency" in text and "| WebSocket | thalovant | 50.0 |" in text
    assert "## 4. Scale" in text and "| 10 | 1.0 | 10.0 |" in text
