"""The CLI's spinner line: a thread that redraws one stderr line while something slow runs."""

from __future__ import annotations

import sys
import threading

from thalovant.core import render

__all__ = ["Progress"]


class Progress:
    """A spinner line on stderr while something slow runs (terminals only; thread-based)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._label: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def set(self, label: str | None) -> None:
        """Show ``label`` (None: clear the line)."""
        if not self.enabled:
            return
        with self._lock:
            self._label = label
            if label is None:
                sys.stderr.write(render.SPINNER_CLEAR)
                sys.stderr.flush()
        if label is not None and self._thread is None:
            self._thread = threading.Thread(target=self._spin, name="thalovant-progress", daemon=True)
            self._thread.start()

    def _spin(self) -> None:
        frame = 0
        while not self._done.wait(0.1):
            with self._lock:
                if self._label is not None:
                    sys.stderr.write(render.spinner_line(frame, self._label))
                    sys.stderr.flush()
            frame += 1

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self.set(None)
        self.enabled = False
