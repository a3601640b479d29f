"""Correlator Rule 5: TTS clips attached to the ask whose speech they speak; ``synth`` asks wait for them."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from thalovant.core.bus.binary import ThalovantBinary, binary_message
from thalovant.core.bus.events import normalize
from thalovant.core.client.correlate import (
    AskFailed,
    AskFinished,
    AskStarted,
    Correlator,
    EventArrived,
    FrameArrived,
    LinkLost,
    SynthWanted,
)
from thalovant.core.client.speech_audio import EARLY_CLIPS, EARLY_SECONDS, AudioTrack, EarlyClips
from thalovant.core.machine import Output, Tick
from thalovant.core.wire.message import HiveMessage, MsgType


def said(rid: str, typ: str, data: dict[str, Any] | None = None) -> EventArrived:
    return EventArrived(event=normalize({"type": typ, "data": data or {}, "context": {"request_id": rid}}).unwrap())


def speak(rid: str, text: str) -> EventArrived:
    return said(rid, "speak", {"utterance": text, "lang": "en-us"})


def handled(rid: str) -> EventArrived:
    return said(rid, "ovos.utterance.handled", {"name": "echo.skill"})


def clip(text: str | None, data: bytes = b"RIFF", kind: int = 6) -> FrameArrived:
    meta = {} if text is None else {"utterance": text, "lang": "en-us"}
    return FrameArrived(message=binary_message(ThalovantBinary(kind="", data=data, metadata=meta, bin_type=kind)))


def ask(c: Correlator, rid: str, *, synth: bool = False, deadline: float = 10.0, settle: float = 0.0) -> None:
    c.handle(AskStarted(ask_id=rid, request_id=rid, deadline=deadline, synth=synth, settle=settle), now=0.0)


def finished(out: list[Output]) -> list[AskFinished]:
    return [o for o in out if isinstance(o, AskFinished)]


def test_a_clip_for_the_speech_of_an_ask_is_attached_to_its_reply() -> None:
    c = Correlator()
    ask(c, "a")
    c.handle(speak("a", "Echo: hi"), now=0.1)
    assert c.handle(clip("echo:  HI"), now=0.2) == []
    [end] = finished(c.handle(handled("a"), now=0.3))
    assert [b.data for b in end.reply.audio] == [b"RIFF"] and end.reply.has_audio
    assert end.reply.missing_audio == ()


def test_without_synth_the_ask_does_not_wait_for_audio() -> None:
    c = Correlator()
    ask(c, "a")
    c.handle(speak("a", "hi"), now=0.1)
    [end] = finished(c.handle(handled("a"), now=0.2))
    assert end.reply.audio == () and end.reply.missing_audio == ("hi",)
    assert not any(isinstance(o, SynthWanted) for o in c.handle(speak("a", "late"), now=0.3))


def test_a_synth_ask_requests_each_piece_and_waits_for_its_clips() -> None:
    c = Correlator()
    ask(c, "a", synth=True)
    out = c.handle(speak("a", "one"), now=0.1) + c.handle(speak("a", "two"), now=0.2)
    wanted = [o for o in out if isinstance(o, SynthWanted)]
    assert [(w.ask_id, w.utterance, w.lang) for w in wanted] == [("a", "one", "en-us"), ("a", "two", "en-us")]
    assert finished(c.handle(handled("a"), now=0.3)) == []  # held: no clip yet
    assert c.deadline == 10.0
    assert finished(c.handle(clip("two"), now=0.4)) == []
    [end] = finished(c.handle(clip("one"), now=0.5))
    assert [b.utterance for b in end.reply.audio] == ["one", "two"]  # speak order, not arrival order
    assert end.reply.handled and not end.reply.timed_out and c.pending == ()


def test_a_synth_ask_ends_at_its_deadline_with_the_text_and_what_audio_came() -> None:
    c = Correlator()
    ask(c, "a", synth=True, deadline=5.0)
    c.handle(speak("a", "one"), now=0.1)
    c.handle(speak("a", "two"), now=0.1)
    c.handle(handled("a"), now=0.2)
    c.handle(clip("one"), now=0.3)
    assert finished(c.handle(Tick(), now=4.9)) == []
    [end] = finished(c.handle(Tick(), now=5.0))
    assert end.reply.text == "one two" and end.reply.handled and not end.reply.timed_out
    assert end.reply.missing_audio == ("two",)


def test_a_clip_that_overtakes_its_speak_is_kept_until_the_speak_comes() -> None:
    c = Correlator()
    ask(c, "a", synth=True)
    c.handle(clip("hi"), now=0.1)
    c.handle(speak("a", "hi"), now=0.2)
    [end] = finished(c.handle(handled("a"), now=0.3))
    assert [b.utterance for b in end.reply.audio] == ["hi"]


def test_settle_first_then_audio() -> None:
    c = Correlator()
    ask(c, "a", synth=True, settle=1.0)
    c.handle(speak("a", "hi"), now=0.1)
    assert finished(c.handle(handled("a"), now=0.2)) == []
    assert c.deadline == 1.1
    assert finished(c.handle(Tick(), now=1.1)) == []  # settled; now the clip is missing
    assert c.deadline == 10.0
    [end] = finished(c.handle(clip("hi"), now=2.0))
    assert len(end.reply.audio) == 1


def test_a_refused_synth_releases_the_wait() -> None:
    c = Correlator()
    ask(c, "a", synth=True)
    c.handle(speak("a", "hi"), now=0.1)
    c.handle(handled("a"), now=0.2)
    denial = {"denied_type": "speak:synth", "code": "acl_disallowed_type", "reason": "no"}
    refusal = EventArrived(event=normalize({"type": "hive.policy.denied", "data": denial, "context": {}}).unwrap())
    [end] = finished(c.handle(refusal, now=0.3))
    assert end.reply.audio == () and end.reply.ok


def test_clips_go_to_the_oldest_ask_that_said_it_once_per_saying() -> None:
    c = Correlator()
    ask(c, "a")
    ask(c, "b")
    c.handle(speak("a", "same"), now=0.1)
    c.handle(speak("b", "same"), now=0.1)
    c.handle(clip("same", b"1"), now=0.2)
    c.handle(clip("same", b"2"), now=0.2)
    c.handle(clip("same", b"3"), now=0.2)  # nobody said it a third time: kept aside
    [a] = finished(c.handle(handled("a"), now=0.3))
    [b] = finished(c.handle(handled("b"), now=0.3))
    assert [x.data for x in a.reply.audio] == [b"1"] and [x.data for x in b.reply.audio] == [b"2"]


def test_other_frames_and_clips_without_utterance_are_ignored() -> None:
    c = Correlator()
    assert c.handle(clip("nobody asked"), now=0.0) == []  # idle
    ask(c, "a")
    c.handle(speak("a", "hi"), now=0.1)
    assert c.handle(clip(None), now=0.2) == []
    assert c.handle(clip("hi", kind=3), now=0.2) == []  # a file, not TTS
    ping = HiveMessage(msg_type=MsgType.PING, payload={})
    assert c.handle(FrameArrived(message=ping), now=0.2) == []
    [end] = finished(c.handle(handled("a"), now=0.3))
    assert end.reply.audio == ()


def test_a_clip_over_the_cap_is_dropped_and_counted() -> None:
    c = Correlator()
    ask(c, "a", synth=True)
    c.handle(speak("a", "hi"), now=0.1)
    c.handle(handled("a"), now=0.2)
    [end] = finished(c.handle(clip("hi", b"x" * (4 * 1024 * 1024 + 1)), now=0.3))  # answered, though dropped
    assert end.reply.audio == () and end.reply.dropped_audio == 1 and end.reply.dropped_media == 1


def test_early_clips_are_bounded_in_count_and_age() -> None:
    early = EarlyClips()
    for n in range(EARLY_CLIPS + 3):
        early.add(ThalovantBinary(kind="tts_audio", data=b"x", metadata={"utterance": str(n)}, bin_type=6), 0.0)
    assert len(early) == EARLY_CLIPS
    early.add(
        ThalovantBinary(kind="tts_audio", data=b"x", metadata={"utterance": "new"}, bin_type=6), EARLY_SECONDS + 1
    )
    assert len(early) == 1


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=6),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=8),
    st.booleans(),
)
def test_property_clips_attach_only_to_said_speech_and_at_most_once_each(
    pieces: list[str], clips: list[str], synth: bool
) -> None:
    c = Correlator()
    ask(c, "r", synth=synth)
    wanted: list[str] = []
    for n, piece in enumerate(pieces):
        out = c.handle(speak("r", f"{piece} {n}"), now=0.1)
        wanted += [o.utterance for o in out if isinstance(o, SynthWanted)]
    for n, name in enumerate(clips):
        c.handle(clip(f"{name} {n}"), now=0.2)
    out = c.handle(handled("r"), now=0.3) + c.handle(Tick(), now=10.0)
    [end] = finished(out)
    texts = [f"{p} {n}" for n, p in enumerate(pieces)]
    assert wanted == (texts if synth else [])
    assert all(b.utterance in texts for b in end.reply.audio)
    assert len({b.utterance for b in end.reply.audio}) == len(end.reply.audio)
    assert [b.utterance for b in end.reply.audio] == [t for t in texts if t in {b.utterance for b in end.reply.audio}]
    track = AudioTrack(synth=synth)
    assert not track.waiting([])


def test_early_clips_are_bounded_in_bytes_and_skip_clips_over_the_cap() -> None:
    early = EarlyClips()

    def big(n: int, size: int) -> ThalovantBinary:
        return ThalovantBinary(kind="tts_audio", data=bytes(size), metadata={"utterance": str(n)}, bin_type=6)

    early.add(big(0, 4 * 1024 * 1024 + 1), 0.0)
    assert len(early) == 0
    for n in range(6):
        early.add(big(n, 4 * 1024 * 1024), 0.0)
    assert len(early) == 4 and early.size == 16 * 1024 * 1024


class AudioModel(RuleBasedStateMachine):
    """Asks with and without synth, speech, end signals, TTS clips, time and link loss, in any order.

    Invariants: every ask ends exactly once; the deadline is the earliest pending one; SynthWanted comes once per
    speech piece of a synth ask and never for another; a reply's clips speak its speech, each piece at most once;
    a synth ask that ends before its deadline (not by a lost link) has a clip for every piece.
    """

    def __init__(self) -> None:
        super().__init__()
        self.c = Correlator(quiet_grace=0.0)
        self.now = 0.0
        self.count = 0
        self.pending: dict[str, dict[str, Any]] = {}
        self.ended: set[str] = set()
        self.said: list[str] = []

    def feed(self, inp: Any) -> list[Output]:
        out = self.c.handle(inp, now=self.now)
        for o in out:
            if isinstance(o, SynthWanted):
                ask = self.pending[o.ask_id]
                assert ask["synth"] and o.utterance in ask["speech"]
                assert o.utterance not in ask["wanted"]
                ask["wanted"].append(o.utterance)
            elif isinstance(o, AskFinished | AskFailed):
                assert o.ask_id in self.pending and o.ask_id not in self.ended
                ask = self.pending.pop(o.ask_id)
                self.ended.add(o.ask_id)
                texts = [c.utterance for c in o.reply.audio]
                assert set(texts) <= set(o.reply.utterances) and len(set(texts)) == len(texts)
                early = isinstance(o, AskFinished) and self.now < ask["deadline"] and not isinstance(inp, LinkLost)
                if ask["synth"] and early and o.reply.handled:
                    assert o.reply.missing_audio == (), o.reply
        return out

    @rule(synth=st.booleans(), timeout=st.floats(0.1, 5.0))
    def start(self, synth: bool, timeout: float) -> None:
        self.count += 1
        ask_id = f"a{self.count}"
        deadline = self.now + timeout
        self.feed(AskStarted(ask_id=ask_id, request_id=ask_id, deadline=deadline, synth=synth))
        self.pending[ask_id] = {"synth": synth, "deadline": deadline, "speech": [], "wanted": []}

    @precondition(lambda self: self.pending)
    @rule(n=st.integers(0, 20))
    def speak(self, n: int) -> None:
        ask_id = sorted(self.pending)[n % len(self.pending)]
        self.count += 1
        text = f"said {self.count}"
        self.pending[ask_id]["speech"].append(text)
        self.said.append(text)
        self.feed(speak(ask_id, text))

    @precondition(lambda self: self.pending)
    @rule(n=st.integers(0, 20))
    def end_turn(self, n: int) -> None:
        self.feed(handled(sorted(self.pending)[n % len(self.pending)]))

    @precondition(lambda self: self.said)
    @rule(n=st.integers(0, 50))
    def clip_arrives(self, n: int) -> None:
        self.feed(clip(self.said[n % len(self.said)]))

    @rule(dt=st.floats(0.0, 2.0))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.feed(Tick())

    @rule()
    def link_lost(self) -> None:
        self.feed(LinkLost(reason="gone"))
        assert not self.pending

    @invariant()
    def deadline_is_earliest_pending(self) -> None:
        assert self.c.deadline is None or self.c.deadline <= min(p["deadline"] for p in self.pending.values())
        if not self.pending:
            assert self.c.deadline is None

    @invariant()
    def pending_agree(self) -> None:
        assert set(self.c.pending) == set(self.pending)

    def teardown(self) -> None:
        self.feed(LinkLost(reason="teardown"))
        assert not self.pending


AudioModel.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestAudioModel = AudioModel.TestCase
