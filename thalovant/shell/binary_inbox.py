"""Binary frames from the hub to their readers: bounded inboxes (:class:`BinaryListener`) and handlers.

The client's :class:`BinaryInbox` is one of the engine's ``Results.frame_handlers``: it runs on the event
loop thread for every non-bus frame, keeps the BINARY ones (:func:`~thalovant.core.bus.binary.binary_of`)
and offers each to every open :class:`BinaryListener` whose kind it is. It never blocks and never raises.

Bounds. A frame over the client's cap (``max_binary_bytes``) is dropped with a warning naming its size
(never its content). Each listener holds at most ``buffer`` frames and ``buffer_bytes`` bytes unread (the
newest frame is always kept); when its reader is slower than the hub the oldest unread frames are dropped
and counted in ``dropped`` (the first drop logs a warning). A :class:`BinarySubscription` reads one listener
and calls its handler one frame at a time, in order, on a task of the client (the blocking client: in a
worker thread), like :meth:`~thalovant.AsyncThalovantClient.on`.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from returns.result import Failure

from thalovant.core.bus.binary import MAX_BINARY_BYTES, ThalovantBinary, binary_of
from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.wire.message import HiveMessage, MsgType
from thalovant.shell.listeners import Listener, ListenerRegistry, Subscription, feed_handler

__all__ = ["BINARY_BUFFER_BYTES", "BinaryHandler", "BinaryInbox", "BinaryListener", "BinarySubscription"]

log = logging.getLogger("thalovant")

#: Bytes of binary frames one listener holds unread, by default (the newest frame is always kept).
BINARY_BUFFER_BYTES = 64 * 1024 * 1024

#: What ``on_binary`` calls: a function (or coroutine function) taking a :class:`ThalovantBinary`.
BinaryHandler = Callable[[ThalovantBinary], Any]


class BinaryListener:
    """One reader of binary frames (``async for clip in client.listen_binary()``); see the module docstring."""

    def __init__(
        self,
        inbox: BinaryInbox,
        kinds: frozenset[str] | None,
        *,
        timeout: float | None = None,
        max_events: int | None = None,
        buffer: int = 256,
        buffer_bytes: int = BINARY_BUFFER_BYTES,
        connect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._inbox = inbox
        self.kinds = kinds
        self._buffer: deque[ThalovantBinary] = deque()
        self._limit = buffer
        self._byte_limit = buffer_bytes
        self._bytes = 0
        self._wake = anyio.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._deadline = math.inf if timeout is None else anyio.current_time() + timeout
        self._left = max_events
        self._connect = connect
        self.dropped = 0
        self.accepted = 0

    def __repr__(self) -> str:
        kinds = sorted(self.kinds) if self.kinds is not None else "*"
        return f"<BinaryListener kinds={kinds!r} buffered={len(self._buffer)} dropped={self.dropped}>"

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the frames waiting unread."""
        return self._bytes

    def offer(self, binary: ThalovantBinary) -> None:
        """Keep ``binary`` if its kind is wanted; drop the oldest unread frames when over the bounds."""
        if self._closed or (self.kinds is not None and binary.kind not in self.kinds):
            return
        size = len(binary.data)
        self.accepted += 1
        while self._buffer and (len(self._buffer) >= self._limit or self._bytes + size > self._byte_limit):
            self._bytes -= len(self._buffer.popleft().data)
            self.dropped += 1
            if self.dropped == 1:
                log.warning("a binary reader is slower than the hub: its oldest frames are dropped (see .dropped)")
        self._buffer.append(binary)
        self._bytes += size
        self._wake.set()

    def fail(self, error: BaseException) -> None:
        """End the iteration with ``error`` (the client gave up or was closed)."""
        self._error = error
        self._wake.set()

    def close(self) -> None:
        """Stop listening; frames still unread are dropped. Idempotent."""
        if not self._closed:
            self._closed = True
            self._wake.set()
            self._inbox.remove(self)

    async def aclose(self) -> None:
        """Same as :meth:`close`, awaitable."""
        self.close()

    def __aiter__(self) -> BinaryListener:
        return self

    async def __anext__(self) -> ThalovantBinary:
        """The next frame; stops at the timeout, after ``max_events``, or on close."""
        connect, self._connect = self._connect, None
        if connect is not None:  # made before the client connected: the first wait connects it
            await connect()
        while not self._closed:
            if self._buffer and (self._left is None or self._left > 0):
                self._left = None if self._left is None else self._left - 1
                binary = self._buffer.popleft()
                self._bytes -= len(binary.data)
                return binary
            if self._error is not None:
                error, self._error = self._error, None
                self.close()
                raise error
            remaining = self._deadline - anyio.current_time()
            if (self._left is not None and self._left <= 0) or remaining <= 0:
                break
            self._wake = anyio.Event()
            with anyio.move_on_after(remaining):
                await self._wake.wait()
        self.close()
        raise StopAsyncIteration


class _FailRelay(Listener):
    """Sits in the client's event listeners to hear ``fail_all`` (close, give-up) for the binary listeners."""

    def __init__(self, registry: ListenerRegistry, inbox: BinaryInbox) -> None:
        super().__init__(registry, EventFilter(types=()))
        self._inbox = inbox

    def offer(self, event: ThalovantEvent, size: int | None = None) -> None:
        return None

    def fail(self, error: BaseException) -> None:
        self._inbox.fail_all(error)


class BinaryInbox:
    """The binary frames of one client: its frame handler and its listeners (see the module docstring).

    Args:
        listeners: the client's event listeners (their ``fail_all`` also ends the binary listeners).
        max_bytes: how the per-frame cap is read (the client's ``max_binary_bytes``).
    """

    def __init__(self, listeners: ListenerRegistry, max_bytes: Callable[[], int] = lambda: MAX_BINARY_BYTES) -> None:
        self._listeners: list[BinaryListener] = []
        self._max_bytes = max_bytes
        self.received = 0
        self.too_large = 0
        listeners.add(_FailRelay(listeners, self))

    def add(self, listener: BinaryListener) -> BinaryListener:
        self._listeners.append(listener)
        return listener

    def remove(self, listener: BinaryListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def fail_all(self, error: BaseException) -> None:
        for listener in list(self._listeners):
            listener.fail(error)

    def __call__(self, message: HiveMessage) -> None:
        """A frame handler (``Results.frame_handlers``): keep BINARY frames, ignore the others."""
        if message.msg_type is not MsgType.BINARY:
            return
        result = binary_of(message, max_bytes=self._max_bytes())
        if isinstance(result, Failure):
            self.too_large += 1
            log.warning("binary frame dropped: %s", result.failure().reason)  # sizes only, never content
            return
        binary = result.unwrap()
        self.received += 1
        for listener in list(self._listeners):
            listener.offer(binary)


class BinarySubscription(Subscription):
    """A handler attached to binary frames until :meth:`close` (like :class:`~thalovant.ThalovantSubscription`)."""

    def __init__(
        self,
        listener: BinaryListener,
        handler: BinaryHandler,
        *,
        call: Callable[[BinaryHandler, ThalovantBinary], Awaitable[Any]] | None = None,
    ) -> None:
        self.event_name = "binary" if listener.kinds is None else ",".join(sorted(listener.kinds))
        self._binary_call = call
        self._binaries = listener
        self._binary_handler = handler
        self.handled = 0
        self.failed = 0
        self.closer: Callable[[Callable[[], None]], None] | None = None

    async def run(self) -> None:
        """Feed frames to the handler until closed (runs in the client's task group)."""
        await feed_handler(self, self._binaries, self._binary_handler, self._binary_call, "binary handler")

    def close(self) -> None:
        """Detach the handler. Idempotent; safe from any thread of a blocking client."""
        if self.closer is not None:
            self.closer(self._binaries.close)
        else:
            self._binaries.close()
