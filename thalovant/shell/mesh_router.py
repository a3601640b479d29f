"""Where the hive frames a client receives go: ``on_hive`` subscriptions, pending queries, refusal watches.

A :class:`MeshRouter` is created by a client's first mesh call (:class:`~thalovant.shell.client_mesh.ClientMesh`)
and registers itself with the engine: as a frame handler (``Results.frame_handlers``, run on the event
loop: it never blocks) and as a status watcher (``ClientEngine.status_watchers``). Each delivered frame is
read by :func:`~thalovant.core.bus.hive.hive_of` (access key scrubbed, loops refused: both dropped with a
log line); a QUERY answer goes to the query waiting for its ``query_id``, and every frame goes to the
subscriptions of its kind (or ``"*"``).

Every queue is bounded: a subscription holds at most :data:`SUBSCRIPTION_BUFFER` unhandled frames (more
are dropped and counted in ``dropped``), a query at most :data:`QUERY_BUFFER` answers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from returns.result import Failure

from thalovant.core.bus.hive import ThalovantHiveMessage, hive_of
from thalovant.core.client import connection as cx
from thalovant.core.wire.message import HiveMessage
from thalovant.shell.listeners import feed_handler

__all__ = [
    "QUERY_BUFFER", "SUBSCRIPTION_BUFFER", "HiveHandler", "HiveSubscription", "LinkLoss", "MeshRouter",
    "ThalovantHiveSubscription",
]  # fmt: skip

log = logging.getLogger("thalovant")

#: Unhandled frames one ``on_hive`` subscription may hold.
SUBSCRIPTION_BUFFER = 256
#: Answers one query may hold before it reads them.
QUERY_BUFFER = 256

HiveHandler = Callable[[ThalovantHiveMessage], Any]


@dataclass(frozen=True, slots=True)
class LinkLoss:
    """The link left READY while something waited (what the machine said).

    ``readies``: how many READY statuses the router had seen then. A send that completes after a later READY
    left on a new link (the outbox kept it across the reconnect): the loss is not about that frame.
    """

    status: cx.StatusChanged
    readies: int = 0


class HiveSubscription:
    """A handler attached to hive frames of one kind until :meth:`close` (``client.on_hive``).

    Frames are handled one at a time, in arrival order, on a task of the client. A handler that raises is
    logged and kept. Usable as a context manager. ``handled``, ``failed`` and ``dropped`` count frames.

    Args:
        router: the client's router (the subscription leaves it on :meth:`close`).
        kind: the hive kind handled (or ``"*"``).
        handler: called with each :class:`~thalovant.core.bus.hive.ThalovantHiveMessage` (may be async).
        call: how to call the handler (a blocking client runs it in a worker thread); None: directly.
    """

    def __init__(
        self,
        router: MeshRouter,
        kind: str,
        handler: HiveHandler,
        *,
        call: Callable[[HiveHandler, ThalovantHiveMessage], Awaitable[Any]] | None = None,
    ) -> None:
        self.kind = kind
        self.handled = self.failed = self.dropped = 0
        #: How a blocking client runs :meth:`close` on its event loop's thread (None: right here).
        self.closer: Callable[[Callable[[], None]], None] | None = None
        self._router = router
        self._handler = handler
        self._call = call
        self._send, self._receive = anyio.create_memory_object_stream[ThalovantHiveMessage](SUBSCRIPTION_BUFFER)

    def __repr__(self) -> str:
        return f"<HiveSubscription {self.kind!r} handled={self.handled} failed={self.failed} dropped={self.dropped}>"

    def offer(self, hive: ThalovantHiveMessage) -> None:
        """Queue the frame ``hive`` for the handler (dropped and counted when the buffer is full or closed)."""
        try:
            self._send.send_nowait(hive)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1

    async def run(self) -> None:
        """Feed frames to the handler until closed (runs in the client's task group)."""
        async with self._receive:
            await feed_handler(self, self._receive, self._handler, self._call, f"hive handler for {self.kind!r}")

    def _close_here(self) -> None:
        self._router.subscriptions = [s for s in self._router.subscriptions if s is not self]
        self._send.close()

    def close(self) -> None:
        """Detach the handler. Idempotent; safe from any thread of a blocking client."""
        if self.closer is not None:
            self.closer(self._close_here)
        else:
            self._close_here()

    unsubscribe = close

    def __enter__(self) -> HiveSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The public name (``thalovant.ThalovantHiveSubscription``).
ThalovantHiveSubscription = HiveSubscription


class MeshRouter:
    """One client's hive frame dispatch (see the module docstring)."""

    def __init__(self, *, access_key: str, own_peer: Callable[[], str | None]) -> None:
        self._access_key = access_key
        self._own_peer = own_peer
        self.subscriptions: list[HiveSubscription] = []
        self.queries: dict[str, MemoryObjectSendStream[ThalovantHiveMessage | LinkLoss]] = {}
        self.watches: list[Callable[[LinkLoss], None]] = []
        #: READY statuses seen (a :class:`LinkLoss` older than the link a frame left on is not about it).
        self.readies = 0

    def on_frame(self, message: HiveMessage) -> None:
        """A non-bus frame from the hub (a ``Results.frame_handlers`` entry; never blocks)."""
        read = hive_of(message, access_key=self._access_key, own_peer=self._own_peer())
        if isinstance(read, Failure):
            if message.msg_type.value != "bin":  # binary frames are someone else's
                log.info("dropped a hive frame: %s", read.failure().reason)
            return
        hive = read.unwrap()
        query_id = hive.metadata.get("query_id")
        waiting = self.queries.get(query_id) if isinstance(query_id, str) else None
        if waiting is not None:
            try:
                waiting.send_nowait(hive)
            except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                log.warning("a query answer was dropped (over %d unread answers)", QUERY_BUFFER)
        for sub in tuple(self.subscriptions):
            if sub.kind in ("*", hive.kind):
                sub.offer(hive)

    def on_status(self, status: cx.StatusChanged) -> None:
        """The machine's status (a ``ClientEngine.status_watchers`` entry): a link loss ends what waits on it."""
        if status.state is cx.ConnectionState.READY:
            self.readies += 1
        if status.state in (cx.ConnectionState.READY, cx.ConnectionState.IDLE):
            return
        loss = LinkLoss(status, self.readies)
        for waiting in tuple(self.queries.values()):
            try:
                waiting.send_nowait(loss)
            except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
        for watch in tuple(self.watches):
            watch(loss)

    def open_query(self, query_id: str) -> MemoryObjectReceiveStream[ThalovantHiveMessage | LinkLoss]:
        """Start collecting the answers to ``query_id`` (close the returned stream and :meth:`close_query`)."""
        send, receive = anyio.create_memory_object_stream[ThalovantHiveMessage | LinkLoss](QUERY_BUFFER)
        self.queries[query_id] = send
        return receive

    def close_query(self, query_id: str) -> None:
        """Stop collecting the answers to ``query_id``."""
        send = self.queries.pop(query_id, None)
        if send is not None:
            send.close()
