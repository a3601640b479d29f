"""A broker announcing a huge packet is refused before the client buffers it (hostile broker on 127.0.0.1).

The broker answers the CONNECT with a CONNACK, then starts a PUBLISH whose fixed header announces the
largest length MQTT can express (256 MiB - 1) and streams zeros as fast as TCP takes them. paho alone
would buffer the whole announced packet (808 MB peak measured on main) before handling it; the
connection now refuses it at the header, with a typed error, having allocated next to nothing.
"""

from __future__ import annotations

import tracemalloc

import anyio
import anyio.abc
import pytest

from tests.shell.hostile import loopback_server
from thalovant.errors import ThalovantConnectionError
from thalovant.shell.links.mqtt import MqttConnection, MqttPacketTooLarge
from thalovant.shell.links.mqtt_engine import DEFAULT_MAX_PACKET_SIZE

pytestmark = pytest.mark.anyio

ANNOUNCED = 268_435_455  # the largest remaining length MQTT's variable-length integer can carry
CONNACK = b"\x20\x02\x00\x00"
HUGE_PUBLISH_HEADER = b"\x30\xff\xff\xff\x7f"
MAX_TRACED = 16 * 1024 * 1024


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class HugePublisher:
    """After the CONNACK, one PUBLISH announcing ``ANNOUNCED`` bytes, streamed in 64 KiB chunks."""

    def __init__(self, header: bytes = HUGE_PUBLISH_HEADER) -> None:
        self.header = header
        self.streamed = 0

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        await stream.receive()  # the CONNECT
        await stream.send(CONNACK + self.header)
        chunk = bytes(65536)
        with anyio.move_on_after(30):
            while self.streamed < ANNOUNCED:
                await stream.send(chunk)
                self.streamed += len(chunk)


async def test_a_packet_announcing_256_mib_is_refused_before_it_is_buffered() -> None:
    broker = HugePublisher()
    tracemalloc.start()
    try:
        async with loopback_server(broker.serve) as port, MqttConnection() as mqtt:
            with anyio.fail_after(10):
                await mqtt.connect("127.0.0.1", port, client_id="limits-1")
                tracemalloc.reset_peak()
                with pytest.raises(MqttPacketTooLarge) as caught:
                    await mqtt.receive()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    error = caught.value
    assert isinstance(error, ThalovantConnectionError)
    assert (error.announced, error.limit) == (ANNOUNCED, DEFAULT_MAX_PACKET_SIZE)
    assert "packet too large" in str(error) and str(ANNOUNCED) in str(error)
    assert peak < MAX_TRACED, f"{peak} bytes allocated while refusing the packet"


async def test_the_limit_is_the_connections_and_a_packet_within_it_is_read() -> None:
    small = 2 + len(b"t/x") + 10  # topic length, topic, payload (QoS 0: no packet id)
    publish = b"\x30" + bytes([small]) + b"\x00\x03t/x" + b"0123456789"
    broker = HugePublisher(header=publish + HUGE_PUBLISH_HEADER)
    async with loopback_server(broker.serve) as port, MqttConnection(max_packet_size=1000) as mqtt:
        with anyio.fail_after(10):
            await mqtt.connect("127.0.0.1", port, client_id="limits-2")
            assert await mqtt.receive() == ("t/x", b"0123456789", 0)
            with pytest.raises(MqttPacketTooLarge) as caught:
                await mqtt.receive()
    assert caught.value.limit == 1000
