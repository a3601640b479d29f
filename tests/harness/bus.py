"""A small blocking OVOS-messagebus client for the test process (raw socket + wsproto, loopback only).

The OVOS bus is a plain WebSocket at ``ws://127.0.0.1:<port>/core`` carrying JSON text frames
``{"type", "data", "context"}`` that the bus server relays to every connected client.  The harness
uses it to inject messages (push requests, test utterances) and to observe the hub's bus traffic.
"""

from __future__ import annotations

import json
import socket
import time
from collections import deque
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, RejectConnection, Request, TextMessage


class BusError(RuntimeError):
    """The bus connection failed or a wait ran out of time."""


class BusClient:
    """One WebSocket connection to the OVOS bus; every call is bounded by a timeout."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the harness bus client only talks to loopback")
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._inbox: deque[dict[str, Any]] = deque()
        self._partial = ""
        self._open = False
        self._sock.sendall(self._ws.send(Request(host=f"{host}:{port}", target="/core")))
        deadline = time.monotonic() + timeout
        while not self._open:
            self._pump(deadline)

    def __enter__(self) -> BusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def emit(self, msg_type: str, data: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> None:
        """Send one bus message."""
        frame = json.dumps({"type": msg_type, "data": data or {}, "context": context or {}})
        self._sock.sendall(self._ws.send(TextMessage(data=frame)))

    def wait_for(self, msg_type: str, timeout: float, **data_match: Any) -> dict[str, Any]:
        """Return the first message of ``msg_type`` whose ``data`` contains ``data_match``."""
        deadline = time.monotonic() + timeout
        while True:
            while self._inbox:
                msg = self._inbox.popleft()
                data = msg.get("data") or {}
                if msg.get("type") == msg_type and all(data.get(k) == v for k, v in data_match.items()):
                    return msg
            self._pump(deadline)

    def wait_for_any(self, timeout: float) -> dict[str, Any]:
        """Return the next message of any type."""
        deadline = time.monotonic() + timeout
        while not self._inbox:
            self._pump(deadline)
        return self._inbox.popleft()

    def close(self) -> None:
        """Close politely, then drop the socket."""
        try:
            if self._open:
                self._sock.sendall(self._ws.send(CloseConnection(code=1000)))
        except OSError:
            pass
        finally:
            self._open = False
            self._sock.close()

    def _pump(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BusError("timed out waiting on the OVOS bus")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError as exc:
            raise BusError("timed out waiting on the OVOS bus") from exc
        if not chunk:
            raise BusError("the OVOS bus closed the connection")
        self._ws.receive_data(chunk)
        for event in self._ws.events():
            if isinstance(event, AcceptConnection):
                self._open = True
            elif isinstance(event, RejectConnection):
                raise BusError("the OVOS bus refused the WebSocket upgrade")
            elif isinstance(event, Ping):
                self._sock.sendall(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._open = False
                raise BusError(f"the OVOS bus closed the WebSocket ({event.code})")
            elif isinstance(event, Message):
                self._collect(event)

    def _collect(self, event: Message[Any]) -> None:
        if not isinstance(event.data, str):
            return
        self._partial += event.data
        if not event.message_finished:
            return
        text, self._partial = self._partial, ""
        try:
            parsed = json.loads(text)
        except ValueError:
            return
        if isinstance(parsed, dict):
            self._inbox.append(parsed)
