"""pytest plugin: fixtures for tests against a real HiveMind hub on loopback (see ``tests/harness``).

Register it once for the whole tree with ``pytest_plugins = ["tests.harness.pytest_plugin"]`` in the
root ``tests/conftest.py``; ``tests/live/conftest.py`` loads it itself when that is missing.

``real_hub`` (hivemind-core 4.0.0) and ``real_hub_v3`` (hivemind-core 5.x, Noise) are session-scoped
``TestHub`` objects.  Each pytest session gets its own run directory and free ports, so parallel
sessions on one machine do not meet.  If the machine cannot install the hub (no package index...),
the fixture skips with the exact reason; a harness bug fails.  ``real_hub_mqtt`` is ``real_hub`` but
skips when mosquitto is unavailable.

Tests that use a hub fixture are marked ``hub`` automatically.  Set ``THALOVANT_TEST_HUB_KEEP=1``
to keep the run directory (configs, logs, identities) after the session; it is always kept, and
its path printed, when a test failed.  The summary prints install/start/stop times and memory.
"""

from __future__ import annotations

import atexit
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import procs
from tests.harness.hub import TestHub
from tests.harness.install import HUB4, HUB5, Flavour, HarnessUnavailable, harness_home

_REPORT: list[str] = []
_HUB_FIXTURES = ("real_hub", "real_hub_v3")


def _prune_orphans(runs: Path) -> None:
    """Stop the processes of run directories whose pytest process is gone; delete such directories after a day.

    (A directory kept for a failed session stays a day, so its logs can still be read.)
    """
    if not runs.is_dir():
        return
    for run in runs.iterdir():
        owner = run.name.split("-", 1)[0]
        if not owner.isdigit() or Path(f"/proc/{owner}").exists() or not (run / ".thalovant-test-hub").exists():
            continue
        procs.ProcessTable(run).stop_all()
        if time.time() - run.stat().st_mtime > 86_400:
            shutil.rmtree(run, ignore_errors=True)


def _hub_session(request: pytest.FixtureRequest, flavour: Flavour) -> Iterator[TestHub]:
    runs = harness_home() / "runs"
    _prune_orphans(runs)
    run_dir = runs / f"{os.getpid()}-{flavour.name}"
    hub = TestHub(flavour, run_dir, bound_to_parent=True)
    atexit.register(hub.stop)
    t0 = time.monotonic()
    try:
        hub.start()
    except HarnessUnavailable as exc:
        hub.stop()
        pytest.skip(f"real hub ({flavour.name}) unavailable on this machine: {exc}")
    started = time.monotonic() - t0
    try:
        yield hub
    finally:
        rss = hub.memory_kib()
        hub.stop()
        atexit.unregister(hub.stop)
        t = hub.timings
        _REPORT.append(
            f"{flavour.name}: install {t.install:.1f}s ({'cached' if t.install_cached else 'cold'}), "
            f"start {started - t.install:.1f}s "
            f"({', '.join(f'{k} {v:.2f}s' for k, v in t.start.items())}), stop {t.stop:.2f}s, "
            f"RSS {sum(rss.values()) / 1024:.0f} MiB ({', '.join(f'{k} {v // 1024}' for k, v in rss.items())})"
        )
        failed = request.session.testsfailed > 0
        if failed or os.environ.get("THALOVANT_TEST_HUB_KEEP") == "1":
            _REPORT.append(f"{flavour.name}: run directory kept at {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def real_hub(request: pytest.FixtureRequest) -> Iterator[TestHub]:
    """hivemind-core 4.0.0 with WebSocket, HTTP and (when mosquitto is available) MQTT."""
    yield from _hub_session(request, HUB4)


@pytest.fixture(scope="session")
def real_hub_v3(request: pytest.FixtureRequest) -> Iterator[TestHub]:
    """hivemind-core 5.x (protocol v3, Noise) with WebSocket and HTTP."""
    yield from _hub_session(request, HUB5)


@pytest.fixture
def real_hub_mqtt(real_hub: TestHub) -> TestHub:
    """``real_hub``, skipping the test when mosquitto is not available."""
    if not real_hub.mqtt_available:
        pytest.skip(f"MQTT unavailable: {real_hub.mqtt_unavailable_reason}")
    return real_hub


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names: Any = getattr(item, "fixturenames", ())
        if any(name in names for name in (*_HUB_FIXTURES, "real_hub_mqtt")):
            item.add_marker(pytest.mark.hub)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT:
        terminalreporter.write_sep("-", "real hub")
        for line in _REPORT:
            terminalreporter.write_line(line)


def private_hub(flavour: Flavour, tag: str) -> Iterator[TestHub]:
    """A hub of a test module's own (own run directory and ports), for tests that need a hub no other test
    has touched (e.g. fresh Noise pins); skips with the reason when the harness cannot be installed."""
    run_dir = harness_home() / "runs" / f"{os.getpid()}-{flavour.name}-{tag}"
    hub = TestHub(flavour, run_dir, bound_to_parent=True)
    try:
        hub.start()
    except HarnessUnavailable as exc:
        hub.stop()
        pytest.skip(f"real hub {flavour.name} unavailable: {exc}")
    try:
        yield hub
    finally:
        hub.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
