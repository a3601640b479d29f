"""mqtts: MqttConnection over TLS to a loopback mosquitto with a throwaway certificate.

Large payloads and bursts of tiny ones cross TLS record boundaries in every way.
(Disabling the ``sock.pending()`` drain did not make these fail on loopback:
OpenSSL reads one record at a time, so the kernel buffer usually still wakes
the reader. The drain stays, as the paho recipe requires.)
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import thalovant
from tests.shell.links.test_mqtt import ALICE_PW, BOB_PW, Broker, cid, start_broker
from tests.shell.links.test_ws_tls import make_cert
from thalovant.errors import ThalovantConnectionError
from thalovant.shell.links.mqtt import MqttConnection, MqttTlsVerificationError
from thalovant.testing import THROWAWAY_ACCESS_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, Path]]:
    tmp = tmp_path_factory.mktemp("mosq-tls")
    cert, key = make_cert(tmp)
    broker = start_broker(tmp, tls=(cert, key))
    yield broker, cert
    broker.kill()


async def test_tls_round_trip_with_large_payloads(tls_broker: tuple[Broker, Path]) -> None:
    broker, cert = tls_broker
    ctx = ssl.create_default_context(cafile=str(cert))
    payloads = [bytes([i]) * size for i, size in enumerate((10, 40_000, 120_000, 3, 65_536))]
    async with MqttConnection() as alice, MqttConnection() as bob:
        with anyio.fail_after(15):
            await alice.connect(
                "127.0.0.1", broker.port, client_id=cid("a"), username="alice", password=ALICE_PW, tls=ctx
            )
            await bob.connect("127.0.0.1", broker.port, client_id=cid("b"), username="bob", password=BOB_PW, tls=ctx)
            await bob.subscribe("test/tls/#", 1)
            for p in payloads:
                await alice.publish("test/tls/big", p, 1, False)
            got = [await bob.receive() for _ in payloads]
            assert got == [("test/tls/big", p, 1) for p in payloads]
            await alice.disconnect()
            await bob.disconnect()


async def test_tls_with_untrusted_certificate_fails_typed(tls_broker: tuple[Broker, Path]) -> None:
    broker, _ = tls_broker
    async with MqttConnection() as mqtt:
        with anyio.fail_after(10), pytest.raises(MqttTlsVerificationError, match="TLS") as info:
            await mqtt.connect(
                "127.0.0.1",
                broker.port,
                client_id=cid("u"),
                username="alice",
                password=ALICE_PW,
                tls=ssl.create_default_context(),
            )
        assert ALICE_PW not in str(info.value)
        assert not info.value.retryable and "certificate verification failed" in str(info.value)


async def test_a_client_to_a_self_signed_broker_fails_at_once_naming_tls(tls_broker: tuple[Broker, Path]) -> None:
    """Like wss and https: a certificate that does not verify is final, not retried as "server unavailable"."""
    broker, _ = tls_broker
    identity = {
        "access_key": THROWAWAY_ACCESS_KEY,
        "password": "a-throwaway-password",
        "default_master": "http://127.0.0.1",
        "site_id": "den",
        "mqtt": {
            "endpoint": f"mqtts://127.0.0.1:{broker.port}",
            "username": "alice",
            "password": ALICE_PW,
            "tls": True,
            "topic_prefix": "test",
        },
        "protocols": {"mqtt": True},
    }
    client = thalovant.AsyncThalovantClient(identity, protocol="mqtt", connect_timeout=10, noise_key_file=False)
    started = anyio.current_time()
    with anyio.fail_after(15), pytest.raises(ThalovantConnectionError) as info:
        await client.connect()
    elapsed = anyio.current_time() - started
    await client.close()
    assert type(info.value) is ThalovantConnectionError and not info.value.retryable
    assert "TLS certificate verification failed" in str(info.value), str(info.value)
    assert elapsed < 3, f"gave up after {elapsed:.2f} s: it was retried"
    assert ALICE_PW not in str(info.value)


async def test_tls_burst_of_small_messages_is_fully_delivered(tls_broker: tuple[Broker, Path]) -> None:
    """Many tiny packets in few TLS records: every one arrives, in order, with none left in the TLS buffer."""
    broker, cert = tls_broker
    ctx = ssl.create_default_context(cafile=str(cert))
    async with MqttConnection() as alice, MqttConnection() as bob:
        with anyio.fail_after(15):
            await alice.connect(
                "127.0.0.1", broker.port, client_id=cid("a"), username="alice", password=ALICE_PW, tls=ctx
            )
            await bob.connect("127.0.0.1", broker.port, client_id=cid("b"), username="bob", password=BOB_PW, tls=ctx)
            await bob.subscribe("test/burst", 0)
            for i in range(200):
                await alice.publish("test/burst", b"%d" % i, 0, False)
            await alice.publish("test/burst", b"end", 1, False)
        with anyio.fail_after(5):
            got = [await bob.receive() for _ in range(201)]
        assert [p for _, p, _ in got] == [b"%d" % i for i in range(200)] + [b"end"]
        await alice.disconnect()
        await bob.disconnect()
