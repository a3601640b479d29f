"""An ask has one deadline, owned by the core: the client raises when the core says so, not on a clock of its own.

The client runs for real against a FakeHub over in-memory streams (the dial seam is
:class:`tests.shell.inmemory.MemoryHubNet`); only the hub's answers are scripted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import thalovant
from tests.shell.inmemory import MemoryHubNet
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.wire.message import BusMessage
from thalovant.shell.links import dial
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub

pytestmark = pytest.mark.anyio

UA = "DeadlineClient/1.0"
PASSWORD = "a-throwaway-password"
ENDPOINTS = {"wss": "ws://hub.invalid:5678", "https": "http://hub.invalid:5679"}
SLACK = 0.2  # the timing promise: an ask ends within this long after its timeout
WAIT = 5.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def speech_only(request: BusMessage) -> list[BusMessage]:
    """Speaks, but never says the turn is handled."""
    context = {**request.context, "source": request.context.get("destination"), "destination": "client"}
    return [BusMessage(type="speak", data={"utterance": "thinking..."}, context=context)]


@asynccontextmanager
async def connected(
    monkeypatch: pytest.MonkeyPatch, protocol: str, **kwargs: Any
) -> AsyncIterator[tuple[thalovant.AsyncThalovantClient, MemoryHubNet]]:
    hub = FakeHub(password=PASSWORD, behaviours={"ponder": speech_only})
    net = MemoryHubNet(hub, protocol=protocol, useragent=UA, access_key=THROWAWAY_ACCESS_KEY)
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    identity = thalovant.ThalovantIdentity.from_mapping(
        {
            "access_key": THROWAWAY_ACCESS_KEY,
            "password": PASSWORD,
            "default_master": "http://hub.invalid",
            "site_id": "den",
            "data_plane_endpoints": {protocol: ENDPOINTS[protocol]},
            "protocols": {protocol: True},
        }
    )
    kwargs.setdefault("reconnect", ReconnectConfig(base=0.01, cap=0.05))
    client = thalovant.AsyncThalovantClient(
        identity, protocol=protocol, useragent=UA, noise_key_file=False, connect_timeout=WAIT, **kwargs
    )
    async with client:
        yield client, net


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_a_silent_hub_ends_the_ask_at_its_timeout(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with connected(monkeypatch, protocol) as (client, _net):
        started = anyio.current_time()
        with anyio.fail_after(WAIT), pytest.raises(thalovant.ThalovantTimeoutError) as caught:
            await client.ask("silent", timeout=0.5)
        elapsed = anyio.current_time() - started
        assert str(caught.value) == "the hub did not answer within 0.5 s"
        assert 0.5 <= elapsed < 0.5 + SLACK
        assert (await client.ask("still here", timeout=WAIT)).text == "echo: still here"


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_speech_without_the_end_signal_returns_a_timed_out_reply(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    async with connected(monkeypatch, protocol) as (client, _net):
        started = anyio.current_time()
        with anyio.fail_after(WAIT):
            reply = await client.ask("ponder", timeout=0.4)
        assert reply.timed_out and reply.text == "thinking..."
        assert 0.4 <= anyio.current_time() - started < 0.4 + SLACK


async def test_an_ask_queued_while_the_link_is_down_ends_when_the_core_expires_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An ask waits for a session within its own timeout (not queue_timeout), then fails typed."""
    async with connected(monkeypatch, "wss", queue_timeout=0.3) as (client, net):
        net.fail_dial = ConnectionRefusedError(111, "Connection refused")
        dials = len(net.dials)
        net.drop()
        await net.wait_until(lambda: len(net.dials) > dials, within=WAIT)  # redialling: the link is down
        assert not client.connected
        started = anyio.current_time()
        with anyio.fail_after(WAIT), pytest.raises(thalovant.ThalovantTimeoutError) as caught:
            await client.ask("hello", timeout=0.8)
        assert str(caught.value).startswith("message not delivered: not connected to the hub in time")
        assert 0.8 <= anyio.current_time() - started < 0.8 + SLACK


async def test_a_send_to_a_closed_client_and_on_without_a_connection_fail_at_once() -> None:
    identity = {
        "access_key": THROWAWAY_ACCESS_KEY,
        "password": PASSWORD,
        "default_master": "http://hub.invalid",
        "site_id": "den",
    }
    client = thalovant.AsyncThalovantClient(identity, noise_key_file=False, connect_timeout=0.5)
    started = anyio.current_time()
    with pytest.raises((thalovant.ThalovantConnectionError, thalovant.ThalovantTimeoutError)):
        await client.emit("ping")  # a client never connected connects on first use (0.4.7): unreachable here
    assert anyio.current_time() - started < 0.5 + SLACK
    await client.close()
    with pytest.raises(thalovant.ThalovantConnectionError, match="not connected"):
        await client.emit("ping")  # a closed client stays closed
    with pytest.raises(thalovant.ThalovantConnectionError, match="not connected"):
        await client.ask("hello", timeout=1.0)
    with pytest.raises(thalovant.LocalProtocolError):
        client.on("speak", print)
    assert not client.connected
