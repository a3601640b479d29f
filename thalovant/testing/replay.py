"""Record a whole client session (a ``Connection``) in memory, and replay such a recording.

Theory of operation
-------------------
:class:`RecordingConnection` wraps a :class:`~thalovant.core.client.connection.Connection`
whose entropy is a :class:`~thalovant.core.trace.RecordingEntropy`; every
``handle`` call is written as one trace step by a core
:class:`~thalovant.core.trace.Recorder` (no IO: the lines stay in memory;
:meth:`RecordingConnection.text` gives the file content). The header has
the same shape as the shell's ``TraceWriter`` (machine ``"connection"``,
the encoded ``ConnectionConfig`` under ``config.connection``), so
:func:`replay_connection` replays cassettes from either.

:func:`replay_connection` rebuilds a fresh Connection from the header and
feeds it the recorded inputs, times and entropy draws
(:func:`thalovant.core.replay.replay`); the report says ``ok`` or where the
first difference is. Cassettes carry the identity's credentials (a replay
needs them): record only with throwaway identities.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from typing import Protocol

from thalovant.core.client import connection as cx
from thalovant.core.client.recorded import MACHINE_NAME, build_connection, connection_header, connection_registry
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Entropy, Input, Output
from thalovant.core.replay import ReplayReport, replay
from thalovant.core.trace import (
    Recorder,
    RecordingEntropy,
    TraceProblem,
)

__all__ = ["MACHINE_NAME", "RecordingConnection", "ReplayReport", "connection_registry", "replay_connection"]



class RecordingConnection:
    """A Connection that records every step (drop-in for ``pump`` and ``run_until``).

    Args:
        config: the connection's config (its credentials end up in the recording: use throwaway ones).
        entropy: the real entropy source; its draws are recorded.
        note: a line for the header's ``secrets`` field (where the credentials come from).
    """

    def __init__(self, *, config: cx.ConnectionConfig, entropy: Entropy, note: str = "inline") -> None:
        self._entropy = RecordingEntropy(entropy)
        self.connection = cx.Connection(config=config, entropy=self._entropy)
        self.recorder = Recorder(connection_header(config, secrets=note), entropy=self._entropy)

    def __repr__(self) -> str:
        return f"<RecordingConnection steps={len(self.recorder.lines) - 1} {self.connection!r}>"

    @property
    def state(self) -> enum.Enum:
        return self.connection.state

    @property
    def deadline(self) -> float | None:
        return self.connection.deadline

    @property
    def finished(self) -> bool:
        return self.connection.finished

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed the connection and record the step (a raising call is not recorded)."""
        try:
            outputs = self.connection.handle(inp, now=now)
        except LocalProtocolError:
            self._entropy.take()
            raise
        self.recorder.record_step(now, inp, outputs, self.connection.deadline)
        return outputs

    @property
    def lines(self) -> list[str]:
        """The trace lines so far (header first)."""
        return list(self.recorder.lines)

    def text(self) -> str:
        """The trace as file content (JSON Lines, newline-terminated)."""
        return "".join(line + "\n" for line in self.recorder.lines)


class _Readable(Protocol):
    def read_text(self, encoding: str) -> str: ...


def replay_connection(source: str | Iterable[str] | _Readable) -> ReplayReport:
    """Replay a recorded client session against a fresh Connection.

    Args:
        source: a ``pathlib.Path`` of the cassette, the cassette's text (a ``str`` holding the whole
            file) or its lines. This module opens nothing itself: a path is read with its own
            ``read_text``.

    Returns:
        ``ReplayReport(ok=True, steps=n)``, or the first divergence / problem. Never raises (an
        unreadable path is reported as a problem).
    """
    if hasattr(source, "read_text"):
        try:
            source = source.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return ReplayReport(False, 0, problem=TraceProblem("bad-header", f"cannot read the cassette: {exc}"))
    if isinstance(source, str):
        lines = source.splitlines()
        if len(lines) == 1 and not source.lstrip().startswith("{"):
            detail = "a str is the cassette's text; pass a pathlib.Path to read a file"
            return ReplayReport(False, 0, problem=TraceProblem("bad-header", detail))
    else:
        lines = list(source)
    registry = connection_registry()
    try:
        return replay(lines, functools.partial(build_connection, registry=registry), registry=registry)
    except LocalProtocolError as exc:
        return ReplayReport(False, 0, problem=TraceProblem("bad-header", str(exc)))
