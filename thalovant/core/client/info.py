"""``ThalovantConnectionInfo``: what a client's connection negotiated and how long it took, as a plain value.

Pure: :func:`connection_info` reads the :class:`~thalovant.core.client.connection.Connection` machine (the
current link's session and handshake) and carries the times the shell hands it; it reads no clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from thalovant.core.client.connection import Connection

__all__ = ["PhaseTimes", "ThalovantConnectionInfo", "connection_info"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseTimes:
    """How long each phase of opening the current link took, in milliseconds, as the shell measured it.

    None: the phase does not apply (no TLS on ``ws``/``http``/plain MQTT, no resolution of an IP literal
    or behind a proxy) or was not measured (an in-memory network). See ``docs/guides/connection.md``.
    """

    dns_ms: float | None = None
    tcp_ms: float | None = None
    tls_ms: float | None = None
    admission_ms: float | None = None
    handshake_ms: float | None = None


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
        dns_ms: resolving the hub's (or the proxy's) host name; None for an IP literal, behind an HTTP proxy
            (the proxy resolves the hub) and when not measured.
        tcp_ms: the TCP connect (through a proxy: reaching it and its answer to ``CONNECT``).
        tls_ms: the TLS handshake; None without TLS.
        admission_ms: from the open byte stream to the hub's admission: the WebSocket upgrade's 101,
            the MQTT broker's CONNACK, the first HTTP answer.
        handshake_ms: from the admission to the ready session (the hub's greeting and the HiveMind handshake).

    The five phase times are those of the link that last became ready (after a reconnect, the new link's);
    for the first link their sum is at most ``connect_ms``.
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
    dns_ms: float | None = None
    tcp_ms: float | None = None
    tls_ms: float | None = None
    admission_ms: float | None = None
    handshake_ms: float | None = None

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
    phases: PhaseTimes | None = None,
) -> ThalovantConnectionInfo:
    """The info of ``machine`` (a ``Connection``; any other machine reports its transport and times only)."""
    p = phases or PhaseTimes()
    times: dict[str, Any] = {
        "started_at": started_at,
        "connected_at": connected_at,
        "connect_ms": connect_ms,
        "dns_ms": p.dns_ms,
        "tcp_ms": p.tcp_ms,
        "tls_ms": p.tls_ms,
        "admission_ms": p.admission_ms,
        "handshake_ms": p.handshake_ms,
    }
    if not isinstance(machine, Connection):
        return ThalovantConnectionInfo(transport=transport, phase="unknown", **times)
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
        reconnects=max(0, machine.epoch - 1),
        **times,
    )
