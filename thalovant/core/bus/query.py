"""QUERY (hub 5.x, spec §9.5): the request frame, and what each answer frame means for it.

Theory of operation
-------------------
A QUERY's payload is a complete BUS envelope of ``recognizer_loop:utterance`` (a bare OVOS message
gives ``malformed_payload``) and its metadata names the ``query_id``. The hub answers with QUERY
frames whose metadata says ``is_response`` and repeats the ``query_id``; each payload is a BUS
envelope: one ``speak`` per chunk, then ``hive.query.complete``. A hub that finds nobody to answer
sends ``hive.query.timeout`` (``{"query_id", "error": "no_answer"}``), as a QUERY answer or as a
bus event; either ends the query unanswered. :func:`query_answer` reads one delivered frame
against a query id into a :class:`QueryChunk`, :class:`QueryComplete` or :class:`QueryTimeout`
(None: the frame is not about this query). A hub without QUERY (4.x) answers nothing at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from thalovant.core.bus.ends import EVENT_QUERY_TIMEOUT
from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.hive import ThalovantHiveRefusedError, as_envelope
from thalovant.core.bus.outbound import utterance_message
from thalovant.core.errors import ThalovantRuntimeError
from thalovant.core.wire.codec import bus_message
from thalovant.core.wire.message import HiveMessage, MsgType

__all__ = [
    "EVENT_QUERY_COMPLETE", "QueryAnswer", "QueryChunk", "QueryComplete", "QueryTimeout",
    "ThalovantQueryNotSupportedError", "ThalovantQueryRefusedError", "ThalovantQueryResult", "query_answer",
    "query_message", "query_result",
]  # fmt: skip

#: The end of a QUERY's answer stream (hub 5.x ``QUERY_STREAM_END``).
EVENT_QUERY_COMPLETE = "hive.query.complete"


class ThalovantQueryRefusedError(ThalovantHiveRefusedError):
    """Hub 5.x refused the QUERY: the client has no ``can_escalate`` grant, so the hub closed with 4003
    (over HTTP: dropped the client, ``code`` None).

    ``kind`` is ``"query"``; ``code``/``reason`` as the hub said. The client reconnects by itself.
    """


class ThalovantQueryNotSupportedError(ThalovantRuntimeError):
    """The hub cannot answer QUERY frames: it speaks protocol v1 (hub 4.x ignores QUERY, spec §1.2)."""


@dataclass(frozen=True, slots=True)
class QueryChunk:
    """One ``speak`` of a query's answer."""

    text: str
    responder_peer: str | None = None


@dataclass(frozen=True, slots=True)
class QueryComplete:
    """The hub says the answer is complete."""


@dataclass(frozen=True, slots=True)
class QueryTimeout:
    """Nobody answered the query (``hive.query.timeout``); ``error`` is the hub's reason (``no_answer``)."""

    error: str = "no_answer"


QueryAnswer = QueryChunk | QueryComplete | QueryTimeout


@dataclass(frozen=True, slots=True, kw_only=True)
class ThalovantQueryResult:
    """What a hub answered to a QUERY.

    Attributes:
        query_id: the query's id.
        chunks: the streamed ``speak`` texts, in order.
        complete: the hub said ``hive.query.complete``.
        unanswered: nobody answered (``hive.query.timeout``, or no answer at all before the timeout).
        timed_out: the client's own timeout ended the wait (answers so far are in ``chunks``).
        responder_peers: the peers that answered, in order of their first chunk.
    """

    query_id: str
    chunks: tuple[str, ...] = ()
    complete: bool = False
    unanswered: bool = False
    timed_out: bool = False
    responder_peers: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        """The whole answer: the chunks joined by spaces."""
        return " ".join(c.strip() for c in self.chunks if c.strip())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``thalovant query --json``)."""
        return {
            "query_id": self.query_id,
            "text": self.text,
            "chunks": list(self.chunks),
            "complete": self.complete,
            "unanswered": self.unanswered,
            "timed_out": self.timed_out,
            "responder_peers": list(self.responder_peers),
        }


def query_message(
    text: str,
    *,
    query_id: str,
    session_id: str,
    lang: str = "en-us",
    site_id: str | None = None,
    useragent: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> HiveMessage:
    """The QUERY frame asking ``text``: a nested BUS envelope of ``recognizer_loop:utterance`` (spec §9.5).

    >>> frame = query_message("what time is it", query_id="q1", session_id="s1")
    >>> frame.msg_type.value, frame.metadata, frame.payload["payload"]["data"]["utterances"]
    ('query', {'query_id': 'q1'}, ['what time is it'])
    """
    ctx = {**dict(context or {}), "query_id": query_id}
    inner = utterance_message(text, request_id=query_id, lang=lang, site_id=site_id, context=ctx)
    envelope = bus_message(inner, session_id=session_id, site_id=site_id, useragent=useragent)
    return HiveMessage(msg_type=MsgType.QUERY, payload=as_envelope(envelope), metadata={"query_id": query_id})


def _timeout_of(event: ThalovantEvent, query_id: str) -> QueryTimeout | None:
    ids = (event.data.get("query_id"), event.context.get("query_id"))
    if event.type == EVENT_QUERY_TIMEOUT and query_id in ids:
        error = event.data.get("error")
        return QueryTimeout(error if isinstance(error, str) else "no_answer")
    return None


def query_answer(frame: ThalovantEvent | Mapping[str, Any], query_id: str) -> QueryAnswer | None:
    """What a delivered answer means for query ``query_id``; None when it is about another query or none.

    ``frame`` is a bus event (a ``hive.query.timeout`` may come as one) or the parts of a QUERY answer
    frame: ``{"metadata": ..., "message": <inner event or None>}`` (a hive message's ``metadata`` and
    ``message``, :class:`~thalovant.core.bus.hive.ThalovantHiveMessage`).

    >>> speak = ThalovantEvent("speak", {"utterance": "hi"})
    >>> query_answer({"metadata": {"query_id": "q1"}, "message": speak}, "q1")
    QueryChunk(text='hi', responder_peer=None)
    """
    if isinstance(frame, ThalovantEvent):
        return _timeout_of(frame, query_id)
    metadata = frame.get("metadata")
    event = frame.get("message")
    if not isinstance(metadata, Mapping) or metadata.get("query_id") != query_id:
        return None
    if not isinstance(event, ThalovantEvent) or metadata.get("is_response") is False:
        return None
    if event.type in ("speak", "ovos.utterance.speak"):
        text = event.data.get("utterance")
        responder = metadata.get("responder_peer")
        return QueryChunk(text if isinstance(text, str) else "", responder if isinstance(responder, str) else None)
    if event.type == EVENT_QUERY_COMPLETE:
        return QueryComplete()
    timeout = _timeout_of(event, query_id)
    if timeout is None and event.type == EVENT_QUERY_TIMEOUT:
        return QueryTimeout()  # the frame's metadata already names this query
    return timeout


def query_result(query_id: str, answers: list[QueryAnswer], *, timed_out: bool = False) -> ThalovantQueryResult:
    """The result of a query from the answers it got, in order (``timed_out``: the client stopped waiting)."""
    chunks = tuple(a.text for a in answers if isinstance(a, QueryChunk))
    peers = tuple(dict.fromkeys(a.responder_peer for a in answers if isinstance(a, QueryChunk) and a.responder_peer))
    complete = any(isinstance(a, QueryComplete) for a in answers)
    unanswered = any(isinstance(a, QueryTimeout) for a in answers) or (timed_out and not chunks)
    return ThalovantQueryResult(
        query_id=query_id,
        chunks=chunks,
        complete=complete,
        unanswered=unanswered,
        timed_out=timed_out and not complete,
        responder_peers=peers,
    )
