"""Link drivers against slow loopback peers: an answer still arriving is reported as progress, not silence.

The peers pace their bytes with short sleeps to play a slow link (the pacing is the scenario, not a way to
wait for the code under test); every wait of the test is bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from wsproto.events import BytesMessage

from tests.shell.links.test_http import Dialer, ScriptedStream, conn_for, response
from tests.shell.links.test_ws import Peer
from thalovant.core.client.connection_events import OpenWebSocket
from thalovant.core.links.http_wire import RequestFailed, ResponseProgress, ResponseReceived, StartRequest
from thalovant.core.links.ws import PingWs, WsMessage, WsOpened, WsPonged, WsReceiving
from thalovant.core.machine import Input
from thalovant.errors import ThalovantTimeoutError
from thalovant.shell.links.dial import LinkTimes
from thalovant.shell.links.epoch import Endpoint, Timeouts
from thalovant.shell.links.http import HttpTimeouts
from thalovant.shell.links.http_driver import HttpDriver
from thalovant.shell.links.ws_driver import WsDriver

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class FakeEpoch:
    """A :class:`~thalovant.shell.links.epoch.LinkEpoch` that records the facts it is given."""

    endpoint: Endpoint
    timeouts: Timeouts
    tg: anyio.abc.TaskGroup
    number: int = 1
    facts: list[Input] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)
    times: LinkTimes = field(default_factory=LinkTimes)

    async def until(self, done: Callable[[], bool]) -> None:
        while not done():
            await self.changed.wait()
            self.changed = anyio.Event()

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        self.tg.start_soon(fn, *args)

    def fact(self, fact: Input) -> None:
        self.facts.append(fact)
        self.changed.set()

    async def deliver(self, fact: Input) -> None:
        self.fact(fact)


@asynccontextmanager
async def serve(handler: Callable[[anyio.abc.SocketStream], Awaitable[None]]) -> AsyncIterator[int]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(10):
                await handler(stream)

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield listener.extra(SocketAttribute.local_port)
        tg.cancel_scope.cancel()
    await listener.aclose()


BODY = b'{"messages": ["' + b"x" * 20_000 + b'"]}'


async def slow_answer(stream: anyio.abc.SocketStream) -> None:
    """Answer one GET with a body that takes ~1.2 s to arrive: three times the request timeout below."""
    request = b""
    while b"\r\n\r\n" not in request:
        request += await stream.receive()
    await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(BODY))
    step = len(BODY) // 8 + 1
    for i in range(0, len(BODY), step):
        await anyio.sleep(0.15)
        await stream.send(BODY[i : i + step])
    with anyio.move_on_after(2):
        await stream.receive()


async def test_a_slow_poll_answer_is_reported_as_progress_and_arrives_whole() -> None:
    async with serve(slow_answer) as port, anyio.create_task_group() as tg:
        epoch = FakeEpoch(Endpoint(host="127.0.0.1", port=port), Timeouts(http_request=0.4), tg)
        driver = HttpDriver(epoch)
        await driver.execute(StartRequest(req_id=7, method="GET", target="/get_messages", headers=(), body=b""))
        with anyio.fail_after(5):
            await epoch.until(lambda: any(isinstance(f, ResponseReceived | RequestFailed) for f in epoch.facts))
        tg.cancel_scope.cancel()
    *progress, last = epoch.facts
    assert isinstance(last, ResponseReceived), last  # before: RequestFailed(timeout) at 0.4 s
    assert (last.req_id, last.status, last.body) == (7, 200, BODY)
    assert progress and all(f == ResponseProgress(req_id=7) for f in progress)
    assert len(progress) <= 9  # at most one per read, and at most one per 0.1 s (a quarter of the timeout)


async def test_a_large_ws_message_on_its_way_after_a_ping_is_reported_as_receiving() -> None:
    """The hub's PONG queues behind a 1 MiB message that arrives slowly: its first bytes are reported."""
    big = b"y" * (1 << 20)

    async def hub(stream: anyio.abc.SocketStream) -> None:
        peer = Peer(stream)
        await peer.accept()
        ping = await peer.next_event()
        raw = peer.ws.send(BytesMessage(data=big))
        step = len(raw) // 6 + 1
        for i in range(0, len(raw), step):
            await stream.send(raw[i : i + step])
            await anyio.sleep(0.15)
        await peer.send(ping.response())  # type: ignore[attr-defined]
        with anyio.move_on_after(2):
            await peer.next_event()

    async with serve(hub) as port, anyio.create_task_group() as tg:
        epoch = FakeEpoch(Endpoint(host="127.0.0.1", port=port), Timeouts(send=2.0), tg)
        driver = WsDriver(epoch)
        await driver.execute(OpenWebSocket(target="/?authorization=abc="))
        with anyio.fail_after(5):
            await epoch.until(lambda: WsOpened() in epoch.facts)
            await driver.execute(PingWs())
            await epoch.until(lambda: WsPonged() in epoch.facts)
        tg.cancel_scope.cancel()
    assert epoch.facts == [WsOpened(), WsReceiving(), WsMessage(data=big), WsPonged()]


class Trickle(ScriptedStream):
    """Plays its chunks back ``gap`` seconds apart (a slow link), then hangs."""

    def __init__(self, chunks: list[bytes], gap: float) -> None:
        super().__init__(chunks, hang=True)
        self.gap = gap

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.chunks:
            await anyio.sleep(self.gap)
        return await super().receive(max_bytes)


async def test_with_progress_the_total_bound_counts_from_the_last_bytes() -> None:
    raw = response(b"z" * 100)
    reads = [0]

    async def progress() -> None:
        reads[0] += 1

    pieces = [raw[i : i + 20] for i in range(0, len(raw), 20)]  # ~10 pieces over ~1 s, total bound 0.3 s
    conn = conn_for(Dialer(Trickle(pieces, 0.1)), timeouts=HttpTimeouts(connect=1, read=1, write=1, total=0.3))
    with anyio.fail_after(5):
        resp = await conn.request("GET", "/get_messages", progress=progress)
    assert resp.body == b"z" * 100 and reads[0] == len(pieces)
    stalled = Trickle([raw[:40]], 0.05)  # then nothing: lost ``total`` after the last bytes
    started = anyio.current_time()
    with anyio.fail_after(5), pytest.raises(ThalovantTimeoutError):
        await conn_for(Dialer(stalled), timeouts=HttpTimeouts(connect=1, read=1, write=1, total=0.3)).request(
            "GET", "/get_messages", progress=progress
        )
    assert 0.3 <= anyio.current_time() - started < 0.6
