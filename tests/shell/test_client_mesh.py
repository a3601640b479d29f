"""Mesh API of the clients against the in-memory hub: sends, on_hive, reply, query, refusals (shell/client_mesh.py)."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from thalovant import (
    AsyncThalovantClient,
    ThalovantArgumentError,
    ThalovantClient,
    ThalovantConnectionError,
    ThalovantEvent,
    ThalovantHiveMessage,
    ThalovantHiveRefusedError,
    ThalovantQueryNotSupportedError,
    ThalovantQueryRefusedError,
)
from thalovant.core.bus.hive import as_envelope
from thalovant.core.bus.query import QueryChunk, QueryComplete
from thalovant.core.client import connection as cx
from thalovant.core.wire.message import HiveMessage, MsgType
from thalovant.testing import MemoryHub

KEY = "mesh-access-key-not-shown"
IDENTITY = {
    "access_key": KEY,
    "password": "mesh-password-not-shown",
    "default_master": "https://hub.example.invalid",
    "site_id": "kitchen",
}


class _Frames(list[HiveMessage]):
    """The non-bus frames the fake hub received (it ignores them otherwise); ``await first()`` waits for one."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived: anyio.Event | None = None

    def add(self, message: HiveMessage) -> None:
        self.append(message)
        if self._arrived is not None:
            self._arrived.set()

    async def first(self) -> HiveMessage:
        if not self:
            self._arrived = anyio.Event()
            with anyio.fail_after(2):
                await self._arrived.wait()
        return self[0]


def _frames(hub: MemoryHub) -> _Frames:
    seen = _Frames()
    fake = hub.hub
    assert fake is not None
    opened = fake._open

    def recording(link: Any, frame: Any) -> HiveMessage | None:
        message = opened(link, frame)
        if message is not None and message.bus() is None and message.msg_type.value not in ("hello", "shake"):
            seen.add(message)
        return message

    fake._open = recording  # type: ignore[method-assign]
    return seen


@pytest.fixture
def quiet_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-memory hub answers no QUERY (the test delivers the answers itself, or none)."""
    monkeypatch.setattr("thalovant.testing.hub.query_answers", lambda *args, **kwargs: [])


def _deliver(client: AsyncThalovantClient, message: HiveMessage) -> None:
    client._engine.results(cx.FrameDelivered(message=message))


def _bus(msg_type: str, data: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
    return as_envelope(HiveMessage(msg_type=MsgType.BUS, payload={"type": msg_type, "data": data,
                                                                 "context": context or {}}))


@pytest.mark.parametrize("kind", ["propagate", "escalate", "broadcast"])
def test_a_wrapper_goes_out_as_the_spec_frame(kind: str) -> None:
    async def scenario() -> _Frames:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            seen = _frames(hub)
            await getattr(client, kind)("x.y", {"n": 1}, {"k": "v"}, target_site_id="den", confirm=0)
            await seen.first()
        return seen

    (frame,) = anyio.run(scenario)
    assert frame.msg_type.value == kind and frame.target_site_id == "den"
    inner = frame.payload
    assert isinstance(inner, dict) and inner["msg_type"] == "bus" and inner["payload"]["type"] == "x.y"
    assert inner["payload"]["context"]["k"] == "v" and inner["payload"]["context"]["session"]["site_id"] == "kitchen"


def test_a_4003_after_the_frame_is_a_typed_refusal_raised_at_once() -> None:
    async def scenario() -> tuple[ThalovantHiveRefusedError, float]:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            seen = _frames(hub)

            async def refuse() -> None:
                await seen.first()
                hub.close_link(4003, "BROADCAST is not allowed for this client")

            started = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(refuse)
                with pytest.raises(ThalovantHiveRefusedError) as caught:
                    await client.broadcast("x.y", confirm=2.0)
            return caught.value, anyio.current_time() - started

    error, took = anyio.run(scenario)
    assert (error.kind, error.code, error.reason) == ("broadcast", 4003, "BROADCAST is not allowed for this client")
    assert took < 1.0  # not the whole confirm window (the client reconnects: tests/shell/test_mesh_refusal.py)
    assert KEY not in str(error)


def test_a_quiet_hub_lets_the_send_return_after_confirm() -> None:
    async def scenario() -> float:
        async with AsyncThalovantClient(IDENTITY, transport=MemoryHub(generation=3), protocol="wss") as client:
            started = anyio.current_time()
            await client.propagate("x.y", confirm=0.3)
            return anyio.current_time() - started

    assert 0.3 <= anyio.run(scenario) < 0.5


def test_bad_arguments_are_typed() -> None:
    async def scenario() -> None:
        async with AsyncThalovantClient(IDENTITY, transport=MemoryHub(), protocol="wss") as client:
            with pytest.raises(ThalovantArgumentError, match="confirm"):
                await client.propagate("x", confirm=-1)
            with pytest.raises(ThalovantArgumentError, match="target_site_id"):
                await client.escalate("x", target_site_id=3)  # type: ignore[arg-type]
            with pytest.raises(ThalovantArgumentError, match="kind"):
                client.on_hive("bus", print)
            with pytest.raises(ThalovantArgumentError, match="msg_type"):
                await client.propagate("  ")

    anyio.run(scenario)


def test_on_hive_dispatches_by_kind_scrubs_the_key_and_drops_loops() -> None:
    async def scenario() -> tuple[list[tuple[str, str]], list[ThalovantHiveMessage], int]:
        got: list[tuple[str, str]] = []
        every: list[ThalovantHiveMessage] = []
        async with AsyncThalovantClient(IDENTITY, transport=MemoryHub(), protocol="wss") as client:
            sub = client.on_hive("propagate", lambda h: got.append((h.kind, str(h.type))))

            async def also(h: ThalovantHiveMessage) -> None:
                every.append(h)

            client.on_hive("*", also)
            peer = client.connection_info().hub_peer
            route = ({"source": f"{KEY}::9::other::s", "targets": []},)
            _deliver(client, HiveMessage(msg_type=MsgType.PROPAGATE, payload=_bus("a.b", {"x": KEY}), route=route))
            _deliver(client, HiveMessage(msg_type=MsgType.BROADCAST, payload=_bus("c.d", {})))
            _deliver(client, HiveMessage(msg_type=MsgType.PROPAGATE, payload=_bus("loop", {}),
                                         route=({"source": str(peer), "targets": []},)))
            _deliver(client, HiveMessage(msg_type=MsgType.PROPAGATE, payload={"garbage": True}))
            await anyio.sleep(0.1)
            sub.close()
            sub.close()  # idempotent
            _deliver(client, HiveMessage(msg_type=MsgType.PROPAGATE, payload=_bus("after", {})))
            await anyio.sleep(0.1)
            return got, every, sub.handled

    got, every, handled = anyio.run(scenario)
    assert got == [("propagate", "a.b")] and handled == 1
    assert [h.type for h in every] == ["a.b", "c.d", "after"]  # the loop and the garbage were dropped
    assert every[0].data["x"] == "<access-key>" and every[0].route[0].source.startswith("<access-key>")


def test_reply_swaps_source_and_destination() -> None:
    async def scenario() -> Any:
        hub = MemoryHub()
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            event = ThalovantEvent("speak", {"utterance": "hi"}, {"source": "hive", "destination": "me", "r": 1})
            await client.reply(event, "my.answer", {"ok": True})
            with pytest.raises(ThalovantArgumentError, match="event"):
                await client.reply(ThalovantHiveMessage(kind="rendezvous"), "x")
        return hub.received[-1]

    sent = anyio.run(scenario)
    assert sent.type == "my.answer" and sent.data == {"ok": True}
    assert (sent.context["source"], sent.context["destination"], sent.context["r"]) == ("me", "hive", 1)


@pytest.mark.usefixtures("quiet_queries")
def test_query_streams_chunks_until_complete() -> None:
    async def scenario() -> tuple[Any, _Frames]:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            seen = _frames(hub)

            async def answer() -> None:
                await seen.first()
                qid = seen[0].metadata["query_id"]
                meta = {"query_id": qid, "is_response": True, "responder_peer": "hub"}
                for inner in (_bus("speak", {"utterance": "one"}), _bus("speak", {"utterance": "two"}),
                              _bus("hive.query.complete", {})):
                    _deliver(client, HiveMessage(msg_type=MsgType.QUERY, payload=inner, metadata=meta))
                # an answer to another query and one after the end are ignored
                _deliver(client, HiveMessage(msg_type=MsgType.QUERY, payload=_bus("speak", {"utterance": "x"}),
                                             metadata={**meta, "query_id": "other"}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(answer)
                result = await client.query("what", timeout=2)
        return result, seen

    result, seen = anyio.run(scenario)
    assert result.chunks == ("one", "two") and result.text == "one two" and result.complete
    assert not result.unanswered and not result.timed_out and result.responder_peers == ("hub",)
    assert seen[0].msg_type is MsgType.QUERY and seen[0].payload["payload"]["data"]["utterances"] == ["what"]


@pytest.mark.usefixtures("quiet_queries")
def test_query_stream_yields_answers_and_a_silent_hub_is_unanswered() -> None:
    async def scenario() -> tuple[list[Any], Any, float]:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            seen = _frames(hub)
            answers = []

            async def answer() -> None:
                await seen.first()
                meta = {"query_id": seen[0].metadata["query_id"], "is_response": True}
                _deliver(client, HiveMessage(msg_type=MsgType.QUERY, payload=_bus("speak", {"utterance": "a"}),
                                             metadata=meta))
                _deliver(client, HiveMessage(msg_type=MsgType.QUERY, payload=_bus("hive.query.complete", {}),
                                             metadata=meta))

            async with anyio.create_task_group() as tg:
                tg.start_soon(answer)
                async for item in client.query_stream("hi", timeout=2):
                    answers.append(item)
            started = anyio.current_time()
            silent = await client.query("nobody", timeout=0.3)
            return answers, silent, anyio.current_time() - started

    answers, silent, took = anyio.run(scenario)
    assert answers == [QueryChunk("a"), QueryComplete()]
    assert silent.unanswered and silent.timed_out and silent.chunks == () and 0.3 <= took < 0.5


@pytest.mark.usefixtures("quiet_queries")
def test_query_refused_and_not_supported() -> None:
    async def refused() -> ThalovantQueryRefusedError:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            seen = _frames(hub)

            async def close() -> None:
                await seen.first()
                hub.close_link(4003, "QUERY is not allowed for this client")

            async with anyio.create_task_group() as tg:
                tg.start_soon(close)
                with pytest.raises(ThalovantQueryRefusedError) as caught:
                    await client.query("x", timeout=3)
            return caught.value

    error = anyio.run(refused)
    assert (error.kind, error.code) == ("query", 4003)

    async def v1() -> None:
        async with AsyncThalovantClient(IDENTITY, transport=MemoryHub(generation=1), protocol="wss") as client:
            with pytest.raises(ThalovantQueryNotSupportedError):
                await client.query("x")

    anyio.run(v1)


@pytest.mark.usefixtures("quiet_queries")
def test_a_lost_link_during_a_query_is_a_connection_error() -> None:
    async def scenario() -> None:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss", auto_reconnect=False) as client:
            seen = _frames(hub)

            async def drop() -> None:
                await seen.first()
                hub.drop_link()

            async with anyio.create_task_group() as tg:
                tg.start_soon(drop)
                with pytest.raises(ThalovantConnectionError):
                    await client.query("x", timeout=3)

    anyio.run(scenario)


@pytest.mark.usefixtures("quiet_queries")
def test_the_blocking_client_mirrors_the_mesh_api() -> None:
    hub = MemoryHub(generation=3)
    got: list[str] = []
    done = threading.Event()
    with ThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
        seen = _frames(hub)
        sub = client.on_hive("broadcast", lambda h: (got.append(str(h.type)), done.set()))
        client._portal.call_sync(_deliver, client.async_client,
                                 HiveMessage(msg_type=MsgType.BROADCAST, payload=_bus("hello", {})))
        assert done.wait(2)
        sub.close()
        client.escalate("x.y", confirm=0)
        client.propagate("x.y", confirm=0)
        client.broadcast("x.y", confirm=0)
        assert list(client.query_stream("q", timeout=0.1)) == []
        assert client.query("q", timeout=0.1).unanswered
    assert got == ["hello"]
    assert [f.msg_type.value for f in seen] == ["escalate", "propagate", "broadcast", "query", "query"]


@pytest.mark.usefixtures("quiet_queries")
def test_a_conversation_query_carries_its_session_and_language() -> None:
    async def scenario() -> tuple[Any, _Frames, str]:
        hub = MemoryHub(generation=3)
        async with AsyncThalovantClient(IDENTITY, transport=hub, protocol="wss") as client:
            seen = _frames(hub)
            async with client.conversation(lang="pt-pt", context={"room": "den"}) as convo:
                result = await convo.query("olá", timeout=0.2)
            return result, seen, convo.session_id

    result, seen, session_id = anyio.run(scenario)
    inner = seen[0].payload["payload"]
    assert result.unanswered and inner["data"]["lang"] == "pt-pt" and inner["context"]["room"] == "den"
    assert inner["context"]["session"]["session_id"] == session_id


@pytest.mark.usefixtures("quiet_queries")
def test_the_blocking_conversation_query() -> None:
    with ThalovantClient(IDENTITY, transport=MemoryHub(generation=3), protocol="wss") as client:
        with client.conversation() as convo:
            assert convo.query("x", timeout=0.1).unanswered


def test_the_in_memory_hub_answers_queries_like_hub_5() -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        async with AsyncThalovantClient(IDENTITY, transport=MemoryHub(generation=3), protocol="wss") as client:
            return (await client.query("multi", timeout=2), await client.query("silent", timeout=2),
                    await client.query("Hello there", timeout=2))

    multi, silent, hello = anyio.run(scenario)
    assert multi.chunks == ("echo: multi (1/2)", "echo: multi (2/2)") and multi.complete
    assert silent.unanswered and not silent.timed_out and not silent.complete
    assert hello.text == "echo: Hello there" and hello.responder_peers


@pytest.mark.parametrize("generation", [1, 3])
def test_a_frame_routed_through_this_client_under_its_session_name_is_a_loop(generation: int) -> None:
    """Hubs rename a peer after HELLO (hub 5.x: from a uuid of its own to our session id); both forms are ours."""

    async def scenario() -> list[str | None]:
        got: list[str | None] = []
        async with AsyncThalovantClient(IDENTITY, transport=MemoryHub(generation=generation), protocol="wss") as c:
            c.on_hive("*", lambda h: got.append(h.type))
            hello_peer = str(c.connection_info().hub_peer)
            ours = f"{hello_peer.rsplit('::', 1)[0]}::{c.session_id}"
            for source, msg_type in ((ours, "loop"), ("someone::else", "fine")):
                route = ({"source": source, "targets": []},)
                _deliver(c, HiveMessage(msg_type=MsgType.PROPAGATE, payload=_bus(msg_type, {}), route=route))
            await anyio.sleep(0.1)
        return got

    assert anyio.run(scenario) == ["fine"]
