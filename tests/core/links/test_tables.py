"""Table tests: every row of each link machine's transition table, with the state it must lead to.

The expectation tables below must list exactly the rows of the machines' ``_TABLE`` dicts, so a new
row cannot be added without saying here where it goes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from thalovant.core.links import http_poll as hp
from thalovant.core.links import mqtt as mm
from thalovant.core.links import ws as wl
from thalovant.core.links.base import OutboundFrame, Started, StopRequested
from thalovant.core.machine import Input, Output, Tick

H = hp.HttpState
W = wl.WsState
M = mm.MqttState

# ---- HttpPoll -------------------------------------------------------------------------------------


def _http() -> tuple[hp.HttpPoll, list[int]]:
    return hp.HttpPoll(authorization="dTprZXk=", useragent="t", entropy=lambda n: bytes(n)), []


def _http_feed(m: hp.HttpPoll, ids: list[int], inp: Input) -> list[Output]:
    outs = m.handle(inp, now=0.0)
    ids.extend(o.req_id for o in outs if isinstance(o, hp.StartRequest))
    return outs


def _ok(req_id: int, obj: object) -> hp.ResponseReceived:
    return hp.ResponseReceived(req_id=req_id, status=200, body=json.dumps(obj).encode())


def http_in(state: hp.HttpState) -> tuple[hp.HttpPoll, list[int]]:
    m, ids = _http()
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
    if state is H.STOPPING:
        _http_feed(m, ids, StopRequested())
        return m, ids
    _http_feed(m, ids, _ok(ids[-1], {"status": "Connected"}))
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
}

HTTP_EXPECT: dict[tuple[hp.HttpState, type], hp.HttpState] = {
    (H.IDLE, Started): H.RESETTING,
    (H.IDLE, OutboundFrame): H.IDLE,
    (H.IDLE, StopRequested): H.CLOSED,
    (H.IDLE, Tick): H.IDLE,
    (H.RESETTING, hp.ResponseReceived): H.CONNECTING,
    (H.RESETTING, hp.RequestFailed): H.FAILED,
    (H.RESETTING, OutboundFrame): H.RESETTING,
    (H.RESETTING, StopRequested): H.STOPPING,
    (H.RESETTING, Tick): H.RESETTING,
    (H.CONNECTING, hp.ResponseReceived): H.UP,
    (H.CONNECTING, hp.RequestFailed): H.FAILED,
    (H.CONNECTING, OutboundFrame): H.CONNECTING,
    (H.CONNECTING, StopRequested): H.STOPPING,
    (H.CONNECTING, Tick): H.CONNECTING,
    (H.UP, hp.ResponseReceived): H.UP,
    (H.UP, hp.RequestFailed): H.UP,  # one error: back off, stay up
    (H.UP, OutboundFrame): H.UP,
    (H.UP, StopRequested): H.STOPPING,
    (H.UP, Tick): H.UP,
    (H.STOPPING, hp.ResponseReceived): H.CLOSED,
    (H.STOPPING, hp.RequestFailed): H.CLOSED,
    (H.STOPPING, OutboundFrame): H.STOPPING,
    (H.STOPPING, StopRequested): H.STOPPING,
    (H.STOPPING, Tick): H.STOPPING,
    (H.CLOSED, OutboundFrame): H.CLOSED,
    (H.CLOSED, StopRequested): H.CLOSED,
    (H.FAILED, OutboundFrame): H.FAILED,
    (H.FAILED, StopRequested): H.FAILED,
}


def test_http_expectations_cover_the_table_exactly() -> None:
    assert set(HTTP_EXPECT) == set(hp._TABLE)


@pytest.mark.parametrize(("row", "after"), list(HTTP_EXPECT.items()), ids=lambda v: str(v))
def test_http_row(row: tuple[hp.HttpState, type], after: hp.HttpState) -> None:
    state, kind = row
    m, ids = http_in(state)
    assert m.state is state
    outs = _http_feed(m, ids, HTTP_INPUTS[kind](ids))
    assert all(isinstance(o, Output) for o in outs)
    assert m.state is after


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
    wl.WsClosed: wl.WsClosed(code=1011),
    OutboundFrame: OutboundFrame(data="x", refs=(1,)),
    StopRequested: StopRequested(),
    Tick: Tick(),
}

WS_EXPECT: dict[tuple[wl.WsState, type], wl.WsState] = {
    (W.CONNECTING, wl.WsOpened): W.OPEN,
    (W.CONNECTING, wl.WsRejected): W.CLOSED,
    (W.CONNECTING, wl.WsClosed): W.CLOSED,
    (W.CONNECTING, OutboundFrame): W.CONNECTING,
    (W.CONNECTING, StopRequested): W.CLOSED,
    (W.OPEN, wl.WsMessage): W.OPEN,
    (W.OPEN, OutboundFrame): W.OPEN,
    (W.OPEN, wl.WsClosed): W.CLOSED,
    (W.OPEN, StopRequested): W.CLOSING,
    (W.CLOSING, wl.WsClosed): W.CLOSED,
    (W.CLOSING, Tick): W.CLOSING,  # before the close timeout
    (W.CLOSING, OutboundFrame): W.CLOSING,
    (W.CLOSED, OutboundFrame): W.CLOSED,
}


def test_ws_expectations_cover_the_table_exactly() -> None:
    assert set(WS_EXPECT) == set(wl._TABLE)


@pytest.mark.parametrize(("row", "after"), list(WS_EXPECT.items()), ids=lambda v: str(v))
def test_ws_row(row: tuple[wl.WsState, type], after: wl.WsState) -> None:
    state, kind = row
    m = ws_in(state)
    assert m.state is state
    m.handle(WS_INPUTS[kind], now=0.0)
    assert m.state is after


# ---- MqttMap --------------------------------------------------------------------------------------

S2C = "hm/hub/s2c/k"


def mqtt_in(state: mm.MqttState) -> tuple[mm.MqttMap, dict[str, Any]]:
    m = mm.MqttMap(access_key="k", topic_prefix="hm/hub", entropy=lambda n: bytes(n))
    ctx: dict[str, Any] = {"pub": 1}
    steps: list[Input] = []
    order = [M.IDLE, M.CONNECTING, M.SUBSCRIBING, M.RESETTING, M.UP]
    if state in order:
        steps = [Started(), mm.MqttConnected(), mm.MqttSubscribed(granted_qos=1), mm.MqttPublished(pub_id=1)]
        steps = steps[: order.index(state)]
    elif state is M.CLOSING:
        steps = [Started(), mm.MqttConnected(), mm.MqttSubscribed(granted_qos=1), mm.MqttPublished(pub_id=1)]
        steps.append(StopRequested())
        ctx["pub"] = 2  # the offline publish
    else:  # CLOSED
        steps = [StopRequested()]
    for inp in steps:
        m.handle(inp, now=0.0)
    if state is M.UP:
        m.handle(OutboundFrame(data=b"x", refs=(5,)), now=0.0)
        ctx["pub"] = 2
    return m, ctx


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


MQTT_EXPECT: dict[tuple[mm.MqttState, type], mm.MqttState] = {
    (M.IDLE, Started): M.CONNECTING,
    (M.IDLE, OutboundFrame): M.IDLE,
    (M.IDLE, StopRequested): M.CLOSED,
    (M.CONNECTING, mm.MqttConnected): M.SUBSCRIBING,
    (M.SUBSCRIBING, mm.MqttSubscribed): M.RESETTING,
    (M.RESETTING, mm.MqttPublished): M.UP,
    (M.RESETTING, mm.MqttPublishFailed): M.UP,
    (M.UP, OutboundFrame): M.UP,
    (M.UP, mm.MqttPublished): M.UP,
    (M.UP, mm.MqttPublishFailed): M.UP,
    (M.UP, mm.SessionEstablished): M.UP,
    (M.UP, StopRequested): M.CLOSING,
    (M.CLOSING, mm.MqttPublished): M.CLOSED,
    (M.CLOSING, mm.MqttPublishFailed): M.CLOSED,
    (M.CLOSING, Tick): M.CLOSING,
    (M.CLOSED, OutboundFrame): M.CLOSED,
    (M.CLOSING, OutboundFrame): M.CLOSING,
}
for _s in (M.CONNECTING, M.SUBSCRIBING, M.RESETTING):
    MQTT_EXPECT[(_s, OutboundFrame)] = _s
    MQTT_EXPECT[(_s, StopRequested)] = M.CLOSED
for _s in (M.CONNECTING, M.SUBSCRIBING, M.RESETTING, M.UP, M.CLOSING):
    MQTT_EXPECT[(_s, mm.MqttDisconnected)] = M.CLOSED
for _s in (M.SUBSCRIBING, M.RESETTING, M.UP, M.CLOSING):
    MQTT_EXPECT[(_s, mm.MqttMessage)] = _s


def test_mqtt_expectations_cover_the_table_exactly() -> None:
    assert set(MQTT_EXPECT) == set(mm._TABLE)


@pytest.mark.parametrize(("row", "after"), list(MQTT_EXPECT.items()), ids=lambda v: str(v))
def test_mqtt_row(row: tuple[mm.MqttState, type], after: mm.MqttState) -> None:
    state, kind = row
    m, ctx = mqtt_in(state)
    assert m.state is state
    m.handle(mqtt_input(kind, ctx), now=0.0)
    assert m.state is after
