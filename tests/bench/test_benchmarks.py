"""The benchmark harness itself: statistics, workloads, round trips and the report (no timing asserts)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import codec, coldstart, handshake, refvenv, report
from benchmarks._timing import measure, percentile, summarize
from thalovant.core.wire.message import BusMessage

floats = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(floats, min_size=1, max_size=50), q=st.floats(min_value=0, max_value=100))
def test_percentile_lies_between_min_and_max_and_is_monotone_in_q(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert min(values) <= p <= max(values)
    assert percentile(values, 0) == min(values) and percentile(values, 100) == max(values)
    assert percentile(values, min(q + 10, 100)) >= p - 1e-9


def test_percentile_interpolates_and_summary_is_consistent() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    s = summarize([3.0, 1.0, 2.0, 10.0])
    assert s["median"] == statistics.median([3.0, 1.0, 2.0, 10.0]) == 2.5
    assert s["min"] == 1.0 and s["n"] == 4 and s["p95"] >= s["median"]
    with pytest.raises(ValueError):
        percentile([], 50)


def test_measure_calls_the_function_samples_times_batch_plus_warmup() -> None:
    calls = []
    result = measure(lambda: calls.append(1), samples=7, batch=3, warmup=2)
    assert len(calls) == 7 * 3 + 2 and result["n"] == 7 and result["batch"] == 3


@pytest.mark.parametrize(("label", "size"), codec.SIZES)
def test_workloads_have_the_exact_size_and_every_contender_gives_the_message_back(label: str, size: int) -> None:
    wl = codec.workload(size)
    expected = BusMessage(type=wl["type"], data=wl["data"], context=wl["context"])
    assert codec.ours_v1(wl)() == expected
    assert codec.ours_v3(wl)() == expected
    assert codec.floor_v1(wl)() == wl
    rt3 = codec.floor_v3(wl)
    assert rt3() == wl and rt3() == wl  # counters stay in step across calls (and across 65000-byte chunks)


def test_workload_refuses_a_size_below_the_smallest_message() -> None:
    with pytest.raises(ValueError, match="smallest"):
        codec.workload(10)


def test_in_memory_handshakes_reach_ready_without_sockets() -> None:
    assert handshake.v1_once(crypto_key=handshake.CRYPTO_KEY) > 0
    bench = handshake.NoiseBench()
    assert bench.once(cached_psk=True, pinned=False) > 0
    assert bench.hub.pinned_client is not None  # XX pinned the client, so KK is offered next
    assert bench.once(cached_psk=True, pinned=True) > 0


def test_refvenv_location_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("THALOVANT_BENCH_REF_VENV", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert refvenv.venv_dir() == tmp_path / "thalovant-bench" / "venv-ref"
    monkeypatch.setenv("THALOVANT_BENCH_REF_VENV", str(tmp_path / "elsewhere"))
    assert refvenv.ref_python() == tmp_path / "elsewhere" / "bin" / "python"
    pins = refvenv.constraints_path().read_text()
    assert "thalovant==0.4.7" in pins and "bitstring==4.4.0" in pins and "hivemind_bus_client==0.4.4" in pins


def _codec_result(ours: float, ref: float, floor: float) -> dict[str, object]:
    rows = []
    for label, _ in codec.SIZES:
        for impl, t in (("thalovant", ours), ("reference", ref), ("floor", floor)):
            rows.append({"proto": "v1", "size": label, "impl": impl, "median": t, "p95": t * 1.1, "n": 3})
    return {"name": "codec", "status": "ok", "rows": rows, "samples": 3}


def test_targets_judge_ratios_of_medians() -> None:
    good = report.targets({"codec": _codec_result(ours=10e-6, ref=30e-6, floor=8e-6)})
    assert ("codec 200 B: ≥ 2x the bus client", "3.00x", "met") in good
    assert ("codec 200 B: ≤ 1.5x the floor", "1.25x", "met") in good
    bad = report.targets({"codec": _codec_result(ours=10e-6, ref=15e-6, floor=5e-6)})
    assert ("codec 2 KB: ≥ 2x the bus client", "1.50x", "**not met**") in bad
    assert ("codec 2 KB: ≤ 1.5x the floor", "2.00x", "**not met**") in bad
    assert any(t.startswith("Ask latency") and m == "not run yet" for t, m, _ in bad)


def test_report_renders_every_item_even_when_some_are_missing_failed_or_not_run() -> None:
    cold = {
        "name": "coldstart",
        "status": "ok",
        "runs": 2,
        "rows": [
            {
                "case": "thalovant --help",
                "impl": "thalovant",
                "wall": summarize([0.02, 0.03]),
                "rss_kib": summarize([10240.0]),
            },
            {"case": "thalovant --help", "impl": "reference", "wall": summarize([0.1, 0.1]), "rss_kib": None},
        ],
    }
    results = {
        "codec": _codec_result(ours=10e-6, ref=30e-6, floor=8e-6),
        "coldstart": cold,
        "handshake": {"name": "handshake", "status": "error", "error": "RuntimeError: boom"},
        "latency": {"name": "latency", "status": "not-run", "note": "later"},
    }
    info = {
        "cpu": "X",
        "nproc": 2,
        "memory": "1 GiB",
        "os": "Linux",
        "loadavg": [0.1, 0.2, 0.3],
        "python": "3.11.7",
        "implementation": "CPython",
        "versions": {"thalovant": "0.1.0"},
        "git": "abc",
    }
    results["codec"]["command"] = "python -m benchmarks.run --only codec"
    text = report.render(results, info)
    assert "Produced by: `python -m benchmarks.run --only codec`" in text
    for heading in ("## 1. Ask latency", "## 2. Codec", "## 3. Cold start", "## 4. Scale", "## 5. Handshake"):
        assert heading in text
    assert "**Failed:** `RuntimeError: boom`" in text
    assert "Not run (no result file)." in text  # scale
    assert "| `thalovant --help` | 25 / 30 | 100 / 100 |" in text
    assert "0.25x" in text and "n/a" in text  # wall ratio known, RSS ratio unknown
    assert coldstart.render(cold)[0].startswith("Fresh process per run, 2 runs")


@pytest.mark.skipif(
    not (refvenv.ref_python().exists() and (refvenv.venv_dir() / ".thalovant-bench-ok").exists()),
    reason="reference venv not built (python -m benchmarks.refvenv); tests never build it",
)
def test_reference_worker_round_trips_the_same_workload_and_reports_versions() -> None:
    wl = codec.workload(200)
    answer = refvenv.run_worker(
        {"task": "codec", "key": codec.CRYPTO_KEY, "samples": 2, "workloads": [{"label": "200 B", **wl}]},
        timeout=120,
    )
    (row,) = answer["results"]
    assert row["label"] == "200 B" and row["n"] == 2 and row["median"] > 0
    assert row["wire_bytes"] > 2 * 200  # hex wrapper of the encrypted envelope
    assert answer["versions"]["thalovant"] == "0.4.7" and answer["versions"]["hivemind_bus_client"] == "0.4.4"
