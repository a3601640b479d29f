"""Binary frames both ways through ``AsyncThalovantClient`` (issue 14), offline: real links, an in-memory hub.

The dial seam is :class:`tests.shell.inmemory.MemoryHubNet` (wsproto/h11 and the core run for real); the
hub is a :class:`~thalovant.testing.FakeHub` (hub 4.x, v1). Every wait is bounded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import thalovant
from tests.shell.test_offline_client import WAIT, client_for, connected, hub_net
from thalovant.core.bus.binary import ThalovantBinary, binary_message, outgoing_binary
from thalovant.core.wire.message import MsgType
from thalovant.shell.client_binary import HUB4_WS_MAX_PAYLOAD

pytestmark = pytest.mark.anyio

CLIP = bytes(range(256)) * 40  # 10 KiB, every byte value


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def clip(data: bytes = CLIP, kind: str = "tts_audio", **metadata: object) -> object:
    return binary_message(outgoing_binary(data, kind, metadata or {"utterance": "hello", "lang": "en-US"}))


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_listen_binary_yields_a_tts_clip_the_hub_sends(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with connected(monkeypatch, protocol) as (client, net):
        listener = client.listen_binary("tts_audio", max_events=1, timeout=WAIT)
        net.push_frame(clip(kind="file", file_name="skipped.txt"))  # filtered out by kind
        net.push_frame(clip())
        got = [b async for b in listener]
    assert len(got) == 1
    assert got[0].kind == "tts_audio" and got[0].data == CLIP and got[0].utterance == "hello" and got[0].lang == "en-US"
    assert "size=10240" in repr(got[0]) and "\\x00" not in repr(got[0])  # the repr never shows the bytes


async def test_on_binary_calls_sync_and_async_handlers_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    async with connected(monkeypatch, "wss") as (client, net):
        plain: list[ThalovantBinary] = []
        awaited: list[str] = []
        done = anyio.Event()

        async def slow(binary: ThalovantBinary) -> None:
            await anyio.lowlevel.checkpoint()
            awaited.append(binary.kind)
            if len(awaited) == 3:
                done.set()

        sub = client.on_binary(plain.append, kind="file")
        client.on_binary(slow)
        net.push_frame(clip(kind="file", file_name="a.txt"))
        net.push_frame(clip(kind="tts_audio"))
        net.push_frame(clip(kind="file", file_name="b.txt"))
        with anyio.fail_after(WAIT):
            await done.wait()
        sub.close()
        sub.close()  # idempotent
    assert [b.file_name for b in plain] == ["a.txt", "b.txt"] and sub.handled == 2
    assert awaited == ["file", "tts_audio", "file"]


async def test_a_handler_that_raises_is_logged_and_kept(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected(monkeypatch, "wss") as (client, net):
        seen: list[int] = []
        both = anyio.Event()

        def flaky(binary: ThalovantBinary) -> None:
            seen.append(len(binary.data))
            if len(seen) == 2:
                both.set()
            if len(seen) == 1:
                raise ValueError("boom")

        sub = client.on_binary(flaky)
        net.push_frame(clip(b"one"))
        net.push_frame(clip(b"three"))
        with anyio.fail_after(WAIT):
            await both.wait()
        await anyio.lowlevel.checkpoint()  # the subscription counts the second call after it returned
    assert seen == [3, 5] and sub.failed == 1 and sub.handled == 1


@pytest.mark.parametrize("kind", [3.5, object(), b"tts_audio", [3.5]], ids=["float", "object", "bytes", "list"])
async def test_a_garbage_kind_to_listen_binary_is_a_typed_error(kind: object) -> None:
    client = client_for("wss")
    with pytest.raises(thalovant.ThalovantArgumentError, match="kind"):
        client.listen_binary(kind)  # type: ignore[arg-type]


async def test_on_binary_needs_a_connected_client() -> None:
    client = client_for("wss")
    with pytest.raises(thalovant.LocalProtocolError):
        client.on_binary(print)


async def test_a_frame_over_the_cap_is_dropped_with_its_size_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected(monkeypatch, "wss") as (client, net):
        client.max_binary_bytes = 1000
        listener = client.listen_binary(timeout=WAIT, max_events=1)
        with caplog.at_level(logging.WARNING, logger="thalovant"):
            net.push_frame(clip(b"S3CRET" * 200))  # 1200 bytes: over the cap
            net.push_frame(clip(b"small"))
            got = [b.data async for b in listener]
    assert got == [b"small"]
    dropped = [r.getMessage() for r in caplog.records if "binary frame dropped" in r.getMessage()]
    assert dropped == ["binary frame dropped: a binary frame of 1200 bytes is over the cap of 1000"]
    assert not any("S3CRET" in r.getMessage() for r in caplog.records)


async def test_a_slow_reader_loses_the_oldest_frames_within_its_byte_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    async with connected(monkeypatch, "wss") as (client, net):
        listener = client.listen_binary(timeout=0.5, buffer_bytes=2500)
        witness = client.listen_binary(timeout=WAIT, max_events=5)  # offered the same frames, read at once
        for n in range(5):
            net.push_frame(clip(bytes([n]) * 1000))
        assert len([b async for b in witness]) == 5
        assert listener.buffered_bytes <= 2500
        got = [b.data[0] async for b in listener]
    assert got == [3, 4] and listener.dropped == 3


async def test_close_ends_a_binary_listener_with_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async with connected(monkeypatch, "wss") as (client, _net):
        listener = client.listen_binary(timeout=WAIT)
        await client.close()
        with pytest.raises(thalovant.ThalovantConnectionError):
            await listener.__anext__()


async def test_send_binary_audio_and_file_reach_the_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"file body")
    async with connected(monkeypatch, "wss") as (client, net):
        await client.send_binary(b"\x00\x01raw", "binary:9", {"k": "v"})
        await client.send_audio(b"\x00\x00" * 160, lang="en-US", kind="stt_audio_transcribe")
        await client.send_file(path)
        await client.send_file(b"bytes body", file_name="b.bin")
        await client.emit("after.binary", {})  # the bus still works after binary frames
        await net.wait_until(lambda: any(m.type == "after.binary" for m in net.hub.received))
    frames = [m for m in net.hub.frames if m.msg_type is MsgType.BINARY]
    assert [(m.bin_type, m.payload, m.metadata) for m in frames] == [
        (9, b"\x00\x01raw", {"k": "v"}),
        (4, b"\x00\x00" * 160, {"sample_rate": 16000, "sample_width": 2, "lang": "en-US"}),
        (3, b"file body", {"file_name": "notes.txt"}),
        (3, b"bytes body", {"file_name": "b.bin"}),
    ]


async def test_sends_are_checked_before_anything_leaves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2001)
    async with connected(monkeypatch, "wss") as (client, net):
        client.max_binary_bytes = 2000
        with pytest.raises(thalovant.ThalovantPayloadTooLargeError) as too_large:
            await client.send_binary(b"y" * 2001)
        assert (too_large.value.size, too_large.value.limit) == (2001, 2000)
        assert "2001 bytes" in str(too_large.value) and isinstance(too_large.value, thalovant.ThalovantArgumentError)
        with pytest.raises(thalovant.ThalovantPayloadTooLargeError):
            await client.send_file(big)
        with pytest.raises(thalovant.ThalovantArgumentError, match="kind"):
            await client.send_binary(b"x", "mp3")
        with pytest.raises(thalovant.ThalovantArgumentError, match="metadata"):
            await client.send_binary(b"x", "file", {"file_name": "n" * 300})
        with pytest.raises(thalovant.ThalovantArgumentTypeError, match="data"):
            await client.send_binary("text")  # type: ignore[arg-type]
        with pytest.raises(thalovant.ThalovantArgumentError, match="sample_rate"):
            await client.send_audio(b"\x00\x00", sample_rate=0)
        with pytest.raises(thalovant.ThalovantArgumentError, match="file_name"):
            await client.send_file(b"x")
        with pytest.raises(thalovant.ThalovantArgumentError, match="file_name"):
            await client.send_file(b"x", file_name="../escape")
        with pytest.raises(thalovant.ThalovantArgumentError, match="path"):
            await client.send_file(tmp_path)
        with pytest.raises(thalovant.ThalovantArgumentError, match="max_binary_bytes"):
            client.max_binary_bytes = 0
    assert net.hub.frames == []


async def test_http_to_a_hub_4_refuses_binary_with_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async with connected(monkeypatch, "https") as (client, net):
        with pytest.raises(thalovant.ThalovantBinaryUnsupportedError) as refused:
            await client.send_audio(b"\x00\x00" * 8)
        assert refused.value.protocol == "https" and isinstance(refused.value, NotImplementedError)
        await client.emit("still.fine", {})  # the session lives on
        await net.wait_until(lambda: any(m.type == "still.fine" for m in net.hub.received))
    assert net.hub.frames == []


async def test_a_listener_made_before_connecting_connects_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    net = hub_net(monkeypatch, "wss")
    client = client_for("wss")
    try:
        listener = client.listen_binary(timeout=0.3)
        assert not client.connected and net.hub.hellos == []
        assert [b async for b in listener] == []  # the first wait connected (in this task, as listen() does)
        assert client.connected and len(net.hub.hellos) == 1
    finally:
        await client.close()


async def test_a_hub_4_websocket_takes_at_most_10_mib_in_one_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    async with connected(monkeypatch, "wss") as (client, net):
        with pytest.raises(thalovant.ThalovantPayloadTooLargeError) as too_large:
            await client.send_binary(bytes(HUB4_WS_MAX_PAYLOAD + 1))
        assert too_large.value.limit == HUB4_WS_MAX_PAYLOAD < client.max_binary_bytes
        await client.send_binary(bytes(1024), "file", {"file_name": "ok.bin"})
        await net.wait_until(lambda: len(net.hub.frames) == 1)


async def test_a_clip_larger_than_4_mib_arrives_over_http_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The poll answer carries it in base64 (6.7 MiB here): it failed the poll (4 MiB cap) and was lost before."""
    async with connected(monkeypatch, "https") as (client, net):
        big = bytes(n % 251 for n in range(5 * 1024 * 1024))
        clips = client.listen_binary(max_events=1, timeout=WAIT)
        net.push_frame(clip(big))
        assert [b.data == big async for b in clips] == [True]
