"""Stateful model test of the Correlator (hypothesis RuleBasedStateMachine).

Invariants checked after every step:
- every ask ends exactly once (no end for an unknown or already-ended ask;
  at teardown a LinkLost ends every remaining ask);
- ``deadline`` equals the earliest pending deadline of the model;
- a denial without ids is attributed only when exactly one pending ask has the
  denied type and no other send of that type is inside the window;
- speech heard before a timeout is returned with ``timed_out=True``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from thalovant.core.bus.events import ThalovantEvent, normalize
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
    LinkLost,
    MessageSent,
    UnattributedDenial,
)
from thalovant.core.machine import Output, Tick

TYPES = ("recognizer_loop:utterance", "other.type")
WINDOW = 5.0
DEDUP_WINDOW = 2.0


class CorrelatorModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.c = Correlator(send_window=WINDOW, dedup_window=DEDUP_WINDOW, quiet_grace=0.0)  # Rule 2c: own tests
        self.now = 0.0
        self.counter = 0
        # ask_id -> dict(request_id, msg_type, deadline, speech)
        self.pending: dict[str, dict[str, Any]] = {}
        self.ended: set[str] = set()
        self.sends: list[tuple[str, str | None, float]] = []
        self.last_event: EventArrived | None = None
        self.last_event_at = 0.0

    # ---------------------------------------------------------- helpers

    def fresh(self) -> int:
        self.counter += 1
        return self.counter

    def feed(self, inp: Any) -> list[Output]:
        row = TABLE[(self.c.state, type(inp))]
        out = self.c.handle(inp, now=self.now)
        assert self.c.state in row.ends, f"{type(inp).__name__} left {self.c.state.name}, not in its row"
        for o in out:
            if isinstance(o, AskProgress):
                assert o.ask_id in self.pending, f"progress for {o.ask_id} which is not pending"
            elif isinstance(o, AskFinished | AskFailed):
                assert o.ask_id in self.pending, f"{o.ask_id} ended twice or was never started"
                assert o.ask_id not in self.ended
                del self.pending[o.ask_id]
                self.ended.add(o.ask_id)
            else:
                assert isinstance(o, UnattributedDenial)
        return out

    def event(self, typ: str, data: dict[str, Any], **context: Any) -> EventArrived:
        arrived = EventArrived(event=normalize({"type": typ, "data": data, "context": context}).unwrap())
        self.last_event = arrived
        self.last_event_at = self.now
        return arrived

    def reply(self, ask_id: str, typ: str, data: dict[str, Any]) -> EventArrived:
        rid = self.pending[ask_id]["request_id"]
        # hub 4.x rewrites the session to the connection's; the request id survives
        return self.event(typ, data, request_id=rid, session={"session_id": "connection"})

    ask_ids = st.integers(0, 30).map(lambda n: f"a{n}")

    def pick(self, n: int) -> str:
        ids = sorted(self.pending)
        return ids[n % len(ids)]

    # ---------------------------------------------------------- rules

    @rule(msg_type=st.sampled_from(TYPES), timeout=st.floats(0.0, 10.0))
    def start_ask(self, msg_type: str, timeout: float) -> None:
        n = self.fresh()
        ask_id, rid = f"a{n}", f"r{n}"
        deadline = self.now + timeout
        assert self.feed(AskStarted(ask_id=ask_id, request_id=rid, msg_type=msg_type, deadline=deadline)) == []
        self.pending[ask_id] = {"request_id": rid, "msg_type": msg_type, "deadline": deadline, "speech": False}
        self.sends.append((msg_type, rid, self.now))

    @rule(msg_type=st.sampled_from(TYPES))
    def fire_and_forget(self, msg_type: str) -> None:
        assert self.feed(MessageSent(msg_type=msg_type, request_id=f"ff{self.fresh()}")) == []
        self.sends.append((msg_type, None, self.now))

    @precondition(lambda self: self.pending)
    @rule(n=st.integers(0, 50))
    def speak(self, n: int) -> None:
        ask_id = self.pick(n)
        out = self.feed(self.reply(ask_id, "speak", {"utterance": f"words {self.fresh()}"}))
        assert [type(o) for o in out] == [AskProgress]
        self.pending[ask_id]["speech"] = True

    @precondition(lambda self: self.pending)
    @rule(
        n=st.integers(0, 50),
        typ=st.sampled_from(["ovos.utterance.handled", "complete_intent_failure", "ovos.intent.unmatched"]),
    )
    def end_of_turn(self, n: int, typ: str) -> None:
        ask_id = self.pick(n)
        speech = self.pending[ask_id]["speech"]
        out = self.feed(self.reply(ask_id, typ, {"serial": self.fresh()}))
        assert isinstance(out[-1], AskFinished) and out[-1].ask_id == ask_id
        assert out[-1].reply.unanswered == (typ != "ovos.utterance.handled")
        assert bool(out[-1].reply.text) == speech

    @precondition(lambda self: self.pending)
    @rule(n=st.integers(0, 50))
    def denial_with_id(self, n: int) -> None:
        ask_id = self.pick(n)
        out = self.feed(self.reply(ask_id, "hive.policy.denied", {"code": "policy_denied", "serial": self.fresh()}))
        assert isinstance(out[-1], AskFailed) and out[-1].kind == "policy_denied" and out[-1].ask_id == ask_id

    @rule(msg_type=st.sampled_from(TYPES))
    def denial_without_id(self, msg_type: str) -> None:
        candidates = [a for a, p in self.pending.items() if p["msg_type"] == msg_type]
        expected: str | None = None
        if len(candidates) == 1:
            own = self.pending[candidates[0]]["request_id"]
            others = [s for s in self.sends if s[0] == msg_type and s[1] != own and self.now - s[2] <= WINDOW]
            expected = None if others else candidates[0]
        denial = {"denied_type": msg_type, "code": "acl_disallowed_type", "reason": f"no {self.fresh()}"}
        out = self.feed(self.event("hive.policy.denied", denial, source="hivemind-core"))
        if expected is None:
            assert [type(o) for o in out] == [UnattributedDenial]
        else:
            assert isinstance(out[-1], AskFailed) and out[-1].ask_id == expected and out[-1].kind == "policy_denied"

    @precondition(lambda self: self.last_event is not None and self.now - self.last_event_at <= DEDUP_WINDOW)
    @rule()
    def duplicate_delivery(self) -> None:
        assert self.last_event is not None
        assert self.feed(self.last_event) == []

    @rule()
    def foreign_speech(self) -> None:
        assert self.feed(self.event("speak", {"utterance": "x"}, request_id=f"foreign{self.fresh()}")) == []

    @precondition(lambda self: self.pending)
    @rule(n=st.integers(0, 50))
    def cancel(self, n: int) -> None:
        ask_id = self.pick(n)
        (out,) = self.feed(AskCancelled(ask_id=ask_id))
        assert isinstance(out, AskFailed) and out.kind == "cancelled"

    @rule(dt=st.floats(0.0, 6.0))
    def advance(self, dt: float) -> None:
        self.now += dt
        due = {a: p for a, p in self.pending.items() if p["deadline"] <= self.now}
        out = self.feed(Tick())
        assert {o.ask_id for o in out if isinstance(o, AskFinished | AskFailed)} == set(due)
        for o in out:
            if isinstance(o, AskFinished):
                assert due[o.ask_id]["speech"] and o.reply.timed_out and o.reply.text
            elif isinstance(o, AskFailed):
                assert not due[o.ask_id]["speech"] and o.kind == "timeout"

    @rule()
    def link_lost(self) -> None:
        expected = set(self.pending)
        out = self.feed(LinkLost(reason="gone"))
        assert {o.ask_id for o in out if isinstance(o, AskFailed) and o.kind == "link_lost"} == expected
        self.sends.clear()

    # ---------------------------------------------------------- invariants

    @invariant()
    def deadline_is_earliest_pending(self) -> None:
        expected = min((p["deadline"] for p in self.pending.values()), default=None)
        assert self.c.deadline == expected

    @invariant()
    def state_and_pending_agree(self) -> None:
        assert set(self.c.pending) == set(self.pending)
        assert self.c.state is (CorrelatorState.WAITING if self.pending else CorrelatorState.IDLE)

    def teardown(self) -> None:
        remaining = set(self.pending)
        self.feed(LinkLost(reason="teardown"))
        assert not self.pending
        assert remaining <= self.ended


CorrelatorModel.TestCase.settings = settings(max_examples=120, stateful_step_count=30, deadline=None)
TestCorrelatorModel = CorrelatorModel.TestCase


def test_event_helper_is_deterministic() -> None:
    # sanity: the same content gives the same dedup key, so duplicate_delivery is meaningful
    a: ThalovantEvent = normalize({"type": "speak", "data": {"u": 1}, "context": {"request_id": "r"}}).unwrap()
    b: ThalovantEvent = normalize({"type": "speak", "data": {"u": 1}, "context": {"request_id": "r"}}).unwrap()
    assert a.dedup_key() == b.dedup_key()
