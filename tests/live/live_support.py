"""Helpers shared by the client/conversation/fault/TLS/v3 live tests (real hub on loopback)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import anyio.to_thread
import pytest

from thalovant.core.client.reconnect import ReconnectConfig

# password-only, pre-shared-key-only, both (hub 4.0.0 client kinds)
KINDS = ("password", "psk-only", "psk")
PROTOCOLS = ("wss", "https", "mqtt")


def fast_reconnect(**extra: Any) -> dict[str, Any]:
    """Client keyword arguments for quick, bounded reconnects on loopback."""
    kwargs: dict[str, Any] = {"reconnect": ReconnectConfig(base=0.2, cap=1.0), "connect_timeout": 20.0}
    kwargs.update(extra)
    return kwargs


def need_protocol(hub: Any, protocol: str) -> None:
    """Skip when the hub cannot serve ``protocol`` (MQTT needs mosquitto)."""
    if protocol == "mqtt" and not hub.mqtt_available:
        pytest.skip(f"MQTT unavailable: {hub.mqtt_unavailable_reason}")


def hub_of_generation(request: pytest.FixtureRequest) -> Any:
    """The real hub of the parametrized cell's ``generation`` (``"hub4"``: ``real_hub``, else ``real_hub_v3``)."""
    generation = request.node.callspec.params["generation"]
    return request.getfixturevalue("real_hub" if generation == "hub4" else "real_hub_v3")


def tag(prefix: str) -> str:
    """A unique marker for one test's messages."""
    return f"{prefix}-{secrets.token_hex(4)}"


def wait_until(
    condition: Callable[[], bool], limit: float, step: Callable[[], object] | None = None, pause: float = 0.1
) -> bool:
    """Poll ``condition`` (bounded by ``limit`` seconds), running ``step`` between polls."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        if step is not None:
            step()
        time.sleep(pause)
    return condition()


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking harness call (bus, subprocess) off the event loop."""
    return await anyio.to_thread.run_sync(lambda: fn(*args))


# Hub processes are started with PR_SET_PDEATHSIG, which the kernel ties to the *thread* that forked
# them: a hub started from an anyio worker thread is SIGTERMed as soon as that worker thread exits
# (e.g. when the test's event loop closes). Start/stop hub processes only from this long-lived thread.
_HUB_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-control")


async def hub_control(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a hub life-cycle call (``restart_hub``, ``start_hub``, ``kill_hub``) on the long-lived thread."""
    future = _HUB_THREAD.submit(fn, *args, **kwargs)
    return await anyio.to_thread.run_sync(future.result)


def echo_utterances(hub: Any) -> list[str]:
    """Every first utterance of ``recognizer_loop:utterance`` the echo agent has seen."""
    found = []
    for entry in hub.echo_log(msg_type="recognizer_loop:utterance"):
        utterances = (entry.get("data") or {}).get("utterances") or []
        if utterances:
            found.append(str(utterances[0]))
    return found


async def heard_again(client: Any, hub: Any, label: str, limit: float = 20.0) -> float:
    """Push probe events until ``client`` hears one (bounded by ``limit``); the seconds it took.

    Each probe is pushed once (``wait_for_peer=0``): a client that is not a peer yet misses it and the
    next probe follows 0.7 s later.
    """
    started = time.monotonic()
    n = 0
    while time.monotonic() < started + limit:
        probe = f"probe-{label}-{n}"
        n += 1
        listener = client.listen("speak", timeout=0.7, max_events=1, predicate=lambda ev, p=probe: ev.text == p)
        try:
            await in_thread(lambda p=probe: hub.push_event("speak", {"utterance": p}, wait_for_peer=0))
        except (OSError, TimeoutError):
            await listener.aclose()
            continue
        if [ev async for ev in listener]:
            return time.monotonic() - started
    raise AssertionError(f"the client heard nothing from the hub for {limit}s ({label})")


class _SummarySection:
    def __init__(self, title: str, lines: list[str]) -> None:
        self.title, self.lines = title, lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.write_sep("-", self.title)
            for line in self.lines:
                terminalreporter.write_line(line)


def report_in_summary(request: pytest.FixtureRequest, name: str, title: str, lines: list[str]) -> None:
    """Print ``lines`` under ``title`` in pytest's terminal summary (no ``-s`` needed); registered once per ``name``."""
    manager = request.config.pluginmanager
    if not manager.has_plugin(name):
        manager.register(_SummarySection(title, lines), name)
