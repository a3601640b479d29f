"""TLS on the real hub 4.0.0: WSS and HTTPS with a certificate from a locally generated CA.

Verified against the CA via ``ca_file=``; rejected without it with a typed error (never a raw
``ssl`` exception); ``insecure=True`` connects and warns (``InsecureTLSWarning``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness.hub import HUB4
from tests.harness.install import HarnessUnavailable, harness_home
from tests.harness.tls import TlsTestHub
from tests.live.live_support import in_thread, tag
from thalovant.core.errors import ThalovantConnectionError, ThalovantTimeoutError
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.sync.client import ThalovantClient
from thalovant.shell.tls import InsecureTLSWarning

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def tls_hub(request: pytest.FixtureRequest) -> Iterator[TlsTestHub]:
    """A second hub 4.0.0 whose WebSocket and HTTP plugins serve TLS (module-scoped, loopback only)."""
    run_dir = harness_home() / "runs" / f"{os.getpid()}-tls-hub4"
    hub = TlsTestHub(HUB4, run_dir, bound_to_parent=True)
    atexit.register(hub.stop)
    try:
        hub.start()
    except HarnessUnavailable as exc:
        hub.stop()
        pytest.skip(f"real hub unavailable on this machine: {exc}")
    try:
        yield hub
    finally:
        hub.stop()
        atexit.unregister(hub.stop)
        if request.session.testsfailed == 0 and os.environ.get("THALOVANT_TEST_HUB_KEEP") != "1":
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_ambient_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # trust must come from ca_file= in these tests


def _ca(hub: TlsTestHub) -> str:
    assert hub.tls is not None
    return str(hub.tls.ca_file)


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https"])
@pytest.mark.parametrize("kind", ["password", "psk"])
async def test_tls_verified_with_ca_file(tls_hub: TlsTestHub, protocol: str, kind: str) -> None:
    identity = tls_hub.identity(kind)
    assert identity["data_plane_endpoints"][protocol].startswith(f"{protocol}://127.0.0.1:")
    marker = tag("tls")
    async with AsyncThalovantClient(identity, protocol=protocol, ca_file=_ca(tls_hub)) as client:
        assert (await client.ask(f"over tls {marker}", timeout=10)).text == f"echo: over tls {marker}"
        pushed = f"push {marker}"
        listener = client.listen("speak", timeout=10, max_events=1, predicate=lambda ev: ev.text == pushed)
        assert await in_thread(tls_hub.push_event, "speak", {"utterance": pushed})
        assert [ev.text async for ev in listener] == [pushed]


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_tls_sync_client_with_ca_file(tls_hub: TlsTestHub, protocol: str) -> None:
    with ThalovantClient(tls_hub.identity("psk"), protocol=protocol, ca_file=_ca(tls_hub)) as client:
        assert client.ask("sync tls", timeout=10).text == "echo: sync tls"


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_tls_without_the_ca_is_rejected_with_a_typed_error(tls_hub: TlsTestHub, protocol: str) -> None:
    identity = tls_hub.identity("psk")
    client = AsyncThalovantClient(identity, protocol=protocol, connect_timeout=3)
    started = time.monotonic()
    with pytest.raises((ThalovantConnectionError, ThalovantTimeoutError)) as caught:
        await client.connect()
    assert time.monotonic() - started < 6
    assert not client.connected
    text = f"{caught.value} {caught.value!r}"
    for secret in (identity["access_key"], identity["password"], identity["crypto_key"]):
        assert secret not in text


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_tls_verification_failure_is_fatal_and_named(tls_hub: TlsTestHub, protocol: str) -> None:
    client = AsyncThalovantClient(tls_hub.identity("psk"), protocol=protocol, connect_timeout=3)
    started = time.monotonic()
    with pytest.raises(ThalovantConnectionError) as caught:
        await client.connect()
    assert time.monotonic() - started < 1.5
    assert "certificate" in str(caught.value).lower()
    assert caught.value.retryable is False


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_tls_insecure_connects_with_a_warning(tls_hub: TlsTestHub, protocol: str) -> None:
    with pytest.warns(InsecureTLSWarning):
        client = AsyncThalovantClient(tls_hub.identity("password"), protocol=protocol, insecure=True)
    async with client:
        assert (await client.ask("insecure", timeout=10)).text == "echo: insecure"


@pytest.mark.anyio
async def test_tls_wrong_ca_is_rejected(tls_hub: TlsTestHub, tmp_path: Any) -> None:
    from tests.harness.tls import make_certificates

    other = make_certificates(tmp_path / "other-ca")
    client = AsyncThalovantClient(
        tls_hub.identity("psk"), protocol="https", ca_file=str(other.ca_file), connect_timeout=3
    )
    with pytest.raises((ThalovantConnectionError, ThalovantTimeoutError)):
        await client.connect()
