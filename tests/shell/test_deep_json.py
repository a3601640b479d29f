"""Deeply nested JSON from a hub or the control plane ends typed, never as ``RecursionError``.

A hub that answers an ask with an encrypted ``speak`` whose data nests 500 levels used to crash the
client's scrubber with a ``RecursionError``; ``ask(timeout=5)`` then raised a bare ``ExceptionGroup``
after 6 s. The hub runs as a FakeHub behind in-memory streams (:class:`tests.shell.inmemory.MemoryHubNet`).
A control-plane answer of ``[`` x 100000 (status 200 or 4xx) raised ``RecursionError`` too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import thalovant
from tests.fakes.control_server import FakeControlServer, Reply
from tests.shell.inmemory import MemoryHubNet
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.wire.message import BusMessage
from thalovant.shell.doctor_admission import judge_connect
from thalovant.shell.links import dial
from thalovant.shell.sync.control_plane import ThalovantControlPlane
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub

UA = "DeepClient/1.0"
PASSWORD = "a-throwaway-password"
ENDPOINTS = {"wss": "ws://hub.invalid:5678", "https": "http://hub.invalid:5679"}
LEVELS = 500
WAIT = 5.0


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def deep_speech(request: BusMessage) -> list[BusMessage]:
    """Speaks with data nested ``LEVELS`` deep, then says the turn is handled."""
    context = {**request.context, "source": request.context.get("destination"), "destination": "client"}
    return [
        BusMessage(type="speak", data={"utterance": "deep", "meta": nested(LEVELS)}, context=context),
        BusMessage(type="ovos.utterance.handled", data={}, context=context),
    ]


@asynccontextmanager
async def connected(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> AsyncIterator[tuple[thalovant.AsyncThalovantClient, MemoryHubNet]]:
    hub = FakeHub(password=PASSWORD, behaviours={"deep": deep_speech})
    net = MemoryHubNet(hub, protocol=protocol, useragent=UA, access_key=THROWAWAY_ACCESS_KEY)
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    identity = {
        "access_key": THROWAWAY_ACCESS_KEY,
        "password": PASSWORD,
        "default_master": "http://hub.invalid",
        "site_id": "den",
        "data_plane_endpoints": {protocol: ENDPOINTS[protocol]},
        "protocols": {protocol: True},
    }
    client = thalovant.AsyncThalovantClient(
        identity,
        protocol=protocol,
        useragent=UA,
        noise_key_file=False,
        connect_timeout=WAIT,
        reconnect=ReconnectConfig(base=0.01, cap=0.05),
    )
    async with client:
        yield client, net


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_a_500_level_event_fails_the_ask_typed_and_the_client_recovers(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    async with connected(monkeypatch, protocol) as (client, _net):
        events = client.listen("speak")
        started = anyio.current_time()
        with anyio.fail_after(WAIT + 2), pytest.raises(thalovant.ThalovantConnectionError) as caught:
            await client.ask("deep", timeout=WAIT)
        assert anyio.current_time() - started < WAIT  # the unreadable frame ended it, not the timeout
        assert "nested deeper than 128 levels" in str(caught.value)
        with anyio.fail_after(WAIT):
            assert (await client.ask("still here", timeout=WAIT)).text == "echo: still here"
            assert (await events.__anext__()).text == "echo: still here"  # the deep one never reached it


@pytest.mark.parametrize("status", [200, 400, 404, 422])
def test_a_control_plane_answer_nested_100000_deep_is_a_typed_api_error(status: int) -> None:
    with FakeControlServer() as srv, ThalovantControlPlane(srv.url, timeout=3.0) as cp:
        cp.login("dev@example.test", "correct horse battery")
        srv.script("GET", "/v1/hubs", Reply(status=status, body=b"[" * 100_000))
        with pytest.raises(thalovant.ThalovantAPIError) as caught:
            cp.list_hubs()
    assert caught.value.status_code == status
    if status == 200:
        assert caught.value.code == "invalid_response" and "nested deeper" in str(caught.value)


def test_the_doctors_admission_probe_judges_a_deep_answer_without_recursion() -> None:
    outcome = judge_connect(200, b"[" * 100_000, "hub")
    assert outcome.status.value == "failed" and "without a JSON body" in outcome.detail
