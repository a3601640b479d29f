"""Request hints (``request_context``, ``build_location``) and the reply metadata ``pipeline_ids``/``claimed``."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from thalovant import (
    THALOVANT_CLAIMED_META_KEY,
    ThalovantArgumentError,
    ThalovantArgumentTypeError,
    ThalovantReply,
    ThalovantUnansweredError,
    build_location,
    request_context,
)
from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.hints import MAX_HINT_CHARS, MAX_PIPELINE_IDS

SECRET = "s3cr3t-hint-value"

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=10,
)
contexts = st.dictionaries(st.text(max_size=8), json_values, max_size=5) | st.builds(
    lambda c, s: {**c, "session": s},
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
)
# Not blank after ``str.strip()``: U+0085 and U+00A0 are in range and whitespace to Python (a blank hint is refused).
names = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=20).filter(str.strip)


def test_hints_go_to_the_ovos_session_fields_and_the_top_level() -> None:
    where = build_location(latitude=38.7, longitude=-9.1, city="Lisbon", country="Portugal", timezone="Europe/Lisbon")
    ctx = request_context(
        {"channel": "kiosk", "session": {"session_id": "s1", "pipeline": ["old"]}},
        stt_lang="pt-PT",
        pipeline=["adapt_high", "padatious_high"],
        location=where,
    )
    assert ctx["channel"] == "kiosk" and ctx["stt_lang"] == "pt-PT" and ctx["location"] == where
    assert ctx["pipeline"] == ["adapt_high", "padatious_high"]
    assert ctx["session"] == {
        "session_id": "s1",
        "stt_lang": "pt-PT",
        "pipeline": ["adapt_high", "padatious_high"],
        "location_preferences": where,
    }
    assert where == {
        "city": {"name": "Lisbon", "state": {"country": {"name": "Portugal"}}},
        "coordinate": {"latitude": 38.7, "longitude": -9.1},
        "timezone": {"code": "Europe/Lisbon", "name": "Europe/Lisbon"},
    }


@given(contexts)
def test_no_hint_is_an_equal_copy(context: dict[str, Any]) -> None:
    before = copy.deepcopy(context)
    out = request_context(context)
    assert out == before and context == before
    if context:
        assert out is not context


@given(
    contexts,
    st.none() | names,
    st.none() | st.lists(names, min_size=1, max_size=5),
    st.none() | st.builds(lambda c: build_location(city=c), names),
)
def test_merge_properties(context: dict[str, Any], lang: str | None, ids: list[str] | None, where: Any) -> None:
    before = copy.deepcopy(context)
    out = request_context(context, stt_lang=lang, pipeline=ids, location=where)
    assert context == before  # pure: the input is never mutated
    json.dumps(out)  # still JSON
    hinted = lang is not None or ids is not None or where is not None
    touched = {"session", "stt_lang", "pipeline", "location"} if hinted else set()
    assert {k: v for k, v in out.items() if k not in touched} == {k: v for k, v in before.items() if k not in touched}
    if not hinted:
        return
    session = out["session"]
    old = before.get("session") if isinstance(before.get("session"), dict) else {}
    kept = {k: v for k, v in old.items() if k not in {"stt_lang", "pipeline", "location_preferences"}}
    assert {k: v for k, v in session.items() if k in kept} == kept  # other session keys survive
    if lang is not None:
        assert out["stt_lang"] == session["stt_lang"] == lang.strip()
    if ids is not None:
        assert out["pipeline"] == session["pipeline"] == [i.strip() for i in ids]
    if where is not None:
        assert out["location"] == session["location_preferences"] == where
        assert out["location"] is not where
    # idempotent: merging the same hints again changes nothing
    assert request_context(out, stt_lang=lang, pipeline=ids, location=where) == out


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_coordinates_are_in_range_or_refused(lat: float, lon: float) -> None:
    try:
        where = build_location(latitude=lat, longitude=lon)
    except ThalovantArgumentError as exc:
        assert exc.argument in {"latitude", "longitude"}
        assert not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180)
    else:
        assert where == {"coordinate": {"latitude": lat, "longitude": lon}}


@pytest.mark.parametrize(
    ("kwargs", "argument", "kind"),
    [
        ({"stt_lang": ""}, "stt_lang", ThalovantArgumentError),
        ({"stt_lang": 5}, "stt_lang", ThalovantArgumentTypeError),
        ({"stt_lang": SECRET + "\n" + "x"}, "stt_lang", ThalovantArgumentError),
        ({"stt_lang": SECRET * 40}, "stt_lang", ThalovantArgumentError),
        ({"pipeline": SECRET}, "pipeline", ThalovantArgumentTypeError),
        ({"pipeline": []}, "pipeline", ThalovantArgumentError),
        ({"pipeline": [SECRET, " "]}, "pipeline", ThalovantArgumentError),
        ({"pipeline": [SECRET, 3]}, "pipeline", ThalovantArgumentTypeError),
        ({"pipeline": ["p"] * (MAX_PIPELINE_IDS + 1)}, "pipeline", ThalovantArgumentError),
        ({"location": SECRET}, "location", ThalovantArgumentTypeError),
        ({"location": {}}, "location", ThalovantArgumentError),
        ({"location": {"city": {SECRET}}}, "location", ThalovantArgumentError),
        ({"location": {"x": float("nan")}}, "location", ThalovantArgumentError),
    ],
)
def test_bad_hints_are_typed_and_never_echoed(kwargs: dict[str, Any], argument: str, kind: type[Exception]) -> None:
    with pytest.raises(kind) as caught:
        request_context({}, **kwargs)
    assert type(caught.value) is kind and caught.value.argument == argument
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({}, "location"),
        ({"latitude": 1.0}, "longitude"),
        ({"longitude": 1.0}, "latitude"),
        ({"latitude": True, "longitude": 1.0}, "latitude"),
        ({"city": " "}, "city"),
        ({"country_code": "x" * (MAX_HINT_CHARS + 1)}, "country_code"),
        ({"timezone": 3}, "timezone"),
    ],
)
def test_bad_locations_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ThalovantArgumentError) as caught:
        build_location(**kwargs)
    assert caught.value.argument == argument


def _event(kind: str, data: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> ThalovantEvent:
    return ThalovantEvent(kind, data or {}, context or {})


def test_pipeline_ids_and_claimed_come_from_the_events() -> None:
    speak = _event("speak", {"utterance": "hi", "meta": {"skill": "s.a", "pipeline_id": "adapt_high"}})
    handled = _event("ovos.utterance.handled", {"name": "s.a"}, {"pipeline_id": "padatious_high"})
    reply = ThalovantReply(text="hi", events=(speak, handled), handled=True)
    assert reply.pipeline_ids == ("adapt_high", "padatious_high")
    assert reply.claimed is True
    assert reply.as_dict()["pipeline_ids"] == ["adapt_high", "padatious_high"] and reply.as_dict()["claimed"] is True
    fallback = _event("ovos.utterance.handled", {"name": "s.f"}, {"pipeline_id": "fallback_low"})
    assert ThalovantReply(events=(fallback,), handled=True).claimed is False
    told = _event("speak", {"utterance": "x", "meta": {THALOVANT_CLAIMED_META_KEY: False}})
    assert ThalovantReply(events=(speak, told, handled), handled=True).claimed is False
    assert ThalovantReply(events=(_event("complete_intent_failure"),), unanswered=True).claimed is False
    assert ThalovantReply().claimed is None and ThalovantReply().pipeline_ids == ()


def test_raise_for_unanswered_is_opt_in() -> None:
    answered = ThalovantReply(text="hi", handled=True)
    assert answered.raise_for_unanswered() is answered
    failure = _event("complete_intent_failure", {"utterance": "blorp"})
    reply = ThalovantReply(events=(failure,), failure_event=failure, unanswered=True, request_id="r1")
    with pytest.raises(ThalovantUnansweredError) as caught:
        reply.raise_for_unanswered()
    assert caught.value.said == "blorp" and caught.value.request_id == "r1" and caught.value.reply is reply
    with pytest.raises(ThalovantUnansweredError) as caught:
        reply.raise_for_unanswered("what I said")
    assert caught.value.said == "what I said"
