"""Hostile peers on 127.0.0.1 for offline shell tests: real TCP sockets, scripted misbehaviour.

* :func:`loopback_server` serves one handler per accepted connection and yields the port.
* The handlers: :func:`silent` (accepts TCP, says nothing), :func:`upgrade_then_silent` (answers
  the WebSocket upgrade, then nothing), :func:`upgrade_then_trickle` (answers the upgrade, then
  a byte of a never-ending frame now and then), :func:`http_trickle` (a status line a byte at a
  time, never a whole response).
* :class:`TcpWsHub` puts a :class:`~thalovant.testing.FakeHub` behind a real WebSocket (wsproto,
  no authorization check) and, once the client's HELLO arrived, runs a scripted misbehaviour
  (``after_hello``) with the sealed frames it may send.

Every loop here is bounded by the test's own ``fail_after`` or by the connection's end.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Request, TextMessage

from thalovant.testing import FakeHub, HubFrame

__all__ = [
    "Handler",
    "TcpWsHub",
    "http_trickle",
    "identity_for",
    "loopback_server",
    "silent",
    "upgrade_then_silent",
    "upgrade_then_trickle",
    "ws_frame",
]

Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]
_SCHEMES = {"wss": "ws", "https": "http"}
_LINGER = 30.0  # a hostile peer's connection outlives any test's wait
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


def identity_for(protocol: str, port: int, *, password: str, access_key: str) -> dict[str, Any]:
    """An identity mapping whose ``protocol`` endpoint is ``127.0.0.1:port``."""
    values: dict[str, Any] = {
        "access_key": access_key,
        "password": password,
        "default_master": "http://127.0.0.1",
        "site_id": "den",
        "protocols": {protocol: True},
    }
    if protocol == "mqtt":
        values["mqtt"] = {
            "endpoint": f"mqtt://127.0.0.1:{port}",
            "username": "hostile",
            "password": "a-throwaway-broker-password",
            "tls": False,
            "topic_prefix": "hivemind",
        }
    else:
        values["data_plane_endpoints"] = {protocol: f"{_SCHEMES[protocol]}://127.0.0.1:{port}"}
    return values


@asynccontextmanager
async def loopback_server(handler: Handler) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1 (one task per connection) while the block runs; yields the port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def guarded(stream: anyio.abc.SocketStream) -> None:
        try:
            await handler(stream)
        except _GONE:
            pass  # the client went away: that is its right
        finally:
            await anyio.aclose_forcefully(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, guarded)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


# ---- handlers -----------------------------------------------------------------------------------


async def silent(stream: anyio.abc.SocketStream) -> None:
    """Accept the connection and never send a byte (what the client sends is read and dropped)."""
    with anyio.move_on_after(_LINGER):
        while await stream.receive():
            pass


async def _read_head(stream: anyio.abc.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
        if len(data) > 65536:
            raise anyio.BrokenResourceError
    return data


def _accept_key(head: bytes) -> bytes:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            digest = hashlib.sha1(value.strip() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            return base64.b64encode(digest)
    raise anyio.BrokenResourceError


async def _upgrade(stream: anyio.abc.SocketStream) -> None:
    head = await _read_head(stream)
    await stream.send(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + _accept_key(head) + b"\r\n\r\n"
    )


async def upgrade_then_silent(stream: anyio.abc.SocketStream) -> None:
    """Answer the WebSocket upgrade with 101, then never send a frame (nor answer a close)."""
    await _upgrade(stream)
    await silent(stream)


async def upgrade_then_trickle(stream: anyio.abc.SocketStream) -> None:
    """Answer the upgrade, then start a text frame announcing 64 KiB and send one byte of it every 0.1 s."""
    await _upgrade(stream)
    await stream.send(b"\x81\x7e\xff\xff")  # FIN + text, 16-bit length 65535
    with anyio.move_on_after(_LINGER):
        while True:
            await anyio.sleep(0.1)
            await stream.send(b"x")


async def http_trickle(stream: anyio.abc.SocketStream) -> None:
    """Read the request, then answer ``HTTP/1.1 200 OK`` ... one byte every 0.1 s, never finishing the head."""
    await _read_head(stream)
    with anyio.move_on_after(_LINGER):
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"y" * 100000:
            await stream.send(bytes([byte]))
            await anyio.sleep(0.1)


# ---- a FakeHub behind a real WebSocket ---------------------------------------------------------


AfterHello = Callable[["TcpWsHub"], Awaitable[None]]


class TcpWsHub:
    """One :class:`FakeHub` behind a WebSocket on TCP; :meth:`serve` is a :func:`loopback_server` handler.

    Args:
        hub: the hub (its password must match the client's identity).
        after_hello: run once per connection, in a task of its own, when the client's HELLO arrived.

    Attributes:
        sent: frames the hub handed to TCP since the HELLO (by :meth:`send_frames`).
        close_frames: close frames the client sent (a hostile hub never answers them).
    """

    def __init__(self, hub: FakeHub, *, after_hello: AfterHello | None = None) -> None:
        self.hub = hub
        self.after_hello = after_hello
        self.sent = 0
        self.close_frames = 0
        self._ws: WSConnection | None = None
        self._stream: anyio.abc.SocketStream | None = None
        self._lock = anyio.Lock()

    async def send_frames(self, frames: list[HubFrame]) -> None:
        """Send sealed hub frames, even after the client's close frame; waits while TCP pushes back."""
        stream = self._stream
        assert stream is not None
        for frame in frames:
            async with self._lock:
                await stream.send(ws_frame(frame))
            self.sent += 1

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        self._ws, self._stream = ws, stream
        async with anyio.create_task_group() as tg:
            try:
                await self._read(ws, stream, tg)
            except _GONE:
                pass  # the client went away
            tg.cancel_scope.cancel()

    async def _read(self, ws: WSConnection, stream: anyio.abc.SocketStream, tg: anyio.abc.TaskGroup) -> None:
        parts: list[Any] = []
        while True:
            ws.receive_data(await stream.receive())
            for event in ws.events():
                if isinstance(event, Request):
                    async with self._lock:
                        await stream.send(ws.send(AcceptConnection()))
                    await self._answer(self.hub.open_connection())
                elif isinstance(event, TextMessage | BytesMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        frame = "".join(parts) if isinstance(parts[0], str) else b"".join(parts)
                        parts = []
                        greeted = self.hub.session is not None
                        await self._answer(self.hub.receive(frame))
                        if not greeted and self.hub.session is not None:
                            tg.start_soon(self._misbehave)
                elif isinstance(event, Ping) and ws.state is ConnectionState.OPEN:
                    async with self._lock:
                        await stream.send(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self.close_frames += 1  # hostile: never answered

    async def _misbehave(self) -> None:
        if self.after_hello is not None:
            try:
                await self.after_hello(self)
            except _GONE:
                pass  # the client went away

    async def _answer(self, frames: list[HubFrame]) -> None:
        stream = self._stream
        assert stream is not None
        for frame in frames:
            async with self._lock:
                await stream.send(ws_frame(frame))


def ws_frame(frame: HubFrame) -> bytes:
    """One unmasked server frame (FIN set) carrying ``frame``: text for ``str``, binary for ``bytes``."""
    payload, opcode = (frame.encode("utf-8"), 0x81) if isinstance(frame, str) else (frame, 0x82)
    size = len(payload)
    if size < 126:
        head = bytes([opcode, size])
    elif size < 65536:
        head = bytes([opcode, 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([opcode, 127]) + size.to_bytes(8, "big")
    return head + payload
