"""Event filters: which hub events a listener, a subscription or a wait wants.

:class:`EventFilter` selects events by type pattern (exact, ``*`` or a ``prefix.*``), session id,
request id and a data subset; :func:`parse_filter` reads the CLI's comma-separated patterns;
:func:`ids_from_context` reads the wanted ids from a 0.4.7-style ``context=`` filter. An event is
anything with the few properties :class:`FilteredEvent` names (``ThalovantEvent`` has them), so this
module imports no event class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from returns.result import Failure, Result, Success

__all__ = ["EventFilter", "EventProblem", "FilteredEvent", "ids_from_context", "parse_filter", "type_matches"]


class FilteredEvent(Protocol):
    """What a filter reads of an event."""

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> Mapping[str, Any]: ...

    @property
    def session_id(self) -> str | None: ...

    @property
    def request_ids(self) -> tuple[str, ...]: ...


E = TypeVar("E", bound=FilteredEvent)


@dataclass(frozen=True, slots=True)
class EventProblem:
    """Why a value could not be read as a bus event, or a filter spec as a filter."""

    code: str  # "not-an-object", "bad-type", "bad-data", "bad-context", "bad-filter"
    detail: str = ""


def _nonblank(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def ids_from_context(context: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """``(session_id, request_id)`` named by a 0.4.7-style ``context=`` filter.

    The session id is ``context.session.session_id``, else ``context.session_id``; the request id the
    first of ``request_id``, ``thalovant_request_id``, ``correlation_id`` in the context, else in its
    session. Odd shapes give None.
    """
    ctx = context if isinstance(context, Mapping) else {}
    session = ctx.get("session")
    session = session if isinstance(session, Mapping) else {}
    session_id = _nonblank(session.get("session_id")) or _nonblank(ctx.get("session_id"))
    for where in (ctx, session):
        for key in ("request_id", "thalovant_request_id", "correlation_id"):
            found = _nonblank(where.get(key))
            if found is not None:
                return session_id, found
    return session_id, None


def type_matches(pattern: str, event_type: str) -> bool:
    """Whether a type pattern selects an event type.

    >>> type_matches("*", "speak"), type_matches("ovos.*", "ovos.utterance.handled"), type_matches("speak", "speaker")
    (True, True, False)
    """
    if pattern in ("*", ""):
        return True
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    """A declarative event filter (no callables, so it can be logged and compared).

    Attributes:
        types: type patterns; an event passes if any matches. Empty = all types.
        session_id: wanted session id.
        request_id: wanted request id (any of the event's correlation ids may match).
        data: key/value pairs the event's data must contain (compared with ``==``).
        strict: when False (default) an event that carries no session id or no
            request id passes that check, as older hubs do not echo them; when
            True a missing id rejects the event.
    """

    types: tuple[str, ...] = ()
    session_id: str | None = None
    request_id: str | None = None
    data: Mapping[str, Any] | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        # a bare string would be iterated character by character
        types: Any = self.types
        if isinstance(types, str):
            object.__setattr__(self, "types", (types,))
        elif not isinstance(types, tuple):
            object.__setattr__(self, "types", tuple(types))
        if not all(isinstance(t, str) for t in self.types):
            raise TypeError("EventFilter.types must be strings")

    def accepts(self, event: FilteredEvent) -> bool:
        """Whether the event passes every condition of this filter."""
        if self.types and not any(type_matches(p, event.type) for p in self.types):
            return False
        if self.session_id is not None:
            got = event.session_id
            if (got is None and self.strict) or (got is not None and got != self.session_id):
                return False
        if self.request_id is not None:
            ids = event.request_ids
            if (not ids and self.strict) or (ids and self.request_id not in ids):
                return False
        if self.data:
            for key, wanted in self.data.items():
                if key not in event.data or event.data[key] != wanted:
                    return False
        return True

    def select(self, events: Iterable[E]) -> tuple[E, ...]:
        """The events this filter accepts, in order."""
        return tuple(e for e in events if self.accepts(e))


_PATTERN = re.compile(r"^(\*|[^\s*,]+\*?)$")


def parse_filter(spec: str) -> Result[EventFilter, EventProblem]:
    """Parse a comma-separated list of type patterns (CLI ``--event speak,ovos.*``).

    >>> parse_filter("speak, ovos.*").unwrap().types
    ('speak', 'ovos.*')
    >>> parse_filter("a b").failure().code
    'bad-filter'
    """
    parts = tuple(p.strip() for p in spec.split(",") if p.strip())
    bad = [p for p in parts if not _PATTERN.match(p)]
    if bad:
        return Failure(EventProblem("bad-filter", f"bad type pattern: {bad[0][:80]!r}"))
    return Success(EventFilter(types=parts))
