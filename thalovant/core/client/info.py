"""``ThalovantConnectionInfo``: what a client's connection negotiated and how long it took, as a plain value.

Pure: :func:`connection_info` reads the :class:`~thalovant.core.client.connection.Connection` machine (the
current link's session and handshake) and carries the times the shell hands it; it reads no clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from thalovant.core.client.connection import Connection

__all__ = ["ThalovantConnectionInfo", "connection_info"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ThalovantConnectionInfo:
    """What ``client.connection_info()`` reports (never a secret).

    Attributes:
        transport: ``"wss"``, ``"https"`` or ``"mqtt"``.
        phase: the connection's state (``"ready"``, ``"connecting"``, ``"reconnecting"``, ``"closed"`` ...).
        generation: 1 (legacy, hub 4.x) or 3 (Noise, hub 5.x) once a session is ready.
        cipher: the negotiated cipher: ``"AES-GCM"`` / ``"CHACHA20-POLY1305"`` (generation 1), the Noise
            suite (generation 3); None before the handshake.
        encoding: the negotiated payload encoding of generation 1 (``"JSON-HEX"``, ``"JSON-B64"`` ...);
            None on generation 3 (Noise frames are binary, nothing is negotiated).
        hub_peer: the peer id the hub gave this client in its HELLO (generation 1), if it said.
        node_id: the hub's node id from its HELLO, if it said.
        started_at: wall-clock time (Unix seconds) ``connect()`` started.
        connected_at: wall-clock time the session last became ready.
        connect_ms: milliseconds from ``connect()`` to the first ready session (None until then).
        reconnects: how many times the link was re-opened since connect.
    """

    transport: str
    phase: str
    generation: int | None = None
    cipher: str | None = None
    encoding: str | None = None
    hub_peer: str | None = None
    node_id: str | None = None
    started_at: float | None = None
    connected_at: float | None = None
    connect_ms: float | None = None
    reconnects: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


def connection_info(
    machine: object,
    *,
    transport: str,
    started_at: float | None,
    connected_at: float | None,
    connect_ms: float | None,
) -> ThalovantConnectionInfo:
    """The info of ``machine`` (a ``Connection``; any other machine reports its transport and times only)."""
    if not isinstance(machine, Connection):
        return ThalovantConnectionInfo(
            transport=transport,
            phase="unknown",
            started_at=started_at,
            connected_at=connected_at,
            connect_ms=connect_ms,
        )
    session = machine._ep.session  # read-only: the current link's session (None between links)
    handshake = session.handshake if session is not None else None
    cipher = encoding = None
    channel = getattr(handshake, "channel", None)  # generation 1: cipher and encoding negotiated
    if channel is not None:
        cipher, encoding = channel.cipher.value, channel.encoding.value
    elif (suite := getattr(handshake, "suite", None)) is not None:  # generation 3: the Noise suite
        cipher = str(suite)
    node_id = getattr(handshake, "node_id", None)
    return ThalovantConnectionInfo(
        transport=transport,
        phase=machine.state.value,
        generation=machine.generation,
        cipher=cipher,
        encoding=encoding,
        hub_peer=session.hub_peer if session is not None else None,
        node_id=node_id if isinstance(node_id, str) else None,
        started_at=started_at,
        connected_at=connected_at,
        connect_ms=connect_ms,
        reconnects=max(0, machine.epoch - 1),
    )
