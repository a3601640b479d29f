"""Property tests for WsConnection over a scripted in-memory byte stream (no sockets).

* any split of the server's bytes yields the same messages (chunking law);
* arbitrary garbage after the upgrade never raises: ``receive`` ends in a WsClosed.
"""

from __future__ import annotations

import itertools
from collections import deque

import anyio
import anyio.abc
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Request, TextMessage

from thalovant.shell.links.ws import WsClosed, WsConnection


class ScriptedStream(anyio.abc.ByteStream):
    """Hands out pre-cut chunks, then end-of-stream; records what the client sends."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = deque(chunks)
        self.sent = bytearray()
        self.closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.lowlevel.checkpoint()
        if not self.chunks:
            raise anyio.EndOfStream
        chunk = self.chunks.popleft()
        if len(chunk) > max_bytes:
            self.chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        return chunk

    async def send(self, item: bytes) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        self.sent += item

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True


def upgraded_pair() -> tuple[WSConnection, WSConnection]:
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="127.0.0.1:1", target="/?authorization=x")))
    assert any(isinstance(e, Request) for e in server.events())
    client.receive_data(server.send(AcceptConnection()))
    assert any(isinstance(e, AcceptConnection) for e in client.events())
    return client, server


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


async def drain(conn: WsConnection, limit: int = 1000) -> list[str | bytes | WsClosed]:
    got: list[str | bytes | WsClosed] = []
    for _ in range(limit):
        item = await conn.receive()
        got.append(item)
        if isinstance(item, WsClosed):
            return got
    raise AssertionError("receive never reported the end")


messages = st.lists(
    st.one_of(st.text(max_size=40), st.binary(max_size=40)),
    max_size=6,
)


@settings(max_examples=120, deadline=None)
@given(msgs=messages, fragment=st.integers(1, 8), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_byte_split_gives_the_same_messages(msgs: list[str | bytes], fragment: int, cuts: list[int]) -> None:
    client, server = upgraded_pair()
    wire = b""
    for m in msgs:
        pieces = [m[i : i + fragment] for i in range(0, len(m), fragment)] or [m[:0]]
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            if isinstance(piece, str):
                wire += server.send(TextMessage(data=piece, message_finished=last))
            else:
                wire += server.send(BytesMessage(data=piece, message_finished=last))
        wire += server.send(Ping(payload=b"p"))
    wire += server.send(CloseConnection(code=1000, reason="done"))

    async def main() -> list[str | bytes | WsClosed]:
        conn = WsConnection(ScriptedStream(split(wire, cuts)), client)
        return await drain(conn)

    got = anyio.run(main)
    assert got == [*msgs, WsClosed(code=1000, reason="done", by_peer=True)]


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=300), cuts=st.lists(st.integers(0, 1000), max_size=6))
def test_garbage_after_upgrade_never_raises(garbage: bytes, cuts: list[int]) -> None:
    client, _ = upgraded_pair()
    stream = ScriptedStream(split(garbage, cuts))

    async def main() -> list[str | bytes | WsClosed]:
        return await drain(WsConnection(stream, client, max_message_size=256))

    got = anyio.run(main)
    end = got[-1]
    assert isinstance(end, WsClosed)
    assert all(isinstance(g, str | bytes) for g in got[:-1])
    assert stream.closed  # the transport is always released
    if end.code == 1006:
        assert end.by_peer
