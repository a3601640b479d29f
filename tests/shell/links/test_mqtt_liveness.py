"""MQTT liveness against scripted brokers on 127.0.0.1: a broker that answers PINGREQ keeps a quiet connection
up; one that goes silent after CONNACK (a stalled or half-open path) loses it within ``idle + timeout``.

Before liveness, paho alone gave up on a missing PINGRESP only after about two keep-alive periods (60 s
keep-alive: about two minutes), so the silent broker held ``receive()`` for the whole test.
"""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from tests.shell.hostile import loopback_server
from thalovant.core.links.liveness import LivenessConfig
from thalovant.errors import ThalovantConnectionError
from thalovant.shell.links.mqtt import MqttConnection

pytestmark = pytest.mark.anyio

CONNACK = b"\x20\x02\x00\x00"
PINGREQ = b"\xc0\x00"
PINGRESP = b"\xd0\x00"
LIVE = LivenessConfig(idle=1.0, timeout=1.0)
SLACK = 0.2


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Broker:
    """CONNACK, then answer each PINGREQ with a PINGRESP (or, ``silent``, read and drop everything)."""

    def __init__(self, *, silent: bool) -> None:
        self.silent = silent
        self.pings = 0

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        await stream.receive()  # the CONNECT
        await stream.send(CONNACK)
        with anyio.move_on_after(10):
            while True:
                data = await stream.receive()
                self.pings += data.count(PINGREQ)
                if not self.silent:
                    await stream.send(PINGRESP * data.count(PINGREQ))


async def test_a_broker_answering_pings_keeps_a_quiet_connection_up() -> None:
    broker = Broker(silent=False)
    async with loopback_server(broker.serve) as port, MqttConnection(liveness=LIVE) as mqtt:
        await mqtt.connect("127.0.0.1", port, client_id="live-1", keepalive=60)
        with anyio.move_on_after(4 * LIVE.bound), pytest.raises(anyio.get_cancelled_exc_class()):
            await mqtt.receive()  # nothing comes; the connection must not be lost meanwhile
        assert mqtt.connected
        assert broker.pings >= 3


async def test_a_silent_broker_is_given_up_within_the_bound() -> None:
    broker = Broker(silent=True)
    async with loopback_server(broker.serve) as port, MqttConnection(liveness=LIVE) as mqtt:
        await mqtt.connect("127.0.0.1", port, client_id="live-2", keepalive=60)
        started = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(ThalovantConnectionError, match="no answer from the broker"):
            await mqtt.receive()
        elapsed = anyio.current_time() - started
    assert LIVE.bound - 0.05 <= elapsed <= LIVE.bound + SLACK, elapsed
    assert broker.pings == 1


async def test_a_connection_paused_by_backpressure_is_not_given_up() -> None:
    """The reader stops reading while ``max_pending`` messages wait: the silence that follows is ours."""
    topic = b"\x00\x03t/x"
    publish = b"\x30" + bytes([len(topic) + 1]) + topic + b"!"

    async def serve(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()  # the CONNECT
        await stream.send(CONNACK + publish * 3)
        with anyio.move_on_after(10):
            while await stream.receive():
                pass  # then silence: no PINGRESP either

    async with loopback_server(serve) as port, MqttConnection(liveness=LIVE, max_pending=2) as mqtt:
        await mqtt.connect("127.0.0.1", port, client_id="live-3", keepalive=60)
        await anyio.sleep(2 * LIVE.bound)  # nobody drains: the reader is paused
        assert mqtt.connected
        assert await mqtt.receive() == ("t/x", b"!", 0)


async def test_a_large_publish_arriving_slowly_after_a_pingreq_is_not_silence() -> None:
    """The PINGRESP queues behind a PUBLISH that takes longer than ``timeout`` to arrive: its bytes count."""
    topic = b"\x00\x03t/x"
    body = topic + b"x" * 30_000
    publish = b"\x30" + _remaining_length(len(body)) + body

    async def serve(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()  # the CONNECT
        await stream.send(CONNACK)
        assert PINGREQ in await stream.receive()  # the probe, after ``idle`` quiet seconds
        for i in range(0, len(publish), 1000):  # 30 pieces over ~3 s: three times the timeout
            await stream.send(publish[i : i + 1000])
            await anyio.sleep(0.1)  # a slow link (pacing, not synchronisation)
        await stream.send(PINGRESP)
        with anyio.move_on_after(5):
            while await stream.receive():
                pass

    async with loopback_server(serve) as port, MqttConnection(liveness=LIVE) as mqtt:
        await mqtt.connect("127.0.0.1", port, client_id="live-4", keepalive=60)
        with anyio.fail_after(8):
            message = await mqtt.receive()
        assert message == ("t/x", b"x" * 30_000, 0) and mqtt.connected


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)
