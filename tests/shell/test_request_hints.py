"""Request hints and the opt-in ``ThalovantUnansweredError`` through the public clients (in-memory hub)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import thalovant
from thalovant import (
    AsyncThalovantClient,
    ThalovantArgumentError,
    ThalovantClient,
    ThalovantUnansweredError,
    build_location,
)
from thalovant.testing import MemoryHub

WAIT = 5.0
WHERE = build_location(latitude=38.7, longitude=-9.1, city="Lisbon", country_code="PT")


def identity() -> dict[str, Any]:
    return {
        "access_key": "hints-access-key-0123",
        "password": "hints-password-0123",
        "default_master": "https://hub.example.invalid",
        "site_id": "den",
        "protocols": {"wss": True},
    }


def _sent_context(hub: MemoryHub) -> dict[str, Any]:
    utterances = [m for m in hub.received if m.type == "recognizer_loop:utterance"]
    assert utterances
    return dict(utterances[-1].context)


@pytest.mark.parametrize("generation", [1, 3])
def test_the_blocking_client_and_conversation_send_the_hints(generation: int) -> None:
    hub = MemoryHub(generation=generation)  # 1: hub 4.x replaces context.session; 3: hub 5.x keeps it
    with ThalovantClient(identity(), transport=hub, protocol="wss") as client:
        reply = client.ask("hello", stt_lang="pt-PT", pipeline=["adapt_high"], location=WHERE, context={"k": 1})
        assert reply.text == "echo: hello" and reply.claimed is True and reply.pipeline_ids == ()
        ctx = _sent_context(hub)
        assert ctx["k"] == 1 and ctx["stt_lang"] == "pt-PT" and ctx["location"] == WHERE
        assert ctx["pipeline"] == ["adapt_high"] and ctx["request_id"] == reply.request_id
        if generation == 3:
            assert ctx["session"]["pipeline"] == ["adapt_high"] and ctx["session"]["location_preferences"] == WHERE
        with client.conversation() as convo:
            convo.ask("again", pipeline=["converse", "padatious_high"])
            ctx = _sent_context(hub)
            assert ctx["pipeline"] == ["converse", "padatious_high"] and "location" not in ctx
            if generation == 3:
                assert ctx["session"]["pipeline"] == ["converse", "padatious_high"]
        assert client.ask("plain").text == "echo: plain"
        assert "pipeline" not in _sent_context(hub)


def test_a_bad_hint_is_refused_before_anything_is_sent() -> None:
    hub = MemoryHub()
    with ThalovantClient(identity(), transport=hub, protocol="wss") as client:
        with pytest.raises(ThalovantArgumentError) as caught:
            client.ask("hello", pipeline="adapt_high")
        assert caught.value.argument == "pipeline"
        with pytest.raises(ThalovantArgumentError) as caught:
            client.ask("hello", location={"x": float("inf")})
        assert caught.value.argument == "location"
        with client.conversation() as convo, pytest.raises(TypeError):
            convo.ask("hello", pipelines=["x"])
        assert hub.received_types() == []


def test_unanswered_stays_a_flag_unless_asked_to_raise() -> None:
    hub = MemoryHub()
    with ThalovantClient(identity(), transport=hub, protocol="wss") as client:
        reply = client.ask("fail")  # 0.4.7 behaviour: a reply with a flag
        assert reply.unanswered and reply.claimed is False
        with pytest.raises(ThalovantUnansweredError) as caught:
            client.ask("  fail ", raise_unanswered=True)
        assert caught.value.said == "fail" and caught.value.reply.unanswered
        assert isinstance(caught.value, thalovant.ThalovantRuntimeError)
        assert client.ask("hello", raise_unanswered=True).text == "echo: hello"
        with client.conversation() as convo, pytest.raises(ThalovantUnansweredError):
            convo.ask("fail", raise_unanswered=True)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_the_async_client_and_conversation(anyio_backend: str) -> None:
    hub = MemoryHub()
    with anyio.fail_after(WAIT * 4):
        async with AsyncThalovantClient(identity(), transport=hub, protocol="wss") as client:
            reply = await client.ask("hi", stt_lang="en-GB", location=WHERE)
            assert reply.text == "echo: hi"
            ctx = _sent_context(hub)
            assert ctx["stt_lang"] == "en-GB" and ctx["location"] == WHERE
            async with client.conversation() as convo:
                with pytest.raises(ThalovantUnansweredError) as caught:
                    await convo.ask("fail", stt_lang="en-GB", raise_unanswered=True)
                assert caught.value.said == "fail" and _sent_context(hub)["stt_lang"] == "en-GB"
