"""The MQTT driver: carries out one link epoch's MQTT orders over an :class:`MqttConnection`.

Theory of operation
-------------------
* ``SetWill`` is kept for the connect that follows it.
* ``ConnectMqtt`` spawns the epoch's main task: it connects (reporting
  ``MqttConnected``, or ``MqttDisconnected`` with rc 5 for refused
  credentials, 8 (paho's ``MQTT_ERR_TLS``, final) when the broker's
  certificate did not verify, and 3 otherwise; paho's connect records its
  phases in ``epoch.times`` and the CONNACK marks the admission), then reports every received message as
  ``MqttMessage`` until the link is lost (``MqttDisconnected(rc=7)``; a
  quiet connection whose PINGREQ goes unanswered is lost too, see the
  ``liveness`` of :mod:`~thalovant.shell.links.mqtt_engine`). Its
  tasks report through ``epoch.deliver``, which waits while the machine's
  inbox is full; the connection then stops reading the socket once
  ``max_pending`` messages wait (TCP pushes back on the broker).
* ``Subscribe`` and ``Publish`` go into a bounded queue that one worker task
  carries out in order, reporting ``MqttSubscribed`` (0x80 when refused),
  ``MqttPublished`` or ``MqttPublishFailed``. A publish that cannot be queued
  (no connect yet, queue full or closed) fails at once, so the machine's
  accounting stays exact.
* ``DisconnectMqtt`` runs on the runtime's driver task, so the DISCONNECT
  leaves before a finished machine stops the driver; then it reports
  ``MqttDisconnected(rc=0)``.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from thalovant.core.errors import ThalovantAuthenticationError, ThalovantError
from thalovant.core.links import mqtt as mq
from thalovant.core.machine import Output
from thalovant.shell.links.dial import timing
from thalovant.shell.links.epoch import LinkEpoch
from thalovant.shell.links.mqtt import MqttConnection, MqttTlsVerificationError

__all__ = ["MqttDriver"]

log = logging.getLogger("thalovant")

_JOB_QUEUE = 256
#: paho's ``MQTT_ERR_TLS``: the rc reported when the broker's certificate did not verify (final, names TLS).
TLS_FAILED_RC = 8


def _connect_failure_rc(exc: ThalovantError) -> int:
    """The rc a failed connect is reported with: 5 refused credentials, 8 TLS verification, else 3 (retried)."""
    if isinstance(exc, MqttTlsVerificationError):
        return TLS_FAILED_RC
    return 5 if isinstance(exc, ThalovantAuthenticationError) else 3


class MqttDriver:
    """The MQTT connection of one link epoch."""

    ORDERS: ClassVar[tuple[type[Output], ...]] = (
        mq.SetWill,
        mq.ConnectMqtt,
        mq.DisconnectMqtt,
        mq.Subscribe,
        mq.Publish,
    )

    def __init__(self, epoch: LinkEpoch) -> None:
        self.epoch = epoch
        self.mqtt: MqttConnection | None = None
        self.will: mq.SetWill | None = None
        self.jobs: MemoryObjectSendStream[Output] | None = None

    def __repr__(self) -> str:
        return f"<MqttDriver epoch={self.epoch.number} {self.mqtt!r}>"

    async def execute(self, order: Output) -> None:
        if isinstance(order, mq.SetWill):
            self.will = order
        elif isinstance(order, mq.ConnectMqtt):
            self.epoch.spawn(self._main, order)
        elif isinstance(order, mq.DisconnectMqtt):
            if self.mqtt is not None:
                with anyio.move_on_after(self.epoch.timeouts.send):
                    await self.mqtt.disconnect()
            self.epoch.fact(mq.MqttDisconnected(rc=0))
        elif isinstance(order, mq.Subscribe | mq.Publish):
            self._queue(order)

    async def _main(self, order: mq.ConnectMqtt) -> None:
        epoch, ep = self.epoch, self.epoch.endpoint
        send, receive = anyio.create_memory_object_stream[Output](_JOB_QUEUE)
        self.jobs = send
        will = self.will
        try:
            async with MqttConnection(ack_timeout=epoch.timeouts.send, liveness=epoch.timeouts.liveness) as mqtt:
                try:
                    with timing(epoch.times):  # paho's connect records its phases there
                        present = await mqtt.connect(
                            ep.host,
                            ep.port,
                            client_id=order.client_id,
                            username=ep.mqtt_username,
                            password=ep.mqtt_password,
                            tls=ep.tls,
                            will=(will.topic, will.payload, will.qos, will.retain) if will else None,
                            keepalive=order.keepalive,
                            timeout=epoch.timeouts.connect,
                        )
                except ThalovantError as exc:
                    log.debug("mqtt connect failed: %s", exc)
                    await epoch.deliver(mq.MqttDisconnected(rc=_connect_failure_rc(exc)))
                    return
                self.mqtt = mqtt
                epoch.times.admitted(anyio.current_time())  # the broker's CONNACK
                await epoch.deliver(mq.MqttConnected(session_present=bool(present)))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._work, mqtt, receive)
                    try:
                        while True:
                            topic, payload, qos = await mqtt.receive()
                            await epoch.deliver(mq.MqttMessage(topic=topic, payload=payload, qos=qos))
                    except ThalovantError as exc:
                        log.debug("mqtt link lost: %s", exc)
                        await epoch.deliver(mq.MqttDisconnected(rc=7))
                    tg.cancel_scope.cancel()
        finally:
            send.close()

    def _queue(self, order: mq.Subscribe | mq.Publish) -> None:
        jobs = self.jobs
        if jobs is None:
            # connect has not started yet: answer failures so the machine's accounting stays exact
            if isinstance(order, mq.Publish):
                self.epoch.fact(mq.MqttPublishFailed(pub_id=order.pub_id, reason="not connected"))
            return
        try:
            jobs.send_nowait(order)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            if isinstance(order, mq.Publish):
                self.epoch.fact(mq.MqttPublishFailed(pub_id=order.pub_id, reason="publish queue unavailable"))

    async def _work(self, mqtt: MqttConnection, jobs: MemoryObjectReceiveStream[Output]) -> None:
        fact = self.epoch.deliver
        async for job in jobs:
            if isinstance(job, mq.Subscribe):
                try:
                    granted = await mqtt.subscribe(job.topic, job.qos)
                except ThalovantError:
                    granted = 0x80
                await fact(mq.MqttSubscribed(granted_qos=granted))
            elif isinstance(job, mq.Publish):
                try:
                    await mqtt.publish(job.topic, job.payload, job.qos, job.retain)
                except ThalovantError as exc:
                    await fact(mq.MqttPublishFailed(pub_id=job.pub_id, reason=type(exc).__name__))
                else:
                    await fact(mq.MqttPublished(pub_id=job.pub_id))
