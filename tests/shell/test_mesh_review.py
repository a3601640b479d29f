"""Review of the mesh code (issue 14): a mesh frame or QUERY the outbox keeps across a reconnect."""

from __future__ import annotations

import anyio
import pytest

from thalovant import AsyncThalovantClient
from thalovant.core.bus.query import QueryComplete
from thalovant.testing import MemoryHub

from .test_client_mesh import IDENTITY, _frames


@pytest.mark.parametrize("kind", ["propagate", "escalate", "broadcast"])
def test_a_mesh_send_kept_across_a_reconnect_goes_out_once_and_returns(kind: str) -> None:
    async def scenario() -> int:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            seen = _frames(hub)
            hub.drop_link()  # the client has not noticed yet: the frame waits in the outbox for the new link
            await getattr(client, kind)("x.y", {"n": 1}, confirm=0.2)  # was: ThalovantConnectionError
            await seen.first()
            await anyio.sleep(0.2)
            return len(seen)

    assert anyio.run(scenario) == 1  # sent once: an error would have made the caller send it again


def test_a_query_kept_across_a_reconnect_gets_its_answer() -> None:
    async def scenario() -> bool:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            hub.drop_link()
            result = await client.query("what time is it", timeout=3)  # was: ThalovantConnectionError
            return result.complete

    assert anyio.run(scenario)


def test_a_query_stream_kept_across_a_reconnect_ends_complete() -> None:
    async def scenario() -> list[object]:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            hub.drop_link()
            return [a async for a in client.query_stream("what time is it", timeout=3)]

    answers = anyio.run(scenario)
    assert isinstance(answers[-1], QueryComplete)
