"""Async conversations without a hub: what each turn sends, whose events it sees, what it carries (fake client)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import pytest

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.doctor import ThalovantDoctorReport
from thalovant.core.errors import ThalovantConnectionError
from thalovant.shell.conversation import AsyncThalovantConversation


class FakeStream:
    """A listener double: the queued events its predicate accepts, then the end."""

    def __init__(self, events: Iterable[ThalovantEvent]) -> None:
        self._events = list(events)
        self.closed = False

    def __aiter__(self) -> FakeStream:
        return self

    async def __anext__(self) -> ThalovantEvent:
        if self.closed or not self._events:
            raise StopAsyncIteration
        return self._events.pop(0)

    async def aclose(self) -> None:
        self.closed = True


class FakeClient:
    """Just enough of AsyncThalovantClient for conversations and the blocking facade (a shell test double).

    Every call is recorded in ``calls`` as ``(name, args, kwargs)``; ``events`` are what
    ``listen`` and ``wait_for_event`` see; ``reply`` is what ``ask`` answers.
    """

    def __init__(self) -> None:
        counter = itertools.count(1)
        self._entropy: Callable[[int], bytes] = lambda n: next(counter).to_bytes(n, "big")
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.events: list[ThalovantEvent] = []
        self.reply = ThalovantReply(text="hi")
        self.fail_enter: BaseException | None = None
        self.entered_in: int | None = None
        self.exits = 0
        self.streams: list[FakeStream] = []
        self.handlers: list[tuple[Any, Any]] = []

    def __repr__(self) -> str:
        return "<FakeClient>"

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    def last(self, name: str) -> dict[str, Any]:
        return [kw for n, _, kw in self.calls if n == name][-1]

    async def __aenter__(self) -> FakeClient:
        if self.fail_enter is not None:
            raise self.fail_enter
        self.entered_in = threading.get_ident()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.exits += 1

    async def connect(self) -> None:
        self._record("connect")

    async def ask(self, text: str, **kwargs: Any) -> ThalovantReply:
        self._record("ask", text, **kwargs)
        if text == "fail":
            raise ThalovantConnectionError("link lost")
        return self.reply

    async def send_utterance(self, text: str, **kwargs: Any) -> str:
        self._record("send_utterance", text, **kwargs)
        return str(kwargs.get("request_id", "rid"))

    async def send_action(self, payload: str, **kwargs: Any) -> str:
        self._record("send_action", payload, **kwargs)
        return str(kwargs.get("request_id", "rid"))

    async def send_code(self, value: str, **kwargs: Any) -> str:
        self._record("send_code", value, **kwargs)
        return str(kwargs.get("request_id", "rid"))

    async def emit(self, event: str, data: Any = None, context: Any = None) -> None:
        self._record("emit", event, data, context)

    async def healthcheck(self) -> str:
        self._record("healthcheck")
        return "healthy"

    async def doctor(self, **kwargs: Any) -> ThalovantDoctorReport:
        self._record("doctor", **kwargs)
        return ThalovantDoctorReport(identity={}, checks=())

    def _matching(self, event: str | EventFilter, predicate: Any) -> list[ThalovantEvent]:
        flt = event if isinstance(event, EventFilter) else EventFilter(types=(event,))
        return [e for e in self.events if flt.accepts(e) and (predicate is None or predicate(e))]

    def listen(self, event: str | EventFilter = "*", *, predicate: Any = None, **kwargs: Any) -> FakeStream:
        self._record("listen", event, predicate=predicate, **kwargs)
        stream = FakeStream(self._matching(event, predicate))
        self.streams.append(stream)
        return stream

    async def wait_for_event(self, event: str | EventFilter, *, predicate: Any = None, **kwargs: Any) -> ThalovantEvent:
        self._record("wait_for_event", event, predicate=predicate, **kwargs)
        return self._matching(event, predicate)[0]

    def on(self, event: Any, handler: Any, *, _call: Any = None, **options: Any) -> str:
        self._record("on", event, **options)
        self.handlers.append((handler, _call))
        return f"subscription {len(self.handlers)}"

    async def fire(self, event: ThalovantEvent) -> None:
        """Deliver ``event`` to every handler, the way the client's listener registry does."""
        for handler, call in self.handlers:
            await (call(handler, event) if call is not None else anyio.to_thread.run_sync(handler, event))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def speak(text: str, *, session_id: str | None = None, request_id: str | None = None) -> ThalovantEvent:
    context: dict[str, Any] = {}
    if session_id is not None:
        context["session"] = {"session_id": session_id}
    if request_id is not None:
        context["request_id"] = request_id
    return ThalovantEvent(type="speak", data={"utterance": text}, context=context)


# ---- turns --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_each_turn_carries_the_session_language_context_and_a_fresh_request_id() -> None:
    client = FakeClient()
    convo = AsyncThalovantConversation(client, session_id="s-1", lang="de-de", context={"site": "kitchen"})  # type: ignore[arg-type]
    async with convo:
        await convo.ask("hello", context={"extra": 1}, timeout=3.0)
        await convo.send_utterance("again", lang="fr-fr")
    ask, utterance = client.last("ask"), client.last("send_utterance")
    assert ask["session_id"] == utterance["session_id"] == "s-1"
    assert (ask["lang"], utterance["lang"]) == ("de-de", "fr-fr")
    assert ask["timeout"] == 3.0
    assert ask["context"] == {"site": "kitchen", "extra": 1, "session": {"session_id": "s-1"}}
    assert utterance["context"] == {"site": "kitchen", "session": {"session_id": "s-1"}}
    assert convo.request_ids == [ask["request_id"], utterance["request_id"]]
    assert len(set(convo.request_ids)) == 2 and all(r.startswith("thalovant-request-") for r in convo.request_ids)


def test_a_fresh_session_id_comes_from_the_client_entropy() -> None:
    client = FakeClient()
    first = AsyncThalovantConversation(client)  # type: ignore[arg-type]
    second = AsyncThalovantConversation(client)  # type: ignore[arg-type]
    assert first.session_id.startswith("thalovant-session-") and first.session_id != second.session_id
    assert first.lang == "en-us" and "turns=0" in repr(first)


@pytest.mark.anyio
async def test_action_and_code_turns_pass_their_own_arguments() -> None:
    client = FakeClient()
    convo = AsyncThalovantConversation(client, session_id="s-2")  # type: ignore[arg-type]
    rid_action = await convo.send_action("yes", title="Yes please")
    rid_code = await convo.send_code("4006381333931", kind="ean", label="box")
    action, code = client.last("send_action"), client.last("send_code")
    assert (action["title"], action["session_id"], action["request_id"]) == ("Yes please", "s-2", rid_action)
    assert (code["kind"], code["label"], code["request_id"]) == ("ean", "box", rid_code)
    assert convo.request_ids == [rid_action, rid_code]


@pytest.mark.anyio
async def test_emit_sends_the_session_and_language_but_no_request_id() -> None:
    client = FakeClient()
    convo = AsyncThalovantConversation(client, session_id="s-3", lang="nl-nl")  # type: ignore[arg-type]
    await convo.emit("my.event", {"k": 1}, {"lang": "it-it"})
    await convo.emit("my.event")
    (_, args_given, _), (_, args_default, _) = [c for c in client.calls if c[0] == "emit"]
    assert args_given == ("my.event", {"k": 1}, {"lang": "it-it", "session": {"session_id": "s-3"}})
    assert args_default[2] == {"lang": "nl-nl", "session": {"session_id": "s-3"}}
    assert convo.request_ids == []


@pytest.mark.anyio
async def test_a_stateless_hub_session_is_carried_into_the_next_turn() -> None:
    client = FakeClient()
    convo = AsyncThalovantConversation(client, session_id="s-4")  # type: ignore[arg-type]
    ours = {"session_id": "s-4", "active_skills": [["joke.skill", 1]], "request_id": "old"}
    handled = ThalovantEvent(type="ovos.utterance.handled", context={"session": ours})
    theirs = ThalovantEvent(type="speak", context={"session": {"session_id": "hub-own", "x": 1}})
    client.reply = ThalovantReply(text="a joke", events=(handled, theirs))
    await convo.ask("tell me a joke")
    await convo.ask("another one")
    first, second = [kw for n, _, kw in client.calls if n == "ask"]
    assert first["context"]["session"] == {"session_id": "s-4"}
    assert second["context"]["session"] == {"active_skills": [["joke.skill", 1]], "session_id": "s-4"}


# ---- whose events -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_conversation_sees_only_its_own_events() -> None:
    client = FakeClient()
    convo = AsyncThalovantConversation(client, session_id="s-5")  # type: ignore[arg-type]
    rid = await convo.send_utterance("hi")
    by_request = speak("by request", request_id=rid)
    by_session = speak("by session", session_id="s-5")
    other = speak("someone else", session_id="s-other", request_id="thalovant-request-other")
    client.events = [other, by_request, by_session]
    assert convo.owns(by_request) and convo.owns(by_session) and not convo.owns(other)
    seen = [e.text async for e in convo.listen("speak", timeout=2.0, max_events=5)]
    assert seen == ["by request", "by session"]
    assert client.last("listen")["timeout"] == 2.0 and client.last("listen")["max_events"] == 5
    assert (await convo.wait_for_event("speak")).text == "by request"
    only_session = await convo.wait_for_event("speak", timeout=1.0, predicate=lambda e: e.request_id is None)
    assert only_session.text == "by session"
