"""Policy denials: the hub 5.x shape, the echo-skill shape, cleaning, quota gating, totality."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.bus.events import normalize
from thalovant.core.bus.refusal import (
    HUB_DENIAL_CODES,
    MAX_FIELD_CHARS,
    Denial,
    clean_text,
    is_quota_code,
    parse_denial,
)
from thalovant.core.errors import ThalovantPolicyDenied

# Exactly as received from hub 5.x (spec §9.3).
HUB5_DENIAL = {
    "type": "hive.policy.denied",
    "data": {
        "denied_type": "speak",
        "code": "acl_disallowed_type",
        "reason": "speak not in allowed_types",
        "data": {"msg_type": "speak", "allowed": ["recognizer_loop:utterance"]},
    },
    "context": {"source": "hivemind-core", "destination": "peer"},
}
# What the harness echo skill sends for "deny" (via Message.reply, so with ids).
ECHO_DENIAL = {
    "type": "hive.policy.denied",
    "data": {"reason": "policy denied by echo skill (utterance 'deny')", "code": "policy_denied", "utterance": "deny"},
    "context": {"request_id": "r1"},
}


def test_hub5_shape() -> None:
    denial = parse_denial(normalize(HUB5_DENIAL).unwrap())
    assert denial == Denial(
        denied_type="speak",
        code="acl_disallowed_type",
        reason="speak not in allowed_types",
        allowed=("recognizer_loop:utterance",),
    )
    assert not denial.is_quota
    assert denial.message() == "policy denied: speak not in allowed_types (acl_disallowed_type)"


def test_echo_skill_shape_and_raw_dict_forms() -> None:
    denial = parse_denial(ECHO_DENIAL)
    assert (denial.code, denial.reason, denial.denied_type, denial.allowed) == (
        "policy_denied",
        "policy denied by echo skill (utterance 'deny')",
        None,
        (),
    )
    # the data mapping alone works too
    assert parse_denial(HUB5_DENIAL["data"]).denied_type == "speak"


def test_denied_type_falls_back_to_inner_msg_type() -> None:
    denial = parse_denial({"type": "hive.policy.denied", "data": {"code": "x", "data": {"msg_type": "bus.thing"}}})
    assert denial.denied_type == "bus.thing"


def test_hub_codes_are_not_quota_codes() -> None:
    assert HUB_DENIAL_CODES == {
        "acl_disallowed_type",
        "session_id_default_forbidden",
        "policy_error",
        "policy_chain_unavailable",
        "malformed_payload",
        "backend_unavailable",
    }
    assert not any(is_quota_code(c) for c in HUB_DENIAL_CODES)


@pytest.mark.parametrize(
    ("code", "quota"),
    [
        ("quota_exceeded", True),
        ("QUOTA_EXCEEDED", True),
        ("quota.daily", True),
        ("rate_limited", True),
        ("user_rate_limit_hit", True),
        ("too_many_requests", True),
        ("policy_denied", False),
        ("", False),
        (None, False),
    ],
)
def test_is_quota_code(code: str | None, quota: bool) -> None:
    assert is_quota_code(code) is quota


QUOTA_NUMBERS = {"limit": 100, "used": 100, "period": "day", "reset_after": 3600}


def test_quota_numbers_read_only_for_quota_codes() -> None:
    quota = parse_denial({"code": "quota_exceeded", "reason": "daily quota used", "quota": QUOTA_NUMBERS})
    assert (quota.limit, quota.used, quota.period, quota.reset_after) == (100, 100, "day", 3600.0)
    assert quota.is_quota
    assert quota.message() == "policy denied: daily quota used (quota_exceeded); retry after 3600 s"
    # same numbers, non-quota code: ignored
    other = parse_denial({"code": "acl_disallowed_type", "quota": QUOTA_NUMBERS, **QUOTA_NUMBERS})
    assert (other.limit, other.used, other.period, other.reset_after) == (None, None, None, None)


@pytest.mark.parametrize(
    ("quota", "expected"),
    [
        ({"limit": "50", "used": 7.0, "reset_after": "1.5"}, (50, 7, 1.5)),
        ({"limit": True, "used": -1, "reset_after": float("inf")}, (None, None, None)),
        ({"limit": 10**13, "used": 1.5, "reset_after": -3}, (None, None, None)),
        ({"limit": "12abc", "used": None, "reset_after": "soon"}, (None, None, None)),
        ({"max": 5, "count": 2, "retry_after": 9}, (5, 2, 9.0)),
    ],
)
def test_quota_number_validation(quota: dict[str, Any], expected: tuple[Any, ...]) -> None:
    denial = parse_denial({"code": "rate_limited", "data": {"quota": quota}})
    assert (denial.limit, denial.used, denial.reset_after) == expected


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("ok", "ok"),
        ("  spaced \n out\t", "spaced out"),
        ("bell\x07 and esc\x1b[2J", "bell and esc [2J"),
        ("rtl\u202eevil", "rtl evil"),
        ("zero\u200bwidth", "zero width"),
        ("\x00\x01  ", None),
        ("", None),
        (5, None),
        (None, None),
        (["x"], None),
    ],
)
def test_clean_text(raw: Any, clean: str | None) -> None:
    assert clean_text(raw) == clean


def test_clean_text_bounds_length() -> None:
    out = clean_text("x" * 1000)
    assert out is not None and len(out) == MAX_FIELD_CHARS and out.endswith("…")


def test_fields_are_clean_and_allowed_is_bounded() -> None:
    denial = parse_denial(
        {
            "denied_type": "  sp\x1beak ",
            "code": 42,
            "reason": "   ",
            "allowed": ["a", "a", 3, " ", "b\n"] + [f"t{i}" for i in range(200)],
        }
    )
    assert denial.denied_type == "sp eak"
    assert denial.code is None and denial.reason is None
    assert denial.allowed[:2] == ("a", "b")
    assert len(denial.allowed) <= 64
    assert parse_denial({"allowed": "one"}).allowed == ("one",)


def test_fields_feed_the_public_exception() -> None:
    denial = parse_denial({"code": "quota_exceeded", "denied_type": "x", "quota": QUOTA_NUMBERS, "allowed": ["y"]})
    exc = ThalovantPolicyDenied(denial.message(), **denial.exception_fields(), event=None)
    assert (exc.code, exc.denied_type, exc.allowed, exc.limit, exc.used, exc.period, exc.reset_after) == (
        "quota_exceeded",
        "x",
        ("y",),
        100,
        100,
        "day",
        3600.0,
    )


def test_message_does_not_repeat_policy_denied() -> None:
    assert parse_denial(ECHO_DENIAL).message() == "policy denied by echo skill (utterance 'deny') (policy_denied)"


def test_message_without_reason() -> None:
    assert Denial().message() == "policy denied"
    assert Denial(denied_type="speak").message() == "policy denied: speak"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
DENIAL_KEYS = st.sampled_from(
    ["denied_type", "code", "reason", "allowed", "data", "quota", "limit", "used", "period", "reset_after", "msg_type"]
)
DENIAL_JSON = st.recursive(
    JSON,
    lambda inner: st.dictionaries(DENIAL_KEYS, inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(DENIAL_JSON, st.sampled_from(["quota_exceeded", "acl_disallowed_type", None]))
def test_parse_denial_never_raises_and_fields_are_clean(raw: Any, code: str | None) -> None:
    if isinstance(raw, dict) and code is not None:
        raw = {**raw, "code": code}
    denial = parse_denial(raw)
    for text in (denial.denied_type, denial.code, denial.reason, denial.period, *denial.allowed):
        assert text is None or (text == text.strip() and text and len(text) <= MAX_FIELD_CHARS)
        assert text is None or not any(ord(ch) < 32 for ch in text)
    if not denial.is_quota:
        assert (denial.limit, denial.used, denial.period, denial.reset_after) == (None, None, None, None)
    assert denial.limit is None or (isinstance(denial.limit, int) and denial.limit >= 0)
    json.dumps(denial.exception_fields())
    assert denial.message().startswith("policy denied")
