"""0.4.7 conversations and agents: ``request_id=`` on turns, ``on``/``context``, ``run_forever(poll_interval=)``."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from tests.compat.conftest import UA, WAIT
from tests.shell.inmemory import MemoryHubNet
from thalovant import (
    EVENT_SPEAK,
    AsyncThalovantAgent,
    AsyncThalovantClient,
    ThalovantAgent,
    ThalovantClient,
    ThalovantEvent,
    ThalovantIdentity,
)


def test_conversation_turns_take_request_ids_and_expose_on_and_context(
    identity: ThalovantIdentity, hub: MemoryHubNet
) -> None:
    heard: list[str] = []
    done = threading.Event()

    def handler(event: ThalovantEvent) -> None:
        heard.append(event.text)
        done.set()

    with ThalovantClient(identity, useragent=UA) as client:
        with client.conversation(session_id="conversation-1", context={"source": "test"}) as convo:
            assert convo.context == {"source": "test"}
            convo.on("speak", handler)
            client.ask("not in the conversation")
            reply = convo.ask("hello", request_id="request-1")
            assert done.wait(WAIT)
            rid = convo.send_utterance("again", request_id="request-2")
    assert reply.text == "echo: hello" and reply.request_id == "request-1"
    assert reply.session_id == "conversation-1" and rid == "request-2"
    assert heard[0] == "echo: hello" and "echo: not in the conversation" not in heard
    sent = next(m for m in hub.hub.received if m.context.get("request_id") == "request-1")
    assert sent.context["source"] == "test"


def test_conversation_listen_takes_a_context(identity: ThalovantIdentity, hub: MemoryHubNet) -> None:
    with ThalovantClient(identity, useragent=UA) as client:
        convo = client.conversation(session_id="conversation-2")
        with pytest.warns(DeprecationWarning, match="listen"):
            events = convo.listen("speak", timeout=WAIT, max_events=1, context={"request_id": "turn-2"})
        convo.ask("first", request_id="turn-1")
        convo.ask("second", request_id="turn-2")
        assert [event.text for event in events] == ["echo: second"]


def test_async_conversation_on_and_request_ids(identity: ThalovantIdentity, hub: MemoryHubNet) -> None:
    async def run() -> tuple[list[str], str | None, str]:
        heard: list[str] = []
        arrived = anyio.Event()

        def handler(event: ThalovantEvent) -> None:
            heard.append(event.text)
            arrived.set()

        async with AsyncThalovantClient(identity, useragent=UA) as client:
            async with client.conversation(session_id="async-session") as convo:
                convo.on("speak", handler, context={"request_id": "mine"})
                await convo.ask("other", request_id="not-mine")
                reply = await convo.ask("hello", request_id="mine")
                with anyio.fail_after(WAIT):
                    await arrived.wait()
                return heard, reply.request_id, reply.session_id or ""

    with pytest.warns(DeprecationWarning, match="on"):
        assert anyio.run(run) == (["echo: hello"], "mine", "async-session")


def test_agent_run_forever_takes_poll_interval(identity: ThalovantIdentity, hub: MemoryHubNet) -> None:
    agent = ThalovantAgent(identity, useragent=UA, reply_settle_seconds=0)
    values: list[str] = []

    @agent.on_speak
    def handle_speak(event: ThalovantEvent) -> None:
        values.append(event.text)
        agent.stop()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            agent.run_forever(poll_interval=0.01)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with pytest.warns(DeprecationWarning, match="poll_interval"):
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + WAIT
        while not agent.subscriptions and time.monotonic() < deadline:
            time.sleep(0.01)  # until run_forever attached the handler
    agent.client.send_utterance("hello agent")
    thread.join(WAIT)
    assert not thread.is_alive() and not errors
    assert values == ["echo: hello agent"]


def test_async_agent_run_forever_takes_poll_interval(identity: ThalovantIdentity, hub: MemoryHubNet) -> None:
    async def run() -> list[str]:
        agent = AsyncThalovantAgent(identity, useragent=UA)
        values: list[str] = []

        @agent.on(EVENT_SPEAK)
        async def handle(event: ThalovantEvent) -> None:
            values.append(event.text)
            agent.stop()

        async def speak_when_running() -> None:
            with anyio.fail_after(WAIT):
                while not agent.subscriptions:  # noqa: ASYNC110  (the agent has no event for "handlers attached")
                    await anyio.sleep(0.01)
            await agent.client.send_utterance("hello async agent")

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(speak_when_running)
                await agent.run_forever(poll_interval=0.01)
        return values

    with pytest.warns(DeprecationWarning, match="poll_interval"):
        assert anyio.run(run) == ["echo: hello async agent"]


def test_run_forever_refuses_both_intervals(identity: ThalovantIdentity) -> None:
    from thalovant import LocalProtocolError

    agent = ThalovantAgent(identity)
    with pytest.warns(DeprecationWarning), pytest.raises(LocalProtocolError, match="not both"):
        agent.run_forever(poll_interval=0.1, check_interval=0.1)
    assert not agent.running
