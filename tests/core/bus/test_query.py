"""QUERY request frames and how answers are read (core/bus/query.py, spec §9.5)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.hive import hive_of
from thalovant.core.bus.query import (
    QueryChunk,
    QueryComplete,
    QueryTimeout,
    query_answer,
    query_message,
    query_result,
)
from thalovant.core.wire.codec import decode_json, encode_json
from thalovant.core.wire.message import HiveMessage, MsgType


def _answer(qid: str, msg_type: str, data: dict[str, Any], **meta: Any) -> HiveMessage:
    """A QUERY answer as hub 5.3 builds it (``_build_query_response``)."""
    inner = {"msg_type": "bus", "payload": {"type": msg_type, "data": data, "context": {"query_id": qid}},
             "metadata": {}, "route": [], "node": None, "target_site_id": None, "target_pubkey": None,
             "source_peer": None}
    metadata = {"query_id": qid, "originator_peer": "me", "responder_peer": "hub-key", "is_response": True, **meta}
    return HiveMessage(msg_type=MsgType.QUERY, payload=inner, metadata=metadata)


def _read(frame: HiveMessage, qid: str) -> Any:
    hive = hive_of(decode_json(encode_json(frame)).unwrap()).unwrap()
    return query_answer({"metadata": hive.metadata, "message": hive.message}, qid)


def test_the_request_is_a_nested_bus_envelope_of_an_utterance() -> None:
    frame = query_message("what time is it", query_id="q1", session_id="s1", lang="de-de", site_id="den",
                          useragent="UA")
    obj = json.loads(encode_json(frame))
    assert obj["msg_type"] == "query" and obj["metadata"] == {"query_id": "q1"}
    inner = obj["payload"]
    assert inner["msg_type"] == "bus"  # a bare OVOS message would be malformed_payload on hub 5.x
    bus = inner["payload"]
    assert bus["type"] == "recognizer_loop:utterance"
    assert bus["data"] == {"utterances": ["what time is it"], "lang": "de-de"}
    assert bus["context"]["query_id"] == "q1" and bus["context"]["session"]["session_id"] == "s1"


def test_a_stream_reads_as_chunks_then_complete() -> None:
    answers = [_read(_answer("q1", "speak", {"utterance": "echo: hi"}), "q1"),
               _read(_answer("q1", "speak", {"utterance": "more"}), "q1"),
               _read(_answer("q1", "hive.query.complete", {}), "q1")]
    assert answers == [QueryChunk("echo: hi", "hub-key"), QueryChunk("more", "hub-key"), QueryComplete()]
    result = query_result("q1", answers)
    assert result.text == "echo: hi more" and result.complete and not result.unanswered and not result.timed_out
    assert result.responder_peers == ("hub-key",)
    assert result.as_dict()["chunks"] == ["echo: hi", "more"]


def test_a_timeout_answer_or_event_is_unanswered() -> None:
    frame = _answer("q1", "hive.query.timeout", {"query_id": "q1", "error": "no_answer"})
    assert _read(frame, "q1") == QueryTimeout("no_answer")
    event = ThalovantEvent("hive.query.timeout", {"query_id": "q1", "error": "no_answer"})
    assert query_answer(event, "q1") == QueryTimeout("no_answer")
    assert query_answer(event, "q2") is None
    assert query_result("q1", [QueryTimeout()]).unanswered


def test_answers_to_other_queries_and_requests_are_ignored() -> None:
    assert _read(_answer("q2", "speak", {"utterance": "x"}), "q1") is None
    assert _read(_answer("q1", "speak", {"utterance": "x"}, is_response=False), "q1") is None
    assert _read(_answer("q1", "something.else", {}), "q1") is None
    assert query_answer(ThalovantEvent("speak", {"utterance": "x"}), "q1") is None


def test_the_client_timeout_without_chunks_is_unanswered_with_chunks_partial() -> None:
    assert query_result("q", [], timed_out=True).unanswered
    partial = query_result("q", [QueryChunk("a")], timed_out=True)
    assert partial.timed_out and not partial.unanswered and partial.text == "a"


@settings(max_examples=200, deadline=None)
@given(meta=st.dictionaries(st.sampled_from(["query_id", "is_response", "responder_peer"]),
                            st.none() | st.booleans() | st.text(max_size=3) | st.integers(), max_size=3),
       msg_type=st.text(max_size=20), data=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2))
def test_any_answer_frame_reads_without_raising(meta: dict, msg_type: str, data: dict) -> None:
    event = ThalovantEvent(msg_type or "x", data)
    assert query_answer({"metadata": meta, "message": event}, "q") in (None, QueryComplete(), QueryTimeout()) or \
        isinstance(query_answer({"metadata": meta, "message": event}, "q"), QueryChunk | QueryTimeout)
    assert query_answer({"metadata": "nope", "message": event}, "q") is None
