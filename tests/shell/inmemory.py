"""An in-memory network with a hub at the far end, for offline shell tests.

:class:`MemoryHubNet` stands in for :func:`thalovant.shell.links.dial.open_stream`:
every stream the shell dials is a :class:`MemoryStream` whose far end is a
sans-IO server peer speaking the real wire protocol (a wsproto server for
WebSocket, an h11 server for HTTP polling). The peers hand what they parse to
a :class:`~thalovant.testing.FakeTransport` (the order-level emulation of the
hub's WebSocket and HTTP endpoints) in front of a :class:`~thalovant.testing.FakeHub`,
and write its answers back as bytes.

The hub side runs inside the client's ``send`` calls, so it needs no task of
its own and works in whichever event loop the client runs (the blocking client
has its own portal thread). Test-driven hub actions (:meth:`MemoryHubNet.push`,
:meth:`MemoryHubNet.drop`, :meth:`MemoryHubNet.close`) must run on the client's
event loop.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import h11
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from thalovant.core.client.connection_events import DropLink, LinkFact, LinkOrder, OpenWebSocket
from thalovant.core.links.http_wire import ResponseReceived, StartRequest
from thalovant.core.links.proxy import ProxyPolicy
from thalovant.core.links.ws import CloseWs, SendWs, WsClosed, WsMessage, WsOpened
from thalovant.core.machine import Output
from thalovant.core.wire.message import HiveMessage
from thalovant.testing import FakeHub, FakeTransport

__all__ = ["Dial", "MemoryHubNet", "MemoryStream"]


@dataclass(frozen=True)
class Dial:
    """One call of the dial seam, as the shell made it."""

    host: str
    port: int
    tls: bool
    tls_hostname: str | None
    tls_standard_compatible: bool
    proxy: ProxyPolicy | None = None


class MemoryStream(anyio.abc.ByteStream):
    """The client's end of one in-memory connection; ``send`` feeds the hub's sans-IO peer directly."""

    def __init__(self, peer: _Peer) -> None:
        self._peer = peer
        self._to_client: MemoryObjectSendStream[bytes]
        self._inbox: MemoryObjectReceiveStream[bytes]
        self._to_client, self._inbox = anyio.create_memory_object_stream[bytes](math.inf)
        self._pending = b""
        self.closed_by_client = False
        #: The hub's end is closed (the client gets EOF, then a broken pipe on send).
        self.hung_up = False

    # -- the client's side (anyio.abc.ByteStream) --------------------------------------------------

    async def send(self, item: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        if self.closed_by_client:
            raise anyio.ClosedResourceError
        if self.hung_up:
            raise anyio.BrokenResourceError
        self._peer.feed(bytes(item))

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self._pending:
            self._pending = await self._inbox.receive()  # EndOfStream after a hang-up, ClosedResource after aclose
        chunk, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return chunk

    async def send_eof(self) -> None:
        self._peer.end()

    async def aclose(self) -> None:
        if not self.closed_by_client:
            self.closed_by_client = True
            self._inbox.close()
            self._to_client.close()
            self._peer.end()
        await anyio.lowlevel.checkpoint()

    @property
    def extra_attributes(self) -> Any:
        return {}

    # -- the hub's side ------------------------------------------------------------------------------

    def deliver(self, data: bytes) -> None:
        if data and not self.hung_up and not self.closed_by_client:
            self._to_client.send_nowait(data)

    def hang_up(self) -> None:
        self.hung_up = True
        self._to_client.close()


class _Peer:
    """The hub's end of one stream (sans-IO): ``feed(b"")`` means the client closed the stream."""

    def __init__(self, net: MemoryHubNet) -> None:
        self.net = net
        self.stream = MemoryStream(self)
        self.ended = False

    def end(self) -> None:
        """The client closed (or half-closed) its end."""
        if not self.ended:
            self.ended = True
            self.feed(b"")

    def feed(self, data: bytes) -> None:
        raise NotImplementedError


class _WsPeer(_Peer):
    """A wsproto server: the upgrade opens an epoch of the FakeTransport; messages go to the hub."""

    def __init__(self, net: MemoryHubNet) -> None:
        super().__init__(net)
        self.ws = WSConnection(ConnectionType.SERVER)
        self.epoch = 0
        self.parts: list[str | bytes] = []
        self.client_closed = False

    def feed(self, data: bytes) -> None:
        if self.ws.state is ConnectionState.CLOSED:
            return
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, Request):
                self.epoch = self.net.new_ws_epoch(self)
                if self.net.reject_status is not None:
                    self.stream.deliver(self.ws.send(RejectConnection(status_code=self.net.reject_status)))
                    self.stream.hang_up()
                    return
                self.net.order(self.epoch, OpenWebSocket(target=event.target))
            elif isinstance(event, TextMessage | BytesMessage):
                self.parts.append(event.data)
                if event.message_finished:
                    parts, self.parts = self.parts, []
                    joined = "".join(map(str, parts)) if isinstance(parts[0], str) else b"".join(map(bytes, parts))
                    self.net.order(self.epoch, SendWs(data=joined))
            elif isinstance(event, Ping):
                self.stream.deliver(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.client_closed = True
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    self.stream.deliver(self.ws.send(event.response()))
                self.net.order(self.epoch, CloseWs(code=event.code, reason=event.reason or ""))
                self.stream.hang_up()
        if not data:
            self.stream.hang_up()
            self.net.forget(self.epoch)

    def on_fact(self, fact: object) -> None:
        if isinstance(fact, WsOpened):
            self.stream.deliver(self.ws.send(AcceptConnection()))
        elif isinstance(fact, WsMessage):
            event = TextMessage(data=fact.data) if isinstance(fact.data, str) else BytesMessage(data=fact.data)
            self.stream.deliver(self.ws.send(event))
        elif isinstance(fact, WsClosed) and not self.client_closed and self.ws.state is ConnectionState.OPEN:
            self.stream.deliver(self.ws.send(CloseConnection(code=fact.code or 1005, reason=fact.reason)))


class _HttpPeer(_Peer):
    """An h11 server: each complete request becomes a StartRequest for the FakeTransport."""

    def __init__(self, net: MemoryHubNet) -> None:
        super().__init__(net)
        self.http = h11.Connection(h11.SERVER)
        self.request: h11.Request | None = None
        self.body = b""

    def feed(self, data: bytes) -> None:
        self.http.receive_data(data)
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                break
            if isinstance(event, h11.Request):
                self.request, self.body = event, b""
            elif isinstance(event, h11.Data):
                self.body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage) and self.request is not None:
                self._answer(self.request.method.decode(), self.request.target.decode())
        if not data:
            self.stream.hang_up()

    def _answer(self, method: str, target: str) -> None:
        resp = self.net.http(method, target, self.body)
        headers = [*resp.headers, ("Content-Length", str(len(resp.body)))]
        out = self.http.send(h11.Response(status_code=resp.status, headers=headers))
        out += self.http.send(h11.Data(data=resp.body)) or b""
        out += self.http.send(h11.EndOfMessage()) or b""
        self.stream.deliver(out or b"")
        self.http.start_next_cycle()


class MemoryHubNet:
    """The network and the hub for one test: pass :meth:`open_stream` as the dial seam.

    Args:
        hub: the hub (e.g. ``FakeHub(password=...)``).
        protocol: "wss" or "https" (the client's).
        useragent / access_key: what the hub accepts in the authorization token (None: anything).

    Attributes:
        dials: every dial, in order. ``streams``: every stream handed out.
        fail_dial: when set, the next dials raise it (e.g. ``ConnectionRefusedError()``).
        reject_status: when set, WebSocket upgrades are refused with this HTTP status.
    """

    def __init__(
        self, hub: FakeHub, *, protocol: str, useragent: str | None = None, access_key: str | None = None
    ) -> None:
        self.hub = hub
        self.transport = FakeTransport(hub, protocol=protocol, useragent=useragent, access_key=access_key)
        self.dials: list[Dial] = []
        self.streams: list[MemoryStream] = []
        self.fail_dial: BaseException | None = None
        self.reject_status: int | None = None
        self._ws: dict[int, _WsPeer] = {}
        self._epochs = 0
        self._requests = 0
        self._activity: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<MemoryHubNet {self.transport.protocol} dials={len(self.dials)} {self.hub!r}>"

    async def open_stream(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        tls_hostname: str | None = None,
        tls_standard_compatible: bool = True,
        proxy: ProxyPolicy | None = None,
    ) -> anyio.abc.ByteStream:
        """The dial seam's signature: a fresh in-memory stream to the hub (``proxy`` is only recorded)."""
        await anyio.lowlevel.checkpoint()
        self.dials.append(Dial(host, port, tls is not None, tls_hostname, tls_standard_compatible, proxy))
        self._wake()
        if self.fail_dial is not None:
            raise self.fail_dial
        peer: _Peer = _WsPeer(self) if self.transport.protocol == "wss" else _HttpPeer(self)
        self.streams.append(peer.stream)
        return peer.stream

    async def wait_until(self, condition: Callable[[], bool], *, within: float = 5.0) -> None:
        """Wait until ``condition()`` holds, checked after every dial and every request or frame the hub gets.

        Raises:
            TimeoutError: it did not hold within ``within`` seconds.
        """
        with anyio.fail_after(within):
            while not condition():
                self._activity = anyio.Event()
                await self._activity.wait()

    def _wake(self) -> None:
        if self._activity is not None:
            self._activity.set()

    # -- between the peers and the FakeTransport ----------------------------------------------------

    def new_ws_epoch(self, peer: _WsPeer) -> int:
        self._epochs += 1
        self._ws[self._epochs] = peer
        return self._epochs

    def order(self, epoch: int, order: Output) -> None:
        self.transport.execute(LinkOrder(epoch=epoch, order=order))
        self._flush()
        self._wake()

    def forget(self, epoch: int) -> None:
        """The client's end of ``epoch`` went away: the hub forgets that connection."""
        self.transport.execute(DropLink(epoch=epoch))
        self._flush()
        self._wake()

    def http(self, method: str, target: str, body: bytes) -> ResponseReceived:
        self._requests += 1
        rid = self._requests
        self.transport.execute(
            LinkOrder(epoch=1, order=StartRequest(req_id=rid, method=method, target=target, headers=(), body=body))
        )
        answers = [f for f in self.transport.facts if isinstance(f.fact, ResponseReceived) and f.fact.req_id == rid]
        for fact in answers:
            self.transport.facts.remove(fact)
        assert len(answers) == 1, f"no single answer to {method} {target.split('?')[0]}"
        answer = answers[0].fact
        assert isinstance(answer, ResponseReceived)
        self._wake()
        return answer

    def _flush(self) -> None:
        facts = self.transport.facts
        while facts:
            fact: LinkFact = facts.popleft()
            peer = self._ws.get(fact.epoch)
            if peer is not None:
                peer.on_fact(fact.fact)

    # -- the hub acting on its own (call on the client's event loop) --------------------------------

    @property
    def current(self) -> MemoryStream | None:
        """The stream of the hub's current WebSocket connection (None when there is none)."""
        peer = self._ws.get(self.transport.epoch)
        return peer.stream if peer is not None else None

    def push(self, event_type: str, data: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> None:
        """The hub sends a bus event (HTTP: at the client's next poll)."""
        self.transport.push(event_type, data, context)
        self._flush()

    def push_frame(self, message: HiveMessage) -> None:
        """The hub sends a whole frame, e.g. BINARY (HTTP: at the client's next poll)."""
        self.transport.push_frame(message)
        self._flush()

    def drop(self) -> None:
        """The network dies under the current link: no close frame, the client's reads hit EOF."""
        stream = self.current
        self.transport.drop_link()
        self.transport.facts.clear()
        if stream is not None:
            stream.hang_up()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """The hub closes the current WebSocket with ``code`` (a close frame, then the TCP close)."""
        self.transport.close_link(code, reason)
        self._flush()
