"""The dial's phase times (``LinkTimes``): what ``dns_ms``/``tcp_ms``/``tls_ms`` measure, on loopback.

WebSocket/HTTP dials (``dial.open_stream``) and MQTT's paho connect record into the ``LinkTimes`` made
current with ``dial.timing``: the resolution only for a host name, TCP always, TLS only with TLS, through an
HTTP proxy no resolution (the proxy resolves the hub) and the tunnel as the TCP phase. On main none existed.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener

from tests.harness.proxy import LoopbackProxy
from tests.shell.links.test_mqtt import ALICE_PW, Broker, cid, start_broker
from tests.shell.links.test_ws_tls import make_cert
from thalovant.core.links.proxy import ProxyPolicy
from thalovant.shell.links import dial
from thalovant.shell.links.dial import LinkTimes, timing
from thalovant.shell.links.mqtt import MqttConnection

pytestmark = pytest.mark.anyio

WAIT = 10.0
DIRECT = ProxyPolicy()  # no proxy, whatever the environment says


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def listening(tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A loopback server on 127.0.0.1 that holds each connection open until the test ends."""
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = tcp.extra(SocketAttribute.local_port)
    listener: anyio.abc.Listener[anyio.abc.ByteStream] = tcp if tls is None else TLSListener(tcp, tls)

    async def hold(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            with anyio.move_on_after(WAIT), suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                await stream.receive()

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hold)
        yield port
        tg.cancel_scope.cancel()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("dial-cert"))


async def test_an_ip_literal_is_not_resolved_and_plain_tcp_has_no_tls_phase() -> None:
    async with listening() as port:
        with anyio.fail_after(WAIT), timing(LinkTimes()) as times:
            stream = await dial.open_stream("127.0.0.1", port, proxy=DIRECT)
        await stream.aclose()
    assert times.dns_ms is None and times.tls_ms is None and not times.proxied
    assert times.tcp_ms is not None and 0 <= times.tcp_ms < WAIT * 1000
    assert times.dialed and times.opened_at is not None


async def test_a_host_name_is_resolved_and_timed_and_tls_is_timed(cert: tuple[Path, Path]) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*cert)
    client = ssl.create_default_context(cafile=str(cert[0]))
    async with listening(server) as port:  # on 127.0.0.1 only: "localhost" may resolve to ::1 first (refused)
        with anyio.fail_after(WAIT), timing(LinkTimes()) as times:
            stream = await dial.open_stream("localhost", port, tls=client, proxy=DIRECT)
        await stream.aclose()
    assert times.dns_ms is not None and times.tcp_ms is not None and times.tls_ms is not None
    assert all(0 <= t < WAIT * 1000 for t in (times.dns_ms, times.tcp_ms, times.tls_ms))


async def test_only_the_first_dial_of_a_link_is_recorded_and_no_timing_records_nothing() -> None:
    async with listening() as port:
        with anyio.fail_after(WAIT), timing(LinkTimes()) as times:
            first = await dial.open_stream("127.0.0.1", port, proxy=DIRECT)
            times.tcp_ms = -1.0  # a second dial (HTTP's other connection) must leave the first one's phases
            second = await dial.open_stream("127.0.0.1", port, proxy=DIRECT)
        untimed = await dial.open_stream("127.0.0.1", port, proxy=DIRECT)
        for stream in (first, second, untimed):
            await stream.aclose()
    assert times.tcp_ms == -1.0 and dial.current_times() is None


async def test_through_a_proxy_the_tunnel_is_the_tcp_phase_and_nothing_is_resolved() -> None:
    async with listening() as port, LoopbackProxy() as proxy:
        with anyio.fail_after(WAIT), timing(LinkTimes()) as times:
            stream = await dial.open_stream("127.0.0.1", port, proxy=ProxyPolicy.fixed(proxy.url()))
        await stream.aclose()
    assert proxy.connects == [f"127.0.0.1:{port}"]
    assert times.proxied and times.dns_ms is None and times.tls_ms is None and times.tcp_ms is not None


async def test_a_refused_address_falls_through_to_the_next_one_at_once() -> None:
    async with listening() as port:  # 127.0.0.2 is loopback too, with nothing listening on the port
        with anyio.fail_after(HAPPY_BOUND):
            stream = await dial._first_connected(["127.0.0.2", "127.0.0.1"], port)
        await stream.aclose()
        with pytest.raises(OSError), anyio.fail_after(WAIT):
            await dial._first_connected(["127.0.0.2", "127.0.0.3"], port)


HAPPY_BOUND = 2.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_broker(tmp_path_factory.mktemp("mosq-times"))
    yield b
    b.kill()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_mqtt_records_its_phases_from_pahos_thread(broker: Broker, host: str) -> None:
    async with MqttConnection() as mqtt:
        with anyio.fail_after(WAIT), timing(LinkTimes()) as times:
            await mqtt.connect(host, broker.port, client_id=cid("t"), username="alice", password=ALICE_PW)
        await mqtt.disconnect()
    assert (times.dns_ms is None) == (host == "127.0.0.1")
    assert times.tcp_ms is not None and times.tls_ms is None and times.opened_at is not None


async def test_mqtt_over_tls_records_the_tls_phase(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    tls_broker = start_broker(tmp_path, tls=cert)
    try:
        async with MqttConnection() as mqtt:
            with anyio.fail_after(WAIT), timing(LinkTimes()) as times:
                await mqtt.connect(
                    "127.0.0.1",
                    tls_broker.port,
                    client_id=cid("t"),
                    username="alice",
                    password=ALICE_PW,
                    tls=ssl.create_default_context(cafile=str(cert[0])),
                )
            await mqtt.disconnect()
    finally:
        tls_broker.kill()
    assert times.tcp_ms is not None and times.tls_ms is not None and times.dns_ms is None
