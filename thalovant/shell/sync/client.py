"""``ThalovantClient``: the blocking facade over ``AsyncThalovantClient``.

There is no protocol logic here: every call is forwarded to the async client
running in an anyio ``BlockingPortal`` (an event loop on a background
thread). One long-lived task on that loop owns the async client's task
group, so ``connect()`` and ``close()`` may come from any thread.

Handlers given to :meth:`ThalovantClient.on` are plain functions; they run
in a worker thread, one event at a time, so they may call the client
themselves without deadlocking the event loop.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar

import anyio
import anyio.to_thread
from anyio.from_thread import BlockingPortal, start_blocking_portal

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client.health import ThalovantHealth
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.listeners import EventHandler, EventPredicate, Listener, Subscription

if TYPE_CHECKING:
    from thalovant.core.doctor import ThalovantDoctorReport
    from thalovant.shell.conversation import ThalovantConversation

P = ParamSpec("P")
T = TypeVar("T")


class ThalovantClient:
    """Blocking client for a HiveMind hub. Takes the same arguments as
    :class:`~thalovant.AsyncThalovantClient` and offers the same methods.

    Use ``with ThalovantClient(identity) as client:`` or call ``connect()``
    and ``close()``.
    """

    def __init__(self, identity: ThalovantIdentity | Mapping[str, Any], **kwargs: Any) -> None:
        self._async = AsyncThalovantClient(identity, **kwargs)
        self._stack: ExitStack | None = None
        self._portal: BlockingPortal | None = None
        self._stop: anyio.Event | None = None

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncThalovantClient", "ThalovantClient", 1)

    @property
    def identity(self) -> ThalovantIdentity:
        return self._async.identity

    @property
    def protocol(self) -> str:
        return self._async.protocol

    @property
    def session_id(self) -> str:
        return self._async.session_id

    @property
    def async_client(self) -> AsyncThalovantClient:
        """The async client behind this facade (for code that mixes both)."""
        return self._async

    @classmethod
    def from_identity_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> Self:
        """Load an identity file and build a client."""
        return cls(ThalovantIdentity.from_file(path), **kwargs)

    @classmethod
    def from_env(cls, prefix: str = "THALOVANT_", **kwargs: Any) -> Self:
        """Build a client from ``THALOVANT_*`` environment variables."""
        return cls(ThalovantIdentity.from_env(prefix), **kwargs)

    # ---- life cycle -----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect (see :meth:`AsyncThalovantClient.connect`)."""
        if self._portal is not None:
            self._call(self._async.connect)
            return
        stack = ExitStack()
        portal = stack.enter_context(start_blocking_portal())
        try:
            self._stop = portal.call(anyio.Event)
            future, _ = portal.start_task(self._serve)
            stack.callback(future.result)
        except BaseException:
            stack.close()
            self._stop = None
            raise
        self._stack, self._portal = stack, portal

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the async client's task group for the whole connection."""
        assert self._stop is not None
        async with self._async:
            task_status.started()
            await self._stop.wait()

    def close(self) -> None:
        """Close the connection and stop the background event loop. Idempotent."""
        portal, stack, stop = self._portal, self._stack, self._stop
        self._portal = self._stack = self._stop = None
        if portal is None or stack is None:
            return
        if stop is not None:
            portal.call(stop.set)
        stack.close()

    disconnect = close

    def _call(self, fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> Any:
        portal = self._portal
        if portal is None:
            self.connect()
            portal = self._portal
            assert portal is not None

        async def run() -> Any:
            return await fn(*args, **kwargs)

        return portal.call(run)

    # ---- forwarded calls (no logic of their own) ------------------------------------------------

    def conversation(
        self, *, lang: str = "en-us", session_id: str | None = None, context: Mapping[str, Any] | None = None
    ) -> ThalovantConversation:
        """A conversation: turns that share a session id (``with client.conversation() as convo``)."""
        from thalovant.shell.conversation import ThalovantConversation

        return ThalovantConversation(self, session_id=session_id, lang=lang, context=context)

    def ask(self, text: str, **kwargs: Any) -> ThalovantReply:
        """See :meth:`AsyncThalovantClient.ask`."""
        reply: ThalovantReply = self._call(self._async.ask, text, **kwargs)
        return reply

    def emit(self, event: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None) -> None:
        """See :meth:`AsyncThalovantClient.emit`."""
        self._call(self._async.emit, event, data, context)

    def send_utterance(self, text: str, **kwargs: Any) -> str:
        """See :meth:`AsyncThalovantClient.send_utterance`."""
        rid: str = self._call(self._async.send_utterance, text, **kwargs)
        return rid

    def send_action(self, payload: str, **kwargs: Any) -> str:
        """See :meth:`AsyncThalovantClient.send_action`."""
        rid: str = self._call(self._async.send_action, payload, **kwargs)
        return rid

    def send_code(self, value: str, **kwargs: Any) -> str:
        """See :meth:`AsyncThalovantClient.send_code`."""
        rid: str = self._call(self._async.send_code, value, **kwargs)
        return rid

    def doctor(self, **kwargs: Any) -> ThalovantDoctorReport:
        """See :meth:`AsyncThalovantClient.doctor`."""
        if self._portal is not None:
            report: ThalovantDoctorReport = self._call(self._async.doctor, **kwargs)
            return report
        # not connected: run it on a short-lived event loop, without connecting first
        with start_blocking_portal() as portal:
            return portal.call(functools.partial(self._async.doctor, **kwargs))

    def healthcheck(self) -> ThalovantHealth:
        """See :meth:`AsyncThalovantClient.healthcheck`."""
        health: ThalovantHealth = self._call(self._async.healthcheck)
        return health

    def wait_for_event(self, event: str | EventFilter, **kwargs: Any) -> ThalovantEvent:
        """See :meth:`AsyncThalovantClient.wait_for_event`."""
        found: ThalovantEvent = self._call(self._async.wait_for_event, event, **kwargs)
        return found

    def listen(self, event: str | EventFilter = "*", **kwargs: Any) -> Iterator[ThalovantEvent]:
        """Iterate over matching events, blocking (see :meth:`AsyncThalovantClient.listen`).

        The listener is registered before this returns, so no event that
        arrives after the call is missed.
        """
        if self._portal is None:
            self.connect()
        portal = self._portal
        assert portal is not None

        async def register() -> Listener:
            return self._async.listen(event, **kwargs)

        listener: Listener = portal.call(register)
        return self._iterate(portal, listener)

    @staticmethod
    def _iterate(portal: BlockingPortal, listener: Listener) -> Iterator[ThalovantEvent]:
        try:
            while True:
                try:
                    yield portal.call(listener.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            portal.call(listener.aclose)

    def on(
        self,
        event: str | EventFilter,
        handler: EventHandler,
        *,
        predicate: EventPredicate | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
    ) -> Subscription:
        """Call ``handler(event)`` (in a worker thread) for each matching event."""

        async def in_thread(fn: EventHandler, ev: ThalovantEvent) -> None:
            await anyio.to_thread.run_sync(fn, ev)

        async def subscribe() -> Subscription:
            return self._async.on(
                event, handler, predicate=predicate, session_id=session_id, request_id=request_id, _call=in_thread
            )

        if self._portal is None:
            self.connect()
        assert self._portal is not None
        subscription: Subscription = self._portal.call(subscribe)
        return subscription
