"""JSON from peers: a depth limit on every parse, and copies without recursion (core/jsontree.py).

Every function that walks a value a hub or the control plane sent is checked against nesting far
beyond Python's recursion limit: it must answer (or refuse with a typed problem), never raise
``RecursionError``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure

from thalovant.core.bus.redact import bounded_json, redact
from thalovant.core.client.redact import scrub
from thalovant.core.control import api
from thalovant.core.jsontree import DESCEND, DROP, MAX_JSON_DEPTH, JsonTooDeep, copy_tree, depth, loads
from thalovant.core.links.http_wire import parse_body
from thalovant.core.wire.bitstring import decode_bitstring, encode_bitstring
from thalovant.core.wire.codec import decode_json
from thalovant.core.wire.message import HiveMessage, MsgType

FAR = 100_000  # a hundred times Python's default recursion limit

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


def nested(levels: int, leaf: Any = "k3y-secret") -> Any:
    value: Any = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"token": "k3y-secret", "x": value}
    return value


def leaves(value: Any) -> list[Any]:
    """Every key and scalar in ``value``, without recursion."""
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            found.append(item)
    return found


def reference_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


@given(JSON)
@settings(max_examples=300)
def test_depth_and_copy_agree_with_the_recursive_definitions(value: Any) -> None:
    assert depth(value) == reference_depth(value)
    copied = copy_tree(value, lambda v: v)
    assert copied == value
    assert loads(json.dumps(value)) == value


@given(st.text(alphabet='[]{}":,0a ', max_size=400))
@settings(max_examples=500)
def test_loads_never_raises_anything_but_value_error(text: str) -> None:
    try:
        value = loads(text, max_depth=8)
    except ValueError:
        return
    assert depth(value) <= 8


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 500, FAR])
def test_too_deep_text_is_refused_typed(levels: int) -> None:
    with pytest.raises(JsonTooDeep) as caught:
        loads("[" * levels + "]" * levels)
    assert caught.value.limit == MAX_JSON_DEPTH and isinstance(caught.value, ValueError)
    with pytest.raises(ValueError):
        loads("[" * levels)  # unterminated, as a hostile peer sends it


def test_the_limit_itself_is_accepted() -> None:
    text = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert depth(loads(text)) == MAX_JSON_DEPTH


def test_copies_of_far_nesting_need_no_recursion() -> None:
    value = nested(FAR)
    assert depth(value) == FAR
    assert depth(copy_tree(value, lambda v: v)) == FAR
    scrubbed = scrub(value, "k3y")
    assert "k3y" not in json.dumps(copy_tree(scrubbed, lambda v: v, max_depth=50, cut=None))
    shown = redact(value)
    assert depth(shown) <= 41 and "k3y-secret" not in str(shown)
    assert depth(bounded_json(value, 0)) <= 41
    cleaned = api.redact(value, secrets=["k3y-secret"])
    assert depth(cleaned) == FAR and "k3y-secret" not in leaves(cleaned)


def test_copy_tree_entry_and_cut() -> None:
    value = {"a": {"token": "s", "b": [1, 2, {"c": 3}]}, "drop": 1}

    def entry(key: str) -> tuple[str, Any]:
        return key.upper(), DROP if key == "drop" else ("***" if key == "token" else DESCEND)

    assert copy_tree(value, lambda v: v, entry=entry, max_depth=3, cut="...") == {
        "A": {"TOKEN": "***", "B": [1, 2, {"C": "..."}]}
    }


def test_every_parser_of_hub_input_refuses_deep_nesting_typed() -> None:
    deep = "[" * FAR
    problem = decode_json('{"msg_type": "bus", "payload": {"data": ' + deep + "}}")
    assert isinstance(problem, Failure) and problem.failure().code == "too-deep"
    assert isinstance(decode_json(deep), Failure)
    body = parse_body(b'{"messages": ' + deep.encode() + b"}")
    assert isinstance(body, Failure) and body.failure().code == "too-deep"
    payload = {"type": "speak", "data": {"x": nested(200)}, "context": {}}
    binary = decode_bitstring(encode_bitstring(HiveMessage(msg_type=MsgType.BUS, payload=payload)))
    assert isinstance(binary, Failure) and binary.failure().code == "too-deep"
    payload = {"type": "speak", "data": {"x": nested(100)}, "context": {}}
    within = encode_bitstring(HiveMessage(msg_type=MsgType.BUS, payload=payload))
    assert not isinstance(decode_bitstring(within), Failure)


@pytest.mark.parametrize("status", [200, 201, 400, 404, 422, 500])
def test_control_plane_answers_nested_100000_deep_are_typed_problems(status: int) -> None:
    body = b"[" * FAR
    if status < 300:
        parsed = api.parse_object(body, status_code=status)
        assert isinstance(parsed, Failure)
        assert parsed.failure().code == "invalid_response" and "nested deeper" in parsed.failure().message
    else:
        problem = api.problem_for_response(method="GET", path="v1/hubs", status_code=status, headers=(), body=body)
        assert problem.status_code == status and problem.detail is None
