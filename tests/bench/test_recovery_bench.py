"""benchmarks/recovery.py's bookkeeping: statistics, verdicts against issue 16's targets, rendering (no hub)."""

from __future__ import annotations

from typing import Any

from benchmarks import recovery, report


def _row(generation: int, protocol: str, peer: list[float], ask: list[float], failures: list[str]) -> dict[str, Any]:
    return {
        "generation": generation,
        "protocol": protocol,
        "label": recovery.LABELS[protocol],
        "peer_s": peer,
        "ask_s": ask,
        "failures": failures,
        "peer": recovery._stats(peer),
        "ask": recovery._stats(ask),
    }


def _result(rows: list[dict[str, Any]], restarts: int = 3) -> dict[str, Any]:
    return {"name": "recovery", "status": "ok", "restarts": restarts, "rows": rows}


def test_a_cell_meets_the_target_only_with_every_restart_measured_median_1s_and_max_2s() -> None:
    result = _result(
        [
            _row(4, "wss", [0.4, 0.5, 0.9], [0.5, 0.6, 1.9], []),
            _row(4, "https", [0.4, 0.5, 2.1], [0.5, 0.6, 0.7], []),  # max over 2 s
            _row(4, "mqtt", [0.4, 1.2, 1.3], [0.5, 1.1, 1.2], []),  # median over 1 s
            _row(5, "wss", [0.4, 0.5, 0.6], [0.5, 0.6], ["restart 2: ask ThalovantTimeoutError"]),
            {"generation": 5, "protocol": "mqtt", "label": "MQTT", "skipped": "no MQTT on hub 5.x"},
            {"generation": 5, "protocol": "https", "label": "HTTP", "error": "RuntimeError: x"},
        ]
    )
    verdicts = {target: verdict for target, _, verdict in recovery.target_rows(result)}
    assert verdicts["recovery hub 4.x WebSocket: median ≤ 1.0 s, max ≤ 2.0 s"] == "met"
    assert verdicts["recovery hub 4.x HTTP: median ≤ 1.0 s, max ≤ 2.0 s"] == "**not met**"
    assert verdicts["recovery hub 4.x MQTT: median ≤ 1.0 s, max ≤ 2.0 s"] == "**not met**"
    assert verdicts["recovery hub 5.x WebSocket: median ≤ 1.0 s, max ≤ 2.0 s"] == "**not met**"  # a failure
    assert verdicts["recovery hub 5.x HTTP: median ≤ 1.0 s, max ≤ 2.0 s"] == "**not met**"
    assert len(verdicts) == 5  # the skipped cell has no target row


def test_render_shows_every_cell_and_the_report_lists_recovery() -> None:
    result = _result([_row(4, "wss", [0.4, 0.5, 0.9], [0.5, 0.6, 1.9], []), _row(4, "mqtt", [], [], ["boom | x"])])
    text = "\n".join(recovery.render(result))
    assert "| 4.x | WebSocket | 0.5 / 0.9 s (n=3) | 0.6 / 1.9 s (n=3) | 0 |" in text
    assert "boom / x" in text and "(n=0)" in text
    assert recovery.render({"status": "not-run", "note": "later"}) == ["**Not run.** later"]
    assert report.ORDER["recovery"][2] is recovery
    rows = report.targets({"recovery": result})
    assert any(t.startswith("recovery hub 4.x WebSocket") for t, _, _ in rows)
