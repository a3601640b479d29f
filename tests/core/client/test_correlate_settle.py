"""Rule 2b of the correlator: ``AskStarted.settle`` (0.4.7's ``reply_settle_seconds``) as a pure deadline."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.client.test_correlate import ends, reply_to, speak
from thalovant.core.client.correlate import (
    AskCancelled,
    AskFailed,
    AskFinished,
    AskStarted,
    Correlator,
    CorrelatorState,
    LinkLost,
)
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Tick

HANDLED = "ovos.utterance.handled"


def started(c: Correlator, *, settle: float, deadline: float = 10.0, now: float = 0.0) -> None:
    c.handle(AskStarted(ask_id="a", request_id="req-a", deadline=deadline, settle=settle), now=now)


def test_the_end_waits_until_settle_after_the_first_speech() -> None:
    c = Correlator(quiet_grace=0.0)
    started(c, settle=0.5)
    c.handle(speak("req-a", "one"), now=1.0)
    assert not ends(c.handle(reply_to("req-a", HANDLED), now=1.1))
    assert c.deadline == pytest.approx(1.5) and c.state is CorrelatorState.WAITING
    c.handle(speak("req-a", "two"), now=1.4)
    assert c.handle(Tick(), now=1.45) == []
    (done,) = ends(c.handle(Tick(), now=1.5))
    assert isinstance(done, AskFinished) and done.reply.text == "one two" and done.reply.ok
    assert c.state is CorrelatorState.IDLE and c.deadline is None


def test_an_end_after_the_settle_window_finishes_at_once() -> None:
    c = Correlator(quiet_grace=0.0)
    started(c, settle=0.5)
    c.handle(speak("req-a", "one"), now=1.0)
    (done,) = ends(c.handle(reply_to("req-a", HANDLED), now=2.0))
    assert isinstance(done, AskFinished) and done.reply.text == "one"


def test_an_end_without_speech_waits_settle_for_late_speech() -> None:
    c = Correlator(quiet_grace=0.0)
    started(c, settle=0.25)
    assert not ends(c.handle(reply_to("req-a", HANDLED), now=1.0))
    c.handle(speak("req-a", "late"), now=1.1)
    (done,) = ends(c.handle(Tick(), now=1.25))
    assert isinstance(done, AskFinished) and done.reply.text == "late" and done.reply.handled


def test_zero_settle_is_the_old_behaviour() -> None:
    c = Correlator(quiet_grace=0.0)
    started(c, settle=0.0)
    assert ends(c.handle(reply_to("req-a", HANDLED), now=1.0))
    assert c.handle(speak("req-a", "late"), now=1.0) == []


def test_the_ask_deadline_bounds_the_settle() -> None:
    c = Correlator(quiet_grace=0.0)
    started(c, settle=5.0, deadline=2.0)
    c.handle(speak("req-a", "one"), now=1.0)
    c.handle(reply_to("req-a", HANDLED), now=1.5)
    assert c.deadline == 2.0
    (done,) = ends(c.handle(Tick(), now=2.0))
    assert isinstance(done, AskFinished) and not done.reply.timed_out and done.reply.ok


@pytest.mark.parametrize(
    ("step", "kind"),
    [(LinkLost(reason="gone"), AskFinished), (AskCancelled(ask_id="a"), AskFailed)],
)
def test_while_settling_a_lost_link_finishes_and_a_cancel_cancels(step: Any, kind: type) -> None:
    c = Correlator(quiet_grace=0.0)
    started(c, settle=1.0)
    c.handle(speak("req-a", "one"), now=1.0)
    c.handle(reply_to("req-a", HANDLED), now=1.1)
    (done,) = ends(c.handle(step, now=1.2))
    assert isinstance(done, kind) and done.reply.text == "one"


def test_a_denial_while_settling_still_fails_the_ask() -> None:
    c = Correlator(quiet_grace=0.0)
    started(c, settle=1.0)
    c.handle(speak("req-a", "one"), now=1.0)
    c.handle(reply_to("req-a", HANDLED), now=1.1)
    (done,) = ends(c.handle(reply_to("req-a", "hive.policy.denied", {"reason": "no"}), now=1.2))
    assert isinstance(done, AskFailed) and done.kind == "policy_denied"


@pytest.mark.parametrize("settle", [-0.1, float("nan"), float("inf")])
def test_settle_must_be_finite_and_not_negative(settle: float) -> None:
    with pytest.raises(LocalProtocolError, match="settle"):
        started(Correlator(quiet_grace=0.0), settle=settle)


EVENTS = st.lists(st.tuples(st.floats(0.01, 1.0), st.sampled_from(["speak", HANDLED, "other"])), max_size=12)


@settings(max_examples=300, deadline=None)
@given(settle=st.floats(0.0, 2.0), deadline=st.floats(0.5, 6.0), steps=EVENTS)
def test_settle_property(settle: float, deadline: float, steps: list[tuple[float, str]]) -> None:
    """The ask ends once, at min(deadline, max(end, anchor + settle)), with every speech heard before then."""
    c = Correlator(quiet_grace=0.0)
    started(c, settle=settle, deadline=deadline)
    now, first_speech, end_at, heard = 0.0, None, None, []
    outcome: list[Any] = []
    for gap, kind in steps:
        now += gap
        while c.deadline is not None and c.deadline <= now:
            at = c.deadline
            outcome += [(at, o) for o in ends(c.handle(Tick(), now=at))]
        if outcome:
            break
        assert c.deadline is not None and c.deadline <= deadline
        text = f"s{len(heard)}"
        event = speak("req-a", text) if kind == "speak" else reply_to("req-a", kind)
        if kind == "speak":
            first_speech = now if first_speech is None else first_speech
            heard.append(text)
        if kind == HANDLED and end_at is None:
            end_at = now
        outcome += [(now, o) for o in ends(c.handle(event, now=now))]
        if outcome:
            break
    while not outcome and c.deadline is not None:
        at = c.deadline
        outcome += [(at, o) for o in ends(c.handle(Tick(), now=at))]
    assert len(outcome) == 1 and c.state is CorrelatorState.IDLE
    at, done = outcome[0]
    if end_at is None:  # no end signal: the deadline decides, as before
        assert at == deadline
        assert isinstance(done, AskFinished) == bool(heard)
        return
    anchor = first_speech if first_speech is not None and first_speech <= end_at else end_at
    assert at == pytest.approx(min(deadline, max(end_at, anchor + settle)))
    assert isinstance(done, AskFinished) and done.reply.handled
    assert done.reply.utterances == tuple(heard)
