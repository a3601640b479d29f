"""Synchronous delivery without stalls: transports that hold a lock while they call handlers, the
shipped adapters as ``transport=``, and patched subclasses of them (issue 12, a reviewer's three bugs).

Before the fix: a handler that subscribed froze the event loop for ``DELIVER_WAIT`` (the loop
called ``on_mycroft`` while the pushing thread held the transport's lock and waited for the loop);
with ``on("*")`` every ``ask()`` took ``DELIVER_WAIT`` more (``remove_mycroft`` the same way); an
``ask()`` inside an ``on()`` handler over ``thalovant.transport.HiveMindWSSTransport`` took
2 x ``DELIVER_WAIT``; and a patched subclass of a shipped transport recursed without end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import thalovant
import thalovant.client
from tests.compat.fakes import BusFake, bus_identity
from tests.shell.inmemory import MemoryHubNet
from thalovant import AsyncThalovantClient, ThalovantClient, ThalovantIdentity
from thalovant.shell import bus_transport
from thalovant.shell.links import dial
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub
from thalovant.transport import HiveMindWSSTransport

WAIT = 5.0
STALL = 2.0  # DELIVER_WAIT in these tests: the old code took at least this long
FAST = 1.0  # what the fixed code must stay under
UA = "LegacyApp/0.4.7"
PASSWORD = "a-throwaway-password"


@pytest.fixture(autouse=True)
def short_deliver_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_transport, "DELIVER_WAIT", STALL)


class LockingTransport(BusFake):
    """A transport that holds its lock while it calls handlers and takes it to (un)register them.

    An utterance is answered (``speak``, then ``ovos.utterance.handled``) from a thread of its own,
    as a network transport answers.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def on_mycroft(self, name: str, fn: Callable[[Any], None]) -> None:
        with self.lock:
            super().on_mycroft(name, fn)

    def remove_mycroft(self, name: str, fn: Callable[[Any], None]) -> None:
        with self.lock:
            super().remove_mycroft(name, fn)

    def push(self, name: str, data: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> None:
        with self.lock:
            super().push(name, data, context)

    def emit_event(self, event_type: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        if event_type == "recognizer_loop:utterance":
            text = f"echo: {data['utterances'][0]}"

            def answer() -> None:
                self.push("speak", {"utterance": text}, context)
                self.push("ovos.utterance.handled", {}, context)

            thread = threading.Thread(target=answer, daemon=True)
            self.threads.append(thread)
            thread.start()


identity = bus_identity


def test_a_handler_that_subscribes_does_not_freeze_the_loop() -> None:
    transport = LockingTransport()
    later: list[int] = []
    with ThalovantClient(identity(), transport=transport) as client:
        subscribed = threading.Event()

        def handler(event: Any) -> None:
            client.on("later.event", lambda event: later.append(event.data["n"]))
            subscribed.set()

        with client.on("custom.event", handler):
            started = time.monotonic()
            transport.push("custom.event", {"n": 1})
            assert subscribed.wait(WAIT)
            assert time.monotonic() - started < FAST  # was DELIVER_WAIT: the loop waited for the lock
            assert len(transport.handlers["later.event"]) == 1
            transport.push("later.event", {"n": 2})  # nothing registers now: push waits for the handler
            assert later == [2]


def test_a_catch_all_subscription_does_not_slow_every_ask() -> None:
    transport = LockingTransport()
    with ThalovantClient(identity(), transport=transport) as client:
        seen: list[str] = []
        with client.on("*", lambda event: seen.append(event.type)):
            for n in range(3):
                started = time.monotonic()
                reply = client.ask(f"question {n}", timeout=WAIT)
                assert time.monotonic() - started < FAST  # was + DELIVER_WAIT (remove_mycroft on the loop)
                assert reply.text == f"echo: question {n}"
                assert transport.handlers["speak"] == []  # removed before the caller heard of it
    for thread in transport.threads:
        thread.join(WAIT)
    assert seen.count("speak") == 3


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_async_client_ask_with_a_catch_all_subscription_is_not_stalled() -> None:
    transport = LockingTransport()
    async with AsyncThalovantClient(identity(), transport=transport) as client:
        with client.on("*", lambda event: None):
            started = time.monotonic()  # (a blocked loop delivers no cancellation: measure, not fail_after)
            reply = await client.ask("hello", timeout=WAIT)
            assert time.monotonic() - started < FAST
        assert reply.text == "echo: hello"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_a_push_waits_only_for_the_handlers_of_its_own_message() -> None:
    """A message nobody waits for (pushed on the loop's thread) and one a thread waits for are taken
    in one go: the thread waits for its own message's handler, not for the other's (it waited for both)."""
    transport = LockingTransport()
    async with AsyncThalovantClient(identity(), transport=transport) as client:
        release = anyio.Event()
        fast: list[int] = []

        async def slow(event: Any) -> None:
            await release.wait()

        with client.on("slow.event", slow), client.on("fast.event", lambda event: fast.append(event.data["n"])):
            transport.push("slow.event", {"n": 1})  # the loop's thread: queued, nobody waits
            pusher = threading.Thread(target=transport.push, args=("fast.event", {"n": 2}))
            pusher.start()
            # Block the loop on purpose, so that both messages are queued before it drains them (on the
            # fixed code the test passes however the threads are scheduled; this only stages the old bug).
            time.sleep(0.1)  # noqa: ASYNC251
            started = time.monotonic()
            await anyio.to_thread.run_sync(pusher.join, WAIT)
            assert time.monotonic() - started < FAST  # was DELIVER_WAIT: it waited for slow() too
            assert fast == [2]
            release.set()


def test_a_subscription_change_lets_a_waiting_push_go_but_its_handler_still_runs() -> None:
    """While a push waits, the client registers a name: the push returns (it must not hold the lock
    the registration needs) and the handler it was waiting for still runs."""
    transport = LockingTransport()
    release, running = threading.Event(), threading.Event()
    ran: list[int] = []
    with ThalovantClient(identity(), transport=transport) as client:

        def slow(event: Any) -> None:
            running.set()
            release.wait(WAIT)
            ran.append(event.data["n"])

        with client.on("slow.event", slow):
            pusher = threading.Thread(target=transport.push, args=("slow.event", {"n": 1}))
            pusher.start()
            assert running.wait(WAIT)  # the pusher waits for slow() now, holding the transport's lock
            started = time.monotonic()
            with client.on("other.event", lambda event: None):
                assert time.monotonic() - started < FAST
                pusher.join(WAIT)
                assert not pusher.is_alive()
                release.set()
            deadline = time.monotonic() + WAIT
            while not ran and time.monotonic() < deadline:
                time.sleep(0.01)
    assert ran == [1]


# ---- thalovant.transport's adapters as transport= ---------------------------------------------------


def wss_identity() -> ThalovantIdentity:
    return ThalovantIdentity.from_mapping(
        {
            "access_key": THROWAWAY_ACCESS_KEY,
            "password": PASSWORD,
            "default_master": "http://hub.invalid",
            "site_id": "den",
            "data_plane_endpoints": {"wss": "ws://hub.invalid:5678"},
            "protocols": {"wss": True},
        }
    )


@pytest.fixture
def memory_net(monkeypatch: pytest.MonkeyPatch) -> MemoryHubNet:
    net = MemoryHubNet(FakeHub(password=PASSWORD), protocol="wss", useragent=UA, access_key=THROWAWAY_ACCESS_KEY)
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    return net


def test_an_ask_inside_a_handler_over_a_shipped_adapter_is_not_stalled(memory_net: MemoryHubNet) -> None:
    transport = HiveMindWSSTransport(wss_identity(), useragent=UA)
    with ThalovantClient(wss_identity(), transport=transport, useragent=UA) as client:
        inner: list[str] = []
        done = threading.Event()

        def on_speak(event: Any) -> None:
            if not inner:
                inner.append("asking")
                inner.append(client.ask("second", timeout=WAIT).text)
                done.set()

        with client.on("speak", on_speak):
            started = time.monotonic()
            assert client.ask("first", timeout=WAIT).text == "echo: first"
            assert done.wait(WAIT)
            assert time.monotonic() - started < FAST  # was 2 x DELIVER_WAIT
    assert inner == ["asking", "echo: second"]


def test_a_patched_subclass_of_a_shipped_transport_is_built_once(
    memory_net: MemoryHubNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []

    class MyTransport(HiveMindWSSTransport):
        def __init__(self, identity: Any, **kwargs: Any) -> None:
            made.append(self)
            super().__init__(identity, **kwargs)

    monkeypatch.setattr(thalovant.client, "HiveMindWSSTransport", MyTransport)
    with ThalovantClient(wss_identity(), protocol="wss", useragent=UA) as client:  # was a RecursionError
        assert client.ask("through my subclass", timeout=WAIT).text == "echo: through my subclass"
    assert len(made) == 1 and isinstance(made[0], MyTransport)


def test_a_subscription_to_a_name_already_registered_keeps_the_push_waiting() -> None:
    """Only a call to the transport lets a waiting push go: a second subscription to the same name
    makes none, so the push still returns only after its handler ran (0.4.7's synchronous push)."""
    transport = LockingTransport()
    release, running = threading.Event(), threading.Event()
    ran: list[int] = []
    after_push: list[list[int]] = []
    with ThalovantClient(identity(), transport=transport) as client:

        def slow(event: Any) -> None:
            running.set()
            release.wait(WAIT)
            ran.append(event.data["n"])

        def push() -> None:
            transport.push("slow.event", {"n": 1})
            after_push.append(list(ran))

        with client.on("slow.event", slow):
            pusher = threading.Thread(target=push)
            pusher.start()
            assert running.wait(WAIT)
            with client.on("slow.event", lambda event: None):  # no on_mycroft: the name is registered
                assert len(transport.handlers["slow.event"]) == 1
            release.set()
            pusher.join(WAIT)
    assert after_push == [[1]]
