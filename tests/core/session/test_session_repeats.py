"""A hub frame received twice is delivered once (hub 4.x can write one WebSocket frame twice)."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.handshake.test_v3 import FakeNoiseHub
from tests.core.session.test_session_pair import CRYPTO_KEY, FakeHub, ready_psk_session, tape
from thalovant.core.machine import Note, NoteLevel
from thalovant.core.session.machine import (
    Deliver,
    FrameReceived,
    LinkOpened,
    SendFrame,
    Session,
    SessionFailed,
    SessionState,
)
from thalovant.core.session.repeats import RepeatWindow
from thalovant.core.wire.codec import decode_json, encode_json
from thalovant.core.wire.message import HiveMessage, MsgType


def _texts(outs: list[object]) -> list[str]:
    return [o.message.payload["data"]["utterance"] for o in outs if isinstance(o, Deliver)]  # type: ignore[index]


def test_a_v1_frame_received_twice_is_delivered_once_and_the_session_stays_up() -> None:
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    s = ready_psk_session(hub)
    frame = hub.say("once")
    assert _texts(s.handle(FrameReceived(data=frame), now=1.0)) == ["once"]
    again = s.handle(FrameReceived(data=frame), now=1.0)
    assert not [o for o in again if isinstance(o, Deliver)]
    assert [o.level for o in again if isinstance(o, Note)] == [NoteLevel.WARNING]
    assert "twice" in again[0].text  # type: ignore[attr-defined]
    assert s.state is SessionState.READY
    # the same text sealed again (a new nonce) is a new message: delivered
    assert _texts(s.handle(FrameReceived(data=hub.say("once")), now=1.1)) == ["once"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=11), min_size=1, max_size=40))
def test_any_interleaving_of_copies_delivers_each_frame_once_in_first_arrival_order(picks: list[int]) -> None:
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    s = ready_psk_session(hub)
    frames = [hub.say(f"m{i}") for i in range(12)]
    delivered: list[str] = []
    for i in picks:
        delivered += _texts(s.handle(FrameReceived(data=frames[i]), now=2.0))
    assert delivered == [f"m{i}" for i in dict.fromkeys(picks)]
    assert s.state is SessionState.READY


def test_a_v3_frame_received_twice_is_delivered_once_instead_of_breaking_the_noise_session() -> None:
    psk = hashlib.sha256(b"pretend-argon2").digest()
    hub = FakeNoiseHub(password_psk=psk, seed=b"session-repeats")
    offered = hub.offer()
    s = Session(
        session_id="sess-v3",
        useragent="UA/1",
        entropy=tape(7),
        password="correct horse battery staple",
        v3_options={"static_key": hashlib.sha256(b"client").digest(), "psk": psk},
    )
    s.handle(LinkOpened(), now=0.0)
    s.handle(FrameReceived(data=encode_json(hub.hello)), now=0.1)
    (msg1,) = [o for o in s.handle(FrameReceived(data=encode_json(offered)), now=0.2) if isinstance(o, SendFrame)]
    assert isinstance(msg1.data, str)
    msg2 = hub.on_shake(decode_json(msg1.data).unwrap(), offered)
    assert msg2 is not None
    outs = s.handle(FrameReceived(data=encode_json(msg2)), now=0.3)
    hub.on_shake(decode_json(next(o for o in outs if isinstance(o, SendFrame)).data).unwrap(), offered)  # type: ignore[arg-type]
    assert s.state is SessionState.READY and hub.channel is not None
    reply = HiveMessage(msg_type=MsgType.BUS, payload={"type": "speak", "data": {"utterance": "hi"}, "context": {}})
    (frame,) = hub.channel.seal(reply)
    assert s.handle(FrameReceived(data=frame), now=1.0) == [Deliver(message=reply)]
    again = s.handle(FrameReceived(data=frame), now=1.0)
    assert not [o for o in again if isinstance(o, (Deliver, SessionFailed))]
    assert s.state is SessionState.READY
    (after,) = hub.channel.seal(reply)
    assert s.handle(FrameReceived(data=after), now=1.1) == [Deliver(message=reply)]


def test_the_window_is_bounded_and_forgets_the_oldest() -> None:
    window = RepeatWindow(size=3)
    for frame in ("a", "b", "c", "a"):
        window.remember(frame)
    assert len(window) == 3 and window.seen("a")
    window.remember("d")
    assert not window.seen("a") and all(window.seen(f) for f in "bcd") and len(window) == 3
    assert repr(window) == "RepeatWindow(size=3, held=3)"


@given(st.lists(st.one_of(st.text(), st.binary()), max_size=50), st.integers(min_value=1, max_value=8))
def test_any_frames_never_raise_and_never_exceed_the_window(frames: list[str | bytes], size: int) -> None:
    window = RepeatWindow(size=size)
    for frame in frames:
        window.remember(frame)
        assert window.seen(frame) and len(window) <= size
    assert not window.seen("\ud800" + "never remembered")


def test_a_text_frame_and_a_binary_frame_with_the_same_bytes_are_different_frames() -> None:
    window = RepeatWindow()
    window.remember("abc")
    assert not window.seen(b"abc")
