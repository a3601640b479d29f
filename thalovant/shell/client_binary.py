"""The binary half of ``AsyncThalovantClient``: audio, files and TTS clips (BINARY frames, spec §1.4).

:class:`ClientBinary` is mixed into :class:`~thalovant.shell.client.AsyncThalovantClient`.

Receiving: :meth:`ClientBinary.listen_binary` (an async iterator) and :meth:`ClientBinary.on_binary` (a
handler) get each BINARY frame the hub sends as a :class:`~thalovant.ThalovantBinary`, through bounded
inboxes (:mod:`thalovant.shell.binary_inbox`). Frames over :attr:`ClientBinary.max_binary_bytes` are
dropped with a warning naming their size.

Sending: :meth:`ClientBinary.send_binary`, :meth:`ClientBinary.send_audio` and :meth:`ClientBinary.send_file`
check everything first (typed errors, nothing sent), then hand the frame to the connection's outbox and
return once the transport took it, or raise (as ``emit`` does). A hub 4.x cannot take binary frames over
HTTP polling: there the send raises :class:`~thalovant.ThalovantBinaryUnsupportedError` before anything is
sent. Hub 5.x takes them on every transport.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio

from thalovant.core.bus.binary import (
    MAX_BINARY_BYTES,
    ThalovantBinary,
    audio_metadata,
    binary_message,
    check_cap,
    file_metadata,
    kind_of,
    outgoing_binary,
)
from thalovant.core.client import connection as cx
from thalovant.core.errors import (
    LocalProtocolError,
    ThalovantArgumentError,
    ThalovantArgumentTypeError,
    ThalovantBinaryUnsupportedError,
    ThalovantPayloadTooLargeError,
)
from thalovant.shell.arguments import check_seconds
from thalovant.shell.binary_inbox import (
    BINARY_BUFFER_BYTES,
    BinaryHandler,
    BinaryInbox,
    BinaryListener,
    BinarySubscription,
)
from thalovant.shell.engine import ClientEngine
from thalovant.shell.listeners import ListenerRegistry
from thalovant.shell.outcomes import SendEnded, raise_for

__all__ = ["HUB4_WS_MAX_PAYLOAD", "ClientBinary", "read_capped"]

_NO_BINARY = "this transport cannot carry binary frames"

#: The largest payload a hub 4.x takes in one WebSocket message: tornado closes the link (1009) above
#: 10 MiB, and a sealed BINARY frame adds its header, metadata, nonce and tag (measured: NOTES.md).
HUB4_WS_MAX_PAYLOAD = 10 * 1024 * 1024 - 512


def _kinds(kind: str | int | Iterable[str | int] | None) -> frozenset[str] | None:
    """The kind names a reader wants (None: every kind)."""
    if kind is None:
        return None
    if isinstance(kind, str | int):
        wanted: list[object] = [kind]
    elif isinstance(kind, Iterable) and not isinstance(kind, bytes | bytearray | memoryview | Mapping):
        wanted = list(kind)
    else:
        raise ThalovantArgumentTypeError("kind", f"must be a kind, a list of kinds or None, not {type(kind).__name__}")
    names = set()
    for one in wanted:
        checked = outgoing_binary(b"", one)  # the same kind rules as sending (typed errors)
        names.add(checked.kind)
    return frozenset(names)


def read_capped(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file at ``path``, refusing one over ``limit`` before reading it all.

    Raises:
        ThalovantArgumentError: ``path`` is not a readable regular file.
        ThalovantPayloadTooLargeError: the file is over ``limit`` bytes.
    """
    if not os.path.isfile(path):  # checked first: opening a FIFO would block
        raise ThalovantArgumentError("path", "is not a regular file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ThalovantArgumentError("path", f"cannot be read ({type(exc).__name__})") from None
    if len(data) > limit:
        raise ThalovantPayloadTooLargeError("path", size=max(len(data), os.path.getsize(path)), limit=limit)
    return data


class ClientBinary:
    """Binary frames both ways (see the module docstring)."""

    _listeners: ListenerRegistry
    _engine: ClientEngine
    send_timeout: float
    protocol: str
    _max_binary_bytes: int = MAX_BINARY_BYTES
    _binary_inbox: BinaryInbox | None = None

    async def connect(self) -> None:  # pragma: no cover - the client's
        raise NotImplementedError

    async def _first_use(self) -> None:  # pragma: no cover - the client's
        raise NotImplementedError

    @property
    def max_binary_bytes(self) -> int:
        """The cap on one binary frame, both ways (default 16 MiB): larger sends raise
        :class:`~thalovant.ThalovantPayloadTooLargeError`, larger received frames are dropped with a warning.

        Settable (an int from 1 to 1 GiB).
        """
        return self._max_binary_bytes

    @max_binary_bytes.setter
    def max_binary_bytes(self, value: int) -> None:
        self._max_binary_bytes = check_cap("max_binary_bytes", value)

    def _inbox(self) -> BinaryInbox:
        inbox = self._binary_inbox
        if inbox is None:  # made on first use, on the event loop; frames before any reader have none
            inbox = self._binary_inbox = BinaryInbox(self._listeners, lambda: self._max_binary_bytes)
            self._engine.results.frame_handlers.append(inbox)
        return inbox

    # ---- receiving ------------------------------------------------------------------------------

    def listen_binary(
        self,
        kind: str | int | Iterable[str | int] | None = None,
        *,
        timeout: float | None = None,
        max_events: int | None = None,
        buffer: int = 256,
        buffer_bytes: int = BINARY_BUFFER_BYTES,
    ) -> BinaryListener:
        """Iterate over the binary frames the hub sends (``async for clip in client.listen_binary("tts_audio")``).

        ``kind``: a kind (``"tts_audio"``, ``"file"`` ...), several, or None for all. Iteration ends quietly at
        ``timeout`` (seconds, in total) or after ``max_events``; it raises ``ThalovantConnectionError`` if the
        client is closed or gives up. ``buffer`` and ``buffer_bytes`` bound the unread frames (the oldest are
        dropped). A client that is not connected yet connects when the listener is first iterated.

        Raises:
            ThalovantArgumentError, ThalovantArgumentTypeError: a bad kind, timeout or bound.
        """
        kinds = _kinds(kind)
        if timeout is not None:
            check_seconds("timeout", timeout, zero=True)
        if max_events is not None and (isinstance(max_events, bool) or not isinstance(max_events, int)):
            raise ThalovantArgumentTypeError("max_events", "must be an int")
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ThalovantArgumentError("buffer", "must be an int of at least 1")
        check_cap("buffer_bytes", buffer_bytes)
        connect = self.connect if self._engine.runtime is None else None
        inbox = self._inbox()
        listener = BinaryListener(
            inbox,
            kinds,
            timeout=timeout,
            max_events=max_events,
            buffer=buffer,
            buffer_bytes=buffer_bytes,
            connect=connect,
        )
        return inbox.add(listener)

    def on_binary(
        self,
        handler: BinaryHandler,
        kind: str | int | Iterable[str | int] | None = None,
        *,
        _call: Callable[[BinaryHandler, ThalovantBinary], Awaitable[Any]] | None = None,
    ) -> BinarySubscription:
        """Call ``handler(binary)`` for each binary frame (of ``kind``, see :meth:`listen_binary`) until closed.

        The handler may be a plain function or a coroutine function; frames reach it one at a time, in order.
        A handler that raises is logged and kept. Returns the subscription (``.close()``, ``.handled``).

        Raises:
            LocalProtocolError: the client is not connected (use it inside ``async with client``).
        """
        if not callable(handler):
            raise ThalovantArgumentTypeError("handler", "must be callable")
        tg = self._engine.task_group
        if tg is None:
            raise LocalProtocolError("on_binary() needs a connected client (inside 'async with client')")
        subscription = BinarySubscription(self.listen_binary(kind), handler, call=_call)
        tg.start_soon(subscription.run)
        return subscription

    # ---- sending --------------------------------------------------------------------------------

    async def send_binary(
        self, data: bytes, kind: str | int = "file", metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Send ``data`` as one BINARY frame of ``kind`` with ``metadata`` (a JSON object of at most 255 bytes).

        Returns once the transport took the frame.

        Raises:
            ThalovantPayloadTooLargeError: ``data`` is over :attr:`max_binary_bytes`, or over what the hub takes
                in one message (a hub 4.x over WebSocket: 10 MiB less 512 bytes); nothing is sent.
            ThalovantArgumentError, ThalovantArgumentTypeError: a bad kind or metadata (nothing sent).
            ThalovantBinaryUnsupportedError: the connection cannot carry binary frames (HTTP to a hub 4.x).
            ThalovantConnectionError: the frame could not be delivered (link lost, closed).
            ThalovantTimeoutError: not handed to the hub within ``send_timeout``.
        """
        binary = outgoing_binary(data, kind, metadata, max_bytes=self._max_binary_bytes)
        await self._first_use()
        if self.protocol == "https" and self._engine.generation == 1:
            raise ThalovantBinaryUnsupportedError(
                "a hub 4.x cannot receive binary frames over HTTP polling: use wss or mqtt", protocol=self.protocol
            )
        if self.protocol == "wss" and self._engine.generation == 1 and len(binary.data) > HUB4_WS_MAX_PAYLOAD:
            raise ThalovantPayloadTooLargeError("data", size=len(binary.data), limit=HUB4_WS_MAX_PAYLOAD)
        sent = await self._engine.send(binary_message(binary), self.send_timeout)
        if isinstance(sent, cx.SendError) and sent.kind == "refused" and sent.reason == _NO_BINARY:
            raise ThalovantBinaryUnsupportedError(f"{_NO_BINARY} ({self.protocol})", protocol=self.protocol)
        raise_for(SendEnded(result=sent, wait=self.send_timeout))

    async def send_audio(
        self,
        pcm: bytes,
        *,
        sample_rate: int = 16000,
        sample_width: int = 2,
        lang: str | None = None,
        kind: str = "raw_audio",
    ) -> None:
        """Send PCM audio (little-endian, mono; ``sample_width`` bytes a sample) as one BINARY frame.

        ``kind``: ``"raw_audio"`` (microphone input), ``"stt_audio_transcribe"`` (transcribe it) or
        ``"stt_audio_handle"`` (transcribe and handle it as an utterance); ``lang``: the speech's language.
        What the hub does with it depends on its binary-data plugin (none by default: it logs and ignores).

        Raises:
            As :meth:`send_binary`; ThalovantArgumentError for a bad rate, width, lang or kind.
        """
        metadata = audio_metadata(kind=kind, sample_rate=sample_rate, sample_width=sample_width, lang=lang)
        await self.send_binary(pcm, kind, metadata)

    async def send_file(self, source: str | os.PathLike[str] | bytes, file_name: str | None = None) -> None:
        """Send a file (a path, or its bytes) as one FILE frame named ``file_name`` (default: the path's name).

        Only a plain name is sent, never a directory. A file over :attr:`max_binary_bytes` is refused before
        it is read whole.

        Raises:
            As :meth:`send_binary`; ThalovantArgumentError for an unreadable path, or bytes without ``file_name``.
        """
        if isinstance(source, bytes | bytearray | memoryview):
            if file_name is None:
                raise ThalovantArgumentError("file_name", "is required when sending bytes")
            data = bytes(source)
        elif isinstance(source, str | os.PathLike):
            name = Path(source).name if file_name is None else file_name
            file_metadata(name)  # a bad name fails before the file is read
            data = await anyio.to_thread.run_sync(read_capped, source, self._max_binary_bytes)
            file_name = name
        else:
            raise ThalovantArgumentTypeError("source", f"must be a path or bytes, not {type(source).__name__}")
        await self.send_binary(data, kind_of(3), file_metadata(file_name))
