"""Blocking raw WebSocket client (socket + wsproto) for probing the hub without the SDK. Loopback only.

``RawWebSocket(port, target)`` performs the upgrade; ``upgrade_status`` is 101 on success.
``recv_json()`` returns the next text frame parsed, or raises ``WsClosed`` carrying the close code
(1005 for a close frame without status, 1006 for a TCP close without a close frame).
"""

from __future__ import annotations

import json
import socket
import time
from collections import deque
from typing import Any

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


class WsClosed(Exception):
    """The peer closed the WebSocket; ``code`` follows RFC 6455 (1005: no status, 1006: abnormal)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"websocket closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class RawWebSocket:
    """One client WebSocket; all waits are bounded by ``timeout``."""

    def __init__(self, port: int, target: str, *, timeout: float = 5.0) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._frames: deque[str | bytes] = deque()
        self._text = ""
        self._bytes = b""
        self.timeout = timeout
        self.upgrade_status: int | None = None
        self.closed: WsClosed | None = None
        self._sock.sendall(self._ws.send(Request(host=f"127.0.0.1:{port}", target=target)))
        deadline = time.monotonic() + timeout
        while self.upgrade_status is None:
            self._pump(deadline)

    def __enter__(self) -> RawWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_json(self, obj: dict[str, Any]) -> None:
        self._sock.sendall(self._ws.send(TextMessage(data=json.dumps(obj))))

    def recv(self, timeout: float | None = None) -> str | bytes:
        """Next complete frame (text as str, binary as bytes)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._frames:
            if self.closed is not None:
                raise self.closed
            self._pump(deadline)
        return self._frames.popleft()

    def recv_json(self, timeout: float | None = None) -> dict[str, Any]:
        frame = self.recv(timeout)
        if isinstance(frame, bytes):
            raise AssertionError(f"expected a text frame, got {len(frame)} binary bytes")
        parsed: dict[str, Any] = json.loads(frame)
        return parsed

    def close(self) -> None:
        try:
            if self.closed is None and self.upgrade_status == 101:
                self._sock.sendall(self._ws.send(CloseConnection(code=1000)))
        except Exception:  # closing a socket the hub already dropped
            pass
        finally:
            self._sock.close()

    def _pump(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no WebSocket frame in time")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise
        except OSError:
            chunk = b""
        if not chunk:
            if self.upgrade_status is None:
                self.upgrade_status = 0
            self.closed = self.closed or WsClosed(1006, "connection dropped without a close frame")
            return
        self._ws.receive_data(chunk)
        for event in self._ws.events():
            self._on_event(event)

    def _on_event(self, event: object) -> None:
        if isinstance(event, AcceptConnection):
            self.upgrade_status = 101
        elif isinstance(event, RejectConnection):
            self.upgrade_status = event.status_code
            self.closed = WsClosed(1006, f"upgrade rejected with HTTP {event.status_code}")
        elif isinstance(event, Ping):
            self._sock.sendall(self._ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            self.closed = WsClosed(event.code, event.reason or "")
        elif isinstance(event, TextMessage):
            self._text += event.data
            if event.message_finished:
                self._frames.append(self._text)
                self._text = ""
        elif isinstance(event, BytesMessage):
            self._bytes += bytes(event.data)
            if event.message_finished:
                self._frames.append(self._bytes)
                self._bytes = b""
