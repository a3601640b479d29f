"""WsLink: upgrade target per hub generation, frame flow, close-code classification."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.base import (
    FrameNotSent,
    FrameSent,
    InboundFrame,
    LinkDown,
    LinkUp,
    OutboundFrame,
    StopRequested,
)
from thalovant.core.links.liveness import LivenessConfig
from thalovant.core.links.ws import (
    TABLE,
    CloseWs,
    SendWs,
    WsClosed,
    WsLink,
    WsMessage,
    WsOpened,
    WsPonged,
    WsReceiving,
    WsRejected,
    WsState,
    classify_close,
    is_portable_token,
    ws_target,
)
from thalovant.core.machine import Input, Note, Output, Tick

TOKEN = "VGVzdENsaWVudC8xLjA6MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # spec §11 L1


def opened(**kw: object) -> WsLink:
    link = WsLink(authorization=TOKEN, **kw)  # type: ignore[arg-type]
    assert link.handle(WsOpened(), now=0.0) == [LinkUp()]
    return link


def test_targets_raw_for_hub4_and_percent_for_hub5() -> None:
    assert WsLink(authorization=TOKEN).target == f"/?authorization={TOKEN}"
    assert WsLink(authorization=TOKEN, auth_encoding="percent").target == f"/?authorization={TOKEN[:-1]}%3D"
    assert ws_target("a+b/c=", "percent") == "/?authorization=a%2Bb%2Fc%3D"
    with pytest.raises(LocalProtocolError):
        ws_target(TOKEN, "base64")  # type: ignore[arg-type]


def test_portable_token_trick() -> None:
    assert not is_portable_token(TOKEN)  # ends with "="
    assert is_portable_token("VGVzdDoxMjM0NTY3OGFiY2RlZjAxMjM0NTY3ODlhYmNkZWY")
    assert not is_portable_token("ab+c")


def test_token_stays_out_of_repr_and_headers() -> None:
    link = WsLink(authorization=TOKEN, useragent="thalovant/0.1")
    assert TOKEN not in repr(link) and link.redacted_target == "/?authorization=***"
    assert link.headers == (("User-Agent", "thalovant/0.1"),)


def test_frames_queue_while_connecting_and_flow_when_open() -> None:
    link = WsLink(authorization=TOKEN)
    assert link.handle(OutboundFrame(data="early", refs=(1,)), now=0.0) == []
    assert link.handle(WsOpened(), now=0.1) == [LinkUp(), SendWs(data="early", refs=(1,)), FrameSent(refs=(1,))]
    assert link.handle(OutboundFrame(data=b"\x01", refs=(2, 3)), now=0.2) == [
        SendWs(data=b"\x01", refs=(2, 3)),
        FrameSent(refs=(2, 3)),
    ]
    assert link.handle(WsMessage(data='{"msg_type":"hello"}'), now=0.3) == [InboundFrame(data='{"msg_type":"hello"}')]
    assert link.handle(WsMessage(data=b"\x00"), now=0.3) == [InboundFrame(data=b"\x00")]


def test_polite_close_waits_for_the_echo_or_times_out() -> None:
    link = opened(close_timeout=2.0)
    assert link.handle(StopRequested(), now=1.0) == [CloseWs(code=1000, reason="")]
    assert link.state is WsState.CLOSING and link.deadline == 3.0
    assert link.handle(OutboundFrame(data="x", refs=(5,)), now=1.5) == [FrameNotSent(refs=(5,), reason="link closed")]
    assert link.handle(Tick(), now=2.9) == []
    assert link.handle(WsClosed(code=1000, reason=""), now=2.0) == [
        LinkDown(reason="closed by the client", retryable=False)
    ]
    assert link.finished and link.deadline is None
    slow = opened(close_timeout=2.0)
    slow.handle(StopRequested(), now=0.0)
    outs = slow.handle(Tick(), now=2.0)
    assert isinstance(outs[0], Note) and outs[-1] == LinkDown(reason="closed by the client", retryable=False)


def test_stop_while_connecting_ends_at_once() -> None:
    link = WsLink(authorization=TOKEN)
    link.handle(OutboundFrame(data="q", refs=(1,)), now=0.0)
    assert link.handle(StopRequested(), now=0.0) == [
        CloseWs(code=1000, reason=""),
        FrameNotSent(refs=(1,), reason="link down"),
        LinkDown(reason="closed by the client", retryable=False),
    ]
    assert link.handle(WsOpened(), now=0.1) == []  # late fact ignored


@pytest.mark.parametrize(
    ("code", "reason", "greeted", "retryable", "auth"),
    [
        (1008, "invalid api key", True, False, True),  # hub 5.x unknown key
        (1008, "invalid authorization", False, False, True),
        (1008, "this node requires the v3 Noise handshake", True, False, False),
        (1008, "invalid message", True, False, False),
        (1008, "handshake failure: ", True, True, False),  # hub 5.x: KKpsk0 after its key changed: retry with XX
        (1008, "client Noise static key contradicts the pinned key", True, False, False),
        (None, "", False, False, True),  # hub 4.x unknown key: close without status
        (1005, "", False, False, True),
        (1006, "", False, True, False),  # hub 4.x bad token, or the network
        (1005, "", True, True, False),
        (1006, "", True, True, False),
        (1000, "", True, True, False),
        (1001, "going away", True, True, False),
        (1011, "client database unavailable", False, True, False),
        (1012, "", True, True, False),
        (4003, "QUERY is not allowed for this client", True, True, False),
        (1002, "", True, False, False),
        (1009, "", True, False, False),
        (1015, "", False, False, False),
        (4999, "custom", True, True, False),
    ],
)
def test_close_code_classification(code: int | None, reason: str, greeted: bool, retryable: bool, auth: bool) -> None:
    down = classify_close(code, reason, greeted=greeted)
    assert (down.retryable, down.auth) == (retryable, auth), down.reason
    if reason:
        assert reason[:20] in down.reason


def test_classification_depends_on_whether_the_hub_greeted() -> None:
    fresh = opened()
    assert fresh.handle(WsClosed(code=None), now=1.0)[-1].auth is True  # type: ignore[attr-defined]
    greeted = opened()
    greeted.handle(WsMessage(data="{}"), now=0.5)
    down = greeted.handle(WsClosed(code=None), now=1.0)[-1]
    assert isinstance(down, LinkDown) and down.retryable and not down.auth


@pytest.mark.parametrize(("status", "retryable", "auth"), [(401, False, True), (403, False, True), (502, True, False)])
def test_upgrade_rejections(status: int, retryable: bool, auth: bool) -> None:
    link = WsLink(authorization=TOKEN)
    (down,) = link.handle(WsRejected(status=status), now=0.0)
    assert isinstance(down, LinkDown) and (down.retryable, down.auth) == (retryable, auth)


def test_connect_failure_is_retryable() -> None:
    link = WsLink(authorization=TOKEN)
    assert link.handle(WsClosed(code=1006, reason="connection refused"), now=0.0) == [
        LinkDown(reason="could not connect (connection refused)", retryable=True)
    ]


def test_misuse_raises() -> None:
    with pytest.raises(LocalProtocolError):
        WsLink(authorization="")
    link = opened()
    with pytest.raises(LocalProtocolError):
        link.handle(Input(), now=0.0)
    assert link.state is WsState.OPEN


def test_transition_table_is_consistent() -> None:
    for (state, kind), row in TABLE.items():
        assert isinstance(state, WsState) and issubclass(kind, Input)
        assert getattr(WsLink, row.act.__name__) is row.act
        assert all(isinstance(end, WsState) for end in row.ends)


ws_inputs = st.one_of(
    st.builds(WsOpened),
    st.builds(WsRejected, status=st.integers(-10, 1000)),
    st.builds(WsMessage, data=st.one_of(st.text(max_size=20), st.binary(max_size=20))),
    st.builds(WsClosed, code=st.one_of(st.none(), st.integers(-(2**31), 2**31)), reason=st.text(max_size=200)),
    st.builds(OutboundFrame, data=st.text(max_size=5), refs=st.tuples(st.integers(0, 10**6))),
    st.builds(StopRequested),
    st.builds(Tick),
    st.builds(WsPonged),
    st.builds(WsReceiving),
)


@settings(max_examples=200, deadline=None)
@given(inputs=st.lists(ws_inputs, max_size=12))
def test_garbage_sequences_never_raise_and_end_consistently(inputs: list[Input]) -> None:
    link = WsLink(authorization=TOKEN, liveness=LivenessConfig(idle=1.0, timeout=1.0))  # ticks 1 s apart: it fires
    downs, answered, sent = 0, 0, 0
    for i, inp in enumerate(inputs):
        before, row = link.state, TABLE.get((link.state, type(inp)))
        outs = link.handle(inp, now=float(i))
        assert link.state in (row.ends if row else {before})  # every step stays within its table row
        assert all(isinstance(o, Output) for o in outs)
        downs += sum(isinstance(o, LinkDown) for o in outs)
        answered += sum(isinstance(o, FrameSent | FrameNotSent) for o in outs)
        sent += isinstance(inp, OutboundFrame)
        for o in outs:
            if isinstance(o, LinkDown):
                assert all(c.isprintable() for c in o.reason)
                assert not (o.auth and o.retryable)
    assert downs == (1 if link.finished else 0)
    if link.finished:
        assert answered == sent  # every frame answered exactly once
