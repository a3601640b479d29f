"""The public client through an HTTP CONNECT proxy, offline: the loopback test proxy in front of the in-memory hub.

The client dials for real (``dial.open_stream``): ``HTTP_PROXY`` sends it to
:class:`tests.harness.proxy.LoopbackProxy` on 127.0.0.1, whose upstream is
:class:`tests.shell.inmemory.MemoryHubNet` (a FakeHub behind wsproto/h11). The identity's hub
(``hub.invalid``) does not resolve, so an answered ask proves the tunnel was used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.abc
import pytest

import thalovant
from tests.harness.proxy import LoopbackProxy, proxy_in_thread
from tests.shell.inmemory import MemoryHubNet
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.links.proxy import DIRECT, ProxyPolicy
from thalovant.shell.links import dial
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub

pytestmark = pytest.mark.anyio

UA = "ProxyClient/1.0"
PASSWORD = "a-throwaway-password"
SECRET = "pr0xy-Secret-pw"
WAIT = 5.0
ENDPOINTS = {"wss": "ws://hub.invalid:5678", "https": "http://hub.invalid:5679"}
ENV = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def identity_for(protocol: str) -> thalovant.ThalovantIdentity:
    return thalovant.ThalovantIdentity.from_mapping(
        {
            "access_key": THROWAWAY_ACCESS_KEY,
            "password": PASSWORD,
            "default_master": "http://hub.invalid",
            "site_id": "den",
            "data_plane_endpoints": {protocol: ENDPOINTS[protocol]},
            "protocols": {protocol: True},
        }
    )


def client_for(protocol: str, **kwargs: Any) -> thalovant.AsyncThalovantClient:
    kwargs.setdefault("reconnect", ReconnectConfig(base=0.01, cap=0.05))
    kwargs.setdefault("connect_timeout", WAIT)
    return thalovant.AsyncThalovantClient(
        identity_for(protocol), protocol=protocol, useragent=UA, noise_key_file=False, **kwargs
    )


def hub_net(protocol: str) -> MemoryHubNet:
    return MemoryHubNet(FakeHub(password=PASSWORD), protocol=protocol, useragent=UA, access_key=THROWAWAY_ACCESS_KEY)


@asynccontextmanager
async def proxied_hub(protocol: str, **proxy_kwargs: Any) -> AsyncIterator[tuple[LoopbackProxy, MemoryHubNet]]:
    """The test proxy, leading to a fresh in-memory hub."""
    net = hub_net(protocol)

    async def upstream(host: str, port: int) -> anyio.abc.ByteStream:
        return await net.open_stream(host, port)

    async with LoopbackProxy(upstream=upstream, **proxy_kwargs) as proxy:
        yield proxy, net


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_the_environment_proxy_carries_the_whole_session(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with proxied_hub(protocol) as (proxy, net):
        monkeypatch.setenv("HTTP_PROXY", proxy.url())  # ws:// and http:// endpoints: the plain-text variable
        async with client_for(protocol) as client:
            reply = await client.ask("through the proxy", timeout=WAIT)
        assert reply.text == "echo: through the proxy"
    port = ENDPOINTS[protocol].rsplit(":", 1)[1]
    assert proxy.connects and set(proxy.connects) == {f"hub.invalid:{port}"}
    assert {(d.host, d.port) for d in net.dials} == {("hub.invalid", int(port))}
    assert net.hub.handshakes == 1


async def test_no_proxy_sends_the_client_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    net = hub_net("wss")
    monkeypatch.setattr(dial, "open_stream", net.open_stream)  # a direct dial goes straight to the hub
    async with LoopbackProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        monkeypatch.setenv("NO_PROXY", ".invalid")
        # the seam is replaced, so the policy is only recorded: the route it gives is what counts
        async with client_for("wss") as client:
            assert (await client.ask("direct", timeout=WAIT)).text == "echo: direct"
    assert net.dials[0].proxy is None and proxy.connections == 0


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_refused_proxy_credentials_fail_fast_naming_the_proxy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="thalovant")
    async with proxied_hub(protocol, credentials=("alice", SECRET)) as (proxy, net):
        monkeypatch.setenv("HTTP_PROXY", proxy.url("alice", "wrong-" + SECRET))
        client = client_for(protocol)
        started = time.monotonic()
        with pytest.raises(thalovant.ThalovantProxyAuthenticationError) as caught:  # also a ConnectionError
            await client.connect()
        took = time.monotonic() - started
        await client.close()
    message = str(caught.value)
    assert took < 1.0, took  # not retried until connect_timeout (5 s): a 407 cannot get better
    assert isinstance(caught.value, thalovant.ThalovantConnectionError)
    assert caught.value.proxy == f"http://127.0.0.1:{proxy.port}" and caught.value.status_code == 407
    assert not caught.value.retryable and f"the proxy http://127.0.0.1:{proxy.port}" in message
    assert "refused the proxy credentials (HTTP 407" in message and "hub refused" not in message
    for text in (message, caplog.text, repr(client)):
        assert SECRET not in text and "alice" not in text
    assert net.dials == [] and {r.status for r in proxy.requests} == {407}


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_an_unreachable_proxy_is_retried_within_connect_timeout(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    caplog.set_level(logging.INFO, logger="thalovant")
    async with LoopbackProxy() as proxy:
        port = proxy.port
    monkeypatch.setenv("HTTP_PROXY", f"http://alice:{SECRET}@127.0.0.1:{port}")  # nobody listens there any more
    client = client_for(protocol, connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(thalovant.ThalovantTimeoutError):
        await client.connect()
    took = time.monotonic() - started
    await client.close()
    assert 1.0 <= took < 1.2, took
    assert f"cannot reach the proxy http://127.0.0.1:{port}" in caplog.text  # each retry logs why
    assert SECRET not in caplog.text and "alice" not in caplog.text


# Over HTTP a silent peer costs 2 s more than connect_timeout, with or without a proxy: on the timeout,
# engine.stop() waits CLOSE_GRACE for the polite /disconnect that nobody answers (helper "bounds", item 4).


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_connect_timeout_covers_a_stalling_proxy(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with LoopbackProxy(stall=True) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        client = client_for(protocol, connect_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(thalovant.ThalovantTimeoutError):
            await client.connect()
        took = time.monotonic() - started
        await client.close()
    assert 1.0 <= took < 1.2, took
    assert proxy.connections >= 1


# ---- the client's proxy= argument ----


@pytest.mark.parametrize(
    ("option", "policy"),
    [(True, None), (None, DIRECT), (False, DIRECT), ("http://p.corp:3128", ProxyPolicy.fixed("http://p.corp:3128"))],
)
async def test_the_proxy_argument_reaches_the_dial_seam(
    monkeypatch: pytest.MonkeyPatch, option: object, policy: ProxyPolicy | None
) -> None:
    net = hub_net("wss")
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    async with client_for("wss", proxy=option) as client:
        assert (await client.ask("hi", timeout=WAIT)).text == "echo: hi"
    assert net.dials[0].proxy == policy


async def test_an_explicit_proxy_is_used_without_the_environment() -> None:
    async with proxied_hub("wss", credentials=("alice", SECRET)) as (proxy, _net):
        client = client_for("wss", proxy=proxy.url("alice", SECRET))
        assert SECRET not in repr(client)
        async with client:
            assert (await client.ask("explicit", timeout=WAIT)).text == "echo: explicit"
    assert proxy.connects == ["hub.invalid:5678"]


async def test_a_bad_proxy_argument_is_refused_at_construction_without_echoing_it() -> None:
    with pytest.raises(thalovant.ThalovantArgumentError, match=r"^proxy: uses https") as caught:
        client_for("wss", proxy=f"https://alice:{SECRET}@p.corp:3128")
    assert SECRET not in str(caught.value)


def test_the_blocking_client_through_a_proxy_in_its_own_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    net = hub_net("wss")

    async def upstream(host: str, port: int) -> anyio.abc.ByteStream:
        return await net.open_stream(host, port)

    with proxy_in_thread(upstream=upstream) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        with thalovant.ThalovantClient(identity_for("wss"), useragent=UA, noise_key_file=False) as client:
            assert client.ask("blocking", timeout=WAIT).text == "echo: blocking"
    assert proxy.connects == ["hub.invalid:5678"]
