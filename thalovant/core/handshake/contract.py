"""The contract between the session machine and the two handshake generations.

A *handshake* machine (``handshake_v1.Handshake`` for hub 4.x,
``handshake_v3.NoiseHandshake`` for hub 5.x) consumes the hub's cleartext
greeting frames and produces a :class:`SecureChannel`. The session machine
(``session.Session``) owns exactly one handshake, routes greeting frames to
it, and after :class:`HandshakeDone` sends the encrypted client HELLO and
every later message through the channel.

Both handshake machines follow the machine contract (``handle``,
``deadline``, ``state``) with these inputs and outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from returns.result import Result

from thalovant.core.machine import Input, Output
from thalovant.core.wire.frame import Frame, FrameProblem
from thalovant.core.wire.message import HiveMessage


class SecureChannel(Protocol):
    """Seals outgoing and opens incoming HiveMessages once keys exist.

    Implementations are pure and deterministic given their entropy source.
    """

    @property
    def generation(self) -> int:
        """1 for the legacy protocol (hub 4.x), 3 for Noise (hub 5.x)."""
        ...

    def seal(self, message: HiveMessage, *, binary: bool = False) -> list[Frame]:
        """Encrypt one message into the frame(s) to send (v3 may chunk)."""
        ...

    def open(self, frame: Frame) -> Result[HiveMessage | None, FrameProblem]:
        """Decrypt one inbound frame. ``Success(None)``: a partial chunk, wait for more."""
        ...


# ---- handshake machine inputs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GreetingReceived(Input):
    """A cleartext ``hello`` or ``shake`` frame from the hub, already parsed."""

    message: HiveMessage


# ---- handshake machine outputs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SendHandshake(Output):
    """Send this cleartext handshake frame to the hub."""

    message: HiveMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeDone(Output):
    """Keys agreed; the session now sends HELLO through ``channel``."""

    channel: SecureChannel
    hub_peer: str | None = None  # the peer id the hub assigned us, if it said
    node_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeFailed(Output):
    """The handshake cannot complete.

    ``auth`` is True when the credentials were refused (wrong password or
    key): reconnecting will not help. ``retryable`` is False for other hard
    stops (the hub's pinned key changed, ``code="hub-key-changed"``).
    """

    code: str
    detail: str
    auth: bool = False
    retryable: bool = True
