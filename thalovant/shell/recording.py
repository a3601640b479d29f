"""Record a live client session to a trace file, and replay such a file.

Theory of operation
-------------------
A client given ``trace=TraceWriter(path)`` hands this module its
:class:`~thalovant.core.client.connection.ConnectionConfig` when it connects; the
writer puts a header line (machine ``"connection"`` and the encoded config)
into the file and returns a step recorder that the runtime's driver calls for
every step of the :class:`~thalovant.core.client.connection.Connection` machine.
Each step is written and flushed at once, so a session that is killed still
leaves a replayable prefix.

:func:`replay_file` rebuilds a fresh Connection from the header, feeds it the
recorded inputs at the recorded times with the recorded entropy, and returns
:func:`thalovant.core.replay.replay`'s report (identical, or the first
divergence).

Secrets: the machine's config and its orders (e.g. the WebSocket URL) hold
the identity's credentials, and a replay needs them, so a trace file carries
them. Files are created with mode 0600; record with throwaway identities.
:func:`redact` hides the header's secret values in anything shown to a user.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from returns.result import Failure

from thalovant.core.client import connection as cx
from thalovant.core.client.recorded import MACHINE_NAME, build_connection, connection_header, connection_registry
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Entropy
from thalovant.core.replay import ReplayReport, replay
from thalovant.core.trace import (
    JSON,
    Recorder,
    TraceHeader,
    TraceProblem,
    load_header,
)
from thalovant.core.wire.auth import authorization_token
from thalovant.shell.driver import StepRecorder

__all__ = [
    "MACHINE_NAME",
    "TraceSink",
    "TraceWriter",
    "build_connection",
    "connection_registry",
    "header_secrets",
    "read_trace_lines",
    "redact",
    "replay_file",
]

_SECRET_FIELDS = ("access_key", "password", "crypto_key")


class TraceSink(Protocol):
    """What a client needs to record its session (``AsyncThalovantClient(trace=...)``)."""

    def begin(self, config: cx.ConnectionConfig) -> StepRecorder:
        """Start a trace for a machine built from ``config``; returns the driver's recorder."""


class TraceWriter:
    """Writes one live session of a client to ``path`` (JSON Lines, mode 0600).

    Args:
        path: the trace file (replaced if it exists).

    Attributes:
        steps: the number of steps written so far.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._out: IO[str] | None = None
        self._recorder: Recorder | None = None

    def __repr__(self) -> str:
        return f"<TraceWriter {str(self.path)!r} open={self._out is not None}>"

    @property
    def steps(self) -> int:
        return 0 if self._recorder is None else len(self._recorder.lines) - 1

    def begin(self, config: cx.ConnectionConfig) -> StepRecorder:
        """Create the file, write the header and return the step recorder.

        Raises:
            LocalProtocolError: this writer already holds a session (one trace per connect).
            OSError: the file cannot be created.
        """
        if self._recorder is not None:
            raise LocalProtocolError("a TraceWriter records one session; use a new one per connect")
        header = connection_header(config, secrets="inline")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.chmod(self.path, 0o600)  # an existing file keeps its mode under O_CREAT
        self._out = os.fdopen(fd, "w", encoding="utf-8")
        self._recorder = Recorder(header, on_line=self._write)
        return self._recorder

    def _write(self, line: str) -> None:
        if self._out is not None and not self._out.closed:
            self._out.write(line + "\n")
            self._out.flush()

    def close(self) -> None:
        """Close the file. Idempotent; steps after this are kept in memory only."""
        if self._out is not None and not self._out.closed:
            self._out.close()


def read_trace_lines(path: str | os.PathLike[str]) -> list[str]:
    """The lines of a trace file.

    Raises:
        OSError: the file cannot be read.
        UnicodeDecodeError: the file is not UTF-8.
    """
    return Path(path).expanduser().read_text(encoding="utf-8").splitlines()


def header_secrets(lines: list[str]) -> tuple[str, ...]:
    """The secret values a trace's header carries (to :func:`redact` them from anything shown)."""
    if not lines:
        return ()
    header = load_header(lines[0])
    if isinstance(header, Failure):
        return ()
    config = header.unwrap().config.get("connection")
    found: list[str] = []
    if isinstance(config, Mapping):
        for name in _SECRET_FIELDS:
            value = config.get(name)
            if isinstance(value, str) and len(value) >= 4:
                found.append(value)
        key, agent = config.get("access_key"), config.get("useragent")
        if isinstance(key, str) and key and isinstance(agent, str):
            try:
                token = authorization_token(agent, key)
            except LocalProtocolError:
                token = ""
            if token:
                found += [token, urllib.parse.quote(token, safe=""), token.rstrip("=")]
    return tuple(found)


def redact(value: JSON, secrets: Iterable[str]) -> str:
    """``value`` as compact JSON with every secret (and its base64 token forms) replaced by ``***``."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def replay_file(path: str | os.PathLike[str]) -> tuple[ReplayReport, tuple[str, ...]]:
    """Replay a recorded session into a fresh machine.

    Returns:
        The replay report and the header's secrets (for :func:`redact`).

    Raises:
        OSError: the file cannot be read.
    """
    try:
        lines = read_trace_lines(path)
    except UnicodeDecodeError:
        return ReplayReport(False, 0, problem=TraceProblem("bad-header", "the file is not UTF-8 text")), ()
    secrets = header_secrets(lines)
    registry = connection_registry()

    def build(header: TraceHeader, entropy: Entropy) -> Any:
        return build_connection(header, entropy, registry)

    try:
        report = replay(lines, build, registry=registry)
    except LocalProtocolError as exc:
        report = ReplayReport(False, 0, problem=TraceProblem("bad-header", str(exc)))
    return report, secrets
