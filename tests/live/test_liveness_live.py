"""Liveness against the real hubs: a dead path (stall, half-open) through the fault proxy becomes a link loss
within the documented bound, and the client comes back when the path heals; an idle healthy link is never
given up.

For each cell, one client with small liveness figures (``LIVE``: probe after 1 s, give up 1 s later, so the
bound is 2 s, the smallest allowed; HTTP: a request timeout of ``SEND_TIMEOUT``, polls at most
``POLL_INTERVAL`` apart) goes through the fault proxy:

* idle on a healthy path for more than 3 x ``LIVE.idle`` (several probe rounds): ``connected`` never
  flickers and no reconnect happens (hub 4.x and 5.x answer WebSocket pings; mosquitto answers PINGREQ);
* for STALL and HALF_OPEN: ``connected`` goes False within the bound + 0.2 s of the fault starting (on
  main it stayed True for the whole fault), an ask made in the fault fails typed within its timeout + 0.2 s,
  and once the proxy passes again the client hears the hub again by itself;
* pushes made while the path was healthy arrive exactly once, and emits that returned reach the hub's bus
  exactly once (nothing lost, nothing duplicated).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from tests.harness.faultproxy import Fault, FaultProxy, identity_through
from tests.live.live_support import (
    echo_utterances,
    fast_reconnect,
    heard_again,
    hub_of_generation,
    in_thread,
    need_protocol,
    report_in_summary,
    tag,
    wait_until,
)
from thalovant.core.errors import ThalovantConnectionError, ThalovantTimeoutError
from thalovant.core.links.liveness import LivenessConfig
from thalovant.shell.client import AsyncThalovantClient

CELLS = [
    ("hub4", "wss"),
    ("hub4", "https"),
    ("hub4", "mqtt"),
    ("hub5", "wss"),
    ("hub5", "https"),
    ("hub5", "mqtt"),
]
LIVE = LivenessConfig(idle=1.0, timeout=1.0)
SEND_TIMEOUT = 2.0
POLL_INTERVAL = 0.5  # HttpPollConfig.idle_max: the longest wait before the next poll
SLACK = 0.2
ASK_TIMEOUT = 3.0
RECOVERY_LIMIT = 15.0
LIVENESS_REPORT: list[str] = []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _summary(request: pytest.FixtureRequest) -> None:
    report_in_summary(
        request, "thalovant-liveness-summary", "liveness: dead paths through the fault proxy", LIVENESS_REPORT
    )


@pytest.fixture
def live_hub(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield hub_of_generation(request)


def bound(protocol: str) -> float:
    """The documented longest time a dead path goes unnoticed (docs/guides/tls.md, "Dead paths")."""
    return POLL_INTERVAL + SEND_TIMEOUT if protocol == "https" else LIVE.bound


def _kwargs(generation: str, protocol: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"mqtt_layout": "modern"} if (generation, protocol) == ("hub5", "mqtt") else {}
    if generation == "hub5":
        extra["auth_encoding"] = "percent"
    return fast_reconnect(send_timeout=SEND_TIMEOUT, connect_timeout=10.0, proxy=False, liveness=LIVE, **extra)


def _upstream(hub: Any, protocol: str) -> int:
    port: int = {"wss": hub.ports.ws, "https": hub.ports.http, "mqtt": hub.ports.mqtt}[protocol]
    return port


async def _watch_connected(client: AsyncThalovantClient, seconds: float) -> list[float]:
    """Sample ``connected`` every 20 ms for ``seconds``; the offsets at which it was False."""
    started, down = time.monotonic(), []
    while (elapsed := time.monotonic() - started) < seconds:
        if not client.connected:
            down.append(elapsed)
        await anyio.sleep(0.02)
    return down


async def _ask_in_fault(client: AsyncThalovantClient, text: str, label: str, asks: list[str]) -> None:
    """An ask made on the dead path ends typed (or answered) within its timeout + SLACK."""
    started = time.monotonic()
    try:
        await client.ask(text, timeout=ASK_TIMEOUT)
        outcome = "answered"
    except (ThalovantConnectionError, ThalovantTimeoutError) as exc:
        outcome = type(exc).__name__
    took = time.monotonic() - started
    asks.append(f"{label}: {outcome} {took:.2f}s")
    assert took <= ASK_TIMEOUT + SLACK, f"ask in {label} took {took:.2f}s"


async def _until_disconnected(client: AsyncThalovantClient, limit: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if not client.connected:
            return time.monotonic() - started
        await anyio.sleep(0.01)
    return None


@pytest.mark.anyio
@pytest.mark.hub
@pytest.mark.slow
@pytest.mark.parametrize(("generation", "protocol"), CELLS)
async def test_dead_path_is_noticed_within_the_bound_and_the_client_comes_back(
    live_hub: Any, generation: str, protocol: str
) -> None:
    hub = live_hub
    need_protocol(hub, protocol)
    run = tag(f"lv-{generation}-{protocol}")
    limit = bound(protocol)
    received: Counter[str] = Counter()
    must_arrive: list[str] = []
    emitted: list[str] = []
    noticed: dict[str, float] = {}
    asks: list[str] = []
    async with FaultProxy(_upstream(hub, protocol)) as proxy:
        identity = identity_through(hub.identity("psk"), protocol, proxy.port)
        async with AsyncThalovantClient(identity, protocol=protocol, **_kwargs(generation, protocol)) as c:
            listener = c.listen("speak", timeout=300, predicate=lambda ev: ev.text.startswith(run))

            async def collect() -> None:
                async for ev in listener:
                    received[ev.text] += 1

            async def healthy(step: str) -> None:
                for n in range(2):
                    text = f"{step}-{n}"
                    if await in_thread(lambda t=text: hub.push_event("speak", {"utterance": t}, wait_for_peer=0)):
                        must_arrive.append(text)
                    await c.emit("recognizer_loop:utterance", {"utterances": [f"{text}-emit"], "lang": "en-us"})
                    emitted.append(f"{text}-emit")

            def settled() -> bool:
                on_bus = set(echo_utterances(hub))
                return all(received[p] for p in must_arrive) and all(e in on_bus for e in emitted)

            async with anyio.create_task_group() as tg:
                tg.start_soon(collect)
                await heard_again(c, hub, f"{run}-start", RECOVERY_LIMIT)
                epoch = (await c.healthcheck()).reconnects
                flickers = await _watch_connected(c, 4 * LIVE.idle + 0.5)  # several probe rounds, idle
                assert not flickers, f"an idle healthy link was given up at {flickers[:3]} s"
                assert (await c.healthcheck()).reconnects == epoch, "an idle healthy link was redialled"
                for fault in (Fault.STALL, Fault.HALF_OPEN):
                    step = f"{run}-{fault.value}"
                    await healthy(f"{step}-before")
                    assert await in_thread(wait_until, settled, 10), f"not settled before {fault.value}"
                    assert c.connected
                    proxy.set(fault)
                    async with anyio.create_task_group() as during:
                        during.start_soon(_ask_in_fault, c, f"{step} ask", fault.value, asks)
                        took = await _until_disconnected(c, limit + 2 * SLACK)
                    assert took is not None, f"{fault.value}: still connected {limit + 2 * SLACK:.1f}s later"
                    noticed[fault.value] = took
                    assert took <= limit + SLACK, f"{fault.value} noticed after {took:.2f}s (bound {limit}s)"
                    proxy.set(Fault.PASS)
                    await heard_again(c, hub, step, RECOVERY_LIMIT)
                    reply = await c.ask(f"{step} after", timeout=10)
                    assert reply.text == f"echo: {step} after"
                    await healthy(f"{step}-after")
                ok = await in_thread(wait_until, settled, 10)
                await anyio.sleep(0.5)  # a late duplicate would show up by now
                tg.cancel_scope.cancel()
    on_bus = Counter(u for u in echo_utterances(hub) if u.startswith(run))
    dup = [k for k, n in (received + Counter({e: on_bus[e] for e in emitted})).items() if n > 1]
    LIVENESS_REPORT.append(
        f"{generation} {protocol}: bound {limit:.1f}s; noticed "
        + ", ".join(f"{k} {v:.2f}s" for k, v in noticed.items())
        + f"; asks {'; '.join(asks)}; pushed {len(must_arrive)} received {sum(1 for p in must_arrive if received[p])};"
        f" emitted {len(emitted)} on bus {sum(1 for e in emitted if on_bus[e])}; duplicates {len(dup)}"
    )
    assert ok, "lost: " + repr([p for p in must_arrive if not received[p]] + [e for e in emitted if not on_bus[e]])
    assert not dup, f"duplicated: {dup}"
