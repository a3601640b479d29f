"""Stateful model test of HttpPoll: random interleavings of sends, answers, failures and time."""

from __future__ import annotations

import json

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from thalovant.core.links.base import FrameNotSent, FrameSent, LinkDown, OutboundFrame, StopRequested
from thalovant.core.links.http_poll import (
    TABLE,
    CancelRequest,
    HttpPoll,
    HttpPollConfig,
    HttpState,
    RequestFailed,
    ResponseReceived,
    Started,
    StartRequest,
)
from thalovant.core.machine import Output, Tick

ANSWERS = [
    (200, {"status": "Connected"}),
    (200, {"status": "Disconnected"}),
    (200, {"status": "message sent"}),
    (200, {"status": "messages retrieved", "messages": ['{"msg_type":"bus"}']}),
    (200, {"status": "messages retrieved", "messages": []}),
    (200, {"status": "messages retrieved", "b64_messages": ["AAE="]}),
    (200, {"error": "Client is not connected"}),
    (409, {"error": "No Noise session; reconnect and handshake"}),
    (500, {"error": "Message sending failed"}),
    (500, {"error": "Connection failed"}),
    (503, "garbage"),
]


def table_ends(state: HttpState, kind: type) -> set[HttpState]:
    """Where one ``handle`` may leave the machine: the row's ends, then a request timeout's row."""
    row = TABLE.get((state, kind))
    ends = set(row.ends) if row else {state}
    for end in list(ends):
        timeout = TABLE.get((end, RequestFailed))
        ends |= set(timeout.ends) if timeout else set()
    return ends


class HttpPollModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        draws = iter(range(10**6))
        self.m = HttpPoll(
            authorization="dTprZXk=",
            useragent="t",
            entropy=lambda n: bytes([next(draws) % 256]) * n,
            config=HttpPollConfig(max_errors=4, request_timeout=3.0, error_base=0.1, error_max=1.0),
        )
        self.now = 0.0
        self.inflight: dict[int, StartRequest] = {}
        self.seen_ids: set[int] = set()
        self.pending: set[int] = set()
        self.resolved: set[int] = set()
        self.next_ref = 1
        self.link_downs = 0
        self.before = self.m.state
        self.feed(Started())

    def feed(self, inp: object) -> list[Output]:
        outs = self.m.handle(inp, now=self.now)  # type: ignore[arg-type]
        assert self.m.state in table_ends(self.before, type(inp)), "the step left the table's states"
        self.before = self.m.state
        for o in outs:
            assert isinstance(o, Output)
            if isinstance(o, StartRequest):
                assert o.req_id not in self.seen_ids, "request id reused"
                self.seen_ids.add(o.req_id)
                self.inflight[o.req_id] = o
            elif isinstance(o, CancelRequest):
                assert o.req_id in self.inflight, "cancel of a request not in flight"
                del self.inflight[o.req_id]
            elif isinstance(o, FrameSent | FrameNotSent):
                (ref,) = o.refs
                assert ref in self.pending, f"ref {ref} answered twice or never sent"
                self.pending.discard(ref)
                self.resolved.add(ref)
            elif isinstance(o, LinkDown):
                self.link_downs += 1
        return outs

    @rule(text=st.text(max_size=8), binary=st.booleans())
    def send(self, text: str, binary: bool) -> None:
        ref = self.next_ref
        self.next_ref += 1
        self.pending.add(ref)
        self.feed(OutboundFrame(data=text.encode() if binary else text, refs=(ref,)))

    @precondition(lambda self: bool(self.inflight))
    @rule(pick=st.integers(min_value=0), answer=st.sampled_from(ANSWERS))
    def answer(self, pick: int, answer: tuple[int, object]) -> None:
        req_id = sorted(self.inflight)[pick % len(self.inflight)]
        del self.inflight[req_id]
        status, body = answer
        self.feed(ResponseReceived(req_id=req_id, status=status, body=json.dumps(body).encode()))

    @precondition(lambda self: bool(self.inflight))
    @rule(pick=st.integers(min_value=0), frames=st.integers(min_value=0, max_value=2))
    def answer_well(self, pick: int, frames: int) -> None:
        """The answer a healthy hub gives to this request."""
        req_id = sorted(self.inflight)[pick % len(self.inflight)]
        target = self.inflight.pop(req_id).target
        body: dict[str, object] = {"status": "ok"}
        if target.startswith("/get_messages"):
            body["messages"] = ["{}"] * frames
        elif target.startswith("/get_binary_messages"):
            body["b64_messages"] = ["AA=="] * frames
        self.feed(ResponseReceived(req_id=req_id, status=200, body=json.dumps(body).encode()))

    @precondition(lambda self: bool(self.inflight))
    @rule(pick=st.integers(min_value=0), kind=st.sampled_from(["connect", "reset", "tls"]))
    def fail(self, pick: int, kind: str) -> None:
        req_id = sorted(self.inflight)[pick % len(self.inflight)]
        del self.inflight[req_id]
        self.feed(RequestFailed(req_id=req_id, kind=kind))

    @rule(req_id=st.integers(min_value=-5, max_value=10**6))
    def stray_answer(self, req_id: int) -> None:
        if req_id in self.inflight:
            return
        self.feed(ResponseReceived(req_id=req_id, status=200, body=b"{}"))

    @rule(dt=st.floats(min_value=0.0, max_value=5.0))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.feed(Tick())

    @rule()
    def jump_to_deadline(self) -> None:
        if self.m.deadline is not None:
            self.now = max(self.now, self.m.deadline)
            self.feed(Tick())

    @rule()
    def stop(self) -> None:
        self.feed(StopRequested())

    @invariant()
    def at_most_one_poll_and_one_send_in_flight(self) -> None:
        polls = [r for r in self.inflight.values() if r.method == "GET"]
        sends = [r for r in self.inflight.values() if r.target.startswith("/send_message")]
        assert len(polls) <= 1
        assert len(sends) <= 1
        assert len(self.inflight) <= 2

    @invariant()
    def deadline_never_in_the_past(self) -> None:
        d = self.m.deadline
        assert d is None or d >= self.now

    @invariant()
    def at_most_one_link_down_and_only_when_finished(self) -> None:
        assert self.link_downs <= 1
        assert (self.link_downs == 1) == self.m.finished  # started at once, so every end says LinkDown
        if self.m.finished:
            assert not self.pending, "finished with unanswered frames"
            assert self.m.deadline is None

    def teardown(self) -> None:
        self.feed(StopRequested())
        for _ in range(20):
            if self.m.finished:
                break
            if self.inflight:
                req_id = min(self.inflight)
                del self.inflight[req_id]
                self.feed(ResponseReceived(req_id=req_id, status=200, body=b'{"status": "ok"}'))
            else:
                self.now = self.m.deadline if self.m.deadline is not None else self.now + 1
                self.feed(Tick())
        assert self.m.finished
        assert not self.pending, f"frames never answered: {self.pending}"
        assert self.link_downs <= 1


TestHttpPollModel = HttpPollModel.TestCase
TestHttpPollModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
