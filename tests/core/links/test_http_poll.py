"""HttpPoll: the HTTP polling link machine (spec §8.2)."""

from __future__ import annotations

import base64
import json

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
    form_encode,
    percent_encode,
)
from thalovant.core.links.http_poll import (
    TABLE,
    CancelRequest,
    HttpPoll,
    HttpPollConfig,
    HttpState,
    RequestFailed,
    ResponseProgress,
    ResponseReceived,
    Started,
    StartRequest,
)
from thalovant.core.machine import Input, Output, Tick

# L1 token from spec §11 (TestClient/1.0 + a 32-hex key): contains "=" and "/".
TOKEN = "VGVzdENsaWVudC8xLjA6MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
ENC = "VGVzdENsaWVudC8xLjA6MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY%3D"


def const_entropy(byte: int = 0x80):
    return lambda n: bytes([byte]) * n


def machine(*, byte: int = 0x80, **cfg: object) -> HttpPoll:
    return HttpPoll(
        authorization=TOKEN,
        useragent="thalovant-test/1",
        entropy=const_entropy(byte),
        config=HttpPollConfig(**cfg),  # type: ignore[arg-type]
    )


def ok(req_id: int, obj: object, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> ResponseReceived:
    return ResponseReceived(req_id=req_id, status=status, headers=headers, body=json.dumps(obj).encode())


def requests(outs: list[Output]) -> list[StartRequest]:
    return [o for o in outs if isinstance(o, StartRequest)]


def up(now: float = 0.0, **cfg: object) -> tuple[HttpPoll, StartRequest]:
    """A machine in UP with its first poll (GET /get_messages) in flight."""
    m = machine(**cfg)
    (reset,) = m.handle(Started(), now=now)
    assert isinstance(reset, StartRequest)
    (conn,) = m.handle(ok(reset.req_id, {"status": "Disconnected"}), now=now)
    assert isinstance(conn, StartRequest)
    outs = m.handle(ok(conn.req_id, {"status": "Connected"}), now=now)
    assert outs[0] == LinkUp()
    (poll,) = requests(outs)
    assert m.state is HttpState.UP
    return m, poll


# ---- wire shape ---------------------------------------------------------------------------------


def test_percent_encoding_of_the_token_matches_spec_3_2() -> None:
    assert percent_encode(TOKEN) == ENC
    assert percent_encode("a+b/c=") == "a%2Bb%2Fc%3D"
    assert percent_encode("é ~") == "%C3%A9%20~"


def test_start_resets_then_connects_with_exact_targets_and_headers() -> None:
    m = machine()
    (reset,) = m.handle(Started(), now=1.0)
    assert (reset.method, reset.target, reset.body) == ("POST", f"/disconnect?authorization={ENC}", b"")
    assert ("Content-Type", "application/x-www-form-urlencoded") in reset.headers
    assert not any(name.lower() in ("host", "content-length", "authorization") for name, _ in reset.headers)
    assert ("User-Agent", "thalovant-test/1") in reset.headers
    assert m.state is HttpState.RESETTING
    (conn,) = m.handle(ok(reset.req_id, {"error": "Already Disconnected"}), now=1.1)
    assert (conn.method, conn.target) == ("POST", f"/connect?authorization={ENC}")
    assert m.state is HttpState.CONNECTING


def test_reset_can_be_turned_off_and_base_path_prefixes_targets() -> None:
    m = machine(reset_on_start=False, base_path="/hive")
    (conn,) = m.handle(Started(), now=0.0)
    assert conn.target == f"/hive/connect?authorization={ENC}"


def test_send_message_form_body_and_polls_alternate_queues() -> None:
    m, poll = up()
    assert (poll.method, poll.target, poll.body) == ("GET", f"/get_messages?authorization={ENC}", b"")
    assert not any(h[0] == "Content-Type" for h in poll.headers)
    (send,) = m.handle(OutboundFrame(data='{"msg_type": "hello"}', refs=(7,)), now=0.1)
    assert (send.method, send.target) == ("POST", f"/send_message?authorization={ENC}")
    assert send.body == b"message=%7B%22msg_type%22%3A%20%22hello%22%7D"
    (poll2,) = m.handle(ok(poll.req_id, {"status": "messages retrieved", "messages": []}), now=0.2)
    assert poll2.target == f"/get_binary_messages?authorization={ENC}"


def test_binary_frames_are_refused_on_hub4_and_sent_as_base64_on_hub5() -> None:
    m, _ = up()
    assert m.handle(OutboundFrame(data=b"\x01\x02", refs=(1,)), now=0.0) == [
        FrameNotSent(refs=(1,), reason="this hub cannot receive binary frames over HTTP")
    ]
    m5, _ = up(binary_uploads=True)
    (send,) = m5.handle(OutboundFrame(data=b"\xff\x00", refs=(2,)), now=0.0)
    assert send.body == form_encode((("message", base64.b64encode(b"\xff\x00").decode()), ("binary", "1")))


def test_token_never_appears_in_reprs() -> None:
    m, poll = up()
    assert TOKEN[:20] not in repr(poll) and ENC not in repr(poll)
    assert poll.redacted_target == "/get_messages?authorization=***"
    assert TOKEN[:20] not in repr(m)


# ---- answers ------------------------------------------------------------------------------------


def test_poll_answers_become_inbound_frames_in_order_and_poll_again_at_once() -> None:
    m, poll = up()
    outs = m.handle(ok(poll.req_id, {"messages": ['{"a":1}', '{"b":2}']}), now=0.5)
    assert outs[:2] == [InboundFrame(data='{"a":1}'), InboundFrame(data='{"b":2}')]
    (binpoll,) = requests(outs)
    outs = m.handle(ok(binpoll.req_id, {"b64_messages": [base64.b64encode(b"\x00\x01").decode(), "!!bad"]}), now=0.6)
    assert outs[0] == InboundFrame(data=b"\x00\x01")
    assert "skipped 1" in outs[1].text  # type: ignore[attr-defined]
    assert len(requests(outs)) == 1  # non-empty answer: poll again at once


def test_idle_backoff_grows_from_zero_to_the_cap() -> None:
    m, poll = up(idle_first=0.025, idle_factor=2.0, idle_max=0.15)
    now, waits = 0.0, []
    for _ in range(7):
        outs = m.handle(ok(poll.req_id, {"messages": []}), now=now)
        if not requests(outs):
            deadline = m.deadline
            assert deadline is not None and deadline > now
            waits.append(round(deadline - now, 6))
            assert m.handle(Tick(), now=deadline - 0.001) == []  # early tick is harmless
            now = deadline
            outs = m.handle(Tick(), now=now)
        else:
            waits.append(0.0)
        (poll,) = requests(outs)
    assert waits == [0.0, 0.025, 0.05, 0.1, 0.15, 0.15, 0.15]


def test_send_completion_resets_idle_and_polls_right_away() -> None:
    m, poll = up()
    for i in range(4):  # build up some idle delay
        outs = m.handle(ok(poll.req_id, {"messages": []}), now=float(i))
        (poll,) = requests(outs) or requests(m.handle(Tick(), now=m.deadline or 0.0))
    (send,) = m.handle(OutboundFrame(data="x", refs=(3,)), now=10.0)
    outs = m.handle(ok(send.req_id, {"status": "message sent"}), now=10.1)
    assert outs == [FrameSent(refs=(3,))]
    outs = m.handle(ok(poll.req_id, {"messages": []}), now=10.2)
    assert len(requests(outs)) == 1  # poll_soon wins over the idle delay


def test_hot_window_after_a_send_polls_at_a_steady_short_interval_then_backs_off() -> None:
    m, poll = up(hot_window=0.1, hot_interval=0.01, idle_first=0.025, idle_factor=2.0, idle_max=0.2)
    (send,) = m.handle(OutboundFrame(data="x", refs=(1,)), now=0.0)
    assert m.handle(ok(send.req_id, {"status": "message sent"}), now=0.0) == [FrameSent(refs=(1,))]
    now, waits = 0.0, []
    for _ in range(16):
        outs = m.handle(ok(poll.req_id, {"messages": []}), now=now)
        if not requests(outs):
            deadline = m.deadline
            assert deadline is not None and deadline > now
            waits.append(round(deadline - now, 6))
            now = deadline
            outs = m.handle(Tick(), now=now)
        else:
            waits.append(0.0)
        (poll,) = requests(outs)
    hot = [w for w in waits[1:] if w == 0.01]
    assert waits[0] == 0.0  # poll_soon after the send
    assert len(hot) >= 8  # ~0.1 s of 10 ms polls while an answer is expected
    cold = waits[1 + len(hot) :]
    assert cold[:3] == [0.0, 0.025, 0.05]  # then the ordinary idle backoff, from zero
    # a non-empty reply re-opens the hot window
    outs = m.handle(ok(poll.req_id, {"messages": ["frame"]}), now=now)
    (poll,) = requests(outs)
    m.handle(ok(poll.req_id, {"messages": []}), now=now)
    assert m.deadline == pytest.approx(now + 0.01)


def test_a_send_that_never_left_is_reported_unsent_and_the_link_goes_down() -> None:
    from thalovant.core.links.http_wire import NOT_SENT

    m, _poll = up()
    (send,) = m.handle(OutboundFrame(data="x", refs=(7,)), now=1.0)
    outs = m.handle(RequestFailed(req_id=send.req_id, kind=NOT_SENT, detail="connection refused"), now=1.1)
    assert outs[0] == FrameNotSent(refs=(7,), reason="the hub could not be reached (not sent)", unsent=True)
    downs = [o for o in outs if isinstance(o, LinkDown)]
    assert len(downs) == 1 and downs[0].retryable and not downs[0].auth
    # any other failure of a send may have reached the hub: never marked unsent
    m2, _ = up()
    (send2,) = m2.handle(OutboundFrame(data="y", refs=(8,)), now=1.0)
    outs2 = m2.handle(RequestFailed(req_id=send2.req_id, kind="reset", detail="peer reset"), now=1.1)
    assert next(o for o in outs2 if isinstance(o, FrameNotSent)).unsent is False


def test_hub4_error_with_status_200_on_send_means_dropped_client() -> None:
    m, poll = up()
    (send,) = m.handle(OutboundFrame(data="x", refs=(1,)), now=0.0)
    m.handle(OutboundFrame(data="y", refs=(2,)), now=0.0)
    outs = m.handle(ok(send.req_id, {"error": "Client is not connected"}), now=0.1)
    # the hub refused it without handling it: it may go out again on the next link
    assert outs[0] == FrameNotSent(refs=(1,), reason="hub answered HTTP 200: Client is not connected", unsent=True)
    assert CancelRequest(req_id=poll.req_id) in outs
    assert FrameNotSent(refs=(2,), reason="link down") in outs
    assert outs[-1] == LinkDown(reason="the hub dropped this client", retryable=True)
    assert m.state is HttpState.FAILED and m.finished and m.deadline is None


def test_a_poll_refused_by_the_hubs_port_takes_the_link_down_at_once() -> None:
    from thalovant.core.links.http_wire import NOT_SENT

    m, poll = up()
    outs = m.handle(RequestFailed(req_id=poll.req_id, kind=NOT_SENT, detail="connection refused"), now=0.1)
    assert outs[-1] == LinkDown(reason="the hub could not be reached: connection refused", retryable=True)
    assert m.state is HttpState.FAILED  # the hub's process is gone, and our session with it: no backoff first
    m2, poll2 = up()
    outs = m2.handle(RequestFailed(req_id=poll2.req_id, kind="reset"), now=0.1)
    assert not [o for o in outs if isinstance(o, LinkDown)]  # a reset is retried after a backoff


def test_500_on_send_fails_that_frame_but_keeps_the_link() -> None:
    m, _ = up()
    (send,) = m.handle(OutboundFrame(data="x", refs=(1,)), now=0.0)
    outs = m.handle(ok(send.req_id, {"error": "Message sending failed"}, status=500), now=0.1)
    assert outs == [FrameNotSent(refs=(1,), reason="hub answered HTTP 500: Message sending failed")]
    assert m.state is HttpState.UP


@pytest.mark.parametrize(
    ("status", "body", "auth", "retryable"),
    [
        (500, {"error": "Connection failed"}, True, False),  # hub 4.x unknown key
        (400, {"error": "Missing authorization"}, True, False),
        (403, {"error": "Invalid authorization"}, True, False),  # hub 5.x
        (200, {"error": "something odd"}, False, True),
        (502, {"error": "bad gateway"}, False, True),
    ],
)
def test_connect_refusals(status: int, body: object, auth: bool, retryable: bool) -> None:
    m = machine(reset_on_start=False)
    (conn,) = m.handle(Started(), now=0.0)
    m.handle(OutboundFrame(data="queued", refs=(9,)), now=0.0)
    outs = m.handle(ok(conn.req_id, body, status=status), now=0.1)
    assert outs[0] == FrameNotSent(refs=(9,), reason="link down")
    assert isinstance(outs[-1], LinkDown)
    assert (outs[-1].auth, outs[-1].retryable) == (auth, retryable)
    assert m.state is HttpState.FAILED


def test_unreachable_hub_is_retryable_link_down() -> None:
    m = machine()
    (reset,) = m.handle(Started(), now=0.0)
    outs = m.handle(RequestFailed(req_id=reset.req_id, kind="connect", detail="refused"), now=0.1)
    assert outs == [LinkDown(reason="hub unreachable (connect): refused", retryable=True)]


def test_poll_errors_back_off_with_jitter_then_link_down() -> None:
    spans = []
    for byte in (0x00, 0xFF):
        m, poll = up(byte=byte, error_base=1.0, error_max=3.0, max_errors=4)
        now, seen, req = 0.0, [], poll.req_id
        for _ in range(3):
            outs = m.handle(RequestFailed(req_id=req, kind="reset"), now=now)
            assert requests(outs) == []
            deadline = m.deadline
            assert deadline is not None
            seen.append(deadline - now)
            assert m.handle(Tick(), now=deadline - 0.01) == []
            now = deadline
            (nxt,) = requests(m.handle(Tick(), now=now))
            req = nxt.req_id
        outs = m.handle(RequestFailed(req_id=req, kind="reset"), now=now)
        assert outs[-1] == LinkDown(reason="4 failed requests in a row", retryable=True)
        spans.append(seen)
    # span = min(3, 1 * 2**(n-1)); delay = span/2 + u * span/2 with u in [0, 1)
    assert spans[0] == [0.5, 1.0, 1.5]
    assert all(s / 2 < d < s for d, s in zip(spans[1], [1.0, 2.0, 3.0], strict=True))


def test_a_poll_past_its_timeout_is_cancelled_and_takes_the_link_down_at_once() -> None:
    """The hub answers polls at once: a poll without an answer means a stalled or half-open path (liveness)."""
    m, poll = up(request_timeout=2.0)
    assert m.deadline == 2.0
    outs = m.handle(Tick(), now=2.0)
    assert outs[0] == CancelRequest(req_id=poll.req_id)
    (down,) = [o for o in outs if isinstance(o, LinkDown)]
    assert down.retryable and "no answer to a poll" in down.reason and m.state is HttpState.FAILED
    assert m.handle(ok(poll.req_id, {"messages": ["late"]}), now=2.1) == []  # late: ignored


def test_a_large_poll_answer_arriving_slowly_is_not_a_dead_path() -> None:
    """Each ``ResponseProgress`` restarts the request's timeout: a slow but progressing body never times out."""
    m, poll = up(request_timeout=2.0)
    for at in (1.5, 3.0, 4.5):  # bytes keep arriving, the whole answer takes longer than the timeout
        assert m.handle(ResponseProgress(req_id=poll.req_id), now=at) == []
        assert m.deadline == at + 2.0
        assert m.handle(Tick(), now=at + 1.9) == [] and m.state is HttpState.UP
    assert m.handle(ResponseProgress(req_id=999), now=5.0) == [] and m.deadline == 6.5  # unknown id: nothing
    assert m.handle(ok(poll.req_id, {"messages": ["slow"]}), now=6.0)[0] == InboundFrame(data="slow")
    assert m.state is HttpState.UP


def test_a_poll_whose_answer_stops_arriving_still_takes_the_link_down() -> None:
    m, poll = up(request_timeout=2.0)
    m.handle(ResponseProgress(req_id=poll.req_id), now=1.0)
    outs = m.handle(Tick(), now=3.0)  # 2 s after the last byte
    assert outs[0] == CancelRequest(req_id=poll.req_id) and m.state is HttpState.FAILED
    assert m.handle(ResponseProgress(req_id=poll.req_id), now=3.1) == []  # late: ignored


def test_a_poll_the_shell_timed_out_takes_the_link_down_but_other_failures_only_count() -> None:
    m, poll = up()
    assert not [
        o for o in m.handle(RequestFailed(req_id=poll.req_id, kind="reset"), now=0.5) if isinstance(o, LinkDown)
    ]
    assert m.state is HttpState.UP
    later = m.deadline or 0.0
    (retry,) = [o for o in m.handle(Tick(), now=later) if isinstance(o, StartRequest) and o.method == "GET"]
    outs = m.handle(RequestFailed(req_id=retry.req_id, kind="timeout"), now=later + 0.1)
    assert any(isinstance(o, LinkDown) and o.retryable for o in outs) and m.state is HttpState.FAILED


def test_replica_cookie_is_echoed() -> None:
    m = machine(reset_on_start=False)
    (conn,) = m.handle(Started(), now=0.0)
    cookie = ("Set-Cookie", "hivemind_http_replica=r-42; Path=/; HttpOnly")
    (_, poll) = m.handle(ok(conn.req_id, {"status": "Connected"}, headers=(cookie,)), now=0.0)
    assert ("Cookie", "hivemind_http_replica=r-42") in poll.headers  # type: ignore[union-attr]


def test_stop_waits_for_the_inflight_send_then_disconnects() -> None:
    m, poll = up()
    (send,) = m.handle(OutboundFrame(data="a", refs=(1,)), now=0.0)
    m.handle(OutboundFrame(data="b", refs=(2,)), now=0.0)
    outs = m.handle(StopRequested(), now=0.1)
    assert outs == [FrameNotSent(refs=(2,), reason="link closing"), CancelRequest(req_id=poll.req_id)]
    assert m.state is HttpState.STOPPING
    assert m.handle(OutboundFrame(data="c", refs=(3,)), now=0.1) == [FrameNotSent(refs=(3,), reason="link closed")]
    outs = m.handle(ok(send.req_id, {"status": "message sent"}), now=0.2)
    assert outs[0] == FrameSent(refs=(1,))
    (disc,) = requests(outs)
    assert disc.target == f"/disconnect?authorization={ENC}"
    outs = m.handle(ok(disc.req_id, {"status": "Disconnected"}), now=0.3)
    assert outs == [LinkDown(reason="closed by the client", retryable=False)]
    assert m.state is HttpState.CLOSED
    assert m.handle(StopRequested(), now=0.4) == []


def test_stop_before_start_closes_quietly_and_misuse_raises() -> None:
    m = machine()
    m.handle(OutboundFrame(data="a", refs=(1,)), now=0.0)
    assert m.handle(StopRequested(), now=0.0) == [FrameNotSent(refs=(1,), reason="link closed")]
    assert m.state is HttpState.CLOSED
    m2, _ = up()
    with pytest.raises(LocalProtocolError):
        m2.handle(Started(), now=0.0)
    assert m2.state is HttpState.UP


def test_bad_config_is_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        HttpPollConfig(idle_first=1.0, idle_max=0.5)
    with pytest.raises(LocalProtocolError):
        HttpPollConfig(base_path="nope")


def test_transition_table_handlers_exist() -> None:
    for (state, kind), row in TABLE.items():
        assert isinstance(state, HttpState) and issubclass(kind, Input)
        assert getattr(HttpPoll, row.act.__name__) is row.act, row.act
        assert all(isinstance(end, HttpState) for end in row.ends)


# ---- hypothesis: garbage never raises -----------------------------------------------------------

headers_st = st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=3).map(tuple)
json_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(st.sampled_from(["messages", "b64_messages", "error", "status"]), c, max_size=3)
    ),
    max_leaves=8,
)
body_st = st.one_of(st.binary(max_size=64), json_junk.map(lambda v: json.dumps(v).encode()))


@settings(max_examples=200, deadline=None)
@given(
    phase=st.sampled_from(["reset", "connect", "poll", "send"]),
    status=st.integers(min_value=0, max_value=999),
    headers=headers_st,
    body=body_st,
)
def test_garbage_answers_never_raise(phase: str, status: int, headers: tuple, body: bytes) -> None:
    m = machine()
    outs = m.handle(Started(), now=0.0)
    if phase != "reset":
        outs = m.handle(ok(requests(outs)[0].req_id, {}), now=0.0)
    if phase in ("poll", "send"):
        outs = m.handle(ok(requests(outs)[0].req_id, {"status": "Connected"}), now=0.0)
    if phase == "send":
        outs = m.handle(OutboundFrame(data="x", refs=(1,)), now=0.0)
    req = requests(outs)[-1]
    result = m.handle(ResponseReceived(req_id=req.req_id, status=status, headers=headers, body=body), now=0.1)
    assert all(isinstance(o, Output) for o in result)
    assert isinstance(m.state, HttpState)
    assert m.deadline is None or m.deadline > 0.1
    if phase == "send":
        assert sum(isinstance(o, FrameSent | FrameNotSent) for o in result) == 1
