"""``thalovant.AsyncThalovantClient`` through its public API, offline: in-memory streams to a FakeHub.

The dial seam is replaced by :class:`tests.shell.inmemory.MemoryHubNet`; the
client, runtime, drivers, wsproto/h11 and the core all run for real. Every
wait is bounded and ends on a real reply or event.
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
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub, echo_replies

pytestmark = pytest.mark.anyio

UA = "OfflineClient/1.0"
PASSWORD = "a-throwaway-password"
WAIT = 5.0
ENDPOINTS = {"wss": "ws://hub.invalid:5678", "https": "http://hub.invalid:5679"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def identity(protocol: str) -> thalovant.ThalovantIdentity:
    return thalovant.ThalovantIdentity.from_mapping(
        {
            "access_key": THROWAWAY_ACCESS_KEY,
            "password": PASSWORD,
            "default_master": "http://hub.invalid",
            "site_id": "den",
            "data_plane_endpoints": {protocol: ENDPOINTS[protocol]},
            "protocols": {protocol: True},
        }
    )


def client_for(protocol: str, **kwargs: Any) -> thalovant.AsyncThalovantClient:
    kwargs.setdefault("reconnect", ReconnectConfig(base=0.01, cap=0.05))
    return thalovant.AsyncThalovantClient(
        identity(protocol), protocol=protocol, useragent=UA, noise_key_file=False, connect_timeout=WAIT, **kwargs
    )


def hub_net(monkeypatch: pytest.MonkeyPatch, protocol: str) -> MemoryHubNet:
    net = MemoryHubNet(FakeHub(password=PASSWORD), protocol=protocol, useragent=UA, access_key=THROWAWAY_ACCESS_KEY)
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    return net


@asynccontextmanager
async def connected(
    monkeypatch: pytest.MonkeyPatch, protocol: str, **kwargs: Any
) -> AsyncIterator[tuple[thalovant.AsyncThalovantClient, MemoryHubNet]]:
    net = hub_net(monkeypatch, protocol)
    async with client_for(protocol, **kwargs) as client:  # connect_timeout bounds the connect, close has its grace
        yield client, net


class Inbox:
    """A handler for ``client.on``: keeps what it got and wakes a waiter."""

    def __init__(self) -> None:
        self.events: list[thalovant.ThalovantEvent] = []
        self._wake = anyio.Event()

    def __call__(self, event: thalovant.ThalovantEvent) -> None:
        self.events.append(event)
        self._wake.set()

    def utterances(self) -> list[str]:
        return [str(e.data.get("utterance")) for e in self.events]

    async def wait_for(self, utterance: str) -> None:
        with anyio.fail_after(WAIT):
            while utterance not in self.utterances():
                self._wake = anyio.Event()
                await self._wake.wait()


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_ask_returns_the_hubs_reply(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with connected(monkeypatch, protocol) as (client, net):
        assert client.connected
        reply = await client.ask("hello there", timeout=WAIT)
        assert reply.text == "echo: hello there" and reply.handled and not reply.timed_out
        multi = await client.ask("multi", timeout=WAIT)
        assert multi.utterances == ("echo: multi (1/2)", "echo: multi (2/2)")
        assert net.hub.handshakes == 1 and net.hub.hellos[0]["session"]["session_id"] == client.session_id


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_denied_ask_raises_policy_denied(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with connected(monkeypatch, protocol) as (client, _net):
        with pytest.raises(thalovant.ThalovantPolicyDenied):
            await client.ask("deny", timeout=WAIT)


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_emit_reaches_the_hub(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with connected(monkeypatch, protocol) as (client, net):
        await client.emit("offline.test", {"n": 1})
        assert [m.data for m in net.hub.received if m.type == "offline.test"] == [{"n": 1}]


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_listen_yields_a_pushed_event(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with connected(monkeypatch, protocol) as (client, net):
        listener = client.listen("speak", max_events=1, timeout=WAIT)
        net.push("other.event", {"utterance": "filtered out"})
        net.push("speak", {"utterance": "from the hub"})
        got = [event async for event in listener]
        assert [(e.type, e.data["utterance"]) for e in got] == [("speak", "from the hub")]


async def test_listen_stops_after_max_events(monkeypatch: pytest.MonkeyPatch) -> None:
    async with connected(monkeypatch, "wss") as (client, net):
        listener = client.listen("speak", max_events=2, timeout=WAIT)
        for n in range(3):
            net.push("speak", {"utterance": f"n{n}"})
        assert [e.data["utterance"] async for e in listener] == ["n0", "n1"]


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_wait_for_event_sees_an_event_the_hub_sends_during_an_ask(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    async with connected(monkeypatch, protocol) as (client, net):

        def ready_then_echo(request: BusMessage) -> list[BusMessage]:
            return [BusMessage(type="mycroft.ready", data={"ok": True}, context=dict(request.context))]

        net.hub.behaviours["are you ready"] = lambda req: ready_then_echo(req) + echo_replies(req)
        found: list[thalovant.ThalovantEvent] = []

        async def wait() -> None:
            found.append(await client.wait_for_event("mycroft.ready", timeout=WAIT))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            reply = await client.ask("are you ready", timeout=WAIT)
        assert reply.text == "echo: are you ready"
        assert [(e.type, e.data) for e in found] == [("mycroft.ready", {"ok": True})]


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_on_handler_receives_pushed_events_until_closed(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with connected(monkeypatch, protocol) as (client, net):
        inbox = Inbox()
        sub = client.on("speak", inbox)
        net.push("speak", {"utterance": "one"})
        await inbox.wait_for("one")
        sub.close()
        await client.ask("after close", timeout=WAIT)  # its speak event reaches no handler any more
        assert inbox.utterances() == ["one"] and sub.handled == 1


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_subscription_survives_a_link_drop(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with connected(monkeypatch, protocol) as (client, net):
        inbox = Inbox()
        client.on("speak", inbox)
        listener = client.listen("speak", timeout=WAIT)
        net.push("speak", {"utterance": "before"})
        await inbox.wait_for("before")
        net.drop()
        await net.wait_until(lambda: net.hub.connections == 2)  # the client noticed and connected again
        reply = await client.ask("after the drop", timeout=WAIT)
        assert reply.text == "echo: after the drop"
        net.push("speak", {"utterance": "pushed after"})
        await inbox.wait_for("pushed after")
        assert inbox.utterances() == ["before", "echo: after the drop", "pushed after"]
        assert net.hub.connections == 2
        health = await client.healthcheck()
        assert health.connected and health.reconnects == 1
        seen = []
        async for event in listener:
            seen.append(event.data["utterance"])
            if len(seen) == 3:
                break
        assert seen == ["before", "echo: after the drop", "pushed after"]


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_conversation_turns_share_a_session(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    async with connected(monkeypatch, protocol) as (client, net):
        async with client.conversation() as convo:
            first = await convo.ask("first turn", timeout=WAIT)
            second = await convo.ask("second turn", timeout=WAIT)
        assert (first.text, second.text) == ("echo: first turn", "echo: second turn")
        sent = [m for m in net.hub.received if m.type == "recognizer_loop:utterance"]
        assert [m.context.get("request_id") for m in sent] == convo.request_ids
        assert len(set(convo.request_ids)) == 2


@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_close_is_polite_and_ends_listeners(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    net = hub_net(monkeypatch, protocol)
    with anyio.fail_after(WAIT):
        async with client_for(protocol) as client:
            listener = client.listen("speak")
            assert net.hub.connected
    assert not client.connected
    assert not net.hub.connected  # wss: close handshake; https: GET /disconnect
    if protocol == "wss":
        assert net.streams[-1].closed_by_client
    with pytest.raises(thalovant.ThalovantConnectionError):
        await listener.__anext__()
    with pytest.raises(thalovant.ThalovantConnectionError):
        await client.ask("too late", timeout=WAIT)


async def test_refused_credentials_raise_authentication_error(monkeypatch: pytest.MonkeyPatch) -> None:
    net = hub_net(monkeypatch, "wss")
    net.reject_status = 401
    with anyio.fail_after(WAIT), pytest.raises(thalovant.ThalovantAuthenticationError):
        await client_for("wss").connect()
    assert len(net.dials) == 1


async def test_unreachable_hub_without_reconnect_raises_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    net = hub_net(monkeypatch, "wss")
    net.fail_dial = ConnectionRefusedError(111, "Connection refused")
    with anyio.fail_after(WAIT), pytest.raises(thalovant.ThalovantConnectionError):
        await client_for("wss", auto_reconnect=False, reconnect=None).connect()
    assert len(net.dials) == 1
