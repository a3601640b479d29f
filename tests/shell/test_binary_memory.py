"""Binary frames through the blocking client and ``transport=MemoryHub()`` on every protocol and hub generation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import thalovant
from tests.shell.test_memory_link import identity
from thalovant import ThalovantBinary, ThalovantClient
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
