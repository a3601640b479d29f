"""Speech audio with the answer through the public clients and the in-memory hub (which renders ``speak:synth``)."""

from __future__ import annotations

import base64
import io
import time
import wave
from typing import Any

import anyio
import pytest

from thalovant import AsyncThalovantClient, ThalovantClient
from thalovant.core.wire.message import BusMessage
from thalovant.testing import MemoryHub

WAIT = 5.0


def identity(*protocols: str) -> dict[str, Any]:
    return {
        "access_key": "audio-access-key-0123",
        "password": "audio-password-0123",
        "default_master": "https://hub.example.invalid",
        "site_id": "den",
        "protocols": {p: True for p in protocols or ("wss",)},
    }


def is_wav(data: bytes) -> bool:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnframes() > 0


@pytest.mark.parametrize(("generation", "protocol"), [(1, "wss"), (1, "https"), (1, "mqtt"), (3, "wss")])
def test_the_blocking_client_gets_text_and_audio_together(generation: int, protocol: str) -> None:
    hub = MemoryHub(generation=generation)
    ident = identity(protocol)
    if protocol == "mqtt":
        ident["mqtt"] = {"endpoint": "mqtts://broker.invalid", "username": "u", "password": "broker-pw"}
        ident["mqtt"]["topic_prefix"] = "hivemind/den-hub"
    with ThalovantClient(ident, transport=hub, protocol=protocol, reply_timeout=WAIT) as client:
        reply = client.ask("multi", synth=True)
        assert reply.text == "echo: multi (1/2) echo: multi (2/2)" and reply.ok
        assert [clip.utterance for clip in reply.audio] == list(reply.utterances)
        assert all(clip.kind == "tts_audio" and is_wav(clip.data) for clip in reply.audio)
        assert reply.has_audio and reply.missing_audio == () and reply.dropped_media == 0
        assert hub.received_types().count("speak:synth") == 2
        synth = [m for m in hub.received if m.type == "speak:synth"]
        assert synth[0].context["request_id"] == reply.request_id and synth[0].data["lang"] == "en-us"
        assert reply.as_dict()["audio"][0]["bytes"] == len(reply.audio[0].data)


def test_without_synth_nothing_is_requested_and_no_audio_comes() -> None:
    hub = MemoryHub()
    with ThalovantClient(identity(), transport=hub) as client:
        reply = client.ask("hello")
        assert reply.text == "echo: hello" and reply.audio == () and not reply.has_audio
        assert "speak:synth" not in hub.received_types()


def test_the_async_client_and_conversation_take_synth() -> None:
    async def main() -> None:
        hub = MemoryHub(generation=3)  # hub 5.x keeps the client's context.session (4.x rewrites it)
        async with AsyncThalovantClient(identity(), transport=hub, reply_timeout=WAIT) as client:
            reply = await client.ask("hello", synth=True)
            assert [c.utterance for c in reply.audio] == ["echo: hello"]
            async with client.conversation() as convo:
                turn = await convo.ask("again", synth=True)
                assert [c.utterance for c in turn.audio] == ["echo: again"]
                synth = [m for m in hub.received if m.type == "speak:synth"]
                assert synth[-1].context["session"]["session_id"] == convo.session_id

    anyio.run(main)


def test_a_hub_that_refuses_synth_still_answers_with_text_at_once() -> None:
    hub = MemoryHub(generation=3, denied_types=["speak:synth"])  # hub 5.x without the ACL entry
    with ThalovantClient(identity(), transport=hub, reply_timeout=WAIT) as client:
        t0 = time.monotonic()
        reply = client.ask("hello", synth=True)
        assert reply.text == "echo: hello" and reply.ok and reply.audio == ()
        assert reply.missing_audio == ("echo: hello",)
        assert time.monotonic() - t0 < WAIT / 2  # the refusal released the wait


def test_a_hub_that_never_renders_ends_the_ask_at_its_timeout_with_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("thalovant.testing.hub.speech_frames", lambda *args: [])  # hub 4.x drops speak:synth

    async def main() -> float:
        async with AsyncThalovantClient(identity(), transport=MemoryHub()) as client:
            t0 = anyio.current_time()
            reply = await client.ask("hello", synth=True, timeout=0.6)
            assert reply.text == "echo: hello" and reply.handled and not reply.timed_out
            assert reply.audio == () and reply.missing_audio == ("echo: hello",)
            return anyio.current_time() - t0

    assert 0.55 <= anyio.run(main) < 0.8


def _with_a_sound(request: BusMessage) -> list[BusMessage]:
    """A skill that speaks and queues a sound (inline, as HiveMind's agent plugin carries it)."""
    context = {**request.context, "destination": request.context.get("source"), "source": "skills"}
    sound = {"binary_data": base64.b64encode(b"RIFF-ding").decode("ascii"), "filename": "ding.wav"}
    return [
        BusMessage(type="speak", data={"utterance": "ding"}, context=context),
        BusMessage(type="mycroft.audio.queue", data=sound, context=context),
        BusMessage(type="ovos.utterance.handled", data={}, context=context),
    ]


def test_skill_sounds_of_the_turn_come_as_media_events() -> None:
    hub = MemoryHub(behaviours={"ring": _with_a_sound})
    with ThalovantClient(identity(), transport=hub) as client:
        reply = client.ask("ring")
        assert reply.text == "ding" and reply.has_audio and reply.audio == ()
        (event,) = reply.media_events
        assert event.type == "mycroft.audio.queue" and event.audio_bytes() == b"RIFF-ding"
        assert reply.as_dict()["media_events"] == [
            {"type": "mycroft.audio.queue", "uri": None, "filename": "ding.wav", "inline_bytes": 9}
        ]


def test_the_blocking_conversation_takes_synth() -> None:
    with ThalovantClient(identity(), transport=MemoryHub(), reply_timeout=WAIT) as client:
        with client.conversation() as convo:
            turn = convo.ask("again", synth=True)
            assert [c.utterance for c in turn.audio] == ["echo: again"] and turn.ok


def test_a_synth_request_that_cannot_be_queued_leaves_no_pending_send() -> None:
    async def scenario() -> tuple[str, int]:
        async with AsyncThalovantClient(identity(), transport=MemoryHub(), noise_key_file=False) as client:
            runtime = client._engine.runtime
            assert runtime is not None
            post = runtime.post_nowait

            def full_for_synth(inp: Any) -> bool:  # the client's inbox is full when the synth request comes
                if getattr(getattr(inp, "message", None), "type", None) == "speak:synth":
                    raise anyio.WouldBlock
                return post(inp)

            runtime.post_nowait = full_for_synth  # type: ignore[method-assign]
            reply = await client.ask("hello", synth=True, timeout=0.5)
            return reply.text, len(client._engine.results._sends)

    assert anyio.run(scenario) == ("echo: hello", 0)
