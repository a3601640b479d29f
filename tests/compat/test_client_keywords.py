"""0.4.7 client keywords: ``reply_settle_seconds``, ``reconnect_attempts`` and ``context=`` filters."""

from __future__ import annotations

import threading
import time
import warnings

import anyio
import pytest

from tests.compat.conftest import PASSWORD, UA, WAIT, install_hub
from tests.shell.inmemory import MemoryHubNet
from thalovant import (
    AsyncThalovantClient,
    ThalovantClient,
    ThalovantConnectionError,
    ThalovantEvent,
    ThalovantIdentity,
)
from thalovant.core.wire.message import BusMessage
from thalovant.testing import FakeHub


def said(request: BusMessage, msg_type: str, text: str | None = None) -> BusMessage:
    """A hub answer to ``request`` (its context echoed, as OVOS's ``Message.reply`` does)."""
    return BusMessage(type=msg_type, data={} if text is None else {"utterance": text}, context=dict(request.context))


def late_speech(request: BusMessage) -> list[BusMessage]:
    """A skill that says one thing, ends the turn, then says one more thing."""
    first, end = said(request, "speak", "first part"), said(request, "ovos.utterance.handled")
    return [first, end, said(request, "speak", "late part")]


def speech_after_the_end(request: BusMessage) -> list[BusMessage]:
    """A hub that ends the turn before the speech arrives."""
    return [said(request, "ovos.utterance.handled"), said(request, "speak", "after the end")]


@pytest.fixture
def slow_skill_hub(monkeypatch: pytest.MonkeyPatch) -> MemoryHubNet:
    hub = FakeHub(password=PASSWORD, behaviours={"late": late_speech, "after": speech_after_the_end})
    return install_hub(monkeypatch, hub)


def test_reply_settle_seconds_collects_speech_after_the_end_of_the_turn(
    identity: ThalovantIdentity, slow_skill_hub: MemoryHubNet
) -> None:
    with ThalovantClient(identity, useragent=UA, reply_settle_seconds=0.3) as client:
        started = time.monotonic()
        reply = client.ask("after")
        took = time.monotonic() - started
        assert reply.text == "after the end" and reply.handled and reply.ok
        assert 0.25 <= took < 0.3 + 1.0
        assert client.reply_settle_seconds == 0.3
    with ThalovantClient(identity, useragent=UA, reply_settle_seconds=0) as client:
        # the default ends the ask with the turn; a speech that handled overtook (no speech before it)
        # is still caught by the correlator's short quiet grace (Rule 2c), at once when it comes
        assert client.ask("after").text == "after the end"
        assert client.ask("late").text == "first part"


def test_async_reply_settle_seconds_keeps_late_speech(
    identity: ThalovantIdentity, slow_skill_hub: MemoryHubNet
) -> None:
    async def run(settle: float) -> str:
        async with AsyncThalovantClient(identity, useragent=UA, reply_settle_seconds=settle) as client:
            return (await client.ask("late", timeout=WAIT)).text

    assert anyio.run(run, 0.2) == "first part late part"
    assert anyio.run(run, 0) == "first part"


def test_reply_settle_seconds_must_be_a_number_of_seconds(identity: ThalovantIdentity) -> None:
    for bad in (-1, float("nan"), float("inf"), "0.25"):  # ThalovantArgument(Type)Error: both are ValueErrors
        with pytest.raises(ValueError, match="reply_settle_seconds"):
            ThalovantClient(identity, reply_settle_seconds=bad)


def test_reconnect_attempts_still_limits_the_retries_and_warns_once(
    identity: ThalovantIdentity, hub: MemoryHubNet
) -> None:
    hub.fail_dial = ConnectionRefusedError()
    with pytest.warns(DeprecationWarning, match="reconnect_attempts"):
        client = ThalovantClient(identity, useragent=UA, reconnect_attempts=2)
    assert client.reconnect_attempts == 2 and client.auto_reconnect
    with pytest.raises(ThalovantConnectionError):
        client.connect()
    client.close()
    assert len(hub.dials) == 3  # the first link and two more, as 0.4.7's attempts
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AsyncThalovantClient(identity, reconnect_attempts=0)  # once per process: no second warning


def test_on_takes_a_context_to_filter_by(identity: ThalovantIdentity, hub: MemoryHubNet) -> None:
    got: list[ThalovantEvent] = []
    done = threading.Event()

    def handler(event: ThalovantEvent) -> None:
        got.append(event)
        done.set()

    with ThalovantClient(identity, useragent=UA) as client:
        with pytest.warns(DeprecationWarning, match=r"on\(context=\.\.\.\)"):
            subscription = client.on("speak", handler, context={"request_id": "request-2"})
        client.ask("one", request_id="request-1")
        client.ask("two", request_id="request-2")
        assert done.wait(WAIT)
        subscription.close()
    assert [event.text for event in got] == ["echo: two"]


def test_listen_takes_a_context_to_filter_by(identity: ThalovantIdentity, hub: MemoryHubNet) -> None:
    with ThalovantClient(identity, useragent=UA) as client:
        with pytest.warns(DeprecationWarning, match=r"listen\(context=\.\.\.\)"):
            events = client.listen("speak", timeout=WAIT, max_events=1, context={"session": {"request_id": "r-4"}})
        client.ask("three", request_id="r-3")
        client.ask("four", request_id="r-4")
        assert [event.text for event in events] == ["echo: four"]


@pytest.mark.filterwarnings("ignore:wait_for_event:DeprecationWarning")
def test_wait_for_event_takes_a_context_to_filter_by(identity: ThalovantIdentity, hub: MemoryHubNet) -> None:
    with ThalovantClient(identity, useragent=UA) as client:
        found: list[ThalovantEvent] = []
        waiter = threading.Thread(
            target=lambda: found.append(client.wait_for_event("speak", timeout=WAIT, context={"request_id": "r-6"}))
        )
        waiter.start()
        deadline = time.monotonic() + WAIT
        while not len(client.async_client._listeners) and time.monotonic() < deadline:
            time.sleep(0.01)  # until the waiter's listener is registered
        client.ask("five", request_id="r-5")
        client.ask("six", request_id="r-6")
        waiter.join(WAIT)
    assert [event.text for event in found] == ["echo: six"]


def test_async_context_filters(identity: ThalovantIdentity, hub: MemoryHubNet) -> None:
    async def run() -> tuple[list[str], str]:
        got: list[str] = []
        arrived = anyio.Event()

        def handler(event: ThalovantEvent) -> None:
            got.append(event.text)
            arrived.set()

        async with AsyncThalovantClient(identity, useragent=UA) as client:
            client.on("speak", handler, context={"request_id": "a-2"})
            found: list[ThalovantEvent] = []

            async def wait() -> None:
                found.append(await client.wait_for_event("speak", timeout=WAIT, context={"request_id": "a-1"}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.wait_all_tasks_blocked()
                await client.ask("alpha", request_id="a-1")
                await client.ask("beta", request_id="a-2")
            with anyio.fail_after(WAIT):
                await arrived.wait()
            return got, found[0].text

    with pytest.warns(DeprecationWarning, match="context="):
        assert anyio.run(run) == (["echo: beta"], "echo: alpha")


def test_async_listen_connects_a_client_that_was_not_connected(identity: ThalovantIdentity, hub: MemoryHubNet) -> None:
    async def run() -> list[str]:
        client = AsyncThalovantClient(identity, useragent=UA)
        try:
            texts = []
            async for event in client.listen("ovos.utterance.handled", timeout=0.5, max_events=1):
                texts.append(event.type)  # pragma: no cover - nothing arrives
            return [str(client.connected), *texts]
        finally:
            await client.close()

    assert anyio.run(run) == ["True"]
