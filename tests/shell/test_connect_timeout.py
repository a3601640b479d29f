"""A ``connect()`` that runs out of ``connect_timeout`` mid-way leaves nothing behind, and a later one works.

The hub is a loopback TCP server that accepts and then stalls at one phase: it never answers the WebSocket
upgrade, answers it and never greets, never answers the first HTTP request, or never sends the MQTT
CONNACK; or the dial itself completes late (a shielded dial seam; paho's connect thread slowed down).
``connect()`` raises ``ThalovantTimeoutError`` within its timeout (+0.2 s), the server sees every connection
it accepted closed (so a hub drops the session), the process holds no more file descriptors than before,
the engine holds no task, and a later ``connect()`` reaches a ready session. On main a cancelled paho connect
thread held ``connect()`` until paho's own timeout and kept its socket open.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import types
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import sniffio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

import thalovant
from tests.shell.hostile import identity_for, loopback_server
from tests.shell.inmemory import MemoryHubNet
from thalovant.errors import ThalovantArgumentError, ThalovantTimeoutError
from thalovant.shell.links import dial, mqtt_engine
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub

pytestmark = pytest.mark.anyio

PASSWORD = "a-throwaway-password"
TIMEOUT = 0.5
SLACK = 0.2
LATE = 1.2  # a late dial completes this long after it started, well after TIMEOUT
SETTLE = 5.0  # bound on waiting for the server and the process to see everything closed


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Stalling:
    """A loopback hub that stalls: counts the connections it accepted and those the client closed."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.accepted = 0
        self.ended = 0

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        self.accepted += 1
        try:
            if self.mode == "upgraded":  # answer the WebSocket upgrade, then never greet
                ws = WSConnection(ConnectionType.SERVER)
                while not any(isinstance(event, Request) for event in _fed(ws, await stream.receive())):
                    pass
                await stream.send(ws.send(AcceptConnection()))
            while True:  # read (and ignore) until the client goes
                await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass
        finally:
            self.ended += 1


def _fed(ws: WSConnection, data: bytes) -> list[object]:
    ws.receive_data(data)
    return list(ws.events())


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = anyio.current_time() + SETTLE
    while not condition():
        assert anyio.current_time() < deadline, what
        await anyio.sleep(0.02)


@asynccontextmanager
async def stalling_hub(mode: str, protocol: str) -> AsyncIterator[tuple[Stalling, dict[str, Any]]]:
    hub = Stalling(mode)
    async with loopback_server(hub.serve) as port:
        yield hub, identity_for(protocol, port, password=PASSWORD, access_key=THROWAWAY_ACCESS_KEY)


def tasks() -> int:
    """The running tasks of thalovant's code (anyio names a task after its function; asyncio only)."""
    if sniffio.current_async_library() != "asyncio":
        return 0
    return sum(task.get_name().startswith("thalovant.") for task in asyncio.all_tasks())


async def times_out_and_leaves_nothing(hub: Stalling, identity: dict[str, Any], protocol: str) -> None:
    fds, running = open_fds(), tasks()
    client = thalovant.AsyncThalovantClient(
        identity, protocol=protocol, noise_key_file=False, connect_timeout=TIMEOUT, auto_reconnect=False
    )
    started = anyio.current_time()
    with pytest.raises(ThalovantTimeoutError):
        await client.connect()
    elapsed = anyio.current_time() - started
    assert elapsed < TIMEOUT + SLACK, f"connect() took {elapsed:.3f} s"
    assert client._engine.runtime is None and client._engine.task_group is None and not client.connected
    await eventually(lambda: hub.accepted >= 1, "the client never reached the hub")
    await eventually(lambda: hub.ended == hub.accepted, "a connection of the timed-out connect stayed open")
    await eventually(lambda: open_fds() <= fds, f"file descriptors: {open_fds()} > {fds} before")
    await eventually(lambda: tasks() <= running == 0, "a task of the timed-out connect is still running")
    return None


async def a_later_connect_works(identity: dict[str, Any], protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    net = MemoryHubNet(FakeHub(password=PASSWORD), protocol=protocol, access_key=THROWAWAY_ACCESS_KEY)
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    client = thalovant.AsyncThalovantClient(identity, protocol=protocol, noise_key_file=False, connect_timeout=5)
    info = await client.connect_with_info()
    seen = tasks()  # the probe sees a connected client's tasks (so 0 above means none)
    await client.close()
    assert info.phase == "ready" and (seen > 0 or sniffio.current_async_library() != "asyncio")


@pytest.mark.parametrize(
    ("protocol", "mode"), [("wss", "silent"), ("wss", "upgraded"), ("https", "silent"), ("mqtt", "silent")]
)
async def test_a_connect_that_times_out_mid_way_leaves_nothing(
    protocol: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with stalling_hub(mode, protocol) as (hub, identity):
        await times_out_and_leaves_nothing(hub, identity, protocol)
    if protocol != "mqtt":  # the in-memory network speaks WebSocket and HTTP
        await a_later_connect_works(identity, protocol, monkeypatch)


async def test_a_dial_that_completes_late_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = dial.open_stream

    async def late(*args: Any, **kwargs: Any) -> anyio.abc.ByteStream:
        with anyio.CancelScope(shield=True):  # the connect gives up meanwhile; the stream still arrives
            stream = await real(*args, **kwargs)
            await anyio.sleep(LATE)
        return stream

    monkeypatch.setattr(dial, "open_stream", late)
    async with stalling_hub("silent", "wss") as (hub, identity):
        fds = open_fds()
        client = thalovant.AsyncThalovantClient(identity, protocol="wss", noise_key_file=False, connect_timeout=TIMEOUT)
        with pytest.raises(ThalovantTimeoutError):
            await client.connect()
        await eventually(lambda: hub.accepted == 1 and hub.ended == 1, "the late stream was not closed")
        await eventually(lambda: open_fds() <= fds, "the late stream's descriptor stayed open")
    await a_later_connect_works(identity, "wss", monkeypatch)


async def test_a_paho_connect_thread_that_ends_late_closes_its_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_create_connection(*args: Any, **kwargs: Any) -> socket.socket:
        time.sleep(LATE)  # paho's blocking connect, in its worker thread, outlives the connect's timeout
        return socket.create_connection(*args, **kwargs)

    patched = types.SimpleNamespace(
        **{name: getattr(socket, name) for name in dir(socket) if not name.startswith("__")}
    )
    patched.create_connection = slow_create_connection
    monkeypatch.setattr(mqtt_engine, "socket", patched)
    async with stalling_hub("silent", "mqtt") as (hub, identity):
        fds = open_fds()
        client = thalovant.AsyncThalovantClient(
            identity, protocol="mqtt", noise_key_file=False, connect_timeout=TIMEOUT, auto_reconnect=False
        )
        started = anyio.current_time()
        with pytest.raises(ThalovantTimeoutError):
            await client.connect()
        assert anyio.current_time() - started < TIMEOUT + SLACK  # the thread is abandoned, not waited for
        await eventually(lambda: hub.accepted == 1 and hub.ended == 1, "the late paho socket was not closed")
        await eventually(lambda: open_fds() <= fds, "the late paho socket's descriptor stayed open")


def test_the_blocking_client_leaves_no_thread_or_socket() -> None:
    async def scenario() -> None:
        async with stalling_hub("upgraded", "wss") as (hub, identity):
            fds, threads = open_fds(), threading.active_count()
            client = thalovant.ThalovantClient(identity, protocol="wss", noise_key_file=False, connect_timeout=30)
            started = time.monotonic()
            with pytest.raises(ThalovantTimeoutError):
                await anyio.to_thread.run_sync(client.connect, TIMEOUT)  # connect(timeout=) beats connect_timeout
            assert time.monotonic() - started < TIMEOUT + SLACK
            await eventually(lambda: hub.ended == hub.accepted == 1, "the timed-out link stayed open")
            await eventually(lambda: threading.active_count() <= threads + 1, "the client's loop thread stayed")
            await eventually(lambda: open_fds() <= fds, "a descriptor of the timed-out connect stayed open")

    anyio.run(scenario)


async def test_connect_timeout_argument_bounds_this_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    async with stalling_hub("upgraded", "wss") as (hub, identity):
        client = thalovant.AsyncThalovantClient(identity, protocol="wss", noise_key_file=False, connect_timeout=30)
        for bad in (0, -1, float("nan"), "1"):
            with pytest.raises(ThalovantArgumentError, match="timeout"):
                await client.connect(bad)  # type: ignore[arg-type]
        assert hub.accepted == 0  # a bad timeout is refused before anything is dialed
        started = anyio.current_time()
        with pytest.raises(ThalovantTimeoutError, match=r"0\.4"):
            await client.connect_with_info(timeout=0.4)
        assert anyio.current_time() - started < 0.4 + SLACK
        await eventually(lambda: hub.ended == hub.accepted == 1, "the timed-out link stayed open")
    net = MemoryHubNet(FakeHub(password=PASSWORD), protocol="wss", access_key=THROWAWAY_ACCESS_KEY)
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    info = await client.connect_with_info(timeout=5)  # the same client object, afresh
    await client.close()
    assert info.phase == "ready" and info.handshake_ms is not None
