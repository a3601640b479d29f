"""The clients on the real hub 4.0.0: every transport x identity kind, async (asyncio, trio) and sync.

Also: policy denial, unanswered turns, silence, speech without an end signal, multi-part speech,
wrong credentials, and two identities asking at once on one hub.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from tests.live.live_support import KINDS, PROTOCOLS, echo_utterances, in_thread, need_protocol, tag, wait_until
from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.errors import (
    ThalovantAuthenticationError,
    ThalovantPolicyDenied,
    ThalovantTimeoutError,
)
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.sync.client import ThalovantClient

MATRIX = [(p, k) for p in PROTOCOLS for k in KINDS]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _spoken(text: str) -> Any:
    return lambda ev: ev.text == text


# ---- ask / emit / listen matrix -----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("protocol", "kind"), MATRIX)
async def test_async_ask_emit_listen(real_hub: Any, protocol: str, kind: str) -> None:
    need_protocol(real_hub, protocol)
    marker = tag(f"{protocol}-{kind}")
    async with AsyncThalovantClient.from_identity_file(real_hub.identity_path(kind), protocol=protocol) as client:
        reply = await client.ask(f"ask {marker}", timeout=10)
        assert reply.text == f"echo: ask {marker}"
        assert reply.handled and reply.ok and not reply.timed_out

        await client.emit("recognizer_loop:utterance", {"utterances": [f"emit {marker}"], "lang": "en-us"})
        assert await in_thread(wait_until, lambda: f"emit {marker}" in echo_utterances(real_hub), 10)

        pushed = f"push {marker}"
        listener = client.listen("speak", timeout=10, max_events=1, predicate=_spoken(pushed))
        peers = await in_thread(real_hub.push_event, "speak", {"utterance": pushed})
        assert peers, "the hub knew no connected peer"
        got: list[ThalovantEvent] = [ev async for ev in listener]
        assert [ev.text for ev in got] == [pushed]
        assert got[0].type == "speak"
        health = await client.healthcheck()
        assert health.connected and health.protocol == protocol and health.generation == 1


@pytest.mark.parametrize(("protocol", "kind"), MATRIX)
def test_sync_ask_emit_listen(real_hub: Any, protocol: str, kind: str) -> None:
    need_protocol(real_hub, protocol)
    marker = tag(f"sync-{protocol}-{kind}")
    with ThalovantClient.from_identity_file(real_hub.identity_path(kind), protocol=protocol) as client:
        reply = client.ask(f"ask {marker}", timeout=10)
        assert reply.text == f"echo: ask {marker}" and reply.ok

        client.emit("recognizer_loop:utterance", {"utterances": [f"emit {marker}"], "lang": "en-us"})
        assert wait_until(lambda: f"emit {marker}" in echo_utterances(real_hub), 10)

        pushed = f"push {marker}"
        events = client.listen("speak", timeout=10, max_events=1, predicate=_spoken(pushed))
        assert real_hub.push_event("speak", {"utterance": pushed})
        assert [ev.text for ev in events] == [pushed]
        assert client.healthcheck().connected


# ---- turn outcomes ------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_policy_denial_raises_with_clean_fields(real_hub: Any, protocol: str) -> None:
    need_protocol(real_hub, protocol)
    async with AsyncThalovantClient.from_identity_file(real_hub.identity_path("psk"), protocol=protocol) as client:
        with pytest.raises(ThalovantPolicyDenied) as caught:
            await client.ask("deny", timeout=10)
        err = caught.value
        assert err.code == "policy_denied"
        assert err.reason == "denied by the echo agent (utterance 'deny')"
        assert err.event is not None and err.event.type == "hive.policy.denied"
        identity = real_hub.identity("psk")
        for secret in (identity["access_key"], identity["password"], identity["crypto_key"]):
            assert secret not in str(err) and secret not in repr(err)
        # the client is still usable after a denial
        assert (await client.ask("after deny", timeout=10)).text == "echo: after deny"


@pytest.mark.anyio
@pytest.mark.parametrize("command", ["fail", "unmatched"])
async def test_fail_and_unmatched_are_unanswered(real_hub: Any, command: str) -> None:
    async with AsyncThalovantClient.from_identity_file(real_hub.identity_path("psk"), protocol="wss") as client:
        started = time.monotonic()
        reply = await client.ask(command, timeout=10)
        assert time.monotonic() - started < 5, "the end signal should finish the ask, not its timeout"
        assert reply.unanswered and not reply.ok and not reply.timed_out
        assert reply.text == ""


@pytest.mark.anyio
async def test_silent_times_out_with_typed_error(real_hub: Any) -> None:
    async with AsyncThalovantClient.from_identity_file(real_hub.identity_path("psk"), protocol="wss") as client:
        started = time.monotonic()
        with pytest.raises(ThalovantTimeoutError):
            await client.ask("silent", timeout=1.0)
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 3.0
        assert (await client.ask("after silence", timeout=10)).text == "echo: after silence"


@pytest.mark.anyio
async def test_speech_without_end_signal_keeps_the_speech(real_hub: Any) -> None:
    """``silent`` gets no answer; the agent is then told to speak into that turn without ending it."""
    async with AsyncThalovantClient.from_identity_file(real_hub.identity_path("psk"), protocol="wss") as client:
        rid = f"rid-{tag('partial')}"

        async def speak_into_turn() -> None:
            entry = await in_thread(lambda: _wait_utterance(real_hub, "silent", rid))
            context = dict(entry["context"])
            await in_thread(
                lambda: real_hub.agent_emit(
                    "speak", {"utterance": "partial answer"}, context, peer=context.get("source")
                )
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(speak_into_turn)
            reply = await client.ask("silent", request_id=rid, timeout=1.5)
        assert reply.timed_out and not reply.handled
        assert reply.text == "partial answer"


def _wait_utterance(hub: Any, text: str, rid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for entry in hub.echo_log(msg_type="recognizer_loop:utterance"):
            ctx = entry.get("context") or {}
            if (entry.get("data") or {}).get("utterances") == [text] and rid in str(ctx):
                return dict(entry)
        time.sleep(0.05)
    raise TimeoutError(f"the echo agent never saw {text!r} with request id {rid}")


@pytest.mark.anyio
async def test_multi_joins_both_speaks(real_hub: Any) -> None:
    async with AsyncThalovantClient.from_identity_file(real_hub.identity_path("psk"), protocol="https") as client:
        reply = await client.ask("multi", timeout=10)
        assert reply.utterances == ("echo: multi (1/2)", "echo: multi (2/2)")
        assert reply.text == "echo: multi (1/2) echo: multi (2/2)"
        assert reply.handled


# ---- credentials --------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https"])
async def test_wrong_password_fails_fast_without_endless_retry(real_hub: Any, protocol: str) -> None:
    identity = real_hub.identity("password")
    identity["password"] = "not-the-password-" + "0" * 15
    client = AsyncThalovantClient(identity, protocol=protocol, connect_timeout=20)
    started = time.monotonic()
    with pytest.raises(ThalovantAuthenticationError) as caught:
        await client.connect()
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"auth refusal took {elapsed:.1f}s"
    assert identity["password"] not in str(caught.value)
    assert identity["access_key"] not in str(caught.value)
    assert not client.connected


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["wss", "https"])  # over MQTT the broker login is the key itself
async def test_unknown_access_key_is_an_authentication_error(real_hub: Any, protocol: str) -> None:
    identity = real_hub.identity("password")
    identity["access_key"] = "f" * len(identity["access_key"])
    client = AsyncThalovantClient(identity, protocol=protocol, connect_timeout=20)
    started = time.monotonic()
    with pytest.raises((ThalovantAuthenticationError,)):
        await client.connect()
    assert time.monotonic() - started < 10


# ---- two identities on one hub --------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_two_identities_see_only_their_own_replies(real_hub: Any, protocol: str) -> None:
    need_protocol(real_hub, protocol)
    a_path, b_path = real_hub.identity_path("psk"), real_hub.identity_path("psk2")
    async with (
        AsyncThalovantClient.from_identity_file(a_path, protocol=protocol) as a,
        AsyncThalovantClient.from_identity_file(b_path, protocol=protocol) as b,
    ):
        heard: dict[str, list[str]] = {"a": [], "b": []}
        replies: dict[str, list[str]] = {"a": [], "b": []}

        async def watch(name: str, listener: Any) -> None:
            async for ev in listener:
                heard[name].append(ev.text)

        async def asks(name: str, client: AsyncThalovantClient) -> None:
            for n in range(5):
                replies[name].append((await client.ask(f"{name} turn {n}", timeout=10)).text)

        async with anyio.create_task_group() as tg:
            # listeners are registered by listen() itself, before the first ask
            tg.start_soon(watch, "a", a.listen("speak", timeout=30))
            tg.start_soon(watch, "b", b.listen("speak", timeout=30))
            started = time.monotonic()
            async with anyio.create_task_group() as inner:
                inner.start_soon(asks, "a", a)
                inner.start_soon(asks, "b", b)
            took = time.monotonic() - started
            await anyio.sleep(0.3)  # a reply routed to the wrong client would arrive by now
            tg.cancel_scope.cancel()
        print(f"\n[isolation {protocol}] 2 clients x 5 concurrent asks in {took:.2f}s")
        for name in ("a", "b"):
            expected = [f"echo: {name} turn {n}" for n in range(5)]
            assert replies[name] == expected
            assert heard[name] == expected, f"{name} heard {heard[name]}"
