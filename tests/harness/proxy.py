"""A loopback HTTP CONNECT proxy for tests: records what it is asked, can demand credentials, refuse, or stall.

Theory of operation
-------------------
:class:`LoopbackProxy` listens on ``127.0.0.1`` (a free port) inside the test's event loop
(``async with LoopbackProxy(...) as proxy``; :func:`proxy_in_thread` runs one in a thread of
its own for blocking tests). For every connection it reads one request head with h11 (at most
16 KiB, within ``HEAD_TIMEOUT``), records it as a :class:`ProxyRequest`, and then, in this order:

* ``garbage`` set: writes those bytes instead of an HTTP answer and closes;
* ``stall``: never answers (holds the connection until the client gives up or the test ends);
* not a ``CONNECT``: 405;
* ``credentials`` set and the request's ``Proxy-Authorization`` is not their Basic form: 407
  with ``Proxy-Authenticate: Basic realm="thalovant-test"``;
* ``refuse`` set: that status;
* otherwise it opens the upstream (``upstream(host, port)``; by default a TCP connection, allowed
  only to loopback addresses: anything else is answered 403) and answers
  ``200 Connection established`` (502 when the upstream cannot be reached), then copies bytes both
  ways until either side ends.

Every byte that crosses the proxy, heads included, is appended to :attr:`LoopbackProxy.seen`
(capped at ``SEEN_LIMIT``): a test can assert that no hub secret went through in clear text.
Everything is bounded: connections (``max_connections``), the head, the time to read it.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import h11
from anyio.abc import SocketAttribute
from anyio.from_thread import start_blocking_portal

__all__ = ["LoopbackProxy", "ProxyRequest", "Upstream", "loopback_upstream", "proxy_in_thread"]

HEAD_TIMEOUT = 10.0
SEEN_LIMIT = 4 * 1024 * 1024
_CHUNK = 65536
_REASONS = {
    200: "Connection established",
    403: "Forbidden",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    502: "Bad Gateway",
}

#: Opens the connection the tunnel leads to; raise ``PermissionError`` to have the proxy answer 403.
Upstream = Callable[[str, int], Awaitable[anyio.abc.ByteStream]]


async def loopback_upstream(host: str, port: int) -> anyio.abc.ByteStream:
    """A TCP connection to ``host:port``, refused (``PermissionError``) unless it is a loopback address."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise PermissionError("the test proxy only connects to loopback addresses")
    return await anyio.connect_tcp(host.strip("[]"), port)


@dataclass(frozen=True)
class ProxyRequest:
    """One request head the proxy read, and the status it answered (None: no answer)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    status: int | None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return next((v for k, v in self.headers if k == name.lower()), None)


@dataclass
class LoopbackProxy:
    """The proxy (see the module docstring). ``url()`` is where clients find it."""

    credentials: tuple[str, str] | None = None
    refuse: int | None = None
    stall: bool = False
    garbage: bytes | None = None
    upstream: Upstream = loopback_upstream
    max_connections: int = 64
    requests: list[ProxyRequest] = field(default_factory=list)
    seen: bytearray = field(default_factory=bytearray)
    connections: int = 0
    port: int = 0
    _tg: anyio.abc.TaskGroup | None = field(default=None, repr=False)
    _listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = field(default=None, repr=False)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """``http://[user:password@]127.0.0.1:<port>`` (user and password as given, not encoded)."""
        auth = f"{user}:{password}@" if user is not None else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    @property
    def connects(self) -> list[str]:
        """The targets of every CONNECT request, in order."""
        return [r.target for r in self.requests if r.method == "CONNECT"]

    async def __aenter__(self) -> LoopbackProxy:
        self._listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = self._listener.extra(SocketAttribute.local_port)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._listener.serve, self._serve)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._tg is not None and self._listener is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        await self._listener.aclose()  # serve() leaves the socket listening: the port must refuse from now on

    # ---- one connection -------------------------------------------------------------------------------

    def _saw(self, data: bytes) -> None:
        room = SEEN_LIMIT - len(self.seen)
        if room > 0:
            self.seen += data[:room]

    async def _serve(self, client: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with client:
            if self.connections > self.max_connections:
                return
            head = await self._read_head(client)
            if head is None:
                return
            request, rest = head
            status, upstream = await self._answer(client, request)
            self.requests.append(
                ProxyRequest(
                    method=request.method.decode(),
                    target=request.target.decode(),
                    headers=tuple((k.decode().lower(), v.decode("latin-1")) for k, v in request.headers),
                    status=status,
                )
            )
            if upstream is not None:
                async with upstream:
                    if rest:
                        self._saw(rest)
                        await upstream.send(rest)
                    await self._pipe(client, upstream)

    async def _read_head(self, client: anyio.abc.ByteStream) -> tuple[h11.Request, bytes] | None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        with anyio.move_on_after(HEAD_TIMEOUT):
            try:
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await client.receive(_CHUNK)
                        self._saw(data)
                        conn.receive_data(data)
                    elif isinstance(event, h11.Request):
                        while conn.next_event() not in (h11.PAUSED, h11.NEED_DATA):
                            pass  # EndOfMessage: a CONNECT has no body
                        return event, conn.trailing_data[0]
                    else:
                        return None
            except (anyio.EndOfStream, anyio.BrokenResourceError, h11.RemoteProtocolError):
                return None
        return None

    async def _answer(
        self, client: anyio.abc.ByteStream, request: h11.Request
    ) -> tuple[int | None, anyio.abc.ByteStream | None]:
        """Answer the request; the status sent (None: none) and, for a 200, the open upstream."""
        if self.garbage is not None:
            await self._send(client, self.garbage)
            return None, None
        if self.stall:
            try:
                while await client.receive(_CHUNK):
                    pass
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
            return None, None
        status, upstream = self._verdict(request), None
        if status is None:
            host, _, port = request.target.decode().rpartition(":")
            try:
                upstream = await self.upstream(host, int(port))
                status = 200
            except PermissionError:
                status = 403
            except (OSError, ValueError):
                status = 502
        extra = b'Proxy-Authenticate: Basic realm="thalovant-test"\r\n' if status == 407 else b""
        length = b"" if status == 200 else b"Content-Length: 0\r\n"
        line = f"HTTP/1.1 {status} {_REASONS.get(status, 'Refused')}\r\n".encode()
        await self._send(client, line + extra + length + b"\r\n")
        return status, upstream

    def _verdict(self, request: h11.Request) -> int | None:
        if request.method != b"CONNECT":
            return 405
        if self.credentials is not None:
            user, password = self.credentials
            wanted = b"Basic " + base64.b64encode(f"{user}:{password}".encode())
            given = next((v for k, v in request.headers if k == b"proxy-authorization"), None)
            if given != wanted:
                return 407
        return self.refuse

    async def _send(self, stream: anyio.abc.ByteStream, data: bytes) -> None:
        self._saw(data)
        try:
            await stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    async def _pipe(self, a: anyio.abc.ByteStream, b: anyio.abc.ByteStream) -> None:
        async def copy(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream, tg: anyio.abc.TaskGroup) -> None:
            try:
                while True:
                    data = await src.receive(_CHUNK)
                    self._saw(data)
                    await dst.send(data)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            tg.cancel_scope.cancel()  # one side ended: the tunnel ends

        async with anyio.create_task_group() as tg:
            tg.start_soon(copy, a, b, tg)
            tg.start_soon(copy, b, a, tg)


@contextmanager
def proxy_in_thread(**kwargs: Any) -> Iterator[LoopbackProxy]:
    """A :class:`LoopbackProxy` running on an event loop in a thread of its own (for blocking tests)."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(LoopbackProxy(**kwargs)) as proxy:
        yield proxy
