"""BusConnection: a client over 0.4.7's bus-level transport, as a pure machine (no shell, no threads).

A small simulated transport (:class:`SimBus`) answers the machine's orders the way the shell's
worker does; the stateful test drives sends, asks, replies, transport failures and time in random
order and checks the machine's rules after every step.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from thalovant.core.client import correlate as corr
from thalovant.core.client.bus_connection import BusConnection, LoneAskCorrelator
from thalovant.core.client.bus_events import (
    ASK_EVENT_TYPES,
    BusClosed,
    BusConfig,
    BusEmitFailed,
    BusEmitted,
    BusFact,
    BusOpened,
    BusOpenFailed,
    BusProbed,
    BusReceived,
    BusTaken,
    CloseBus,
    EmitBus,
    OpenBus,
    ProbeBus,
)
from thalovant.core.client.connection import (
    CancelAsk,
    Connect,
    ConnectionState,
    Disconnect,
    EventDelivered,
    SendDone,
    SendError,
    SendRequested,
    StatusChanged,
)
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Input, Output, Tick
from thalovant.core.wire.message import BusMessage
from thalovant.testing import counting_entropy

_S = ConnectionState


def utterance(rid: str | None = None) -> BusMessage:
    context = {"request_id": rid} if rid else {}
    return BusMessage(type="recognizer_loop:utterance", data={"utterances": ["hi"]}, context=context)


def speak(text: str, rid: str | None = None, session: str | None = None) -> BusMessage:
    context: dict[str, object] = {}
    if rid:
        context["request_id"] = rid
    if session:
        context["session"] = {"session_id": session}
    return BusMessage(type="speak", data={"utterance": text}, context=context)


def handled(rid: str | None = None) -> BusMessage:
    return BusMessage(type="ovos.utterance.handled", data={}, context={"request_id": rid} if rid else {})


def received(message: BusMessage) -> BusFact:
    return BusFact(epoch=0, fact=BusReceived(message=message))


@dataclass
class Run:
    """A BusConnection and everything it said, on a hand-moved clock."""

    machine: BusConnection = field(
        default_factory=lambda: BusConnection(
            config=BusConfig(reconnect=ReconnectConfig(base=0.1, cap=0.5)), entropy=counting_entropy(b"bus")
        )
    )
    now: float = 0.0
    out: list[Output] = field(default_factory=list)

    def feed(self, inp: Input) -> list[Output]:
        got = self.machine.handle(inp, now=self.now)
        self.out += got
        return got

    def fact(self, fact: Input, epoch: int | None = None) -> list[Output]:
        return self.feed(BusFact(epoch=self.machine.epoch if epoch is None else epoch, fact=fact))

    def tick(self, until: float) -> list[Output]:
        got: list[Output] = []
        while (d := self.machine.deadline) is not None and d <= until:
            self.now = max(self.now, d)
            got += self.feed(Tick())
        self.now = max(self.now, until)
        return got

    def ready(self) -> None:
        self.feed(Connect())
        assert self.out[-1] == OpenBus(epoch=1)
        self.fact(BusOpened())
        assert self.machine.state is _S.READY

    def ends(self, cls: type) -> list[Output]:
        return [o for o in self.out if isinstance(o, cls)]


def ask_of(ref: int, rid: str, now: float = 0.0, timeout: float = 10.0, session: str | None = None) -> SendRequested:
    started = corr.AskStarted(ask_id=rid, request_id=rid, session_id=session, deadline=now + timeout)
    return SendRequested(ref=ref, message=utterance(rid), deadline=now + timeout, ask=started)


# ---- examples ------------------------------------------------------------------------------------


def test_connect_opens_the_transport_and_reports_ready() -> None:
    run = Run()
    got = run.feed(Connect())
    assert StatusChanged(state=_S.CONNECTING, detail="connecting") in got and got[-1] == OpenBus(epoch=1)
    got = run.fact(BusOpened())
    assert [o.state for o in got if isinstance(o, StatusChanged)] == [_S.READY]
    assert run.feed(Connect()) == []  # idempotent


def test_a_reply_fired_inside_emit_event_is_attributed_before_the_transport_returns() -> None:
    """0.4.7's fakes answer from inside emit_event with no request id: the only ask gets them."""
    run = Run()
    run.ready()
    got = run.feed(ask_of(1, "r1"))
    assert got[-1] == EmitBus(epoch=1, ref=1, message=utterance("r1"))
    run.feed(received(speak("hello back")))  # no context at all
    ended = run.feed(received(handled()))
    finished = [o for o in ended if isinstance(o, corr.AskFinished)]
    assert finished and finished[0].reply.text == "hello back"
    assert run.fact(BusEmitted(ref=1)) == [SendDone(ref=1)]


def test_a_received_message_with_a_receipt_is_answered_after_its_own_outputs() -> None:
    """The shell lets a transport's thread go only after the event was delivered (BusTaken last)."""
    run = Run()
    run.ready()
    got = run.feed(BusFact(epoch=0, fact=BusReceived(message=speak("hi"), receipt=7)))
    assert isinstance(got[0], EventDelivered) and got[-1] == BusTaken(receipt=7)
    bad = BusMessage(type="", data={}, context={})
    assert run.feed(BusFact(epoch=0, fact=BusReceived(message=bad, receipt=8)))[-1] == BusTaken(receipt=8)
    assert not [o for o in run.feed(received(speak("no receipt"))) if isinstance(o, BusTaken)]


def test_two_asks_in_a_row_get_the_same_reply_objects_twice() -> None:
    """No duplicate suppression: a fake sends an identical 'handled' for every ask."""
    run = Run()
    run.ready()
    for ref, rid in ((1, "a"), (2, "b")):
        run.feed(ask_of(ref, rid, run.now))
        run.feed(received(speak("same")))
        run.feed(received(handled()))
        run.fact(BusEmitted(ref=ref))
    assert [o.ask_id for o in run.ends(corr.AskFinished)] == ["a", "b"]


def test_a_reply_without_id_is_not_attributed_when_two_asks_are_in_flight() -> None:
    run = Run()
    run.ready()
    run.feed(ask_of(1, "a"))
    run.fact(BusEmitted(ref=1))
    run.feed(ask_of(2, "b"))
    run.fact(BusEmitted(ref=2))
    got = run.feed(received(speak("whose?")))
    assert [type(o) for o in got] == [EventDelivered]  # to listeners only
    got = run.feed(received(speak("for b", rid="b")))
    assert [o.ask_id for o in got if isinstance(o, corr.AskProgress)] == ["b"]


def test_a_reply_from_another_session_is_not_the_lone_asks() -> None:
    run = Run()
    run.ready()
    run.feed(ask_of(1, "a", session="mine"))
    run.fact(BusEmitted(ref=1))
    assert not [o for o in run.feed(received(speak("x", session="other"))) if isinstance(o, corr.AskProgress)]
    assert [o for o in run.feed(received(speak("y", session="mine"))) if isinstance(o, corr.AskProgress)]


def test_a_frame_is_refused_by_a_bus_level_transport() -> None:
    """A 0.4.7 transport carries bus messages only: a mesh frame ends at once in a ``refused`` send error."""
    from thalovant.core.bus.hive import wrap

    run = Run()
    run.ready()
    got = run.feed(SendRequested(ref=1, message=wrap("propagate", BusMessage(type="x"), session_id="s"), deadline=5))
    assert [type(o) for o in got] == [SendError] and got[0].kind == "refused" and "propagate" in got[0].reason
    assert not [o for o in got if isinstance(o, EmitBus)]


def test_one_send_at_a_time_in_order() -> None:
    run = Run()
    run.ready()
    assert isinstance(run.feed(SendRequested(ref=1, message=BusMessage(type="a"), deadline=5))[-1], EmitBus)
    assert not [
        o for o in run.feed(SendRequested(ref=2, message=BusMessage(type="b"), deadline=5)) if isinstance(o, EmitBus)
    ]
    got = run.fact(BusEmitted(ref=1))
    assert got[0] == SendDone(ref=1) and got[-1] == EmitBus(epoch=1, ref=2, message=BusMessage(type="b"))


def test_a_send_refused_before_it_left_is_sent_again_once_on_the_next_connection() -> None:
    run = Run()
    run.ready()
    run.feed(SendRequested(ref=1, message=BusMessage(type="a"), deadline=30))
    got = run.fact(BusEmitFailed(ref=1, reason="ConnectionError: down"))
    assert CloseBus(epoch=1) in got and run.machine.state is _S.CONNECTING
    assert not run.ends(SendError)
    run.tick(1.0)
    assert run.out[-1] == OpenBus(epoch=2)
    got = run.fact(BusOpened())
    assert got[-1] == EmitBus(epoch=2, ref=1, message=BusMessage(type="a"))
    got = run.fact(BusEmitFailed(ref=1, reason="ConnectionError: down again"))  # twice: no third time
    assert [o for o in got if isinstance(o, SendError)] == [
        SendError(ref=1, reason="ConnectionError: down again", kind="link_lost")
    ]


def test_a_send_the_transport_may_have_taken_is_never_sent_again() -> None:
    run = Run()
    run.ready()
    run.feed(SendRequested(ref=1, message=BusMessage(type="a"), deadline=30))
    got = run.fact(BusEmitFailed(ref=1, reason="TimeoutError", taken=True))
    assert SendError(ref=1, reason="TimeoutError", kind="link_lost", maybe_sent=True) in got
    run.tick(1.0)
    run.fact(BusOpened())
    assert len([o for o in run.out if isinstance(o, EmitBus)]) == 1


def test_an_ask_refused_before_it_left_is_retried_and_still_answered() -> None:
    run = Run()
    run.ready()
    run.feed(ask_of(1, "r", timeout=30))
    run.fact(BusEmitFailed(ref=1, reason="RuntimeError: flaky"))
    assert not run.ends(corr.AskFailed)
    run.tick(1.0)
    got = run.fact(BusOpened())
    assert isinstance(got[-1], EmitBus)
    run.feed(received(speak("second time")))
    run.feed(received(handled()))
    run.fact(BusEmitted(ref=1))
    assert [o.reply.text for o in run.ends(corr.AskFinished)] == ["second time"] and run.ends(SendDone)


def test_other_exceptions_fail_the_send_and_its_ask_but_keep_the_connection() -> None:
    run = Run()
    run.ready()
    run.feed(ask_of(1, "r"))
    got = run.fact(BusEmitFailed(ref=1, reason="ValueError: bad", link_down=False))
    assert SendError(ref=1, reason="ValueError: bad", kind="refused") in got
    assert [o.kind for o in got if isinstance(o, corr.AskFailed)] == ["cancelled"]
    assert run.machine.state is _S.READY


def test_the_probe_notices_a_dead_transport_and_asks_fail_at_once() -> None:
    run = Run()
    run.ready()
    run.feed(ask_of(1, "r", timeout=30))
    run.fact(BusEmitted(ref=1))
    got = run.tick(run.machine.deadline or 0)
    assert got == [ProbeBus(epoch=1)]
    assert run.machine.deadline is not None and run.machine.deadline >= 30  # no probe while one is out
    got = run.fact(BusProbed(alive=False, reason="ConnectionError: gone"))
    assert [o.kind for o in got if isinstance(o, corr.AskFailed)] == ["link_lost"] and CloseBus(epoch=1) in got
    got = run.fact(BusProbed(alive=True))  # a stale answer changes nothing
    assert got == []


def test_the_first_connect_failure_is_final_later_ones_follow_the_policy() -> None:
    run = Run()
    run.feed(Connect())
    run.fact(BusOpenFailed(reason="ConnectionError: no hub"))
    assert run.machine.state is _S.GAVE_UP  # client.connect() raises it, as 0.4.7 did
    assert "no hub" in run.ends(StatusChanged)[-1].detail
    run = Run()
    run.ready()
    run.fact(BusProbed(alive=False))
    run.tick(1.0)
    assert run.out[-1] == OpenBus(epoch=2)
    run.fact(BusOpenFailed(reason="ConnectionError: still down"))
    assert run.machine.state is _S.CONNECTING  # after a loss: the reconnect policy keeps trying
    run.tick(2.0)
    assert run.out[-1] == OpenBus(epoch=3)
    patient = Run(machine=BusConnection(config=BusConfig(retry_first_connect=True), entropy=bytes))
    patient.feed(Connect())
    patient.fact(BusOpenFailed(reason="ConnectionError: not yet"))
    assert patient.machine.state is _S.CONNECTING


def test_connect_failures_follow_the_reconnect_policy() -> None:
    run = Run(machine=BusConnection(config=BusConfig(reconnect=ReconnectConfig(max_attempts=1)), entropy=bytes))
    run.feed(Connect())
    run.feed(SendRequested(ref=1, message=BusMessage(type="a"), deadline=5))
    got = run.fact(BusOpenFailed(reason="OSError: refused"))
    assert run.machine.state is _S.GAVE_UP and not [o for o in got if isinstance(o, CloseBus)]
    assert [o.kind for o in got if isinstance(o, SendError)] == ["gave_up"]
    auth = Run()
    auth.feed(Connect())
    auth.fact(BusOpenFailed(reason="refused", retryable=False, auth=True))
    assert auth.machine.state is _S.GAVE_UP and [o.auth for o in auth.ends(StatusChanged)][-1]


def test_disconnect_closes_the_transport_and_ends_everything() -> None:
    run = Run()
    run.ready()
    run.feed(ask_of(1, "r"))
    run.feed(SendRequested(ref=2, message=BusMessage(type="b"), deadline=5))
    got = run.feed(Disconnect())
    assert CloseBus(epoch=1) in got and run.machine.state is _S.CLOSED
    assert sorted(o.ref for o in got if isinstance(o, SendError)) == [1, 2]
    assert [o.kind for o in got if isinstance(o, corr.AskFailed)] == ["link_lost"]
    assert not run.machine.finished  # until disconnect() returned
    run.fact(BusClosed(), epoch=1)
    assert run.machine.finished
    assert run.fact(BusEmitted(ref=1)) == []  # the worker's late answer is ignored
    assert [
        o.kind
        for o in run.feed(SendRequested(ref=3, message=BusMessage(type="c"), deadline=5))
        if isinstance(o, SendError)
    ] == ["closed"]


def test_cancel_and_misuse() -> None:
    run = Run()
    run.feed(Connect())
    run.feed(ask_of(1, "r"))  # waiting: not connected yet
    got = run.feed(CancelAsk(ask_id="r"))
    assert [o.kind for o in got if isinstance(o, corr.AskFailed)] == ["cancelled"]
    with pytest.raises(LocalProtocolError):
        run.feed(SendRequested(ref=0, message=BusMessage(type="a"), deadline=1))
    run.feed(SendRequested(ref=5, message=BusMessage(type="a"), deadline=1))
    with pytest.raises(LocalProtocolError):
        run.feed(SendRequested(ref=5, message=BusMessage(type="a"), deadline=1))
    with pytest.raises(LocalProtocolError):
        run.feed(BusOpened())  # a fact must come wrapped in BusFact


def test_lone_ask_correlator_keeps_the_base_rules() -> None:
    c = LoneAskCorrelator()
    c.handle(corr.AskStarted(ask_id="a", request_id="a", deadline=10), now=0)
    from thalovant.core.bus.events import ThalovantEvent

    other = ThalovantEvent(type="speak", data={"utterance": "x"}, context={"request_id": "someone-else"})
    assert c.handle(corr.EventArrived(event=other), now=1) == []  # an id that is not ours: never the lone ask's
    mine = ThalovantEvent(type="speak", data={"utterance": "y"})
    assert [type(o) for o in c.handle(corr.EventArrived(event=mine), now=1)] == [corr.AskProgress]


def test_ask_names_cover_what_ends_an_ask() -> None:
    assert {"speak", "ovos.utterance.handled", "complete_intent_failure", "hive.policy.denied"} <= set(ASK_EVENT_TYPES)


# ---- the rules, under any interleaving -------------------------------------------------------------


class SimBus:
    """Answers a BusConnection's orders like the shell's worker: one job at a time, in order."""

    def __init__(self) -> None:
        self.jobs: deque[Output] = deque()
        self.open: int | None = None
        self.emitted: Counter[int] = Counter()


class BusRules(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        config = BusConfig(reconnect=ReconnectConfig(base=0.1, cap=0.5), retry_first_connect=True)
        self.run = Run(machine=BusConnection(config=config, entropy=counting_entropy(b"rules")))
        self.sim = SimBus()
        self.refs = 0
        self.taken: set[int] = set()  # refs the transport took (BusEmitted or a timeout)
        self.asks: set[str] = set()

    def _feed(self, inp: Input) -> None:
        for o in self.run.feed(inp):
            if isinstance(o, OpenBus | EmitBus | ProbeBus | CloseBus):
                self.sim.jobs.append(o)

    @initialize()
    def start(self) -> None:
        self._feed(Connect())

    @rule(ask=st.booleans(), timeout=st.floats(0.5, 20))
    def send(self, ask: bool, timeout: float) -> None:
        self.refs += 1
        ref, rid = self.refs, f"r{self.refs}"
        if ask:
            self.asks.add(rid)
            self._feed(ask_of(ref, rid, self.run.now, timeout))
        else:
            self._feed(SendRequested(ref=ref, message=BusMessage(type="x"), deadline=self.run.now + timeout))

    @rule(
        outcome=st.sampled_from(["ok", "ok", "ok", "refused", "timeout", "other", "connect-fails"]),
        reply=st.sampled_from([None, "lone", "with-id"]),
    )
    def worker_step(self, outcome: str, reply: str | None) -> None:
        if not self.sim.jobs:
            return
        job = self.sim.jobs.popleft()
        epoch = job.epoch  # type: ignore[attr-defined]
        if isinstance(job, OpenBus):
            if outcome == "connect-fails":
                fact: Input = BusOpenFailed(reason="OSError")
            else:
                self.sim.open, fact = epoch, BusOpened()
        elif isinstance(job, EmitBus):
            if job.ref in self.taken:
                raise AssertionError(f"ref {job.ref} sent again after the transport took it")
            self.sim.emitted[job.ref] += 1
            if self.sim.open != epoch or outcome == "refused":
                fact = BusEmitFailed(ref=job.ref, reason="not connected")
            elif outcome == "timeout":
                self.taken.add(job.ref)
                fact = BusEmitFailed(ref=job.ref, reason="TimeoutError", taken=True)
            elif outcome == "other":
                fact = BusEmitFailed(ref=job.ref, reason="ValueError", link_down=False)
            else:
                self.taken.add(job.ref)
                rid = job.message.context.get("request_id")
                if reply is not None and rid:
                    self._feed(received(speak("answer", rid=rid if reply == "with-id" else None)))
                    self._feed(received(handled(rid if reply == "with-id" else None)))
                fact = BusEmitted(ref=job.ref)
        elif isinstance(job, ProbeBus):
            fact = BusProbed(alive=outcome != "refused")
        else:
            self.sim.open, fact = None, BusClosed()
        self._feed(BusFact(epoch=epoch, fact=fact))

    @rule(seconds=st.floats(0, 5))
    def time_passes(self, seconds: float) -> None:
        until = self.run.now + seconds
        while (d := self.run.machine.deadline) is not None and d <= until:
            self.run.now = max(self.run.now, d)
            self._feed(Tick())
            after = self.run.machine.deadline
            assert after is None or after > self.run.now or self.sim.jobs, "deadline left in the past"
        self.run.now = until

    @invariant()
    def one_emit_at_a_time_and_at_most_twice(self) -> None:
        outstanding = [j for j in self.sim.jobs if isinstance(j, EmitBus)]
        assert len(outstanding) <= 1
        assert all(n <= 2 for n in self.sim.emitted.values())

    @invariant()
    def every_send_and_ask_ends_at_most_once(self) -> None:
        ends = Counter(o.ref for o in self.run.out if isinstance(o, SendDone | SendError))
        assert all(n == 1 for n in ends.values()), ends
        asks = Counter(o.ask_id for o in self.run.out if isinstance(o, corr.AskFinished | corr.AskFailed))
        assert all(n == 1 for n in asks.values()), asks

    def teardown(self) -> None:
        self._feed(Disconnect())
        for _ in range(100):  # the worker finishes what it holds
            if not self.sim.jobs:
                break
            self.worker_step("ok", None)
        ended = {o.ref for o in self.run.out if isinstance(o, SendDone | SendError)}
        assert ended == set(range(1, self.refs + 1)), "a send never ended"
        asks = {o.ask_id for o in self.run.out if isinstance(o, corr.AskFinished | corr.AskFailed)}
        assert asks == self.asks, "an ask never ended"
        assert self.run.machine.finished


BusRules.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_bus_connection_rules = BusRules.TestCase
