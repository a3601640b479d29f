"""``transport=MemoryHub()``: the public classes run their real core against the in-memory hub.

Handshake (v1 password or pre-shared key, v3 Noise), encryption, correlation and reconnects all run
as over a network; only the network is in memory. Each protocol (WebSocket, HTTP polling, MQTT) is
emulated, time is the event loop's (trio's ``MockClock`` or ``thalovant.shell.virtual_time`` make it
virtual), and a session recorded through the same seam replays identically.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio.testing

import thalovant
from thalovant import (
    AsyncThalovantAgent,
    AsyncThalovantClient,
    ThalovantAgent,
    ThalovantClient,
    ThalovantConnectionError,
    ThalovantPolicyDenied,
    ThalovantTimeoutError,
)
from thalovant.cli import main
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.wire.message import BusMessage
from thalovant.shell.recording import TraceWriter, replay_file
from thalovant.shell.virtual_time import VirtualTimeLoop
from thalovant.testing import FakeHub, MemoryHub, replay_connection

WAIT = 5.0
FAST = ReconnectConfig(base=0.01, cap=0.05)


def identity(protocol: str = "https", **extra: Any) -> dict[str, Any]:
    mapping: dict[str, Any] = {
        "access_key": "memory-access-key-0123",
        "password": "memory-password-0123",
        "default_master": "https://hub.example.invalid",
        "site_id": "den",
        "protocols": {protocol: True},
        **extra,
    }
    if protocol == "mqtt":
        mapping["mqtt"] = {"endpoint": "mqtts://broker.invalid", "username": "u", "password": "broker-pw"}
        mapping["mqtt"]["topic_prefix"] = "hivemind/den-hub"
    return mapping


@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
@pytest.mark.parametrize("generation", [1, 3])
def test_the_blocking_client_over_every_protocol_and_handshake(protocol: str, generation: int) -> None:
    hub = MemoryHub(generation=generation)
    with ThalovantClient(identity(protocol), transport=hub, protocol=protocol) as client:
        assert client.protocol == protocol
        assert client.ask("hello").text == "echo: hello"
        health = client.healthcheck()
    assert health.ok and health.generation == generation
    assert hub.received_types() == ["recognizer_loop:utterance"] and hub.connections == 1


def test_a_pre_shared_key_identity() -> None:
    hub = MemoryHub()
    with ThalovantClient(identity("wss", password=None, crypto_key="0123456789abcdef"), transport=hub) as client:
        assert client.ask("psk").text == "echo: psk"


def test_hub_actions_from_the_test_thread() -> None:
    hub = MemoryHub()
    with ThalovantClient(identity("wss"), transport=hub, reconnect=FAST) as client:
        heard = client.listen("speak", max_events=1, timeout=WAIT)
        hub.push("speak", {"utterance": "the hub speaks first"})
        assert [e.text for e in heard] == ["the hub speaks first"]
        hub.drop_link()  # noticed before the next call: the ask waits for the reconnect
        assert client.ask("still there?").text == "echo: still there?"
        assert client.healthcheck().reconnects == 1
        with pytest.raises(ThalovantPolicyDenied):
            client.ask("deny")
    assert hub.connections == 2


def test_a_handler_may_drive_the_hub_and_the_client() -> None:
    hub = MemoryHub()
    answers: list[str] = []
    with ThalovantClient(identity("wss"), transport=hub) as client:
        done = threading.Event()

        def on_cue(event: thalovant.ThalovantEvent) -> None:  # a worker thread: it may block on the client
            answers.append(client.ask(event.data["say"]).text)
            done.set()

        client.on("cue", on_cue)
        hub.push("cue", {"say": "from a handler"})
        assert done.wait(WAIT)
    assert answers == ["echo: from a handler"]


def test_a_hub_that_knows_another_key_refuses_the_client() -> None:
    hub = MemoryHub(access_key="someone-else")
    client = ThalovantClient(identity("https"), transport=hub, auto_reconnect=False, connect_timeout=2)
    with pytest.raises(ThalovantConnectionError):
        client.connect()
    hub = MemoryHub(FakeHub(password="not-the-clients"))
    client = ThalovantClient(identity("wss"), transport=hub, auto_reconnect=False, connect_timeout=2)
    with pytest.raises(ThalovantConnectionError):
        client.connect()


def test_conversations_and_the_sync_agent() -> None:
    hub = MemoryHub()
    agent = ThalovantAgent(identity("wss"), transport=hub)
    heard: list[str] = []

    @agent.on("note")
    def on_note(event: thalovant.ThalovantEvent) -> None:
        heard.append(event.data["text"])
        agent.stop()

    runner = threading.Thread(target=agent.run_forever, kwargs={"handle_signals": False, "check_interval": 0.05})
    runner.start()
    deadline = time.monotonic() + WAIT
    while not agent.subscriptions and time.monotonic() < deadline:
        time.sleep(0.005)
    with agent.client.conversation(session_id="talk-1") as convo:
        reply = convo.ask("remember me")
    hub.push("note", {"text": "stop now"})
    runner.join(WAIT)
    assert not runner.is_alive() and heard == ["stop now"]
    assert reply.text == "echo: remember me" and reply.session_id == "talk-1"


def test_record_through_the_seam_and_replay(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    writer = TraceWriter(path)
    with ThalovantClient(identity("https"), transport=MemoryHub(), trace=writer) as client:
        client.ask("record me")
    writer.close()
    report, _ = replay_file(path)
    assert report.ok and report.steps > 5
    assert replay_connection(path).ok


def test_the_cli_against_the_in_memory_hub(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(identity("wss")), "utf-8")
    path.chmod(0o600)
    hub = MemoryHub()
    cassette = tmp_path / "ask.jsonl"
    runs = (
        (["ask", "hello"], 0, "echo: hello"),
        (["--json", "ask", "multi"], 0, '"text": "echo: multi (1/2) echo: multi (2/2)"'),
        (["ask", "deny"], 1, ""),
        (["doctor"], 0, "Thalovant doctor: ok"),
        (["record", str(cassette), "--", "ask", "taped"], 0, "echo: taped"),
        (["replay", str(cassette)], 0, "identical"),
    )
    for argv, code, printed in runs:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["-i", str(path), *argv], transport=hub) == code, argv
        assert printed in out.getvalue(), (argv, out.getvalue())
    assert hub.received_types().count("recognizer_loop:utterance") == 4


# ---- async, on a real and on a virtual clock ---------------------------------------------------------


async def soon(condition: Any) -> None:
    """Wait (polling, bounded in count and time) until ``condition()`` holds."""
    for _ in range(int(WAIT / 0.005)):
        if condition():
            return
        await anyio.sleep(0.005)
    raise AssertionError("the condition never held")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_the_async_client_and_its_conversation() -> None:
    hub = MemoryHub()
    async with AsyncThalovantClient(identity("mqtt"), transport=hub, protocol="mqtt") as client:
        async with client.conversation(session_id="a-1") as convo:
            assert (await convo.ask("async")).text == "echo: async"
        listener = client.listen("speak", max_events=1, timeout=WAIT)
        hub.push("speak", {"utterance": "mqtt push"})
        assert [e.text async for e in listener] == ["mqtt push"]


@pytest.mark.anyio
async def test_the_async_agent() -> None:
    hub = MemoryHub()
    agent = AsyncThalovantAgent(identity("https"), transport=hub)
    heard: list[str] = []

    @agent.on_speak
    async def on_speak(event: thalovant.ThalovantEvent) -> None:
        heard.append(event.text)
        agent.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: agent.run_forever(handle_signals=False, check_interval=0.05))
        await soon(lambda: bool(agent.subscriptions))
        hub.push("speak", {"utterance": "polled"})  # HTTP: delivered at the next poll
    assert heard == ["polled"]


VIRTUAL = {
    "trio": lambda: {"clock": trio.testing.MockClock(autojump_threshold=0)},
    "asyncio": lambda: {"loop_factory": VirtualTimeLoop},
}


def _virtual(fn: Any, backend: str) -> tuple[Any, float, float]:
    """Run ``fn`` on virtual time: (result, virtual seconds, real seconds)."""
    real = time.monotonic()

    async def timed() -> tuple[Any, float]:
        start = anyio.current_time()
        result = await fn()
        return result, anyio.current_time() - start

    result, virtual = anyio.run(timed, backend=backend, backend_options=VIRTUAL[backend]())
    return result, virtual, time.monotonic() - real


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_virtual_clock_makes_timeouts_and_backoff_instant(backend: str) -> None:
    hub = MemoryHub()

    async def scenario() -> list[str]:
        seen: list[str] = []
        async with AsyncThalovantClient(identity("wss"), transport=hub, reconnect=ReconnectConfig(base=4, cap=8)) as c:
            with pytest.raises(ThalovantTimeoutError):
                await c.ask("silent", timeout=30)  # the hub never answers "silent"
            seen.append("timed out")
            hub.drop_link()
            seen.append((await c.ask("after the drop", timeout=60)).text)
        return seen

    seen, virtual, real = _virtual(scenario, backend)
    assert seen == ["timed out", "echo: after the drop"]
    assert virtual >= 30 and real < 5, (virtual, real)


def test_memory_hub_builds_its_hub_from_the_first_client() -> None:
    def pong(request: BusMessage) -> list[BusMessage]:  # a reply keeps the request's context (its request id)
        return [BusMessage(type="speak", data={"utterance": "pong"}, context=request.context)]

    hub = MemoryHub(behaviours={"ping": pong})
    assert hub.hub is None and hub.received == [] and hub.connections == 0
    hub.push("speak", {})  # no client yet: nothing happens, nothing raises
    with ThalovantClient(identity("wss"), transport=hub) as client:
        assert client.ask("ping", timeout=0.5).text == "pong"  # no "handled": the speech is returned at the deadline
    assert hub.hub is not None and hub.attached == 1 and "MemoryHub" in repr(hub)
    with pytest.raises(ValueError):
        MemoryHub(generation=2)
