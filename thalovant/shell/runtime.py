"""Runtime: runs one ``core.connection.Connection`` and carries out its orders.

The runtime owns one :class:`~thalovant.shell.driver.Driver` (the only place
inputs enter the machine, so the only place a trace is recorded) and one
anyio task group. Transport work is small and mechanical:

* WebSocket: ``OpenWebSocket`` starts a reader task per link epoch
  (wsproto via :class:`~thalovant.shell.links.ws.WsConnection`); ``SendWs`` writes
  on the driver task, in order.
* HTTP: each ``StartRequest`` runs in its own task on one of two keep-alive
  connections (polls and sends never share one), posting
  ``ResponseReceived`` or ``RequestFailed`` back.
* MQTT: one task per epoch owns an :class:`~thalovant.shell.links.mqtt.MqttConnection`;
  subscribes and publishes go through an ordered worker.

Everything the machine reports for users (events, send results, ask results,
status) is handed to the :class:`Outcomes` sink given by the client. No
retry, timing or protocol decision is made here: those live in the core.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from thalovant.core.client import connection as cx
from thalovant.core.errors import ThalovantAuthenticationError, ThalovantConnectionError, ThalovantError
from thalovant.core.links.http_wire import (
    NOT_SENT,
    TLS_FAILED,
    CancelRequest,
    RequestFailed,
    ResponseReceived,
    StartRequest,
)
from thalovant.core.links.mqtt import (
    ConnectMqtt,
    DisconnectMqtt,
    MqttConnected,
    MqttDisconnected,
    MqttMessage,
    MqttPublished,
    MqttPublishFailed,
    MqttSubscribed,
    Publish,
    SetWill,
    Subscribe,
)
from thalovant.core.links.ws import CloseWs, SendWs, WsClosed, WsMessage, WsOpened, WsRejected
from thalovant.core.machine import Input, Note, NoteLevel, Output
from thalovant.shell.driver import Driver, StepRecorder
from thalovant.shell.links.http import HttpConnection, HttpNotSentError, HttpTimeouts
from thalovant.shell.links.mqtt import MqttConnection
from thalovant.shell.links.ws import WsClosed as ShellWsClosed
from thalovant.shell.links.ws import WsConnection, WsUpgradeRejected

log = logging.getLogger("thalovant")

_LOG_LEVEL = {NoteLevel.DEBUG: logging.DEBUG, NoteLevel.INFO: logging.INFO, NoteLevel.WARNING: logging.WARNING}


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where the transport connects (from the identity). Holds the broker password: no repr."""

    host: str
    port: int
    tls: ssl.SSLContext | None = field(default=None, repr=False)
    server_hostname: str | None = None
    mqtt_username: str | None = field(default=None, repr=False)
    mqtt_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    connect: float = 10.0
    send: float = 10.0
    http_request: float = 10.0


#: Where the runtime hands what users care about (the client's dispatcher).
Outcomes = Callable[[Output], None]


class _Epoch:
    """Transport state of one link epoch."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.scopes: set[anyio.CancelScope] = set()
        self.dropped = False
        self.ws: WsConnection | None = None
        self.http_poll: HttpConnection | None = None
        self.http_send: HttpConnection | None = None
        self.requests: dict[int, anyio.CancelScope] = {}
        self.mqtt: MqttConnection | None = None
        self.mqtt_ready = anyio.Event()
        self.will: SetWill | None = None
        self.mqtt_jobs: MemoryObjectSendStream[Output] | None = None
        self.mqtt_jobs_rx: MemoryObjectReceiveStream[Output] | None = None


class ConnectionRuntime:
    """Drive a Connection machine over real transports.

    Args:
        machine: the pure composite client machine.
        endpoint: host/port/TLS of the transport (and broker credentials for MQTT).
        outcomes: receives every user-facing output, on the event loop thread.
        timeouts: IO timeouts.
        recorder: optional trace recorder (see ``thalovant.core.trace``).
        entropy: the recording entropy wrapper the machine draws from, when recording.
    """

    def __init__(
        self,
        machine: cx.Connection,
        *,
        endpoint: Endpoint,
        outcomes: Outcomes,
        timeouts: Timeouts | None = None,
        recorder: StepRecorder | None = None,
        entropy: Any = None,
        clock: Callable[[], float] = anyio.current_time,
    ) -> None:
        self.machine = machine
        self.endpoint = endpoint
        self.outcomes = outcomes
        self.timeouts = timeouts or Timeouts()
        self.driver = Driver(
            machine, recorder=recorder, entropy=entropy, clock=clock, stop_when=lambda: machine.finished
        )
        self._tg: anyio.abc.TaskGroup | None = None
        self._epochs: dict[int, _Epoch] = {}
        self.done = anyio.Event()

    def __repr__(self) -> str:
        return f"<ConnectionRuntime {self.machine!r}>"

    # ---- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until the machine finishes or :meth:`stop` is called."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                await self.driver.run(self._execute)
            finally:
                for number in list(self._epochs):
                    self._drop(number)
                tg.cancel_scope.cancel()
                self.done.set()
        self._tg = None

    def stop(self) -> None:
        self.driver.close()

    async def post(self, inp: Input) -> bool:
        return await self.driver.post(inp)

    def post_nowait(self, inp: Input) -> bool:
        return self.driver.post_nowait(inp)

    # ---- executing orders -----------------------------------------------------------------------

    async def _execute(self, out: Output) -> None:
        if isinstance(out, cx.LinkOrder):
            await self._link_order(out.epoch, out.order)
        elif isinstance(out, cx.DropLink):
            self._drop(out.epoch)
        elif isinstance(out, Note):
            log.log(_LOG_LEVEL.get(out.level, logging.DEBUG), "%s", out.text)
        else:
            self.outcomes(out)

    def _epoch(self, number: int) -> _Epoch:
        epoch = self._epochs.get(number)
        if epoch is None:
            epoch = self._epochs[number] = _Epoch(number)
            for old in [n for n in self._epochs if n < number - 1]:
                self._drop(old)
        return epoch

    def _drop(self, number: int) -> None:
        epoch = self._epochs.pop(number, None)
        if epoch is not None:
            epoch.dropped = True
            for scope in list(epoch.scopes):
                scope.cancel()

    def _spawn(self, epoch: _Epoch, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        assert self._tg is not None

        scope = anyio.CancelScope()
        if epoch.dropped:
            return
        epoch.scopes.add(scope)

        async def runner() -> None:
            try:
                with scope:
                    await fn(*args)
            finally:
                epoch.scopes.discard(scope)

        self._tg.start_soon(runner)

    def _fact(self, epoch: _Epoch, fact: Input) -> None:
        """Post a transport fact; dropped silently when the driver already stopped."""
        item = cx.LinkFact(epoch=epoch.number, fact=fact)
        try:
            self.driver.post_nowait(item)
        except anyio.WouldBlock:
            if self._tg is not None:  # a full inbox: wait for room in a task of its own, order kept by anyio
                self._tg.start_soon(self.driver.post, item)

    async def _link_order(self, number: int, order: Output) -> None:
        epoch = self._epoch(number)
        if isinstance(order, cx.OpenWebSocket):
            self._spawn(epoch, self._ws_reader, epoch, order)
        elif isinstance(order, SendWs):
            await self._ws_send(epoch, order)
        elif isinstance(order, CloseWs):
            self._spawn(epoch, self._ws_close, epoch, order)
        elif isinstance(order, StartRequest):
            self._start_request(epoch, order)
        elif isinstance(order, CancelRequest):
            scope = epoch.requests.pop(order.req_id, None)
            if scope is not None:
                scope.cancel()
        elif isinstance(order, SetWill):
            epoch.will = order
        elif isinstance(order, ConnectMqtt):
            self._spawn(epoch, self._mqtt_main, epoch, order)
        elif isinstance(order, DisconnectMqtt):
            # on the driver task, so the DISCONNECT leaves before a finished machine stops the driver
            if epoch.mqtt is not None:
                with anyio.move_on_after(self.timeouts.send):
                    await epoch.mqtt.disconnect()
            self._fact(epoch, MqttDisconnected(rc=0))
        elif isinstance(order, Subscribe | Publish):
            await self._mqtt_job(epoch, order)
        else:
            log.debug("runtime: ignored order %s", type(order).__name__)

    # ---- WebSocket ------------------------------------------------------------------------------

    async def _ws_reader(self, epoch: _Epoch, order: cx.OpenWebSocket) -> None:
        ep = self.endpoint
        try:
            ws = await WsConnection.connect(
                ep.host,
                ep.port,
                order.target,
                tls=ep.tls,
                server_hostname=ep.server_hostname,
                timeout=self.timeouts.connect,
                extra_headers=order.headers,
            )
        except WsUpgradeRejected as exc:
            self._fact(epoch, WsRejected(status=getattr(exc, "status_code", 0)))
            return
        except ThalovantAuthenticationError:
            self._fact(epoch, WsRejected(status=403))
            return
        except ThalovantConnectionError as exc:  # not retryable here means TLS verification failed
            self._fact(epoch, WsClosed(code=1006 if exc.retryable else 1015, reason=str(exc)))
            return
        except ThalovantError as exc:
            self._fact(epoch, WsClosed(code=1006, reason=str(exc)))
            return
        epoch.ws = ws
        self._fact(epoch, WsOpened())
        try:
            while True:
                item = await ws.receive()
                if isinstance(item, ShellWsClosed):
                    self._fact(epoch, WsClosed(code=item.code, reason=item.reason))
                    return
                self._fact(epoch, WsMessage(data=item))
        except ThalovantError as exc:
            self._fact(epoch, WsClosed(code=1006, reason=str(exc)))
        finally:
            with anyio.CancelScope(shield=True):
                await ws.abort()

    async def _ws_send(self, epoch: _Epoch, order: SendWs) -> None:
        ws = epoch.ws
        if ws is None:
            return  # the reader reports the failure; the machine accounts for the frame
        try:
            with anyio.fail_after(self.timeouts.send):
                if isinstance(order.data, str):
                    await ws.send_text(order.data)
                else:
                    await ws.send_bytes(order.data)
        except (ThalovantError, TimeoutError) as exc:
            log.debug("websocket send failed: %s", type(exc).__name__)
            await ws.abort()

    async def _ws_close(self, epoch: _Epoch, order: CloseWs) -> None:
        if epoch.ws is not None:
            with anyio.move_on_after(self.timeouts.send):
                await epoch.ws.send_close(order.code, order.reason)  # the reader task gets the reply

    # ---- HTTP -----------------------------------------------------------------------------------

    def _http(self, epoch: _Epoch, poll: bool) -> HttpConnection:
        ep = self.endpoint
        attr = "http_poll" if poll else "http_send"
        conn: HttpConnection | None = getattr(epoch, attr)
        if conn is None:
            conn = HttpConnection(
                ep.host,
                ep.port,
                tls=ep.tls is not None,
                ssl_context=ep.tls,
                timeouts=HttpTimeouts.uniform(self.timeouts.http_request),
            )
            setattr(epoch, attr, conn)
        return conn

    def _start_request(self, epoch: _Epoch, order: StartRequest) -> None:
        poll = order.method == "GET"
        conn = self._http(epoch, poll)
        scope = anyio.CancelScope()
        epoch.requests[order.req_id] = scope
        self._spawn(epoch, self._request, epoch, conn, order, scope)

    async def _request(
        self, epoch: _Epoch, conn: HttpConnection, order: StartRequest, scope: anyio.CancelScope
    ) -> None:
        with scope:
            try:
                resp = await conn.request(order.method, order.target, order.headers, order.body)
            except HttpNotSentError as exc:  # not retryable here means TLS verification failed
                kind = NOT_SENT if exc.retryable else TLS_FAILED
                self._fact(epoch, RequestFailed(req_id=order.req_id, kind=kind, detail=str(exc)))
            except TimeoutError as exc:
                self._fact(epoch, RequestFailed(req_id=order.req_id, kind="timeout", detail=str(exc)))
            except ThalovantError as exc:
                self._fact(epoch, RequestFailed(req_id=order.req_id, kind="connect", detail=str(exc)))
            else:
                headers = tuple((k, v) for k, v in resp.headers)
                self._fact(
                    epoch,
                    ResponseReceived(req_id=order.req_id, status=resp.status, headers=headers, body=resp.body),
                )
            finally:
                epoch.requests.pop(order.req_id, None)
        if scope.cancelled_caught:
            await conn.aclose()  # a half-read response leaves the connection unusable

    # ---- MQTT -----------------------------------------------------------------------------------

    async def _mqtt_main(self, epoch: _Epoch, order: ConnectMqtt) -> None:
        ep = self.endpoint
        send, receive = anyio.create_memory_object_stream[Output](256)
        epoch.mqtt_jobs, epoch.mqtt_jobs_rx = send, receive
        will = epoch.will
        try:
            async with MqttConnection(ack_timeout=self.timeouts.send) as mqtt:
                try:
                    present = await mqtt.connect(
                        ep.host,
                        ep.port,
                        client_id=order.client_id,
                        username=ep.mqtt_username,
                        password=ep.mqtt_password,
                        tls=ep.tls,
                        will=(will.topic, will.payload, will.qos, will.retain) if will else None,
                        keepalive=order.keepalive,
                        timeout=self.timeouts.connect,
                    )
                except ThalovantError as exc:
                    log.debug("mqtt connect failed: %s", exc)
                    self._fact(epoch, MqttDisconnected(rc=5 if "auth" in type(exc).__name__.lower() else 3))
                    return
                epoch.mqtt = mqtt
                epoch.mqtt_ready.set()
                self._fact(epoch, MqttConnected(session_present=bool(present)))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._mqtt_worker, epoch, mqtt, receive)
                    try:
                        while True:
                            topic, payload, qos = await mqtt.receive()
                            self._fact(epoch, MqttMessage(topic=topic, payload=payload, qos=qos))
                    except ThalovantError as exc:
                        log.debug("mqtt link lost: %s", exc)
                        self._fact(epoch, MqttDisconnected(rc=7))
                    tg.cancel_scope.cancel()
        finally:
            send.close()

    async def _mqtt_job(self, epoch: _Epoch, order: Output) -> None:
        jobs = epoch.mqtt_jobs
        if jobs is None:
            # connect has not started yet: answer failures so the machine's accounting stays exact
            if isinstance(order, Publish):
                self._fact(epoch, MqttPublishFailed(pub_id=order.pub_id, reason="not connected"))
            return
        try:
            jobs.send_nowait(order)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            if isinstance(order, Publish):
                self._fact(epoch, MqttPublishFailed(pub_id=order.pub_id, reason="publish queue unavailable"))

    async def _mqtt_worker(self, epoch: _Epoch, mqtt: MqttConnection, jobs: MemoryObjectReceiveStream[Output]) -> None:
        async for job in jobs:
            if isinstance(job, Subscribe):
                try:
                    granted = await mqtt.subscribe(job.topic, job.qos)
                except ThalovantError:
                    granted = 0x80
                self._fact(epoch, MqttSubscribed(granted_qos=granted))
            elif isinstance(job, Publish):
                try:
                    await mqtt.publish(job.topic, job.payload, job.qos, job.retain)
                except ThalovantError as exc:
                    self._fact(epoch, MqttPublishFailed(pub_id=job.pub_id, reason=type(exc).__name__))
                else:
                    self._fact(epoch, MqttPublished(pub_id=job.pub_id))
