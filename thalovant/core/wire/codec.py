"""JSON form of the HiveMessage envelope (spec §1.1) and the few builders a client needs.

Theory of operation
-------------------
``encode_json`` writes the eight keys a hub accepts, in the order the
reference implementation writes them, with ``json.dumps(ensure_ascii=False)``
default separators, so the output reproduces the spec's vectors byte for
byte. ``decode_json`` is total: any text or bytes either becomes a
``HiveMessage`` or a ``FrameProblem`` value; nothing raises (a value nested
deeper than :data:`~thalovant.core.jsontree.MAX_JSON_DEPTH` is a problem too). It is tolerant
about formatting and about the optional keys (``target_peers``, missing
``metadata``), and strict about types (a payload is always an object in
JSON; BINARY never travels as JSON).

The builders fill in what hub 4.x insists on: a non-``default`` session id
in every BUS context and in HELLO (spec §1.3, §4.7).
"""

from __future__ import annotations

import json
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core import jsontree
from thalovant.core.errors import LocalProtocolError
from thalovant.core.wire.frame import FrameProblem
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

__all__ = [
    "bus_message",
    "decode_json",
    "encode_json",
    "hello_message",
    "is_default_session",
    "parse_json_object",
]

_BY_VALUE: dict[str, MsgType] = {t.value: t for t in MsgType}
_OPTIONAL_STR_KEYS = ("node", "target_site_id", "target_pubkey", "source_peer")


def _reject_constant(name: str) -> Any:
    # NaN / Infinity are not JSON; refusing them keeps decode(encode(m)) == m.
    raise ValueError(f"non-standard JSON constant {name}")


# One encoder and one decoder for the module: json.dumps/json.loads build a new one on every
# call that passes options, which cost about a tenth of a small message's round trip.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def parse_json_object(raw: str | bytes) -> Result[dict[str, Any], FrameProblem]:
    """Parse one JSON object from text or UTF-8 bytes; anything else is a ``bad-json`` problem.

    A value nested deeper than :data:`~thalovant.core.jsontree.MAX_JSON_DEPTH` is a ``too-deep`` problem.
    """
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return Failure(FrameProblem("bad-json", "frame is not UTF-8"))
    else:
        text = raw
    try:
        value = jsontree.loads(text, decoder=_DECODER)
    except jsontree.JsonTooDeep as exc:
        return Failure(FrameProblem("too-deep", str(exc)))
    except ValueError as exc:
        return Failure(FrameProblem("bad-json", f"not JSON: {type(exc).__name__}"))
    if not isinstance(value, dict):
        return Failure(FrameProblem("bad-json", f"top level is {type(value).__name__}, not an object"))
    return Success(value)


def encode_json(message: HiveMessage) -> str:
    """Serialize a message as the JSON text a hub accepts (exactly the 8 keys of spec §1.1).

    Args:
        message: any message whose payload is a JSON object (not BINARY).

    Returns:
        The JSON text, e.g. ``{"msg_type": "bus", "payload": {...}, "metadata": {}, "route": [], ...}``.

    Raises:
        LocalProtocolError: the payload is bytes (BINARY travels only as a bitstring, spec §1.4)
            or a value is not JSON-serializable.
    """
    if isinstance(message.payload, bytes | bytearray):
        raise LocalProtocolError(f"{message.msg_type.value} with a bytes payload cannot be sent as JSON")
    envelope = {
        "msg_type": message.msg_type.value,
        "payload": message.payload,
        "metadata": message.metadata,
        "route": list(message.route),
        "node": message.node,
        "target_site_id": message.target_site_id,
        "target_pubkey": message.target_pubkey,
        "source_peer": message.source_peer,
    }
    try:
        return _ENCODER.encode(envelope)
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(f"message is not JSON-serializable: {exc}") from None


def message_from_dict(obj: dict[str, Any]) -> Result[HiveMessage, FrameProblem]:
    """Validate an already-parsed envelope object and build the ``HiveMessage``."""
    raw_type = obj.get("msg_type")
    if not isinstance(raw_type, str):
        return Failure(FrameProblem("bad-envelope", "msg_type missing or not a string"))
    msg_type = _BY_VALUE.get(raw_type)
    if msg_type is None:
        return Failure(FrameProblem("unknown-type", f"unknown msg_type {raw_type[:40]!r}"))
    if msg_type is MsgType.BINARY:
        return Failure(FrameProblem("bad-envelope", "BINARY never travels as JSON"))
    payload = obj.get("payload", {})
    if not isinstance(payload, dict):
        return Failure(FrameProblem("bad-envelope", f"payload is {type(payload).__name__}, not an object"))
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        return Failure(FrameProblem("bad-envelope", "metadata is not an object"))
    route = obj.get("route") or []
    if not isinstance(route, list) or not all(isinstance(hop, dict) for hop in route):
        return Failure(FrameProblem("bad-envelope", "route is not a list of objects"))
    optional: dict[str, str | None] = {}
    for key in _OPTIONAL_STR_KEYS:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            return Failure(FrameProblem("bad-envelope", f"{key} is not a string"))
        optional[key] = value
    bin_type = obj.get("bin_type", 0)
    if not isinstance(bin_type, int) or isinstance(bin_type, bool) or not 0 <= bin_type <= 15:
        bin_type = 0
    return Success(
        HiveMessage(
            msg_type=msg_type,
            payload=payload,
            metadata=metadata,
            route=tuple(route),
            node=optional["node"],
            target_site_id=optional["target_site_id"],
            target_pubkey=optional["target_pubkey"],
            source_peer=optional["source_peer"],
            bin_type=bin_type,
        )
    )


def decode_json(raw: str | bytes) -> Result[HiveMessage, FrameProblem]:
    """Parse one JSON HiveMessage. Total: garbage gives ``Failure(FrameProblem)``, never an exception.

    Args:
        raw: the frame as text, or UTF-8 bytes.

    Returns:
        ``Success(HiveMessage)`` or ``Failure(FrameProblem)`` with code ``bad-json``,
        ``bad-envelope`` or ``unknown-type``.
    """
    return parse_json_object(raw).bind(message_from_dict)


# ---- builders -----------------------------------------------------------------------------------


def is_default_session(session_id: object) -> bool:
    """True when ``session_id`` is missing, empty or the forbidden ``"default"`` (spec §1.3)."""
    return not isinstance(session_id, str) or not session_id or session_id == "default"


def hello_message(*, session_id: str, site_id: str | None = None, pubkey: str | None = None) -> HiveMessage:
    """The client HELLO of spec §4.7.

    Args:
        session_id: the connection's session id; must not be empty or ``"default"``.
        site_id: the client's site; also copied into the session.
        pubkey: the client's RSA public key for INTERCOM. Omitted when None (recommended).

    Raises:
        LocalProtocolError: ``session_id`` is empty or ``"default"``.
    """
    if is_default_session(session_id):
        raise LocalProtocolError("HELLO needs a session id other than 'default'")
    session: dict[str, Any] = {"session_id": session_id}
    payload: dict[str, Any] = {}
    if pubkey is not None:
        payload["pubkey"] = pubkey
    if site_id is not None:
        session["site_id"] = site_id
    payload["session"] = session
    if site_id is not None:
        payload["site_id"] = site_id
    return HiveMessage(msg_type=MsgType.HELLO, payload=payload)


def bus_message(
    message: BusMessage,
    *,
    session_id: str,
    site_id: str | None = None,
    useragent: str | None = None,
) -> HiveMessage:
    """Wrap an OVOS bus message in a BUS envelope, filling the context hub 4.x needs (spec §1.3).

    Keeps every context key the caller set. Adds ``source``/``platform`` (user agent) and
    ``destination`` ("HiveMind") when absent, and makes sure ``context.session`` carries a
    non-default ``session_id`` (the connection's, unless the caller chose another) and a
    ``site_id``.
    """
    if is_default_session(session_id):
        raise LocalProtocolError("BUS messages need a session id other than 'default'")
    context = dict(message.context)
    if useragent is not None:
        context.setdefault("source", useragent)
        context.setdefault("platform", useragent)
    context.setdefault("destination", "HiveMind")
    raw_session = context.get("session")
    session = dict(raw_session) if isinstance(raw_session, dict) else {}
    if is_default_session(session.get("session_id")):
        session["session_id"] = session_id
    if site_id is not None:
        session.setdefault("site_id", site_id)
    context["session"] = session
    payload = {"type": message.type, "data": dict(message.data), "context": context}
    return HiveMessage(msg_type=MsgType.BUS, payload=payload)
