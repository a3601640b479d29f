"""Table tests: every row of each link machine's transition table, driven for real.

The destinations are read from the machines' ``TABLE`` (the one place a transition is written):
for each row, the machine is put in the row's state, fed the row's input type, and must end in
the row's ``to``. Every ``exits`` state a row declares is reached by a scenario below, and every
scenario ends in one of its row's declared exits, so neither side can drift.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from thalovant.core.links import http_poll as hp
from thalovant.core.links import mqtt_map as mm
from thalovant.core.links import ws as wl
from thalovant.core.links.base import OutboundFrame, Started, StopRequested
from thalovant.core.machine import Input, Output, Tick

H = hp.HttpState
W = wl.WsState
M = mm.MqttState

# ---- HttpPoll -------------------------------------------------------------------------------------


def _http(**config: Any) -> tuple[hp.HttpPoll, list[int]]:
    cfg = hp.HttpPollConfig(**config)
    return hp.HttpPoll(authorization="dTprZXk=", useragent="t", entropy=lambda n: bytes(n), config=cfg), []


def _http_feed(m: hp.HttpPoll, ids: list[int], inp: Input) -> list[Output]:
    outs = m.handle(inp, now=0.0)
    ids.extend(o.req_id for o in outs if isinstance(o, hp.StartRequest))
    return outs


def _ok(req_id: int, obj: object, status: int = 200) -> hp.ResponseReceived:
    return hp.ResponseReceived(req_id=req_id, status=status, body=json.dumps(obj).encode())


def http_in(state: hp.HttpState, *, sending: bool = False, **config: Any) -> tuple[hp.HttpPoll, list[int]]:
    """A machine in ``state``; ``sending`` leaves a send in flight (UP, and STOPPING reached from UP)."""
    m, ids = _http(**config)
    if state is H.IDLE:
        return m, ids
    _http_feed(m, ids, Started())
    if state is H.RESETTING:
        return m, ids
    if state is H.FAILED:
        _http_feed(m, ids, hp.RequestFailed(req_id=ids[-1], kind="connect"))
        return m, ids
    _http_feed(m, ids, _ok(ids[-1], {"status": "Disconnected"}))
    if state is H.CONNECTING:
        return m, ids
    if state is H.STOPPING and not sending:
        _http_feed(m, ids, StopRequested())
        return m, ids
    _http_feed(m, ids, _ok(ids[-1], {"status": "Connected"}))
    if sending:
        _http_feed(m, ids, OutboundFrame(data="x", refs=(9,)))  # ids[-1] is now the send
        if state is H.STOPPING:
            _http_feed(m, ids, StopRequested())  # the send stays in flight
    if state is H.CLOSED:
        _http_feed(m, ids, StopRequested())
        _http_feed(m, ids, _ok(ids[-1], {"status": "Disconnected"}))
    return m, ids


HTTP_INPUTS: dict[type, Callable[[list[int]], Input]] = {
    Started: lambda ids: Started(),
    OutboundFrame: lambda ids: OutboundFrame(data="x", refs=(1,)),
    StopRequested: lambda ids: StopRequested(),
    Tick: lambda ids: Tick(),
    hp.ResponseReceived: lambda ids: _ok(ids[-1], {"status": "ok", "messages": []}),
    hp.RequestFailed: lambda ids: hp.RequestFailed(req_id=ids[-1], kind="reset"),
    hp.ResponseProgress: lambda ids: hp.ResponseProgress(req_id=ids[-1]),
}


def test_http_inputs_cover_the_table() -> None:
    assert {kind for _, kind in hp.TABLE} == set(HTTP_INPUTS)
    assert {state for state, _ in hp.TABLE} == set(H)


@pytest.mark.parametrize("row", list(hp.TABLE), ids=str)
def test_http_row(row: tuple[hp.HttpState, type]) -> None:
    state, kind = row
    m, ids = http_in(state)
    assert m.state is state
    outs = _http_feed(m, ids, HTTP_INPUTS[kind](ids))
    assert all(isinstance(o, Output) for o in outs)
    assert m.state is hp.TABLE[row].to


UNKNOWN = 99  # a request id the machine never started: its answer changes nothing


def _ok_unknown(ids: list[int]) -> Input:
    return _ok(UNKNOWN, {})


def _failed_unknown(ids: list[int]) -> Input:
    return hp.RequestFailed(req_id=UNKNOWN, kind="x")


#: (row, a machine in the row's state, the input) -> the machine must end in one of the row's exits.
HttpScenario = tuple[
    tuple[hp.HttpState, type], Callable[[], tuple[hp.HttpPoll, list[int]]], Callable[[list[int]], Input]
]
HTTP_EXITS: list[HttpScenario] = [
    ((H.IDLE, Started), lambda: http_in(H.IDLE, reset_on_start=False), HTTP_INPUTS[Started]),
    ((H.RESETTING, hp.ResponseReceived), lambda: http_in(H.RESETTING), _ok_unknown),
    ((H.RESETTING, hp.RequestFailed), lambda: http_in(H.RESETTING), _failed_unknown),
    ((H.CONNECTING, hp.ResponseReceived), lambda: http_in(H.CONNECTING), lambda ids: _ok(ids[-1], {}, status=403)),
    ((H.CONNECTING, hp.ResponseReceived), lambda: http_in(H.CONNECTING), _ok_unknown),
    ((H.CONNECTING, hp.RequestFailed), lambda: http_in(H.CONNECTING), _failed_unknown),
    ((H.UP, hp.ResponseReceived), lambda: http_in(H.UP), lambda ids: _ok(ids[-1], {}, status=409)),
    ((H.UP, hp.RequestFailed), lambda: http_in(H.UP, max_errors=1), HTTP_INPUTS[hp.RequestFailed]),
    ((H.STOPPING, hp.ResponseReceived), lambda: http_in(H.STOPPING), _ok_unknown),
    ((H.STOPPING, hp.ResponseReceived), lambda: http_in(H.STOPPING, sending=True), lambda ids: _ok(ids[-1], {})),
    (
        (H.STOPPING, hp.ResponseReceived),
        lambda: http_in(H.STOPPING, sending=True),
        lambda ids: _ok(ids[-1], {}, status=409),
    ),
    ((H.STOPPING, hp.RequestFailed), lambda: http_in(H.STOPPING), _failed_unknown),
    (
        (H.STOPPING, hp.RequestFailed),
        lambda: http_in(H.STOPPING, sending=True, max_errors=1),
        HTTP_INPUTS[hp.RequestFailed],
    ),
]


def test_http_every_declared_exit_is_reached() -> None:
    reached: set[tuple[Any, Any]] = set()
    for row, build, make in HTTP_EXITS:
        m, ids = build()
        assert m.state is row[0]
        _http_feed(m, ids, make(ids))
        assert m.state in hp.TABLE[row].exits, (row, m.state)
        reached.add((row, m.state))
    assert reached == {(row, end) for row, r in hp.TABLE.items() for end in r.exits}


# ---- WsLink ---------------------------------------------------------------------------------------


def ws_in(state: wl.WsState) -> wl.WsLink:
    m = wl.WsLink(authorization="dTprZXk=")
    if state is not W.CONNECTING:
        m.handle(wl.WsOpened(), now=0.0)
    if state is W.CLOSING:
        m.handle(StopRequested(), now=0.0)
    if state is W.CLOSED:
        m.handle(wl.WsClosed(code=1001), now=0.0)
    return m


WS_INPUTS: dict[type, Input] = {
    wl.WsOpened: wl.WsOpened(),
    wl.WsRejected: wl.WsRejected(status=403),
    wl.WsMessage: wl.WsMessage(data="{}"),
    wl.WsPonged: wl.WsPonged(),
    wl.WsReceiving: wl.WsReceiving(),
    wl.WsClosed: wl.WsClosed(code=1011),
    OutboundFrame: OutboundFrame(data="x", refs=(1,)),
    StopRequested: StopRequested(),
    Tick: Tick(),
}


def test_ws_inputs_cover_the_table() -> None:
    assert {kind for _, kind in wl.TABLE} <= set(WS_INPUTS)
    assert {state for state, _ in wl.TABLE} == set(W)


@pytest.mark.parametrize("row", list(wl.TABLE), ids=str)
def test_ws_row(row: tuple[wl.WsState, type]) -> None:
    state, kind = row
    m = ws_in(state)
    assert m.state is state
    m.handle(WS_INPUTS[kind], now=m.deadline if m.deadline is not None else 0.0)  # a Tick comes at the deadline
    assert m.state is wl.TABLE[row].to


def test_ws_every_declared_exit_is_reached() -> None:
    m = ws_in(W.CLOSING)
    m.handle(Tick(), now=0.0)  # before the close timeout: an early Tick changes nothing
    assert m.state is W.CLOSING and m.state in wl.TABLE[(W.CLOSING, Tick)].exits
    m = ws_in(W.OPEN)
    for _ in range(2):  # the first Tick at the deadline probes, the second finds the probe unanswered
        assert m.deadline is not None
        m.handle(Tick(), now=m.deadline)
    assert m.state is W.CLOSED and m.state in wl.TABLE[(W.OPEN, Tick)].exits
    exits = {(row, end) for row, r in wl.TABLE.items() for end in r.exits}
    assert exits == {((W.CLOSING, Tick), W.CLOSING), ((W.OPEN, Tick), W.CLOSED)}


# ---- MqttMap --------------------------------------------------------------------------------------

S2C, STATUS, HUB = "hm/hub/s2c/k", "hm/hub/status/k", "hm/hub/status/hub"
WATCHING = {"watch_status": True}


def _connected(watch: bool, hub: bytes | None) -> list[Input]:
    """Started, CONNACK and every SUBACK (a watching link first hears the hub's presence ``hub``)."""
    steps: list[Input] = [Started(), mm.MqttConnected()]
    if watch:
        steps.append(mm.MqttSubscribed(granted_qos=1))
        if hub is not None:
            steps.append(mm.MqttMessage(topic=HUB, payload=hub))
        steps.append(mm.MqttSubscribed(granted_qos=1))
    return [*steps, mm.MqttSubscribed(granted_qos=1)]


def mqtt_in(state: mm.MqttState, *, hub: bytes | None = None, **kw: Any) -> tuple[mm.MqttMap, dict[str, Any]]:
    """A machine in ``state``; AWAITING_HUB is reached by a watching link whose hub is offline.

    A watching link in SUBSCRIBING waits for all its SUBACKs, or (``hub`` given) only for the s2c one.
    """
    if state is M.AWAITING_HUB:
        kw, hub = {**kw, **WATCHING}, b"offline"
    m = mm.MqttMap(access_key="k", topic_prefix="hm/hub", entropy=lambda n: bytes(n), **kw)
    ctx: dict[str, Any] = {"pub": 1}
    connected = _connected(bool(kw.get("watch_status")), hub)
    steps: list[Input] = []
    order = [M.IDLE, M.CONNECTING, M.SUBSCRIBING, M.RESETTING]
    if state in order:
        subscribing = len(connected) - 1 if hub is not None or not kw.get("watch_status") else 2
        steps = connected[: [0, 1, subscribing, len(connected)][order.index(state)]]
    elif state in (M.UP, M.AWAITING_HUB, M.CLOSING):
        steps = [*connected, mm.MqttPublished(pub_id=1)]
    else:  # CLOSED
        steps = [StopRequested()]
    if state is M.CLOSING:
        steps.append(StopRequested())
        ctx["pub"] = 2  # the offline publish
    for inp in steps:
        m.handle(inp, now=0.0)
    if state is M.UP:
        m.handle(OutboundFrame(data=b"x", refs=(5,)), now=0.0)
        ctx["pub"] = 2
    return m, ctx


def closing_heard(**kw: Any) -> mm.MqttMap:
    """A watching link that was up, heard the hub and our own status, then closed; its offline is acked."""
    m, _ = mqtt_in(M.UP, **WATCHING, **kw)
    for inp in (mm.MqttMessage(topic=STATUS, payload=b"offline"), mm.MqttMessage(topic=S2C, payload=b"{}")):
        m.handle(inp, now=0.0)
    (off,) = m.handle(StopRequested(), now=0.0)
    assert isinstance(off, mm.Publish)
    m.handle(mm.MqttPublished(pub_id=off.pub_id), now=0.0)
    m.handle(mm.MqttMessage(topic=STATUS, payload=b"offline"), now=0.0)  # our own, echoed
    return m


def mqtt_input(kind: type, ctx: dict[str, Any]) -> Input:
    return {
        Started: Started(),
        StopRequested: StopRequested(),
        OutboundFrame: OutboundFrame(data=b"x", refs=(1,)),
        Tick: Tick(),
        mm.SessionEstablished: mm.SessionEstablished(),
        mm.MqttConnected: mm.MqttConnected(),
        mm.MqttSubscribed: mm.MqttSubscribed(granted_qos=1),
        mm.MqttPublished: mm.MqttPublished(pub_id=ctx["pub"]),
        mm.MqttPublishFailed: mm.MqttPublishFailed(pub_id=ctx["pub"]),
        mm.MqttMessage: mm.MqttMessage(topic=S2C, payload=b"{}"),
        mm.MqttDisconnected: mm.MqttDisconnected(rc=7),
    }[kind]


def test_mqtt_table_states_are_all_covered() -> None:
    assert {state for state, _ in mm.TABLE} == set(M)


@pytest.mark.parametrize("row", list(mm.TABLE), ids=str)
def test_mqtt_row(row: tuple[mm.MqttState, type]) -> None:
    state, kind = row
    m, ctx = mqtt_in(state)
    assert m.state is state
    m.handle(mqtt_input(kind, ctx), now=m.deadline if m.deadline is not None else 0.0)  # a Tick comes at the deadline
    assert m.state is mm.TABLE[row].to


#: (row, keyword arguments of ``mqtt_in``, the input, now) -> the machine must end in one of the row's exits.
MQTT_EXITS: list[tuple[tuple[mm.MqttState, type], dict[str, Any], Input, float]] = [
    ((M.SUBSCRIBING, mm.MqttSubscribed), {"reset_on_connect": False}, mm.MqttSubscribed(granted_qos=1), 0.0),
    ((M.SUBSCRIBING, mm.MqttSubscribed), {}, mm.MqttSubscribed(granted_qos=128), 0.0),  # refused
    # a watching link: a status topic's SUBACK is not the last one; without the reset, an offline hub is awaited
    ((M.SUBSCRIBING, mm.MqttSubscribed), WATCHING, mm.MqttSubscribed(granted_qos=1), 0.0),
    (
        (M.SUBSCRIBING, mm.MqttSubscribed),
        {"hub": b"offline", "reset_on_connect": False, **WATCHING},
        mm.MqttSubscribed(granted_qos=1),
        0.0,
    ),
    ((M.RESETTING, mm.MqttPublished), {}, mm.MqttPublished(pub_id=UNKNOWN), 0.0),  # not the reset publish
    ((M.RESETTING, mm.MqttPublishFailed), {}, mm.MqttPublishFailed(pub_id=UNKNOWN), 0.0),
    ((M.RESETTING, mm.MqttPublished), {"hub": b"offline", **WATCHING}, mm.MqttPublished(pub_id=1), 0.0),
    ((M.RESETTING, mm.MqttPublishFailed), {"hub": b"offline", **WATCHING}, mm.MqttPublishFailed(pub_id=1), 0.0),
    ((M.AWAITING_HUB, mm.MqttMessage), {}, mm.MqttMessage(topic=HUB, payload=b"online"), 0.0),  # the hub is back
    ((M.AWAITING_HUB, Tick), {}, Tick(), 0.0),  # before hub_wait: an early Tick changes nothing
    ((M.CLOSING, mm.MqttPublished), {}, mm.MqttPublished(pub_id=UNKNOWN), 0.0),  # not the offline publish
    ((M.CLOSING, mm.MqttPublishFailed), {}, mm.MqttPublishFailed(pub_id=UNKNOWN), 0.0),
    ((M.CLOSING, Tick), {}, Tick(), 0.0),  # before the close timeout: an early Tick changes nothing
]


def test_mqtt_every_declared_exit_is_reached() -> None:
    reached: set[tuple[Any, Any]] = set()
    for row, kw, inp, now in MQTT_EXITS:
        m, _ = mqtt_in(row[0], **kw)
        assert m.state is row[0]
        m.handle(inp, now=now)
        assert m.state in mm.TABLE[row].exits, (row, m.state)
        reached.add((row, m.state))
    closing = closing_heard()  # the hub's tombstone ends the close
    closing.handle(mm.MqttMessage(topic=STATUS, payload=b"offline"), now=0.0)
    assert closing.state in mm.TABLE[(M.CLOSING, mm.MqttMessage)].exits
    reached.add(((M.CLOSING, mm.MqttMessage), closing.state))
    assert reached == {(row, end) for row, r in mm.TABLE.items() for end in r.exits}
    m, _ = mqtt_in(M.CLOSING)
    m.handle(Tick(), now=0.0)
    assert m.state is M.CLOSING  # the early Tick left it where it was
