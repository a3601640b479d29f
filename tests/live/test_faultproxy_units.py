"""The fault proxy itself (``tests/harness/faultproxy.py``), against a loopback echo server: no hub needed."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import anyio.to_thread
import pytest
from anyio.abc import SocketAttribute

from tests.harness.faultproxy import Fault, FaultProxy, faultproxy_in_thread, identity_through

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that echoes every chunk back."""

    async def echo(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                while True:
                    await stream.send(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo)
        yield listener.extra(SocketAttribute.local_port)
        tg.cancel_scope.cancel()


async def _roundtrip(stream: anyio.abc.SocketStream, data: bytes, limit: float = 2.0) -> bytes:
    got = b""
    await stream.send(data)
    with anyio.fail_after(limit):
        while len(got) < len(data):
            got += await stream.receive()
    return got


async def test_pass_stall_and_resume(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy, await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
        assert await _roundtrip(s, b"hello") == b"hello"
        proxy.set(Fault.STALL)
        await s.send(b"held")
        with anyio.move_on_after(0.3) as waited:
            await s.receive()
        assert waited.cancelled_caught, "nothing may pass during a stall"
        proxy.set(Fault.PASS)
        with anyio.fail_after(2):
            assert await s.receive() == b"held"  # held, not lost


async def test_half_open_drops_only_the_way_back(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy, await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
        proxy.set(Fault.HALF_OPEN)
        await s.send(b"lost")
        with anyio.move_on_after(0.3):
            await s.receive()
        assert proxy.stats["c2s bytes"] == 4 and proxy.stats["dropped bytes"] == 4
        proxy.set(Fault.PASS)
        assert await _roundtrip(s, b"back") == b"back"


async def test_rst_resets_open_and_new_connections(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy:
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
            assert await _roundtrip(s, b"x") == b"x"
            proxy.set(Fault.RST)
            with pytest.raises((anyio.BrokenResourceError, anyio.EndOfStream, ConnectionResetError)) as caught:
                with anyio.fail_after(2):
                    await s.receive()
            assert not isinstance(caught.value, anyio.EndOfStream), "a reset, not an orderly end"
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as s2:
            with pytest.raises((anyio.BrokenResourceError, ConnectionResetError)), anyio.fail_after(2):
                await s2.receive()
        assert proxy.stats["reset"] == 1 and proxy.stats["reset at accept"] == 1


async def test_delay_and_throttle_slow_each_chunk_down(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy, await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
        proxy.set(Fault.DELAY, delay=0.2)
        started = time.monotonic()
        assert await _roundtrip(s, b"d") == b"d"
        assert 0.4 <= time.monotonic() - started < 1.0  # 0.2 s each way
        proxy.set(Fault.THROTTLE, rate=1000)  # 100-byte slices, 0.1 s apart
        started = time.monotonic()
        assert await _roundtrip(s, b"t" * 500, limit=5) == b"t" * 500
        assert 0.35 <= time.monotonic() - started < 2.0  # the 5th slice leaves 0.4 s after the first


async def test_drop_mid_frame_forwards_part_then_resets(echo_port: int) -> None:
    async with FaultProxy(echo_port) as proxy, await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
        proxy.set(Fault.DROP_MID_FRAME, cut="s2c")
        await s.send(b"0123456789")
        got = b""
        with pytest.raises((anyio.BrokenResourceError, anyio.EndOfStream, ConnectionResetError)), anyio.fail_after(2):
            while True:
                got += await s.receive()
        assert got == b"01234" and proxy.stats["cut"] == 1


async def test_bounds_connections_and_lifetime(echo_port: int) -> None:
    async with FaultProxy(echo_port, max_connections=1, max_lifetime=0.5) as proxy:
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as first:
            assert await _roundtrip(first, b"1") == b"1"
            async with await anyio.connect_tcp("127.0.0.1", proxy.port) as second:
                with pytest.raises((anyio.BrokenResourceError, ConnectionResetError)), anyio.fail_after(2):
                    await second.receive()  # over max_connections: reset at accept
            with pytest.raises((anyio.BrokenResourceError, ConnectionResetError)), anyio.fail_after(2):
                await first.receive()  # its lifetime runs out
        assert proxy.stats["lifetime over"] == 1
        assert proxy.open_connections == 0


async def test_threaded_proxy_is_switched_from_another_thread(echo_port: int) -> None:
    def blocking() -> tuple[bytes, bool]:
        with faultproxy_in_thread(echo_port) as proxy, socket.create_connection(("127.0.0.1", proxy.port), 2) as s:
            s.sendall(b"a")
            first = s.recv(10)
            proxy.set(Fault.STALL)
            s.sendall(b"b")
            s.settimeout(0.3)
            try:
                s.recv(10)
                stalled = False
            except TimeoutError:
                stalled = True
            proxy.set(Fault.PASS)
            s.settimeout(2)
            return first + s.recv(10), stalled

    assert await anyio.to_thread.run_sync(blocking) == (b"ab", True)


def test_identity_through_points_only_the_chosen_protocol_at_the_proxy() -> None:
    identity = {
        "data_plane_endpoints": {"wss": "ws://127.0.0.1:1", "https": "http://127.0.0.1:2"},
        "default_port": 2,
        "mqtt": {"endpoint": "mqtt://127.0.0.1:3", "username": "u"},
    }
    assert identity_through(identity, "wss", 9)["data_plane_endpoints"]["wss"] == "ws://127.0.0.1:9"
    https = identity_through(identity, "https", 9)
    assert https["data_plane_endpoints"]["https"] == "http://127.0.0.1:9" and https["default_port"] == 9
    mqtt = identity_through(identity, "mqtt", 9)
    assert mqtt["mqtt"] == {"endpoint": "mqtt://127.0.0.1:9", "username": "u"}
    assert identity["mqtt"]["endpoint"] == "mqtt://127.0.0.1:3"  # the original is untouched
    with pytest.raises(ValueError, match="protocol"):
        identity_through(identity, "ftp", 9)
