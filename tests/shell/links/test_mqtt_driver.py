"""MqttDriver (one link epoch's MQTT work) against a real mosquitto on 127.0.0.1, on asyncio and trio.

paho opens its own socket, so MQTT cannot use the in-memory dial seam; the
broker on loopback stands in. A small stub plays the runtime's side of
:class:`~thalovant.shell.links.epoch.LinkEpoch` and keeps every fact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.shell.links.test_mqtt import ALICE_PW, Broker, cid, start_broker
from thalovant.core.links import mqtt as mq
from thalovant.core.machine import Input
from thalovant.shell.links.dial import LinkTimes
from thalovant.shell.links.epoch import Endpoint, Timeouts
from thalovant.shell.links.mqtt import MqttConnection
from thalovant.shell.links.mqtt_driver import MqttDriver

pytestmark = pytest.mark.anyio

WAIT = 5.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_broker(tmp_path_factory.mktemp("mosq-driver"))
    yield b
    b.kill()


class StubEpoch:
    """The runtime's side of one epoch: tasks in a task group, facts kept in a list."""

    number = 1

    def __init__(self, endpoint: Endpoint, tg: anyio.abc.TaskGroup) -> None:
        self.endpoint = endpoint
        self.timeouts = Timeouts(connect=WAIT, send=WAIT)
        self.times = LinkTimes()
        self.facts: list[Input] = []
        self.scope = anyio.CancelScope()
        self._tg = tg
        self._wake = anyio.Event()

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        async def run() -> None:
            with self.scope:
                await fn(*args)

        self._tg.start_soon(run)

    def fact(self, fact: Input) -> None:
        self.facts.append(fact)
        self._wake.set()

    async def deliver(self, fact: Input) -> None:
        self.fact(fact)

    async def first(self, kind: type, **fields: Any) -> Any:
        """The first fact of type ``kind`` with these field values (bounded wait)."""
        with anyio.fail_after(WAIT):
            while True:
                for f in self.facts:
                    if isinstance(f, kind) and all(getattr(f, k) == v for k, v in fields.items()):
                        return f
                self._wake = anyio.Event()
                await self._wake.wait()


@asynccontextmanager
async def driver_for(broker: Broker, password: str = ALICE_PW) -> AsyncIterator[tuple[MqttDriver, StubEpoch]]:
    endpoint = Endpoint(host="127.0.0.1", port=broker.port, mqtt_username="alice", mqtt_password=password)
    async with anyio.create_task_group() as tg:
        epoch = StubEpoch(endpoint, tg)
        yield MqttDriver(epoch), epoch
        tg.cancel_scope.cancel()


async def test_connect_subscribe_publish_receive_disconnect(broker: Broker) -> None:
    topic = f"test/driver/{cid('loop')}"
    async with driver_for(broker) as (driver, epoch):
        await driver.execute(mq.ConnectMqtt(client_id=cid("driver"), keepalive=30))
        assert (await epoch.first(mq.MqttConnected)).session_present is False
        await driver.execute(mq.Subscribe(topic=topic, qos=1))
        assert (await epoch.first(mq.MqttSubscribed)).granted_qos == 1
        await driver.execute(mq.Publish(pub_id=7, topic=topic, payload=b"round trip", qos=1, retain=False))
        await epoch.first(mq.MqttPublished, pub_id=7)
        message = await epoch.first(mq.MqttMessage, topic=topic)
        assert (message.payload, message.qos) == (b"round trip", 1)
        await driver.execute(mq.DisconnectMqtt())
        await epoch.first(mq.MqttDisconnected, rc=0)
        assert driver.mqtt is not None and not driver.mqtt.connected


async def test_a_failed_subscription_is_reported_as_0x80(broker: Broker) -> None:
    async with driver_for(broker) as (driver, epoch):
        await driver.execute(mq.ConnectMqtt(client_id=cid("driver")))
        await epoch.first(mq.MqttConnected)
        await driver.execute(mq.Subscribe(topic="$SYS/#/bad/#", qos=1))
        assert (await epoch.first(mq.MqttSubscribed)).granted_qos == 0x80


async def test_bad_password_is_rc_5(broker: Broker) -> None:
    async with driver_for(broker, password="wrong-password-456") as (driver, epoch):
        await driver.execute(mq.ConnectMqtt(client_id=cid("driver")))
        await epoch.first(mq.MqttDisconnected, rc=5)
        assert not any(isinstance(f, mq.MqttConnected) for f in epoch.facts)


async def test_publish_before_connect_fails_at_once(broker: Broker) -> None:
    async with driver_for(broker) as (driver, epoch):
        await driver.execute(mq.Publish(pub_id=1, topic="test/x", payload=b"early", qos=1, retain=False))
        assert epoch.facts == [mq.MqttPublishFailed(pub_id=1, reason="not connected")]
        await driver.execute(mq.Subscribe(topic="test/x", qos=1))  # no fact: the machine resubscribes after connect
        assert len(epoch.facts) == 1


async def test_dropping_the_epoch_aborts_and_the_broker_publishes_the_will(broker: Broker) -> None:
    will_topic = f"test/will/{cid('will')}"
    async with MqttConnection() as watcher, driver_for(broker) as (driver, epoch):
        await watcher.connect("127.0.0.1", broker.port, client_id=cid("watch"), username="alice", password=ALICE_PW)
        await watcher.subscribe(will_topic, 1)
        await driver.execute(mq.SetWill(topic=will_topic, payload=b"offline", qos=1, retain=False))
        await driver.execute(mq.ConnectMqtt(client_id=cid("driver"), keepalive=30))
        await epoch.first(mq.MqttConnected)
        epoch.scope.cancel()  # what the runtime does to a dropped epoch
        with anyio.fail_after(WAIT):
            topic, payload, _qos = await watcher.receive()
        assert (topic, payload) == (will_topic, b"offline")
        assert not any(isinstance(f, mq.MqttDisconnected) for f in epoch.facts)  # a dropped epoch reports nothing
