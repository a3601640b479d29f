"""``ThalovantClient``: the blocking facade over ``AsyncThalovantClient``.

There is no protocol logic here: every call is forwarded to the async client
running on a :class:`~thalovant.shell.sync.portal.Portal` (an event loop on a
background thread). One long-lived task on that loop owns the async client's
task group, so ``connect()`` and ``close()`` may come from any thread.

Handlers given to :meth:`ThalovantClient.on` are plain functions; they run
in a worker thread, one event at a time, so they may call the client
themselves without deadlocking the event loop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

from thalovant.core.bus.binary import ThalovantBinary
from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client.health import ThalovantHealth
from thalovant.core.client.info import ThalovantConnectionInfo
from thalovant.core.doctor import ThalovantDoctorReport
from thalovant.shell.arguments import check_seconds
from thalovant.shell.binary_inbox import BinaryHandler, BinarySubscription
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.client_events import wanted_ids
from thalovant.shell.constructors import FromIdentity
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.listeners import EventHandler, EventPredicate, Subscription
from thalovant.shell.sync.client_mesh import SyncMesh
from thalovant.shell.sync.conversation import ThalovantConversation
from thalovant.shell.sync.portal import Portal, in_worker_thread

P = ParamSpec("P")
T = TypeVar("T")


def _ids(kwargs: dict[str, Any], method: str) -> dict[str, Any]:
    """``kwargs`` with a 0.4.7 ``context=`` filter turned into ``session_id``/``request_id`` (warns once)."""
    if kwargs.get("context") is None:
        return kwargs
    context = kwargs.pop("context")
    session_id, request_id = wanted_ids(
        method, context, kwargs.get("session_id"), kwargs.get("request_id"), stacklevel=5
    )
    return {**kwargs, "session_id": session_id, "request_id": request_id}


class ThalovantClient(SyncMesh, FromIdentity):
    """Blocking client for a HiveMind hub. Takes the same arguments as
    :class:`~thalovant.AsyncThalovantClient` and offers the same methods.

    Use ``with ThalovantClient(identity) as client:`` or call ``connect()``
    and ``close()``.
    """

    def __init__(self, identity: ThalovantIdentity | Mapping[str, Any], **kwargs: Any) -> None:
        self._async = AsyncThalovantClient(identity, **kwargs)
        self._portal = Portal(autostart=self.connect)
        self._closed = threading.Event()  # set while no loop runs (wait_closed)
        self._closed.set()

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncThalovantClient", "ThalovantClient", 1)

    @property
    def identity(self) -> ThalovantIdentity:
        """The client's identity."""
        return self._async.identity

    @property
    def protocol(self) -> str:
        """The protocol in use: ``"wss"``, ``"https"`` or ``"mqtt"``."""
        return self._async.protocol

    @property
    def session_id(self) -> str:
        """The session id sent in HELLO."""
        return self._async.session_id

    @property
    def reply_settle_seconds(self) -> float:
        """Seconds an ask keeps collecting speech after the first (see :class:`AsyncThalovantClient`)."""
        return self._async.reply_settle_seconds

    @property
    def auto_reconnect(self) -> bool:
        """Whether the client reconnects in the background after a link loss."""
        return self._async.auto_reconnect

    @property
    def reconnect_attempts(self) -> int | None:
        """The 0.4.7 ``reconnect_attempts`` given, if any (see :class:`AsyncThalovantClient`)."""
        return self._async.reconnect_attempts

    @property
    def async_client(self) -> AsyncThalovantClient:
        """The async client behind this facade (for code that mixes both)."""
        return self._async

    # ---- the hub's pinned key (hub 5.x) ---------------------------------------------------------

    @property
    def hub_key_fingerprint(self) -> str | None:
        """The pinned hub key's fingerprint, or None (see :attr:`AsyncThalovantClient.hub_key_fingerprint`)."""
        return self._async.hub_key_fingerprint

    def forget_hub_key(self) -> bool:
        """Forget the hub's pinned key to accept a rotated one (see :meth:`AsyncThalovantClient.forget_hub_key`)."""
        return self._async.forget_hub_key()

    # ---- life cycle -----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self, timeout: float | None = None) -> None:
        """Connect within ``timeout`` seconds (None: ``connect_timeout``; see :meth:`AsyncThalovantClient.connect`)."""
        wait = None if timeout is None else check_seconds("timeout", timeout)
        if self._portal.is_open:
            self._portal.call(self._async.connect, *(() if wait is None else (wait,)))  # a fake may take none
        else:
            self._closed.clear()
            try:
                self._portal.open(serve=self._async if wait is None else _entered(self._async, wait))
            except BaseException:
                self._closed.set()
                raise

    def close(self, timeout: float | None = None) -> None:
        """Close the connection and stop the background event loop. Idempotent.

        ``timeout``: as :meth:`AsyncThalovantClient.close` (the polite goodbye's limit, default 2 s).
        """
        if timeout is None:
            self._close()
            return
        engine = self._async._engine  # the loop's holder task leaves the client (its task group is that task's)
        grace, engine.close_grace = engine.close_grace, check_seconds("timeout", timeout, zero=True)
        try:
            self._close()
        finally:
            engine.close_grace = grace  # the timeout is this close's only

    def _close(self) -> None:
        try:
            self._portal.close()
        finally:
            self._closed.set()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until a ``close()`` (from any thread) has finished; True once closed, False if ``timeout`` ran out.

        A client never connected counts as closed. ``timeout``: seconds (None: no limit).
        """
        wait = None if timeout is None else check_seconds("timeout", timeout, zero=True)
        return self._closed.wait(wait)

    disconnect = close

    def connection_info(self) -> ThalovantConnectionInfo:
        """What the connection negotiated and its times (see :meth:`AsyncThalovantClient.connection_info`)."""
        return self._async.connection_info()

    def connect_with_info(self, timeout: float | None = None) -> ThalovantConnectionInfo:
        """``connect(timeout)``, then :meth:`connection_info` (raises as ``connect()`` does)."""
        self.connect(timeout)
        return self.connection_info()

    def _call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """``await fn(...)`` on the client's loop (connecting first if needed)."""
        return self._portal.call(fn, *args, **kwargs)

    # ---- forwarded calls (no logic of their own) ------------------------------------------------

    def conversation(
        self, *, lang: str = "en-us", session_id: str | None = None, context: Mapping[str, Any] | None = None
    ) -> ThalovantConversation:
        """A conversation: turns that share a session id (``with client.conversation() as convo``).

        ``lang`` and ``context`` apply to each of its turns; ``session_id`` defaults to a fresh one.
        """
        return ThalovantConversation(self, session_id=session_id, lang=lang, context=context)

    def ask(self, text: str, **kwargs: Any) -> ThalovantReply:
        """Send ``text`` and wait for the reply (see :meth:`AsyncThalovantClient.ask`)."""
        return self._call(self._async.ask, text, **kwargs)

    def emit(self, event: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None) -> None:
        """Send the raw bus ``event`` with ``data`` and ``context`` (see :meth:`AsyncThalovantClient.emit`)."""
        self._call(self._async.emit, event, data, context)

    def send_utterance(self, text: str, **kwargs: Any) -> str:
        """Send ``text`` without waiting (see :meth:`AsyncThalovantClient.send_utterance`)."""
        return self._call(self._async.send_utterance, text, **kwargs)

    def send_action(self, payload: str, **kwargs: Any) -> str:
        """Send the press of the button ``payload`` (see :meth:`AsyncThalovantClient.send_action`)."""
        return self._call(self._async.send_action, payload, **kwargs)

    def send_code(self, value: str, **kwargs: Any) -> str:
        """Send the code ``value`` (see :meth:`AsyncThalovantClient.send_code`)."""
        return self._call(self._async.send_code, value, **kwargs)

    def doctor(self, **kwargs: Any) -> ThalovantDoctorReport:
        """See :meth:`AsyncThalovantClient.doctor`.

        Not connected: it runs on a short-lived event loop, without connecting first.
        """
        return self._portal.run(partial(self._async.doctor, **kwargs))

    def healthcheck(self) -> ThalovantHealth:
        """See :meth:`AsyncThalovantClient.healthcheck`."""
        return self._call(self._async.healthcheck)

    def wait_for_event(self, event: str | EventFilter, **kwargs: Any) -> ThalovantEvent:
        """The next matching ``event`` (see :meth:`AsyncThalovantClient.wait_for_event`)."""
        return self._call(self._async.wait_for_event, event, **_ids(kwargs, "wait_for_event"))

    def listen(self, event: str | EventFilter = "*", **kwargs: Any) -> Iterator[ThalovantEvent]:
        """Iterate over matching events, blocking (see :meth:`AsyncThalovantClient.listen`).

        The listener is registered before this returns, so no event that
        arrives after the call is missed.
        """
        listener = self._portal.call_sync(self._async.listen, event, **_ids(kwargs, "listen"))
        return self._portal.iterate(listener)

    def on(
        self,
        event: str | EventFilter,
        handler: EventHandler,
        *,
        predicate: EventPredicate | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Subscription:
        """Call ``handler(event)`` (in a worker thread) for each matching event.

        ``predicate``, ``session_id``, ``request_id`` and ``context`` (0.4.7, deprecated): see
        :meth:`AsyncThalovantClient.listen`.
        """
        session_id, request_id = wanted_ids("on", context, session_id, request_id)
        subscription = self._portal.call_sync(
            self._async.on,
            event,
            handler,
            predicate=predicate,
            session_id=session_id,
            request_id=request_id,
            _call=in_worker_thread,
        )
        if isinstance(subscription, Subscription):
            subscription.closer = self._portal.run_on_loop  # close() from this thread reaches the loop safely
        return subscription

    # ---- binary frames (AsyncThalovantClient's shell/client_binary.py) -----------------------------

    @property
    def max_binary_bytes(self) -> int:
        """The cap on one binary frame, both ways (see :attr:`AsyncThalovantClient.max_binary_bytes`)."""
        return self._async.max_binary_bytes

    @max_binary_bytes.setter
    def max_binary_bytes(self, value: int) -> None:
        self._async.max_binary_bytes = value

    def send_binary(self, data: bytes, kind: str | int = "file", metadata: Mapping[str, Any] | None = None) -> None:
        """Send ``data`` as a BINARY frame of ``kind`` with ``metadata`` (:meth:`AsyncThalovantClient.send_binary`)."""
        self._call(self._async.send_binary, data, kind, metadata)

    def send_audio(self, pcm: bytes, **kwargs: Any) -> None:
        """Send the PCM audio ``pcm`` (``kwargs``: see :meth:`AsyncThalovantClient.send_audio`)."""
        self._call(self._async.send_audio, pcm, **kwargs)

    def send_file(self, source: str | os.PathLike[str] | bytes, file_name: str | None = None) -> None:
        """Send the file ``source`` (a path or bytes) as ``file_name`` (see :meth:`AsyncThalovantClient.send_file`)."""
        self._call(self._async.send_file, source, file_name)

    def listen_binary(self, kind: Any = None, **kwargs: Any) -> Iterator[ThalovantBinary]:
        """Iterate over binary frames of ``kind``, blocking (see :meth:`AsyncThalovantClient.listen_binary`).

        The listener is registered before this returns, so no frame that arrives after the call is missed.
        """
        listener = self._portal.call_sync(self._async.listen_binary, kind, **kwargs)
        return self._portal.iterate(listener)

    def on_binary(self, handler: BinaryHandler, kind: Any = None) -> BinarySubscription:
        """Call ``handler(binary)`` (in a worker thread) for each binary frame of ``kind`` (None: all).

        See :meth:`AsyncThalovantClient.on_binary`.
        """
        subscription = self._portal.call_sync(self._async.on_binary, handler, kind, _call=in_worker_thread)
        subscription.closer = self._portal.run_on_loop  # close() from this thread reaches the loop safely
        return subscription


@asynccontextmanager
async def _entered(client: AsyncThalovantClient, timeout: float | None) -> AsyncIterator[AsyncThalovantClient]:
    """``async with client``, connecting within ``timeout`` (what the portal's holder task enters)."""
    await client.connect(timeout)
    try:
        yield client
    finally:
        await client.close()
