"""``thalovant.ThalovantClient`` (the blocking facade) through its public API, offline.

The client runs its own event loop in a portal thread; the dial seam is
replaced by :class:`tests.shell.inmemory.MemoryHubNet`, whose hub side runs
inside the client's sends, so it lives on that loop too. Events come from the
hub's answers to the client's own asks (a push from this thread would not be
thread-safe). Every wait is bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import thalovant
from tests.shell.inmemory import MemoryHubNet
from tests.shell.test_offline_client import PASSWORD, UA, WAIT, hub_net, identity
from thalovant.core.client.reconnect import ReconnectConfig


@pytest.fixture(params=["wss", "https"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch, protocol: str) -> MemoryHubNet:
    return hub_net(monkeypatch, protocol)


@pytest.fixture
def client(net: MemoryHubNet, protocol: str) -> Iterator[thalovant.ThalovantClient]:
    sync = thalovant.ThalovantClient(
        identity(protocol),
        protocol=protocol,
        useragent=UA,
        noise_key_file=False,
        connect_timeout=WAIT,
        reconnect=ReconnectConfig(base=0.01, cap=0.05),
    )
    with sync:
        yield sync


def test_ask_emit_and_healthcheck(client: thalovant.ThalovantClient, net: MemoryHubNet) -> None:
    reply = client.ask("hello from a thread", timeout=WAIT)
    assert reply.text == "echo: hello from a thread" and reply.handled
    client.emit("offline.sync", {"n": 2})
    assert [m.data for m in net.hub.received if m.type == "offline.sync"] == [{"n": 2}]
    health = client.healthcheck()
    assert health.connected and health.reconnects == 0 and health.generation == 1
    assert net.hub.hellos[0]["session"]["session_id"] == client.session_id
    assert PASSWORD not in repr(client)


def test_listen_is_registered_before_it_returns(client: thalovant.ThalovantClient) -> None:
    events = client.listen("speak", max_events=2, timeout=WAIT)
    client.ask("multi", timeout=WAIT)
    assert [e.data["utterance"] for e in events] == ["echo: multi (1/2)", "echo: multi (2/2)"]


def test_on_calls_the_handler_in_a_worker_thread(client: thalovant.ThalovantClient) -> None:
    got: list[tuple[str, bool]] = []
    done = threading.Event()
    caller = threading.get_ident()

    def handler(event: thalovant.ThalovantEvent) -> None:
        got.append((str(event.data["utterance"]), threading.get_ident() != caller))
        done.set()

    sub = client.on("speak", handler)
    client.ask("handled elsewhere", timeout=WAIT)
    assert done.wait(WAIT)
    sub.close()
    assert got == [("echo: handled elsewhere", True)]


def test_closing_a_subscription_from_this_thread_runs_on_the_clients_loop(client: thalovant.ThalovantClient) -> None:
    """``close()`` touches the listener's events, which belong to the loop: from another thread it must go
    through the portal (calling it here, on a thread the loop does not know, is not thread-safe)."""
    sub = client.on("speak", lambda event: None)
    listener_close = sub._listener.close
    ran_on: list[int] = []

    def recording_close() -> None:
        ran_on.append(threading.get_ident())
        listener_close()

    sub._listener.close = recording_close  # type: ignore[method-assign]
    sub.close()
    sub.close()  # idempotent
    assert ran_on and threading.get_ident() not in ran_on
    assert client.ask("still answered", timeout=WAIT).text == "echo: still answered"


def test_conversation_turns(client: thalovant.ThalovantClient, net: MemoryHubNet) -> None:
    with client.conversation() as convo:
        first = convo.ask("one", timeout=WAIT)
        second = convo.ask("two", timeout=WAIT)
    assert (first.text, second.text) == ("echo: one", "echo: two")
    sent = [m for m in net.hub.received if m.type == "recognizer_loop:utterance"]
    assert [m.context.get("request_id") for m in sent] == list(convo.request_ids)


def test_leaving_the_block_closes_the_link(net: MemoryHubNet, protocol: str) -> None:
    with thalovant.ThalovantClient(
        identity(protocol), protocol=protocol, useragent=UA, noise_key_file=False, connect_timeout=WAIT
    ) as client:
        assert client.ask("bye", timeout=WAIT).text == "echo: bye"
        assert net.hub.connected
    assert not net.hub.connected  # wss: close handshake; https: GET /disconnect
    if protocol == "wss":
        assert net.streams[-1].closed_by_client


def test_a_subscription_closed_after_its_client_closes_quietly(net: MemoryHubNet, protocol: str) -> None:
    with thalovant.ThalovantClient(
        identity(protocol), protocol=protocol, useragent=UA, noise_key_file=False, connect_timeout=WAIT
    ) as client:
        sub = client.on("speak", lambda event: None)
    sub.close()  # the loop is gone: runs right here, raises nothing
    assert "speak" in repr(sub)
