"""``hive.query.timeout`` (hub 5.x, spec §9.5) is attributed to its ask by ``query_id`` and ends it unanswered."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from thalovant import ThalovantUnansweredError
from thalovant.core.bus.ends import EVENT_QUERY_TIMEOUT, turn_ids
from thalovant.core.bus.events import ThalovantEvent, normalize
from thalovant.core.client.correlate import (
    AskFinished,
    AskProgress,
    AskStarted,
    Correlator,
    CorrelatorState,
    EventArrived,
)

UTT = "recognizer_loop:utterance"


def ev(typ: str, data: dict[str, Any] | None = None, **context: Any) -> ThalovantEvent:
    return normalize({"type": typ, "data": data or {}, "context": context}).unwrap()


def started(*ids: str) -> Correlator:
    c = Correlator()
    for rid in ids:
        c.handle(AskStarted(ask_id=rid, request_id=rid, session_id=None, msg_type=UTT, deadline=10.0), now=0.0)
    return c


def test_a_query_timeout_ends_its_own_ask_unanswered_and_leaves_the_other() -> None:
    c = started("q-1", "q-2")
    timeout = ev(EVENT_QUERY_TIMEOUT, {"query_id": "q-2", "error": "no_answer"})
    out = c.handle(EventArrived(event=timeout), now=1.0)
    assert [type(o) for o in out] == [AskProgress, AskFinished]
    done = out[1]
    assert isinstance(done, AskFinished) and done.ask_id == "q-2"
    assert done.reply.unanswered and not done.reply.ok and done.reply.claimed is False
    assert done.reply.failure_event is not None and done.reply.failure_event.type == EVENT_QUERY_TIMEOUT
    try:
        done.reply.raise_for_unanswered("what I asked")
    except ThalovantUnansweredError as exc:
        assert exc.said == "what I asked" and exc.request_id == "q-2"
    else:
        raise AssertionError("an unanswered reply must raise when asked to")
    assert c.pending == ("q-1",) and c.state is CorrelatorState.WAITING


def test_a_query_timeout_for_no_pending_ask_is_ignored() -> None:
    c = started("q-1")
    assert c.handle(EventArrived(event=ev(EVENT_QUERY_TIMEOUT, {"query_id": "other"})), now=1.0) == []
    assert c.handle(EventArrived(event=ev(EVENT_QUERY_TIMEOUT, {"error": "no_answer"})), now=1.0) == []
    assert c.pending == ("q-1",)


def test_a_request_id_wins_over_the_query_id_and_other_types_ignore_query_id() -> None:
    assert turn_ids(ev(EVENT_QUERY_TIMEOUT, {"query_id": "q"}, request_id="r")) == ("r",)
    assert turn_ids(ev(EVENT_QUERY_TIMEOUT, {"query_id": " q "}, query_id="q")) == ("q",)
    assert turn_ids(ev("speak", {"query_id": "q"})) == ()


@given(st.dictionaries(st.text(max_size=6), st.none() | st.integers() | st.text(max_size=6), max_size=4))
def test_turn_ids_never_raise_on_odd_shapes(data: dict[str, Any]) -> None:
    ids = turn_ids(ev(EVENT_QUERY_TIMEOUT, data))
    assert all(isinstance(i, str) and i.strip() == i and i for i in ids)
