"""A minimal blocking MQTT 3.1.1 client written on a raw socket, for probing the broker. Loopback only.

Implements just CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH (QoS 0 out; QoS 0/1 in, with PUBACK)
and DISCONNECT, which is enough to check credentials, ACLs and the hub's first MQTT greeting.
"""

from __future__ import annotations

import socket
import struct
import time


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class RawMqtt:
    """One MQTT session; ``connack_code`` is 0 when the broker accepted the credentials."""

    def __init__(self, port: int, *, client_id: str, username: str | None = None, password: str | None = None,
                 timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buf = b""
        self._next_id = 1
        flags = 0x02  # clean session
        payload = _utf8(client_id)
        if username is not None:
            flags |= 0x80
            payload += _utf8(username)
        if password is not None:
            flags |= 0x40
            payload += _utf8(password)
        variable = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 30)
        self._send(0x10, variable + payload)
        ptype, body = self._read_packet(time.monotonic() + timeout)
        if ptype != 0x20 or len(body) != 2:
            raise ConnectionError(f"expected CONNACK, got packet type {ptype:#x}")
        self.connack_code = body[1]

    def __enter__(self) -> RawMqtt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, topic: str, qos: int = 1) -> int:
        """Subscribe and return the granted QoS (0x80 = refused)."""
        packet_id = self._packet_id()
        self._send(0x82, struct.pack("!H", packet_id) + _utf8(topic) + bytes([qos]))
        deadline = time.monotonic() + self.timeout
        while True:
            ptype, body = self._read_packet(deadline)
            if ptype == 0x90 and struct.unpack("!H", body[:2])[0] == packet_id:
                return body[2]

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """QoS 0 publish (fire and forget)."""
        self._send(0x30 | (0x01 if retain else 0), _utf8(topic) + payload)

    def receive(self, timeout: float | None = None) -> tuple[str, bytes]:
        """Next PUBLISH from the broker as ``(topic, payload)``; acknowledges QoS 1."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            ptype, body = self._read_packet(deadline)
            if ptype & 0xF0 != 0x30:
                continue
            qos = (ptype >> 1) & 0x03
            (length,) = struct.unpack("!H", body[:2])
            topic = body[2:2 + length].decode()
            rest = body[2 + length:]
            if qos:
                self._send(0x40, rest[:2])
                rest = rest[2:]
            return topic, rest

    def close(self) -> None:
        try:
            self._send(0xE0, b"")
        except OSError:
            pass
        finally:
            self._sock.close()

    def alive(self, wait: float = 0.5) -> bool:
        """False when the broker has closed the connection within ``wait`` seconds."""
        self._sock.settimeout(wait)
        try:
            data = self._sock.recv(65536, socket.MSG_PEEK)
        except TimeoutError:
            return True
        except OSError:
            return False
        return bool(data)

    def _packet_id(self) -> int:
        packet_id, self._next_id = self._next_id, self._next_id % 65535 + 1
        return packet_id

    def _send(self, header: int, body: bytes) -> None:
        self._sock.sendall(bytes([header]) + _remaining_length(len(body)) + body)

    def _read_packet(self, deadline: float) -> tuple[int, bytes]:
        while True:
            parsed = self._parse()
            if parsed is not None:
                return parsed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no MQTT packet in time")
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self._buf += chunk

    def _parse(self) -> tuple[int, bytes] | None:
        if len(self._buf) < 2:
            return None
        length, multiplier, index = 0, 1, 1
        while True:
            if index >= len(self._buf):
                return None
            byte = self._buf[index]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            index += 1
            if not byte & 0x80:
                break
        if len(self._buf) < index + length:
            return None
        header, body = self._buf[0], self._buf[index:index + length]
        self._buf = self._buf[index + length:]
        return header, body
