"""``ThalovantHealth``: a snapshot of a client's connection, as a plain value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ThalovantHealth:
    """What ``client.healthcheck()`` reports.

    Attributes:
        connected: a link to the hub is open.
        handshake_complete: the encryption handshake finished on that link.
        transport_alive: the transport task is running (HTTP polling, WS/MQTT reader).
        last_error: the last connection problem, if any (never a secret).
        protocol: ``"wss"``, ``"https"`` or ``"mqtt"``.
        generation: 1 (legacy, hub 4.x) or 3 (Noise, hub 5.x) once known.
        reconnects: how many times the link was re-opened since connect.
    """

    connected: bool
    handshake_complete: bool
    transport_alive: bool
    last_error: str | None = None
    protocol: str | None = None
    generation: int | None = None
    reconnects: int = 0

    @property
    def ok(self) -> bool:
        """All three flags true and no pending error."""
        return self.connected and self.handshake_complete and self.transport_alive and not self.last_error

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "connected": self.connected,
            "handshake_complete": self.handshake_complete,
            "transport_alive": self.transport_alive,
            "last_error": self.last_error,
            "protocol": self.protocol,
            "generation": self.generation,
            "reconnects": self.reconnects,
        }
