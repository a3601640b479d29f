"""``@agent.on_hive(kind)`` on both agents, over the in-memory hub (shell/agent.py)."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from thalovant import AsyncThalovantAgent, ThalovantAgent, ThalovantHiveMessage
from thalovant.core.bus.hive import as_envelope
from thalovant.core.client import connection as cx
from thalovant.core.wire.message import HiveMessage, MsgType
from thalovant.shell.mesh_router import HiveSubscription
from thalovant.testing import MemoryHub

IDENTITY = {
    "access_key": "agent-mesh-key",
    "password": "agent-mesh-password",
    "default_master": "https://hub.example.invalid",
    "site_id": "den",
}


def _frame(kind: MsgType, msg_type: str) -> HiveMessage:
    inner = HiveMessage(msg_type=MsgType.BUS, payload={"type": msg_type, "data": {}, "context": {}})
    return HiveMessage(msg_type=kind, payload=as_envelope(inner))


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_async_agent_hive_handlers_attach_on_run_and_late() -> None:
    agent = AsyncThalovantAgent(IDENTITY, transport=MemoryHub(), protocol="wss")
    got: list[tuple[str, str | None]] = []
    both = anyio.Event()

    def note(hive: ThalovantHiveMessage) -> None:
        got.append((hive.kind, hive.type))
        if len(got) == 2:
            both.set()

    @agent.on_hive("broadcast")
    async def on_broadcast(hive: ThalovantHiveMessage) -> None:
        note(hive)

    assert callable(on_broadcast)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: agent.run_forever(handle_signals=False, check_interval=0.05))
        for _ in range(500):  # bounded: the run attaches the pending handler at once
            if agent.subscriptions:
                break
            await anyio.sleep(0.01)
        agent.on_hive("propagate", note)  # live: attached at once
        assert all(isinstance(s, HiveSubscription) for s in agent.subscriptions) and len(agent.subscriptions) == 2
        results = agent.client._engine.results
        results(cx.FrameDelivered(message=_frame(MsgType.BROADCAST, "b.one")))
        results(cx.FrameDelivered(message=_frame(MsgType.PROPAGATE, "p.one")))
        results(cx.FrameDelivered(message=_frame(MsgType.ESCALATE, "nobody")))
        with anyio.fail_after(5):
            await both.wait()
        agent.stop()
    assert sorted(got) == [("broadcast", "b.one"), ("propagate", "p.one")]
    assert agent.subscriptions == []


def test_sync_agent_hive_handler_runs_in_a_worker_thread() -> None:
    agent = ThalovantAgent(IDENTITY, transport=MemoryHub(), protocol="wss")
    seen: list[str] = []
    done = threading.Event()

    def on_frame(hive: ThalovantHiveMessage) -> None:
        seen.append(f"{hive.kind}:{hive.type}:{threading.current_thread() is threading.main_thread()}")
        done.set()

    agent.on_hive("*", on_frame)
    runner = threading.Thread(target=agent.run_forever, kwargs={"check_interval": 0.05, "handle_signals": False})
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while not agent.subscriptions and time.monotonic() < deadline:
            time.sleep(0.01)
        client = agent.client
        client._portal.call_sync(client.async_client._engine.results,
                                 cx.FrameDelivered(message=_frame(MsgType.BROADCAST, "x")))
        assert done.wait(5)
    finally:
        agent.stop()
        runner.join(5)
    assert seen == ["broadcast:x:False"] and not runner.is_alive()
