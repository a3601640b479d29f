"""WsConnection against a real wsproto server on 127.0.0.1, on asyncio and trio."""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from thalovant.errors import ThalovantAuthenticationError, ThalovantConnectionError, ThalovantTimeoutError
from thalovant.shell.links.ws import WsClosed, WsConnection, WsPong, WsUpgradeRejected

pytestmark = pytest.mark.anyio

TOKEN_TARGET = "/?authorization=abc="


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Peer:
    """Server side of one connection: a wsproto SERVER over an anyio socket stream."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.raw_request = b""
        self.target = ""
        self.queue: deque[Event] = deque()
        self.seen: list[Event] = []

    async def _read_request(self) -> None:
        while not self.target:
            data = await self.stream.receive()
            self.raw_request += data
            self.ws.receive_data(data)
            for ev in self.ws.events():
                if isinstance(ev, Request):
                    self.target = ev.target

    async def accept(self) -> None:
        await self._read_request()
        await self.stream.send(self.ws.send(AcceptConnection()))

    async def reject(self, status: int) -> None:
        await self._read_request()
        await self.stream.send(self.ws.send(RejectConnection(status_code=status, has_body=False)))

    async def send(self, event: Event) -> None:
        await self.stream.send(self.ws.send(event))

    async def next_event(self) -> Event:
        while not self.queue:
            try:
                data: bytes | None = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = None
            self.ws.receive_data(data)
            self.queue.extend(self.ws.events())
        ev = self.queue.popleft()
        self.seen.append(ev)
        return ev

    async def echo_until_close(self) -> None:
        while True:
            ev = await self.next_event()
            if isinstance(ev, TextMessage | BytesMessage):
                await self.send(ev)
            elif isinstance(ev, CloseConnection):
                if self.ws.state.name == "REMOTE_CLOSING":
                    await self.send(ev.response())
                return


Script = Callable[[Peer], Awaitable[None]]


@asynccontextmanager
async def serve(script: Script) -> AsyncIterator[tuple[int, list[Peer]]]:
    peers: list[Peer] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)

    async def handler(stream: anyio.abc.SocketStream) -> None:
        peer = Peer(stream)
        peers.append(peer)
        async with stream:
            with anyio.fail_after(5):
                await script(peer)

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        yield port, peers
        tg.cancel_scope.cancel()
    await listener.aclose()


async def open_client(port: int, **kw: object) -> WsConnection:
    return await WsConnection.connect("127.0.0.1", port, TOKEN_TARGET, timeout=5, **kw)  # type: ignore[arg-type]


async def test_text_and_binary_round_trip() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.echo_until_close()

    async with serve(script) as (port, peers):
        with anyio.fail_after(5):
            ws = await open_client(port)
            await ws.send_text("hello ✓")
            assert await ws.receive() == "hello ✓"
            await ws.send_bytes(b"\x00\x01\xff")
            assert await ws.receive() == b"\x00\x01\xff"
            await ws.close()
            assert ws.closed == WsClosed(code=1000, reason="", by_peer=False)
            await ws.close()  # idempotent
            with pytest.raises(ThalovantConnectionError):
                await ws.send_text("late")
        await wait_for(lambda: any(isinstance(e, CloseConnection) for e in peers[0].seen))
        close = next(e for e in peers[0].seen if isinstance(e, CloseConnection))
        assert close.code == 1000


async def wait_for(cond: Callable[[], bool]) -> None:
    for _ in range(300):  # bounded: at most ~3 s
        if cond():
            return
        await anyio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_request_target_arrives_raw_not_percent_encoded() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.echo_until_close()

    async with serve(script) as (port, peers):
        ws = await open_client(port, extra_headers=[("User-Agent", "thalovant-test")])
        await ws.close()
        assert peers[0].raw_request.startswith(b"GET /?authorization=abc= HTTP/1.1\r\n")
        assert b"%3D" not in peers[0].raw_request
        assert peers[0].target == TOKEN_TARGET
        assert b"\r\nhost: 127.0.0.1:" in peers[0].raw_request.lower()
        assert b"user-agent: thalovant-test" in peers[0].raw_request.lower()
        assert "authorization" not in repr(ws) and "abc" not in repr(ws)


async def test_fragmented_messages_are_reassembled() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.send(TextMessage(data="hel", message_finished=False))
        await peer.send(Ping(payload=b"mid"))  # control frames may interleave with fragments
        await peer.send(TextMessage(data="lo", message_finished=True))
        for i, part in enumerate((b"\x01", b"\x02\x03", b"\x04")):
            await peer.send(BytesMessage(data=part, message_finished=i == 2))
        await peer.echo_until_close()

    async with serve(script) as (port, peers):
        with anyio.fail_after(5):
            ws = await open_client(port)
            assert await ws.receive() == "hello"
            assert await ws.receive() == b"\x01\x02\x03\x04"
            await ws.close()
        assert Pong(payload=b"mid") in peers[0].seen


async def test_our_ping_is_answered_and_receive_event_reports_the_pong() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        ev = await peer.next_event()
        assert isinstance(ev, Ping)
        await peer.send(ev.response())
        await peer.send(Pong(payload=b"unasked"))  # an unsolicited pong is heard too
        await peer.send(TextMessage(data="after"))
        await peer.echo_until_close()

    async with serve(script) as (port, _):
        with anyio.fail_after(5):
            ws = await open_client(port)
            await ws.send_ping(b"liveness")
            assert await ws.receive_event() == WsPong()
            assert await ws.receive() == "after"  # receive() skips pongs
            await ws.close()


async def test_ping_is_answered_with_pong() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.send(Ping(payload=b"are you there"))
        ev = await peer.next_event()
        await peer.send(TextMessage(data=f"got {type(ev).__name__} {ev.payload!r}"))  # type: ignore[attr-defined]
        await peer.echo_until_close()

    async with serve(script) as (port, _):
        with anyio.fail_after(5):
            ws = await open_client(port)
            assert await ws.receive() == "got Pong b'are you there'"
            await ws.close()


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (CloseConnection(code=1000, reason="bye"), 1000, "bye"),
        (CloseConnection(code=1008, reason="invalid api key"), 1008, "invalid api key"),
        (CloseConnection(code=4003, reason="QUERY is not allowed"), 4003, "QUERY is not allowed"),
        (b"\x88\x00", 1005, ""),  # a close frame without a status code (hub 4.x, unknown key)
    ],
)
async def test_server_close_is_answered_and_reported(frame: CloseConnection | bytes, code: int, reason: str) -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        if isinstance(frame, bytes):
            await peer.stream.send(frame)
            peer.ws.receive_data(None)  # keep the server's wsproto out of the way; read raw reply below
            reply = await peer.stream.receive()
            peer.raw_request = reply
        else:
            await peer.send(frame)
            await peer.next_event()

    async with serve(script) as (port, peers):
        with anyio.fail_after(5):
            ws = await open_client(port)
            result = await ws.receive()
            assert result == WsClosed(code=code, reason=reason, by_peer=True)
            assert await ws.receive() == result  # stays closed
            with pytest.raises(ThalovantConnectionError):
                await ws.send_text("after close")
        await wait_for(lambda: bool(peers[0].seen) or peers[0].raw_request[:1] == b"\x88")
        if isinstance(frame, bytes):
            assert peers[0].raw_request[0] == 0x88  # the client echoed a close frame
        else:
            assert isinstance(peers[0].seen[0], CloseConnection)
            assert peers[0].seen[0].code == code


async def test_abrupt_tcp_close_is_1006() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.send(TextMessage(data="last words"))
        # returning closes the TCP stream with no close frame

    async with serve(script) as (port, _):
        with anyio.fail_after(5):
            ws = await open_client(port)
            assert await ws.receive() == "last words"
            assert await ws.receive() == WsClosed(code=1006, reason="", by_peer=True)


async def test_oversized_message_closes_with_1009() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.send(TextMessage(data="small"))
        await peer.send(BytesMessage(data=b"x" * 600, message_finished=False))
        await peer.send(BytesMessage(data=b"y" * 600, message_finished=True))
        ev = await peer.next_event()
        assert isinstance(ev, CloseConnection) and ev.code == 1009

    async with serve(script) as (port, peers):
        with anyio.fail_after(5):
            ws = await open_client(port, max_message_size=1000)
            assert await ws.receive() == "small"
            assert await ws.receive() == WsClosed(code=1009, reason="message too big", by_peer=False)
        await wait_for(lambda: bool(peers[0].seen))
        assert isinstance(peers[0].seen[0], CloseConnection) and peers[0].seen[0].code == 1009


async def test_invalid_utf8_text_frame_becomes_local_close_1007() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.stream.send(b"\x81\x02\xc3\x28")  # unmasked text frame with invalid UTF-8
        await anyio.sleep(0.5)

    async with serve(script) as (port, _):
        with anyio.fail_after(5):
            ws = await open_client(port)
            result = await ws.receive()
            assert isinstance(result, WsClosed) and result.code == 1007 and not result.by_peer


@pytest.mark.parametrize("status", [403, 401])
async def test_upgrade_refused_401_403_is_authentication_error(status: int) -> None:
    async def script(peer: Peer) -> None:
        await peer.reject(status)

    async with serve(script) as (port, _):
        with pytest.raises(ThalovantAuthenticationError) as info:
            await open_client(port)
        assert str(status) in str(info.value)
        assert "abc" not in str(info.value) and "authorization" not in str(info.value)
        assert info.value.retryable is False


async def test_upgrade_refused_other_status_is_typed_and_secret_free() -> None:
    async def script(peer: Peer) -> None:
        await peer.reject(503)

    async with serve(script) as (port, _):
        with pytest.raises(WsUpgradeRejected) as info:
            await open_client(port)
        assert info.value.status_code == 503 and info.value.retryable
        assert "abc" not in str(info.value) and "authorization" not in str(info.value)
        assert info.value.__cause__ is None


async def test_connect_timeout_when_server_never_answers() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the kernel completes the TCP handshake; nobody ever answers the upgrade
        port = sock.getsockname()[1]
        start = anyio.current_time()
        with pytest.raises(ThalovantTimeoutError):
            await WsConnection.connect("127.0.0.1", port, TOKEN_TARGET, timeout=0.3)
        assert anyio.current_time() - start < 2.0


async def test_connection_refused_is_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ThalovantConnectionError) as info:
        await WsConnection.connect("127.0.0.1", port, TOKEN_TARGET, timeout=2)
    assert not isinstance(info.value, ThalovantTimeoutError)
    assert "abc" not in str(info.value)


async def test_invalid_target_is_rejected_without_echoing_it() -> None:
    async def script(peer: Peer) -> None:
        await anyio.sleep(1)

    async with serve(script) as (port, _):
        with pytest.raises(ThalovantConnectionError) as info:
            await WsConnection.connect("127.0.0.1", port, "/?authorization=se cret\r\n", timeout=2)
        assert "se cret" not in str(info.value)


async def test_concurrent_senders_and_a_receiver_share_the_connection() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        for i in range(30):
            await peer.send(Ping(payload=b"%d" % i))  # forces pongs while the client is sending
        await peer.echo_until_close()

    async with serve(script) as (port, peers):
        with anyio.fail_after(10):
            ws = await open_client(port)
            received: list[str | bytes | WsClosed] = []

            async def sender(tag: str) -> None:
                for i in range(50):
                    await ws.send_text(f"{tag}{i}")

            async with anyio.create_task_group() as tg:
                tg.start_soon(sender, "a")
                tg.start_soon(sender, "b")
                for _ in range(100):
                    received.append(await ws.receive())
            await ws.close()
        assert sorted(received) == sorted([f"a{i}" for i in range(50)] + [f"b{i}" for i in range(50)])
        assert [r for r in received if isinstance(r, str) and r.startswith("a")] == [f"a{i}" for i in range(50)]
        assert sum(isinstance(e, Pong) for e in peers[0].seen) == 30


async def test_close_is_bounded_when_the_peer_never_answers() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await anyio.sleep(4.5)  # ignores the client's close frame

    async with serve(script) as (port, _):
        ws = await open_client(port)
        start = anyio.current_time()
        await ws.close(1001, "going away")
        assert anyio.current_time() - start < 3.0
        assert ws.closed == WsClosed(code=1001, reason="going away", by_peer=False)


async def test_cancelled_connect_leaves_no_tasks() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        before = len(anyio.get_running_tasks())
        with anyio.move_on_after(0.2) as scope:
            await WsConnection.connect("127.0.0.1", sock.getsockname()[1], TOKEN_TARGET, timeout=10)
        assert scope.cancelled_caught
        assert len(anyio.get_running_tasks()) == before


async def test_send_ping_reaches_the_server() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.echo_until_close()

    async with serve(script) as (port, peers):
        with anyio.fail_after(5):
            ws = await open_client(port)
            await ws.send_ping(b"keepalive-1")
            await ws.send_text("after ping")
            assert await ws.receive() == "after ping"
            await ws.close()
        assert Ping(payload=b"keepalive-1") in peers[0].seen
