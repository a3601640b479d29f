"""Which ask an event belongs to and how it ends a turn, beyond what :class:`ThalovantEvent` says itself.

Theory of operation
-------------------
Pure helpers for the correlator (``core/client/correlate.py``) and :func:`~thalovant.core.bus.reply.build_reply`.

``hive.query.timeout`` (hub 5.x, spec §9.5: ``{"query_id", "error": "no_answer"}``) carries no
request id: its id is ``data.query_id`` (or ``context.query_id``). An ask whose request id is that
query id owns it (``thalovant`` uses the request id as the query id), and it ends the turn like
``ovos.intent.unmatched``: finished, ``unanswered``, with the timeout as the ``failure_event``.
The 0.9.7 reference names the event among those an ask handles but not its outcome; this is our choice.
"""

from __future__ import annotations

from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.wire.message import BusMessage

#: Hub 5.x: nobody answered a QUERY in time (spec §9.5).
EVENT_QUERY_TIMEOUT = "hive.query.timeout"


def _nonblank(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def turn_ids(event: ThalovantEvent) -> tuple[str, ...]:
    """The ids that tie ``event`` to an ask: its ``request_ids``, else a query timeout's ``query_id``.

    >>> turn_ids(ThalovantEvent("hive.query.timeout", {"query_id": "q1", "error": "no_answer"}))
    ('q1',)
    """
    ids = event.request_ids
    if ids or event.type != EVENT_QUERY_TIMEOUT:
        return ids
    found = [q for q in (_nonblank(event.data.get("query_id")), _nonblank(event.context.get("query_id"))) if q]
    return tuple(dict.fromkeys(found))


def ends_unanswered(event: ThalovantEvent) -> bool:
    """The event ends its turn with no answer: ``is_unanswered`` or a query timeout."""
    return event.is_unanswered or event.type == EVENT_QUERY_TIMEOUT


def is_turn_failure(event: ThalovantEvent) -> bool:
    """The event reports a failed turn (``is_failure`` or a query timeout)."""
    return event.is_failure or event.type == EVENT_QUERY_TIMEOUT


def request_id_of(message: BusMessage) -> str | None:
    """The correlation id a message carries in ``context.request_id``, if it is a string."""
    rid = message.context.get("request_id")
    return rid if isinstance(rid, str) else None


__all__ = ["EVENT_QUERY_TIMEOUT", "ends_unanswered", "is_turn_failure", "request_id_of", "turn_ids"]
