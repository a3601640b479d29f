"""How the in-memory hub answers a QUERY frame as hub 5.x does (spec §9.5), with its echo rules.

The request's inner ``recognizer_loop:utterance`` is answered by the hub's rules (the echo skill by
default); every ``speak`` becomes one QUERY answer frame, then ``hive.query.complete``. A rule that
says nothing (``silent``) gives ``hive.query.timeout`` (``no_answer``), as the hub does once its agent
declines. Answers carry ``metadata {query_id, originator_peer, responder_peer, is_response}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from thalovant.core.bus.hive import as_envelope
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

__all__ = ["query_answers"]

Behaviour = Callable[[BusMessage], list[BusMessage]]


def query_answers(
    request: HiveMessage,
    behaviours: Mapping[str, Behaviour],
    default: Behaviour,
    *,
    responder: str,
    peer: str,
    session: Mapping[str, Any] | None = None,
) -> list[HiveMessage]:
    """The QUERY answer frames for ``request`` (none when it is no query request with an utterance).

    ``peer`` is the asker's peer id as greeted; like a hub, the answers' route names it by the session of its
    HELLO (``session``), the way hub 5.3 sends each answer back along the request's route.
    """
    inner = request.payload.get("payload") if isinstance(request.payload, dict) else None
    query_id = request.metadata.get("query_id")
    if not isinstance(inner, dict) or inner.get("type") != "recognizer_loop:utterance" or not isinstance(query_id, str):
        return []
    if request.metadata.get("is_response"):
        return []
    asked = BusMessage(type=inner["type"], data=dict(inner.get("data") or {}), context=dict(inner.get("context") or {}))
    utterances = asked.data.get("utterances") or [""]
    text = utterances[0].strip().lower() if isinstance(utterances, list) and isinstance(utterances[0], str) else ""
    speaks = [m for m in behaviours.get(text, default)(asked) if m.type == "speak"]
    meta = {"query_id": query_id, "originator_peer": peer, "responder_peer": responder, "is_response": True}
    answers = [BusMessage(type="speak", data=dict(m.data), context={"query_id": query_id}) for m in speaks]
    answers.append(
        BusMessage(type="hive.query.complete")
        if speaks
        else BusMessage(type="hive.query.timeout", data={"query_id": query_id, "error": "no_answer"})
    )
    envelopes = [as_envelope(HiveMessage(msg_type=MsgType.BUS, payload=a.as_dict())) for a in answers]
    session_id = session.get("session_id") if session is not None else None
    asker = f"{peer.rsplit('::', 1)[0]}::{session_id}" if isinstance(session_id, str) else peer
    route = ({"source": asker, "targets": [asker]},)
    return [HiveMessage(msg_type=MsgType.QUERY, payload=e, metadata=dict(meta), route=route) for e in envelopes]
