"""WebSocket client adapter: anyio byte stream + wsproto, nothing else.

Theory of operation
-------------------
:class:`WsConnection` is an IO-only object. It knows nothing about HiveMind:
it opens a TCP (optionally TLS) stream through :mod:`~thalovant.shell.links.dial`, runs the
RFC 6455 upgrade with ``wsproto``, and then moves whole messages:

* ``send_text`` / ``send_bytes`` write one message (one frame).
* ``receive`` reads until a *complete* message is available. wsproto may hand
  out a message in pieces (``message_finished=False``); they are joined here.
  Pings are answered at once; :meth:`receive_event` also returns each PONG (a
  :class:`WsPong`: the answer to a liveness probe, :meth:`send_ping`), and after
  :meth:`want_progress` one :class:`WsProgress` as soon as bytes arrive that
  complete nothing (a large message on its way is not silence). A close
  frame from the hub is answered, the stream is closed, and ``receive``
  *returns* a :class:`WsClosed` value (it does not raise).
  A TCP drop without a close frame becomes ``WsClosed(code=1006)``, a missing
  status code is reported as 1005 (wsproto's convention), and a frame that
  wsproto cannot parse becomes a local close with wsproto's code (1002, 1007).
* A message larger than ``max_message_size`` ends the connection with 1009.

Every exception from anyio, wsproto, ssl or the OS is mapped to
:class:`~thalovant.errors.ThalovantConnectionError` (or
:class:`~thalovant.errors.ThalovantTimeoutError`). The request target carries
the credential token (``/?authorization=<token>``, sent raw on purpose, see
the protocol spec §3.2), so it is never stored on the object, never shown in
``repr`` and never put into an error message; underlying exceptions are
chained with ``from None`` when they could quote it.

Concurrency: one task may call ``receive`` while others send; sends are
serialised by a lock because ``receive`` itself sends pongs and close replies.
A send cancelled while writing (a timeout around it) aborts the stream: part of
a frame may be out. One cancelled while still waiting for the lock wrote nothing.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import anyio.abc
import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError

from thalovant.core.links.proxy import ProxyPolicy
from thalovant.errors import (
    ThalovantAuthenticationError,
    ThalovantConnectionError,
    ThalovantHandshakeError,
)
from thalovant.shell.links import dial
from thalovant.shell.links.ws_errors import host_header, mapped_errors

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "WsClosed", "WsConnection", "WsPong", "WsProgress", "WsUpgradeRejected"]

#: Largest message (after reassembly) accepted by default: 8 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 8 * 1024 * 1024
_READ_CHUNK = 65536
_CLOSE_GRACE = 2.0
_MESSAGE_TOO_BIG = 1009
_MAX_REJECT_BODY = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class WsClosed:
    """How the connection ended, as returned by :meth:`WsConnection.receive`.

    Attributes:
        code: the close code (1005 when the peer sent none, 1006 when the TCP
            stream ended without a close frame, 1009 when a message was too big).
        reason: the close reason text (may be empty).
        by_peer: True when the hub (or the network) ended it, False when this
            side closed it (oversized message, unparseable frame, ``close()``).
    """

    code: int
    reason: str = ""
    by_peer: bool = True


@dataclass(frozen=True, slots=True)
class WsPong:
    """A PONG frame arrived (returned by :meth:`WsConnection.receive_event` only)."""


@dataclass(frozen=True, slots=True)
class WsProgress:
    """Bytes arrived that complete no message yet (:meth:`WsConnection.receive_event`, once asked)."""


class WsUpgradeRejected(ThalovantHandshakeError):
    """The server answered the upgrade with something other than ``101``.

    Attributes:
        status_code: the HTTP status of the refusal.
    """

    def __init__(self, status_code: int) -> None:
        super().__init__(
            f"websocket upgrade refused with HTTP {status_code}",
            retryable=status_code >= 500 or status_code in (408, 429),
        )
        self.status_code = status_code


class WsConnection:
    """One client WebSocket connection. Create it with :meth:`connect`.

    Example::

        ws = await WsConnection.connect("127.0.0.1", 5678, "/?authorization=" + token,
                                        tls=None, server_hostname=None, timeout=10)
        await ws.send_text('{"msg_type": "hello"}')
        item = await ws.receive()          # str, bytes or WsClosed
        await ws.close()
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        ws: WSConnection,
        *,
        peer: str = "stream",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self._stream = stream
        self._ws = ws
        self._peer = peer
        self._max = max_message_size
        self._pending: deque[Event] = deque()
        self._parts: list[str | bytes] = []
        self._size = 0
        self._send_lock = anyio.Lock()
        self._closed: WsClosed | None = None
        self._progress_wanted = False

    def __repr__(self) -> str:
        state = "closed" if self._closed is not None else self._ws.state.name.lower()
        return f"<WsConnection {self._peer} {state}>"

    @property
    def closed(self) -> WsClosed | None:
        """How the connection ended, or None while it is still usable."""
        return self._closed

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        target: str,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float = 10.0,  # bounds DNS+TCP+TLS+upgrade as one typed ThalovantTimeoutError
        extra_headers: Sequence[tuple[str, str]] = (),
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        proxy: ProxyPolicy | None = None,
    ) -> WsConnection:
        """Open a TCP/TLS stream to ``host:port`` and upgrade it to a WebSocket.

        Args:
            host: hub host name or IP address.
            port: hub TCP port.
            target: the HTTP request target, sent byte-for-byte (for hub 4.x
                this must be exactly ``/?authorization=<token>``). Secret.
            tls: an SSL context for ``wss``, or None for plain ``ws``.
            server_hostname: name for SNI and certificate checks (default ``host``).
            timeout: seconds for the whole connect and upgrade.
            extra_headers: additional request headers (e.g. ``User-Agent``).
            max_message_size: largest accepted message after reassembly.
            proxy: the proxy policy for :func:`~thalovant.shell.links.dial.open_stream` (None: the environment).

        Returns:
            An open connection.

        Raises:
            ThalovantTimeoutError: the connect or the upgrade took too long.
            ThalovantAuthenticationError: the upgrade was answered 401 or 403.
            WsUpgradeRejected: any other non-101 answer (``.status_code``).
            ThalovantConnectionError: anything else (refused, reset, TLS, protocol).
        """
        peer = host_header(host, port)
        stream: anyio.abc.ByteStream | None = None
        try:
            with mapped_errors("connect"), anyio.fail_after(timeout):
                stream = await dial.open_stream(host, port, tls=tls, tls_hostname=server_hostname or host, proxy=proxy)
                dial.stream_opened()  # the upgrade's time counts from here (LinkTimes.admission_ms)
                ws = WSConnection(ConnectionType.CLIENT)
                conn = cls(stream, ws, peer=peer, max_message_size=max_message_size)
                headers = [(k.encode(), v.encode()) for k, v in extra_headers]
                await conn._upgrade(Request(host=peer, target=target, extra_headers=headers))
        except BaseException:
            if stream is not None:
                await _abort(stream)
            raise
        return conn

    async def _upgrade(self, request: Request) -> None:
        try:
            data = self._ws.send(request)
        except (WsLocalProtocolError, h11.LocalProtocolError, ValueError):  # bad target or header; never echo it
            raise ThalovantConnectionError("websocket request target is not a valid HTTP target") from None
        await self._stream.send(data)
        rejected: int | None = None
        body = 0
        while True:
            events = list(self._ws.events())
            for i, event in enumerate(events):
                if isinstance(event, AcceptConnection):
                    self._pending.extend(events[i + 1 :])  # frames that arrived with the 101
                    return
                if isinstance(event, RejectConnection):
                    rejected = event.status_code
                    if not event.has_body:
                        _raise_rejected(rejected)
                elif isinstance(event, RejectData):
                    body += len(event.data)
                    if event.body_finished or body > _MAX_REJECT_BODY:
                        _raise_rejected(rejected or 0)
            try:
                chunk = await self._stream.receive(_READ_CHUNK)
            except anyio.EndOfStream:
                if rejected is not None:
                    _raise_rejected(rejected)
                raise ThalovantConnectionError("websocket connect failed: server closed before answering") from None
            self._ws.receive_data(chunk)

    # -- sending ---------------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send one text message.

        Raises:
            ThalovantConnectionError: the connection is closed or broke.
        """
        await self._send_event(TextMessage(data=text))

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary message.

        Raises:
            ThalovantConnectionError: the connection is closed or broke.
        """
        await self._send_event(BytesMessage(data=data))

    async def send_ping(self, payload: bytes = b"") -> None:
        """Send a ping (keep-alive policy belongs to the core; this only sends)."""
        await self._send_event(Ping(payload=payload))

    async def _send_event(self, event: Event) -> None:
        if self._closed is not None or self._ws.state is not ConnectionState.OPEN:
            raise ThalovantConnectionError("websocket is not open")
        await self._send_raw(event)

    async def _send_raw(self, event: Event) -> None:
        with mapped_errors("send"):
            data = self._ws.send(event)
            async with self._send_lock:
                try:
                    await self._stream.send(data)
                except anyio.get_cancelled_exc_class():
                    await self.abort()  # cut off mid-write: a partial frame leaves the stream unusable
                    raise

    # -- receiving -------------------------------------------------------------------------------

    async def receive(self) -> str | bytes | WsClosed:
        """Wait for the next complete message.

        Returns:
            The message (``str`` for text, ``bytes`` for binary), or a
            :class:`WsClosed` once the connection has ended. After that, every
            call returns the same :class:`WsClosed` again.

        Raises:
            ThalovantConnectionError: only for failures while answering the peer
                (the stream broke while sending a pong).
        """
        item = await self.receive_event()
        while isinstance(item, WsPong | WsProgress):
            item = await self.receive_event()
        return item

    def want_progress(self) -> None:
        """Ask :meth:`receive_event` to return one :class:`WsProgress` when bytes arrive that complete nothing."""
        self._progress_wanted = True

    async def receive_event(self) -> str | bytes | WsClosed | WsPong | WsProgress:
        """Like :meth:`receive`, and also returns a :class:`WsPong` for every PONG frame from the peer
        and, after :meth:`want_progress`, one :class:`WsProgress`."""
        read = False
        while self._closed is None:
            while self._pending:
                result = await self._on_event(self._pending.popleft())
                if result is not None:
                    return result
            if self._closed is not None:
                break
            if read and self._progress_wanted:
                self._progress_wanted = False
                return WsProgress()
            try:
                chunk: bytes | None = await self._stream.receive(_READ_CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                chunk = None
            read = chunk is not None
            if self._ws.state is ConnectionState.CLOSED and chunk is not None:
                continue  # we already finished the close handshake; ignore trailing bytes
            self._ws.receive_data(chunk)
            self._pending.extend(self._ws.events())
        return self._closed

    async def _on_event(self, event: Event) -> str | bytes | WsClosed | WsPong | None:
        if isinstance(event, TextMessage | BytesMessage):
            data = event.data if isinstance(event.data, str) else bytes(event.data)
            return await self._on_data(data, event.message_finished)
        if isinstance(event, Ping):
            if self._ws.state is ConnectionState.OPEN:  # a close may already be queued behind it
                await self._send_raw(event.response())
            return None
        if isinstance(event, CloseConnection):
            return await self._on_close(event)
        return WsPong() if isinstance(event, Pong) else None  # anything else: nothing to do

    async def _on_data(self, data: str | bytes, finished: bool) -> str | bytes | WsClosed | None:
        self._size += len(data)
        if self._size > self._max:
            return await self._close_locally(_MESSAGE_TOO_BIG, "message too big")
        self._parts.append(data)
        if not finished:
            return None
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(parts[0], str):
            return "".join(p for p in parts if isinstance(p, str))
        return b"".join(p for p in parts if isinstance(p, bytes))

    async def _on_close(self, event: CloseConnection) -> WsClosed:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING:  # the hub started the close: answer it
            with anyio.move_on_after(_CLOSE_GRACE, shield=True):
                try:
                    await self._send_raw(event.response())
                except ThalovantConnectionError:
                    pass
            return await self._finish(WsClosed(code=event.code, reason=event.reason or ""))
        if state is ConnectionState.OPEN:  # wsproto could not parse a frame: we close with its code
            return await self._close_locally(event.code, event.reason or "")
        # CLOSED: either the reply to our own close, or the transport died (1006).
        by_peer = event.code == 1006
        return await self._finish(WsClosed(code=event.code, reason=event.reason or "", by_peer=by_peer))

    async def _close_locally(self, code: int, reason: str) -> WsClosed:
        with anyio.move_on_after(_CLOSE_GRACE, shield=True):
            try:
                await self._send_raw(CloseConnection(code=code, reason=reason))
            except ThalovantConnectionError:
                pass
        return await self._finish(WsClosed(code=code, reason=reason, by_peer=False))

    async def _finish(self, closed: WsClosed) -> WsClosed:
        if self._closed is None:
            self._closed = closed
        self._pending.clear()
        await _abort(self._stream)
        return self._closed

    # -- closing ---------------------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close politely: send a close frame, wait briefly for the reply, close TCP.

        Safe to call more than once and after the peer closed. Never raises
        for network trouble (there is nothing left to do about it).
        """
        if self._closed is not None:
            return
        with anyio.CancelScope(shield=True):
            if self._ws.state is ConnectionState.OPEN:
                with anyio.move_on_after(_CLOSE_GRACE):
                    try:
                        await self._send_raw(CloseConnection(code=code, reason=reason))
                        await self._await_close_reply()
                    except (ThalovantConnectionError, anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        pass
            await self._finish(WsClosed(code=code, reason=reason, by_peer=False))

    async def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake without reading: for when another task owns :meth:`receive`,
        which then returns the peer's reply as :class:`WsClosed`. Never raises for network trouble."""
        if self._closed is None and self._ws.state is ConnectionState.OPEN:
            try:
                await self._send_raw(CloseConnection(code=code, reason=reason))
            except ThalovantConnectionError:
                pass

    async def _await_close_reply(self) -> None:
        while True:
            chunk = await self._stream.receive(_READ_CHUNK)
            self._ws.receive_data(chunk)
            if any(isinstance(event, CloseConnection) for event in self._ws.events()):
                return

    async def abort(self) -> None:
        """Drop the TCP stream without a close handshake."""
        if self._closed is None:
            self._closed = WsClosed(code=1006, reason="aborted", by_peer=False)
        await _abort(self._stream)


def _raise_rejected(status: int) -> None:
    if status in (401, 403):
        raise ThalovantAuthenticationError(f"hub refused the websocket upgrade (HTTP {status})")
    raise WsUpgradeRejected(status)


async def _abort(stream: anyio.abc.ByteStream) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await anyio.aclose_forcefully(stream)
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
