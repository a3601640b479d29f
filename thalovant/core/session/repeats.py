"""Frames the hub sent twice: a bounded window of digests of the frames a session opened.

Theory of operation
-------------------
No hub legitimately sends the same sealed frame twice: protocol v1 seals each
message under a fresh random nonce, and v3 (Noise) under a counter, so two equal
ciphertexts are one frame delivered twice. That happens on real hubs: hub 4.x
writes to a client's WebSocket from its bus threads as well as its IO loop, and
tornado's write buffer is not thread-safe, so two writers can both send the same
buffered bytes (the hub then logs an ``AssertionError`` from the buffer's
``advance``). See ``tests/harness/NOTES.md``.

:class:`RepeatWindow` remembers a 16-byte BLAKE2b digest of the last
:data:`WINDOW` frames that opened; :meth:`~RepeatWindow.seen` answers before a
frame is opened, :meth:`~RepeatWindow.remember` records it once it opened (a
frame that does not open ends the session anyway). Memory is bounded by the
window, whatever the peer sends. Pure: no clock, no IO.
"""

from __future__ import annotations

import hashlib
from collections import deque

from thalovant.core.wire.frame import Frame

__all__ = ["WINDOW", "RepeatWindow"]

#: How many recent frames are remembered per session (a copy arrives right after its original).
WINDOW = 512


def _digest(frame: Frame) -> bytes:
    data = frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else bytes(frame)
    kind = b"t" if isinstance(frame, str) else b"b"
    return hashlib.blake2b(kind + data, digest_size=16).digest()


class RepeatWindow:
    """Digests of the last ``size`` frames remembered; ``seen`` tells a repeat of one of them."""

    def __init__(self, size: int = WINDOW) -> None:
        if size < 1:
            raise ValueError("a repeat window holds at least one frame")
        self._size = size
        self._order: deque[bytes] = deque()
        self._digests: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"RepeatWindow(size={self._size}, held={len(self._order)})"

    def seen(self, frame: Frame) -> bool:
        """Whether ``frame`` is byte for byte one of the remembered frames."""
        return _digest(frame) in self._digests

    def remember(self, frame: Frame) -> None:
        """Remember ``frame``; the oldest is forgotten when the window is full."""
        digest = _digest(frame)
        if digest in self._digests:
            return
        self._order.append(digest)
        self._digests.add(digest)
        if len(self._order) > self._size:
            self._digests.discard(self._order.popleft())
