"""Network faults between a live client and the real hub: stall, half-open, RST, delay, throttle, cut mid-frame.

A :class:`tests.harness.faultproxy.FaultProxy` sits between the client and the hub (for MQTT, between
the client and mosquitto); the client's identity points at the proxy. One client per cell goes
through every fault in turn. For each fault:

* an ask made during the fault ends (answered, or a typed ``ThalovantTimeoutError`` /
  ``ThalovantConnectionError``) within its timeout + 0.2 s, and every emit made during the fault
  ends within ``send_timeout`` + 0.2 s;
* once the fault ends, the client hears the hub again with no user action (bounded) and an ask is
  answered;
* events the hub pushed and utterances the client emitted around the fault: nothing twice; every
  push made while the network was healthy arrives, and every emit that returned reaches the hub's bus
  exactly once (an emit that raised may be lost, never duplicated; a push made during a fault may be
  lost in the proxy, never duplicated; so may an emit that returned while the client -> hub way was
  cut mid-frame: its bytes were in the client's socket, TCP said "written", and HiveMind has no
  acknowledgement that would let any client know).

A summary line per cell is printed in the terminal summary.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from thalovant.shell.client import AsyncThalovantClient

CELLS = [("hub4", "wss"), ("hub4", "https"), ("hub4", "mqtt"), ("hub5", "wss"), ("hub5", "https")]
#: (fault, set() keyword arguments)
FAULTS: list[tuple[Fault, dict[str, Any]]] = [
    (Fault.STALL, {}),
    (Fault.HALF_OPEN, {}),
    (Fault.RST, {}),
    (Fault.DELAY, {"delay": 0.3}),
    (Fault.THROTTLE, {"rate": 2000}),
    (Fault.DROP_MID_FRAME, {"cut": "s2c"}),
    (Fault.DROP_MID_FRAME, {"cut": "c2s"}),
]
ASK_TIMEOUT = 1.5
SEND_TIMEOUT = 2.0
SLACK = 0.2
PER_STEP = 2
RECOVERY_LIMIT = 15.0
FAULT_REPORT: list[str] = []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _faults_summary(request: pytest.FixtureRequest) -> None:
    report_in_summary(request, "thalovant-network-fault-summary", "network faults through the fault proxy (real hubs)",
                      FAULT_REPORT)


@pytest.fixture
def fault_hub(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield hub_of_generation(request)


@dataclass
class _Tally:
    """What one cell pushed, emitted and saw."""

    received: Counter[str] = field(default_factory=Counter)
    must_arrive: list[str] = field(default_factory=list)  # pushes made while the network was healthy
    may_arrive: list[str] = field(default_factory=list)  # pushes made during a fault
    emitted: list[str] = field(default_factory=list)  # emits that returned
    emitted_lossy: list[str] = field(default_factory=list)  # emits that returned while the c2s way was cut
    raised: list[str] = field(default_factory=list)  # emits that raised (typed)
    asks: list[str] = field(default_factory=list)  # "<fault>:<outcome> <seconds>"
    recovery: list[float] = field(default_factory=list)
    slowest_emit: float = 0.0
    late_emits: list[str] = field(default_factory=list)
    bad_asks: list[str] = field(default_factory=list)  # over their timeout + SLACK, or a wrong answer


async def _push(hub: Any, text: str, into: list[str]) -> None:
    if await in_thread(lambda: hub.push_event("speak", {"utterance": text}, wait_for_peer=0)):
        into.append(text)


async def _emit(client: AsyncThalovantClient, text: str, tally: _Tally, lossy: bool = False) -> None:
    started = time.monotonic()
    outcome = "returned"
    try:
        await client.emit("recognizer_loop:utterance", {"utterances": [text], "lang": "en-us"})
        (tally.emitted_lossy if lossy else tally.emitted).append(text)
    except (ThalovantConnectionError, ThalovantTimeoutError) as exc:
        tally.raised.append(text)
        outcome = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    tally.slowest_emit = max(tally.slowest_emit, elapsed)
    if elapsed > SEND_TIMEOUT + SLACK:
        tally.late_emits.append(f"{text} {outcome} after {elapsed:.2f}s")


async def _ask(client: AsyncThalovantClient, text: str, label: str, tally: _Tally) -> None:
    started = time.monotonic()
    try:
        reply = await client.ask(text, timeout=ASK_TIMEOUT)
        outcome = "answered" if reply.text == f"echo: {text}" else f"wrong answer {reply.text!r}"
        outcome += " (timed_out: speech, no end of turn)" if reply.timed_out else ""
    except (ThalovantTimeoutError, ThalovantConnectionError) as exc:
        outcome = type(exc).__name__.removeprefix("Thalovant")
    elapsed = time.monotonic() - started
    tally.asks.append(f"{label}:{outcome} {elapsed:.2f}s")
    if elapsed > ASK_TIMEOUT + SLACK or outcome.startswith("wrong"):
        tally.bad_asks.append(f"{label}: {outcome} after {elapsed:.2f}s (timeout {ASK_TIMEOUT})")


async def _healthy_step(client: AsyncThalovantClient, hub: Any, run: str, tally: _Tally) -> None:
    for n in range(PER_STEP):
        await _push(hub, f"{run}-{n}", tally.must_arrive)
        await _emit(client, f"{run}-{n}-emit", tally)


async def _fault_step(client: AsyncThalovantClient, hub: Any, run: str, label: str, lossy: bool, tally: _Tally) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(_ask, client, f"{run} ask", label, tally)
        for n in range(PER_STEP):
            tg.start_soon(_emit, client, f"{run}-f{n}-emit", tally, lossy)
        for n in range(PER_STEP):
            await _push(hub, f"{run}-f{n}", tally.may_arrive)


def _client_kwargs(generation: str, protocol: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"keepalive": 2.0} if protocol == "mqtt" else {}
    if generation == "hub5":
        extra["auth_encoding"] = "percent"
    return fast_reconnect(queue_timeout=1.5, send_timeout=SEND_TIMEOUT, connect_timeout=10.0, proxy=False, **extra)


def _upstream(hub: Any, protocol: str) -> int:
    port: int = {"wss": hub.ports.ws, "https": hub.ports.http, "mqtt": hub.ports.mqtt}[protocol]
    return port


@pytest.mark.anyio
@pytest.mark.hub
@pytest.mark.slow
@pytest.mark.parametrize(("generation", "protocol"), CELLS)
async def test_network_faults(fault_hub: Any, generation: str, protocol: str) -> None:
    hub = fault_hub
    need_protocol(hub, protocol)
    run = tag(f"nf-{generation}-{protocol}")
    tally = _Tally()
    started = time.monotonic()
    async with FaultProxy(_upstream(hub, protocol)) as proxy:
        identity = identity_through(hub.identity("psk"), protocol, proxy.port)
        kwargs = _client_kwargs(generation, protocol)
        async with AsyncThalovantClient(identity, protocol=protocol, **kwargs) as c:
            listener = c.listen("speak", timeout=300, predicate=lambda ev: ev.text.startswith(run))

            async def collect() -> None:
                async for ev in listener:
                    tally.received[ev.text] += 1

            async with anyio.create_task_group() as tg:
                tg.start_soon(collect)
                await heard_again(c, hub, f"{run}-start", RECOVERY_LIMIT)
                for number, (fault, options) in enumerate(FAULTS):
                    step = f"{run}-{number}{fault.value}"
                    # a cut client -> hub way loses what the client's socket took after the cut: TCP said
                    # "written", the hub never read it, and HiveMind acknowledges nothing (at most once, then)
                    lossy = options.get("cut") == "c2s"
                    label = "-".join([fault.value, *([options["cut"]] if "cut" in options else [])])
                    await _healthy_step(c, hub, f"{step}-before", tally)
                    # bytes in flight when a fault starts may die in the proxy (a push the hub made, an emit the
                    # client's socket took: neither TCP nor HiveMind acknowledges them): settle first
                    assert await in_thread(wait_until, lambda: _settled(hub, tally), 10), f"before {fault.value}"
                    proxy.set(fault, **options)
                    await anyio.sleep(0.05)  # the proxy's tasks carry the fault out (an RST is sent) first
                    await _fault_step(c, hub, step, label, lossy, tally)
                    proxy.set(Fault.PASS)
                    tally.recovery.append(await heard_again(c, hub, step, RECOVERY_LIMIT))
                    reply = await c.ask(f"{step} after", timeout=10)
                    assert reply.text == f"echo: {step} after", f"no answer after {fault.value}"
                    await _healthy_step(c, hub, f"{step}-after", tally)
                settled = await in_thread(wait_until, lambda: _settled(hub, tally), 10)
                await anyio.sleep(0.5)  # a late duplicate would show up by now
                tg.cancel_scope.cancel()
    on_bus = Counter(u for u in echo_utterances(hub) if u.startswith(run))
    dup = sum(n - 1 for n in tally.received.values() if n > 1) + sum(n - 1 for n in on_bus.values() if n > 1)
    lost_push = [p for p in tally.must_arrive if not tally.received[p]]
    lost_emit = [e for e in tally.emitted if not on_bus[e]]
    during = sum(1 for p in tally.may_arrive if tally.received[p])
    rec = sorted(tally.recovery)
    FAULT_REPORT.append(
        f"{generation} {protocol}: faults {len(rec)}/{len(FAULTS)}; pushed {len(tally.must_arrive)}+"
        f"{len(tally.may_arrive)} during faults, received {len(tally.must_arrive) - len(lost_push)}+{during};"
        f" emits returned {len(tally.emitted)} on bus {sum(1 for e in tally.emitted if on_bus[e])},"
        f" raised {len(tally.raised)} (on bus {sum(1 for e in tally.raised if on_bus[e])}), returned while cut"
        f" {len(tally.emitted_lossy)} (on bus {sum(1 for e in tally.emitted_lossy if on_bus[e])}); duplicates {dup};"
        f" slowest emit {tally.slowest_emit:.2f}s; recovery median {rec[len(rec) // 2]:.2f}s max {rec[-1]:.2f}s;"
        f" asks {', '.join(tally.asks)}; {time.monotonic() - started:.0f}s; proxy {dict(proxy.stats)}"
    )
    assert not tally.bad_asks, tally.bad_asks
    assert dup == 0, f"duplicated: {[k for k, n in (tally.received + on_bus).items() if n > 1]}"
    assert not lost_push and not lost_emit, f"lost: pushes {lost_push}, emits {lost_emit}"
    assert settled
    assert tally.slowest_emit <= SEND_TIMEOUT + SLACK, f"emits over send_timeout: {tally.late_emits}"


def _settled(hub: Any, tally: _Tally) -> bool:
    on_bus = set(echo_utterances(hub))
    return all(tally.received[p] for p in tally.must_arrive) and all(e in on_bus for e in tally.emitted)
