"""The HiveMessage envelope and the inner OVOS bus message, as plain values.

Spec §1.1: a hub accepts exactly these top-level keys: ``msg_type``,
``payload``, ``metadata``, ``route``, ``node``, ``target_site_id``,
``target_pubkey``, ``source_peer`` (plus ``target_peers`` and ``bin_type``).
Any other key makes hub 4.x abort the connection, so a client always sends
exactly the eight keys, in that order (see ``thalovant.core.wire.codec``).

Spec §1.3: the BUS payload is ``{"type", "data", "context"}``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class MsgType(enum.Enum):
    """``msg_type`` values (spec §1.2) with their 5-bit binarized codes."""

    HANDSHAKE = "shake"
    BUS = "bus"
    SHARED_BUS = "shared_bus"
    BROADCAST = "broadcast"
    PROPAGATE = "propagate"
    ESCALATE = "escalate"
    HELLO = "hello"
    QUERY = "query"
    CASCADE = "cascade"
    PING = "ping"
    RENDEZVOUS = "rendezvous"
    THIRDPRTY = "3rdparty"
    BINARY = "bin"
    INTERCOM = "intercom"

    @property
    def code(self) -> int | None:
        """The 5-bit code used in binarized frames; None for INTERCOM."""
        return _CODES.get(self)


_CODES: dict[MsgType, int] = {
    MsgType.HANDSHAKE: 0,
    MsgType.BUS: 1,
    MsgType.SHARED_BUS: 2,
    MsgType.BROADCAST: 3,
    MsgType.PROPAGATE: 4,
    MsgType.ESCALATE: 5,
    MsgType.HELLO: 6,
    MsgType.QUERY: 7,
    MsgType.CASCADE: 8,
    MsgType.PING: 9,
    MsgType.RENDEZVOUS: 10,
    MsgType.THIRDPRTY: 11,
    MsgType.BINARY: 12,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BusMessage:
    """The inner OVOS bus message carried by BUS frames (spec §1.3)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data, "context": self.context}

    def __repr__(self) -> str:
        # The context may carry auth tokens (build_client_context puts them there):
        # show only the keys, never the values.
        return f"BusMessage(type={self.type!r}, data_keys={sorted(self.data)!r}, context_keys={sorted(self.context)!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class HiveMessage:
    """One HiveMind envelope (spec §1.1).

    ``payload`` is a JSON object for every type except BINARY, whose payload
    is raw bytes (binarized frames only, spec §1.4 / §6).
    """

    msg_type: MsgType
    payload: dict[str, Any] | bytes = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    route: tuple[dict[str, Any], ...] = ()
    node: str | None = None
    target_site_id: str | None = None
    target_pubkey: str | None = None
    source_peer: str | None = None
    bin_type: int = 0

    def __repr__(self) -> str:
        size = len(self.payload) if isinstance(self.payload, bytes | dict) else 0
        return f"HiveMessage(msg_type={self.msg_type.value!r}, payload_size={size})"

    def bus(self) -> BusMessage | None:
        """The inner bus message of a BUS / SHARED_BUS frame, if well formed."""
        if self.msg_type not in (MsgType.BUS, MsgType.SHARED_BUS) or not isinstance(self.payload, dict):
            return None
        p = self.payload
        typ = p.get("type") or p.get("msg_type")
        data = p.get("data", {})
        ctx = p.get("context", {})
        if not isinstance(typ, str) or not isinstance(data, dict) or not isinstance(ctx, dict):
            return None
        return BusMessage(type=typ, data=data, context=ctx)
