"""Liveness: the pure dead-path timer, and the WebSocket link that runs it (probe, answer, give up)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.base import InboundFrame, LinkDown, LinkUp, OutboundFrame, StopRequested
from thalovant.core.links.liveness import DEFAULT_LIVENESS, Liveness, LivenessConfig
from thalovant.core.links.ws import (
    CloseWs,
    PingWs,
    WsClosed,
    WsLink,
    WsMessage,
    WsOpened,
    WsPonged,
    WsReceiving,
    WsState,
)
from thalovant.core.machine import Input, Output, Tick

TOKEN = "dTprZXk="
CFG = LivenessConfig(idle=2.0, timeout=1.0)


def test_a_bound_below_two_seconds_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="at least 2 s"):
        LivenessConfig(idle=1.0, timeout=0.5)
    assert LivenessConfig(idle=1.0, timeout=1.0).bound == 2.0


def opened(at: float = 0.0, liveness: LivenessConfig | None = CFG) -> WsLink:
    link = WsLink(authorization=TOKEN, liveness=liveness)
    assert link.handle(WsOpened(), now=at) == [LinkUp()]
    return link


def test_defaults_are_the_documented_figures() -> None:
    assert (DEFAULT_LIVENESS.idle, DEFAULT_LIVENESS.timeout, DEFAULT_LIVENESS.bound) == (10.0, 5.0, 15.0)
    assert WsLink(authorization=TOKEN).handle(WsOpened(), now=0.0) == [LinkUp()]


@pytest.mark.parametrize("field", ["idle", "timeout"])
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), 86401.0, "5", True, None])
def test_config_refuses_bad_figures_naming_the_field(field: str, bad: object) -> None:
    with pytest.raises(LocalProtocolError, match=f"LivenessConfig.{field}"):
        LivenessConfig(**{field: bad})  # type: ignore[arg-type]


def test_timer_probes_once_then_declares_the_path_dead() -> None:
    live = Liveness(CFG, now=0.0)
    assert live.deadline == 2.0 and live.check(1.99) == "wait"
    assert live.check(2.0) == "probe" and live.probing and live.deadline == 3.0
    assert live.check(2.5) == "wait"  # the probe is out: no second one
    assert live.check(3.0) == "dead"


def test_anything_heard_answers_the_probe_and_restarts_the_quiet_spell() -> None:
    live = Liveness(CFG, now=0.0)
    assert live.check(2.0) == "probe"
    live.heard(2.4)
    assert not live.probing and live.deadline == 4.4 and live.check(3.0) == "wait"
    live.heard(1.0)  # a late report of an older arrival never moves the timer back
    assert live.deadline == 4.4


def test_ws_quiet_link_pings_and_a_pong_keeps_it_open() -> None:
    link = opened()
    assert link.deadline == 2.0
    assert link.handle(Tick(), now=1.0) == []  # an early tick changes nothing
    assert link.handle(Tick(), now=2.0) == [PingWs()]
    assert link.deadline == 3.0
    assert link.handle(WsPonged(), now=2.05) == []
    assert link.state is WsState.OPEN and link.deadline == pytest.approx(4.05)


def test_ws_any_message_counts_as_an_answer() -> None:
    link = opened()
    assert link.handle(Tick(), now=2.0) == [PingWs()]
    assert link.handle(WsMessage(data="{}"), now=2.9) == [InboundFrame(data="{}")]
    assert link.handle(Tick(), now=3.0) == []
    assert link.state is WsState.OPEN and link.deadline == pytest.approx(4.9)


def test_ws_unanswered_ping_loses_the_link_retryably_within_the_bound() -> None:
    link = opened(at=10.0)
    assert link.handle(OutboundFrame(data="x", refs=(1,)), now=10.5)  # sending is not hearing
    assert link.handle(Tick(), now=12.0) == [PingWs()]
    out = link.handle(Tick(), now=13.0)
    assert link.state is WsState.CLOSED and link.finished and link.deadline is None
    (down,) = out
    assert isinstance(down, LinkDown) and down.retryable and not down.auth and "ping" in down.reason
    assert 13.0 - 10.0 == CFG.bound
    assert link.handle(WsPonged(), now=13.1) == [] and link.handle(WsClosed(code=1006), now=13.2) == []


def test_ws_a_large_message_arriving_slowly_after_a_ping_is_not_silence() -> None:
    """The PONG queues behind an 8 MiB message that takes longer than ``timeout`` to arrive: its bytes count."""
    link = opened()
    assert link.handle(Tick(), now=2.0) == [PingWs()]
    assert link.handle(WsReceiving(), now=2.5) == []  # the first bytes of the message, no message yet
    assert link.deadline == 4.5  # heard at 2.5: the next probe is due idle seconds later
    assert link.handle(Tick(), now=4.5) == [PingWs()]
    assert link.handle(WsReceiving(), now=5.4) == []
    assert link.handle(Tick(), now=5.5) == [] and not link.finished  # once dead at 3.0 (2.0 + timeout)
    assert link.handle(WsMessage(data=b"\x00" * 10), now=7.0) == [InboundFrame(data=b"\x00" * 10)]
    assert link.handle(WsPonged(), now=7.0) == [] and link.state is WsState.OPEN


def test_ws_without_liveness_never_pings() -> None:
    link = opened(liveness=None)
    assert link.deadline is None and link.handle(Tick(), now=1e6) == []


def test_ws_closing_link_is_not_probed() -> None:
    link = opened()
    assert link.handle(StopRequested(), now=1.0) == [CloseWs(code=1000, reason="")]
    assert link.deadline == 6.0  # the close timeout, not the liveness
    assert link.handle(WsPonged(), now=1.5) == []


_STEP = st.one_of(
    st.tuples(st.just("tick"), st.floats(0, 5)),
    st.tuples(st.just("pong"), st.floats(0, 5)),
    st.tuples(st.just("msg"), st.floats(0, 5)),
    st.tuples(st.just("bytes"), st.floats(0, 5)),
    st.tuples(st.just("send"), st.floats(0, 5)),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(_STEP, max_size=40), idle=st.floats(1.0, 5), timeout=st.floats(1.0, 5))
def test_ws_never_dies_while_heard_in_time_and_always_dies_within_the_bound(
    steps: list[tuple[str, float]], idle: float, timeout: float
) -> None:
    """Any interleaving: the link is lost only when nothing was heard for at least ``idle + timeout``,
    and a Tick at the deadline after the last thing heard plus the bound always loses it."""
    cfg = LivenessConfig(idle=idle, timeout=timeout)
    link = opened(liveness=cfg)
    now, heard = 0.0, 0.0
    inputs: dict[str, Input] = {
        "tick": Tick(),
        "pong": WsPonged(),
        "msg": WsMessage(data=b"\x00"),
        "bytes": WsReceiving(),
    }
    for kind, gap in steps:
        now += gap
        inp = inputs.get(kind, OutboundFrame(data="x", refs=()))
        out: list[Output] = link.handle(inp, now=now)
        if link.finished:
            assert any(isinstance(o, LinkDown) and o.retryable for o in out)
            assert now - heard >= cfg.bound - 1e-9
            return
        if kind in ("pong", "msg", "bytes"):
            heard = now
    silent_from = now
    for _ in range(2):  # then silence, with every Tick on time: at most a probe, then the end
        assert link.deadline is not None
        now = max(now, link.deadline)
        link.handle(Tick(), now=now)
        if link.finished:
            break
    assert link.finished and now <= max(silent_from, heard + idle) + timeout + 1e-9
