"""The blocking client and blocking conversations, offline: a fake async client behind the real facade."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.shell.test_conversation import FakeClient, speak
from thalovant.core.errors import ThalovantConnectionError
from thalovant.shell.sync.client import ThalovantClient
from thalovant.shell.sync.conversation import ThalovantConversation

IDENTITY = {
    "access_key": "unit-access-key",
    "password": "unit-password",
    "site_id": "unit",
    "default_master": "http://127.0.0.1",
    "default_port": 9,
}


def settle(count: int) -> bool:
    deadline = time.monotonic() + 5
    while threading.active_count() > count and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count() <= count


def facade() -> tuple[ThalovantClient, FakeClient]:
    client = ThalovantClient(IDENTITY)
    fake = FakeClient()
    client._async = fake  # type: ignore[assignment]
    return client, fake


def test_with_holds_the_async_client_open_on_a_background_loop() -> None:
    before = threading.active_count()
    client, fake = facade()
    with client as same:
        assert same is client and fake.entered_in not in (None, threading.get_ident())
        assert client.ask("hello").text == "hi"
        client.connect()  # connected already: forwarded to the async client
        assert [c[0] for c in fake.calls] == ["ask", "connect"]
        assert fake.exits == 0
    assert fake.exits == 1 and settle(before)
    client.close()  # idempotent
    assert fake.exits == 1


def test_the_first_call_connects_and_close_ends_the_loop() -> None:
    before = threading.active_count()
    client, fake = facade()
    assert client.send_utterance("hi", lang="de-de") == "rid"
    assert fake.entered_in is not None and fake.last("send_utterance") == {"lang": "de-de"}
    assert client.healthcheck() == "healthy"  # type: ignore[comparison-overlap]
    client.emit("my.event", {"a": 1})
    client.disconnect()
    assert fake.exits == 1 and settle(before)


def test_a_failed_connect_raises_the_async_error_and_leaves_no_thread() -> None:
    before = threading.active_count()
    client, fake = facade()
    fake.fail_enter = ThalovantConnectionError("refused")
    with pytest.raises(ThalovantConnectionError, match="refused"):
        client.connect()
    assert settle(before)
    fake.fail_enter = None
    with client:
        assert client.ask("again").text == "hi"


def test_errors_of_a_call_come_back_with_their_type() -> None:
    client, _ = facade()
    with client, pytest.raises(ThalovantConnectionError, match="link lost"):
        client.ask("fail")


def test_doctor_without_a_connection_runs_on_a_short_lived_loop() -> None:
    before = threading.active_count()
    client, fake = facade()
    report = client.doctor(protocol="wss")
    assert report.checks == () and fake.last("doctor") == {"protocol": "wss"}
    assert fake.entered_in is None and settle(before)  # it did not connect
    with client:
        client.doctor()
        assert [c[0] for c in fake.calls] == ["doctor", "doctor"]


def test_listen_registers_at_once_and_closes_the_listener_when_done() -> None:
    client, fake = facade()
    fake.events = [speak("one"), speak("two"), speak("three")]
    with client:
        events = client.listen("speak", timeout=1.0)
        assert fake.last("listen") == {"predicate": None, "timeout": 1.0}  # registered before iterating
        assert [next(events).text, next(events).text] == ["one", "two"]
        events.close()  # type: ignore[attr-defined]
        assert fake.streams[0].closed


def test_handlers_run_in_a_worker_thread_and_may_call_the_client() -> None:
    client, fake = facade()
    answers: list[tuple[int, str]] = []

    def handler(event: Any) -> None:
        answers.append((threading.get_ident(), client.ask(event.text).text))

    with client:
        sub = client.on("speak", handler, session_id="s-1")
        assert sub == "subscription 1"  # type: ignore[comparison-overlap]
        assert fake.last("on") == {"predicate": None, "session_id": "s-1", "request_id": None}
        client._portal.call(fake.fire, speak("ping"))
    (thread, text), = answers
    assert text == "hi" and thread not in (threading.get_ident(), fake.entered_in)


# ---- blocking conversations ---------------------------------------------------------------------


def test_a_blocking_conversation_forwards_each_turn() -> None:
    client, fake = facade()
    with client, client.conversation(session_id="s-9", lang="de-de", context={"k": "v"}) as convo:
        assert isinstance(convo, ThalovantConversation) and convo.client is client
        assert (convo.session_id, convo.lang) == ("s-9", "de-de")
        assert convo.ask("hello", timeout=2.0).text == "hi"
        rids = [convo.send_utterance("a"), convo.send_action("yes", title="Yes"), convo.send_code("42", kind="qr")]
        convo.emit("my.event", {"x": 1})
        assert convo.request_ids == [fake.last("ask")["request_id"], *rids]
        assert fake.last("ask")["context"] == {"k": "v", "session": {"session_id": "s-9"}}
        assert fake.last("send_code")["kind"] == "qr" and fake.last("send_action")["title"] == "Yes"
    assert repr(convo).startswith("<ThalovantConversation session_id='s-9' turns=4")


def test_a_blocking_conversation_connects_on_demand() -> None:
    client, fake = facade()
    convo = client.conversation()
    assert fake.entered_in is None
    convo.send_utterance("hi")
    assert fake.entered_in is not None
    client.close()


def test_a_blocking_conversation_sees_only_its_own_events() -> None:
    client, fake = facade()
    with client:
        convo = client.conversation(session_id="s-7")
        rid = convo.send_utterance("hi")
        mine, other = speak("mine", request_id=rid), speak("other", session_id="s-x", request_id="r-x")
        late = speak("late mine", session_id="s-7")
        fake.events = [other, mine, late]
        assert convo.owns(mine) and not convo.owns(other)
        assert [e.text for e in convo.listen("speak", max_events=3)] == ["mine", "late mine"]
        assert [e.text for e in convo.listen("speak", predicate=lambda e: e.request_id is None)] == ["late mine"]
        assert convo.wait_for_event("speak", timeout=1.0).text == "mine"
