"""The real hub 4.0.0 through the loopback HTTP CONNECT proxy (``tests/harness/proxy.py``).

Over real TLS (``wss``/``https`` with the harness CA) the proxy carries the whole session and sees
the hub's host and port and nothing else: no access key, password, crypto key, authorization token
or message text crosses it in clear. Over the plain ``real_hub`` (``ws``/``http`` endpoints) the
proxy's request log still holds no secret. Wrong proxy credentials end ``connect()`` at once with
an error naming the proxy (not the hub), without the proxy password.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from tests.harness.proxy import LoopbackProxy
from tests.harness.tls import TlsTestHub
from tests.live.live_support import tag
from tests.live.test_tls_live import tls_hub  # noqa: F401  (the module-scoped TLS hub fixture)
from thalovant.core.errors import ThalovantConnectionError, ThalovantProxyAuthenticationError
from thalovant.shell.client import AsyncThalovantClient

pytestmark = [pytest.mark.hub, pytest.mark.anyio]

PROXY_USER, PROXY_PASSWORD = "proxy-user", "proxy-Pa55-word"
ENV = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*ENV, "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


def hub_secrets(hub: Any, kind: str) -> list[str]:
    identity = hub.identity(kind)
    found = [identity["access_key"], identity["password"], hub.token(kind)]
    return [s for s in (*found, identity.get("crypto_key")) if s]


def endpoint_port(identity: dict[str, Any], protocol: str) -> int:
    return int(identity["data_plane_endpoints"][protocol].rsplit(":", 1)[1].split("/", 1)[0])


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_tls_session_through_the_proxy_hides_every_secret(
    tls_hub: TlsTestHub,  # noqa: F811  (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
) -> None:
    identity = tls_hub.identity("psk")
    assert identity["data_plane_endpoints"][protocol].startswith(f"{protocol}://127.0.0.1:")
    assert tls_hub.tls is not None
    marker = tag("proxied")
    async with LoopbackProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url(PROXY_USER, PROXY_PASSWORD))
        async with AsyncThalovantClient(identity, protocol=protocol, ca_file=str(tls_hub.tls.ca_file)) as client:
            reply = await client.ask(f"through the proxy {marker}", timeout=10)
    assert reply.text == f"echo: through the proxy {marker}"
    port = endpoint_port(identity, protocol)
    assert proxy.connects and set(proxy.connects) == {f"127.0.0.1:{port}"}
    assert {r.status for r in proxy.requests} == {200}
    carried = bytes(proxy.seen)
    assert len(carried) > 1000  # the TLS handshakes and the session went through the tunnel
    for secret in [*hub_secrets(tls_hub, "psk"), marker]:
        assert secret.encode() not in carried


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_plain_session_through_the_proxy(real_hub: Any, monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    identity = real_hub.identity("password")
    marker = tag("plain-proxied")
    async with LoopbackProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())  # ws:// and http:// endpoints
        async with AsyncThalovantClient(identity, protocol=protocol) as client:
            assert (await client.ask(f"plain {marker}", timeout=10)).text == f"echo: plain {marker}"
    assert set(proxy.connects) == {f"127.0.0.1:{endpoint_port(identity, protocol)}"}
    logged = repr(proxy.requests)  # what the proxy logs: request lines and headers
    for secret in hub_secrets(real_hub, "password"):
        assert secret not in logged


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_wrong_proxy_credentials_fail_at_once_naming_the_proxy(
    real_hub: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="thalovant")
    identity = real_hub.identity("psk")
    async with LoopbackProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url(PROXY_USER, "wrong-" + PROXY_PASSWORD))
        client = AsyncThalovantClient(identity, protocol=protocol, connect_timeout=10)
        started = time.monotonic()
        with pytest.raises(ThalovantConnectionError) as caught:
            await client.connect()
        took = time.monotonic() - started
        await client.close()
    message = str(caught.value)
    assert isinstance(caught.value, ThalovantProxyAuthenticationError)  # typed, as the dial raised it
    assert took < 2.0, took  # a 407 is not retried until connect_timeout
    assert not caught.value.retryable
    assert f"the proxy http://127.0.0.1:{proxy.port} refused the proxy credentials (HTTP 407" in message
    assert "hub refused" not in message and {r.status for r in proxy.requests} == {407}
    for text in (message, repr(caught.value), caplog.text, repr(client)):
        for secret in (PROXY_PASSWORD, PROXY_USER, *hub_secrets(real_hub, "psk")):
            assert secret not in text
