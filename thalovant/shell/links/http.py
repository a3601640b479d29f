"""The project's one HTTP/1.1 client: h11 over an anyio byte stream.

Theory of operation
-------------------
:class:`HttpConnection` owns at most one open stream to one origin and sends
one request at a time (an anyio lock serialises callers). h11 does all the
parsing; this module only moves bytes:

* sending is ``h11.send()`` then ``stream.send()``, under the write timeout;
* receiving loops on ``next_event()``, reading more bytes on ``NEED_DATA``,
  each read under the read timeout, the whole request under ``total``;
* after a complete response with both sides ``DONE``, ``start_next_cycle()``
  keeps the stream for the next request; on ``MUST_CLOSE``, EOF or any error
  the stream is closed and the next request dials again;
* before a request goes out on a *reused* keep-alive stream, the socket is
  polled without waiting: an idle stream has nothing to read, so anything
  readable (the server's FIN, a reset, stray bytes) means the server is done
  with it; it is closed and the request dials afresh, before any byte of it
  left (a server that died while idle thus fails the request as never sent);
* a request on a *reused* keep-alive stream that dies before a single byte
  of the response arrived is re-sent once on a fresh stream, but only for
  idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS); a POST is never sent
  twice;
* a body larger than ``max_body`` aborts the response with
  :class:`HttpBodyTooLargeError`;
* ``progress`` (optional) is awaited after each read that brought bytes of the
  response, outside the read timeout, and then ``total`` counts from the last
  such read instead of the start: a slow but moving answer is not silence.

Every exception from anyio, h11, ``ssl`` or the OS leaves through
:func:`map_exceptions` as a ``ThalovantConnectionError`` or
``ThalovantTimeoutError``. Messages name the method, origin and path but never
the query string, which may carry ``authorization=``.

The stream comes from a ``connector`` callable, so tests can feed scripted
byte chunks without sockets; the default dials through :mod:`~thalovant.shell.links.dial`.
"""

from __future__ import annotations

import re
import selectors
import ssl
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc
import h11

from thalovant.core.identity.protocols import DEFAULT_PORTS
from thalovant.core.links.proxy import ProxyPolicy
from thalovant.errors import LocalProtocolError, ThalovantConnectionError, ThalovantTimeoutError
from thalovant.shell.links import dial
from thalovant.shell.tls import make_ssl_context

Connector = Callable[[], Awaitable[anyio.abc.ByteStream]]
Progress = Callable[[], Awaitable[None]]
Headers = Sequence[tuple[str, str]]

#: Largest response body accepted unless the caller says otherwise.
DEFAULT_MAX_BODY = 4 * 1024 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_READ_SIZE = 65536
_SCHEMES = ("http", "https", "ws", "wss")


class HttpBodyTooLargeError(ThalovantConnectionError):
    """The response body exceeded the connection's ``max_body``; the stream was closed."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message, retryable=False)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class HttpTimeouts:
    """Seconds allowed for each phase; ``total`` (optional) bounds a whole request."""

    connect: float = 10.0
    read: float = 10.0
    write: float = 10.0
    total: float | None = None

    @classmethod
    def uniform(cls, seconds: float) -> HttpTimeouts:
        """Every phase and the whole request bounded by ``seconds``."""
        return cls(connect=seconds, read=seconds, write=seconds, total=seconds)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response. Header names are lower case; ``body`` is fully read."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)
    reason: str = ""

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k == wanted), None)


@dataclass(frozen=True, slots=True)
class SplitUrl:
    """An ``http(s)``/``ws(s)`` URL split for dialling. ``path`` may contain a query."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS[self.scheme]
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")

    @property
    def safe_path(self) -> str:
        """The path without its query string: fit for messages and logs."""
        return safe_target(self.path)


def safe_target(target: str) -> str:
    """A request target with the query and fragment cut off."""
    return target.split("?", 1)[0].split("#", 1)[0] or "/"


def split_url(url: str) -> SplitUrl:
    """Split ``scheme://host[:port][/path][?query]``.

    Raises:
        LocalProtocolError: not an http/https/ws/wss URL, a URL with ``user:pass@``,
            or a bad port. The message never repeats the query.
    """
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _SCHEMES:
        raise LocalProtocolError("URL must start with http://, https://, ws:// or wss://")
    authority, slash, tail = rest.partition("/")
    authority, q, query = authority.partition("?")
    path = slash + tail if slash else "/"
    if q:
        path = "/?" + query
    if "@" in authority:
        raise LocalProtocolError("URL must not contain credentials (user:pass@)")
    if authority.startswith("["):
        host, _, port_text = authority[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise LocalProtocolError(f"URL has no host: {scheme}://...{safe_target(path)}")
    if port_text and (not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 < int(port_text) < 65536):
        raise LocalProtocolError(f"URL has a bad port: {scheme}://{host}:{port_text[:8]}")
    port = int(port_text) if port_text else DEFAULT_PORTS[scheme]
    return SplitUrl(scheme=scheme, host=host, port=port, path=path)


@contextmanager
def map_exceptions(what: str) -> Iterator[None]:
    """Turn anyio / h11 / ssl / OS errors into thalovant errors naming ``what``.

    ``what`` must already be free of secrets (``GET https://h:443/path``, no query).
    """
    try:
        yield
    except (ThalovantConnectionError, ThalovantTimeoutError, LocalProtocolError):
        raise
    except TimeoutError as exc:
        raise ThalovantTimeoutError(f"{what}: timed out") from exc
    except h11.LocalProtocolError as exc:
        # h11 quotes offending header values (an Authorization token, say): never repeat its text
        raise LocalProtocolError(f"{what}: invalid request target or header (not sent)") from exc
    except h11.RemoteProtocolError as exc:
        raise ThalovantConnectionError(f"{what}: malformed or incomplete HTTP response") from exc
    except ssl.SSLCertVerificationError as exc:
        raise ThalovantConnectionError(
            f"{what}: TLS certificate verification failed ({exc.verify_message}); pass ca_file= with the server's CA",
            retryable=False,
        ) from exc
    except ssl.SSLError as exc:
        raise ThalovantConnectionError(f"{what}: TLS failed ({exc.reason or type(exc).__name__})") from exc
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise ThalovantConnectionError(
                f"{what}: TLS certificate verification failed; pass ca_file= with the server's CA", retryable=False
            ) from exc
        raise ThalovantConnectionError(f"{what}: connection closed by the server") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ThalovantConnectionError(f"{what}: cannot connect ({reason})") from exc


class HttpNotSentError(ThalovantConnectionError):
    """The connection could not be opened: no byte of the request left this process."""


def _idle_stream_is_done(stream: anyio.abc.ByteStream) -> bool:
    """Whether an idle kept-alive stream was closed (or spoken on) by the server, polled without waiting.

    Streams without a socket (scripted ones in tests) are taken as open.
    """
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    if sock is None:
        return False
    try:
        with selectors.DefaultSelector() as selector:  # poll/epoll: no FD_SETSIZE limit, unlike select()
            selector.register(sock, selectors.EVENT_READ)
            return bool(selector.select(0))
    except (OSError, ValueError):  # a closed socket: unusable either way
        return True


class _StaleConnection(Exception):
    """A reused keep-alive stream died before the response started."""


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to one origin; requests run one at a time.

    Use as ``async with HttpConnection(...) as conn:`` or call :meth:`aclose`. ``proxy`` is the
    default connector's proxy policy (None: ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` at each dial).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        timeouts: HttpTimeouts | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        connector: Connector | None = None,
        proxy: ProxyPolicy | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.timeouts = timeouts or HttpTimeouts()
        self.max_body = max_body
        self._ssl_context = ssl_context
        self._connector = connector or self._dial
        self._proxy = proxy  # for the default connector; None: the environment at each dial
        self._stream: anyio.abc.ByteStream | None = None
        self._h11: h11.Connection | None = None
        self._reused = False
        self._lock = anyio.Lock()
        scheme = "https" if tls else "http"
        self._origin = SplitUrl(scheme, host, port, "/").origin

    def __repr__(self) -> str:
        return f"HttpConnection({self._origin!r}, open={self._stream is not None})"

    async def __aenter__(self) -> HttpConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def is_open(self) -> bool:
        """Whether a stream is currently kept open for the next request."""
        return self._stream is not None

    async def _dial(self) -> anyio.abc.ByteStream:
        if not self.tls:
            stream = await dial.open_stream(self.host, self.port, proxy=self._proxy)
        else:
            if self._ssl_context is None:
                self._ssl_context = make_ssl_context()
            stream = await dial.open_stream(
                self.host, self.port, tls=self._ssl_context, tls_standard_compatible=False, proxy=self._proxy
            )
        dial.stream_opened()  # the first answer's time counts from here (LinkTimes.admission_ms)
        return stream

    async def aclose(self) -> None:
        """Close the kept stream, if any. Safe to call twice."""
        stream, self._stream, self._h11 = self._stream, None, None
        if stream is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                try:
                    await stream.aclose()
                except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, ssl.SSLError):
                    pass

    async def request(
        self,
        method: str,
        target: str,
        headers: Headers = (),
        body: bytes = b"",
        *,
        timeouts: HttpTimeouts | None = None,
        progress: Progress | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole response.

        Args:
            method: HTTP method, e.g. ``"GET"``.
            target: origin-form target (``/path?query``); the query never appears in errors.
            headers: extra headers; ``host``, and ``content-length`` when there is a body, are added.
            body: request body (may be empty).
            timeouts: overrides the connection's :class:`HttpTimeouts` for this request.
            progress: awaited after each read that brought bytes of the response; given, ``total``
                counts from the last such read instead of the start of the request.

        Raises:
            ThalovantTimeoutError: a phase took longer than its timeout.
            HttpBodyTooLargeError: the body exceeded ``max_body``.
            ThalovantConnectionError: connect, TLS, I/O or HTTP framing failed.
            LocalProtocolError: the request itself is invalid (bad header, bad target).
        """
        limits = timeouts or self.timeouts
        method = method.upper()
        what = f"{method} {self._origin}{safe_target(target)}"
        all_headers = [("host", self._host_header()), *headers]
        if body or method in ("POST", "PUT", "PATCH"):
            all_headers.append(("content-length", str(len(body))))
        async with self._lock:
            with map_exceptions(what):
                try:
                    with anyio.fail_after(limits.total if limits.total is not None else float("inf")) as bound:
                        progress = _restarting(bound, limits.total, progress)
                        try:
                            return await self._attempt(method, target, all_headers, body, limits, progress)
                        except _StaleConnection:
                            if method not in _IDEMPOTENT:
                                raise ThalovantConnectionError(
                                    f"{what}: the kept-alive connection was closed by the server; the request was "
                                    "not re-sent because it is not idempotent"
                                ) from None
                            return await self._attempt(method, target, all_headers, body, limits, progress)
                except BaseException:
                    await self.aclose()
                    raise

    def _host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS["https" if self.tls else "http"]
        return host if self.port == default else f"{host}:{self.port}"

    async def _attempt(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, limits: HttpTimeouts,
        progress: Progress | None = None,
    ) -> HttpResponse:  # fmt: skip
        if self._stream is not None and self._reused and _idle_stream_is_done(self._stream):
            await self.aclose()
        if self._stream is None or self._h11 is None:
            try:
                with anyio.fail_after(limits.connect):
                    self._stream = await self._connector()
            except (OSError, ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
                try:
                    with map_exceptions(f"{method} {self._origin}{safe_target(target)}"):
                        raise exc
                except ThalovantConnectionError as mapped:
                    raise HttpNotSentError(str(mapped), retryable=mapped.retryable) from exc
            self._h11 = h11.Connection(h11.CLIENT)
            self._reused = False
        stream, conn, reused = self._stream, self._h11, self._reused
        got_bytes = False
        try:
            data = conn.send(h11.Request(method=method, target=target, headers=headers))
            if body:
                data += conn.send(h11.Data(data=body))
            data += conn.send(h11.EndOfMessage())
            with anyio.fail_after(limits.write):
                await stream.send(data)
            status, reason, resp_headers, chunks, size = 0, "", [], [], 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    incoming = await _receive(stream, limits.read)
                    got_bytes = got_bytes or bool(incoming)
                    if not incoming and not got_bytes and reused:
                        raise _StaleConnection
                    conn.receive_data(incoming)
                    if incoming and progress is not None:
                        await progress()
                elif isinstance(event, h11.InformationalResponse):
                    continue
                elif isinstance(event, h11.Response):
                    status, reason = event.status_code, event.reason.decode("latin-1")
                    resp_headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers]
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > self.max_body:
                        raise HttpBodyTooLargeError(
                            f"{method} {self._origin}{safe_target(target)}: response body larger than "
                            f"{self.max_body} bytes",
                            limit=self.max_body,
                        )
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:  # ConnectionClosed or PAUSED before the end of the response
                    raise h11.RemoteProtocolError("connection closed before the response was complete")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            if reused and not got_bytes:
                await self.aclose()
                raise _StaleConnection from None
            raise
        except _StaleConnection:
            await self.aclose()
            raise
        await self._finish_cycle(conn)
        return HttpResponse(status=status, headers=tuple(resp_headers), body=b"".join(chunks), reason=reason)

    async def _finish_cycle(self, conn: h11.Connection) -> None:
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            self._reused = True
        else:  # MUST_CLOSE / CLOSED: drop the stream; the next request dials again
            await self.aclose()


async def _receive(stream: anyio.abc.ByteStream, seconds: float) -> bytes:
    """The next bytes of the response within ``seconds``; ``b""`` at the end of the stream."""
    with anyio.fail_after(seconds):
        try:
            return await stream.receive(_READ_SIZE)
        except anyio.EndOfStream:
            return b""


def _restarting(bound: anyio.CancelScope, total: float | None, progress: Progress | None) -> Progress | None:
    """``progress`` that first moves ``bound`` to ``total`` seconds from now."""
    if progress is None or total is None:
        return progress
    report, seconds = progress, total

    async def moved() -> None:
        bound.deadline = anyio.current_time() + seconds
        await report()

    return moved
