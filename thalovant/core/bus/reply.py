"""The reply of one ask, assembled from the events of its turn.

Theory of operation
-------------------
Pure values. The correlator (``correlate.py``) collects the events that
belong to an ask and calls :func:`build_reply` when the ask ends.

Rule 1: the outcome is explicit. ``handled`` (the hub closed the turn),
``timed_out`` (it did not, but speech so far is kept), ``unanswered`` (no skill
matched), ``cancelled`` (a transformer cancelled the utterance) and ``empty``
(nothing was said) are separate flags; ``ok`` is true only for a handled,
answered, uncancelled turn without a failure event.

Rule 2: identical events (harness P18) count once, and the speech of failure
events (the user's own words) is never part of the answer.

Rule 3: sound comes with the answer two ways (``core/bus/media.py``): skill sounds among the events
(``media_events``, capped) and TTS clips of the speech (``audio``, in speak order, matched by the
correlator). ``as_dict`` describes both without their bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from thalovant.core.bus.binary import ThalovantBinary
from thalovant.core.bus.display import ThalovantDisplayItem, display_items_for, strip_ssml
from thalovant.core.bus.ends import ends_unanswered, is_turn_failure
from thalovant.core.bus.events import EVENT_UTTERANCE_CANCELLED, ThalovantEvent
from thalovant.core.bus.failures import ThalovantUnansweredError
from thalovant.core.bus.media import media_summary, select_media, speech_key
from thalovant.core.bus.redact import redact
from thalovant.core.deprecation import warn_once

#: The key (in an event's ``data.meta`` or ``context``) whose bool says whether a skill claimed the turn.
THALOVANT_CLAIMED_META_KEY = "thalovant_claimed"


def _text_of(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


class _RawMessagesSlot:
    """Holds 0.4.7's ``raw_messages`` outside the dataclass fields (traces and equality ignore it)."""

    __slots__ = ("_raw_messages",)


@dataclass(frozen=True, slots=True, init=False)
class ThalovantReply(_RawMessagesSlot):
    """What one ask produced.

    The first eight arguments may be given by position in 0.4.7's order
    (``text, utterances, handled, session_id, request_id, raw_messages, events, failure_event``).

    Args:
        text: see the attribute.
        utterances: see the attribute.
        handled: see the attribute.
        session_id: see the attribute.
        request_id: see the attribute.
        raw_messages: 0.4.7's raw transport messages of the turn (deprecated: use ``events``).
        events: see the attribute.
        failure_event: see the attribute.
        timed_out: see the attribute.
        unanswered: see the attribute.
        cancelled: see the attribute.
        audio: see the attribute.
        dropped_audio: see the attribute.

    Attributes:
        text: the speech of the turn: whitespace collapsed, consecutive
            repeats dropped, pieces joined with a space.
        utterances: the speech pieces, in order.
        events: every event of the turn (duplicates removed), in arrival order.
        handled: the hub signalled the end of the turn (``ovos.utterance.handled``).
        timed_out: the wait ran out before the end signal; ``text`` holds
            whatever was said until then.
        unanswered: no skill matched the utterance.
        session_id: the session id the *caller* used (not the hub's rewrite).
        request_id: the request id of the ask.
        failure_event: the first failure event of the turn, if any.
        cancelled: the hub cancelled the utterance (``ovos.utterance.cancelled``).
        audio: the TTS clips of the speech (``ThalovantBinary`` of kind ``tts_audio``), in speak order:
            binary frames whose ``utterance`` matched a speak of this ask while it was in flight
            (``ask(..., synth=True)`` asks the hub for them and waits).
        dropped_audio: TTS clips not attached because of the size caps (4 MiB a clip, 16 MiB a reply).
    """

    text: str = ""
    utterances: tuple[str, ...] = ()
    events: tuple[ThalovantEvent, ...] = ()
    handled: bool = False
    timed_out: bool = False
    unanswered: bool = False
    session_id: str | None = None
    request_id: str | None = None
    failure_event: ThalovantEvent | None = None
    cancelled: bool = False
    audio: tuple[ThalovantBinary, ...] = ()
    dropped_audio: int = 0

    def __init__(
        self,
        text: str = "",
        utterances: tuple[str, ...] = (),
        handled: bool = False,
        session_id: str | None = None,
        request_id: str | None = None,
        raw_messages: tuple[Any, ...] | None = None,
        events: tuple[ThalovantEvent, ...] = (),
        failure_event: ThalovantEvent | None = None,
        *,
        timed_out: bool = False,
        unanswered: bool = False,
        cancelled: bool = False,
        audio: tuple[ThalovantBinary, ...] = (),
        dropped_audio: int = 0,
    ) -> None:
        if raw_messages is not None:
            warn_once("ThalovantReply(raw_messages=...)", "ThalovantReply(events=...)")
        values = (text, utterances, events, handled, timed_out, unanswered, session_id, request_id, failure_event)
        for name, value in zip(_FIELDS, values, strict=True):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "cancelled", cancelled)
        object.__setattr__(self, "audio", tuple(audio))
        object.__setattr__(self, "dropped_audio", dropped_audio)
        object.__setattr__(self, "_raw_messages", None if raw_messages is None else tuple(raw_messages))

    @property
    def raw_messages(self) -> tuple[Any, ...]:
        """0.4.7's raw messages of the turn: each event's ``raw``, else the event (deprecated: use ``events``)."""
        warn_once("ThalovantReply.raw_messages", "ThalovantReply.events (each event's .raw)")
        given = getattr(self, "_raw_messages", None)
        if given is not None:
            return tuple(given)
        return tuple(e.raw if e.raw is not None else e for e in self.events)

    @property
    def ok(self) -> bool:
        """Handled, answered, not cancelled, and no failure event."""
        return (
            self.handled
            and not self.unanswered
            and not self.cancelled
            and self.failure_event is None
            and not self.timed_out
        )

    @property
    def lang(self) -> str | None:
        """The language of the first speech event that names one."""
        return next((e.lang for e in self.events if e.is_speech and e.lang), None)

    @property
    def skill_ids(self) -> tuple[str, ...]:
        """The skills that answered: ``meta.skill`` of speech events and ``name`` of the handled event."""
        found: list[str] = []
        for event in self.events:
            meta = event.data.get("meta")
            skill = meta.get("skill") if isinstance(meta, dict) else None
            if event.is_handled:
                skill = event.data.get("name")
            if isinstance(skill, str) and skill.strip() and skill not in found:
                found.append(skill)
        return tuple(found)

    @property
    def pipeline_ids(self) -> tuple[str, ...]:
        """The pipelines that matched, in order: ``context.pipeline_id`` or ``data.meta.pipeline_id`` of each event.

        Empty when no event names one (hubs 4.x and 5.x of the harness do not; a hub plugin may).
        """
        found: list[str] = []
        for event in self.events:
            meta = event.data.get("meta")
            for value in (
                event.context.get("pipeline_id"),
                meta.get("pipeline_id") if isinstance(meta, dict) else None,
            ):
                text = _text_of(value)
                if text is not None and text not in found:
                    found.append(text)
        return tuple(found)

    @property
    def claimed(self) -> bool | None:
        """Whether a skill (not a fallback) claimed the turn; None when the events do not tell.

        The last event with a bool ``THALOVANT_CLAIMED_META_KEY`` (``data.meta`` or ``context``) decides;
        else an unanswered turn is False, and a handled turn with a skill id is True unless a
        pipeline id starts with ``fallback``.
        """
        said: bool | None = None
        for event in self.events:
            meta = event.data.get("meta")
            for value in (
                event.context.get(THALOVANT_CLAIMED_META_KEY),
                meta.get(THALOVANT_CLAIMED_META_KEY) if isinstance(meta, dict) else None,
            ):
                if isinstance(value, bool):
                    said = value
        if said is not None:
            return said
        if self.unanswered:
            return False
        if self.handled and self.skill_ids:
            return not any(p.lower().startswith("fallback") for p in self.pipeline_ids)
        return None

    def raise_for_unanswered(self, said: str | None = None) -> ThalovantReply:
        """Raise :class:`ThalovantUnansweredError` if no skill matched, else return the reply itself.

        Args:
            said: what was said (None: the failure event's ``utterance``, if any).
        """
        if not self.unanswered:
            return self
        if said is None and self.failure_event is not None:
            said = _text_of(self.failure_event.data.get("utterance"))
        raise ThalovantUnansweredError(said, request_id=self.request_id, reply=self)

    @property
    def media_events(self) -> tuple[ThalovantEvent, ...]:
        """The skill sounds of the turn (``mycroft.audio.queue`` ...), in arrival order, within the caps
        (4 MiB a clip, 16 MiB a reply; ``event.audio_bytes()`` decodes an inline one)."""
        kept, _ = select_media((e.type, e.data) for e in self.events)
        return tuple(self.events[i] for i in kept)

    @property
    def dropped_media(self) -> int:
        """Sounds left out because of the caps: media events and TTS clips (``dropped_audio``)."""
        return select_media((e.type, e.data) for e in self.events)[1] + self.dropped_audio

    @property
    def has_audio(self) -> bool:
        """The reply comes with sound: a media event or a TTS clip."""
        return bool(self.audio) or bool(self.media_events)

    @property
    def missing_audio(self) -> tuple[str, ...]:
        """The speech pieces no TTS clip in ``audio`` speaks (all of them when none came)."""
        have = {speech_key(clip.utterance) for clip in self.audio}
        return tuple(piece for piece in self.utterances if speech_key(piece) not in have)

    @property
    def empty(self) -> bool:
        """Nothing was said (a handled turn can be silent)."""
        return not self.text

    @property
    def display_text(self) -> str:
        """``text`` with SSML markup removed."""
        return strip_ssml(self.text)

    def display_items(self, *, max_text_chars: int | None = None) -> tuple[ThalovantDisplayItem, ...]:
        """The display items of every event of the turn, or one text item holding ``display_text``.

        Raises:
            ValueError: ``max_text_chars`` is less than 1.
        """
        items: list[ThalovantDisplayItem] = []
        for event in self.events:
            items.extend(event.display_items(max_text_chars=max_text_chars))
        if items or not self.display_text:
            return tuple(items)
        return display_items_for("speak", {"utterance": self.display_text}, max_text_chars=max_text_chars)

    def as_dict(self, *, max_text_chars: int | None = None) -> dict[str, Any]:
        """A JSON-ready dict; secret-looking values are redacted.

        Args:
            max_text_chars: split the text of the reply's ``display_items`` into chunks of at most this
                many characters (None: one chunk); the ``events`` entries are not split.

        Raises:
            ValueError: ``max_text_chars`` is less than 1.
        """
        return {
            "text": self.text,
            "display_text": self.display_text,
            "utterances": list(self.utterances),
            "handled": self.handled,
            "ok": self.ok,
            "empty": self.empty,
            "timed_out": self.timed_out,
            "unanswered": self.unanswered,
            "cancelled": self.cancelled,
            "lang": self.lang,
            "skill_ids": list(self.skill_ids),
            "pipeline_ids": list(self.pipeline_ids),
            "claimed": self.claimed,
            "session_id": self.session_id,
            "request_id": self.request_id,
            "display_items": redact([i.as_dict() for i in self.display_items(max_text_chars=max_text_chars)]),
            "failure_event": self.failure_event.as_dict() if self.failure_event else None,
            "events": [e.as_dict() for e in self.events],
            "has_audio": self.has_audio,
            "media_events": [media_summary(e.type, e.data) for e in self.media_events],
            "audio": [_clip_summary(clip) for clip in self.audio],
            "dropped_media": self.dropped_media,
        }


#: The fields ``ThalovantReply.__init__`` sets from its arguments, in that order.
_FIELDS = (
    "text",
    "utterances",
    "events",
    "handled",
    "timed_out",
    "unanswered",
    "session_id",
    "request_id",
    "failure_event",
)


def _clip_summary(clip: ThalovantBinary) -> dict[str, Any]:
    return {"kind": clip.kind, "utterance": clip.utterance, "lang": clip.lang, "file_name": clip.file_name,
            "bytes": len(clip.data)}  # fmt: skip


def in_speak_order(clips: Iterable[ThalovantBinary], pieces: Iterable[str]) -> tuple[ThalovantBinary, ...]:
    """``clips`` ordered as the speech ``pieces`` they speak; a clip that speaks none comes last."""
    rest = list(clips)
    ordered: list[ThalovantBinary] = []
    for piece in pieces:
        key = speech_key(piece)
        found = next((c for c in rest if speech_key(c.utterance) == key), None)
        if found is not None:
            rest.remove(found)
            ordered.append(found)
    return (*ordered, *rest)


def speech_pieces(events: Iterable[ThalovantEvent]) -> tuple[str, ...]:
    """The speech of a turn: each speech event's text, whitespace collapsed, consecutive repeats dropped."""
    pieces: list[str] = []
    for event in events:
        if not event.is_speech:
            continue
        piece = " ".join(event.text.split())
        if piece and (not pieces or pieces[-1] != piece):
            pieces.append(piece)
    return tuple(pieces)


def build_reply(
    events: Iterable[ThalovantEvent],
    *,
    session_id: str | None = None,
    request_id: str | None = None,
    timed_out: bool = False,
    audio: Iterable[ThalovantBinary] = (),
    dropped_audio: int = 0,
) -> ThalovantReply:
    """Assemble a reply from the events of one turn (in arrival order) and the TTS clips matched to it.

    ``handled`` and ``unanswered`` are read from the events themselves; ``audio`` is put in speak order.
    """
    seen: set[str] = set()
    unique: list[ThalovantEvent] = []
    for event in events:
        key = event.dedup_key()
        if key not in seen:
            seen.add(key)
            unique.append(event)
    pieces = speech_pieces(unique)
    failure = next((e for e in unique if is_turn_failure(e)), None)
    return ThalovantReply(
        text=" ".join(pieces),
        utterances=pieces,
        events=tuple(unique),
        handled=any(e.is_handled for e in unique),
        timed_out=timed_out,
        unanswered=any(ends_unanswered(e) for e in unique),
        session_id=session_id,
        request_id=request_id,
        failure_event=failure,
        cancelled=any(e.type == EVENT_UTTERANCE_CANCELLED for e in unique),
        audio=in_speak_order(audio, pieces),
        dropped_audio=dropped_audio,
    )


__all__ = ["ThalovantReply", "build_reply", "in_speak_order", "speech_pieces"]
