"""Audio that comes with an answer: skill sounds in the turn's events, and the rules that cap them.

Theory of operation
-------------------
Pure functions over JSON values and :class:`~thalovant.core.bus.binary.ThalovantBinary` clips.

Rule 1 (what is media). A *media event* is a bus event of a type in :data:`MEDIA_EVENTS`: a skill
queues a sound (``mycroft.audio.queue``) or plays one (``mycroft.audio.play_sound``). It names a
``uri``/``filename`` on the hub, or carries the sound inline: base64 under ``binary_data`` (HiveMind's
agent plugin) or ``audio``. Nothing here raises on odd shapes: a value that is not valid base64 carries
no audio.

Rule 2 (caps). One clip counts at most :data:`MAX_CLIP_BYTES` (4 MiB), one reply at most
:data:`MAX_REPLY_MEDIA_BYTES` (16 MiB) of clips, in arrival order. A media event whose inline sound is over
a cap, or would push the reply over its cap, is dropped and counted (``reply.dropped_media``); events
that only name a file cost nothing. Sizes of inline sounds are read off the base64 length (no decoding).

Rule 3 (speech keys). A TTS clip belongs to a speak when their texts have the same :func:`speech_key`:
whitespace collapsed and case folded (a hub's dialog transformers may do more; such clips do not match).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "INLINE_AUDIO_KEYS",
    "MAX_CLIP_BYTES",
    "MAX_REPLY_MEDIA_BYTES",
    "MEDIA_EVENTS",
    "inline_audio",
    "inline_size",
    "media_summary",
    "select_media",
    "speech_key",
]

#: Bus event types that carry (or name) a sound of the answer.
MEDIA_EVENTS: Final = frozenset({"mycroft.audio.queue", "mycroft.audio.play_sound"})
#: Where a media event may carry its sound inline (base64), first match wins.
INLINE_AUDIO_KEYS: Final = ("binary_data", "audio")
#: The cap on one clip's bytes (Rule 2).
MAX_CLIP_BYTES: Final = 4 * 1024 * 1024
#: The cap on all the clips of one reply (Rule 2).
MAX_REPLY_MEDIA_BYTES: Final = 16 * 1024 * 1024


def _inline_text(data: Mapping[str, Any]) -> str | None:
    for key in INLINE_AUDIO_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def inline_size(data: Mapping[str, Any]) -> int:
    """The bytes of the sound ``data`` carries inline, estimated from its base64 length (0: none).

    >>> inline_size({"binary_data": "UklGRg=="}), inline_size({"uri": "snd/ding.wav"})
    (4, 0)
    """
    text = _inline_text(data)
    if text is None:
        return 0
    stripped = "".join(text.split())
    return len(stripped) * 3 // 4 - len(stripped) + len(stripped.rstrip("="))


def inline_audio(data: Mapping[str, Any], *, max_bytes: int = MAX_CLIP_BYTES) -> bytes | None:
    """The sound ``data`` carries inline, decoded; None when there is none, it is not valid base64, or it
    is over ``max_bytes``.

    >>> inline_audio({"binary_data": "UklGRg=="}), inline_audio({"binary_data": "UklGRg=="}, max_bytes=3)
    (b'RIFF', None)

    Raises:
        ValueError: ``max_bytes`` is negative.
    """
    if max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    text = _inline_text(data)
    if text is None or inline_size(data) > max_bytes:
        return None
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) <= max_bytes else None


def select_media(
    events: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    max_clip: int = MAX_CLIP_BYTES,
    max_total: int = MAX_REPLY_MEDIA_BYTES,
) -> tuple[tuple[int, ...], int]:
    """Which media events a reply keeps (Rule 2): the indexes kept, in order, and how many were dropped.

    Args:
        events: ``(type, data)`` of each event of the turn, in arrival order (non-media ones are skipped).
        max_clip: the cap on one inline sound.
        max_total: the cap on all the inline sounds kept.

    >>> select_media([("speak", {}), ("mycroft.audio.queue", {"uri": "a.wav"})])
    ((1,), 0)
    """
    kept: list[int] = []
    dropped = total = 0
    for index, (kind, data) in enumerate(events):
        if kind not in MEDIA_EVENTS:
            continue
        size = inline_size(data)
        if size > max_clip or total + size > max_total:
            dropped += 1
            continue
        total += size
        kept.append(index)
    return tuple(kept), dropped


def media_summary(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready view of one media event without its bytes: type, where the sound is, inline size.

    >>> media_summary("mycroft.audio.queue", {"binary_data": "UklGRg==", "filename": "a.wav"})
    {'type': 'mycroft.audio.queue', 'uri': None, 'filename': 'a.wav', 'inline_bytes': 4}
    """
    uri, filename = data.get("uri"), data.get("filename")
    return {
        "type": kind,
        "uri": uri if isinstance(uri, str) else None,
        "filename": filename if isinstance(filename, str) else None,
        "inline_bytes": inline_size(data),
    }


def speech_key(text: str | None) -> str:
    """What a speak and its TTS clip must share (Rule 3): whitespace collapsed, case folded ("" for None).

    >>> speech_key("  Echo:  Hello ") == speech_key("echo: hello")
    True
    """
    return " ".join(text.split()).casefold() if isinstance(text, str) else ""
