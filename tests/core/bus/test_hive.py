"""Hive (mesh) frames: building wrappers, reading delivered frames, loops, reply contexts (core/bus/hive.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from thalovant.core.bus.hive import (
    HIVE_KINDS,
    MAX_HIVE_DEPTH,
    WRAPPER_KINDS,
    HiveHop,
    HiveProblem,
    ThalovantHiveMessage,
    as_envelope,
    hive_kind,
    hive_of,
    reply_context,
    wrap,
)
from thalovant.core.client.outbox import sent_input
from thalovant.core.errors import LocalProtocolError
from thalovant.core.wire.codec import decode_json, encode_json
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

KEY = "s3cr3t-access-key"


def _bus(msg_type: str = "speak", data: dict[str, Any] | None = None, ctx: dict[str, Any] | None = None) -> dict:
    return {"msg_type": "bus", "payload": {"type": msg_type, "data": data or {}, "context": ctx or {}}}


def test_wrap_builds_the_spec_wrapper_with_a_complete_inner_envelope() -> None:
    frame = wrap("propagate", BusMessage(type="x.y", data={"a": 1}), session_id="s1", site_id="den",
                 useragent="UA", target_site_id="kitchen")
    assert frame.msg_type is MsgType.PROPAGATE and frame.target_site_id == "kitchen"
    obj = json.loads(encode_json(frame))
    inner = obj["payload"]
    assert list(inner) == ["msg_type", "payload", "metadata", "route", "node", "target_site_id", "target_pubkey",
                           "source_peer"]  # exactly the 8 keys a hub accepts (spec §1.1)
    assert inner["payload"]["type"] == "x.y" and inner["payload"]["data"] == {"a": 1}
    session = inner["payload"]["context"]["session"]
    assert session["session_id"] == "s1" and session["site_id"] == "den"  # what hub 4.x needs to inject it


@pytest.mark.parametrize("kind", ["bus", "query", "", "PROPAGATEX"])
def test_wrap_refuses_a_kind_that_is_no_wrapper(kind: str) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        wrap(kind, BusMessage(type="x"), session_id="s1")


def test_wrap_refuses_the_default_session() -> None:
    with pytest.raises(LocalProtocolError):
        wrap("escalate", BusMessage(type="x"), session_id="default")


@pytest.mark.parametrize("kind", WRAPPER_KINDS)
def test_build_then_parse_round_trips(kind: str) -> None:
    frame = wrap(kind, BusMessage(type="t", data={"n": 2}, context={"k": "v"}), session_id="s1",
                 target_site_id="site")
    wire = decode_json(encode_json(frame)).unwrap()
    hive = hive_of(wire).unwrap()
    assert (hive.kind, hive.type, dict(hive.data), hive.context["k"], hive.target_site_id, hive.depth) == (
        kind, "t", {"n": 2}, "v", "site", 1)
    assert hive.inner_kind == "bus"


def test_a_hub_5_relayed_propagate_keeps_route_and_peers() -> None:
    """The shape hub 5.x forwards to other peers (NODE-1 §3.3: the envelope is kept, the route grows)."""
    inner = {**_bus("hello.mesh", {"x": 1}), "route": [], "source_peer": "hub-node"}
    frame = HiveMessage(msg_type=MsgType.PROPAGATE, payload=inner, source_peer="hub-node",
                        route=({"source": "UA::3::sender::s", "targets": []}, {"source": "hub-node", "targets": []}))
    hive = hive_of(frame, own_peer="UA::4::me::s2").unwrap()
    assert hive.route == (HiveHop("UA::3::sender::s"), HiveHop("hub-node"))
    assert hive.source_peer == "hub-node" and hive.type == "hello.mesh"


def test_a_frame_that_already_passed_this_client_is_a_loop() -> None:
    frame = HiveMessage(msg_type=MsgType.BROADCAST, payload=_bus(),
                        route=({"source": "me::1", "targets": []}, {"source": "hub", "targets": []}))
    result = hive_of(frame, own_peer="me::1")
    assert isinstance(result, Failure) and "loop" in result.failure().reason
    assert isinstance(hive_of(frame, own_peer="other"), Success)
    assert isinstance(hive_of(frame, own_peer=None), Success)  # unknown peer (hub 5.x gives none): no loop test


def test_a_query_answer_comes_back_along_the_route_and_is_no_loop() -> None:
    """Hub 5.3 gives each answer the request's route, which names the asker (seen live)."""
    route = ({"source": "me::1", "targets": ["me::1"]},)
    answer = HiveMessage(msg_type=MsgType.QUERY, payload=_bus(), route=route,
                         metadata={"query_id": "q", "is_response": True})
    assert hive_of(answer, own_peer="me::1").unwrap().type == "speak"
    request = HiveMessage(msg_type=MsgType.QUERY, payload=_bus(), route=route, metadata={"query_id": "q"})
    assert isinstance(hive_of(request, own_peer="me::1"), Failure)


def test_the_access_key_is_scrubbed_everywhere() -> None:
    peer = f"{KEY}::2::name::s"  # MQTT on hub 4.x: the access key is the user agent, so peer ids carry it
    frame = HiveMessage(msg_type=MsgType.PROPAGATE, payload=_bus("x", {"who": peer}, {"source": peer}),
                        route=({"source": peer, "targets": [peer]},), source_peer=peer, metadata={"p": peer})
    hive = hive_of(frame, access_key=KEY).unwrap()
    assert KEY not in repr(hive) and KEY not in json.dumps(
        [hive.payload, dict(hive.data), dict(hive.context), dict(hive.metadata), hive.source_peer,
         [(h.source, h.targets) for h in hive.route]])
    assert hive.source_peer == "<access-key>::2::name::s"


def test_nesting_is_bounded() -> None:
    payload: dict[str, Any] = _bus()
    for _ in range(MAX_HIVE_DEPTH):
        payload = {"msg_type": "propagate", "payload": payload}
    result = hive_of(HiveMessage(msg_type=MsgType.PROPAGATE, payload=payload))
    assert isinstance(result, Failure) and "nested deeper" in result.failure().reason
    shallower = hive_of(HiveMessage(msg_type=MsgType.PROPAGATE, payload=payload["payload"]))
    assert shallower.unwrap().depth == MAX_HIVE_DEPTH and shallower.unwrap().type == "speak"


def test_other_kinds_keep_their_own_payload() -> None:
    hive = hive_of(HiveMessage(msg_type=MsgType.RENDEZVOUS, payload={"status": "ok"})).unwrap()
    assert hive.kind == "rendezvous" and hive.message is None and hive.payload == {"status": "ok"}
    assert hive.type is None and hive.data == {} and hive.context == {}


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (HiveMessage(msg_type=MsgType.BUS, payload=_bus()["payload"]), "not a hive frame"),
        (HiveMessage(msg_type=MsgType.BINARY, payload=b"x"), "not a hive frame"),
        (HiveMessage(msg_type=MsgType.PROPAGATE, payload={"nothing": 1}), "no HiveMessage"),
        (HiveMessage(msg_type=MsgType.ESCALATE, payload={"msg_type": "nope"}), "not a HiveMessage"),
        (HiveMessage(msg_type=MsgType.BROADCAST, payload=_bus(), route=({"targets": []},)), "malformed route"),
    ],
)
def test_bad_frames_are_problems_not_exceptions(frame: HiveMessage, why: str) -> None:
    result = hive_of(frame)
    assert isinstance(result, Failure) and isinstance(result.failure(), HiveProblem)
    assert why in result.failure().reason


def test_hive_kind_names() -> None:
    assert [hive_kind(k) for k in HIVE_KINDS] == list(HIVE_KINDS)
    assert hive_kind("*") == "*" and hive_kind("Broadcast") == "broadcast"
    assert hive_kind("bus") is None and hive_kind(3) is None


def test_reply_context_swaps_like_ovos_message_reply() -> None:
    ctx = {"source": "peer-a", "destination": "hive", "session": {"session_id": "s"}}
    assert reply_context(ctx) == {"source": "hive", "destination": "peer-a", "session": {"session_id": "s"}}
    assert reply_context({"destination": ["a", "b"]}) == {"destination": ["a", "b"]}  # nothing to swap with
    assert reply_context({}) == {}
    assert reply_context({"source": "x"}, {"request_id": "r"}) == {"source": "x", "request_id": "r"}
    both = {"source": "peer-a", "destination": ["a", "b"]}
    assert reply_context(both) == {"source": ["a", "b"], "destination": "peer-a"}  # a list stays whole
    assert reply_context({"source": "x"}, data={"destination": "y"}) == {"source": "y", "destination": "x"}
    assert ctx["source"] == "peer-a"  # the original is not changed


def test_sent_input_remembers_a_wrapper_by_its_inner_bus_message() -> None:
    frame = wrap("propagate", BusMessage(type="x", context={"request_id": "r9"}), session_id="s1")
    assert (sent_input(frame).msg_type, sent_input(frame).request_id) == ("x", "r9")
    ping = HiveMessage(msg_type=MsgType.PING, payload={})
    assert (sent_input(ping).msg_type, sent_input(ping).request_id) == ("ping", None)
    bus = BusMessage(type="y", context={"request_id": "r1"})
    assert (sent_input(bus).msg_type, sent_input(bus).request_id) == ("y", "r1")


# ---- properties ---------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_kinds = st.sampled_from([t for t in MsgType if t is not MsgType.BINARY])


@settings(max_examples=300, deadline=None)
@given(kind=_kinds, payload=st.dictionaries(st.sampled_from(["msg_type", "payload", "type", "x"]), _json, max_size=4),
       route=st.lists(st.dictionaries(st.sampled_from(["source", "targets"]), _json, max_size=2), max_size=3),
       peer=st.none() | st.text(max_size=5), key=st.text(max_size=5))
def test_garbage_never_raises(kind: MsgType, payload: dict, route: list, peer: str | None, key: str) -> None:
    frame = HiveMessage(msg_type=kind, payload=payload, route=tuple(route), source_peer=peer)
    result = hive_of(frame, access_key=key, own_peer=peer)
    assert isinstance(result, Success | Failure)
    if isinstance(result, Success):
        assert isinstance(result.unwrap(), ThalovantHiveMessage) and result.unwrap().depth <= MAX_HIVE_DEPTH


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(WRAPPER_KINDS), depth=st.integers(0, 12))
def test_any_nesting_is_read_or_refused_within_the_bound(kind: str, depth: int) -> None:
    payload: dict[str, Any] = _bus()
    for _ in range(depth):
        payload = as_envelope(HiveMessage(msg_type=MsgType(kind), payload=payload))
    result = hive_of(HiveMessage(msg_type=MsgType(kind), payload=payload))
    if depth < MAX_HIVE_DEPTH:
        assert result.unwrap().depth == depth + 1 and result.unwrap().type == "speak"
    else:
        assert isinstance(result, Failure)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(WRAPPER_KINDS), msg_type=_text.filter(lambda t: bool(t) and t.strip() == t),
       data=st.dictionaries(_text, st.integers() | _text, max_size=3), site=st.none() | _text)
def test_wrap_then_parse_round_trips_any_bus_message(kind: str, msg_type: str, data: dict, site: str | None) -> None:
    frame = wrap(kind, BusMessage(type=msg_type, data=data), session_id="s1", target_site_id=site)
    hive = hive_of(decode_json(encode_json(frame)).unwrap()).unwrap()
    assert (hive.kind, hive.type, dict(hive.data), hive.target_site_id) == (kind, msg_type, data, site)
