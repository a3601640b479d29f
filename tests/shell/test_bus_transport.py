"""``transport=`` with 0.4.7's bus-level duck type, tested the way 0.4.7 users test their apps.

The fakes below are written like the ones in thalovant 0.4.7's own suite: handlers kept in a dict,
``emit_event`` answering *synchronously, on the caller's thread*, with a ``speak`` that carries no
context at all and an empty ``ovos.utterance.handled``. Every public class runs over them unchanged:
the blocking and async clients, conversations, both agents and the CLI. (On the code before
``transport=`` existed, each of these tests failed with a ``TypeError``.)
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import anyio
import pytest

import thalovant
from thalovant import (
    AsyncThalovantAgent,
    AsyncThalovantClient,
    ThalovantAgent,
    ThalovantClient,
    ThalovantConnectionError,
    ThalovantTimeoutError,
)
from thalovant.cli import main
from thalovant.shell.bus_handlers import HandlerBook
from thalovant.shell.recording import TraceWriter
from thalovant.transport import HiveMindWSSTransport

IDENTITY = {
    "access_key": "fake-access-key-0123456789",
    "password": "fake-password-0123456789",
    "default_master": "https://hub.example.invalid",
    "site_id": "kitchen",
    "metadata": {"tenant": "acme"},
}
WAIT = 5.0


class FakeMessage:
    def __init__(self, data: dict[str, Any], context: dict[str, Any] | None = None, msg_type: str | None = None):
        self.data = data
        self.context = context
        self.msg_type = msg_type


class FakeTransport:
    """The whole duck type; answers every utterance from inside ``emit_event``."""

    def __init__(self, answer: str | None = "hello from hub", handled: bool = True) -> None:
        self.answer = answer
        self.handled = handled
        self.connected = False
        self.connects = 0
        self.handlers: dict[str, list[Any]] = {}
        self.emitted: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def connect(self) -> None:
        self.connects += 1
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def on_mycroft(self, name: str, fn: Any) -> None:
        self.handlers.setdefault(name, []).append(fn)

    def remove_mycroft(self, name: str, fn: Any) -> None:
        if fn in self.handlers.get(name, []):
            self.handlers[name].remove(fn)

    def emit_event(self, event_type: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        self.emitted.append((event_type, data, context))
        if event_type != "recognizer_loop:utterance":
            return
        if self.answer is not None:
            for fn in list(self.handlers.get("speak", [])):
                fn(FakeMessage({"utterance": self.answer}))
        if self.handled:
            for fn in list(self.handlers.get("ovos.utterance.handled", [])):
                fn(FakeMessage({}))

    def push(self, name: str, data: dict[str, Any], context: dict[str, Any] | None = None) -> None:
        for fn in list(self.handlers.get(name, [])):
            fn(FakeMessage(data, context, msg_type=name))

    def healthcheck(self) -> Any:
        return None

    def is_connected(self) -> bool:
        return self.connected

    def last_error(self) -> BaseException | None:
        return None

    def live_handlers(self) -> dict[str, int]:
        return {name: len(fns) for name, fns in self.handlers.items() if fns}


class FlakyTransport(FakeTransport):
    """Its first ``emit_event`` raises before taking the message, and the connection is then dead."""

    def __init__(self, error: BaseException | None = None) -> None:
        super().__init__()
        self.error = error or ThalovantConnectionError("boom")
        self.failures = 0

    def emit_event(self, event_type: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        if self.failures == 0:
            self.failures += 1
            self.connected = False
            raise self.error
        super().emit_event(event_type, data, context)


def eventually(condition: Any, within: float = WAIT) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@contextlib.contextmanager
def client_over(transport: Any, **kwargs: Any) -> Iterator[ThalovantClient]:
    with ThalovantClient(IDENTITY, transport=transport, **kwargs) as client:
        yield client


# ---- the blocking client -------------------------------------------------------------------------


def test_ask_collects_the_speech_a_fake_fires_inside_emit_event() -> None:
    transport = FakeTransport()
    with client_over(transport) as client:
        reply = client.ask("hello", context={"channel": "test"})
        assert transport.live_handlers() == {}, "handlers left behind after the ask"
    assert (reply.text, reply.utterances, reply.handled, reply.ok) == (
        "hello from hub",
        ("hello from hub",),
        True,
        True,
    )
    assert len(transport.emitted) == 1
    event_type, data, context = transport.emitted[0]
    assert (event_type, data) == ("recognizer_loop:utterance", {"utterances": ["hello"], "lang": "en-us"})
    assert context["channel"] == "test" and context["metadata"] == {"tenant": "acme"}
    assert context["request_id"] == context["thalovant_request_id"] == reply.request_id
    assert set(context["session"]) == {"site_id", "lang", "request_id"}
    assert not transport.connected, "close() did not disconnect the transport"


def test_asks_in_a_row_each_get_their_answer() -> None:
    transport = FakeTransport()
    with client_over(transport) as client:
        texts = [client.ask(f"q{i}").text for i in range(5)]
    assert texts == ["hello from hub"] * 5 and transport.connects == 1


def test_an_ask_without_handled_times_out_and_keeps_no_handler() -> None:
    transport = FakeTransport(answer=None, handled=False)
    with client_over(transport) as client:
        started = time.monotonic()
        with pytest.raises(ThalovantTimeoutError):
            client.ask("anyone?", timeout=0.3)
        assert time.monotonic() - started < 0.3 + 0.2
    assert transport.live_handlers() == {}


def test_what_a_send_provoked_inside_emit_event_is_delivered_before_the_send_returns() -> None:
    transport = FakeTransport()
    with client_over(transport) as client:
        heard = client.listen("speak", timeout=0)  # no waiting: only what is already there
        client.send_utterance("hello")
        assert [e.text for e in heard] == ["hello from hub"]


def test_emit_passes_data_and_context_through() -> None:
    transport = FakeTransport()
    with client_over(transport) as client:
        client.emit("custom.event", {"x": 1}, {"route": "here"})
    assert transport.emitted == [("custom.event", {"x": 1}, {"metadata": {"tenant": "acme"}, "route": "here"})]


def test_sends_carry_their_correlation() -> None:
    transport = FakeTransport(answer=None, handled=False)
    with client_over(transport) as client:
        rid = client.send_utterance("lights on", session_id="s-1")
        client.send_action('/choose{"id":"42"}', title="Choose item", session_id="s-1")
        client.send_code("SN-001", kind="qr", label="serial")
    (_, _, utter), (_, _, action), (_, code_data, code) = transport.emitted
    assert utter["request_id"] == rid and utter["session"]["session_id"] == "s-1"
    assert action["input"] == {"kind": "action", "title": "Choose item", "payload": '/choose{"id":"42"}'}
    assert code_data["input"] == code["input"] == {"kind": "qr", "label": "serial", "value": "SN-001", "exact": True}


def test_on_delivers_events_and_close_removes_the_handler() -> None:
    transport = FakeTransport()
    got: list[thalovant.ThalovantEvent] = []
    with client_over(transport) as client:
        sub = client.on("custom.event", got.append)
        assert transport.live_handlers() == {"custom.event": 1}
        transport.push("custom.event", {"n": 1})
        assert eventually(lambda: len(got) == 1)
        assert (got[0].name, got[0].data, dict(got[0].context), got[0].text) == ("custom.event", {"n": 1}, {}, "")
        sub.close()
        assert transport.live_handlers() == {}, "close() left the handler on the transport"
        transport.push("custom.event", {"n": 2})
        time.sleep(0.05)
    assert len(got) == 1


def test_on_filters_by_session() -> None:
    transport = FakeTransport()
    got: list[thalovant.ThalovantEvent] = []
    with client_over(transport) as client:
        client.on("speak", got.append, session_id="mine")
        transport.push("speak", {"utterance": "not yours"}, {"session": {"session_id": "other"}})
        transport.push("speak", {"utterance": "yours"}, {"session": {"session_id": "mine"}})
        assert eventually(lambda: len(got) == 1)
    assert got[0].text == "yours"


def test_wait_for_event_and_listen_see_events_pushed_from_another_thread() -> None:
    transport = FakeTransport()
    with client_over(transport) as client:
        timer = threading.Timer(0.05, transport.push, ("status", {"step": 2}))
        events = client.listen("status", timeout=WAIT, max_events=2)  # registered before this returns
        transport.push("status", {"step": 1})
        timer.start()
        assert [e.data["step"] for e in events] == [1, 2]
        threading.Timer(0.05, transport.push, ("status", {"step": 3})).start()
        found = client.wait_for_event("status", timeout=WAIT, predicate=lambda e: e.data["step"] == 3)
        assert found.data == {"step": 3}
    assert transport.live_handlers() == {}


def test_a_conversation_keeps_its_session() -> None:
    transport = FakeTransport()
    with client_over(transport) as client, client.conversation(session_id="conv-1", context={"user": "ana"}) as convo:
        reply = convo.ask("hi")
    context = transport.emitted[0][2]
    assert reply.session_id == "conv-1" and reply.text == "hello from hub"
    assert context["session"]["session_id"] == "conv-1" and context["user"] == "ana"


def test_health_and_doctor_go_through_the_transport() -> None:
    transport = FakeTransport()
    client = ThalovantClient(IDENTITY, transport=transport)
    report = client.doctor()  # not connected: connects for the check, closes again
    assert report.ok, report.format()
    assert [(c.name, c.status) for c in report.checks] == [
        ("identity", "ok"),
        ("endpoint", "ok"),
        ("connect", "ok"),
        ("transport", "ok"),
    ]  # thalovant 0.4.7's four checks: no DNS, TCP or TLS to probe
    assert "FakeTransport" in report.check("endpoint").detail  # type: ignore[union-attr]
    assert "protocols" not in report.identity  # 0.4.7's summary
    assert IDENTITY["access_key"] not in json.dumps(report.as_dict())
    with client:
        health = client.healthcheck()
        assert health.ok and health.connected
    assert not transport.connected


def test_a_send_refused_before_it_left_is_sent_again_once_after_a_reconnect() -> None:
    transport = FlakyTransport()
    with client_over(transport) as client:
        client.emit("custom.event", {})
    assert transport.connects == 2 and transport.emitted == [("custom.event", {}, {"metadata": {"tenant": "acme"}})]


def test_an_ask_refused_before_it_left_is_answered_after_the_retry() -> None:
    transport = FlakyTransport(RuntimeError("socket is closed"))
    with client_over(transport) as client:
        assert client.ask("hello").text == "hello from hub"
    assert transport.connects == 2 and len(transport.emitted) == 1


def test_a_send_that_may_have_left_is_never_sent_again() -> None:
    transport = FlakyTransport(TimeoutError("no answer from the hub"))
    with client_over(transport) as client, pytest.raises(ThalovantConnectionError, match="not delivered"):
        client.emit("buy.now", {})
    assert transport.emitted == []  # the one attempt raised; nothing was sent a second time


def test_a_transport_error_never_shows_the_access_key() -> None:
    transport = FlakyTransport(ValueError(f"bad request to https://h/?key={IDENTITY['access_key']}"))
    with client_over(transport) as client, pytest.raises(ThalovantConnectionError) as raised:
        client.emit("x", {})
    assert IDENTITY["access_key"] not in str(raised.value) and "***" in str(raised.value)


class RefusingTransport(FakeTransport):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def connect(self) -> None:
        self.connects += 1
        raise self.error


def test_a_failing_connect_raises_at_once_as_in_0_4_7() -> None:
    started = time.monotonic()
    with pytest.raises(ThalovantConnectionError, match="hub unreachable"):
        ThalovantClient(IDENTITY, transport=RefusingTransport(ThalovantConnectionError("hub unreachable"))).connect()
    refused = RefusingTransport(thalovant.ThalovantAuthenticationError("bad key"))
    with pytest.raises(thalovant.ThalovantAuthenticationError):
        ThalovantClient(IDENTITY, transport=refused).connect()
    assert refused.connects == 1 and time.monotonic() - started < 2


def test_the_identity_needs_no_endpoint_for_the_protocol() -> None:
    transport = FakeTransport()
    with ThalovantClient(IDENTITY, transport=transport, protocol="wss") as client:
        assert client.ask("hi").text == "hello from hub"


def test_what_transport_accepts() -> None:
    with pytest.raises(TypeError, match="transport must be"):
        ThalovantClient(IDENTITY, transport=object())
    with pytest.raises(thalovant.ThalovantUnsupportedProtocolError, match="trace="):
        ThalovantClient(IDENTITY, transport=FakeTransport(), trace=TraceWriter("never-written.jsonl"))


class LockedThreadTransport(FakeTransport):
    """Calls handlers from its own thread while holding its lock, and takes the same lock in
    ``on_mycroft``/``remove_mycroft`` (what paho does): a client that blocked in a handler would deadlock."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def on_mycroft(self, name: str, fn: Any) -> None:
        with self.lock:
            super().on_mycroft(name, fn)

    def remove_mycroft(self, name: str, fn: Any) -> None:
        with self.lock:
            super().remove_mycroft(name, fn)

    def emit_event(self, event_type: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        self.emitted.append((event_type, data, context))
        rid = context.get("request_id")

        def answer() -> None:
            with self.lock:
                for name, body in (
                    ("speak", {"utterance": f"echo {data['utterances'][0]}"}),
                    ("ovos.utterance.handled", {}),
                ):
                    for fn in list(self.handlers.get(name, [])):
                        fn(FakeMessage(body, {"request_id": rid}, msg_type=name))

        self.thread = threading.Thread(target=answer)
        self.thread.start()


def test_handlers_called_from_the_transports_thread_under_its_lock() -> None:
    transport = LockedThreadTransport()
    with client_over(transport) as client:
        replies = [client.ask(f"n{i}", timeout=WAIT).text for i in range(20)]
    assert replies == [f"echo n{i}" for i in range(20)]


# ---- the async client, agents and the CLI -----------------------------------------------------------


async def soon(condition: Any) -> None:
    """Wait (polling, bounded in count and time) until ``condition()`` holds."""
    for _ in range(int(WAIT / 0.005)):
        if condition():
            return
        await anyio.sleep(0.005)
    raise AssertionError("the condition never held")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_async_client_conversation_handlers_and_listen() -> None:
    transport = FakeTransport()
    async with AsyncThalovantClient(IDENTITY, transport=transport) as client:
        assert (await client.ask("hi")).text == "hello from hub"
        async with client.conversation(session_id="c-9") as convo:
            assert (await convo.ask("again")).session_id == "c-9"
        seen = anyio.Event()
        got: list[str] = []

        async def handler(event: thalovant.ThalovantEvent) -> None:
            got.append(event.text)
            seen.set()

        client.on("speak", handler)
        transport.push("speak", {"utterance": "async hello"})
        with anyio.fail_after(WAIT):
            await seen.wait()
        listener = client.listen("tick", max_events=2, timeout=WAIT)
        transport.push("tick", {"n": 1})
        transport.push("tick", {"n": 2})
        assert [e.data["n"] async for e in listener] == [1, 2]
    assert got == ["async hello"] and transport.live_handlers() == {}


@pytest.mark.anyio
async def test_two_asks_at_once_never_take_each_others_unmarked_reply() -> None:
    """0.4.7 gave an id-less reply to whichever ask listened; with two in flight it belongs to neither."""
    transport = FakeTransport()
    async with AsyncThalovantClient(IDENTITY, transport=transport) as client:
        transport.answer, transport.handled = None, False
        results: list[BaseException | str] = []

        async def one(text: str) -> None:
            try:
                results.append((await client.ask(text, timeout=0.5)).text)
            except ThalovantTimeoutError as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "first")
            tg.start_soon(one, "second")
            await anyio.sleep(0.1)
            transport.push("speak", {"utterance": "whose is this?"})
    assert len(results) == 2 and all(isinstance(r, ThalovantTimeoutError) for r in results)


def test_sync_agent_runs_its_handler_until_stopped() -> None:
    transport = FakeTransport()
    agent = ThalovantAgent(IDENTITY, transport=transport)
    heard: list[str] = []

    @agent.on_speak
    def on_speak(event: thalovant.ThalovantEvent) -> None:
        heard.append(event.text)
        agent.stop()

    runner = threading.Thread(target=agent.run_forever, kwargs={"handle_signals": False, "check_interval": 0.05})
    runner.start()
    assert eventually(lambda: transport.live_handlers().get("speak") == 1)
    transport.push("speak", {"utterance": "wake up"})
    runner.join(WAIT)
    assert not runner.is_alive() and heard == ["wake up"] and not transport.connected


@pytest.mark.anyio
async def test_async_agent_with_a_coroutine_handler() -> None:
    transport = FakeTransport()
    agent = AsyncThalovantAgent(IDENTITY, transport=transport)
    heard: list[str] = []

    @agent.on_speak
    async def on_speak(event: thalovant.ThalovantEvent) -> None:
        heard.append(event.text)
        agent.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: agent.run_forever(handle_signals=False, check_interval=0.05))
        await soon(lambda: transport.live_handlers().get("speak") == 1)
        transport.push("speak", {"utterance": "async wake"})
    assert heard == ["async wake"]


def test_cli_over_a_fake_transport(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(IDENTITY), "utf-8")
    path.chmod(0o600)
    transport = FakeTransport()
    for argv, printed in (
        (["ask", "hello"], "hello from hub"),
        (["emit", "custom.event", "--data", '{"a": 1}'], "sent"),
        (["health"], "ok"),
    ):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["-i", str(path), *argv], transport=transport) == 0
        assert out.getvalue().splitlines()[0].startswith(printed), out.getvalue()
    assert [e[0] for e in transport.emitted] == ["recognizer_loop:utterance", "custom.event"]


def test_only_thalovant_transport_adapters_are_hands_off() -> None:
    """A client never makes the adapters' handler threads wait (issue 12 review); anything else,
    including a Mock whose every attribute is truthy, keeps 0.4.7's synchronous delivery."""
    assert HandlerBook(MagicMock()).waits
    adapter = HiveMindWSSTransport.__new__(HiveMindWSSTransport)  # no connection needed to read the flag
    assert not HandlerBook(adapter).waits


def test_a_synth_ask_does_not_wait_for_audio_a_bus_transport_cannot_carry() -> None:
    transport = FakeTransport()
    with client_over(transport) as client:
        started = time.monotonic()
        reply = client.ask("hi", synth=True, timeout=3.0)
        elapsed = time.monotonic() - started
    assert reply.text == "hello from hub" and reply.audio == ()
    assert elapsed < 1.0, f"the ask waited {elapsed:.2f} s for audio that cannot come"
    assert [t for t, _, _ in transport.emitted] == ["recognizer_loop:utterance"]  # no useless speak:synth
