"""Agents without a hub: handler bookkeeping, stop(), signals and give-up, over fake clients."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import anyio
import pytest

from thalovant.core.client.health import ThalovantHealth
from thalovant.core.errors import ThalovantConnectionError
from thalovant.shell.agent import AsyncThalovantAgent
from thalovant.shell.sync.agent import ThalovantAgent

IDENTITY = {
    "access_key": "unit-access-key",
    "password": "unit-password",
    "site_id": "unit",
    "default_master": "http://127.0.0.1",
    "default_port": 9,
}


class FakeSub:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeAsyncClient:
    """Just enough of AsyncThalovantClient for the agent (shell unit test double)."""

    def __init__(self) -> None:
        self.connected = False
        self.subscribed: list[tuple[Any, Any, dict[str, Any]]] = []
        self.subs: list[FakeSub] = []
        self.alive = True
        self.closes = 0
        self.ready: anyio.Event | None = None

    async def connect(self) -> None:
        self.connected = True
        if self.ready is not None:
            self.ready.set()

    async def wait_connected(self) -> None:
        if not self.connected:
            self.ready = anyio.Event()
            await self.ready.wait()

    async def close(self) -> None:
        self.connected = False
        self.closes += 1

    async def __aenter__(self) -> FakeAsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def on(self, event: Any, handler: Any, **options: Any) -> FakeSub:
        self.subscribed.append((event, handler, options))
        self.subs.append(FakeSub())
        return self.subs[-1]

    async def healthcheck(self) -> ThalovantHealth:
        return ThalovantHealth(
            connected=self.alive, handshake_complete=self.alive, transport_alive=self.alive, last_error=None
        )


class FakeSyncClient:
    def __init__(self) -> None:
        self.connected = False
        self.subscribed: list[tuple[Any, Any, dict[str, Any]]] = []
        self.alive = True
        self.closes = 0

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.connected = False
        self.closes += 1

    def on(self, event: Any, handler: Any, **options: Any) -> FakeSub:
        assert self.connected
        self.subscribed.append((event, handler, options))
        return FakeSub()

    def healthcheck(self) -> ThalovantHealth:
        return ThalovantHealth(
            connected=self.alive, handshake_complete=self.alive, transport_alive=self.alive, last_error="gone"
        )


def async_agent() -> tuple[AsyncThalovantAgent, FakeAsyncClient]:
    agent = AsyncThalovantAgent(IDENTITY)
    fake = FakeAsyncClient()
    agent.client = fake  # type: ignore[assignment]
    return agent, fake


def sync_agent() -> tuple[ThalovantAgent, FakeSyncClient]:
    agent = ThalovantAgent(IDENTITY)
    fake = FakeSyncClient()
    agent.client = fake  # type: ignore[assignment]
    return agent, fake


# ---- registration forms -------------------------------------------------------------------------


@pytest.mark.parametrize("make", [async_agent, sync_agent])
def test_every_registration_form_returns_the_handler(make: Any) -> None:
    agent, _ = make()

    def a(event: object) -> None: ...
    def b(event: object) -> None: ...
    def c(event: object) -> None: ...
    def d(event: object) -> None: ...

    assert agent.on("x.y", a) is a
    assert agent.on("speak")(b) is b
    assert agent.on_speak(c) is c
    assert agent.on_speak()(d) is d
    assert [(h.event, h.handler) for h in agent._handlers.pending] == [
        ("x.y", a),
        ("speak", b),
        ("speak", c),
        ("speak", d),
    ]
    with pytest.raises(TypeError):
        agent.on("speak", 42)


def test_agents_hide_secrets_in_repr() -> None:
    for agent in (AsyncThalovantAgent(IDENTITY), ThalovantAgent(IDENTITY)):
        assert "unit-access-key" not in repr(agent) and "unit-password" not in repr(agent)


# ---- async agent --------------------------------------------------------------------------------


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_async_run_attaches_each_handler_once_and_late_ones_at_once() -> None:
    agent, fake = async_agent()
    agent.on("speak", lambda e: None, session_id="s1")
    agent.on("other", lambda e: None)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: agent.run_forever(handle_signals=False, check_interval=0.05))
        with anyio.fail_after(5):
            await fake.wait_connected()
        await anyio.sleep(0.2)  # several health checks: nothing is attached twice
        assert [s[0] for s in fake.subscribed] == ["speak", "other"]
        assert fake.subscribed[0][2]["session_id"] == "s1"
        assert len(agent.subscriptions) == 2
        late = agent.on("late", lambda e: None)
        assert callable(late) and [s[0] for s in fake.subscribed] == ["speak", "other", "late"]
        fake.connected = False  # reconnecting: the subscription is still made at once (it lives in the client)
        agent.on("during-reconnect", lambda e: None)
        fake.connected = True
        assert [s[0] for s in fake.subscribed][-1] == "during-reconnect" and len(fake.subscribed) == 4
        subs = list(fake.subs)
        agent.stop()  # same thread as the loop
    assert not agent.running and fake.closes == 1
    assert all(s.closed for s in subs) and agent.subscriptions == []


@pytest.mark.anyio
async def test_async_stop_from_another_thread() -> None:
    agent, fake = async_agent()
    done = anyio.Event()

    async def run() -> None:
        await agent.run_forever(handle_signals=False, check_interval=0.05)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(5):
            await fake.wait_connected()
        await anyio.to_thread.run_sync(agent.stop)
        with anyio.fail_after(5):
            await done.wait()
    agent.stop()  # not running: a no-op


@pytest.mark.anyio
async def test_async_run_raises_the_plain_error_when_the_client_gives_up() -> None:
    agent, fake = async_agent()
    fake.alive = False
    with anyio.fail_after(5), pytest.raises(ThalovantConnectionError, match="gave up"):
        await agent.run_forever(handle_signals=False, check_interval=0.02)
    assert not agent.running and fake.closes == 1


@pytest.mark.anyio
async def test_async_run_forever_twice_at_once_is_refused() -> None:
    agent, fake = async_agent()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: agent.run_forever(handle_signals=False))
        with anyio.fail_after(5):
            await fake.wait_connected()
        with pytest.raises(RuntimeError):
            await agent.run_forever(handle_signals=False)
        agent.stop()


@pytest.mark.anyio
async def test_async_agent_stops_cleanly_on_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals need the main thread")
    agent, fake = async_agent()

    async def kill_soon() -> None:
        with anyio.fail_after(5):
            await fake.wait_connected()
        await anyio.sleep(0.2)  # the signal receiver is installed by now
        os.kill(os.getpid(), signal.SIGTERM)

    async with anyio.create_task_group() as tg:
        tg.start_soon(kill_soon)
        with anyio.fail_after(5):
            await agent.run_forever(check_interval=0.05)
    assert agent.stopped_by == signal.SIGTERM
    assert fake.closes == 1


# ---- sync agent ---------------------------------------------------------------------------------


def test_sync_run_attaches_once_and_stops_from_another_thread() -> None:
    agent, fake = sync_agent()
    agent.on_speak(lambda e: None)
    runner = threading.Thread(target=agent.run_forever, kwargs={"check_interval": 0.05})
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while not fake.subscribed and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert [s[0] for s in fake.subscribed] == ["speak"]
        agent.on("late", lambda e: None)
        assert [s[0] for s in fake.subscribed] == ["speak", "late"]
    finally:
        agent.stop()
        runner.join(5)
    assert not runner.is_alive() and not agent.running and fake.closes == 1


def test_sync_run_raises_when_the_client_gives_up() -> None:
    agent, fake = sync_agent()
    fake.alive = False
    with pytest.raises(ThalovantConnectionError, match="gone"):
        agent.run_forever(handle_signals=False, check_interval=0.02)
    assert fake.closes == 1 and not agent.running


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sync_agent_stops_on_signals_and_restores_handlers(signum: int) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals need the main thread")
    agent, fake = sync_agent()
    before = signal.getsignal(signum)

    def kill_soon() -> None:
        deadline = time.monotonic() + 5
        while not fake.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signum)

    threading.Thread(target=kill_soon).start()
    agent.run_forever(check_interval=0.05)
    assert agent.stopped_by == signum
    assert signal.getsignal(signum) is before
    assert fake.closes == 1


def test_sync_agent_in_a_worker_thread_installs_no_signal_handler() -> None:
    agent, fake = sync_agent()
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def run() -> None:
        agent.run_forever(check_interval=0.05)

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 5
    while not fake.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    seen.append(signal.getsignal(signal.SIGTERM))
    agent.stop()
    runner.join(5)
    assert seen == [before]
