"""Fault injection on the real hub 4.0.0: hivemind-core killed and restarted under a live client.

What must hold (``thalovant.core.client.connection``): nothing lost, nothing twice; an ask in flight fails
at once when the link is lost; a queued send waits at most ``queue_timeout``. The restart loop is
``test_soak.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from tests.live.live_support import (
    echo_utterances,
    fast_reconnect,
    heard_again,
    hub_control,
    need_protocol,
    report_in_summary,
    tag,
    wait_until,
)
from thalovant.core.errors import ThalovantConnectionError, ThalovantTimeoutError
from thalovant.shell.client import AsyncThalovantClient

FAULT_REPORT: list[str] = []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hub(real_hub: Any) -> Iterator[Any]:
    """The shared hub, always left running (a test that kills it must not break the next one)."""
    yield real_hub
    if not real_hub.hub_alive():
        real_hub.start_hub()


@pytest.fixture(autouse=True)
def _fault_summary(request: pytest.FixtureRequest) -> None:
    report_in_summary(request, "thalovant-fault-summary", "fault injection (real hub)", FAULT_REPORT)


async def _noticed_loss(client: AsyncThalovantClient, limit: float = 10.0) -> None:
    """Wait (bounded) until the client itself saw the link go (HTTP polling notices a dead hub late)."""
    deadline = time.monotonic() + limit
    while client.connected:
        assert time.monotonic() < deadline, f"the client did not notice the dead hub within {limit}s"
        await anyio.sleep(0.05)


# ---- asks and emits while the hub is down ------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
async def test_an_ask_while_the_hub_is_down_waits_for_it_within_its_own_timeout(hub: Any, protocol: str) -> None:
    """An ask issued while the client is away waits for the next session until its own deadline (not
    ``queue_timeout``): answered when the hub is back in time, a typed timeout at its deadline otherwise."""
    need_protocol(hub, protocol)
    kwargs = fast_reconnect(queue_timeout=1.0)
    async with AsyncThalovantClient.from_identity_file(hub.identity_path("psk"), protocol=protocol, **kwargs) as c:
        assert (await c.ask("before", timeout=10)).text == "echo: before"
        await hub_control(hub.kill_hub)
        started = time.monotonic()
        with pytest.raises(ThalovantTimeoutError):
            await c.ask("while down", timeout=2.5)
        elapsed = time.monotonic() - started
        FAULT_REPORT.append(f"{protocol}: ask while hub down (timeout 2.5 s) -> timeout after {elapsed:.2f}s")
        assert 2.5 <= elapsed < 2.5 + 0.5, "ends at its own deadline, not at queue_timeout (1 s)"

        async def revive() -> None:
            await anyio.sleep(1.0)
            await hub_control(hub.start_hub)

        marker = tag(f"across-{protocol}")
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(revive)
            reply = await c.ask(marker, timeout=30)
        FAULT_REPORT.append(f"{protocol}: ask issued while down answered after {time.monotonic() - started:.2f}s")
        assert reply.text == f"echo: {marker}"
        assert echo_utterances(hub).count(marker) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_emit_while_down_is_delivered_once_after_reconnect(hub: Any, protocol: str) -> None:
    kwargs = fast_reconnect(queue_timeout=15.0, send_timeout=20.0)
    marker = tag(f"queued-{protocol}")
    async with AsyncThalovantClient.from_identity_file(hub.identity_path("psk"), protocol=protocol, **kwargs) as c:
        assert (await c.ask("before", timeout=10)).ok
        await hub_control(hub.kill_hub)
        await _noticed_loss(c)

        async def revive() -> None:
            await anyio.sleep(0.5)
            await hub_control(hub.start_hub)

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(revive)
            await c.emit("recognizer_loop:utterance", {"utterances": [marker], "lang": "en-us"})
        elapsed = time.monotonic() - started
        FAULT_REPORT.append(f"{protocol}: emit queued while hub down delivered after {elapsed:.2f}s")
        assert wait_until(lambda: marker in echo_utterances(hub), 10)
        assert (await c.ask("after", timeout=10)).ok  # any late duplicate would be on the bus by now
        assert echo_utterances(hub).count(marker) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_emit_while_down_fails_typed_after_queue_timeout(hub: Any, protocol: str) -> None:
    kwargs = fast_reconnect(queue_timeout=1.5)
    marker = tag(f"expired-{protocol}")
    async with AsyncThalovantClient.from_identity_file(hub.identity_path("psk"), protocol=protocol, **kwargs) as c:
        assert (await c.ask("before", timeout=10)).ok
        await hub_control(hub.kill_hub)
        await _noticed_loss(c)
        started = time.monotonic()
        with pytest.raises((ThalovantTimeoutError, ThalovantConnectionError)):
            await c.emit("recognizer_loop:utterance", {"utterances": [marker], "lang": "en-us"})
        elapsed = time.monotonic() - started
        assert 1.0 <= elapsed < 4.0, f"expected about queue_timeout (1.5 s), took {elapsed:.2f}s"
        await hub_control(hub.start_hub)
        await heard_again(c, hub, f"expired-{protocol}")
        assert (await c.ask("after", timeout=10)).ok
        assert marker not in echo_utterances(hub), "an expired message must never be sent later"


@pytest.mark.anyio
async def test_https_emit_before_the_loss_is_noticed_fails_typed_and_retryable(hub: Any) -> None:
    """HTTP only learns of a dead hub from a failed request: that request is the send itself."""
    kwargs = fast_reconnect(queue_timeout=5.0)
    marker = tag("unnoticed")
    async with AsyncThalovantClient.from_identity_file(hub.identity_path("psk"), protocol="https", **kwargs) as c:
        assert (await c.ask("before", timeout=10)).ok
        await hub_control(hub.kill_hub)
        started = time.monotonic()
        try:
            await c.emit("recognizer_loop:utterance", {"utterances": [marker], "lang": "en-us"})
            outcome = "queued"  # the poller noticed first: queued, then expired or sent after the restart
        except ThalovantConnectionError as exc:
            outcome = "failed"
            assert exc.retryable
        except ThalovantTimeoutError:
            outcome = "expired"
        elapsed = time.monotonic() - started
        FAULT_REPORT.append(f"https: emit right after the kill -> {outcome} in {elapsed:.2f}s")
        assert elapsed < 7.0
        await hub_control(hub.start_hub)
        await heard_again(c, hub, "unnoticed")
        assert (await c.ask("after", timeout=10)).ok
        assert echo_utterances(hub).count(marker) <= 1


# The bounded restart loop (listen, ask and emit across hub restarts, on hub 4.x and 5.x) is
# tests/live/test_soak.py.
