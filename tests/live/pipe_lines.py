"""Wait for a line a child process writes to a pipe, reading the pipe's file descriptor itself.

Why not ``select([proc.stderr]) + proc.stderr.readline()``: ``readline()`` on a text pipe reads a
whole chunk from the descriptor into the ``TextIOWrapper``'s buffer and returns only its first
line. When a child writes two lines at once (the CLI logs "handshake: ..." and "connected to the
hub" 1 ms apart), the second one waits in that buffer, and ``select`` on the descriptor, which
knows nothing of the buffer, reports nothing more until the child writes again: the waiter sees a
line the child wrote long ago only at its deadline (the flaky
``test_listen_interrupted_by_sigint_exits_130``, 3 runs in 30). :class:`PipeLines` reads with
``os.read`` and splits the lines itself, so whatever it read is what it has seen.
"""

from __future__ import annotations

import os
import select
import time
from typing import IO, Any

__all__ = ["PipeLines"]


class PipeLines:
    """The complete lines read so far from ``stream`` (a child's ``stdout`` or ``stderr`` pipe).

    Read only through this object: a read through ``stream`` itself would buffer lines it never sees.
    ``proc.communicate()`` afterwards returns what was not read yet.
    """

    def __init__(self, stream: IO[Any]) -> None:
        self._fd = stream.fileno()
        self._pending = b""
        self.lines: list[str] = []
        self.closed = False

    def seen(self, text: str) -> bool:
        """A line read so far contains ``text``."""
        return any(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float) -> bool:
        """Read (bounded by ``timeout`` seconds) until a line contains ``text``; False at the deadline or EOF."""
        deadline = time.monotonic() + timeout
        while not self.seen(text):
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return False
            ready, _, _ = select.select([self._fd], [], [], min(left, 0.5))
            if ready:
                self._read()
        return True

    def _read(self) -> None:
        chunk = os.read(self._fd, 65536)
        if not chunk:
            self.closed = True
            chunk = b"\n" if self._pending else b""
        *done, self._pending = (self._pending + chunk).split(b"\n")
        self.lines += [line.decode(errors="replace") for line in done]
