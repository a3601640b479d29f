"""Reconnect: the redial policy machine (fast while young, bounded, jitter, fatal causes, stability reset).

``young=()`` gives the plain exponential backoff whose shape the first tests pin down.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from thalovant.core.client.reconnect import (
    MAX_ATTEMPTS_PER_10_MINUTES,
    MAX_ATTEMPTS_PER_MINUTE,
    TABLE,
    GiveUp,
    Jitter,
    LinkLost,
    LinkUp,
    OpenLink,
    OpenRequested,
    Reconnect,
    ReconnectConfig,
    ReconnectState,
    Served,
    UserClose,
)
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Input, Note, Output, Tick

LOST = LinkLost(reason="connection reset", retryable=True)


def fixed(byte: int):
    return lambda n: bytes([byte]) + bytes(n - 1)


def waits_for(machine: Reconnect, failures: int) -> list[float]:
    """Fail ``failures`` times in a row and return each wait."""
    now = 0.0
    assert machine.handle(OpenRequested(), now=now) == [OpenLink(attempt=1)]
    waits = []
    for i in range(failures):
        outs = machine.handle(LOST, now=now)
        assert len(outs) == 1 and isinstance(outs[0], Note), outs
        deadline = machine.deadline
        assert deadline is not None and deadline >= now
        waits.append(deadline - now)
        if deadline > now:
            assert machine.handle(Tick(), now=(now + deadline) / 2) == []  # early tick harmless
        now = deadline
        assert machine.handle(Tick(), now=now) == [OpenLink(attempt=i + 2)]
    return waits


def test_full_jitter_with_extreme_entropy_spans_zero_to_the_capped_exponential() -> None:
    cfg = ReconnectConfig(base=1.0, cap=8.0, jitter=Jitter.FULL, young=())
    assert waits_for(Reconnect(entropy=fixed(0x00), config=cfg), 6) == [0.0] * 6
    high = waits_for(Reconnect(entropy=fixed(0xFF), config=cfg), 6)
    for wait, span in zip(high, [1, 2, 4, 8, 8, 8], strict=True):
        assert span * 0.99 < wait < span


def test_equal_jitter_keeps_at_least_half_the_span() -> None:
    cfg = ReconnectConfig(base=0.5, cap=4.0, jitter=Jitter.EQUAL, young=())
    assert waits_for(Reconnect(entropy=fixed(0x00), config=cfg), 5) == [0.25, 0.5, 1.0, 2.0, 2.0]


@settings(max_examples=200, deadline=None)
@given(
    draws=st.lists(st.binary(min_size=4, max_size=4), min_size=8, max_size=8),
    jitter=st.sampled_from(list(Jitter)),
    base=st.floats(min_value=0.01, max_value=2.0),
    cap=st.floats(min_value=2.0, max_value=60.0),
)
def test_backoff_bounds_hold_for_any_entropy(draws: list[bytes], jitter: Jitter, base: float, cap: float) -> None:
    it = iter(draws)
    m = Reconnect(entropy=lambda n: next(it), config=ReconnectConfig(base=base, cap=cap, jitter=jitter, young=()))
    waits = waits_for(m, 8)
    eps = 1e-9  # waits are measured as deadline - now, so allow float rounding
    for n, wait in enumerate(waits, start=1):
        span = min(cap, base * 2 ** (n - 1))
        assert -eps <= wait <= cap + eps
        if jitter is Jitter.FULL:
            assert wait < span + eps
        elif jitter is Jitter.EQUAL:
            assert span / 2 - eps <= wait < span + eps
        else:
            assert base - eps <= wait <= cap + eps


def test_jitter_uses_the_entropy_it_is_given() -> None:
    cfg = ReconnectConfig(base=1.0, cap=10.0, jitter=Jitter.FULL, young=())
    a = waits_for(Reconnect(entropy=fixed(0x40), config=cfg), 3)
    b = waits_for(Reconnect(entropy=fixed(0xC0), config=cfg), 3)
    assert a == [0.25, 0.5, 1.0] and b == [0.75, 1.5, 3.0]


@pytest.mark.parametrize(
    ("lost", "reason", "auth"),
    [
        (LinkLost(reason="HTTP 403", retryable=False, auth=True), "not retrying, credentials refused: HTTP 403", True),
        (LinkLost(reason="1008", retryable=True, auth=True), "not retrying, credentials refused: 1008", True),
        (LinkLost(reason="unsupported hub", retryable=False), "not retrying: unsupported hub", False),
    ],
)
def test_fatal_causes_give_up_at_once(lost: LinkLost, reason: str, auth: bool) -> None:
    m = Reconnect(entropy=fixed(0))
    m.handle(OpenRequested(), now=0.0)
    m.handle(LinkUp(), now=1.0)
    assert m.handle(lost, now=2.0) == [GiveUp(reason=reason, auth=auth)]
    assert m.state is ReconnectState.GAVE_UP and m.finished and m.deadline is None
    assert m.handle(Tick(), now=100.0) == []


def test_max_attempts_gives_up_with_the_last_error() -> None:
    m = Reconnect(entropy=fixed(0x80), config=ReconnectConfig(max_attempts=3, base=0.1, cap=1.0))
    now = 0.0
    opens = m.handle(OpenRequested(), now=now)
    for _ in range(2):
        m.handle(LOST, now=now)
        now = m.deadline or now
        opens += m.handle(Tick(), now=now)
    assert opens == [OpenLink(attempt=1), OpenLink(attempt=2), OpenLink(attempt=3)]
    assert m.handle(LinkLost(reason="refused", retryable=True), now=now) == [
        GiveUp(reason="gave up after 3 attempt(s); last error: refused")
    ]


def test_a_stable_link_resets_the_attempt_count_but_a_flapping_one_does_not() -> None:
    cfg = ReconnectConfig(base=1.0, cap=60.0, stable_after=10.0, jitter=Jitter.EQUAL)
    m = Reconnect(entropy=fixed(0), config=cfg)
    m.handle(OpenRequested(), now=0.0)
    for t in (0.0, 1.0, 3.0):  # flapping: up then lost at once
        m.handle(LinkUp(), now=t)
        m.handle(LOST, now=t + 0.1)
        m.handle(Tick(), now=m.deadline or 0.0)
    assert m.attempt == 4
    m.handle(LinkUp(), now=20.0)
    m.handle(LOST, now=40.0)  # up for 20 s: stable
    assert m.deadline == 40.125  # a new, young outage: the first step's span (equal jitter, u=0: span/2)
    assert m.handle(Tick(), now=40.125) == [OpenLink(attempt=1)]


def test_user_close_stops_everything_and_late_facts_are_ignored() -> None:
    m = Reconnect(entropy=fixed(0x80))
    m.handle(OpenRequested(), now=0.0)
    m.handle(LOST, now=0.0)
    assert m.deadline is not None
    assert m.handle(UserClose(), now=0.1) == []
    assert m.state is ReconnectState.CLOSED and m.deadline is None and m.finished
    assert m.handle(LinkUp(), now=0.2) == [] and m.handle(LOST, now=0.3) == [] and m.handle(Tick(), now=99) == []


def test_misuse_raises_and_config_is_validated() -> None:
    m = Reconnect(entropy=fixed(0))
    m.handle(OpenRequested(), now=0.0)
    with pytest.raises(LocalProtocolError):
        m.handle(OpenRequested(), now=0.0)
    assert m.state is ReconnectState.CONNECTING
    bad_young = [{"young": ((5.0, 0.1), (2.0, 0.2))}, {"young": ((1.0, 0.0),)}, {"young": ((0.0, 1.0),)}]
    for bad in ({"base": 0.0}, {"base": 5.0, "cap": 1.0}, {"max_attempts": 0}, *bad_young):
        with pytest.raises(LocalProtocolError):
            ReconnectConfig(**bad)  # type: ignore[arg-type]


def test_transition_table_is_consistent() -> None:
    for (state, kind), row in TABLE.items():
        assert isinstance(state, ReconnectState) and issubclass(kind, Input)
        assert getattr(Reconnect, row.act.__name__) is row.act
        assert all(isinstance(end, ReconnectState) for end in row.ends)


class ReconnectModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = Reconnect(entropy=fixed(0x55), config=ReconnectConfig(base=0.2, cap=5.0, max_attempts=6))
        self.now = 0.0
        self.link_open = False
        self.last_attempt = 0
        self.gave_up = 0
        self.feed(OpenRequested())

    def feed(self, inp: Input) -> list[Output]:
        before = self.m.state
        row = TABLE.get((before, type(inp)))
        outs = self.m.handle(inp, now=self.now)
        assert self.m.state in (row.ends if row else {before}), "the step left the table's states"
        for o in outs:
            if isinstance(o, OpenLink):
                assert not self.link_open, "OpenLink while a link is open"
                assert o.attempt == 1 or o.attempt == self.last_attempt + 1
                self.last_attempt = o.attempt
                self.link_open = True
            elif isinstance(o, GiveUp):
                self.gave_up += 1
        return outs

    @rule()
    def up(self) -> None:
        if self.link_open:
            self.feed(LinkUp())

    @rule()
    def served(self) -> None:
        self.feed(Served())

    @rule(retryable=st.booleans(), auth=st.booleans(), weight=st.integers(0, 9))
    def lost(self, retryable: bool, auth: bool, weight: int) -> None:
        if self.link_open:
            self.link_open = False
            fatal = weight == 0  # mostly retryable
            self.feed(LinkLost(reason="x", retryable=retryable or not fatal, auth=auth and fatal))

    @rule(dt=st.floats(min_value=0, max_value=20))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.feed(Tick())

    @rule()
    def close(self) -> None:
        self.feed(UserClose())
        self.link_open = False

    @invariant()
    def deadline_only_while_waiting_and_not_in_the_past(self) -> None:
        d = self.m.deadline
        assert (d is not None) == (self.m.state is ReconnectState.WAITING)
        assert d is None or d >= self.now

    @invariant()
    def gives_up_at_most_once(self) -> None:
        assert self.gave_up <= 1
        assert self.last_attempt <= 6


TestReconnectModel = ReconnectModel.TestCase
TestReconnectModel.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)


def test_reconnect_drives_fresh_http_links_until_one_is_up_and_gives_up_on_refused_keys() -> None:
    import json

    from thalovant.core.links.base import LinkDown as LinkDownOut
    from thalovant.core.links.base import LinkUp as LinkUpOut
    from thalovant.core.links.base import Started
    from thalovant.core.links.http_poll import HttpPoll, HttpPollConfig, RequestFailed, ResponseReceived

    def new_link() -> HttpPoll:
        return HttpPoll(
            authorization="dTprZXk=", useragent="t", entropy=fixed(0), config=HttpPollConfig(reset_on_start=False)
        )

    policy = Reconnect(entropy=fixed(0x80), config=ReconnectConfig(base=1.0, cap=4.0))
    now, opened = 0.0, policy.handle(OpenRequested(), now=0.0)
    answers = [RequestFailed(req_id=1, kind="connect"), RequestFailed(req_id=1, kind="connect")]
    answers.append(ResponseReceived(req_id=1, status=200, body=json.dumps({"status": "Connected"}).encode()))
    for answer in answers:
        assert [type(o) for o in opened] == [OpenLink]
        link = new_link()
        link.handle(Started(), now=now)
        (signal,) = [o for o in link.handle(answer, now=now) if isinstance(o, LinkDownOut | LinkUpOut)]
        if isinstance(signal, LinkUpOut):
            policy.handle(LinkUp(), now=now)
            break
        policy.handle(LinkLost.from_link_down(signal), now=now)
        now = policy.deadline or now
        opened = policy.handle(Tick(), now=now)
    assert policy.state is ReconnectState.UP and policy.attempt == 3
    refused = new_link()
    refused.handle(Started(), now=now)
    (down,) = refused.handle(ResponseReceived(req_id=1, status=500, body=b'{"error": "Connection failed"}'), now=now)
    assert isinstance(down, LinkDownOut) and down.auth
    assert policy.handle(LinkLost.from_link_down(down), now=now + 1) == [
        GiveUp(reason="not retrying, credentials refused: hub refused the credentials (HTTP 500)", auth=True)
    ]


R = ReconnectState


def reconnect_in(state: ReconnectState) -> Reconnect:
    m = Reconnect(entropy=fixed(0x80), config=ReconnectConfig(base=1.0))
    steps: dict[ReconnectState, list[Input]] = {
        R.IDLE: [],
        R.CONNECTING: [OpenRequested()],
        R.UP: [OpenRequested(), LinkUp()],
        R.WAITING: [OpenRequested(), LOST],
        R.CLOSED: [UserClose()],
        R.GAVE_UP: [OpenRequested(), LinkLost(reason="x", retryable=False)],
    }
    for inp in steps[state]:
        m.handle(inp, now=0.0)
    return m


RECONNECT_INPUTS: dict[type, Input] = {
    OpenRequested: OpenRequested(),
    LinkUp: LinkUp(),
    Served: Served(),
    LinkLost: LOST,
    UserClose: UserClose(),
    Tick: Tick(),
}


def test_reconnect_inputs_cover_the_table() -> None:
    assert {kind for _, kind in TABLE} <= set(RECONNECT_INPUTS)
    assert {state for state, _ in TABLE} == set(R)


@pytest.mark.parametrize("row", list(TABLE), ids=str)
def test_reconnect_row(row: tuple[ReconnectState, type]) -> None:
    """Each row, driven for real, ends in the table's state (a Tick is fed at the deadline)."""
    state, kind = row
    m = reconnect_in(state)
    assert m.state is state
    now = m.deadline if m.deadline is not None else 0.0
    m.handle(RECONNECT_INPUTS[kind], now=now)
    assert m.state is TABLE[row].to


#: (row, input, now) -> the machine must end in one of the row's exits.
RECONNECT_EXITS: list[tuple[tuple[ReconnectState, type], Input, float]] = [
    ((R.CONNECTING, LinkLost), LinkLost(reason="x", retryable=False), 0.0),
    ((R.UP, LinkLost), LinkLost(reason="x", retryable=True, auth=True), 0.0),
    ((R.WAITING, Tick), Tick(), 0.0),  # before the deadline: an early Tick changes nothing
]


def test_reconnect_every_declared_exit_is_reached() -> None:
    reached: set[tuple[object, object]] = set()
    for row, inp, now in RECONNECT_EXITS:
        m = reconnect_in(row[0])
        m.handle(inp, now=now)
        assert m.state in TABLE[row].exits, (row, m.state)
        reached.add((row, m.state))
    assert reached == {(row, end) for row, r in TABLE.items() for end in r.exits}
    m = reconnect_in(R.WAITING)
    assert m.handle(Tick(), now=0.0) == [] and m.state is R.WAITING


# ---- the default policy: fast while an outage is young, bounded when it lasts ------------------------------


def outage(entropy: Callable[[int], bytes], horizon: float, fail_after: float = 0.0) -> list[float]:
    """When a default Reconnect opens links while the hub stays down for ``horizon`` seconds
    (each attempt fails ``fail_after`` seconds after it starts)."""
    m = Reconnect(entropy=entropy)
    now, opens = 0.0, []
    outs = m.handle(OpenRequested(), now=now)
    while now <= horizon:
        opens += [now for o in outs if isinstance(o, OpenLink)]
        now += fail_after
        m.handle(LOST, now=now)
        now = m.deadline if m.deadline is not None else now
        outs = m.handle(Tick(), now=now)
    return [t for t in opens if t <= horizon]


def most_in_any_window(times: list[float], width: float) -> int:
    return max(sum(1 for u in times if t <= u <= t + width) for t in times)


def test_a_ten_minute_outage_makes_at_most_the_documented_attempts_whatever_the_entropy() -> None:
    worst = outage(fixed(0x00), 600.0)  # the shortest wait every time
    assert len(worst) <= MAX_ATTEMPTS_PER_10_MINUTES
    assert most_in_any_window(worst, 60.0) <= MAX_ATTEMPTS_PER_MINUTE
    assert len([t for t in worst if t < 5.0]) <= 41  # young: at least 0.125 s apart, then 0.25 s
    assert len([t for t in worst if 5.0 <= t < 20.0]) <= 61
    # polite when it lasts: after the first minute at most one attempt per 15 s
    late = [t for t in worst if t > 60.0]
    assert all(b - a >= 15.0 for a, b in itertools.pairwise(late))


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=4, max_size=64), fail_after=st.floats(0.0, 3.0))
def test_the_bound_holds_for_any_entropy_and_attempt_duration(seed: bytes, fail_after: float) -> None:
    draws = itertools.cycle([seed[i : i + 4].ljust(4, b"\0") for i in range(0, len(seed), 4)])
    times = outage(lambda n: next(draws), 600.0, fail_after)
    assert len(times) <= MAX_ATTEMPTS_PER_10_MINUTES
    assert most_in_any_window(times, 60.0) <= MAX_ATTEMPTS_PER_MINUTE


@settings(max_examples=100, deadline=None)
@given(back_at=st.floats(0.0, 19.0), byte=st.integers(0, 255))
def test_a_hub_back_while_the_outage_is_young_is_tried_within_the_short_cap(back_at: float, byte: int) -> None:
    opens = outage(fixed(byte), back_at + 5.0)
    first_after = min(t for t in opens if t >= back_at)
    assert first_after - back_at <= (0.25 if back_at < 5.0 else 0.5)  # the span of a young outage's step


def test_after_the_young_phase_the_waits_double_up_to_the_cap() -> None:
    m = Reconnect(entropy=fixed(0xFF), config=ReconnectConfig(base=0.5, cap=30.0))
    m.handle(OpenRequested(), now=0.0)
    now, waits = 0.0, []
    for _ in range(120):
        m.handle(LOST, now=now)
        assert m.deadline is not None
        waits.append((now, m.deadline - now))
        now = m.deadline
        m.handle(Tick(), now=now)
    assert all(0.125 <= w < 0.25 for t, w in waits if t < 5.0)
    assert all(0.25 <= w < 0.5 for t, w in waits if 5.0 <= t < 20.0)
    old = [w for t, w in waits if t >= 20.0][:8]
    spans = [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert all(span / 2 <= w < span for w, span in zip(old, spans, strict=True))


def test_a_stable_link_starts_a_new_young_outage() -> None:
    m = Reconnect(entropy=fixed(0x00))
    m.handle(OpenRequested(), now=0.0)
    now = 0.0
    while now < 100.0:  # a long outage: the waits have grown
        m.handle(LOST, now=now)
        now = m.deadline or now
        m.handle(Tick(), now=now)
    m.handle(LinkUp(), now=now)
    m.handle(LOST, now=now + 60.0)  # up for a minute, then lost
    assert m.deadline == now + 60.125  # short again


def test_a_suspected_refusal_is_retried_once_and_given_up_when_it_repeats() -> None:
    m = Reconnect(entropy=fixed(0x00))
    m.handle(OpenRequested(), now=0.0)
    suspect = LinkLost(reason="dropped right after the handshake", retryable=True, suspect=True)
    assert isinstance(m.handle(suspect, now=1.0)[0], Note)  # a hub that died at that moment looks the same
    m.handle(Tick(), now=m.deadline or 0.0)
    m.handle(LOST, now=2.0)  # then unreachable: it was a restart, the suspicion is gone
    m.handle(Tick(), now=m.deadline or 0.0)
    assert isinstance(m.handle(suspect, now=3.0)[0], Note)
    m.handle(Tick(), now=m.deadline or 0.0)
    assert m.handle(suspect, now=4.0) == [
        GiveUp(reason="not retrying, credentials refused: dropped right after the handshake", auth=True)
    ]


def test_a_link_the_hub_answered_on_ends_the_outage_when_lost() -> None:
    m = Reconnect(entropy=fixed(0x00))
    m.handle(OpenRequested(), now=0.0)
    now = 0.0
    while now < 60.0:  # an old outage: the waits have grown
        m.handle(LOST, now=now)
        now = m.deadline or now
        m.handle(Tick(), now=now)
    m.handle(LinkUp(), now=now)
    m.handle(LOST, now=now + 1.0)  # up for a second only, nothing answered: still the same outage
    assert (m.deadline or 0) - (now + 1.0) >= 7.5
    now = m.deadline or now
    m.handle(Tick(), now=now)
    m.handle(LinkUp(), now=now)
    assert m.handle(Served(), now=now + 0.1) == []
    m.handle(LOST, now=now + 1.0)  # the hub had answered: a new, young outage (a restart, not a flapping hub)
    assert m.deadline == now + 1.125 and m.attempt == 0


def test_a_suspected_refusal_with_no_attempt_left_is_reported_as_a_refusal() -> None:
    m = Reconnect(entropy=fixed(0x00), config=ReconnectConfig(max_attempts=1))  # auto_reconnect=False
    m.handle(OpenRequested(), now=0.0)
    suspect = LinkLost(reason="dropped right after the handshake", retryable=True, suspect=True)
    assert m.handle(suspect, now=1.0) == [
        GiveUp(reason="not retrying, credentials refused: dropped right after the handshake", auth=True)
    ]
