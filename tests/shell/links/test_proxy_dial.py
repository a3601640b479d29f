"""The dial seam through an HTTP CONNECT proxy: the loopback test proxy, real sockets, asyncio and trio.

Covers the tunnel (plain and TLS inside it), credentials, every kind of refusal as a typed error
that names the proxy and never its password, the caller's deadline over a stalling proxy, and the
environment (``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``) read at each dial.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener

from tests.harness.proxy import LoopbackProxy
from tests.shell.links.test_ws import Peer
from tests.shell.links.test_ws_tls import make_cert
from thalovant.core.links.proxy import DIRECT, ProxyPolicy
from thalovant.errors import (
    ThalovantAuthenticationError,
    ThalovantConnectionError,
    ThalovantProxyAuthenticationError,
    ThalovantProxyError,
    ThalovantTimeoutError,
)
from thalovant.shell.links import dial
from thalovant.shell.links.http import HttpConnection, HttpNotSentError, HttpTimeouts
from thalovant.shell.links.ws import WsConnection

pytestmark = pytest.mark.anyio

SECRET = "pr0xy-Secret-pw"
TOKEN_TARGET = "/?authorization=hub-token-abc="
ENV = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@asynccontextmanager
async def echo_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A TCP (or TLS) echo server on 127.0.0.1; yields its port."""
    listener: anyio.abc.Listener[anyio.abc.ByteStream]
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = tcp.extra(SocketAttribute.local_port)
    listener = TLSListener(tcp, tls, standard_compatible=False) if tls is not None else tcp

    async def echo(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            try:
                while True:
                    await stream.send(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError, ssl.SSLError, OSError):
                pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo)
        yield port
        tg.cancel_scope.cancel()


async def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)
    await listener.aclose()
    return port


async def round_trip(stream: anyio.abc.ByteStream, data: bytes) -> bytes:
    async with stream:
        await stream.send(data)
        got = b""
        with anyio.fail_after(5):
            while len(got) < len(data):
                got += await stream.receive()
        return got


# ---- the tunnel -------------------------------------------------------------------------------------


async def test_a_plain_tunnel_carries_bytes_to_the_destination() -> None:
    async with LoopbackProxy() as proxy, echo_server() as port:
        stream = await dial.open_stream("127.0.0.1", port, proxy=ProxyPolicy.fixed(proxy.url()))
        assert await round_trip(stream, b"ping") == b"ping"
    (request,) = proxy.requests
    assert (request.method, request.target, request.status) == ("CONNECT", f"127.0.0.1:{port}", 200)
    assert request.header("host") == f"127.0.0.1:{port}" and request.header("proxy-authorization") is None


async def test_tls_runs_inside_the_tunnel_with_the_hubs_name(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    listener = TLSListener(
        await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0), server, standard_compatible=False
    )
    port = listener.listener.extra(SocketAttribute.local_port)

    async def handler(stream: anyio.abc.ByteStream) -> None:
        peer = Peer(stream)  # type: ignore[arg-type]
        async with stream:
            with anyio.move_on_after(5):
                await peer.accept()
                await peer.echo_until_close()

    async with LoopbackProxy() as proxy, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        policy = ProxyPolicy.fixed(proxy.url())
        trusted = ssl.create_default_context(cafile=str(cert))
        with anyio.fail_after(10):
            ws = await WsConnection.connect(
                "127.0.0.1", port, TOKEN_TARGET, tls=trusted, server_hostname="localhost", proxy=policy
            )
            await ws.send_text("payload through the tunnel")
            assert await ws.receive() == "payload through the tunnel"
            await ws.close()
            with pytest.raises(ThalovantConnectionError, match="TLS") as untrusted:
                await WsConnection.connect(
                    "127.0.0.1", port, TOKEN_TARGET, tls=ssl.create_default_context(), proxy=policy, timeout=5
                )
        tg.cancel_scope.cancel()
    assert not isinstance(untrusted.value, ThalovantProxyError)  # the certificate check is the hub's, as without
    assert proxy.connects == [f"127.0.0.1:{port}"] * 2
    assert b"authorization" not in proxy.seen and b"payload" not in proxy.seen  # TLS hid the upgrade and the data


# ---- credentials and refusals -----------------------------------------------------------------------


async def test_credentials_go_to_the_proxy_as_basic_auth() -> None:
    async with LoopbackProxy(credentials=("alice", SECRET)) as proxy, echo_server() as port:
        policy = ProxyPolicy.fixed(proxy.url("alice", SECRET))
        assert await round_trip(await dial.open_stream("127.0.0.1", port, proxy=policy), b"x") == b"x"
    assert proxy.requests[0].status == 200 and str(proxy.requests[0].header("proxy-authorization")).startswith("Basic ")


@pytest.mark.parametrize("given", [("alice", "wrong-" + SECRET), None])
async def test_a_407_is_a_proxy_authentication_error_without_the_secret(
    given: tuple[str, str] | None, caplog: pytest.LogCaptureFixture
) -> None:
    async with LoopbackProxy(credentials=("alice", SECRET)) as proxy, echo_server() as port:
        url = proxy.url(*given) if given else proxy.url()
        with pytest.raises(ThalovantProxyAuthenticationError) as caught:
            await dial.open_stream("127.0.0.1", port, proxy=ProxyPolicy.fixed(url))
    error = caught.value
    assert isinstance(error, ThalovantAuthenticationError) and not error.retryable and error.status_code == 407
    assert error.proxy == f"http://127.0.0.1:{proxy.port}" and f"the proxy {error.proxy}" in str(error)
    assert ("refused the proxy credentials" if given else "requires credentials") in str(error)
    assert "hub" not in str(error) and SECRET not in str(error) and "alice" not in str(error)
    assert SECRET not in caplog.text and "alice" not in caplog.text


async def test_a_refused_tunnel_names_the_status_and_is_not_retried() -> None:
    async with LoopbackProxy(refuse=403) as proxy, echo_server() as port:
        with pytest.raises(ThalovantProxyError) as caught:
            await dial.open_stream("127.0.0.1", port, proxy=ProxyPolicy.fixed(proxy.url()))
    assert caught.value.status_code == 403 and not caught.value.retryable
    assert f"refused the tunnel to 127.0.0.1:{port} (HTTP 403 Forbidden)" in str(caught.value)


async def test_a_proxy_that_cannot_reach_the_hub_answers_502_and_may_be_retried() -> None:
    port = await closed_port()
    async with LoopbackProxy() as proxy:
        with pytest.raises(ThalovantProxyError) as caught:
            await dial.open_stream("127.0.0.1", port, proxy=ProxyPolicy.fixed(proxy.url()))
    assert caught.value.status_code == 502 and caught.value.retryable
    assert "could not reach" in str(caught.value)


async def test_an_unreachable_proxy_is_a_typed_error_naming_it() -> None:
    port = await closed_port()
    with pytest.raises(ThalovantProxyError) as caught:
        await dial.open_stream("hub.invalid", 443, proxy=ProxyPolicy.fixed(f"http://u:{SECRET}@127.0.0.1:{port}"))
    error = caught.value
    assert error.status_code is None and error.retryable and error.proxy == f"http://127.0.0.1:{port}"
    assert str(error).startswith(f"cannot reach the proxy http://127.0.0.1:{port} (") and SECRET not in str(error)


@pytest.mark.parametrize(
    ("garbage", "says", "retryable"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", "did not answer the CONNECT with HTTP", False),
        (b"", "closed the connection before answering", True),
        (b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01early", "sent data into the tunnel before it was used", False),
    ],
)
async def test_a_proxy_that_does_not_speak_http_is_a_typed_error(garbage: bytes, says: str, retryable: bool) -> None:
    async with LoopbackProxy(garbage=garbage) as proxy:
        with pytest.raises(ThalovantProxyError, match=says) as caught:
            await dial.open_stream("127.0.0.1", 9, proxy=ProxyPolicy.fixed(proxy.url()))
    assert caught.value.retryable is retryable


# ---- deadlines --------------------------------------------------------------------------------------


async def test_the_callers_deadline_covers_a_stalling_proxy() -> None:
    async with LoopbackProxy(stall=True) as proxy:
        policy = ProxyPolicy.fixed(proxy.url())
        started = time.monotonic()
        with pytest.raises(ThalovantTimeoutError):
            await WsConnection.connect("127.0.0.1", 9, TOKEN_TARGET, timeout=1.0, proxy=policy)
        ws_took = time.monotonic() - started
        conn = HttpConnection("127.0.0.1", 9, timeouts=HttpTimeouts.uniform(1.0), proxy=policy)
        started = time.monotonic()
        with pytest.raises(ThalovantTimeoutError):
            await conn.request("POST", "/connect?authorization=x")
        http_took = time.monotonic() - started
    assert 1.0 <= ws_took < 1.2 and 1.0 <= http_took < 1.2, (ws_took, http_took)


async def test_http_reports_a_proxy_refusal_as_not_sent_and_not_worth_retrying() -> None:
    async with LoopbackProxy(credentials=("alice", SECRET)) as proxy:
        conn = HttpConnection("127.0.0.1", 9, proxy=ProxyPolicy.fixed(proxy.url("alice", "nope")))
        with pytest.raises(HttpNotSentError) as caught:
            await conn.request("POST", "/connect?authorization=tok")
    assert not caught.value.retryable and "refused the proxy credentials (HTTP 407" in str(caught.value)
    assert isinstance(caught.value.__cause__, ThalovantProxyAuthenticationError) and "tok" not in str(caught.value)


# ---- the environment --------------------------------------------------------------------------------


async def test_the_environment_is_read_at_each_dial_and_no_proxy_goes_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    async with LoopbackProxy() as proxy, echo_server() as port:
        assert await round_trip(await dial.open_stream("127.0.0.1", port), b"a") == b"a"
        assert proxy.connects == []  # nothing set: direct
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        assert await round_trip(await dial.open_stream("127.0.0.1", port), b"b") == b"b"
        assert proxy.connects == [f"127.0.0.1:{port}"]
        monkeypatch.setenv("no_proxy", "localhost, 127.0.0.0/8")
        assert await round_trip(await dial.open_stream("127.0.0.1", port), b"c") == b"c"
        monkeypatch.delenv("no_proxy")
        assert await round_trip(await dial.open_stream("127.0.0.1", port, proxy=DIRECT), b"d") == b"d"
        assert proxy.connects == [f"127.0.0.1:{port}"]  # NO_PROXY and an explicit DIRECT bypassed it


async def test_an_unusable_environment_proxy_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"socks5://alice:{SECRET}@127.0.0.1:1080")
    with pytest.raises(ThalovantProxyError) as caught:
        await dial.open_stream("127.0.0.1", 9, tls=ssl.create_default_context())
    assert caught.value.proxy == "HTTPS_PROXY" and not caught.value.retryable
    assert "HTTPS_PROXY" in str(caught.value) and SECRET not in str(caught.value)


async def test_the_harness_proxy_only_reaches_loopback() -> None:
    async with LoopbackProxy() as proxy:
        with pytest.raises(ThalovantProxyError, match="HTTP 403"):
            await dial.open_stream("192.0.2.1", 443, proxy=ProxyPolicy.fixed(proxy.url()))
    assert proxy.requests[0].status == 403
