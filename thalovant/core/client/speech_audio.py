"""Speech audio with the answer: which TTS clip belongs to which ask, and whether an ask still waits for one.

Theory of operation
-------------------
Pure values the :class:`~thalovant.core.client.correlate.Correlator` keeps (one :class:`AudioTrack` per
pending ask, one :class:`EarlyClips` per correlator); no clock of their own (``now`` comes in).

Rule 1 (matching). A clip is a BINARY frame of kind ``tts_audio`` whose metadata names the
``utterance`` it speaks. It belongs to the oldest pending ask that said that speech (``speech_key``:
whitespace and case do not count) and has fewer clips for it than times it said it. A clip for no
pending speech waits in :class:`EarlyClips` (at most :data:`EARLY_CLIPS` clips, :data:`EARLY_SECONDS` s):
hub 4.x may deliver a clip before its speak; a later speak of a pending ask takes it from there. Clips over
the 4 MiB cap are not kept aside, and those kept hold at most 16 MiB together (the oldest go first).

Rule 2 (caps, ``core/bus/media.py``). A clip over 4 MiB, or one that would take an ask's clips over
16 MiB, is not attached: it counts in ``reply.dropped_audio`` and as answered (nothing waits for it).

Rule 3 (synth). A ``synth`` ask asks the hub to render every new speech piece (one ``SynthWanted``
each) and, once its turn is over, waits within its deadline until each piece has its clip. A refusal of
``speak:synth`` (hub 5.x ``hive.policy.denied``) ends that wait: the hub will not render.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from thalovant.core.bus.binary import ThalovantBinary, binary_of
from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.media import MAX_CLIP_BYTES, MAX_REPLY_MEDIA_BYTES, speech_key
from thalovant.core.bus.outbound import correlated_context
from thalovant.core.bus.refusal import parse_denial
from thalovant.core.bus.reply import speech_pieces
from thalovant.core.client.correlate_events import SynthWanted
from thalovant.core.wire.message import BusMessage, HiveMessage

__all__ = [
    "EARLY_CLIPS",
    "EARLY_SECONDS",
    "SYNTH_TYPE",
    "AudioTrack",
    "EarlyClips",
    "refuses_synth",
    "synth_message",
    "tts_clip",
]

#: The bus type that asks the hub to render speech (hivemind-audio-binary-protocol answers it).
SYNTH_TYPE: Final = "speak:synth"
#: How many clips that match no pending speech are kept, and for how long (Rule 1).
EARLY_CLIPS: Final = 8
EARLY_SECONDS: Final = 10.0


def tts_clip(message: HiveMessage) -> ThalovantBinary | None:
    """The TTS clip ``message`` carries (a ``tts_audio`` BINARY frame naming its ``utterance``), or None."""
    clip = binary_of(message).value_or(None)
    if clip is None or clip.kind != "tts_audio" or not speech_key(clip.utterance):
        return None
    return clip


def synth_message(wanted: SynthWanted) -> BusMessage:
    """The ``speak:synth`` message that asks the hub to render ``wanted`` (Rule 3), correlated to its ask.

    >>> synth_message(SynthWanted(ask_id="r1", utterance="hi", lang="en-us")).data
    {'utterance': 'hi', 'lang': 'en-us'}
    """
    lang = wanted.lang or "en-us"
    context = correlated_context(None, request_id=wanted.ask_id, lang=lang, session_id=wanted.session_id)
    return BusMessage(type=SYNTH_TYPE, data={"utterance": wanted.utterance, "lang": lang}, context=context)


def refuses_synth(event: ThalovantEvent) -> bool:
    """The event is the hub refusing ``speak:synth`` (Rule 3)."""
    return event.is_policy_denied and parse_denial(event).denied_type == SYNTH_TYPE


@dataclass(slots=True)
class AudioTrack:
    """The TTS clips of one ask (Rules 1 to 3).

    Attributes:
        synth: the ask asked the hub to render its speech.
        clips: the clips attached, in arrival order.
        answered: the speech key of each clip attached or dropped.
        size: the bytes attached.
        dropped: clips left out by the caps.
        requested: how many speech pieces were asked for (``SynthWanted``).
        refused: the hub refused ``speak:synth``.
    """

    synth: bool = False
    clips: list[ThalovantBinary] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    size: int = 0
    dropped: int = 0
    requested: int = 0
    refused: bool = False

    def offer(self, clip: ThalovantBinary, events: Iterable[ThalovantEvent]) -> bool:
        """Take ``clip`` if the ask said its speech more often than it has clips for it (Rule 1); whether taken.

        A clip over the caps is taken as answered and dropped (Rule 2).
        """
        key = speech_key(clip.utterance)
        said = sum(1 for piece in speech_pieces(events) if speech_key(piece) == key)
        if said <= self.answered.count(key):
            return False
        self.answered.append(key)
        if len(clip.data) > MAX_CLIP_BYTES or self.size + len(clip.data) > MAX_REPLY_MEDIA_BYTES:
            self.dropped += 1
        else:
            self.clips.append(clip)
            self.size += len(clip.data)
        return True

    def to_request(self, events: Iterable[ThalovantEvent]) -> tuple[str, ...]:
        """The speech pieces to ask the hub to render now (synth only; each piece once)."""
        if not self.synth:
            return ()
        pieces = speech_pieces(events)
        new = pieces[self.requested :]
        self.requested = max(self.requested, len(pieces))
        return new

    def waiting(self, events: Iterable[ThalovantEvent]) -> bool:
        """A synth ask still misses the clip of a speech piece (Rule 3)."""
        if not self.synth or self.refused:
            return False
        answered = list(self.answered)
        for piece in speech_pieces(events):
            key = speech_key(piece)
            if key not in answered:
                return True
            answered.remove(key)
        return False


class EarlyClips:
    """Clips that matched no pending speech yet (Rule 1), oldest first, bounded in count and age."""

    def __init__(self) -> None:
        self._clips: deque[tuple[ThalovantBinary, float]] = deque(maxlen=EARLY_CLIPS)

    def __len__(self) -> int:
        return len(self._clips)

    @property
    def size(self) -> int:
        """The bytes kept."""
        return sum(len(clip.data) for clip, _ in self._clips)

    def add(self, clip: ThalovantBinary, now: float) -> None:
        """Keep ``clip`` unless it is over the clip cap (the oldest go when full, in count or bytes)."""
        self._forget_old(now)
        if len(clip.data) > MAX_CLIP_BYTES:
            return
        self._clips.append((clip, now))
        while self.size > MAX_REPLY_MEDIA_BYTES:
            self._clips.popleft()

    def give(self, track: AudioTrack, events: Iterable[ThalovantEvent], now: float) -> None:
        """Hand ``track`` every kept clip it takes (an ask just said more)."""
        self._forget_old(now)
        said = tuple(events)
        kept = [(clip, at) for clip, at in self._clips if not track.offer(clip, said)]
        self._clips.clear()
        self._clips.extend(kept)

    def clear(self) -> None:
        self._clips.clear()

    def _forget_old(self, now: float) -> None:
        while self._clips and now - self._clips[0][1] > EARLY_SECONDS:
            self._clips.popleft()
