"""A frame the hub writes twice reaches the app once (real hubs 4.x and 5.x, every transport).

Hub 4.x writes to a client's WebSocket from its bus threads as well as its IO loop; tornado's write
buffer is not thread-safe, so now and then two writers flush the same bytes and one frame arrives
twice (seen in the restart soak: one `speak` delivered twice 22 ms apart, the hub logging an
``AssertionError`` from tornado's ``advance``). The harness reproduces it on demand:
``push_event(copies=2)`` writes one sealed frame twice. The client must deliver it once, and over
protocol v3 must not take the copy for a broken Noise session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from tests.live.live_support import hub_of_generation, in_thread, need_protocol, tag
from thalovant.shell.client import AsyncThalovantClient

CELLS = [("hub4", "wss"), ("hub4", "https"), ("hub4", "mqtt"), ("hub5", "wss"), ("hub5", "https"), ("hub5", "mqtt")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def cell_hub(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield hub_of_generation(request)


@pytest.mark.anyio
@pytest.mark.parametrize(("generation", "protocol"), CELLS)
async def test_a_frame_the_hub_writes_twice_is_delivered_once(cell_hub: Any, generation: str, protocol: str) -> None:
    hub = cell_hub
    need_protocol(hub, protocol)
    run = tag(f"twice-{generation}-{protocol}")
    extra: dict[str, Any] = {}
    if generation == "hub5":
        extra["auth_encoding"] = "percent"
        if protocol == "mqtt":
            extra["mqtt_layout"] = "modern"
    heard: Counter[str] = Counter()
    all_heard = anyio.Event()
    async with AsyncThalovantClient.from_identity_file(hub.identity_path("psk"), protocol=protocol, **extra) as c:
        assert (await c.ask(f"{run} before", timeout=10)).ok
        links_before = (await c.healthcheck()).reconnects
        listener = c.listen("speak", timeout=15, predicate=lambda ev: ev.text.startswith(run))

        async def collect() -> None:
            async for ev in listener:
                heard[ev.text] += 1
                if len(heard) == len(texts):
                    all_heard.set()

        texts = [f"{run}-{n}" for n in range(3)]
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect)
            for n, text in enumerate(texts):
                push = lambda t=text, k=n: hub.push_event("speak", {"utterance": t}, copies=1 + k % 2)  # noqa: E731
                assert await in_thread(push), "the hub had the client as a peer"
            with anyio.fail_after(10):
                await all_heard.wait()
            await anyio.sleep(0.5)  # room for a late copy to show up
            tg.cancel_scope.cancel()
        # the session survived the copy: an ask still works, on the same link
        assert (await c.ask(f"{run} after", timeout=10)).text == f"echo: {run} after"
        assert (await c.healthcheck()).reconnects == links_before, "a copied frame broke the session"
    assert heard == Counter(texts), f"each pushed once, written {[1 + k % 2 for k in range(3)]} times: {heard}"
