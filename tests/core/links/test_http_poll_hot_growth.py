"""HttpPoll ``hot_growth``: inside the hot window the poll interval grows geometrically from ``hot_interval``.

Measured on the local hub 4.x (benchmarks/NOTES.md): a constant 5 ms hot interval made one ask that is
followed by a quiet second cost the hub about 170 HTTP requests and 77 ms of CPU; growth 1.2 makes it
about 27 requests and 28 ms, with the same back-to-back ask latency. ``hot_growth=1.0`` keeps the
constant interval.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.base import FrameSent, LinkUp, OutboundFrame
from thalovant.core.links.http_poll import HttpPoll, HttpPollConfig, HttpState, ResponseReceived, Started, StartRequest
from thalovant.core.machine import Output, Tick

TOKEN = "dGhhbG92YW50LXRlc3QvMTphYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OQ"


def _ok(req_id: int, obj: object) -> ResponseReceived:
    return ResponseReceived(req_id=req_id, status=200, headers=(), body=json.dumps(obj).encode())


def _requests(outs: list[Output]) -> list[StartRequest]:
    return [o for o in outs if isinstance(o, StartRequest)]


def _up(**cfg: float) -> tuple[HttpPoll, StartRequest]:
    m = HttpPoll(authorization=TOKEN, useragent="thalovant-test/1", entropy=lambda n: b"\x80" * n,
                 config=HttpPollConfig(**cfg))  # type: ignore[arg-type]  # fmt: skip
    (reset,) = _requests(m.handle(Started(), now=0.0))
    (conn,) = _requests(m.handle(_ok(reset.req_id, {"status": "Disconnected"}), now=0.0))
    outs = m.handle(_ok(conn.req_id, {"status": "Connected"}), now=0.0)
    assert outs[0] == LinkUp() and m.state is HttpState.UP
    (poll,) = _requests(outs)
    return m, poll


def _empty_polls(m: HttpPoll, poll: StartRequest, now: float, count: int) -> tuple[list[float], StartRequest, float]:
    """Answer ``count`` polls with nothing; return the waits before each next poll."""
    waits = []
    for _ in range(count):
        outs = m.handle(_ok(poll.req_id, {"messages": []}), now=now)
        if not _requests(outs):
            deadline = m.deadline
            assert deadline is not None and deadline > now
            waits.append(deadline - now)
            now = deadline
            outs = m.handle(Tick(), now=now)
        else:
            waits.append(0.0)
        (poll,) = _requests(outs)
    return waits, poll, now


def _after_send(m: HttpPoll, poll: StartRequest, now: float) -> None:
    (send,) = _requests(m.handle(OutboundFrame(data="x", refs=(1,)), now=now))
    assert m.handle(_ok(send.req_id, {"status": "message sent"}), now=now) == [FrameSent(refs=(1,))]


@settings(max_examples=120, deadline=None)
@given(
    growth=st.floats(min_value=1.0, max_value=3.0),
    interval=st.floats(min_value=0.001, max_value=0.05),
    idle_max=st.floats(min_value=0.06, max_value=1.0),
)
def test_hot_waits_start_at_the_interval_grow_by_the_factor_and_stay_capped(
    growth: float, interval: float, idle_max: float
) -> None:
    m, poll = _up(hot_window=30.0, hot_interval=interval, hot_growth=growth, idle_first=0.06, idle_max=idle_max)
    _after_send(m, poll, 0.0)
    waits, poll, now = _empty_polls(m, poll, 0.0, 25)
    assert waits[0] == 0.0  # the poll right after a send goes out at once
    hot = waits[1:]
    assert hot[0] == pytest.approx(interval)
    for before, after in itertools.pairwise(hot):
        assert after == pytest.approx(min(idle_max, before * growth)) or after == pytest.approx(idle_max)
        assert before <= after + 1e-12 <= idle_max + 1e-9
    # a non-empty reply starts the growth again from hot_interval
    frame = {"messages": ["frame"], "b64_messages": ["ZnJhbWU="]}  # text or binary poll: one frame either way
    outs = m.handle(_ok(poll.req_id, frame), now=now)
    (poll,) = _requests(outs)
    m.handle(_ok(poll.req_id, {"messages": []}), now=now)
    assert m.deadline == pytest.approx(now + interval)


def test_growth_one_keeps_the_constant_hot_interval_and_a_send_resets_growth() -> None:
    m, poll = _up(hot_window=0.1, hot_interval=0.01, idle_max=0.2)
    _after_send(m, poll, 0.0)
    waits, _, _ = _empty_polls(m, poll, 0.0, 6)
    assert [round(w, 6) for w in waits] == [0.0, 0.01, 0.01, 0.01, 0.01, 0.01]
    m2, poll2 = _up(hot_window=5.0, hot_interval=0.01, hot_growth=2.0, idle_max=0.2)
    _after_send(m2, poll2, 0.0)
    waits2, poll2, now2 = _empty_polls(m2, poll2, 0.0, 7)
    assert [round(w, 6) for w in waits2] == [0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.2]
    _after_send(m2, poll2, now2)  # a send completes while a poll is out
    waits3, _, _ = _empty_polls(m2, poll2, now2, 3)
    assert [round(w, 6) for w in waits3] == [0.0, 0.01, 0.02]


def test_fewer_polls_in_a_quiet_hot_window() -> None:
    def polls_in_window(growth: float) -> int:
        m, poll = _up(hot_window=1.0, hot_interval=0.005, hot_growth=growth, idle_max=0.5)
        _after_send(m, poll, 0.0)
        now, count = 0.0, 0
        while now < 1.0:
            _, poll, now = _empty_polls(m, poll, now, 1)
            count += 1
        return count

    assert polls_in_window(1.0) >= 190
    assert polls_in_window(1.2) <= 25


@pytest.mark.parametrize("growth", [0.99, 0.0, -1.0, float("nan")])
def test_growth_below_one_or_nan_is_refused(growth: float) -> None:
    with pytest.raises(LocalProtocolError):
        HttpPollConfig(hot_growth=growth)
