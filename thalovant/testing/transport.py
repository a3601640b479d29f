"""Run a :class:`~thalovant.core.client.connection.Connection` against a :class:`FakeHub` in memory.

Theory of operation
-------------------
``FakeTransport`` stands where the shell's runtime stands: it executes the
``LinkOrder``\\ s a Connection emits against a :class:`FakeHub` and turns the
results into the transport facts the Connection expects, wrapped as
``LinkFact(epoch, fact)``. Every order is answered at once (a perfect
network); time only moves when the test moves a :class:`VirtualClock`.

* WebSocket: ``OpenWebSocket`` -> ``WsOpened`` + the greeting as ``WsMessage``;
  ``SendWs`` -> the hub's answers as ``WsMessage``; ``PingWs`` -> ``WsPonged``;
  ``CloseWs`` -> ``WsClosed``.
* HTTP: ``StartRequest`` -> the hub's five endpoints emulated (``/connect``,
  ``/send_message``, ``/get_messages``, ``/get_binary_messages``,
  ``/disconnect``) -> ``ResponseReceived``. Frames for the client wait in an
  outbox until a poll collects them, as on a real hub. Hub 4.x answers
  "Client is not connected" with status 200 and an ``error`` body.
* MQTT: ``ConnectMqtt`` -> ``MqttConnected``; ``Subscribe`` ->
  ``MqttSubscribed``; ``Publish`` -> ``MqttPublished`` (and, on the c2s topic,
  the payload goes to the hub; ``offline`` on the status topic drops the
  hub's logical connection); hub frames -> ``MqttMessage`` on the s2c topic.

:func:`pump` feeds the facts back into the Connection until both sides are
quiet and returns every non-transport output. Failure injection:
:meth:`FakeTransport.drop_link` (the network died), :meth:`FakeTransport.close_link`
(the hub closed with a code) and :meth:`FakeTransport.push` (a hub event).
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Iterable
from typing import Any

from thalovant.core.client.connection import DropLink, LinkFact, LinkOrder, OpenWebSocket
from thalovant.core.links.base import percent_encode
from thalovant.core.links.http_wire import CancelRequest, ResponseReceived, StartRequest
from thalovant.core.links.mqtt import (
    ConnectMqtt,
    DisconnectMqtt,
    MqttConnected,
    MqttDisconnected,
    MqttMessage,
    MqttPublished,
    MqttSubscribed,
    Publish,
    SetWill,
    Subscribe,
)
from thalovant.core.links.ws import CloseWs, PingWs, SendWs, WsClosed, WsMessage, WsOpened, WsPonged
from thalovant.core.machine import Input, Machine, Output, Tick
from thalovant.core.wire.auth import authorization_token
from thalovant.core.wire.message import HiveMessage
from thalovant.testing.hub import FakeHub, HubFrame

__all__ = ["FakeTransport", "VirtualClock", "form_decode", "pump", "run_until"]


def _unquote(text: str) -> str:
    out = bytearray()
    i = 0
    while i < len(text):
        c, pair = text[i], text[i + 1 : i + 3]
        if c == "%" and len(pair) == 2 and all(h in "0123456789abcdefABCDEF" for h in pair):
            out += bytes.fromhex(pair)
            i += 3
            continue
        out += b" " if c == "+" else c.encode("utf-8")
        i += 1
    return out.decode("utf-8", errors="replace")


def form_decode(body: bytes) -> dict[str, str]:
    """Decode an ``application/x-www-form-urlencoded`` body (what a hub's ``/send_message`` reads).

    >>> form_decode(b"message=%7B%22a%22%3A%201%7D&binary=1")
    {'message': '{"a": 1}', 'binary': '1'}
    """
    fields: dict[str, str] = {}
    for part in body.decode("utf-8", errors="replace").split("&"):
        if part:
            key, _, value = part.partition("=")
            fields[_unquote(key)] = _unquote(value)
    return fields


class VirtualClock:
    """Virtual time for sans-IO tests (aioquic style).

    ``advance_to(deadline)`` moves time forward to a machine's deadline; a deadline that is
    already in the past means the machine was not ticked when it should have been, which is a bug:
    it raises ``AssertionError``.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now!r})"

    def advance_to(self, deadline: float | None) -> float:
        """Move to ``deadline`` (no move for None); returns the new time.

        Raises:
            AssertionError: ``deadline`` is earlier than now.
        """
        if deadline is None:
            return self.now
        if deadline < self.now:
            raise AssertionError(f"deadline {deadline!r} is in the past (now {self.now!r})")
        self.now = deadline
        return self.now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError("time never goes back")
        self.now += seconds
        return self.now


class FakeTransport:
    """Executes a Connection's transport orders against a FakeHub (see the module docstring).

    Args:
        hub: the hub.
        protocol: "wss", "https" or "mqtt" (the Connection's).
        useragent / access_key: what the hub accepts in the ``authorization`` token; None skips the check.
    """

    def __init__(
        self,
        hub: FakeHub,
        *,
        protocol: str,
        useragent: str | None = None,
        access_key: str | None = None,
    ) -> None:
        self.hub = hub
        self.protocol = protocol
        self._token = authorization_token(useragent, access_key) if useragent and access_key is not None else None
        self._access_key = access_key
        self.facts: deque[LinkFact] = deque()
        self.epoch = 0  # the epoch whose transport is open (0: none)
        self.outbox: list[HubFrame] = []  # HTTP: frames waiting for a poll
        self._s2c: str | None = None
        self.orders: list[Output] = []
        self.opened = 0
        self.rejected_auth = 0
        self.mqtt_online = False
        #: While True, orders vanish unanswered (a network that swallows everything).
        self.blackhole = False

    def __repr__(self) -> str:
        return f"<FakeTransport {self.protocol} epoch={self.epoch} pending={len(self.facts)}>"

    # ---- orders ----------------------------------------------------------------------------------

    def execute(self, output: Output) -> bool:
        """Execute one Connection output if it is a transport order; returns whether it was one."""
        if isinstance(output, DropLink):
            if output.epoch == self.epoch:
                self._forget()
            return True
        if not isinstance(output, LinkOrder):
            return False
        self.orders.append(output.order)
        if self.blackhole:
            return True
        order, epoch = output.order, output.epoch
        if isinstance(order, OpenWebSocket):
            self._open_ws(epoch, order.target)
        elif isinstance(order, SendWs) and epoch == self.epoch:
            self._deliver(epoch, self.hub.receive(order.data))
        elif isinstance(order, PingWs) and epoch == self.epoch:
            self._fact(epoch, WsPonged())
        elif isinstance(order, CloseWs) and epoch == self.epoch:
            self.hub.close_connection()
            self._fact(epoch, WsClosed(code=order.code, reason=order.reason))
            self.epoch = 0
        elif isinstance(order, StartRequest):
            self._http(epoch, order)
        elif isinstance(order, CancelRequest):
            pass
        else:
            self._mqtt(epoch, order)
        return True

    def _fact(self, epoch: int, fact: Input) -> None:
        self.facts.append(LinkFact(epoch=epoch, fact=fact))

    def _forget(self) -> None:
        if self.protocol != "https":
            self.hub.close_connection()
        self.epoch = 0

    def _deliver(self, epoch: int, frames: Iterable[HubFrame]) -> None:
        for frame in frames:
            if self.protocol == "wss":
                self._fact(epoch, WsMessage(data=frame))
            elif self.protocol == "https":
                self.outbox.append(frame)
            elif self._s2c is not None:
                payload = frame.encode("utf-8") if isinstance(frame, str) else frame
                self._fact(epoch, MqttMessage(topic=self._s2c, payload=payload, qos=1))
        closing, self.hub.close_with = self.hub.close_with, None
        if closing is not None:  # the hub refused the handshake (hub 5.x closes with 1008)
            self.close_link(*closing)

    def _token_ok(self, target: str) -> bool:
        if self._token is None:
            return True
        query = target.partition("?")[2]
        raw = query.partition("authorization=")[2].split("&")[0]
        return raw in (self._token, percent_encode(self._token))

    # ---- WebSocket -------------------------------------------------------------------------------

    def _open_ws(self, epoch: int, target: str) -> None:
        self.opened += 1
        if not self._token_ok(target):  # spec §3.3: the upgrade succeeds, then the hub closes
            self.rejected_auth += 1
            self._fact(epoch, WsOpened())
            if self.hub.hub_version.startswith("4"):
                self._fact(epoch, WsClosed(code=None, reason=""))  # no status (wsproto 1005)
            else:
                self._fact(epoch, WsClosed(code=1008, reason="invalid api key"))
            return
        self.epoch = epoch
        self._fact(epoch, WsOpened())
        self._deliver(epoch, self.hub.open_connection())

    # ---- HTTP ------------------------------------------------------------------------------------

    def _http(self, epoch: int, order: StartRequest) -> None:
        path = order.target.partition("?")[0].rsplit("/", 1)[-1]
        if not self._token_ok(order.target):
            self.rejected_auth += 1
            if self.hub.hub_version.startswith("4"):  # spec §3.3: hub 4.x answers an unknown key with a 500
                self._answer(epoch, order, {"error": "Connection failed"}, status=500)
            else:
                self._answer(epoch, order, {"error": "Invalid authorization"}, status=403)
            return
        self.epoch = epoch
        if path == "connect":
            self.opened += 1
            self.outbox = list(self.hub.open_connection())
            self._answer(epoch, order, {"status": "Connected"})
        elif path == "disconnect":
            self.hub.close_connection()
            self.outbox = []
            self._answer(epoch, order, {"status": "Disconnected"})
        elif not self.hub.connected:
            self._answer(epoch, order, {"error": "Client is not connected"})
        elif path == "send_message":
            form = form_decode(order.body)
            message = form.get("message", "")
            frame: HubFrame = base64.b64decode(message) if form.get("binary") == "1" else message
            self._deliver(epoch, self.hub.receive(frame))  # a refusal (close_with) drops the client
            self._answer(epoch, order, {"status": "message sent"})
        elif path == "get_messages":
            texts = [f for f in self.outbox if isinstance(f, str)]
            self.outbox = [f for f in self.outbox if not isinstance(f, str)]
            self._answer(epoch, order, {"messages": texts})
        elif path == "get_binary_messages":
            blobs = [base64.b64encode(f).decode("ascii") for f in self.outbox if isinstance(f, bytes)]
            self.outbox = [f for f in self.outbox if isinstance(f, str)]
            self._answer(epoch, order, {"b64_messages": blobs})
        else:
            self._fact(epoch, ResponseReceived(req_id=order.req_id, status=404, body=b"not found"))

    def _answer(self, epoch: int, order: StartRequest, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode("utf-8")
        headers = (("Content-Type", "application/json"),)
        self._fact(epoch, ResponseReceived(req_id=order.req_id, status=status, headers=headers, body=data))

    # ---- MQTT ------------------------------------------------------------------------------------

    def _mqtt(self, epoch: int, order: Output) -> None:
        if isinstance(order, SetWill):
            return
        if isinstance(order, ConnectMqtt):
            self.opened += 1
            self.epoch = epoch
            self._fact(epoch, MqttConnected())
        elif isinstance(order, Subscribe) and epoch == self.epoch:
            self._s2c = order.topic
            self._fact(epoch, MqttSubscribed(granted_qos=1))
        elif isinstance(order, Publish) and epoch == self.epoch:
            self._fact(epoch, MqttPublished(pub_id=order.pub_id))
            if order.retain and order.payload in (b"offline", b"online"):
                self.mqtt_online = order.payload == b"online"
                if order.payload == b"offline":
                    self.hub.close_connection()
                return
            frame: HubFrame = order.payload
            try:
                text = order.payload.decode("utf-8")
                if isinstance(json.loads(text), dict):
                    frame = text
            except ValueError:
                pass
            if self._access_key is not None and self._access_key not in order.topic:
                return  # the hub only listens on topics named after keys it knows: nobody answers
            if not self.hub.connected:
                self.hub.open_connection(greet=False)
            self._deliver(epoch, self.hub.receive(frame))
        elif isinstance(order, DisconnectMqtt) and epoch == self.epoch:
            self.hub.close_connection()
            self._fact(epoch, MqttDisconnected(rc=0))
            self.epoch = 0

    # ---- failure injection and hub events ----------------------------------------------------------

    def drop_link(self) -> None:
        """The network died under the current link (WS 1006, MQTT rc 7; HTTP: the hub lost us)."""
        self.close_link(1006)

    def close_link(self, code: int = 1000, reason: str = "") -> None:
        """The hub closed the current link with ``code`` (WebSocket close code; MQTT uses rc 7)."""
        epoch = self.epoch
        self.hub.close_connection()
        self.outbox = []
        if epoch == 0 or self.protocol == "https":
            return  # HTTP: the next request learns "Client is not connected"
        self.epoch = 0
        if self.protocol == "wss":
            self._fact(epoch, WsClosed(code=code, reason=reason))
        else:
            self._fact(epoch, MqttDisconnected(rc=7))

    def inject(self, frame: HubFrame) -> None:
        """Deliver a raw frame to the client as if the hub sent it (no encryption: garbage on purpose)."""
        if self.epoch:
            self._deliver(self.epoch, [frame])

    def push(self, event_type: str, data: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> None:
        """The hub sends any bus event to the client (HTTP: at the next poll)."""
        if self.hub.connected:
            self._deliver(self.epoch, self.hub.push(event_type, data, context))

    def push_frame(self, message: HiveMessage) -> None:
        """The hub sends a whole frame (e.g. BINARY) to the client (HTTP: at the next poll)."""
        if self.hub.connected:
            self._deliver(self.epoch, self.hub.seal(message))


def pump(
    connection: Machine[Input],
    transport: FakeTransport,
    outputs: Iterable[Output] = (),
    *,
    now: float,
    max_steps: int = 10_000,
) -> list[Output]:
    """Execute transport orders and feed transport facts back until both sides are quiet.

    Args:
        connection: the client machine (a ``Connection``, or a recording wrapper of one).
        transport: the fake transport (and its hub).
        outputs: outputs the caller already got from ``connection`` (their orders are executed).
        now: the time of every step.
        max_steps: a bound on the facts fed (a loop past it raises ``AssertionError``).

    Returns:
        Every output that is not a transport order (the given ones first), in order.
    """
    result: list[Output] = []
    for output in outputs:
        if not transport.execute(output):
            result.append(output)
    steps = 0
    while transport.facts:
        steps += 1
        if steps > max_steps:
            raise AssertionError("pump: the connection and the hub did not settle")
        fact = transport.facts.popleft()
        for output in connection.handle(fact, now=now):
            if not transport.execute(output):
                result.append(output)
    return result


def run_until(
    connection: Machine[Input],
    transport: FakeTransport,
    clock: VirtualClock,
    until: float,
    *,
    stop: Any = None,
    max_ticks: int = 10_000,
) -> list[Output]:
    """Tick the connection at each deadline up to time ``until`` (or until ``stop(outputs)`` is true).

    Checks after every Tick that the connection's deadline is not left at or before now.
    """
    result: list[Output] = pump(connection, transport, now=clock.now)
    for _ in range(max_ticks):
        if stop is not None and stop(result):
            return result
        deadline = connection.deadline
        if deadline is None or deadline > until:
            clock.advance_to(max(until, clock.now))
            return result
        clock.advance_to(max(deadline, clock.now))
        ticked = connection.handle(Tick(), now=clock.now)
        after = connection.deadline
        if after is not None and after < clock.now:
            raise AssertionError(f"deadline {after!r} left in the past ({clock.now!r}) after a Tick")
        result += pump(connection, transport, ticked, now=clock.now)
    raise AssertionError("run_until: too many ticks")
