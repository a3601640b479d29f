"""Hive (mesh) frames: BROADCAST, PROPAGATE and ESCALATE wrappers, what the hub delivers of them, and replies.

Theory of operation
-------------------
A wrapper frame (spec §9.6) carries a complete nested HiveMessage as its payload, usually a BUS
message; ``target_site_id`` on the **outer** frame names the site (hub) that injects the inner
BUS message into its own bus. :func:`wrap` builds one from a bus message (the inner BUS envelope
gets the session context a hub needs, :func:`~thalovant.core.wire.codec.bus_message`).

Hub 5.x keeps the envelope when it relays (a peer receives the PROPAGATE or BROADCAST itself);
hub 4.x unwraps it and delivers the inner BUS message, which then arrives as an ordinary bus
event. :func:`hive_of` reads any non-bus frame a hub delivers into a :class:`ThalovantHiveMessage`:
the kind, the inner bus message (if any), the route, the peers and the metadata, with the access
key scrubbed from every string. Bad frames never raise: they are a :class:`HiveProblem` value.
Nesting is bounded (:data:`MAX_HIVE_DEPTH` wrappers); a frame whose route already names this
client's peer is a loop and is refused with a problem (the shell drops it with a note), except a QUERY or
CASCADE answer (``is_response``), which comes back along its request's route by design.

:func:`reply_context` is OVOS ``Message.reply``'s context rule: a copy with ``source`` and
``destination`` swapped, so the answer travels back along the way the message came.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core.bus.events import ThalovantEvent, normalize
from thalovant.core.errors import ThalovantRuntimeError
from thalovant.core.jsontree import copy_tree
from thalovant.core.wire.codec import bus_message, message_from_dict
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

__all__ = [
    "HIVE_BROADCAST", "HIVE_CASCADE", "HIVE_ESCALATE", "HIVE_INTERCOM", "HIVE_KINDS", "HIVE_PING", "HIVE_PROPAGATE",
    "HIVE_QUERY", "HIVE_RENDEZVOUS", "MAX_HIVE_DEPTH", "WRAPPER_KINDS", "HiveHop", "HiveProblem",
    "ThalovantHiveMessage", "ThalovantHiveRefusedError", "as_envelope", "hive_kind", "hive_of", "refusal_of",
    "reply_context", "wrap",
]  # fmt: skip

HIVE_BROADCAST = "broadcast"
HIVE_PROPAGATE = "propagate"
HIVE_ESCALATE = "escalate"
HIVE_INTERCOM = "intercom"
HIVE_RENDEZVOUS = "rendezvous"
HIVE_QUERY = "query"
HIVE_CASCADE = "cascade"
HIVE_PING = "ping"

#: The kinds a client can send as wrappers (spec §9.6).
WRAPPER_KINDS: tuple[str, ...] = (HIVE_BROADCAST, HIVE_PROPAGATE, HIVE_ESCALATE)
#: The kinds ``on_hive`` accepts (plus ``"*"`` for all of them).
HIVE_KINDS: tuple[str, ...] = (*WRAPPER_KINDS, HIVE_INTERCOM, HIVE_RENDEZVOUS, HIVE_QUERY, HIVE_CASCADE, HIVE_PING)
#: How many wrappers may nest in one delivered frame (a relay adds none: hubs re-wrap, they do not nest).
MAX_HIVE_DEPTH = 4

_MSG_TYPES = {kind: MsgType(kind) for kind in HIVE_KINDS}
_SHOWN_AS = "<access-key>"


def hive_kind(kind: object) -> str | None:
    """The canonical kind for ``kind`` (case and spaces ignored), or None when it names no hive kind.

    >>> hive_kind(" Propagate "), hive_kind("*"), hive_kind("bus")
    ('propagate', '*', None)
    """
    if not isinstance(kind, str):
        return None
    name = kind.strip().lower()
    return name if name in _MSG_TYPES or name == "*" else None


class ThalovantHiveRefusedError(ThalovantRuntimeError):
    """The hub refused a mesh frame: it closed the connection right after it.

    Hub 5.x closes with 4003 (``"BROADCAST is not allowed for this client"``: not an admin, or the
    client's ``can_broadcast`` / ``can_propagate`` / ``can_escalate`` grant is off); over HTTP it drops the
    client instead (``code`` is None). Only that frame was refused: the client reconnects by itself (the
    reconnect policy), its subscriptions keep working, and the refused frame is not sent again.

    Attributes:
        kind: the frame's kind (``broadcast``, ``propagate``, ``escalate``, ``query``).
        code: the close code, if the hub sent one.
        reason: the hub's close reason, if any.
    """

    def __init__(self, message: str, *, kind: str, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.reason = reason


def refusal_of(detail: str) -> tuple[int | None, str | None]:
    """The close code and the hub's reason in a connection status ``detail`` (None when it names none).

    >>> refusal_of("reconnecting: the hub refused one request of this type: close 4003 (hub closed the "
    ...            "connection: request not allowed (close 4003 'BROADCAST is not allowed'))")
    (4003, 'BROADCAST is not allowed')
    >>> refusal_of("link closed: close 1006 (hub closed the connection (close 1006))")
    (1006, None)
    """
    code: int | None = None
    marker = detail.find("close ")
    while marker >= 0 and code is None:
        digits = detail[marker + 6 : marker + 10]
        code = int(digits) if len(digits) == 4 and digits.isdigit() else None
        marker = detail.find("close ", marker + 6)
    start = detail.rfind(" '")
    end = detail.rfind("'")
    reason = detail[start + 2 : end] if 0 <= start < end else None
    return code, reason or None


@dataclass(frozen=True, slots=True)
class HiveProblem:
    """Why a delivered frame is no usable hive message (a value, never raised)."""

    reason: str


@dataclass(frozen=True, slots=True)
class HiveHop:
    """One route entry: the peer a frame came from and the peers it was sent to."""

    source: str
    targets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ThalovantHiveMessage:
    """One hive (mesh) frame as users see it.

    Attributes:
        kind: ``broadcast``, ``propagate``, ``escalate``, ``intercom``, ``rendezvous``, ``query``, ``cascade``
            or ``ping``.
        message: the inner bus message as an event (``type``, ``data``, ``context``), when the frame carries one.
        inner_kind: the inner frame's ``msg_type`` (``bus``, ``intercom`` ...) for a wrapper; None otherwise.
        payload: the inner frame's payload (a wrapper's), or the frame's own (other kinds).
        route: the hops the frame took, oldest first.
        source_peer: the peer the hub says sent it (hubs overwrite it with their own id when relaying).
        target_site_id: the site the frame is addressed to, if any.
        metadata: the frame's metadata (``query_id`` ...).
        depth: how many wrappers were opened to reach the inner message (0: none).
    """

    kind: str
    message: ThalovantEvent | None = None
    inner_kind: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False)
    route: tuple[HiveHop, ...] = ()
    source_peer: str | None = None
    target_site_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)
    depth: int = 0

    @property
    def type(self) -> str | None:
        """The inner bus message's type, if there is one."""
        return self.message.type if self.message is not None else None

    @property
    def data(self) -> Mapping[str, Any]:
        """The inner bus message's data (``{}`` without one)."""
        return self.message.data if self.message is not None else {}

    @property
    def context(self) -> Mapping[str, Any]:
        """The inner bus message's context (``{}`` without one)."""
        return self.message.context if self.message is not None else {}

    def passed(self, peer: str | None) -> bool:
        """Whether the route (or the sender) already names ``peer``: a frame coming back is a loop."""
        if not peer:
            return False
        return self.source_peer == peer or any(hop.source == peer or peer in hop.targets for hop in self.route)


def _scrubbed(value: Any, secret: str) -> Any:
    def leaf(item: Any) -> Any:
        return item.replace(secret, _SHOWN_AS) if isinstance(item, str) and secret and secret in item else item

    return copy_tree(value, leaf)


def _route(raw: object) -> tuple[HiveHop, ...] | None:
    if not isinstance(raw, list | tuple):
        return None
    hops: list[HiveHop] = []
    for hop in raw:
        if not isinstance(hop, dict) or not isinstance(hop.get("source"), str):
            return None
        targets = hop.get("targets") or []
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            return None
        hops.append(HiveHop(hop["source"], tuple(targets)))
    return tuple(hops)


def _inner(payload: dict[str, Any]) -> tuple[HiveMessage | None, int, str | None]:
    """Open nested wrappers: the innermost message, how many were opened, or why not."""
    current: dict[str, Any] = payload
    for level in range(1, MAX_HIVE_DEPTH + 1):
        built = message_from_dict(current)
        if not isinstance(built, Success):
            return None, level, f"the wrapped frame is not a HiveMessage ({built.failure().code})"
        inner = built.unwrap()
        if inner.msg_type.value not in WRAPPER_KINDS or not isinstance(inner.payload, dict):
            return inner, level, None
        current = inner.payload
    return None, MAX_HIVE_DEPTH, f"wrappers nested deeper than {MAX_HIVE_DEPTH}"


def hive_of(
    message: HiveMessage, *, access_key: str = "", own_peer: str | None = None
) -> Result[ThalovantHiveMessage, HiveProblem]:
    """The :class:`ThalovantHiveMessage` a delivered non-bus frame is, or why it is none.

    ``access_key`` is scrubbed from every string; ``own_peer`` (this client's peer id, when known)
    makes a frame whose route already names it a loop (a problem).

    >>> inner = {"msg_type": "bus", "payload": {"type": "hi", "data": {}, "context": {}}}
    >>> frame = HiveMessage(msg_type=MsgType.PROPAGATE, payload=inner, route=({"source": "a", "targets": []},))
    >>> hive = hive_of(frame).unwrap()
    >>> hive.kind, hive.type, hive.route
    ('propagate', 'hi', (HiveHop(source='a', targets=()),))
    """
    kind = message.msg_type.value
    if kind not in _MSG_TYPES:
        return Failure(HiveProblem(f"a {kind} frame is not a hive frame"))
    if not isinstance(message.payload, dict):
        return Failure(HiveProblem(f"a {kind} frame without an object payload"))
    route = _route(_scrubbed(list(message.route), access_key))
    if route is None:
        return Failure(HiveProblem(f"a {kind} frame with a malformed route"))
    payload: dict[str, Any] = _scrubbed(message.payload, access_key)
    found = ThalovantHiveMessage(
        kind=kind,
        payload=payload,
        route=route,
        source_peer=_scrubbed(message.source_peer, access_key),
        target_site_id=message.target_site_id,
        metadata=_scrubbed(message.metadata, access_key),
    )
    if kind in (*WRAPPER_KINDS, HIVE_QUERY, HIVE_CASCADE) and "msg_type" in payload:
        inner, depth, why = _inner(payload)
        if inner is None:
            return Failure(HiveProblem(f"a {kind} frame: {why}"))
        bus = inner.bus()
        event = normalize(bus).value_or(None) if bus is not None else None
        inner_payload = inner.payload if isinstance(inner.payload, dict) else {}
        found = _with(found, event, inner.msg_type.value, inner_payload, depth)
    elif kind in WRAPPER_KINDS:
        return Failure(HiveProblem(f"a {kind} frame whose payload is no HiveMessage"))
    # an answer (QUERY/CASCADE ``is_response``) comes back along the request's route by design: no loop
    if found.passed(own_peer) and found.metadata.get("is_response") is not True:
        return Failure(HiveProblem(f"a {kind} frame that already passed this client (a loop): dropped"))
    return Success(found)


def _with(
    found: ThalovantHiveMessage, event: ThalovantEvent | None, inner_kind: str, payload: dict[str, Any], depth: int
) -> ThalovantHiveMessage:
    return ThalovantHiveMessage(
        kind=found.kind,
        message=event,
        inner_kind=inner_kind,
        payload=payload,
        route=found.route,
        source_peer=found.source_peer,
        target_site_id=found.target_site_id,
        metadata=found.metadata,
        depth=depth,
    )


def as_envelope(message: HiveMessage) -> dict[str, Any]:
    """``message`` as the complete 8-key object a wrapper's payload must be (spec §1.1, §9.6)."""
    return {
        "msg_type": message.msg_type.value,
        "payload": message.payload,
        "metadata": dict(message.metadata),
        "route": list(message.route),
        "node": message.node,
        "target_site_id": message.target_site_id,
        "target_pubkey": message.target_pubkey,
        "source_peer": message.source_peer,
    }


def wrap(
    kind: str,
    inner: BusMessage,
    *,
    session_id: str,
    site_id: str | None = None,
    useragent: str | None = None,
    target_site_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> HiveMessage:
    """The ``kind`` wrapper (broadcast, propagate or escalate) carrying the bus message ``inner``.

    The inner BUS envelope gets the session context a hub needs (``session_id``, ``site_id``, ``useragent``);
    ``target_site_id`` goes on the outer frame.

    Raises:
        LocalProtocolError: ``session_id`` is empty or ``"default"``.
        ValueError: ``kind`` is not a wrapper kind.

    >>> frame = wrap("escalate", BusMessage(type="x"), session_id="s1", target_site_id="kitchen")
    >>> frame.msg_type.value, frame.target_site_id, frame.payload["msg_type"], frame.payload["payload"]["type"]
    ('escalate', 'kitchen', 'bus', 'x')
    """
    if kind not in WRAPPER_KINDS:
        raise ValueError(f"kind must be one of {', '.join(WRAPPER_KINDS)}")
    envelope = bus_message(inner, session_id=session_id, site_id=site_id, useragent=useragent)
    return HiveMessage(
        msg_type=_MSG_TYPES[kind],
        payload=as_envelope(envelope),
        metadata=dict(metadata or {}),
        target_site_id=target_site_id,
    )


def reply_context(
    context: Mapping[str, Any], extra: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The context of a reply to a message with ``context``, as OVOS ``Message.reply`` builds it.

    A copy of ``context`` with ``extra`` merged in (and ``data["destination"]``, if the reply's data names
    one); then, when it has both a ``source`` and a ``destination``, the two are swapped (a list stays a
    list), so the reply goes back to where the message came from. With only one of them nothing is swapped.

    >>> reply_context({"source": "peer-a", "destination": ["hive", "x"], "request_id": "r1"})
    {'source': ['hive', 'x'], 'destination': 'peer-a', 'request_id': 'r1'}
    """
    swapped = dict(context)
    swapped.update(extra or {})
    if data is not None and "destination" in data:
        swapped["destination"] = data["destination"]
    if "source" in swapped and "destination" in swapped:
        swapped["source"], swapped["destination"] = swapped["destination"], swapped["source"]
    return swapped
