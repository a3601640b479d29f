"""thalovant.shell.links.http: h11 over scripted in-memory streams and over loopback TCP."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.abc
import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thalovant.errors import LocalProtocolError, ThalovantConnectionError, ThalovantTimeoutError
from thalovant.shell.links.http import (
    HttpBodyTooLargeError,
    HttpConnection,
    HttpNotSentError,
    HttpResponse,
    HttpTimeouts,
    map_exceptions,
    safe_target,
    split_url,
)

FAST = HttpTimeouts(connect=2.0, read=2.0, write=2.0, total=5.0)
SECRET = "c2VjcmV0LXRva2VuLXZhbHVl"


class ScriptedStream(anyio.abc.ByteStream):
    """Plays back canned chunks; then EOF (or hangs forever when ``hang``)."""

    def __init__(self, chunks: Sequence[bytes], *, hang: bool = False, fail_send: bool = False) -> None:
        self.chunks = list(chunks)
        self.sent = bytearray()
        self.hang = hang
        self.fail_send = fail_send
        self.closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.closed:
            raise anyio.ClosedResourceError
        if self.chunks:
            chunk = self.chunks.pop(0)
            if len(chunk) > max_bytes:
                self.chunks.insert(0, chunk[max_bytes:])
                chunk = chunk[:max_bytes]
            return chunk
        if self.hang:
            await anyio.sleep_forever()
        raise anyio.EndOfStream

    async def send(self, item: bytes) -> None:
        if self.fail_send:
            raise anyio.BrokenResourceError
        self.sent += item

    async def send_eof(self) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True


class Dialer:
    """Connector handing out pre-built streams, counting dials."""

    def __init__(self, *streams: ScriptedStream) -> None:
        self.streams = list(streams)
        self.dials = 0

    async def __call__(self) -> anyio.abc.ByteStream:
        self.dials += 1
        if not self.streams:
            raise ConnectionRefusedError(111, "Connection refused")
        return self.streams.pop(0)


def response(body: bytes = b'{"ok":true}', *, status: int = 200, extra: str = "", chunked: bool = False) -> bytes:
    if chunked:
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:3], body[3:]) if p) + b"0\r\n\r\n"
        head = f"HTTP/1.1 {status} OK\r\ntransfer-encoding: chunked\r\n{extra}\r\n"
    else:
        payload = body
        head = f"HTTP/1.1 {status} OK\r\ncontent-length: {len(body)}\r\nX-Thing: A\r\n{extra}\r\n"
    return head.encode() + payload


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(fn)


def conn_for(dialer: Dialer, **kw: Any) -> HttpConnection:
    return HttpConnection("example.test", 8080, connector=dialer, timeouts=kw.pop("timeouts", FAST), **kw)


# ------------------------------------------------------------------ in-memory


def test_get_parses_status_headers_body_and_sends_a_valid_request() -> None:
    stream = ScriptedStream([response()])
    dialer = Dialer(stream)

    async def main() -> HttpResponse:
        async with conn_for(dialer) as conn:
            return await conn.request("get", "/api/v1/hubs?limit=5", [("accept", "application/json")])

    resp = run(main)
    assert (resp.status, resp.body, resp.header("x-thing"), resp.header("X-THING")) == (200, b'{"ok":true}', "A", "A")
    server = h11.Connection(h11.SERVER)
    server.receive_data(bytes(stream.sent))
    req = server.next_event()
    assert isinstance(req, h11.Request)
    assert req.method == b"GET" and req.target == b"/api/v1/hubs?limit=5"
    assert (b"host", b"example.test:8080") in list(req.headers)
    assert stream.closed


def test_post_sends_body_with_content_length() -> None:
    stream = ScriptedStream([response(status=201)])

    async def main() -> HttpResponse:
        return await conn_for(Dialer(stream)).request("POST", "/c", [("content-type", "application/json")], b'{"a":1}')

    assert run(main).status == 201
    server = h11.Connection(h11.SERVER)
    server.receive_data(bytes(stream.sent))
    req = server.next_event()
    data = server.next_event()
    assert isinstance(req, h11.Request) and (b"content-length", b"7") in list(req.headers)
    assert isinstance(data, h11.Data) and data.data == b'{"a":1}'


def test_keep_alive_reuses_one_stream_for_two_requests() -> None:
    dialer = Dialer(ScriptedStream([response(b"one"), response(b"two", chunked=True)]))

    async def main() -> list[bytes]:
        async with conn_for(dialer) as conn:
            return [(await conn.request("GET", "/a")).body, (await conn.request("GET", "/b")).body]

    assert run(main) == [b"one", b"two"]
    assert dialer.dials == 1


def test_connection_close_makes_the_next_request_dial_again() -> None:
    first = ScriptedStream([response(b"one", extra="connection: close\r\n")])
    dialer = Dialer(first, ScriptedStream([response(b"two")]))

    async def main() -> list[bytes]:
        async with conn_for(dialer) as conn:
            a = (await conn.request("GET", "/a")).body
            assert not conn.is_open
            return [a, (await conn.request("GET", "/b")).body]

    assert run(main) == [b"one", b"two"]
    assert dialer.dials == 2 and first.closed


def test_stale_keep_alive_stream_is_redialled_once_for_get() -> None:
    dialer = Dialer(ScriptedStream([response(b"one")]), ScriptedStream([response(b"two")]))

    async def main() -> bytes:
        async with conn_for(dialer) as conn:
            await conn.request("GET", "/a")
            return (await conn.request("GET", "/b")).body  # first stream hits EOF: server closed it while idle

    assert run(main) == b"two"
    assert dialer.dials == 2


def test_stale_keep_alive_stream_is_not_redialled_for_post() -> None:
    second = ScriptedStream([response(b"two")])
    dialer = Dialer(ScriptedStream([response(b"one")]), second)

    async def main() -> None:
        async with conn_for(dialer) as conn:
            await conn.request("GET", "/a")
            await conn.request("POST", "/b?authorization=" + SECRET, body=b"x")

    with pytest.raises(ThalovantConnectionError, match="not re-sent") as info:
        run(main)
    assert SECRET not in str(info.value) and "/b" in str(info.value)
    assert dialer.dials == 1 and second.sent == b""


def test_oversized_body_raises_typed_error_and_closes() -> None:
    stream = ScriptedStream([response(b"x" * 5000)])

    async def main() -> None:
        await conn_for(Dialer(stream), max_body=4096).request("GET", "/big")

    with pytest.raises(HttpBodyTooLargeError) as info:
        run(main)
    assert info.value.limit == 4096 and info.value.retryable is False and stream.closed


def test_body_exactly_at_the_limit_is_accepted() -> None:
    async def main() -> HttpResponse:
        return await conn_for(Dialer(ScriptedStream([response(b"y" * 4096)])), max_body=4096).request("GET", "/")

    assert len(run(main).body) == 4096


@pytest.mark.parametrize(
    "chunks",
    [
        [b""],  # EOF before any byte
        [b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nonly-part"],  # truncated body
        [b"HTTP/1.1 200 OK\r\ncontent-le"],  # truncated head
        [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab"],  # truncated chunk
        [b"SMTP ready\r\n\r\n"],  # not HTTP
    ],
)
def test_truncated_or_garbage_responses_raise_connection_error_without_query(chunks: list[bytes]) -> None:
    stream = ScriptedStream(chunks)

    async def main() -> None:
        await conn_for(Dialer(stream)).request("GET", "/path?authorization=" + SECRET)

    with pytest.raises(ThalovantConnectionError) as info:
        run(main)
    text = str(info.value) + repr(info.value)
    assert SECRET not in text and "authorization" not in text and "/path" in text
    assert stream.closed


def test_read_timeout_fires() -> None:
    stream = ScriptedStream([b"HTTP/1.1 200 OK\r\n"], hang=True)

    async def main() -> None:
        timeouts = HttpTimeouts(connect=1, read=0.2, write=1)
        await conn_for(Dialer(stream), timeouts=timeouts).request("GET", "/slow?authorization=" + SECRET)

    with pytest.raises(ThalovantTimeoutError, match="timed out") as info:
        run(main)
    assert isinstance(info.value, TimeoutError) and SECRET not in str(info.value)
    assert stream.closed


def test_total_timeout_bounds_a_slow_drip() -> None:
    class Drip(ScriptedStream):
        async def receive(self, max_bytes: int = 65536) -> bytes:
            await anyio.sleep(0.05)
            return b"x"

    async def main() -> None:
        await conn_for(Dialer(Drip([])), timeouts=HttpTimeouts(read=1, total=0.3)).request("GET", "/")

    with pytest.raises(ThalovantTimeoutError):
        run(main)


def test_connect_failure_and_send_failure_map_to_connection_error() -> None:
    async def refused() -> None:
        await conn_for(Dialer()).request("GET", "/")

    with pytest.raises(ThalovantConnectionError, match="cannot connect"):
        run(refused)

    async def broken() -> None:
        await conn_for(Dialer(ScriptedStream([], fail_send=True))).request("GET", "/")

    with pytest.raises(ThalovantConnectionError, match="closed"):
        run(broken)


@pytest.mark.parametrize("header", [("bad header", "x"), ("authorization", "Bearer " + SECRET + "\r\nx: y")])
def test_invalid_request_header_is_local_protocol_error_without_its_value(header: tuple[str, str]) -> None:
    stream = ScriptedStream([response()])

    async def main() -> None:
        await conn_for(Dialer(stream)).request("GET", "/", [header])

    with pytest.raises(LocalProtocolError) as info:
        run(main)
    assert SECRET not in str(info.value) and stream.sent == b""


def test_informational_responses_are_skipped() -> None:
    stream = ScriptedStream([b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"done")])

    async def main() -> HttpResponse:
        return await conn_for(Dialer(stream)).request("POST", "/", body=b"1")

    assert run(main).body == b"done"


RESPONSES = [
    response(b'{"items":[1,2,3]}'),
    response(b"hello world, chunked", chunked=True),
    response(b"", status=204),
    b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nRetry-After: 5\r\n\r\nnop",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(RESPONSES), st.data())
def test_three_way_chunking_does_not_change_the_result(raw: bytes, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(raw)))
    j = data.draw(st.integers(i, len(raw)))

    async def main(chunks: list[bytes]) -> HttpResponse:
        return await conn_for(Dialer(ScriptedStream(chunks))).request("GET", "/")

    whole = anyio.run(main, [raw])
    split = anyio.run(main, [c for c in (raw[:i], raw[i:j], raw[j:]) if c])
    assert split == whole
    assert whole.status in (200, 204, 404)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=5))
def test_garbage_from_the_server_only_raises_typed_errors(chunks: list[bytes]) -> None:
    async def main() -> None:
        await conn_for(Dialer(ScriptedStream(chunks)), timeouts=HttpTimeouts(read=0.5, total=1)).request("GET", "/")

    try:
        anyio.run(main)
    except (ThalovantConnectionError, ThalovantTimeoutError):
        pass


# ------------------------------------------------------------------ URL helper


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.test/api", ("https", "api.example.test", 443, "/api", True)),
        ("http://127.0.0.1:5679", ("http", "127.0.0.1", 5679, "/", False)),
        ("wss://h:8443/x/y?authorization=abc", ("wss", "h", 8443, "/x/y?authorization=abc", True)),
        ("ws://[::1]:5678/", ("ws", "::1", 5678, "/", False)),
        ("HTTPS://H.test?x=1", ("https", "H.test", 443, "/?x=1", True)),
    ],
)
def test_split_url(url: str, expected: tuple[Any, ...]) -> None:
    s = split_url(url)
    assert (s.scheme, s.host, s.port, s.path, s.tls) == expected
    assert "authorization" not in s.safe_path


def test_split_url_origin_omits_default_port() -> None:
    assert split_url("https://a.test:443/x").origin == "https://a.test"
    assert split_url("http://[::1]:8080/x").origin == "http://[::1]:8080"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x",
        "no-scheme",
        "https://",
        "http://user:pw@h/",
        "http://h:0",
        "http://h:99999",
        "http://h:x",
        "http://h:\u00b9",
    ],
)
def test_split_url_rejects_bad_urls_without_echoing_credentials(url: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        split_url(url)
    assert "pw" not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_split_url_never_raises_untyped(url: str) -> None:
    try:
        s = split_url(url)
    except LocalProtocolError:
        return
    assert 0 < s.port < 65536 and s.path.startswith("/")


def test_safe_target_cuts_query_and_fragment() -> None:
    assert safe_target("/a/b?authorization=x#f") == "/a/b"
    assert safe_target("?q") == "/"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), ThalovantTimeoutError),
        (ConnectionResetError(104, "reset"), ThalovantConnectionError),
        (anyio.BrokenResourceError(), ThalovantConnectionError),
        (anyio.EndOfStream(), ThalovantConnectionError),
        (h11.RemoteProtocolError("bad"), ThalovantConnectionError),
        (h11.LocalProtocolError("bad"), LocalProtocolError),
        (socket.gaierror(-2, "Name or service not known"), ThalovantConnectionError),
    ],
)
def test_map_exceptions_table(exc: BaseException, expected: type[BaseException]) -> None:
    with pytest.raises(expected) as info, map_exceptions("GET http://h/p"):
        raise exc
    assert str(info.value).startswith("GET http://h/p")
    assert info.value.__cause__ is exc


def test_map_exceptions_lets_unrelated_bugs_through() -> None:
    with pytest.raises(KeyError), map_exceptions("x"):
        raise KeyError("bug")


# ------------------------------------------------------------------ loopback TCP


async def _serve(handler: Callable[[anyio.abc.SocketStream], Awaitable[None]]) -> tuple[Any, int]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    return listener, port


def test_loopback_keep_alive_and_reconnect() -> None:
    accepted = 0

    async def handle(stream: anyio.abc.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        server = h11.Connection(h11.SERVER)
        async with stream:
            for _ in range(10):
                event = server.next_event()
                while event is h11.NEED_DATA:
                    try:
                        server.receive_data(await stream.receive())
                    except anyio.EndOfStream:
                        return
                    event = server.next_event()
                if not isinstance(event, h11.Request):
                    return
                while not isinstance(server.next_event(), h11.EndOfMessage):
                    pass
                close = event.target.endswith(b"close")
                headers = [("content-length", "2")] + ([("connection", "close")] if close else [])
                await stream.send(server.send(h11.Response(status_code=200, headers=headers)))
                await stream.send(server.send(h11.Data(data=b"ok")) + server.send(h11.EndOfMessage()))
                if close:
                    return
                server.start_next_cycle()

    async def main() -> list[int]:
        listener, port = await _serve(handle)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            with anyio.fail_after(10):
                async with HttpConnection("127.0.0.1", port, timeouts=FAST) as conn:
                    statuses = [(await conn.request("GET", f"/{i}")).status for i in range(3)]
                    statuses.append((await conn.request("GET", "/close")).status)
                    statuses.append((await conn.request("GET", "/after")).status)
            tg.cancel_scope.cancel()
        return statuses

    assert run(main) == [200] * 5
    assert accepted == 2


def test_loopback_connection_refused_is_connection_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def main() -> None:
        await HttpConnection("127.0.0.1", port, timeouts=FAST).request("GET", "/?authorization=" + SECRET)

    with pytest.raises(ThalovantConnectionError, match="cannot connect") as info:
        run(main)
    assert SECRET not in str(info.value)


def test_loopback_server_that_never_answers_times_out() -> None:
    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep(3)

    async def main() -> None:
        listener, port = await _serve(handle)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            timeouts = HttpTimeouts(connect=2, read=0.3, write=2)
            with pytest.raises(ThalovantTimeoutError):
                await HttpConnection("127.0.0.1", port, timeouts=timeouts).request("GET", "/")
            tg.cancel_scope.cancel()

    run(main)


def test_loopback_server_closing_an_idle_keep_alive_stream() -> None:
    """The server answers without ``connection: close`` and then hangs up, as idle timeouts do: the
    closed stream is noticed before the next request is written, so even a POST goes out once, afresh."""
    bodies: list[bytes] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        server = h11.Connection(h11.SERVER)
        async with stream:
            while not isinstance(event := server.next_event(), h11.EndOfMessage):
                if event is h11.NEED_DATA:
                    server.receive_data(await stream.receive())
                elif isinstance(event, h11.Data):
                    bodies.append(bytes(event.data))
            await stream.send(
                server.send(h11.Response(status_code=200, headers=[("content-length", "2")]))
                + server.send(h11.Data(data=b"ok"))
                + server.send(h11.EndOfMessage())
            )
            await anyio.sleep(0.05)

    async def main() -> list[int]:
        listener, port = await _serve(handle)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            with anyio.fail_after(10):
                async with HttpConnection("127.0.0.1", port, timeouts=FAST) as conn:
                    statuses = [(await conn.request("GET", "/1")).status]
                    await anyio.sleep(0.2)  # the server has closed its end by now
                    statuses.append((await conn.request("GET", "/2")).status)  # re-dialled transparently
                    await anyio.sleep(0.2)
                    statuses.append((await conn.request("POST", "/3", body=b"x")).status)
            tg.cancel_scope.cancel()
        return statuses

    assert run(main) == [200, 200, 200]
    assert bodies == [b"x"]


def test_a_post_after_the_server_died_while_idle_is_never_sent() -> None:
    """A hub killed between two requests: its FIN is waiting on the kept stream, nothing listens any
    more. The POST must fail as *not sent* (the caller may queue it), not as "maybe sent"."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        server = h11.Connection(h11.SERVER)
        async with stream:
            while not isinstance(event := server.next_event(), h11.EndOfMessage):
                if event is h11.NEED_DATA:
                    server.receive_data(await stream.receive())
            await stream.send(
                server.send(h11.Response(status_code=200, headers=[("content-length", "2")]))
                + server.send(h11.Data(data=b"ok"))
                + server.send(h11.EndOfMessage())
            )

    async def main() -> None:
        listener, port = await _serve(handle)
        async with HttpConnection("127.0.0.1", port, timeouts=FAST) as conn:
            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, handle)
                with anyio.fail_after(10):
                    assert (await conn.request("GET", "/1")).status == 200
                tg.cancel_scope.cancel()
            await listener.aclose()  # the server process is gone: its socket closed, nothing listens
            await anyio.sleep(0.1)
            with anyio.fail_after(10):
                await conn.request("POST", "/2", body=b"x")

    with pytest.raises(HttpNotSentError):
        run(main)


def test_the_idle_check_works_on_descriptors_past_select_limit() -> None:
    """``select()`` cannot watch a descriptor >= 1024 (FD_SETSIZE): a busy process would have taken every
    kept-alive stream for closed and dialled for each request."""
    import os
    import resource

    from thalovant.shell.links.http import _idle_stream_is_done

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 2100:
        pytest.skip(f"the hard descriptor limit ({hard}) leaves no room past 2048")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2100), hard))
    ours, theirs = socket.socketpair()
    high = os.dup2(ours.fileno(), 2048)
    watched = socket.socket(fileno=high)

    class Stream:
        def extra(self, attribute: object, default: object = None) -> object:
            return watched if attribute is anyio.abc.SocketAttribute.raw_socket else default

    try:
        assert watched.fileno() >= 1024
        assert not _idle_stream_is_done(Stream())  # type: ignore[arg-type]  # idle and open
        theirs.close()
        assert _idle_stream_is_done(Stream())  # type: ignore[arg-type]  # the peer closed it
    finally:
        watched.close()
        ours.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
