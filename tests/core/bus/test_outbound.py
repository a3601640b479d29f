"""Client context (§a.12), context merging, and the outbound utterance messages (§d.2, §d.3)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.bus.events import normalize
from thalovant.core.bus.outbound import (
    action_message,
    build_client_context,
    code_message,
    correlated_context,
    merge_context,
    new_request_id,
    new_session_id,
    utterance_message,
)


def tape(n: int) -> bytes:
    return bytes(range(n))


def test_ids_come_from_entropy() -> None:
    assert new_request_id(tape) == "thalovant-request-000102030405060708090a0b0c0d0e0f"
    assert new_session_id(lambda n: b"\xff" * n) == "thalovant-session-" + "ff" * 16


def test_build_client_context_full() -> None:
    ctx = build_client_context(
        user_id="u1",
        user_name="Ann",
        auth_token="tok",
        auth_provider="oidc",
        auth_claims={"sub": "u1"},
        roles=["admin"],
        platform="web",
        source="app",
        destination="HiveMind",
        channel="chat",
        device_id="d1",
        locale="en-GB",
        metadata={"tenant": "t"},
        session_id="s1",
        custom="c",
    )
    assert ctx == {
        "user": {"id": "u1", "name": "Ann", "roles": ["admin"]},
        "user_id": "u1",
        "user_name": "Ann",
        "roles": ["admin"],
        "auth": {"token": "tok", "provider": "oidc", "claims": {"sub": "u1"}},
        "auth_token": "tok",
        "platform": "web",
        "source": "app",
        "destination": "HiveMind",
        "channel": "chat",
        "locale": "en-GB",
        "device": {"id": "d1", "platform": "web"},
        "metadata": {"tenant": "t"},
        "session": {"session_id": "s1"},
        "session_id": "s1",
        "custom": "c",
    }


def test_build_client_context_never_overrides_and_never_mutates() -> None:
    given_ctx: dict[str, Any] = {
        "user": {"id": "keep", "extra": 1},
        "user_id": "keep",
        "platform": "mine",
        "channel": "mine",
        "device": {"id": "dev"},
        "metadata": {"a": 1, "b": 1},
        "session": {"session_id": "mine", "lang": "de"},
        "session_id": "mine",
        "custom": "mine",
    }
    before = copy.deepcopy(given_ctx)
    ctx = build_client_context(
        given_ctx,
        user_id="new",
        user_name="Ann",
        platform="other",
        channel="other",
        device_id="other",
        metadata={"b": 2, "c": 2},
        session_id="other",
        custom="other",
    )
    assert given_ctx == before
    assert ctx["user"] == {"id": "keep", "extra": 1, "name": "Ann"}
    assert (ctx["user_id"], ctx["user_name"], ctx["platform"], ctx["channel"], ctx["custom"]) == (
        "keep",
        "Ann",
        "mine",
        "mine",
        "mine",
    )
    assert ctx["device"] == {"id": "dev", "platform": "other"}
    assert ctx["metadata"] == {"a": 1, "b": 2, "c": 2}  # metadata argument on top
    assert ctx["session"] == {"session_id": "mine", "lang": "de"}
    assert ctx["session_id"] == "mine"
    ctx["user"]["id"] = "changed"
    assert given_ctx["user"]["id"] == "keep"


def test_build_client_context_empty_and_non_dict_subkeys() -> None:
    assert build_client_context() == {}
    assert build_client_context(None, locale="en") == {"locale": "en"}
    ctx = build_client_context({"user": "junk", "auth": 3}, user_id="u", auth_token="t")
    assert ctx["user"] == {"id": "u"} and ctx["auth"] == {"token": "t"}


def test_merge_context() -> None:
    base = {"a": 1, "session": {"session_id": "s", "lang": "en"}, "metadata": {"x": 1}}
    overlay = {"b": 2, "session": {"lang": "de"}, "metadata": {"y": 2}}
    merged = merge_context(base, overlay)
    assert merged == {"a": 1, "b": 2, "session": {"session_id": "s", "lang": "de"}, "metadata": {"y": 2}}
    assert base["session"] == {"session_id": "s", "lang": "en"}
    assert merge_context(None, None) == {}
    assert merge_context({"session": "junk"}, {"session": {"a": 1}}) == {"session": {"a": 1}}
    assert merge_context({"session": {"a": 1}}, {"session": None}) == {"session": None}


def test_plain_ask_context_shape() -> None:
    # reference test 1: a plain ask carries exactly these session keys
    msg = utterance_message("  hello ", request_id="r1", lang="en-us", site_id="site")
    assert msg.type == "recognizer_loop:utterance"
    assert msg.data == {"utterances": ["hello"], "lang": "en-us"}
    assert msg.context == {
        "session": {"site_id": "site", "lang": "en-us", "request_id": "r1"},
        "request_id": "r1",
        "thalovant_request_id": "r1",
    }
    assert "input" not in msg.context


def test_conversation_ask_carries_user_session_and_metadata() -> None:
    caller = {"session": {"session_id": "ignored", "lang": "de", "site_id": "mine"}, "metadata": {"k": "caller"}}
    msg = utterance_message(
        "hi",
        request_id="r2",
        lang="en-us",
        session_id="user-session",
        site_id="identity-site",
        context=caller,
        metadata={"k": "identity", "tenant": "t"},
    )
    assert msg.context["session"] == {"session_id": "user-session", "lang": "de", "site_id": "mine", "request_id": "r2"}
    assert msg.context["metadata"] == {"k": "caller", "tenant": "t"}
    assert caller["session"]["session_id"] == "ignored"  # not mutated


def test_action_message_shape() -> None:
    msg = action_message('/choose{"id":"42"}', title="Choose item", request_id="r3")
    meta = {"kind": "action", "title": "Choose item", "payload": '/choose{"id":"42"}'}
    assert msg.data["utterances"] == ['/choose{"id":"42"}']
    assert msg.context["input"] == meta and msg.data["input"] == meta
    assert msg.context["request_id"] == "r3"
    assert action_message("/x", request_id="r").context["input"]["title"] is None


def test_code_message_shape() -> None:
    msg = code_message("SN-001-XYZ", kind="qr", label="serial", request_id="r4", session_id="s")
    meta = {"kind": "qr", "label": "serial", "value": "SN-001-XYZ", "exact": True}
    assert msg.data["utterances"] == ["SN-001-XYZ"]
    assert msg.data["input"] == meta and msg.context["input"] == meta
    assert msg.context["session"]["session_id"] == "s"
    assert code_message("c", request_id="r").data["input"] == {
        "kind": "code",
        "label": None,
        "value": "c",
        "exact": True,
    }


def test_input_kind_distinguishes_sources() -> None:
    speech = normalize(utterance_message("yes", request_id="a").as_dict()).unwrap()
    press = normalize(action_message("yes", request_id="b").as_dict()).unwrap()
    scan = normalize(code_message("yes", request_id="c").as_dict()).unwrap()
    assert speech.text == press.text == scan.text == "yes"
    assert "input" not in speech.data
    assert (press.data["input"]["kind"], scan.data["input"]["kind"]) == ("action", "code")
    assert (speech.request_id, press.request_id, scan.request_id) == ("a", "b", "c")


@pytest.mark.parametrize("bad", ["", "   ", None, 5])
def test_empty_prompts_are_rejected(bad: Any) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        utterance_message(bad, request_id="r")
    with pytest.raises(ValueError, match="non-empty"):
        action_message(bad, request_id="r")
    with pytest.raises(ValueError, match="non-empty"):
        code_message(bad, request_id="r")
    with pytest.raises(ValueError, match="non-empty"):
        code_message("x", kind=bad, request_id="r")


def test_empty_request_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="request_id"):
        correlated_context(None, request_id="", lang="en")


SAFE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
CTX = st.dictionaries(
    st.sampled_from(["session", "metadata", "user", "auth", "device", "platform", "x"]), SAFE_JSON, max_size=6
)


@settings(max_examples=150, deadline=None)
@given(CTX, CTX, st.none() | st.text(min_size=1, max_size=8))
def test_builders_never_mutate_and_keep_invariants(
    ctx: dict[str, Any], overlay: dict[str, Any], sid: str | None
) -> None:
    before_ctx, before_overlay = copy.deepcopy(ctx), copy.deepcopy(overlay)
    built = build_client_context(ctx, user_id="u", metadata={"m": 1}, session_id=sid, device_id="d")
    merged = merge_context(ctx, overlay)
    msg = utterance_message("hi", request_id="rid", lang="en", session_id=sid, context=merged, metadata={"i": 1})
    assert (ctx, overlay) == (before_ctx, before_overlay)
    assert built["metadata"]["m"] == 1
    assert msg.context["request_id"] == msg.context["thalovant_request_id"] == msg.context["session"]["request_id"]
    if sid is not None:
        assert msg.context["session"]["session_id"] == sid
    assert normalize(msg.as_dict()).unwrap().request_id == "rid"
