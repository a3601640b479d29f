"""Conversations on the real hub 4.0.0: sessions kept for the user, replies routed to their own
conversation while another one runs, and ``send_action`` / ``send_code`` metadata at the agent."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from tests.live.live_support import in_thread, need_protocol, tag
from thalovant.core.bus.events import ThalovantEvent
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.conversation import AsyncThalovantConversation
from thalovant.shell.sync.client import ThalovantClient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _agent_saw(hub: Any, request_id: str, limit: float = 10.0) -> dict[str, Any]:
    """The utterance message the echo agent recorded for ``request_id`` (bounded wait)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for entry in hub.echo_log(msg_type="recognizer_loop:utterance"):
            if (entry.get("context") or {}).get("request_id") == request_id:
                return dict(entry)
        time.sleep(0.05)
    raise AssertionError(f"the echo agent never saw request {request_id}")


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
async def test_two_concurrent_conversations_keep_their_sessions_and_replies(real_hub: Any, protocol: str) -> None:
    need_protocol(real_hub, protocol)
    async with AsyncThalovantClient.from_identity_file(real_hub.identity_path("psk"), protocol=protocol) as client:
        first = client.conversation(session_id=tag("user-session-a"))
        second = client.conversation()
        assert first.session_id != second.session_id
        heard: dict[str, list[ThalovantEvent]] = {"a": [], "b": []}
        replies: dict[str, list[Any]] = {"a": [], "b": []}

        async def watch(name: str, listener: Any) -> None:
            async for ev in listener:
                heard[name].append(ev)

        async def turns(name: str, convo: AsyncThalovantConversation) -> None:
            for turn in (1, 2):
                replies[name].append(await convo.ask(f"{name} turn {turn}", timeout=10))

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch, "a", first.listen("speak", timeout=30))
            tg.start_soon(watch, "b", second.listen("speak", timeout=30))
            async with anyio.create_task_group() as inner:
                inner.start_soon(turns, "a", first)
                inner.start_soon(turns, "b", second)
            await anyio.sleep(0.3)  # a reply routed to the wrong conversation would have arrived by now
            tg.cancel_scope.cancel()

        for name, convo in (("a", first), ("b", second)):
            got = replies[name]
            assert [r.text for r in got] == [f"echo: {name} turn 1", f"echo: {name} turn 2"]
            assert all(r.session_id == convo.session_id for r in got), "the user's session id must be kept"
            assert [r.request_id for r in got] == convo.request_ids
            assert len(set(convo.request_ids)) == 2
            assert [ev.text for ev in heard[name]] == [f"echo: {name} turn 1", f"echo: {name} turn 2"]
            assert all(convo.owns(ev) for ev in heard[name])
        assert not set(first.request_ids) & set(second.request_ids)
        # the agent received each turn with its own request id (hub 4.x rewrites the session: P13)
        for rid in first.request_ids + second.request_ids:
            entry = await in_thread(_agent_saw, real_hub, rid)
            assert entry["context"]["request_id"] == rid


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_send_action_and_send_code_reach_the_agent_with_metadata(real_hub: Any, protocol: str) -> None:
    async with AsyncThalovantClient.from_identity_file(real_hub.identity_path("psk"), protocol=protocol) as client:
        convo = client.conversation()
        payload, code = tag("action"), tag("code")
        action_rid = await convo.send_action(payload, title="Yes please")
        code_rid = await convo.send_code(code, kind="qr", label="ticket")
        action = await in_thread(_agent_saw, real_hub, action_rid)
        scanned = await in_thread(_agent_saw, real_hub, code_rid)
    assert action["data"]["utterances"] == [payload]
    assert action["data"]["input"] == {"kind": "action", "title": "Yes please", "payload": payload}
    assert action["context"]["input"] == action["data"]["input"]
    assert scanned["data"]["utterances"] == [code]
    assert scanned["data"]["input"] == {"kind": "qr", "label": "ticket", "value": code, "exact": True}
    assert scanned["context"]["input"] == scanned["data"]["input"]
    assert convo.request_ids == [action_rid, code_rid]


def test_sync_conversation_two_turns(real_hub: Any) -> None:
    with ThalovantClient.from_identity_file(real_hub.identity_path("password"), protocol="https") as client:
        with client.conversation(session_id="sync-user-session") as convo:
            one = convo.ask("first", timeout=10)
            two = convo.ask("second", timeout=10)
            code_rid = convo.send_code("4711", label="pin")
        assert (one.text, two.text) == ("echo: first", "echo: second")
        assert one.session_id == two.session_id == "sync-user-session"
        assert convo.request_ids[:2] == [one.request_id, two.request_id]
        entry = _agent_saw(real_hub, code_rid)
        assert entry["data"]["input"]["value"] == "4711" and entry["data"]["input"]["exact"] is True
