"""Binary frames both ways against the real hubs 4.x and 5.x, on every transport (issue 14).

Hub → client: hivemind-core sends BINARY only for a binary-data plugin (TTS, files); the harness's push
hook (``tests/harness/binary.py``) makes the hub send one through the same ``client.send`` a plugin
uses, sealed and framed by the hub's own code (hub 4.x: an encrypted bitstring, a binary WebSocket
frame, ``b64_messages`` over HTTP, a raw MQTT payload; hub 5.x: Noise frames, chunked above 65000 bytes).

Client → hub: the hub hands each BINARY frame, after its checks, to its binary-data plugin; the
harness's probe records what that plugin got (size, sha256, metadata). Hub 4.x cannot take binary
over HTTP (its form decoder wants text): there the client raises ``ThalovantBinaryUnsupportedError``
before sending anything, and the session goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import thalovant
from tests.harness.binary import HANDLERS, binary_record, push_binary, wait_binary
from tests.live.live_support import hub_of_generation, in_thread, need_protocol, tag
from tests.paths import ROOT
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.client_binary import HUB4_WS_MAX_PAYLOAD

pytestmark = pytest.mark.timeout(120)

CELLS = [("hub4", "wss"), ("hub4", "https"), ("hub4", "mqtt"), ("hub5", "wss"), ("hub5", "https"), ("hub5", "mqtt")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def cell_hub(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield hub_of_generation(request)


def client_for(hub: Any, generation: str, protocol: str) -> AsyncThalovantClient:
    extra: dict[str, Any] = {}
    if generation == "hub5":
        extra["auth_encoding"] = "percent"
        if protocol == "mqtt":
            extra["mqtt_layout"] = "modern"
    return AsyncThalovantClient.from_identity_file(hub.identity_path("psk"), protocol=protocol, **extra)


def clip(run: str, size: int) -> bytes:
    """``size`` bytes, every byte value, unique to this run (so a frame is recognised by its content)."""
    head = run.encode()
    return head + bytes(n % 256 for n in range(size - len(head)))


@pytest.mark.anyio
@pytest.mark.parametrize(("generation", "protocol"), CELLS)
async def test_a_clip_the_hub_sends_reaches_the_client(cell_hub: Any, generation: str, protocol: str) -> None:
    hub = cell_hub
    need_protocol(hub, protocol)
    run = tag(f"bin-down-{generation}-{protocol}")
    small, large = clip(run, 4096), clip(run + "L", 200_000)  # 200 kB: 4 Noise chunks on hub 5.x
    meta = {"utterance": f"{run} spoken", "lang": "en-US", "file_name": "answer.wav"}
    async with client_for(hub, generation, protocol) as client:
        assert (await client.ask(f"{run} hello", timeout=10)).ok  # a peer of the hub from here on
        clips = client.listen_binary("tts_audio", max_events=2, timeout=15)
        files = client.listen_binary("file", max_events=1, timeout=15)
        assert await in_thread(lambda: push_binary(hub, small, 6, meta))
        assert await in_thread(lambda: push_binary(hub, large, 6, {"utterance": "large"}))
        assert await in_thread(lambda: push_binary(hub, b"%PDF-1.7 " + run.encode(), 3, {"file_name": "x.pdf"}))
        got = [b async for b in clips]
        got_files = [b async for b in files]
        # the session lives on after binary frames, on the same link
        assert (await client.ask(f"{run} after", timeout=10)).text == f"echo: {run} after"
        assert (await client.healthcheck()).reconnects == 0
    mine = [b for b in got if b.data in (small, large)]
    assert [(b.kind, b.bin_type, len(b.data)) for b in mine] == [("tts_audio", 6, 4096), ("tts_audio", 6, 200_000)]
    assert mine[0].data == small and dict(mine[0].metadata) == meta and mine[0].utterance == f"{run} spoken"
    assert mine[1].data == large
    assert [(b.kind, b.file_name, b.data) for b in got_files] == [("file", "x.pdf", b"%PDF-1.7 " + run.encode())]


@pytest.mark.anyio
@pytest.mark.parametrize(("generation", "protocol"), CELLS)
async def test_audio_and_files_the_client_sends_reach_the_hubs_plugin(
    cell_hub: Any, generation: str, protocol: str
) -> None:
    hub = cell_hub
    need_protocol(hub, protocol)
    run = tag(f"bin-up-{generation}-{protocol}")
    pcm = clip(run, 32_000)  # one second of 16 kHz s16le
    stt = clip(run + "S", 96_000)  # 96 kB: chunked inside Noise on hub 5.x
    document = clip(run + "F", 1000)
    async with client_for(hub, generation, protocol) as client:
        if generation == "hub4" and protocol == "https":
            before = len(binary_record(hub))
            with pytest.raises(thalovant.ThalovantBinaryUnsupportedError):
                await client.send_audio(pcm)
            assert (await client.ask(f"{run} still here", timeout=10)).ok  # the session goes on
            assert len(binary_record(hub)) == before, "nothing reached the hub"
            return
        started = time.monotonic()
        await client.send_audio(pcm, lang="en-US")
        await client.send_audio(stt, kind="stt_audio_transcribe", sample_rate=48000, lang="pt-PT")
        await client.send_file(document, file_name="notes.txt")
        await client.send_binary(b"bin-" + run.encode(), "tts_audio", {"utterance": "u", "lang": "en"})
        handed = time.monotonic() - started
        entries = [await in_thread(lambda d=d: wait_binary(hub, d)) for d in (pcm, stt, document)]
        tts = await in_thread(lambda: wait_binary(hub, b"bin-" + run.encode()))
        assert (await client.ask(f"{run} after", timeout=10)).ok
    assert [(e["handler"], e["size"]) for e in entries] == [
        (HANDLERS[1], 32_000),
        (HANDLERS[4], 96_000),
        (HANDLERS[3], 1000),
    ]
    assert (entries[0]["sample_rate"], entries[0]["sample_width"]) == (16000, 2)
    assert (entries[1]["sample_rate"], entries[1]["lang"]) == (48000, "pt-PT")
    assert entries[2]["file_name"] == "notes.txt" and entries[2]["sha256"] == hashlib.sha256(document).hexdigest()
    assert (tts["handler"], tts["utterance"], tts["lang"]) == (HANDLERS[6], "u", "en")
    assert handed < 10


@pytest.mark.anyio
async def test_a_hub_4_websocket_takes_the_largest_frame_the_client_allows(real_hub: Any) -> None:
    """Tornado closes a hub 4.x WebSocket (1009) on a message over 10 MiB: the client refuses such a send first."""
    run = tag("bin-edge")
    largest = clip(run, HUB4_WS_MAX_PAYLOAD)
    fat_meta = {"file_name": "f" * 200, "note": "n" * 20}  # near the bitstring's 255-byte metadata limit
    async with client_for(real_hub, "hub4", "wss") as client:
        await client.send_binary(largest, "file", fat_meta)
        entry = await in_thread(lambda: wait_binary(real_hub, largest, timeout=20))
        with pytest.raises(thalovant.ThalovantPayloadTooLargeError):
            await client.send_binary(largest + b"!", "file", fat_meta)
        assert (await client.healthcheck()).reconnects == 0
    assert entry["size"] == HUB4_WS_MAX_PAYLOAD


@pytest.mark.parametrize("generation", ["hub4", "hub5"])
def test_the_cli_saves_the_clips_a_real_hub_sends(cell_hub: Any, generation: str, tmp_path: Path) -> None:
    """``thalovant listen --binary DIR`` (a real process) while the hub sends TTS clips until it has two."""
    hub = cell_hub
    run = tag(f"bin-cli-{generation}")
    out = tmp_path / "clips"
    argv = ["-i", str(hub.identity_path("psk")), "--protocol", "wss", "--json", "--timeout", "30"]
    argv += ["listen", "--binary", str(out), "--kind", "tts_audio", "--max-events", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("THALOVANT_") or k.startswith("THALOVANT_TEST")}
    env["PYTHONPATH"] = str(ROOT)
    cli = subprocess.Popen(
        [sys.executable, "-m", "thalovant.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        clips = [clip(f"{run}-{n}", 2048) for n in range(60)]
        for n, data in enumerate(clips):  # until the CLI has its two (it listens only once connected)
            if cli.poll() is not None:
                break
            push_binary(hub, data, 6, {"file_name": f"../{n}.wav", "utterance": run}, wait_for_peer=0)
            time.sleep(0.25)
        stdout, stderr = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [line["kind"] for line in lines] == ["tts_audio", "tts_audio"]
    for line in lines:
        path = Path(line["path"])
        assert path.parent == out and path.read_bytes() in clips and line["metadata"]["utterance"] == run
        assert path.name.endswith(".wav") and ".." not in path.name
    identity = hub.identity("psk")
    assert not any(str(identity[k]) in stdout + stderr for k in ("access_key", "password", "crypto_key"))


@pytest.mark.anyio
@pytest.mark.parametrize(("generation", "protocol"), [("hub4", "https"), ("hub5", "https")])
async def test_a_clip_of_6_mib_arrives_over_http_polling(cell_hub: Any, generation: str, protocol: str) -> None:
    """One poll answer carries the whole clip in base64 (hub 5.x: its Noise chunks); over 4 MiB it used to fail
    the poll, and the clip, already drained from the hub's queue, was lost (the session went on without it)."""
    hub = cell_hub
    run = tag(f"bin-http-{generation}")
    big = clip(run, 6 * 1024 * 1024)
    async with client_for(hub, generation, protocol) as client:
        assert (await client.ask(f"{run} hello", timeout=10)).ok
        clips = client.listen_binary(max_events=1, timeout=20)
        assert await in_thread(lambda: push_binary(hub, big, 6, {"utterance": run}))
        got = [b async for b in clips]
        assert (await client.ask(f"{run} after", timeout=10)).ok
    assert [(len(b.data), b.data == big, b.utterance) for b in got] == [(len(big), True, run)]
