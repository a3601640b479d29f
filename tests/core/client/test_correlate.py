"""The Correlator machine: correlation, ends, denial attribution, dedup, deadline; ConversationState."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.bus.events import ThalovantEvent, normalize
from thalovant.core.bus.reply import build_reply
from thalovant.core.client.conversation_state import ConversationState
from thalovant.core.client.correlate import (
    TABLE,
    AskCancelled,
    AskFailed,
    AskFinished,
    AskProgress,
    AskStarted,
    Correlator,
    CorrelatorState,
    EventArrived,
    FrameArrived,
    LinkLost,
    MessageSent,
    UnattributedDenial,
)
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Input, Output, Tick

UTT = "recognizer_loop:utterance"


def ev(typ: str, data: dict[str, Any] | None = None, **context: Any) -> ThalovantEvent:
    return normalize({"type": typ, "data": data or {}, "context": context}).unwrap()


def reply_to(
    request_id: str, typ: str, data: dict[str, Any] | None = None, *, hub_session: str = "conn-1"
) -> EventArrived:
    """A reply as hub 4.x sends it: request id kept, session REWRITTEN to the connection's (P13)."""
    context = {"request_id": request_id, "thalovant_request_id": request_id, "session": {"session_id": hub_session}}
    return EventArrived(event=ev(typ, data, **context))


def speak(request_id: str, text: str, **kw: Any) -> EventArrived:
    return reply_to(request_id, "speak", {"utterance": text}, **kw)


def start(
    c: Correlator,
    ask_id: str,
    *,
    deadline: float = 10.0,
    session_id: str | None = None,
    msg_type: str = UTT,
    now: float = 0.0,
) -> None:
    assert (
        c.handle(
            AskStarted(
                ask_id=ask_id, request_id=f"req-{ask_id}", session_id=session_id, msg_type=msg_type, deadline=deadline
            ),
            now=now,
        )
        == []
    )


def ends(outputs: list[Output]) -> list[Output]:
    return [o for o in outputs if isinstance(o, AskFinished | AskFailed)]


HUB5_DENIAL_NO_ID = EventArrived(
    event=ev(
        "hive.policy.denied",
        {"denied_type": UTT, "code": "acl_disallowed_type", "reason": "not allowed", "data": {"allowed": []}},
        source="hivemind-core",
    )
)


# ------------------------------------------------------------------ correlation and ends


def test_user_session_is_rewritten_by_hub4_but_request_id_correlates() -> None:
    c = Correlator()
    start(c, "a", session_id="user-conv-1")
    out = c.handle(speak("req-a", "echo: hi"), now=1.0)
    assert [type(o) for o in out] == [AskProgress]
    out = c.handle(reply_to("req-a", "ovos.utterance.handled", {"name": "echo.skill"}), now=1.1)
    (done,) = ends(out)
    assert isinstance(done, AskFinished)
    assert done.reply.text == "echo: hi"
    assert done.reply.ok and done.reply.handled
    assert done.reply.session_id == "user-conv-1"  # the user's id, not the hub's "conn-1"
    assert done.reply.request_id == "req-a"
    assert c.state is CorrelatorState.IDLE and c.deadline is None


def test_handled_after_speech_ends_at_once_and_late_events_are_ignored() -> None:
    c = Correlator()
    start(c, "a")
    c.handle(speak("req-a", "hi"), now=0.9)
    assert ends(c.handle(reply_to("req-a", "ovos.utterance.handled"), now=1.0))
    assert c.handle(speak("req-a", "late"), now=1.01) == []


def test_handled_before_any_speech_waits_the_quiet_grace_for_it() -> None:
    # Rule 2c: hub 4.x can deliver handled before the speak it follows (a thread pool; MQTT's paho race)
    c = Correlator(quiet_grace=0.15)
    start(c, "a")
    assert not ends(c.handle(reply_to("req-a", "ovos.utterance.handled"), now=1.0))
    assert c.deadline == pytest.approx(1.15)
    out = c.handle(speak("req-a", "overtaken"), now=1.02)  # the first speech finishes it at once
    finished = [o for o in out if isinstance(o, AskFinished)]
    assert len(finished) == 1 and finished[0].reply.text == "overtaken" and finished[0].reply.handled
    assert c.state is CorrelatorState.IDLE


def test_handled_with_no_speech_finishes_at_the_end_of_the_grace_with_an_empty_reply() -> None:
    c = Correlator(quiet_grace=0.15)
    start(c, "a")
    c.handle(reply_to("req-a", "ovos.utterance.handled"), now=1.0)
    assert c.handle(Tick(), now=1.1) == []
    out = c.handle(Tick(), now=1.15)
    assert [type(o) for o in out] == [AskFinished] and out[0].reply.text == "" and not out[0].reply.timed_out


def test_without_the_grace_handled_ends_at_once() -> None:
    c = Correlator(quiet_grace=0.0)
    start(c, "a")
    assert ends(c.handle(reply_to("req-a", "ovos.utterance.handled"), now=1.0))
    assert c.handle(speak("req-a", "late"), now=1.01) == []


def test_thalovant_request_id_alone_correlates() -> None:
    c = Correlator()
    start(c, "a")
    event = ev("speak", {"utterance": "x"}, thalovant_request_id="req-a", request_id="someone-else")
    assert c.handle(EventArrived(event=event), now=1.0) == [AskProgress(ask_id="a", event=event)]


@pytest.mark.parametrize("typ", ["complete_intent_failure", "ovos.intent.unmatched"])
def test_unanswered_is_an_outcome_not_a_failure(typ: str) -> None:
    c = Correlator()
    start(c, "a")
    (done,) = ends(c.handle(reply_to("req-a", typ, {"utterance": "user words"}), now=1.0))
    assert isinstance(done, AskFinished)
    assert done.reply.unanswered and not done.reply.ok
    assert done.reply.text == ""  # the user's own words are not the answer
    assert done.reply.failure_event is not None and done.reply.failure_event.type == typ


def test_timeout_keeps_speech() -> None:
    c = Correlator()
    start(c, "a", deadline=5.0)
    c.handle(speak("req-a", "echo: slow"), now=1.0)
    assert c.handle(Tick(), now=4.999) == []  # early tick harmless
    (done,) = ends(c.handle(Tick(), now=5.0))
    assert isinstance(done, AskFinished)
    assert (done.reply.text, done.reply.timed_out, done.reply.handled, done.reply.ok) == (
        "echo: slow",
        True,
        False,
        False,
    )


def test_timeout_without_speech_fails_with_partial_reply() -> None:
    c = Correlator()
    start(c, "a", deadline=5.0)
    c.handle(reply_to("req-a", "ovos.utterance.cancelled", {"cancel_reason": "x"}), now=1.0)
    (done,) = ends(c.handle(Tick(), now=6.0))
    assert isinstance(done, AskFailed) and done.kind == "timeout"
    assert [e.type for e in done.reply.events] == ["ovos.utterance.cancelled"]


def test_link_lost_fails_every_pending_ask_once() -> None:
    c = Correlator()
    start(c, "a")
    start(c, "b")
    c.handle(speak("req-b", "partial"), now=1.0)
    out = c.handle(LinkLost(reason="socket closed\x1b[0m"), now=2.0)
    assert [(o.ask_id, o.kind, o.reason) for o in out if isinstance(o, AskFailed)] == [
        ("a", "link_lost", "socket closed [0m"),
        ("b", "link_lost", "socket closed [0m"),
    ]
    assert out[1].reply.text == "partial"  # type: ignore[attr-defined]
    assert c.handle(LinkLost(), now=3.0) == []


def test_cancel() -> None:
    c = Correlator()
    start(c, "a")
    (done,) = c.handle(AskCancelled(ask_id="a"), now=1.0)
    assert isinstance(done, AskFailed) and done.kind == "cancelled"
    with pytest.raises(LocalProtocolError):
        c.handle(AskCancelled(ask_id="a"), now=1.0)


def test_concurrent_asks_do_not_collect_each_others_speech() -> None:
    c = Correlator()
    start(c, "a")
    start(c, "b")
    c.handle(speak("req-b", "for b"), now=1.0)
    c.handle(speak("req-a", "for a"), now=1.0)
    (a,) = ends(c.handle(reply_to("req-a", "ovos.utterance.handled"), now=1.1))
    (b,) = ends(c.handle(reply_to("req-b", "ovos.utterance.handled"), now=1.2))
    assert isinstance(a, AskFinished) and isinstance(b, AskFinished)
    assert (a.reply.text, b.reply.text) == ("for a", "for b")


def test_stale_session_request_id_does_not_steal_a_late_reply() -> None:
    # hub 4.x adopts the client's whole session as the connection session, so a late
    # reply to "a" can carry session.request_id of the newer ask "b" (spec §9.1)
    c = Correlator(quiet_grace=0.0)
    start(c, "a")
    c.handle(reply_to("req-a", "ovos.utterance.handled"), now=1.0)
    start(c, "b")
    late = ev("speak", {"utterance": "late for a"}, request_id="req-a", session={"request_id": "req-b"})
    assert c.handle(EventArrived(event=late), now=1.1) == []
    # an event that only has the session id still correlates through it
    only_session = ev("speak", {"utterance": "for b"}, session={"request_id": "req-b"})
    assert [type(o) for o in c.handle(EventArrived(event=only_session), now=1.2)] == [AskProgress]


def test_foreign_request_ids_are_ignored() -> None:
    c = Correlator()
    start(c, "a")
    assert c.handle(speak("req-other", "not ours"), now=1.0) == []


def test_event_without_ids_uses_session_only_when_unambiguous() -> None:
    c = Correlator()
    start(c, "a", session_id="conv")
    hub5 = EventArrived(event=ev("speak", {"utterance": "x"}, session={"session_id": "conv"}))
    assert [type(o) for o in c.handle(hub5, now=1.0)] == [AskProgress]
    start(c, "b", session_id="conv")
    hub5b = EventArrived(event=ev("speak", {"utterance": "y"}, session={"session_id": "conv"}))
    assert c.handle(hub5b, now=1.0) == []  # two asks share the session: ambiguous
    assert c.handle(EventArrived(event=ev("speak", {"utterance": "z"})), now=1.0) == []


def test_duplicate_deliveries_are_dropped() -> None:
    c = Correlator()
    start(c, "a")
    first = c.handle(speak("req-a", "once"), now=1.0)
    assert c.handle(speak("req-a", "once"), now=1.0) == []  # P18: same message twice
    (done,) = ends(c.handle(reply_to("req-a", "ovos.utterance.handled"), now=1.1))
    assert len(first) == 1 and isinstance(done, AskFinished)
    assert len(done.reply.events) == 2


def test_identical_denials_for_separate_sends_are_not_swallowed() -> None:
    # hub 5.x sends byte-identical denials; only copies inside the dedup window are duplicates
    c = Correlator(dedup_window=2.0)
    (first,) = c.handle(HUB5_DENIAL_NO_ID, now=100.0)
    assert c.handle(HUB5_DENIAL_NO_ID, now=101.0) == []
    (second,) = c.handle(HUB5_DENIAL_NO_ID, now=103.5)
    assert isinstance(first, UnattributedDenial) and isinstance(second, UnattributedDenial)


def test_dedup_memory_is_bounded() -> None:
    c = Correlator(dedup_size=2)
    start(c, "a")
    assert c.handle(speak("req-a", "1"), now=1.0)
    assert c.handle(speak("req-a", "2"), now=1.0)
    assert c.handle(speak("req-a", "3"), now=1.0)
    assert c.handle(speak("req-a", "1"), now=1.0)  # forgotten, so delivered again


# ------------------------------------------------------------------ denials


def test_denial_with_request_id_belongs_to_that_ask_only() -> None:
    c = Correlator()
    start(c, "a")
    start(c, "b")
    deny = reply_to("req-b", "hive.policy.denied", {"reason": "policy denied by echo skill", "code": "policy_denied"})
    out = c.handle(deny, now=1.0)
    (failed,) = ends(out)
    assert isinstance(failed, AskFailed) and failed.ask_id == "b" and failed.kind == "policy_denied"
    assert failed.denial is not None and failed.denial.code == "policy_denied"
    assert failed.reason == "policy denied by echo skill (policy_denied)"
    assert c.pending == ("a",)


def test_denial_with_unknown_request_id_is_unattributed() -> None:
    c = Correlator()
    start(c, "a")
    (out,) = c.handle(reply_to("req-zzz", "hive.policy.denied", {"code": "x"}), now=1.0)
    assert isinstance(out, UnattributedDenial) and out.denial.code == "x"
    assert c.pending == ("a",)


def test_uncorrelated_denial_goes_to_the_single_ask_of_that_type() -> None:
    c = Correlator()
    start(c, "a")
    out = c.handle(HUB5_DENIAL_NO_ID, now=1.0)
    (failed,) = ends(out)
    assert isinstance(failed, AskFailed) and failed.kind == "policy_denied" and failed.ask_id == "a"
    assert failed.denial is not None and failed.denial.denied_type == UTT


@pytest.mark.parametrize(
    ("setup", "attributed"),
    [
        # two asks of the denied type: ambiguous
        (lambda c: (start(c, "a"), start(c, "b")), None),
        # one ask of that type + one of another type: still exactly one candidate
        (lambda c: (start(c, "a"), start(c, "b", msg_type="other.type")), "a"),
        # a recent fire-and-forget send of the same type could have caused it
        (lambda c: (start(c, "a"), c.handle(MessageSent(msg_type=UTT, request_id="ff"), now=0.5)), None),
        # a recent send of another type could not
        (lambda c: (start(c, "a"), c.handle(MessageSent(msg_type="speak"), now=0.5)), "a"),
        # a finished ask of the same type moments ago could have caused it
        (
            lambda c: (start(c, "x"), c.handle(reply_to("req-x", "ovos.utterance.handled"), now=0.2), start(c, "a")),
            None,
        ),
        # sends older than the window no longer count
        (lambda c: (c.handle(MessageSent(msg_type=UTT), now=-20.0), start(c, "a")), "a"),
        # no ask of that type
        (lambda c: start(c, "b", msg_type="other.type"), None),
        # nothing in flight at all
        (lambda c: None, None),
    ],
)
def test_uncorrelated_denial_attribution_rule(setup: Any, attributed: str | None) -> None:
    c = Correlator(send_window=10.0)
    setup(c)
    before = c.pending
    out = c.handle(HUB5_DENIAL_NO_ID, now=1.0)
    if attributed is None:
        assert [type(o) for o in out] == [UnattributedDenial]
        assert c.pending == before
    else:
        failed = ends(out)
        assert [(f.ask_id, getattr(f, "kind", None)) for f in failed] == [(attributed, "policy_denied")]


def test_uncorrelated_denial_without_type_needs_a_single_ask_and_no_other_send() -> None:
    bare = EventArrived(event=ev("hive.policy.denied", {"code": "policy_error"}))
    c = Correlator()
    start(c, "a", msg_type="anything")
    assert ends(c.handle(bare, now=1.0))
    c = Correlator()
    start(c, "a")
    c.handle(MessageSent(msg_type="speak"), now=0.5)
    assert [type(o) for o in c.handle(bare, now=1.0)] == [UnattributedDenial]


def test_link_lost_forgets_recent_sends() -> None:
    c = Correlator()
    c.handle(MessageSent(msg_type=UTT), now=0.0)
    c.handle(LinkLost(reason="x"), now=0.1)
    start(c, "a", now=0.2)
    assert ends(c.handle(HUB5_DENIAL_NO_ID, now=1.0))


# ------------------------------------------------------------------ misuse and table


@pytest.mark.parametrize(
    "bad",
    [
        AskStarted(ask_id="", request_id="r", deadline=1.0),
        AskStarted(ask_id="a", request_id="", deadline=1.0),
        AskStarted(ask_id="a", request_id="r", deadline=float("nan")),
        AskStarted(ask_id="dup", request_id="fresh", deadline=1.0),
        AskStarted(ask_id="fresh", request_id="req-dup", deadline=1.0),
        Input(),
    ],
)
def test_misuse_raises_and_leaves_state_unchanged(bad: Input) -> None:
    c = Correlator()
    start(c, "dup", deadline=3.0)
    with pytest.raises(LocalProtocolError):
        c.handle(bad, now=0.0)
    assert (c.pending, c.deadline, c.state) == (("dup",), 3.0, CorrelatorState.WAITING)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(LocalProtocolError):
        Correlator(send_window=-1)
    with pytest.raises(LocalProtocolError):
        Correlator(dedup_size=0)
    with pytest.raises(LocalProtocolError):
        Correlator(dedup_window=float("nan"))


def test_transition_table_covers_every_state_and_input() -> None:
    inputs = {AskStarted, MessageSent, EventArrived, FrameArrived, AskCancelled, LinkLost, Tick}
    assert set(TABLE) == {(s, i) for s in CorrelatorState for i in inputs}
    assert Correlator().finished is False


def test_the_table_says_which_steps_can_end_the_last_ask() -> None:
    c = Correlator()
    row = TABLE[(CorrelatorState.IDLE, AskStarted)]
    start(c, "a", deadline=5.0)
    assert c.state is row.to is CorrelatorState.WAITING
    row = TABLE[(CorrelatorState.WAITING, EventArrived)]
    c.handle(speak("req-a", "hi"), now=1.0)
    assert c.state is row.to
    c.handle(reply_to("req-a", "ovos.utterance.handled", {}), now=1.1)
    assert c.state in row.exits
    lost = TABLE[(CorrelatorState.WAITING, LinkLost)]
    start(c, "b", deadline=5.0)
    c.handle(LinkLost(reason="gone"), now=2.0)
    assert c.state is lost.to is CorrelatorState.IDLE


def test_deadline_is_earliest_pending() -> None:
    c = Correlator()
    start(c, "a", deadline=9.0)
    start(c, "b", deadline=4.0)
    start(c, "c", deadline=6.0)
    assert c.deadline == 4.0
    c.handle(AskCancelled(ask_id="b"), now=1.0)
    assert c.deadline == 6.0
    assert [o.ask_id for o in ends(c.handle(Tick(), now=9.0))] == ["a", "c"]  # type: ignore[attr-defined]
    assert c.deadline is None


# ------------------------------------------------------------------ conversation carry


def handled_with_session(session: dict[str, Any]) -> ThalovantEvent:
    return ev("ovos.utterance.handled", {}, request_id="r", session=session)


def test_conversation_state_carries_hub5_session_to_next_turn() -> None:
    hub_session = {
        "session_id": "conv",
        "active_skills": [["echo.skill", 1.0]],
        "utterance_states": {"echo.skill": "response"},
        "context": {"frame": 1},
        "lang": "en-us",
        "site_id": "hub-site",
        "blacklisted_skills": ["x"],
        "request_id": "r",
    }
    state = ConversationState("conv")
    reply = build_reply(
        [ev("speak", {"utterance": "a"}, session={"session_id": "conv", "old": 1}), handled_with_session(hub_session)]
    )
    state = state.update_from_reply(reply)
    assert state.carried == {
        "active_skills": [["echo.skill", 1.0]],
        "utterance_states": {"echo.skill": "response"},
        "context": {"frame": 1},
    }
    ctx = state.context_for_next_turn({"session": {"lang": "de"}, "x": 1})
    assert ctx == {
        "x": 1,
        "session": {
            "active_skills": [["echo.skill", 1.0]],
            "utterance_states": {"echo.skill": "response"},
            "context": {"frame": 1},
            "lang": "de",
            "session_id": "conv",
        },
    }
    ctx["session"]["context"]["frame"] = 2
    assert state.carried["context"] == {"frame": 1}  # the state is not aliased


def test_conversation_state_ignores_hub4_connection_session_and_junk() -> None:
    state = ConversationState("conv", {"active_skills": ["kept"]})
    hub4 = build_reply([handled_with_session({"session_id": "conn-1", "active_skills": ["other"]})])
    assert state.update_from_reply(hub4) is state
    huge = build_reply([handled_with_session({"session_id": "conv", **{f"k{i}": i for i in range(100)}})])
    assert state.update_from_reply(huge) is state
    assert state.update_from_reply(build_reply([])) is state
    assert ConversationState("c").context_for_next_turn() == {"session": {"session_id": "c"}}


def test_conversation_state_prefers_handled_event() -> None:
    reply = build_reply(
        [
            handled_with_session({"session_id": "conv", "v": "handled"}),
            ev("speak", {"utterance": "late"}, session={"session_id": "conv", "v": "speak"}),
        ]
    )
    assert ConversationState("conv").update_from_reply(reply).carried == {"v": "handled"}


# ------------------------------------------------------------------ garbage


IDS = st.sampled_from(["req-a", "req-b", "req-x", "", None, 5])
SHAPED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | IDS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["request_id", "thalovant_request_id", "session", "session_id", "utterance", "denied_type", "code"]
            )
            | st.text(max_size=4),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)
TYPES = st.sampled_from(
    ["speak", "ovos.utterance.handled", "complete_intent_failure", "ovos.intent.unmatched", "hive.policy.denied", "x"]
)
STEP = st.one_of(
    st.tuples(st.just("event"), TYPES, SHAPED, SHAPED),
    st.tuples(st.just("tick"), st.floats(0, 5)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(STEP, max_size=25))
def test_garbage_events_never_raise_and_asks_end_at_most_once(steps: list[tuple[Any, ...]]) -> None:
    c = Correlator()
    start(c, "a", deadline=6.0, session_id="conv")
    start(c, "b", deadline=8.0, session_id="conv", msg_type="other")
    now, ended = 0.0, []
    for step in steps:
        if step[0] == "tick":
            now += step[1]
            out = c.handle(Tick(), now=now)
        else:
            _, typ, data, context = step
            raw = {
                "type": typ,
                "data": data if isinstance(data, dict) else {},
                "context": context if isinstance(context, dict) else {},
            }
            out = c.handle(EventArrived(event=normalize(raw).unwrap()), now=now)
        assert all(isinstance(o, Output) for o in out)
        ended += [o.ask_id for o in out if isinstance(o, AskFinished | AskFailed)]
    ended += [o.ask_id for o in c.handle(LinkLost(), now=now) if isinstance(o, AskFinished | AskFailed)]
    assert sorted(ended) == ["a", "b"]


# ------------------------------------------------------------------ replay traces


def test_inputs_and_outputs_survive_a_replay_trace_round_trip() -> None:
    import json as _json

    from thalovant.core.bus import events, refusal
    from thalovant.core.bus import reply as events_reply
    from thalovant.core.client import correlate
    from thalovant.core.machine import Tick as _Tick
    from thalovant.core.trace import TypeRegistry, decode_value, encode_value

    registry = TypeRegistry(
        [
            correlate.AskStarted,
            correlate.EventArrived,
            correlate.AskProgress,
            correlate.AskFinished,
            correlate.AskFailed,
            correlate.UnattributedDenial,
            correlate.LinkLost,
            events.ThalovantEvent,
            events_reply.ThalovantReply,
            refusal.Denial,
            _Tick,
        ]
    )
    c = Correlator()
    inputs: list[Input] = [
        AskStarted(ask_id="a", request_id="req-a", session_id="s", deadline=5.0),
        AskStarted(ask_id="b", request_id="req-b", deadline=5.0),
        speak("req-a", "one"),
        reply_to("req-a", "speak", {"utterance": "two", "utterances": ["two", "2"], "meta": {"skill": "x"}}),
        reply_to("req-a", "ovos.utterance.handled"),
        reply_to("req-b", "hive.policy.denied", {"code": "quota_exceeded", "quota": {"limit": 3}, "allowed": ["a"]}),
        HUB5_DENIAL_NO_ID,
    ]
    outputs: list[Output] = []
    for inp in inputs:
        outputs += c.handle(inp, now=1.0)
    assert any(isinstance(o, AskFinished) for o in outputs) and any(isinstance(o, AskFailed) for o in outputs)
    for value in [*inputs, *outputs]:
        wire = _json.loads(_json.dumps(encode_value(value)))
        decoded = decode_value(wire, registry).unwrap()
        assert decoded == value, type(value).__name__


# ------------------------------------------------------------------ end to end with the message builders


def echo_reply(
    sent_context: dict[str, Any], typ: str, data: dict[str, Any], *, session: dict[str, Any]
) -> EventArrived:
    """What a skill's Message.reply() looks like after the hub: context copied, session as the hub decides."""
    context = {**sent_context, "source": "hive", "destination": "peer", "session": session}
    return EventArrived(event=normalize({"type": typ, "data": data, "context": context}).unwrap())


def test_hub4_round_trip_with_built_message() -> None:
    from thalovant.core.bus.outbound import utterance_message

    msg = utterance_message("hello", request_id="req-1", session_id="my-conversation", site_id="site")
    c = Correlator()
    c.handle(AskStarted(ask_id="a", request_id="req-1", session_id="my-conversation", deadline=10.0), now=0.0)
    # hub 4.x replaces the session with the connection's (P13), keeping request_id at the top level
    hub_session = {"session_id": "conn-1", "site_id": "site", "lang": "en", "request_id": "older-request"}
    c.handle(echo_reply(msg.context, "speak", {"utterance": "echo: hello"}, session=hub_session), now=0.1)
    (done,) = ends(c.handle(echo_reply(msg.context, "ovos.utterance.handled", {}, session=hub_session), now=0.2))
    assert isinstance(done, AskFinished)
    assert (done.reply.text, done.reply.ok, done.reply.session_id) == ("echo: hello", True, "my-conversation")


def test_hub5_conversation_carry_across_turns() -> None:
    from thalovant.core.bus.outbound import utterance_message

    state = ConversationState("conv-1")
    c = Correlator()
    first = utterance_message("start quiz", request_id="r1", session_id="conv-1", context=state.context_for_next_turn())
    c.handle(AskStarted(ask_id="t1", request_id="r1", session_id="conv-1", deadline=10.0), now=0.0)
    returned = {
        "session_id": "conv-1",
        "active_skills": [["quiz.skill", 1.0]],
        "utterance_states": {"quiz.skill": "response"},
    }
    c.handle(echo_reply(first.context, "speak", {"utterance": "Question one?"}, session=returned), now=0.1)
    (done,) = ends(c.handle(echo_reply(first.context, "ovos.utterance.handled", {}, session=returned), now=0.2))
    assert isinstance(done, AskFinished)
    state = state.update_from_reply(done.reply)
    second = utterance_message("paris", request_id="r2", session_id="conv-1", context=state.context_for_next_turn())
    assert second.context["session"]["active_skills"] == [["quiz.skill", 1.0]]
    assert second.context["session"]["utterance_states"] == {"quiz.skill": "response"}
    assert second.context["session"]["session_id"] == "conv-1"
    assert second.context["session"]["request_id"] == "r2"


def test_a_flood_of_speech_for_one_ask_is_capped_and_the_end_still_counts() -> None:
    # a hostile hub that sends endless speech with the ask's request id must not grow the ask without bound
    from thalovant.core.client.correlate import MAX_ASK_EVENTS

    c = Correlator()
    start(c, "a", deadline=100.0)
    for n in range(MAX_ASK_EVENTS + 500):
        c.handle(speak("req-a", f"s{n}"), now=1.0)
    out = c.handle(reply_to("req-a", "ovos.utterance.handled"), now=1.1)
    (finished,) = [o for o in out if isinstance(o, AskFinished)]
    assert len(finished.reply.utterances) == MAX_ASK_EVENTS and finished.reply.handled


def test_a_flood_of_large_speech_for_one_ask_is_capped_in_bytes_and_the_end_still_counts() -> None:
    # 64 KiB utterances: 1000 of them were 64 MiB held by one ask; the byte cap keeps about 16 MiB
    from thalovant.core.client.correlate import MAX_ASK_BYTES, MAX_ASK_EVENTS

    c = Correlator()
    start(c, "a", deadline=100.0)
    big = "x" * 64 * 1024
    for n in range(MAX_ASK_EVENTS):
        c.handle(speak("req-a", f"{n} {big}"), now=1.0)
    out = c.handle(reply_to("req-a", "ovos.utterance.handled"), now=1.1)
    (finished,) = [o for o in out if isinstance(o, AskFinished)]
    kept = finished.reply.utterances
    assert MAX_ASK_BYTES // len(big) <= len(kept) <= MAX_ASK_BYTES // len(big) + 1 and finished.reply.handled
    assert kept[0].startswith("0 ")  # the first speech is kept, the rest of the flood is not
