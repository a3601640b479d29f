"""The fuzz run of ``make fuzz``, small: every target gets generated inputs and none may raise."""

from __future__ import annotations

from tests.fuzz.fuzz import run


def test_a_short_fuzz_run_finds_no_untyped_exception() -> None:
    targets = run(4000, seed=7, budget=90.0)
    assert all(t.inputs > 0 for t in targets)
    findings = {t.name: t.examples for t in targets if t.findings}
    assert findings == {}, findings
