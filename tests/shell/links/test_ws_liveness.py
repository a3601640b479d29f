"""WsConnection's share of liveness: progress of a large message, and a write cut off mid-frame."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Ping, Request

from tests.shell.links.test_ws import Peer, open_client, serve
from thalovant.shell.links.ws import WsConnection, WsPong, WsProgress

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_bytes_of_a_large_message_after_a_ping_are_reported_as_progress() -> None:
    """The PONG queues behind a message the hub is sending: its first bytes are the proof of life."""
    big = bytes(range(256)) * 4096  # 1 MiB
    half_sent = anyio.Event()
    go_on = anyio.Event()

    async def script(peer: Peer) -> None:
        await peer.accept()
        ping = await peer.next_event()
        assert isinstance(ping, Ping)
        raw = peer.ws.send(BytesMessage(data=big))
        await peer.stream.send(raw[:65536])
        half_sent.set()
        await go_on.wait()
        await peer.stream.send(raw[65536:])
        await peer.send(ping.response())
        await peer.echo_until_close()

    async with serve(script) as (port, _):
        with anyio.fail_after(5):
            ws = await open_client(port)
            ws.want_progress()
            await ws.send_ping(b"probe")
            await half_sent.wait()
            assert await ws.receive_event() == WsProgress()  # before the message is complete
            go_on.set()
            assert await ws.receive_event() == big
            assert await ws.receive_event() == WsPong()
            await ws.close()


async def test_without_asking_no_progress_is_reported() -> None:
    big = b"x" * (1 << 20)

    async def script(peer: Peer) -> None:
        await peer.accept()
        raw = peer.ws.send(BytesMessage(data=big))
        for i in range(0, len(raw), 4096):
            await peer.stream.send(raw[i : i + 4096])
        await peer.echo_until_close()

    async with serve(script) as (port, _):
        with anyio.fail_after(5):
            ws = await open_client(port)
            assert await ws.receive_event() == big
            await ws.close()


class StuckStream(anyio.abc.ByteStream):
    """A stream whose writes never finish (a stalled path with a full send buffer)."""

    def __init__(self) -> None:
        self.writing = anyio.Event()
        self.closed = False

    async def send(self, item: bytes) -> None:
        self.writing.set()
        await anyio.sleep_forever()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.sleep_forever()
        raise AssertionError

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True


def open_connection() -> WSConnection:
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="127.0.0.1", target="/")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    return client


async def test_a_ping_cut_off_mid_write_aborts_the_stream() -> None:
    stream = StuckStream()
    ws = WsConnection(stream, open_connection())
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def ping() -> None:
                with anyio.CancelScope() as scope:
                    tg.start_soon(cancel_when_writing, scope)
                    await ws.send_ping(b"probe")

            async def cancel_when_writing(scope: anyio.CancelScope) -> None:
                await stream.writing.wait()
                scope.cancel()  # what the send timeout does

            tg.start_soon(ping)
    assert stream.closed
    assert ws.closed is not None and ws.closed.code == 1006


async def test_a_ping_cut_off_while_waiting_for_a_send_leaves_the_stream_up() -> None:
    stream = StuckStream()
    ws = WsConnection(stream, open_connection())
    held, release = anyio.Event(), anyio.Event()

    async def large_send() -> None:  # another task is writing a large message
        async with ws._send_lock:
            held.set()
            await release.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(large_send)
            await held.wait()
            with anyio.move_on_after(0.05):  # the ping's send timeout runs out while it waits its turn
                await ws.send_ping(b"probe")
            release.set()
    assert not stream.closed and ws.closed is None
