"""The mesh half of the blocking ``ThalovantClient``: forwards to :class:`~thalovant.shell.client_mesh.ClientMesh`.

No logic here: each call runs the async client's method on the portal's event loop. ``on_hive`` handlers
are plain functions run in a worker thread, one frame at a time (they may call the client).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.hive import ThalovantHiveMessage
from thalovant.core.bus.query import QueryAnswer, ThalovantQueryResult
from thalovant.shell.mesh_router import HiveSubscription
from thalovant.shell.sync.portal import Portal, in_worker_thread

if TYPE_CHECKING:
    from thalovant.shell.client import AsyncThalovantClient

__all__ = ["SyncMesh"]

P = ParamSpec("P")
T = TypeVar("T")


class SyncMesh:
    """Mixin of :class:`~thalovant.ThalovantClient`: ``propagate``, ``escalate``, ``broadcast``, ``on_hive``,
    ``reply`` and ``query``, blocking (see :class:`~thalovant.AsyncThalovantClient` for each)."""

    _async: AsyncThalovantClient
    _portal: Portal

    def _call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:  # pragma: no cover
        raise NotImplementedError  # the client's

    def propagate(
        self, msg_type: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None, **kw: Any
    ) -> None:
        """Send ``msg_type`` wrapped in a PROPAGATE (see :meth:`AsyncThalovantClient.propagate`)."""
        self._call(self._async.propagate, msg_type, data, context, **kw)

    def escalate(
        self, msg_type: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None, **kw: Any
    ) -> None:
        """Send ``msg_type`` wrapped in an ESCALATE (see :meth:`AsyncThalovantClient.escalate`)."""
        self._call(self._async.escalate, msg_type, data, context, **kw)

    def broadcast(
        self, msg_type: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None, **kw: Any
    ) -> None:
        """Send ``msg_type`` wrapped in a BROADCAST, admins only (see :meth:`AsyncThalovantClient.broadcast`)."""
        self._call(self._async.broadcast, msg_type, data, context, **kw)

    def on_hive(self, kind: str, handler: Callable[[ThalovantHiveMessage], Any]) -> HiveSubscription:
        """Call ``handler(hive)`` (in a worker thread) for each hive frame of ``kind`` (see
        :meth:`AsyncThalovantClient.on_hive`)."""
        sub = self._portal.call_sync(self._async.on_hive, kind, handler, _call=in_worker_thread)
        sub.closer = self._portal.run_on_loop  # close() from this thread reaches the loop safely
        return sub

    def reply(
        self,
        event: ThalovantEvent | ThalovantHiveMessage,
        msg_type: str,
        data: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Answer ``event`` along its route (see :meth:`AsyncThalovantClient.reply`)."""
        self._call(self._async.reply, event, msg_type, data, context)

    def query_stream(self, text: str, **kwargs: Any) -> Iterator[QueryAnswer]:
        """Ask ``text`` with a QUERY frame and iterate the answers as they arrive, blocking (see
        :meth:`AsyncThalovantClient.query_stream`); closing the iterator stops the wait."""
        return self._portal.iterate(self._async.query_stream(text, **kwargs))

    def query(self, text: str, **kwargs: Any) -> ThalovantQueryResult:
        """Ask ``text`` with a QUERY frame, hub 5.x (see :meth:`AsyncThalovantClient.query`)."""
        return self._call(self._async.query, text, **kwargs)
