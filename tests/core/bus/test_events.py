"""Events: normalisation, properties, filters, replies, redaction."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.pipeline import is_successful

from thalovant.core.bus.events import (
    EVENT_INTENT_FAILURE,
    EVENT_INTENT_UNMATCHED,
    EVENT_POLICY_DENIED,
    EVENT_RECOGNIZER_LOOP_UTTERANCE,
    EVENT_SPEAK,
    EVENT_UTTERANCE_HANDLED,
    EventFilter,
    EventProblem,
    ThalovantEvent,
    normalize,
    parse_filter,
    redact,
)
from thalovant.core.bus.reply import ThalovantReply, build_reply
from thalovant.core.wire.message import BusMessage

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
KEYS = st.sampled_from(
    [
        "type",
        "msg_type",
        "data",
        "context",
        "payload",
        "session",
        "session_id",
        "request_id",
        "thalovant_request_id",
        "correlation_id",
        "utterance",
        "utterances",
        "text",
        "lang",
        "site_id",
    ]
)
SHAPED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=6),
    max_leaves=30,
)


def ev(typ: str = "speak", data: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> ThalovantEvent:
    return normalize({"type": typ, "data": data or {}, "context": context or {}}).unwrap()


def test_constants() -> None:
    assert EVENT_RECOGNIZER_LOOP_UTTERANCE == "recognizer_loop:utterance"
    assert EVENT_SPEAK == "speak"
    assert EVENT_UTTERANCE_HANDLED == "ovos.utterance.handled"
    assert EVENT_INTENT_FAILURE == "complete_intent_failure"
    assert EVENT_INTENT_UNMATCHED == "ovos.intent.unmatched"
    assert EVENT_POLICY_DENIED == "hive.policy.denied"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "not-an-object"),
        ([1, 2], "not-an-object"),
        ("speak", "not-an-object"),
        ({}, "bad-type"),
        ({"type": ""}, "bad-type"),
        ({"type": "  "}, "bad-type"),
        ({"type": 3}, "bad-type"),
        ({"type": "x" * 600}, "bad-type"),
        ({"type": "speak", "data": []}, "bad-data"),
        ({"type": "speak", "data": "hi"}, "bad-data"),
        ({"type": "speak", "context": 5}, "bad-context"),
    ],
)
def test_normalize_rejects(raw: Any, problem: str) -> None:
    result = normalize(raw)
    assert not is_successful(result)
    assert isinstance(result.failure(), EventProblem)
    assert result.failure().code == problem


def test_normalize_accepts_shapes() -> None:
    plain = normalize({"type": "speak", "data": {"utterance": "hi"}}).unwrap()
    assert (plain.type, plain.data, plain.context) == ("speak", {"utterance": "hi"}, {})
    nulls = normalize({"type": "speak", "data": None, "context": None}).unwrap()
    assert (nulls.data, nulls.context) == ({}, {})
    legacy = normalize({"msg_type": "speak", "data": {}}).unwrap()
    assert legacy.type == "speak"
    bus = normalize(BusMessage(type="speak", data={"utterance": "x"}, context={"a": 1})).unwrap()
    assert (bus.text, bus.context) == ("x", {"a": 1})
    # a whole BUS HiveMessage is unwrapped
    frame = {"msg_type": "bus", "payload": {"type": "speak", "data": {"utterance": "y"}}, "metadata": {}}
    assert normalize(frame).unwrap().text == "y"


def test_normalize_copies_input() -> None:
    data = {"utterance": "a"}
    event = normalize({"type": "speak", "data": data}).unwrap()
    data["utterance"] = "b"
    assert event.text == "a"


# A real hub 4.x speak reply (spec §9.3), decrypted payload.
HUB4_SPEAK = {
    "type": "speak",
    "data": {"utterance": "echo: hello", "lang": "en-us", "expect_response": False, "meta": {"skill": "echo.skill"}},
    "context": {
        "source": "hive",
        "platform": "SpecClient/0.1",
        "destination": "SpecClient/0.1::2::sdk-password::spec-password-1795533829149",
        "request_id": "req-hello",
        "session": {"session_id": "spec-password-1795533829149", "site_id": "loopback-test", "lang": "en"},
        "peer": "SpecClient/0.1::2::sdk-password::spec-password-1795533829149",
    },
}


def test_properties_of_a_real_hub_reply() -> None:
    event = normalize(HUB4_SPEAK).unwrap()
    assert event.name == event.type == "speak"
    assert event.text == "echo: hello"
    assert event.utterances == ("echo: hello",)
    assert event.session_id == "spec-password-1795533829149"
    assert event.request_id == "req-hello"
    assert event.site_id == "loopback-test"
    assert event.lang == "en"
    assert event.is_speech and not event.is_failure and not event.is_handled


@pytest.mark.parametrize(
    ("data", "text", "utterances"),
    [
        ({"utterance": "a"}, "a", ("a",)),
        ({"text": "b"}, "b", ()),
        ({"utterances": ["c", "d"]}, "c", ("c", "d")),
        ({"utterances": "e"}, "e", ("e",)),
        ({"utterances": [1, "f"]}, "f", ("f",)),
        ({"utterances": [], "utterance": "g"}, "g", ("g",)),
        ({"utterance": 5, "text": ["x"]}, "", ()),
        ({}, "", ()),
    ],
)
def test_text_and_utterances(data: dict[str, Any], text: str, utterances: tuple[str, ...]) -> None:
    event = ev(data=data)
    assert event.text == text
    assert event.utterances == utterances


@pytest.mark.parametrize(
    ("context", "data", "request_id", "ids"),
    [
        ({"request_id": "a", "thalovant_request_id": "b"}, {}, "a", ("a", "b")),
        ({"thalovant_request_id": "b"}, {}, "b", ("b",)),
        ({"correlation_id": "c"}, {}, "c", ("c",)),
        ({"session": {"request_id": "s"}}, {"request_id": "d"}, "s", ("s",)),
        # hub 4.x: the adopted session may still name an earlier request; context wins alone
        ({"request_id": "now", "session": {"request_id": "earlier"}}, {}, "now", ("now",)),
        ({}, {"request_id": "d"}, "d", ("d",)),
        ({"request_id": "", "session": {"request_id": 5}}, {}, None, ()),
        ({"request_id": "a", "session": {"request_id": "a"}}, {}, "a", ("a",)),
    ],
)
def test_request_ids(
    context: dict[str, Any], data: dict[str, Any], request_id: str | None, ids: tuple[str, ...]
) -> None:
    event = ev(context=context, data=data)
    assert event.request_id == request_id
    assert event.request_ids == ids


@pytest.mark.parametrize(
    ("context", "session_id"),
    [
        ({"session": {"session_id": "s1"}, "session_id": "s2"}, "s1"),
        ({"session": "junk", "session_id": "s2"}, "s2"),
        ({"session": {"session_id": ""}}, None),
        ({}, None),
    ],
)
def test_session_id(context: dict[str, Any], session_id: str | None) -> None:
    assert ev(context=context).session_id == session_id


def test_site_and_lang_lookup_order() -> None:
    event = ev(data={"lang": "de", "site_id": "d"}, context={"lang": "fr"})
    assert (event.lang, event.site_id) == ("fr", "d")


@pytest.mark.parametrize(
    ("typ", "failure", "unanswered", "denied", "handled"),
    [
        ("speak", False, False, False, False),
        ("ovos.utterance.handled", False, False, False, True),
        ("complete_intent_failure", True, True, False, False),
        ("ovos.intent.unmatched", True, True, False, False),
        ("hive.policy.denied", True, False, True, False),
    ],
)
def test_classification(typ: str, failure: bool, unanswered: bool, denied: bool, handled: bool) -> None:
    event = ev(typ)
    assert (event.is_failure, event.is_unanswered, event.is_policy_denied, event.is_handled) == (
        failure,
        unanswered,
        denied,
        handled,
    )


def test_failure_events_do_not_show_the_users_words() -> None:
    event = ev("complete_intent_failure", {"utterance": "what the user said"})
    assert event.display_items() == ()
    assert [i.text for i in ev("speak", {"utterance": "<speak>hi</speak>"}).display_items()] == ["hi"]


@pytest.mark.parametrize(
    ("flt", "accepted"),
    [
        (EventFilter(), True),
        (EventFilter(types=("*",)), True),
        (EventFilter(types=("speak",)), True),
        (EventFilter(types=("spe",)), False),
        (EventFilter(types=("spe*",)), True),
        (EventFilter(types=("ovos.*", "speak")), True),
        (EventFilter(types=("ovos.*",)), False),
        (EventFilter(session_id="s1"), True),
        (EventFilter(session_id="other"), False),
        (EventFilter(request_id="r1"), True),
        (EventFilter(request_id="alt"), True),  # any correlation id may match
        (EventFilter(request_id="nope"), False),
        (EventFilter(data={"lang": "en"}), True),
        (EventFilter(data={"lang": "de"}), False),
        (EventFilter(data={"missing": None}), False),
    ],
)
def test_filter_table(flt: EventFilter, accepted: bool) -> None:
    event = ev(
        data={"lang": "en"},
        context={"request_id": "r1", "thalovant_request_id": "alt", "session": {"session_id": "s1"}},
    )
    assert flt.accepts(event) is accepted


def test_filter_leniency_for_missing_ids() -> None:
    bare = ev()
    assert EventFilter(session_id="s", request_id="r").accepts(bare)
    assert not EventFilter(session_id="s", strict=True).accepts(bare)
    assert not EventFilter(request_id="r", strict=True).accepts(bare)
    assert EventFilter(types=("speak",)).select([bare, ev("x"), bare]) == (bare, bare)


def test_matches_and_matches_context() -> None:
    event = ev(context={"request_id": "r1", "session": {"session_id": "s1"}})
    assert event.matches("speak", session_id="s1", request_id="r1")
    assert event.matches("*")
    assert not event.matches("speak", request_id="r2")
    assert event.matches(EventFilter(types=("spe*",)), data=None)
    assert event.matches_context({"request_id": "r1", "session": {"session_id": "s1"}})
    assert not event.matches_context({"session": {"session_id": "s9"}})
    assert event.matches_context(None, request_id="r1")
    assert not event.matches_context(None, request_id="r2")


def test_parse_filter() -> None:
    assert parse_filter("speak, ovos.* ,hive.policy.denied").unwrap().types == ("speak", "ovos.*", "hive.policy.denied")
    assert parse_filter("*").unwrap().types == ("*",)
    assert parse_filter("").unwrap().types == ()
    for bad in ("a b", "a*b", "**"):
        assert parse_filter(bad).failure().code == "bad-filter"


def test_dedup_key_is_stable_and_content_based() -> None:
    a = normalize(HUB4_SPEAK).unwrap()
    b = normalize(json.loads(json.dumps(HUB4_SPEAK))).unwrap()
    assert a.dedup_key() == b.dedup_key()
    assert a.dedup_key() != ev("speak", {"utterance": "echo: hello"}).dedup_key()


def test_dedup_key_survives_odd_values() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    odd = ThalovantEvent("x", {1: "int key", "b": b"bytes"}, {"deep": deep})
    assert len(odd.dedup_key()) == 64
    assert odd.dedup_key() == ThalovantEvent("x", {1: "int key", "b": b"bytes"}, {"deep": deep}).dedup_key()
    assert odd.dedup_key() != ThalovantEvent("x", {2: "int key", "b": b"bytes"}, {"deep": deep}).dedup_key()


def test_events_hash_and_compare_by_content() -> None:
    a = normalize(HUB4_SPEAK).unwrap()
    b = normalize(json.loads(json.dumps(HUB4_SPEAK))).unwrap()
    assert a == b and hash(a) == hash(b)
    assert len({a, b, ev("speak")}) == 2


def test_secrets_are_redacted_from_repr_and_as_dict() -> None:
    event = ev(
        data={"utterance": "hi", "password": "pw-SECRET"},
        context={"auth": {"token": "tok-SECRET"}, "auth_token": "tok-SECRET", "authorization": "x-SECRET"},
    )
    assert "SECRET" not in repr(event)
    dumped = json.dumps(event.as_dict())
    assert "SECRET" not in dumped
    assert event.as_dict()["context"]["auth"] == {"token": "***"}
    assert event.context["auth"]["token"] == "tok-SECRET"  # the event itself is untouched
    reply = build_reply([event])
    assert "SECRET" not in json.dumps(reply.as_dict())


def test_redact_bounds_depth() -> None:
    deep: Any = "leaf"
    for _ in range(100):
        deep = {"k": deep}
    out = redact(deep)
    for _ in range(41):
        out = out["k"]
    assert out == "***"


def test_as_dict_keys() -> None:
    event = normalize(HUB4_SPEAK).unwrap()
    d = event.as_dict()
    assert set(d) == {
        "type",
        "name",
        "data",
        "context",
        "text",
        "display_text",
        "session_id",
        "request_id",
        "display_items",
    }
    assert d["display_items"] == [
        {
            "kind": "text",
            "text": "echo: hello",
            "data": None,
            "title": None,
            "payload": None,
            "url": None,
            "silent": False,
        }
    ]


# ------------------------------------------------------------------ replies


def turn(*events: ThalovantEvent, **kw: Any) -> ThalovantReply:
    return build_reply(events, **kw)


def test_reply_text_joins_dedups_and_ignores_non_speech() -> None:
    reply = turn(
        ev("speak", {"utterance": " echo:  multi (1/2) "}),
        ev("speak", {"utterance": "echo: multi (1/2)"}, {"x": 1}),  # consecutive repeat
        ev("ovos.utterance.speak", {"utterance": "echo: multi (2/2)"}),
        ev("complete_intent_failure", {"utterance": "user words"}),
        ev("ovos.utterance.handled", {"name": "echo.skill"}),
    )
    assert reply.text == "echo: multi (1/2) echo: multi (2/2)"
    assert reply.utterances == ("echo: multi (1/2)", "echo: multi (2/2)")
    assert reply.handled and reply.unanswered and not reply.ok


def test_reply_outcomes() -> None:
    answered = turn(ev("speak", {"utterance": "hi"}), ev(EVENT_UTTERANCE_HANDLED))
    assert (answered.ok, answered.empty, answered.handled, answered.timed_out) == (True, False, True, False)
    silent = turn(ev(EVENT_UTTERANCE_HANDLED))
    assert (silent.ok, silent.empty) == (True, True)
    timed = turn(ev("speak", {"utterance": "partial"}), timed_out=True)
    assert (timed.ok, timed.text, timed.handled, timed.timed_out) == (False, "partial", False, True)
    unanswered = turn(ev(EVENT_INTENT_UNMATCHED))
    assert unanswered.unanswered and not unanswered.ok
    assert unanswered.failure_event is not None and unanswered.failure_event.type == EVENT_INTENT_UNMATCHED
    denied = turn(ev(EVENT_POLICY_DENIED))
    assert denied.failure_event is not None and not denied.unanswered and not denied.ok


def test_reply_deduplicates_identical_events() -> None:
    speak = normalize(HUB4_SPEAK).unwrap()
    reply = turn(speak, normalize(HUB4_SPEAK).unwrap(), ev(EVENT_UTTERANCE_HANDLED))
    assert len(reply.events) == 2
    assert [i.text for i in reply.display_items()] == ["echo: hello"]


def test_reply_display_items_fallback_and_chunks() -> None:
    assert ThalovantReply(text="one two three").display_items(max_text_chars=7)[1].text == "three"
    assert ThalovantReply().display_items() == ()
    reply = turn(ev("speak", {"utterance": "see", "image": "u"}))
    assert [i.kind for i in reply.display_items()] == ["text", "image"]


def test_reply_ids_and_as_dict() -> None:
    reply = turn(ev("speak", {"utterance": "x"}), session_id="user-s", request_id="r")
    d = reply.as_dict()
    assert (d["session_id"], d["request_id"], d["text"], d["ok"], d["empty"]) == ("user-s", "r", "x", False, False)
    assert set(d) >= {"utterances", "handled", "timed_out", "unanswered", "display_items", "failure_event", "events"}
    json.dumps(d)


# ------------------------------------------------------------------ totality


@settings(max_examples=200, deadline=None)
@given(JSON | SHAPED)
def test_normalize_never_raises(raw: Any) -> None:
    result = normalize(raw)
    if is_successful(result):
        event = result.unwrap()
        assert isinstance(event.type, str) and event.type.strip()
    else:
        assert isinstance(result.failure(), EventProblem)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=30).filter(str.strip), SHAPED, SHAPED, st.none() | st.integers(1, 20))
def test_event_views_never_raise(typ: str, data: Any, context: Any, size: int | None) -> None:
    raw = {
        "type": typ,
        "data": data if isinstance(data, dict) else {"v": data},
        "context": context if isinstance(context, dict) else {},
    }
    event = normalize(raw).unwrap()
    assert isinstance(event.text, str)
    assert all(isinstance(u, str) for u in event.utterances)
    for value in (event.session_id, event.request_id, event.site_id, event.lang):
        assert value is None or (isinstance(value, str) and value.strip())
    json.dumps(event.as_dict(max_text_chars=size), default=str)
    assert len(event.dedup_key()) == 64
    repr(event)
    EventFilter(types=("*",), session_id="s", request_id="r", data={"v": None}).accepts(event)
    json.dumps(build_reply([event, event]).as_dict(), default=str)


def test_reply_cancelled_lang_and_skill_ids() -> None:
    reply = turn(
        ev("speak", {"utterance": "a", "lang": "en-us", "meta": {"skill": "echo.skill"}}),
        ev("speak", {"utterance": "b", "meta": {"skill": "other.skill"}}),
        ev(EVENT_UTTERANCE_HANDLED, {"name": "echo.skill"}),
    )
    assert (reply.lang, reply.skill_ids, reply.cancelled, reply.ok) == (
        "en-us",
        ("echo.skill", "other.skill"),
        False,
        True,
    )
    cancelled = turn(ev("ovos.utterance.cancelled", {"cancel_reason": "x"}), ev(EVENT_UTTERANCE_HANDLED))
    assert cancelled.handled and cancelled.cancelled and not cancelled.ok
    assert (cancelled.lang, cancelled.skill_ids) == (None, ())
    d = reply.as_dict()
    assert (d["lang"], d["skill_ids"], d["cancelled"]) == ("en-us", ["echo.skill", "other.skill"], False)


def test_event_filter_normalises_types() -> None:
    assert EventFilter(types="speak").types == ("speak",)  # type: ignore[arg-type]
    assert EventFilter(types=["a", "b"]).types == ("a", "b")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EventFilter(types=(1,))  # type: ignore[arg-type]
