"""Events from the hub.

Theory of operation
-------------------
Every BUS message the hub delivers becomes one :class:`ThalovantEvent` via
:func:`normalize`, which is total: any JSON value gives either an event or an
:class:`EventProblem`, never an exception. The event is a read-only view; its
properties (``text``, ``session_id``, ``request_id`` …) dig the usual OVOS
places and never raise on odd shapes.

:class:`EventFilter` (in ``filters.py``, re-exported here) selects events by
type pattern, session id, request id and a data subset.

The reply of an ask is in ``events_reply.py``.

Rule 1: nothing here raises on hub data.

Rule 2: secrets never leave through ``repr`` or ``as_dict``: values under
secret-looking keys (``token``, ``password``, ``authorization`` …) are
replaced by ``"***"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core.bus.display import ThalovantDisplayItem, display_items_for, strip_ssml
from thalovant.core.bus.filters import EventFilter, EventProblem, ids_from_context, parse_filter, type_matches
from thalovant.core.bus.media import MAX_CLIP_BYTES, MEDIA_EVENTS, inline_audio
from thalovant.core.bus.redact import bounded_json, redact
from thalovant.core.deprecation import warn_once
from thalovant.core.wire.message import BusMessage

EVENT_RECOGNIZER_LOOP_UTTERANCE = "recognizer_loop:utterance"
EVENT_SPEAK = "speak"
EVENT_OVOS_SPEAK = "ovos.utterance.speak"
EVENT_UTTERANCE_HANDLED = "ovos.utterance.handled"
EVENT_UTTERANCE_CANCELLED = "ovos.utterance.cancelled"
EVENT_INTENT_FAILURE = "complete_intent_failure"
EVENT_INTENT_UNMATCHED = "ovos.intent.unmatched"
EVENT_POLICY_DENIED = "hive.policy.denied"

#: Events whose text is speech for the user.
SPEECH_EVENTS = frozenset({EVENT_SPEAK, EVENT_OVOS_SPEAK})
#: "Nothing matched": the hub heard the user but no skill answered.
UNANSWERED_EVENTS = frozenset({EVENT_INTENT_FAILURE, EVENT_INTENT_UNMATCHED})
#: Every event that reports a failed turn (``is_failure``).
FAILURE_EVENTS = UNANSWERED_EVENTS | {EVENT_POLICY_DENIED}

_ID_KEYS = ("request_id", "thalovant_request_id", "correlation_id")
_MAX_TYPE_CHARS = 512


def _nonblank(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class _RawSlot:
    """Holds an event's ``raw`` outside the dataclass fields (traces and equality ignore it)."""

    __slots__ = ("_raw",)


@dataclass(frozen=True, slots=True, repr=False, eq=False, init=False)
class ThalovantEvent(_RawSlot):
    """One bus message from the hub, as a read-only view.

    ``ThalovantEvent(type, data, context, raw)``; the 0.4.7 keyword ``name=`` still works for ``type``
    (it warns once: ``DeprecationWarning``).

    Args:
        type: the OVOS message type (``speak``, ``ovos.utterance.handled`` …).
        data: the message's ``data`` object (None: ``{}``).
        context: the message's ``context`` object (None: ``{}``).
        raw: the message object as a transport delivered it, if any (not compared, not shown).
        name: the 0.4.7 name of ``type``.

    Attributes:
        type: the OVOS message type.
        data: the message's ``data`` object.
        context: the message's ``context`` object.
    """

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        type: str | None = None,
        data: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        raw: Any = None,
        *,
        name: str | None = None,
    ) -> None:
        if name is not None:
            warn_once("ThalovantEvent(name=...)", "ThalovantEvent(type=...)")
            if type is not None and type != name:
                raise TypeError("ThalovantEvent: give type or name, not both")
            type = name
        if type is None:
            raise TypeError("ThalovantEvent needs its type")
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "data", {} if data is None else data)
        object.__setattr__(self, "context", {} if context is None else context)
        object.__setattr__(self, "_raw", raw)

    @property
    def raw(self) -> Any:
        """The message object as a transport delivered it (0.4.7's ``raw``), or None."""
        return getattr(self, "_raw", None)

    def __eq__(self, other: object) -> bool:
        # by canonical JSON content, so a list and a tuple holding the same items
        # compare equal (replay traces decode JSON arrays as tuples)
        if not isinstance(other, ThalovantEvent):
            return NotImplemented
        return self.type == other.type and self.dedup_key() == other.dedup_key()

    def __hash__(self) -> int:
        return hash(self.dedup_key())

    def __repr__(self) -> str:
        return f"ThalovantEvent(type={self.type!r}, data={redact(self.data)!r}, context={redact(self.context)!r})"

    @property
    def name(self) -> str:
        """Alias of ``type`` (the 0.4.7 name)."""
        return self.type

    @property
    def session(self) -> Mapping[str, Any]:
        """``context.session``, or an empty mapping."""
        return _mapping(self.context.get("session"))

    @property
    def utterances(self) -> tuple[str, ...]:
        """``data.utterances`` (a string or list of strings), else ``(data.utterance,)``."""
        raw = self.data.get("utterances")
        if isinstance(raw, str):
            return (raw,)
        if isinstance(raw, list | tuple):
            found = tuple(u for u in raw if isinstance(u, str))
            if found:
                return found
        single = self.data.get("utterance")
        return (single,) if isinstance(single, str) else ()

    @property
    def text(self) -> str:
        """``data.utterance``, else ``data.text``, else the first utterance, else ``""``."""
        for key in ("utterance", "text"):
            value = self.data.get(key)
            if isinstance(value, str):
                return value
        utterances = self.utterances
        return utterances[0] if utterances else ""

    @property
    def display_text(self) -> str:
        """``text`` with SSML markup removed."""
        return strip_ssml(self.text)

    @property
    def session_id(self) -> str | None:
        """``context.session.session_id``, else ``context.session_id``."""
        return _nonblank(self.session.get("session_id")) or _nonblank(self.context.get("session_id"))

    @property
    def request_ids(self) -> tuple[str, ...]:
        """The correlation ids of the most authoritative place that has any: context, else session, else data.

        Only one place counts: hub 4.x adopts a whole client session as the
        connection's session (spec §9.1), so ``context.session.request_id`` can
        name an *earlier* request while ``context.request_id`` names this one.
        """
        for where in (self.context, self.session, self.data):
            found: list[str] = []
            for key in _ID_KEYS:
                value = _nonblank(where.get(key))
                if value is not None and value not in found:
                    found.append(value)
            if found:
                return tuple(found)
        return ()

    @property
    def request_id(self) -> str | None:
        """The first of ``request_id``, ``thalovant_request_id``, ``correlation_id`` in context, session, data."""
        ids = self.request_ids
        return ids[0] if ids else None

    @property
    def site_id(self) -> str | None:
        """``site_id`` from the session, the context or the data."""
        return self._lookup("site_id")

    @property
    def lang(self) -> str | None:
        """``lang`` from the session, the context or the data."""
        return self._lookup("lang")

    def _lookup(self, key: str) -> str | None:
        for where in (self.session, self.context, self.data):
            value = _nonblank(where.get(key))
            if value is not None:
                return value
        return None

    @property
    def is_speech(self) -> bool:
        """The event is speech for the user (``speak`` / ``ovos.utterance.speak``)."""
        return self.type in SPEECH_EVENTS

    @property
    def is_handled(self) -> bool:
        """The hub says the turn is over (``ovos.utterance.handled``)."""
        return self.type == EVENT_UTTERANCE_HANDLED

    @property
    def is_policy_denied(self) -> bool:
        """The hub refused a message by policy (``hive.policy.denied``)."""
        return self.type == EVENT_POLICY_DENIED

    @property
    def is_unanswered(self) -> bool:
        """No skill matched the utterance (``complete_intent_failure`` / ``ovos.intent.unmatched``)."""
        return self.type in UNANSWERED_EVENTS

    @property
    def is_failure(self) -> bool:
        """The event reports a failed turn: unanswered or policy denied."""
        return self.type in FAILURE_EVENTS

    @property
    def is_media(self) -> bool:
        """The event carries or names a sound of the answer (``mycroft.audio.queue`` ...: ``core/bus/media.py``)."""
        return self.type in MEDIA_EVENTS

    def audio_bytes(self, *, max_bytes: int = MAX_CLIP_BYTES) -> bytes | None:
        """The sound this event carries inline (base64 ``binary_data`` or ``audio``), decoded.

        None when it carries none, the base64 is not valid, or the sound is over ``max_bytes`` (4 MiB).

        Raises:
            ValueError: ``max_bytes`` is negative.
        """
        return inline_audio(self.data, max_bytes=max_bytes)

    def display_items(self, *, max_text_chars: int | None = None) -> tuple[ThalovantDisplayItem, ...]:
        """The rich display items of this event (see ``thalovant.core.bus.display``).

        Failure events carry the user's own words, so they give no text items.

        Raises:
            ValueError: ``max_text_chars`` is less than 1.
        """
        return display_items_for(self.type, self.data, max_text_chars=max_text_chars, include_text=not self.is_failure)

    def matches(
        self,
        pattern: str | EventFilter | None = None,
        *,
        session_id: str | None = None,
        request_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether the event passes a filter.

        Args:
            pattern: an :class:`EventFilter`, or a type pattern (``"speak"``,
                ``"*"``, ``"ovos.*"``).
            session_id: keep only events of this session (an event with no
                session id passes; see :class:`EventFilter`).
            request_id: keep only events of this request (same leniency).
            data: keep only events whose data holds these key/value pairs.
        """
        if isinstance(pattern, EventFilter):
            base = pattern
        else:
            base = EventFilter(types=(pattern,) if pattern else ())
        extra = EventFilter(session_id=session_id, request_id=request_id, data=dict(data) if data else None)
        return base.accepts(self) and extra.accepts(self)

    def matches_context(
        self, context: Mapping[str, Any] | None = None, *, session_id: str | None = None, request_id: str | None = None
    ) -> bool:
        """The 0.4.7 correlation filter: reject only when both sides have an id and they differ.

        The wanted ids come from the keywords, else from ``context`` (``session.session_id``, ``request_id``).
        """
        from_session, from_request = ids_from_context(context)
        return EventFilter(session_id=session_id or from_session, request_id=request_id or from_request).accepts(self)

    def dedup_key(self) -> str:
        """A stable key: equal for two deliveries of the same message (harness P18)."""
        try:
            text = json.dumps([self.type, self.data, self.context], sort_keys=True, default=repr)
        except (TypeError, ValueError, RecursionError):  # non-str keys or absurd nesting
            text = json.dumps(bounded_json([self.type, self.data, self.context], 0), sort_keys=True, default=repr)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def as_dict(self, *, max_text_chars: int | None = None) -> dict[str, Any]:
        """A JSON-ready dict; secret-looking values are redacted.

        Args:
            max_text_chars: split the text of ``display_items`` into chunks of at most this many
                characters (None: one chunk).

        Raises:
            ValueError: ``max_text_chars`` is less than 1.
        """
        return {
            "type": self.type,
            "name": self.type,
            "data": redact(self.data),
            "context": redact(self.context),
            "text": self.text,
            "display_text": self.display_text,
            "session_id": self.session_id,
            "request_id": self.request_id,
            "display_items": redact([i.as_dict() for i in self.display_items(max_text_chars=max_text_chars)]),
        }


def normalize(message: Any) -> Result[ThalovantEvent, EventProblem]:
    """Read a bus message (a :class:`BusMessage`, or its dict form) as an event.

    Accepts ``{"type", "data", "context"}`` (``msg_type`` is accepted for
    ``type``), and also a whole BUS HiveMessage dict, which is unwrapped.
    Missing or null ``data`` / ``context`` become empty objects.

    Returns:
        ``Success(event)`` or ``Failure(EventProblem)``; never raises.

    >>> normalize({"type": "speak", "data": {"utterance": "hi"}}).unwrap().text
    'hi'
    """
    if isinstance(message, BusMessage):
        message = message.as_dict()
    if not isinstance(message, Mapping):
        return Failure(EventProblem("not-an-object", type(message).__name__))
    inner = message.get("payload")
    if message.get("msg_type") in ("bus", "shared_bus") and isinstance(inner, Mapping):
        message = inner
    typ = message.get("type")
    if typ is None:
        typ = message.get("msg_type")
    if not isinstance(typ, str) or not typ.strip():
        return Failure(EventProblem("bad-type", "type must be a non-empty string"))
    if len(typ) > _MAX_TYPE_CHARS:
        return Failure(EventProblem("bad-type", "type is too long"))
    data = message.get("data")
    context = message.get("context")
    data = {} if data is None else data
    context = {} if context is None else context
    if not isinstance(data, Mapping):
        return Failure(EventProblem("bad-data", "data must be an object"))
    if not isinstance(context, Mapping):
        return Failure(EventProblem("bad-context", "context must be an object"))
    return Success(ThalovantEvent(typ, dict(data), dict(context)))


__all__ = [
    "EVENT_INTENT_FAILURE",
    "EVENT_INTENT_UNMATCHED",
    "EVENT_OVOS_SPEAK",
    "EVENT_POLICY_DENIED",
    "EVENT_RECOGNIZER_LOOP_UTTERANCE",
    "EVENT_SPEAK",
    "EVENT_UTTERANCE_CANCELLED",
    "EVENT_UTTERANCE_HANDLED",
    "FAILURE_EVENTS",
    "SPEECH_EVENTS",
    "UNANSWERED_EVENTS",
    "EventFilter",
    "EventProblem",
    "ThalovantEvent",
    "normalize",
    "parse_filter",
    "type_matches",
]
