"""The latency floor: the smallest client that completes the same ask exchange with a real hub.

Item 1 of the benchmark issue compares thalovant's ask latency with "the smallest client that can
complete the same exchange", so that the hub's own share of the time is known. This module is that
client, once per transport. It drives the pure :class:`thalovant.core.session.machine.Session` (handshake,
AES-GCM sealing; a few microseconds per message, see the codec benchmark) from the most direct
blocking loop there is, with none of the client machinery (no event loop, no Connection machine, no
correlation, no queues, no reconnect):

* **WebSocket**: one blocking TCP socket (``TCP_NODELAY``) and ``wsproto``.
* **HTTP**: one keep-alive ``http.client`` connection; after a send, ``/get_messages`` is polled
  back to back with no pause (the fastest a polling client can notice an answer; it is not a
  polite client).
* **MQTT**: paho-mqtt 2.x with its own network thread (``loop_start``) and a ``queue.Queue``.

An ask is "done" when ``ovos.utterance.handled`` for its request id arrives, the same end signal
thalovant's ``ask()`` waits for. Every loop is bounded in count and time. Loopback only.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from returns.result import Success
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from thalovant.core.bus.outbound import utterance_message
from thalovant.core.links.base import percent_encode
from thalovant.core.links.http_wire import parse_body, poll_frames, send_body
from thalovant.core.links.mqtt_topics import MqttLayout, mqtt_topics
from thalovant.core.links.ws import ws_target
from thalovant.core.machine import Output
from thalovant.core.session.machine import (
    Deliver,
    FrameReceived,
    LinkOpened,
    SendFrame,
    Session,
    SessionFailed,
    SessionReady,
    UserSend,
)
from thalovant.core.wire.auth import authorization_token
from thalovant.core.wire.message import BusMessage
from thalovant.shell.identity_io import ThalovantIdentity

__all__ = ["FloorError", "measure"]

HOST = "127.0.0.1"
END_TYPE = "ovos.utterance.handled"


class FloorError(RuntimeError):
    """The floor client could not complete the exchange."""


class _Core:
    """A Session plus the bookkeeping of one ask at a time."""

    def __init__(
        self,
        ident: ThalovantIdentity,
        useragent: str,
        *,
        wire: str = "text",
        binary_ok: bool = True,
        trigger_hello: bool = False,
    ) -> None:
        self.ident = ident
        self.session = Session(
            session_id="floor-" + os.urandom(8).hex(),
            useragent=useragent,
            entropy=os.urandom,
            site_id=ident.site_id,
            access_key=ident.access_key,
            password=ident.password,
            crypto_key=ident.runtime_crypto_key,
            wire=wire,  # type: ignore[arg-type]
            binary_ok=binary_ok,
            trigger_hello=trigger_hello,
        )
        self.ready = False
        self.done: set[str] = set()
        self.replies: dict[str, str] = {}
        self._ref = 0

    def feed(self, outputs: list[Output], send: Callable[[str | bytes], None]) -> None:
        for out in outputs:
            if isinstance(out, SendFrame):
                send(out.data)
            elif isinstance(out, SessionReady):
                self.ready = True
            elif isinstance(out, SessionFailed):
                raise FloorError(f"session failed: {out.code}: {out.detail}")
            elif isinstance(out, Deliver) and isinstance(out.message.payload, dict):
                payload = out.message.payload
                ctx = payload.get("context") or {}
                rid = ctx.get("request_id") or ctx.get("thalovant_request_id")
                if not isinstance(rid, str):
                    continue
                if payload.get("type") == "speak":
                    self.replies[rid] = str((payload.get("data") or {}).get("utterance", ""))
                elif payload.get("type") == END_TYPE:
                    self.done.add(rid)

    def ask(self, text: str) -> tuple[str, list[Output]]:
        self._ref += 1
        rid = f"floor-{os.urandom(6).hex()}-{self._ref}"
        msg: BusMessage = utterance_message(text, request_id=rid, site_id=self.ident.site_id)
        return rid, self.session.handle(UserSend(message=msg, ref=self._ref), now=time.monotonic())


# ---- WebSocket ------------------------------------------------------------------------------------


class _WsFloor:
    def __init__(self, ident: ThalovantIdentity, port: int, useragent: str, deadline: float) -> None:
        self.core = _Core(ident, useragent)
        self.deadline = deadline
        self.sock = socket.create_connection((HOST, port), timeout=5.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws = WSConnection(ConnectionType.CLIENT)
        target = ws_target(authorization_token(useragent, ident.access_key), "raw")
        self.sock.sendall(self.ws.send(Request(host=f"{HOST}:{port}", target=target)))
        self.open = False
        self._pump_until(lambda: self.open)
        self.core.feed(self.core.session.handle(LinkOpened(), now=time.monotonic()), self._send)
        self._pump_until(lambda: self.core.ready)

    def _send(self, data: str | bytes) -> None:
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        self.sock.sendall(self.ws.send(event))

    def _pump_until(self, cond: Callable[[], bool]) -> None:
        while not cond():
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise FloorError("websocket floor: out of time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise FloorError("websocket floor: the hub closed the socket")
            self.ws.receive_data(chunk)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.open = True
                elif isinstance(event, RejectConnection | CloseConnection):
                    raise FloorError(f"websocket floor: refused or closed ({event!r})")
                elif isinstance(event, Ping):
                    self.sock.sendall(self.ws.send(event.response()))
                elif isinstance(event, TextMessage):
                    if event.message_finished:
                        outs = self.core.session.handle(FrameReceived(data=event.data), now=time.monotonic())
                        self.core.feed(outs, self._send)

    def ask(self, text: str) -> str:
        rid, outs = self.core.ask(text)
        self.core.feed(outs, self._send)
        self._pump_until(lambda: rid in self.core.done)
        return self.core.replies.get(rid, "")

    def close(self) -> None:
        try:
            self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        except Exception:  # the benchmark is over either way
            pass
        self.sock.close()


# ---- HTTP -----------------------------------------------------------------------------------------


class _HttpFloor:
    def __init__(self, ident: ThalovantIdentity, port: int, useragent: str, deadline: float) -> None:
        self.core = _Core(ident, useragent, binary_ok=False)
        self.deadline = deadline
        self.conn = http.client.HTTPConnection(HOST, port, timeout=5.0)
        self.query = "?authorization=" + percent_encode(authorization_token(useragent, ident.access_key))
        self.headers = {"User-Agent": useragent, "Accept": "application/json"}
        self.polls = 0
        self._request("POST", "/disconnect", b"")
        self._request("POST", "/connect", b"")
        self.core.feed(self.core.session.handle(LinkOpened(), now=time.monotonic()), self._send)
        self._poll_until(lambda: self.core.ready)

    def _request(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        headers = dict(self.headers)
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path + self.query, body=body, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        parsed = parse_body(raw)
        if not isinstance(parsed, Success):
            raise FloorError(f"http floor: {method} {path} answered {resp.status} with a non-JSON body")
        value: dict[str, Any] = parsed.unwrap()
        return value

    def _send(self, data: str | bytes) -> None:
        answer = self._request("POST", "/send_message", send_body(data))
        if "error" in answer:
            raise FloorError(f"http floor: send refused: {answer['error']}")

    def _poll_until(self, cond: Callable[[], bool]) -> None:
        while not cond():
            if time.monotonic() > self.deadline:
                raise FloorError("http floor: out of time")
            self.polls += 1
            frames = poll_frames(self._request("GET", "/get_messages", b""), binary=False)
            if not isinstance(frames, Success):
                raise FloorError("http floor: bad poll answer")
            for frame in frames.unwrap()[0]:
                self.core.feed(self.core.session.handle(FrameReceived(data=frame), now=time.monotonic()), self._send)

    def ask(self, text: str) -> str:
        rid, outs = self.core.ask(text)
        self.core.feed(outs, self._send)
        self._poll_until(lambda: rid in self.core.done)
        return self.core.replies.get(rid, "")

    def close(self) -> None:
        try:
            self._request("POST", "/disconnect", b"")
        finally:
            self.conn.close()


# ---- MQTT -----------------------------------------------------------------------------------------


class _MqttFloor:
    def __init__(self, ident: ThalovantIdentity, port: int, useragent: str, deadline: float) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        creds = ident.mqtt
        if creds is None:
            raise FloorError("mqtt floor: the identity has no mqtt section")
        topics = mqtt_topics(
            access_key=ident.access_key, topic_prefix=creds.topic_prefix or "", layout=MqttLayout.LEGACY
        )
        if not isinstance(topics, Success):
            raise FloorError("mqtt floor: bad topics")
        self.topics = topics.unwrap()
        self.core = _Core(ident, useragent, wire="bitstring", trigger_hello=True)
        self.deadline = deadline
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="thalovant-floor-" + os.urandom(8).hex())
        client.username_pw_set(creds.username, creds.password)
        client.on_connect = lambda c, u, f, rc, p: self.inbox.put(("connected", rc))
        client.on_subscribe = lambda c, u, mid, rcs, p: self.inbox.put(("subscribed", mid))
        client.on_publish = lambda c, u, mid, rc, p: self.inbox.put(("published", mid))
        client.on_message = lambda c, u, msg: self.inbox.put(("message", bytes(msg.payload)))
        self.client = client
        client.connect(HOST, port, keepalive=30)
        client.loop_start()
        self._wait("connected")
        client.subscribe(self.topics.s2c, qos=1)
        self._wait("subscribed")
        client.publish(self.topics.status, b"offline", qos=1, retain=True)  # drop a stale hub-side connection
        self._wait("published")
        self.core.feed(self.core.session.handle(LinkOpened(), now=time.monotonic()), self._send)
        self._until(lambda: self.core.ready)

    def _send(self, data: str | bytes) -> None:
        self.client.publish(self.topics.c2s, data.encode() if isinstance(data, str) else data, qos=1)

    def _next(self) -> tuple[str, Any]:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FloorError("mqtt floor: out of time")
        try:
            return self.inbox.get(timeout=left)
        except queue.Empty:
            raise FloorError("mqtt floor: out of time") from None

    def _wait(self, kind: str) -> None:
        while True:
            got, value = self._next()
            if got == kind:
                if kind == "connected" and getattr(value, "is_failure", False):
                    raise FloorError(f"mqtt floor: connect refused ({value})")
                return
            if got == "message":
                self._frame(value)

    def _frame(self, payload: bytes) -> None:
        data: str | bytes = payload
        try:
            text = payload.decode()
            if text.startswith("{"):
                data = text
        except UnicodeDecodeError:
            pass
        self.core.feed(self.core.session.handle(FrameReceived(data=data), now=time.monotonic()), self._send)

    def _until(self, cond: Callable[[], bool]) -> None:
        while not cond():
            got, value = self._next()
            if got == "message":
                self._frame(value)

    def ask(self, text: str) -> str:
        rid, outs = self.core.ask(text)
        self.core.feed(outs, self._send)
        self._until(lambda: rid in self.core.done)
        return self.core.replies.get(rid, "")

    def close(self) -> None:
        try:
            info = self.client.publish(self.topics.status, b"offline", qos=1, retain=True)
            info.wait_for_publish(timeout=2.0)
            self.client.disconnect()
        finally:
            self.client.loop_stop()


_FLOORS: dict[str, type[_WsFloor] | type[_HttpFloor] | type[_MqttFloor]] = {
    "wss": _WsFloor,
    "https": _HttpFloor,
    "mqtt": _MqttFloor,
}


def measure(
    identity_path: Path, protocol: str, port: int, n: int, *, useragent: str, budget: float = 120.0
) -> dict[str, Any]:
    """Connect the floor client, do one warm-up ask, then time ``n`` sequential asks.

    Returns:
        ``{"connect_s", "latencies_s", "errors", "polls"}``; ``polls`` only for HTTP.

    Raises:
        FloorError: the exchange could not be completed within ``budget`` seconds.
    """
    ident = ThalovantIdentity.from_file(identity_path)
    deadline = time.monotonic() + budget
    start = time.perf_counter()
    client = _FLOORS[protocol](ident, port, useragent, deadline)
    connect_s = time.perf_counter() - start
    latencies: list[float] = []
    errors: list[str] = []
    try:
        client.ask("warm up")
        for i in range(n):
            t = time.perf_counter()
            text = client.ask(f"hello {i}")
            latencies.append(time.perf_counter() - t)
            if text != f"echo: hello {i}":
                errors.append(f"ask {i}: unexpected reply {text!r}")
    finally:
        client.close()
    result: dict[str, Any] = {"connect_s": round(connect_s, 4), "latencies_s": latencies, "errors": errors[:5]}
    if isinstance(client, _HttpFloor):
        result["polls"] = client.polls
    return result


if __name__ == "__main__":  # manual check: python -m benchmarks.floor IDENTITY PROTOCOL PORT [N]
    import sys

    out = measure(
        Path(sys.argv[1]),
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]) if len(sys.argv) > 4 else 10,
        useragent="ThalovantPythonSDK/0.4.7",
    )
    print(json.dumps({k: v for k, v in out.items() if k != "latencies_s"}), sorted(out["latencies_s"]))
