"""Property test: arbitrary payloads, topics and QoS survive a real mosquitto round trip byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.shell.links.test_mqtt import ALICE_PW, BOB_PW, Broker, cid, start_broker
from thalovant.shell.links.mqtt import MqttConnection


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_broker(Path(tmp_path_factory.mktemp("mosq-props")))
    yield b
    b.kill()


# mosquitto 2.0.11 drops the client ("malformed packet") for control characters or
# noncharacters in a topic (see test_shell_mqtt), so topics here use printable classes only.
segment = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="#+/"), min_size=1, max_size=8
)
messages = st.lists(
    st.tuples(segment, st.binary(max_size=3000), st.integers(0, 2)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msgs=messages)
def test_round_trip_is_byte_exact_for_any_payload_topic_and_qos(
    broker: Broker, msgs: list[tuple[str, bytes, int]]
) -> None:
    async def main() -> list[tuple[str, bytes, int]]:
        async with MqttConnection() as pub, MqttConnection() as sub:
            with anyio.fail_after(10):
                await pub.connect("127.0.0.1", broker.port, client_id=cid("p"), username="alice", password=ALICE_PW)
                await sub.connect("127.0.0.1", broker.port, client_id=cid("s"), username="bob", password=BOB_PW)
                await sub.subscribe("test/prop/#", 2)
                for seg, payload, qos in msgs:
                    await pub.publish(f"test/prop/{seg}", payload, qos, False)
                got = [await sub.receive() for _ in msgs]
                await pub.disconnect()
                await sub.disconnect()
                return got

    got = anyio.run(main)
    # Delivery QoS is min(publish QoS, subscription QoS 2). Order holds per topic; compare sorted.
    want = [(f"test/prop/{seg}", payload, qos) for seg, payload, qos in msgs]
    assert sorted(got) == sorted(want)
