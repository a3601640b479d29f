"""A request hub 5.x refuses (close 4003) raises its typed error and the client lives on (shell/client_mesh.py).

The in-memory hub refuses the frame kinds in ``refused_kinds`` the way hub 5.x does: it closes the WebSocket with
4003 ``"QUERY is not allowed for this client"`` and does nothing with the frame. The refused call raises; the client
reconnects by itself, later calls work, subscriptions made before keep receiving, and the refused frame is never
sent again.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from thalovant import (
    AsyncThalovantClient,
    ThalovantClient,
    ThalovantEvent,
    ThalovantHiveRefusedError,
    ThalovantQueryRefusedError,
)
from thalovant.core.wire.message import HiveMessage
from thalovant.testing import MemoryHub

KEY = "refusal-access-key-not-shown"
IDENTITY = {
    "access_key": KEY,
    "password": "refusal-password-not-shown",
    "default_master": "https://hub.example.invalid",
    "site_id": "kitchen",
}


def _count_kinds(hub: MemoryHub) -> list[str]:
    """The kinds of the non-bus frames the fake hub opened (refused ones included), in order."""
    kinds: list[str] = []
    fake = hub.hub
    assert fake is not None
    opened = fake._open

    def recording(link: Any, frame: Any) -> HiveMessage | None:
        message = opened(link, frame)
        if message is not None and message.bus() is None:
            kinds.append(message.msg_type.value)
        return message

    fake._open = recording  # type: ignore[method-assign]
    return kinds


@pytest.mark.parametrize("kind", ["query", "broadcast"])
def test_async_refused_request_raises_then_the_client_reconnects_and_keeps_its_subscriptions(kind: str) -> None:
    async def scenario() -> tuple[ThalovantHiveRefusedError, str, list[Any], int, list[str], bool]:
        hub = MemoryHub(generation=3, refused_kinds=(kind,))
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            kinds = _count_kinds(hub)
            got: list[Any] = []
            arrived = anyio.Event()

            def note(event: ThalovantEvent) -> None:
                got.append(event.data)
                arrived.set()

            client.on("weather.report", note)
            with anyio.fail_after(5):
                with pytest.raises(ThalovantHiveRefusedError) as caught:
                    if kind == "query":
                        await client.query("what time is it", timeout=3)
                    else:
                        await client.broadcast("x.y", confirm=2.0)
                reply = await client.ask("hello", timeout=3)
                hub.push("weather.report", {"t": 1})
                await arrived.wait()
                await anyio.sleep(0.2)  # room for a (wrong) re-send of the refused frame
            return caught.value, reply.text, got, hub.connections, kinds, client.connected

    error, text, got, connections, kinds, connected = anyio.run(scenario)
    assert isinstance(error, ThalovantQueryRefusedError) == (kind == "query")
    assert (error.kind, error.code, error.reason) == (kind, 4003, f"{kind.upper()} is not allowed for this client")
    assert KEY not in str(error)
    assert text == "echo: hello" and got == [{"t": 1}] and connected
    assert connections == 2  # one reconnect, by itself
    assert [k for k in kinds if k == kind] == [kind]  # the refused frame was handed over once, never re-sent


def test_sync_refused_query_raises_then_ask_and_on_keep_working() -> None:
    hub = MemoryHub(generation=3, refused_kinds=("query",))
    got: list[Any] = []
    arrived = threading.Event()

    def note(event: ThalovantEvent) -> None:
        got.append(event.data)
        arrived.set()

    with ThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
        kinds = _count_kinds(hub)
        client.on("weather.report", note)
        with pytest.raises(ThalovantQueryRefusedError) as caught:
            client.query("what time is it", timeout=3)
        reply = client.ask("hello", timeout=3)
        hub.push("weather.report", {"t": 2})
        assert arrived.wait(3)
        assert client.async_client.connected
    assert (caught.value.code, caught.value.reason) == (4003, "QUERY is not allowed for this client")
    assert reply.text == "echo: hello" and got == [{"t": 2}]
    assert hub.connections == 2 and kinds.count("query") == 1


def test_over_http_a_dropped_client_right_after_a_query_is_a_typed_refusal_and_it_reconnects() -> None:
    """Hub 5.x has no close code over HTTP: it answers the refused ``/send_message`` 200 and drops the client."""

    async def scenario() -> tuple[ThalovantQueryRefusedError, str, int, list[str]]:
        hub = MemoryHub(generation=3, refused_kinds=("query",))
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="https") as client:
            kinds = _count_kinds(hub)
            with anyio.fail_after(5):
                with pytest.raises(ThalovantQueryRefusedError) as caught:
                    await client.query("what time is it", timeout=3)
                reply = await client.ask("hello", timeout=3)
            return caught.value, reply.text, hub.connections, kinds

    error, text, connections, kinds = anyio.run(scenario)
    assert (error.kind, error.code, error.reason) == ("query", None, "the hub dropped this client")
    assert text == "echo: hello" and connections == 2 and kinds.count("query") == 1
