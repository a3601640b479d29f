"""``ThalovantHealth``: a snapshot of a client's connection, as a plain value, and how a client makes one."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any

from thalovant.core.client.connection_events import ConnectionState

if TYPE_CHECKING:  # info.py imports the connection machine: the CLI's --help must not load it
    from thalovant.core.client.info import ThalovantConnectionInfo


@dataclass(frozen=True, slots=True)
class ThalovantHealth:
    """What ``client.healthcheck()`` reports.

    ``ThalovantHealth(connected, handshake_complete, transport_alive, last_error=None)`` as in 0.4.7
    (by position or by keyword); the other fields are keyword-only.

    Attributes:
        connected: a link to the hub is open.
        handshake_complete: the encryption handshake finished on that link.
        transport_alive: the transport task is running (HTTP polling, WS/MQTT reader).
        last_error: the last connection problem, if any (never a secret).
        protocol: ``"wss"``, ``"https"`` or ``"mqtt"``.
        generation: 1 (legacy, hub 4.x) or 3 (Noise, hub 5.x) once known.
        reconnects: how many times the link was re-opened since connect.
        connection: what the connection negotiated and its times (``client.connection_info()``), if known.
    """

    connected: bool
    handshake_complete: bool
    transport_alive: bool
    last_error: str | None = None
    _: KW_ONLY
    protocol: str | None = None
    generation: int | None = None
    reconnects: int = 0
    connection: ThalovantConnectionInfo | None = None

    @property
    def ok(self) -> bool:
        """All three flags true and no pending error."""
        return self.connected and self.handshake_complete and self.transport_alive and not self.last_error

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: :attr:`ok` and every field."""
        return {
            "ok": self.ok,
            "connected": self.connected,
            "handshake_complete": self.handshake_complete,
            "transport_alive": self.transport_alive,
            "last_error": self.last_error,
            "protocol": self.protocol,
            "generation": self.generation,
            "reconnects": self.reconnects,
            "connection": self.connection.as_dict() if self.connection is not None else None,
        }


def health_snapshot(
    *,
    state: ConnectionState,
    detail: str,
    running: bool,
    protocol: str,
    generation: int | None,
    epoch: int,
    connection: ThalovantConnectionInfo | None = None,
) -> ThalovantHealth:
    """The health a client reports from the machine's last ``StatusChanged`` (``running``: its runtime exists)."""
    ready = state is ConnectionState.READY
    alive = running and state not in (ConnectionState.GAVE_UP, ConnectionState.CLOSED)
    return ThalovantHealth(
        connected=ready,
        handshake_complete=ready,
        transport_alive=alive,
        last_error=None if ready else (detail or None),
        protocol=protocol,
        generation=generation,
        reconnects=max(0, epoch - 1),
        connection=connection,
    )
