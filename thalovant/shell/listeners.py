"""Event fan-out: listeners (async iterators) and subscriptions (handlers).

Every bus event the hub delivers is offered to each registered listener
whose :class:`~thalovant.core.bus.events.EventFilter` (plus optional predicate)
accepts it. Listeners live in the client, not in a link, so they survive
reconnects by construction: a new link simply delivers into the same
listeners.

Overflow policy. A listener buffers up to ``buffer`` events and up to
``buffer_bytes`` of them (their JSON size, :func:`~thalovant.core.jsontree.weight`;
the newest event is always kept); when its consumer is slower than the hub, the
oldest buffered events are dropped to make room and counted (``dropped``); the
first drop logs one warning per listener, later ones are only counted. Nothing
blocks the connection, and an event no listener accepts is not kept anywhere.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any, Protocol

import anyio

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.jsontree import weight

log = logging.getLogger("thalovant")

#: Bytes of events one listener holds unread, by default (the newest event is always kept).
BUFFER_BYTES = 16 * 1024 * 1024

EventPredicate = Callable[[ThalovantEvent], bool]
EventHandler = Callable[[ThalovantEvent], Any]


def event_weight(event: ThalovantEvent) -> int:
    """About how many bytes ``event`` takes as JSON (type, data and context)."""
    return weight((event.type, event.data, event.context))


class Listener:
    """One consumer of events. Iterate it with ``async for``."""

    def __init__(
        self,
        registry: ListenerRegistry,
        flt: EventFilter,
        *,
        predicate: EventPredicate | None = None,
        timeout: float | None = None,
        max_events: int | None = None,
        buffer: int = 1000,
        buffer_bytes: int = BUFFER_BYTES,
    ) -> None:
        self._registry = registry
        self.filter = flt
        self._predicate = predicate
        self._buffer: deque[tuple[ThalovantEvent, int]] = deque()
        self._limit = buffer
        self._byte_limit = buffer_bytes
        self._bytes = 0
        self._wake = anyio.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._deadline = math.inf if timeout is None else anyio.current_time() + timeout
        self._left = max_events
        self.dropped = 0
        self.accepted = 0  # events accepted so far (buffered, then taken or dropped)
        self.settled = 0  # of those, the ones the consumer is done with (came back for more) or that were dropped
        self.awaited = False  # a subscription's: its consumer always comes back (see settle)
        self._taken_out = False
        self._progress = anyio.Event()

    def __repr__(self) -> str:
        return f"<Listener types={self.filter.types!r} buffered={len(self._buffer)} dropped={self.dropped}>"

    @property
    def buffered(self) -> int:
        """How many accepted events wait unread (at most ``buffer``)."""
        return len(self._buffer)

    @property
    def buffered_bytes(self) -> int:
        """About how many bytes the unread events take (at most ``buffer_bytes``, or the newest one's)."""
        return self._bytes

    def offer(self, event: ThalovantEvent, size: int | None = None) -> None:
        """Buffer ``event`` if the filter and the predicate accept it (a predicate that raises rejects it).

        When the buffer is full (in events or in bytes) the oldest buffered events are dropped and counted in
        ``dropped`` (the first drop logs a warning; later ones are only counted). ``size``: the event's
        :func:`~thalovant.core.jsontree.weight`, when the caller measured it already.
        """
        if self._closed or not self.filter.accepts(event):
            return
        if self._predicate is not None:
            try:
                if not self._predicate(event):
                    return
            except Exception:  # a user predicate must not break delivery to others
                log.exception("event predicate raised; event skipped for this listener")
                return
        if size is None:
            size = event_weight(event)
        self.accepted += 1
        while self._buffer and (len(self._buffer) >= self._limit or self._bytes + size > self._byte_limit):
            self._bytes -= self._buffer.popleft()[1]
            self.dropped += 1
            self._settle_one()
            if self.dropped == 1:
                log.warning(
                    "listener %r is slower than the hub: its oldest events are dropped (counted in .dropped)",
                    self.filter.types,
                )
        self._buffer.append((event, size))
        self._bytes += size
        self._wake.set()

    def _settle_one(self) -> None:
        self.settled += 1
        self._progress.set()
        self._progress = anyio.Event()

    async def settle(self, count: int) -> None:
        """Return once ``count`` accepted events are settled (handled or dropped) or the listener closed."""
        while self.settled < count and not self._closed:
            await self._progress.wait()

    def fail(self, error: BaseException) -> None:
        """End the iteration with ``error`` (e.g. the client gave up connecting)."""
        self._error = error
        self._wake.set()

    def close(self) -> None:
        """Stop listening and end the iteration (events still buffered are not delivered). Idempotent."""
        if not self._closed:
            self._closed = True
            self._wake.set()
            self._progress.set()
            self._registry.remove(self)

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> ThalovantEvent:
        """Next matching event; stops at the timeout, after ``max_events``, or on close."""
        if self._taken_out:  # the consumer came back: it is done with the last one
            self._taken_out = False
            self._settle_one()
        while True:
            if self._buffer and not self._closed:
                if self._left is not None:
                    if self._left <= 0:
                        break
                    self._left -= 1
                self._taken_out = True
                event, size = self._buffer.popleft()
                self._bytes -= size
                return event
            if self._error is not None:
                error, self._error = self._error, None
                self.close()
                raise error
            if self._closed or (self._left is not None and self._left <= 0):
                break
            remaining = self._deadline - anyio.current_time()
            if remaining <= 0:
                break
            self._wake = anyio.Event()
            with anyio.move_on_after(remaining):
                await self._wake.wait()
        self.close()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Same as :meth:`close`, awaitable (for ``contextlib.aclosing``)."""
        self.close()


def event_filter(event: str | EventFilter, session_id: str | None, request_id: str | None) -> EventFilter:
    """``event`` as a filter: a filter as it is, a type name (``"*"``: all) narrowed by the ids given."""
    if isinstance(event, EventFilter):
        return event
    return EventFilter(types=(event,), session_id=session_id, request_id=request_id)


class ListenerRegistry:
    """All listeners of one client."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def __len__(self) -> int:
        return len(self._listeners)

    def add(self, listener: Listener) -> Listener:
        self._listeners.append(listener)
        return listener

    def remove(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def publish(self, event: ThalovantEvent) -> None:
        size = event_weight(event) if self._listeners else 0
        for listener in list(self._listeners):
            listener.offer(event, size)

    def fail_all(self, error: BaseException) -> None:
        for listener in list(self._listeners):
            listener.fail(error)


class HandlerCounts(Protocol):
    """What :func:`feed_handler` counts on: a subscription's ``handled`` and ``failed``."""

    handled: int
    failed: int


async def feed_handler(
    counts: HandlerCounts,
    items: AsyncIterable[Any],
    handler: Callable[[Any], Any],
    call: Callable[[Any, Any], Awaitable[Any]] | None,
    what: str,
) -> None:
    """Run ``handler`` on each of ``items``, one at a time, in order, until they end.

    ``call(handler, item)`` runs it when given (the blocking client: a worker thread); else it is called
    here and awaited if it returns an awaitable. A handler that raises is logged (``what`` names it) and
    counted in ``counts.failed``; the feed goes on.
    """
    async for item in items:
        try:
            if call is not None:
                await call(handler, item)
            else:
                result = handler(item)
                if inspect.isawaitable(result):
                    await result
            counts.handled += 1
        except Exception:
            counts.failed += 1
            log.exception("%s raised; the subscription keeps running", what)


class Subscription:
    """A handler attached to an event type until :meth:`close`.

    Handlers run one event at a time, in arrival order, on a task of the
    client. A handler that raises is logged and the subscription keeps going.
    Use it as a context manager to close it automatically.
    """

    def __init__(
        self,
        listener: Listener,
        handler: EventHandler,
        event_name: str,
        *,
        call: Callable[[EventHandler, ThalovantEvent], Awaitable[Any]] | None = None,
    ) -> None:
        self.event_name = event_name
        self.call = call
        self._listener = listener
        listener.awaited = True
        self._handler = handler
        self.handled = 0
        self.failed = 0
        #: How a blocking client runs :meth:`close` on its event loop's thread (None: right here).
        self.closer: Callable[[Callable[[], None]], None] | None = None

    def __repr__(self) -> str:
        return f"<Subscription {self.event_name!r} handled={self.handled} failed={self.failed}>"

    async def run(self) -> None:
        """Feed events to the handler until closed (runs in the client's task group)."""
        await feed_handler(self, self._listener, self._handler, self.call, f"handler for {self.event_name!r}")

    def close(self) -> None:
        """Detach the handler. Idempotent; safe from any thread of a blocking client."""
        if self.closer is not None:
            self.closer(self._listener.close)
        else:
            self._listener.close()

    unsubscribe = close

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Public names (``thalovant.ThalovantSubscription``, ``thalovant.ThalovantListener``).
ThalovantSubscription = Subscription
ThalovantListener = Listener
