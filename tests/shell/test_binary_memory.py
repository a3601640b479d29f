"""Binary frames through the blocking client and ``transport=MemoryHub()`` on every protocol and hub generation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import pytest

import thalovant
from tests.shell.test_memory_link import identity, soon
from thalovant import AsyncThalovantAgent, ThalovantAgent, ThalovantBinary, ThalovantClient
from thalovant.shell.recording import TraceWriter, replay_file
from thalovant.testing import MemoryHub

WAIT = 5.0


@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
@pytest.mark.parametrize("generation", [1, 3])
def test_binary_both_ways_on_every_protocol_and_generation(protocol: str, generation: int, tmp_path: Path) -> None:
    hub = MemoryHub(generation=generation)
    with ThalovantClient(identity(protocol), transport=hub, protocol=protocol) as client:
        clips = client.listen_binary("tts_audio", max_events=1, timeout=WAIT)
        hub.push_binary(b"RIFF" + bytes(range(256)), "tts_audio", {"utterance": "hi", "lang": "en-US"})
        got = list(clips)
        if protocol == "https" and generation == 1:
            with pytest.raises(thalovant.ThalovantBinaryUnsupportedError):
                client.send_audio(b"\x00\x00" * 4)
        else:
            client.send_audio(b"\x00\x00" * 4, lang="en-US")
            (tmp_path / "a.txt").write_bytes(b"file")
            client.send_file(tmp_path / "a.txt")
        client.ask("sync")  # the hub has handled every frame sent before this turn
    assert [(b.kind, b.data[:4], b.utterance) for b in got] == [("tts_audio", b"RIFF", "hi")]
    sent = [(b.kind, b.data, dict(b.metadata)) for b in hub.received_binary]
    if protocol == "https" and generation == 1:
        assert sent == []
    else:
        assert sent == [
            ("raw_audio", b"\x00\x00" * 4, {"sample_rate": 16000, "sample_width": 2, "lang": "en-US"}),
            ("file", b"file", {"file_name": "a.txt"}),
        ]


def test_on_binary_runs_in_a_worker_thread_that_may_call_the_client() -> None:
    hub = MemoryHub()
    with ThalovantClient(identity("wss"), transport=hub) as client:
        done = threading.Event()
        threads: list[str] = []
        answers: list[str] = []

        def on_clip(binary: ThalovantBinary) -> None:
            threads.append(threading.current_thread().name)
            answers.append(client.ask(f"got {binary.kind}").text)  # blocking inside the handler is fine
            done.set()

        sub = client.on_binary(on_clip, kind="tts_audio")
        hub.push_binary(b"clip")
        assert done.wait(WAIT)
        sub.close()
        assert sub.handled == 1
    assert answers == ["echo: got tts_audio"] and threads[0] != threading.main_thread().name


def test_the_sync_agent_handles_binary_frames_with_a_decorator() -> None:
    hub = MemoryHub()
    agent = ThalovantAgent(identity("wss"), transport=hub)
    clips: list[bytes] = []
    everything: list[str] = []
    both = threading.Event()

    @agent.on_binary(kind="tts_audio")
    def on_clip(binary: ThalovantBinary) -> None:
        clips.append(binary.data)

    @agent.on_binary
    def on_any(binary: ThalovantBinary) -> None:
        everything.append(binary.kind)
        if len(everything) == 2:
            both.set()

    runner = threading.Thread(target=agent.run_forever, kwargs={"handle_signals": False, "check_interval": 0.05})
    runner.start()
    deadline = time.monotonic() + WAIT
    while len(agent.subscriptions) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    hub.push_binary(b"a file", "file", {"file_name": "f.txt"})
    hub.push_binary(b"a clip", "tts_audio")
    assert both.wait(WAIT)
    agent.stop()
    runner.join(WAIT)
    assert not runner.is_alive() and clips == [b"a clip"] and everything == ["file", "tts_audio"]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_the_async_agent_handles_binary_frames(anyio_backend: str) -> None:
    hub = MemoryHub()
    agent = AsyncThalovantAgent(identity("https"), transport=hub)
    clips: list[str | None] = []

    @agent.on_binary(kind=["tts_audio"])
    async def on_clip(binary: ThalovantBinary) -> None:
        clips.append(binary.utterance)
        agent.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: agent.run_forever(handle_signals=False, check_interval=0.05))
        await soon(lambda: bool(agent.subscriptions))
        hub.push_binary(b"RIFF", "tts_audio", {"utterance": "polled"})  # HTTP: delivered at the next poll
    assert clips == ["polled"]


def test_a_session_with_binary_frames_records_and_replays(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    writer = TraceWriter(path)
    hub = MemoryHub()
    with ThalovantClient(identity("wss"), transport=hub, trace=writer) as client:
        clips = client.listen_binary(max_events=1, timeout=WAIT)
        hub.push_binary(b"clip\x00\xff", "tts_audio", {"utterance": "x"})
        assert [b.data for b in clips] == [b"clip\x00\xff"]
        client.send_audio(b"\x00\x01" * 10)
        client.ask("fence")
    writer.close()
    report, _ = replay_file(path)
    assert report.ok and report.steps > 5


def test_a_0_4_7_bus_transport_cannot_carry_binary_frames() -> None:
    from tests.shell.test_bus_transport import IDENTITY, FakeTransport

    transport = FakeTransport()
    with ThalovantClient(IDENTITY, transport=transport) as client:
        with pytest.raises(thalovant.ThalovantBinaryUnsupportedError):
            client.send_file(b"x", file_name="x.txt")
        assert client.ask("still fine").text == "hello from hub"
    assert [e[0] for e in transport.emitted] == ["recognizer_loop:utterance"]
