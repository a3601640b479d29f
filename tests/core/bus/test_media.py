"""Skill sounds with the answer: media events, their caps, inline audio, and what ``as_dict`` shows."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.bus.binary import ThalovantBinary
from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.media import (
    MAX_CLIP_BYTES,
    MAX_REPLY_MEDIA_BYTES,
    inline_audio,
    inline_size,
    select_media,
    speech_key,
)
from thalovant.core.bus.reply import ThalovantReply, build_reply, in_speak_order

QUEUE = "mycroft.audio.queue"
MiB = 1024 * 1024


def b64(n: int) -> str:
    return base64.b64encode(bytes(n % 251 for n in range(n))).decode("ascii")


def sound(n: int, **extra: Any) -> ThalovantEvent:
    return ThalovantEvent(QUEUE, {"binary_data": b64(n), **extra})


def turn(*middle: ThalovantEvent) -> ThalovantReply:
    return build_reply(
        [ThalovantEvent("speak", {"utterance": "here"}), *middle, ThalovantEvent("ovos.utterance.handled")]
    )


def test_media_events_keep_arrival_order_and_decode_their_sound() -> None:
    reply = turn(sound(10, filename="a.wav"), ThalovantEvent("mycroft.audio.play_sound", {"uri": "snd/ding.wav"}))
    assert [e.type for e in reply.media_events] == [QUEUE, "mycroft.audio.play_sound"]
    assert reply.has_audio and reply.dropped_media == 0 and reply.text == "here"
    assert reply.media_events[0].audio_bytes() == bytes(n % 251 for n in range(10))
    assert reply.media_events[1].audio_bytes() is None  # names a file on the hub, carries nothing
    assert reply.media_events[0].is_media and not reply.events[0].is_media


def test_a_reply_without_sound_has_no_audio() -> None:
    reply = turn()
    assert (reply.media_events, reply.has_audio, reply.dropped_media, reply.audio) == ((), False, 0, ())


def test_caps_drop_a_big_clip_and_what_would_pass_the_reply_cap() -> None:
    big = sound(MAX_CLIP_BYTES + 3)
    fours = [sound(MAX_CLIP_BYTES, filename=f"{n}.wav") for n in range(5)]  # 4 fit in 16 MiB, the fifth does not
    reply = turn(big, *fours, ThalovantEvent(QUEUE, {"uri": "free.wav"}))
    assert len(reply.media_events) == 5  # four inline ones and the free one
    assert reply.dropped_media == 2
    assert reply.media_events[-1].data["uri"] == "free.wav"


def test_audio_bytes_rejects_bad_base64_and_a_negative_cap() -> None:
    assert ThalovantEvent(QUEUE, {"binary_data": "not base64!"}).audio_bytes() is None
    assert ThalovantEvent(QUEUE, {"binary_data": 7}).audio_bytes() is None
    assert ThalovantEvent(QUEUE, {"audio": b64(3)}).audio_bytes() == bytes([0, 1, 2])
    assert sound(100).audio_bytes(max_bytes=99) is None
    with pytest.raises(ValueError, match="max_bytes"):
        sound(1).audio_bytes(max_bytes=-1)


def test_as_dict_describes_media_and_audio_without_their_bytes() -> None:
    clip = ThalovantBinary(
        kind="tts_audio", data=b"RIFF" * 100, metadata={"utterance": "here", "lang": "en"}, bin_type=6
    )
    reply = build_reply(
        [ThalovantEvent("speak", {"utterance": "here"}), sound(30, filename="x.wav")], audio=[clip], dropped_audio=1
    )
    out = reply.as_dict()
    assert out["has_audio"] is True and out["dropped_media"] == 1
    assert out["media_events"] == [{"type": QUEUE, "uri": None, "filename": "x.wav", "inline_bytes": 30}]
    assert out["audio"] == [{"kind": "tts_audio", "utterance": "here", "lang": "en", "file_name": None, "bytes": 400}]
    assert "UklGR" not in json.dumps({k: out[k] for k in ("media_events", "audio")})
    assert reply.missing_audio == ()


def test_audio_is_put_in_speak_order_and_missing_speech_is_named() -> None:
    def clip(text: str) -> ThalovantBinary:
        return ThalovantBinary(kind="tts_audio", data=b"x", metadata={"utterance": text}, bin_type=6)

    events = [ThalovantEvent("speak", {"utterance": u}) for u in ("One", "two", "three")]
    reply = build_reply(events, audio=[clip("three"), clip("stray"), clip("one")])
    assert [c.utterance for c in reply.audio] == ["one", "three", "stray"]
    assert reply.missing_audio == ("two",)
    assert in_speak_order([], ["a"]) == ()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6 * MiB)), max_size=12))
def test_selected_media_respect_both_caps_and_keep_order(spec: list[tuple[bool, int]]) -> None:
    events = [(QUEUE if media else "speak", {"binary_data": "A" * (((size + 2) // 3) * 4)}) for media, size in spec]
    kept, dropped = select_media(events)
    sizes = [inline_size(events[i][1]) for i in kept]
    assert list(kept) == sorted(kept)
    assert all(events[i][0] == QUEUE for i in kept)
    assert all(s <= MAX_CLIP_BYTES for s in sizes) and sum(sizes) <= MAX_REPLY_MEDIA_BYTES
    assert len(kept) + dropped == sum(1 for media, _ in spec if media)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_inline_size_is_the_decoded_size(data: bytes) -> None:
    field = {"binary_data": base64.b64encode(data).decode("ascii")}
    assert inline_size(field) == len(data)
    assert inline_audio(field) == (data or None)  # an empty string carries nothing


@given(st.text(max_size=40))
def test_speech_key_ignores_case_and_spacing(text: str) -> None:
    assert speech_key(f"  {text.upper()}\n") == speech_key(" ".join(text.split()).upper())
    assert speech_key(None) == ""
