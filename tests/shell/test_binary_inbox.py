"""``shell/binary_inbox.py``: the bounds of a binary inbox hold for any sequence of frames (property test)."""

from __future__ import annotations

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.bus.binary import binary_message, outgoing_binary
from thalovant.core.wire.message import HiveMessage, MsgType
from thalovant.shell.binary_inbox import BinaryInbox, BinaryListener
from thalovant.shell.listeners import ListenerRegistry

FRAMES = st.lists(
    st.tuples(st.integers(0, 3000), st.sampled_from(["tts_audio", "file", "raw_audio"])), min_size=0, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(frames=FRAMES, buffer=st.integers(1, 10), buffer_bytes=st.integers(1, 6000), cap=st.integers(1, 2500))
def test_an_inbox_never_holds_more_than_its_bounds(
    frames: list[tuple[int, str]], buffer: int, buffer_bytes: int, cap: int
) -> None:
    async def run() -> None:
        inbox = BinaryInbox(ListenerRegistry(), lambda: cap)
        listener = inbox.add(
            BinaryListener(inbox, frozenset({"tts_audio", "file"}), buffer=buffer, buffer_bytes=buffer_bytes)
        )
        wanted = newest = 0
        for size, kind in frames:
            inbox(binary_message(outgoing_binary(bytes(size), kind, max_bytes=10_000)))
            inbox(HiveMessage(msg_type=MsgType.BUS, payload={"type": "speak"}))  # not binary: ignored
            wanted += size <= cap and kind != "raw_audio"
            newest = size if size <= cap and kind != "raw_audio" else newest  # the newest kept frame may exceed it
            assert len(listener._buffer) <= buffer
            assert listener.buffered_bytes <= max(buffer_bytes, newest)
        assert listener.accepted == wanted and inbox.too_large == sum(size > cap for size, _ in frames)
        assert listener.dropped + len(listener._buffer) == wanted
        kept = [len(b.data) for b in listener._buffer]
        accepted = [size for size, kind in frames if size <= cap and kind != "raw_audio"]
        assert kept == accepted[len(accepted) - len(kept) :]  # the newest, in order: only the oldest are dropped

    anyio.run(run)
