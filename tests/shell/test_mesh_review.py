"""Review of the mesh code (issue 14): frames kept across a reconnect, bad arguments, query ids in use."""

from __future__ import annotations

import anyio
import pytest

from thalovant import AsyncThalovantClient, ThalovantArgumentError, ThalovantEvent, ThalovantTimeoutError
from thalovant.core.bus.query import QueryChunk, QueryComplete
from thalovant.core.wire.message import HiveMessage, MsgType
from thalovant.testing import MemoryHub

from .test_client_mesh import IDENTITY, _bus, _deliver, _frames, quiet_queries  # noqa: F401 (a fixture)


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


def test_data_json_cannot_carry_is_a_typed_error_and_the_client_lives_on() -> None:
    async def scenario() -> list[str]:
        async with AsyncThalovantClient(IDENTITY, transport=MemoryHub(generation=3), protocol="wss") as client:
            named = []
            calls = [
                lambda: client.propagate("x.y", {"a": object()}, confirm=0),  # was: the client's loop crashed
                lambda: client.broadcast("x.y", {"n": float("nan")}, confirm=0),
                lambda: client.escalate("x.y", None, 5, confirm=0),  # type: ignore[arg-type]
                lambda: client.emit("x.y", {"a": {1, 2}}),
                lambda: client.reply(ThalovantEvent("x"), "y", {"a": b"raw"}),
                lambda: client.propagate(5, confirm=0),  # type: ignore[arg-type]
                lambda: client.reply("not an event", "y"),  # type: ignore[arg-type]
                lambda: client.reply(ThalovantEvent("x"), ""),
            ]
            for call in calls:
                with pytest.raises(ThalovantArgumentError) as caught:
                    await call()
                named.append(caught.value.argument)
            await client.emit("still.alive")
            assert client.connected
            return named

    assert anyio.run(scenario) == ["data", "data", "context", "data", "data", "msg_type", "event", "msg_type"]


@pytest.mark.usefixtures("quiet_queries")
def test_bad_query_arguments_are_typed_errors_naming_the_field() -> None:
    async def scenario() -> list[str]:
        async with AsyncThalovantClient(IDENTITY, transport=MemoryHub(generation=3), protocol="wss") as client:
            named = []
            for kwargs in ({"text": ""}, {"text": 5}, {"text": "hi", "lang": 5}, {"text": "hi", "context": 5},
                           {"text": "hi", "context": {"a": object()}}):  # fmt: skip
                with pytest.raises(ThalovantArgumentError) as caught:
                    await client.query(**kwargs)
                named.append(caught.value.argument)
            return named

    assert anyio.run(scenario) == ["text", "text", "lang", "context", "context"]


@pytest.mark.usefixtures("quiet_queries")
def test_a_query_id_in_use_is_refused_and_the_running_query_keeps_its_answers() -> None:
    async def scenario() -> list[object]:
        async with AsyncThalovantClient(IDENTITY, transport=MemoryHub(generation=3), protocol="wss") as client:
            first = client.query_stream("one", query_id="q-same", timeout=2)
            got: list[object] = []

            async def consume() -> None:
                got.extend([a async for a in first])

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                with anyio.fail_after(1):
                    await anyio.wait_all_tasks_blocked()  # the first query is sent and waits for answers
                assert "q-same" in client._mesh().queries
                with pytest.raises(ThalovantArgumentError, match="query_id"):
                    async for _ in client.query_stream("two", query_id="q-same", timeout=2):
                        pass
                _deliver(client, HiveMessage(msg_type=MsgType.QUERY, payload=_bus("speak", {"utterance": "hi"}),
                                             metadata={"query_id": "q-same", "is_response": True}))  # fmt: skip
                _deliver(client, HiveMessage(msg_type=MsgType.QUERY, payload=_bus("hive.query.complete", {}),
                                             metadata={"query_id": "q-same", "is_response": True}))  # fmt: skip
            return got

    assert anyio.run(scenario) == [QueryChunk("hi"), QueryComplete()]  # was: the 2nd took its place, 1st got none


@pytest.mark.usefixtures("quiet_queries")
def test_a_query_timeout_holds_while_no_link_takes_the_frame_and_it_is_not_sent_late() -> None:
    async def scenario() -> tuple[float, int]:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            seen = _frames(hub)
            hub.drop_link()
            hub.corrupt_next(3)  # the reconnect takes well over a second
            started = anyio.current_time()
            with pytest.raises(ThalovantTimeoutError):
                await client.query("hi", timeout=0.3)  # was: returned after ~1.5 s (it waited send_timeout)
            took = anyio.current_time() - started
            with anyio.fail_after(5):
                while not client.connected:  # noqa: ASYNC110 - polls the public flag, bounded above
                    await anyio.sleep(0.05)
            await anyio.sleep(0.3)
            return took, len([f for f in seen if f.msg_type is MsgType.QUERY])

    took, late = anyio.run(scenario)
    assert took < 0.3 + 0.2 and late == 0
