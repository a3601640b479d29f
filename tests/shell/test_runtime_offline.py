"""ConnectionRuntime over in-memory streams: the real client machine, real wsproto/h11, a FakeHub at the far end.

The dial seam (``thalovant.shell.links.dial.open_stream``) is replaced by
:class:`tests.shell.inmemory.MemoryHubNet`; nothing else is faked. Every wait
is bounded by ``fail_after`` and ends on a real output of the machine.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from tests.shell.inmemory import MemoryHubNet
from thalovant.core.bus.outbound import utterance_message
from thalovant.core.client import connection as cx
from thalovant.core.client import correlate as corr
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.machine import Output
from thalovant.shell.links import dial
from thalovant.shell.runtime import ConnectionRuntime, Endpoint, Timeouts
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub

pytestmark = pytest.mark.anyio

UA = "OfflineRuntime/1.0"
PASSWORD = "a-throwaway-password"
SESSION = "offline-session"
WAIT = 5.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Seen:
    """The runtime's outcome sink: keeps every output and wakes waiters."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self._wake = anyio.Event()

    def __call__(self, output: Output) -> None:
        self.outputs.append(output)
        self._wake.set()

    async def first(self, wanted: Callable[[Output], bool], *, after: int = 0, within: float = WAIT) -> Any:
        """The first output (from index ``after`` on) that ``wanted`` accepts; fails after ``within`` s."""
        with anyio.fail_after(within):
            while True:
                found = next((o for o in self.outputs[after:] if wanted(o)), None)
                if found is not None:
                    return found
                self._wake = anyio.Event()
                await self._wake.wait()

    def states(self) -> list[cx.ConnectionState]:
        return [o.state for o in self.outputs if isinstance(o, cx.StatusChanged)]


def is_state(state: cx.ConnectionState) -> Callable[[Output], bool]:
    return lambda o: isinstance(o, cx.StatusChanged) and o.state is state


def config(protocol: cx.Protocol, **over: Any) -> cx.ConnectionConfig:
    values: dict[str, Any] = {
        "protocol": protocol,
        "useragent": UA,
        "session_id": SESSION,
        "access_key": THROWAWAY_ACCESS_KEY,
        "password": PASSWORD,
        "reconnect": ReconnectConfig(base=0.01, cap=0.05),
    }
    values.update(over)
    return cx.ConnectionConfig(**values)


@asynccontextmanager
async def running(
    monkeypatch: pytest.MonkeyPatch,
    protocol: cx.Protocol,
    *,
    tls: bool = False,
    fail_dial: BaseException | None = None,
    reject_status: int | None = None,
    **over: Any,
) -> AsyncIterator[tuple[ConnectionRuntime, MemoryHubNet, Seen]]:
    net = MemoryHubNet(FakeHub(password=PASSWORD), protocol=protocol, useragent=UA, access_key=THROWAWAY_ACCESS_KEY)
    net.fail_dial, net.reject_status = fail_dial, reject_status
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    seen = Seen()
    context = ssl.create_default_context() if tls else None
    runtime = ConnectionRuntime(
        cx.Connection(config=config(protocol, **over), entropy=os.urandom),
        endpoint=Endpoint(host="hub.invalid", port=5678, tls=context),
        outcomes=seen,
        timeouts=Timeouts(connect=2.0, send=2.0, http_request=2.0),
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.run)
        await runtime.post(cx.Connect())
        yield runtime, net, seen
        runtime.stop()
        tg.cancel_scope.cancel()


async def ask(runtime: ConnectionRuntime, seen: Seen, text: str, ref: int) -> corr.AskFinished | corr.AskFailed:
    rid = f"req-{ref}"
    deadline = anyio.current_time() + WAIT
    started = corr.AskStarted(ask_id=rid, request_id=rid, session_id=SESSION, deadline=deadline)
    message = utterance_message(text, request_id=rid, session_id=SESSION)
    mark = len(seen.outputs)
    await runtime.post(cx.SendRequested(ref=ref, message=message, deadline=deadline, ask=started))
    result: corr.AskFinished | corr.AskFailed = await seen.first(
        lambda o: isinstance(o, corr.AskFinished | corr.AskFailed) and o.ask_id == rid, after=mark
    )
    return result


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_ask_gets_the_hubs_reply(monkeypatch: pytest.MonkeyPatch, protocol: cx.Protocol) -> None:
    async with running(monkeypatch, protocol) as (runtime, net, seen):
        ready = await seen.first(is_state(cx.ConnectionState.READY))
        assert ready.epoch == 1 and ready.generation == 1
        result = await ask(runtime, seen, "hello there", 1)
        assert isinstance(result, corr.AskFinished)
        assert result.reply.text == "echo: hello there" and result.reply.handled
        assert [m.data["utterances"] for m in net.hub.received if m.type == "recognizer_loop:utterance"] == [
            ["hello there"]
        ]
        assert net.dials[0].host == "hub.invalid" and net.dials[0].port == 5678 and not net.dials[0].tls


async def test_tls_endpoint_dials_with_its_context_and_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(monkeypatch, "wss", tls=True) as (_runtime, net, seen):
        await seen.first(is_state(cx.ConnectionState.READY))
    assert net.dials[0].tls and net.dials[0].tls_hostname == "hub.invalid" and net.dials[0].tls_standard_compatible


async def test_http_polls_and_sends_use_two_keep_alive_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(monkeypatch, "https") as (runtime, net, seen):
        await seen.first(is_state(cx.ConnectionState.READY))
        for ref in (1, 2, 3):
            result = await ask(runtime, seen, f"turn {ref}", ref)
            assert isinstance(result, corr.AskFinished) and result.reply.text == f"echo: turn {ref}"
        assert len(net.dials) == 2, net.dials  # one for polls, one for sends, both kept alive
        assert all(not d.tls_standard_compatible for d in net.dials if d.tls)


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_pushed_event_is_delivered(monkeypatch: pytest.MonkeyPatch, protocol: cx.Protocol) -> None:
    async with running(monkeypatch, protocol) as (_runtime, net, seen):
        await seen.first(is_state(cx.ConnectionState.READY))
        net.push("speak", {"utterance": "unprompted"})
        got = await seen.first(lambda o: isinstance(o, cx.EventDelivered) and o.event.type == "speak")
        assert got.event.data["utterance"] == "unprompted"


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_link_drop_reconnects_in_a_new_epoch(monkeypatch: pytest.MonkeyPatch, protocol: cx.Protocol) -> None:
    async with running(monkeypatch, protocol) as (runtime, net, seen):
        await seen.first(is_state(cx.ConnectionState.READY))
        mark = len(seen.outputs)
        net.drop()
        if protocol == "https":  # a poll learns that the hub lost the client
            await seen.first(is_state(cx.ConnectionState.CONNECTING), after=mark)
        again = await seen.first(is_state(cx.ConnectionState.READY), after=mark)
        assert again.epoch == 2 and net.hub.connections == 2
        result = await ask(runtime, seen, "still there", 1)
        assert isinstance(result, corr.AskFinished) and result.reply.text == "echo: still there"
        if protocol == "wss":
            assert len(net.dials) == 2 and net.streams[0].hung_up and net.streams[0].closed_by_client


async def test_hub_close_frame_is_answered_and_the_client_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(monkeypatch, "wss") as (_runtime, net, seen):
        await seen.first(is_state(cx.ConnectionState.READY))
        mark = len(seen.outputs)
        first = net.current
        net.close(1011, "hub restarting")
        again = await seen.first(is_state(cx.ConnectionState.READY), after=mark)
        assert again.epoch == 2 and first is not None and first.hung_up


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_disconnect_closes_politely_and_ends_the_run(
    monkeypatch: pytest.MonkeyPatch, protocol: cx.Protocol
) -> None:
    async with running(monkeypatch, protocol) as (runtime, net, seen):
        await seen.first(is_state(cx.ConnectionState.READY))
        assert net.hub.connected
        await runtime.post(cx.Disconnect())
        with anyio.fail_after(WAIT):
            await runtime.done.wait()
        assert seen.states()[-1] is cx.ConnectionState.CLOSED
        assert not net.hub.connected  # wss: the close handshake; https: GET /disconnect
        if protocol == "wss":
            assert net.streams[0].closed_by_client
        # https: idle keep-alive streams are left to the garbage collector, as before the driver split
        assert not await runtime.post(cx.Connect())  # the driver is closed: inputs are refused


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_tls_verification_failure_gives_up_without_retrying(
    monkeypatch: pytest.MonkeyPatch, protocol: cx.Protocol
) -> None:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    error.verify_code = 18
    async with running(monkeypatch, protocol, tls=True, fail_dial=error) as (_runtime, net, seen):
        gave_up = await seen.first(is_state(cx.ConnectionState.GAVE_UP))
        assert "certificate" in gave_up.detail.lower()
        assert cx.ConnectionState.READY not in seen.states()
        assert net.hub.connections == 0


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_refused_dials_are_retried_until_the_hub_answers(
    monkeypatch: pytest.MonkeyPatch, protocol: cx.Protocol
) -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    async with running(monkeypatch, protocol, fail_dial=refused) as (_runtime, net, seen):
        await net.wait_until(lambda: len(net.dials) >= 3)
        net.fail_dial = None
        await seen.first(is_state(cx.ConnectionState.READY))
        assert len(net.dials) >= 4 and net.hub.connections == 1


async def test_upgrade_refused_with_403_is_an_authentication_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(monkeypatch, "wss", reject_status=403) as (_runtime, net, seen):
        gave_up = await seen.first(is_state(cx.ConnectionState.GAVE_UP))
        assert gave_up.auth and len(net.dials) == 1


async def test_upgrade_refused_with_503_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(monkeypatch, "wss", reject_status=503) as (_runtime, net, seen):
        await net.wait_until(lambda: len(net.dials) >= 2)
        net.reject_status = None
        ready = await seen.first(is_state(cx.ConnectionState.READY))
        assert ready.epoch == len(net.dials) >= 2 and cx.ConnectionState.GAVE_UP not in seen.states()
