"""Agents on the real hub: every event is handled exactly once, across two hub restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from tests.live.pipe_lines import PipeLines
from tests.paths import ROOT
from thalovant import ThalovantEvent
from thalovant.shell.agent import AsyncThalovantAgent
from thalovant.shell.sync.agent import ThalovantAgent


def _reconnect_kwargs() -> dict[str, Any]:
    from thalovant.core.client.reconnect import ReconnectConfig

    return {"reconnect": ReconnectConfig(base=0.2, cap=1.0), "connect_timeout": 20.0}


def _until(condition: Callable[[], bool], limit: float, step: Callable[[], None] | None = None) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        if step is not None:
            step()
        time.sleep(0.3)
    return condition()


def _phase(real_hub: Any, seen: Counter[str], lock: threading.Lock, phase: int, limit: float = 45) -> list[str]:
    """Wait until the agent hears the hub again (probes), then push five fresh events once each."""

    def heard_probe() -> bool:
        with lock:
            return any(k.startswith(f"probe-{phase}-") for k in seen)

    probes = iter(range(1000))
    assert _until(
        heard_probe, limit, lambda: real_hub.push_event("speak", {"utterance": f"probe-{phase}-{next(probes)}"})
    )
    wanted = [f"event-{phase}-{n}" for n in range(5)]
    for text in wanted:
        assert real_hub.push_event("speak", {"utterance": text}), "no peer connected"

    def all_seen() -> bool:
        with lock:
            return all(seen[w] >= 1 for w in wanted)

    assert _until(all_seen, 20)
    return wanted


# MQTT: the broker link survives a hub restart; the client's keep-alive makes the restarted hub
# re-greet it and the session starts over (see core.session, "hub-reset").
@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
def test_sync_agent_handles_each_event_once_across_two_hub_restarts(real_hub: Any, protocol: str) -> None:
    if protocol == "mqtt" and not real_hub.mqtt_available:
        pytest.skip(real_hub.mqtt_unavailable_reason)
    keepalive = 2.0 if protocol == "mqtt" else None  # notice a restarted hub within 2 s, not 15 s
    agent = ThalovantAgent.from_identity_file(
        real_hub.identity_path("psk"), protocol=protocol, keepalive=keepalive, **_reconnect_kwargs()
    )
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    nested: list[str] = []

    @agent.on_speak
    def on_speak(event: ThalovantEvent) -> None:
        with lock:
            seen[event.text] += 1
        if event.text == "boom":
            raise RuntimeError("a handler bug")  # logged; the agent keeps running
        if event.text == "ask-back":
            nested.append(agent.client.ask("from a handler").text)  # handlers may call the client

    runner = threading.Thread(target=agent.run_forever, name="agent", daemon=True)
    runner.start()
    try:
        checked: list[str] = []
        for phase in range(3):
            if phase:
                real_hub.restart_hub()
            checked += _phase(real_hub, seen, lock, phase, limit=15 if protocol == "mqtt" else 45)
        real_hub.push_event("speak", {"utterance": "boom"})
        real_hub.push_event("speak", {"utterance": "ask-back"})
        assert _until(lambda: bool(nested), 30)
        time.sleep(1.0)  # late duplicates would show up now
        with lock:
            assert {k: seen[k] for k in checked} == dict.fromkeys(checked, 1)
            assert seen["boom"] == 1
        assert nested == ["echo: from a handler"]
        assert agent.running
    finally:
        agent.stop()
        runner.join(20)
    assert not runner.is_alive()
    assert not agent.running


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_async_agent_handles_each_event_once_across_two_hub_restarts(real_hub: Any) -> None:
    agent = AsyncThalovantAgent.from_identity_file(real_hub.identity_path("psk2"), **_reconnect_kwargs())
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    replies: list[str] = []
    replied = anyio.Event()
    finished = anyio.Event()

    async def run() -> None:
        await agent.run_forever(handle_signals=False)
        finished.set()

    @agent.on("speak")
    async def on_speak(event: ThalovantEvent) -> None:
        with lock:
            seen[event.text] += 1
        if event.text == "boom":
            raise RuntimeError("a handler bug")
        if event.text == "ask-back":
            replies.append((await agent.client.ask("async handler")).text)
            replied.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        checked: list[str] = []
        for phase in range(3):
            if phase:
                # on this (main) thread: the harness starts the hub with PR_SET_PDEATHSIG, which fires when
                # the *thread* that spawned it ends, so a worker thread would take the new hub down with it
                real_hub.restart_hub()  # blocking on purpose, see above
            checked += await anyio.to_thread.run_sync(_phase, real_hub, seen, lock, phase)
        await anyio.to_thread.run_sync(lambda: real_hub.push_event("speak", {"utterance": "boom"}))
        await anyio.to_thread.run_sync(lambda: real_hub.push_event("speak", {"utterance": "ask-back"}))
        with anyio.fail_after(30):
            await replied.wait()
        await anyio.sleep(1.0)
        with lock:
            assert {k: seen[k] for k in checked} == dict.fromkeys(checked, 1)
            assert seen["boom"] == 1
        assert replies == ["echo: async handler"]
        threading.Thread(target=agent.stop).start()  # stop() from another thread
        with anyio.fail_after(20):
            await finished.wait()
        assert not agent.running


AGENT_SCRIPT = """
import sys
import anyio
from thalovant.shell.agent import AsyncThalovantAgent
from thalovant.shell.sync.agent import ThalovantAgent

kind, path = sys.argv[1], sys.argv[2]
if kind == "async":
    agent = AsyncThalovantAgent.from_identity_file(path)

    @agent.on_speak
    async def heard(event):
        print("heard", event.text, flush=True)

    anyio.run(agent.run_forever)
else:
    agent = ThalovantAgent.from_identity_file(path)

    @agent.on_speak
    def heard(event):
        print("heard", event.text, flush=True)

    agent.run_forever()
print("stopped", agent.stopped_by, flush=True)
"""


@pytest.mark.parametrize(
    ("kind", "signum"),
    [("async", signal.SIGTERM), ("async", signal.SIGINT), ("sync", signal.SIGTERM), ("sync", signal.SIGINT)],
)
def test_agent_process_stops_cleanly_on_signals(real_hub: Any, kind: str, signum: int) -> None:
    root = ROOT
    proc = subprocess.Popen(
        [sys.executable, "-c", AGENT_SCRIPT, kind, str(real_hub.identity_path("psk"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    try:
        assert proc.stdout is not None
        lines = PipeLines(proc.stdout)  # not select + readline: a buffered line is invisible to select

        def heard() -> bool:
            return lines.wait_for("heard", 0.2)

        assert _until(heard, 30, lambda: real_hub.push_event("speak", {"utterance": "are you there"}))
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"stopped {int(signum)}" in out
    assert "Traceback" not in err
