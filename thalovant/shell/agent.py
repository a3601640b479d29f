"""Agents: long-running programs that react to hub events with handlers.

An agent is a client plus a list of handlers plus a loop that keeps the
process alive until :meth:`stop` (or SIGINT/SIGTERM). There is no protocol
logic here: handlers become client subscriptions, and subscriptions live in
the client, so they survive reconnects without being attached twice (every
event is handled once, whatever the number of hub restarts).

* :class:`AsyncThalovantAgent` runs on anyio (asyncio or trio); handlers may
  be plain functions or coroutine functions.
* :class:`~thalovant.shell.sync.agent.ThalovantAgent` is the blocking twin over
  :class:`~thalovant.shell.sync.client.ThalovantClient`; its handlers are plain
  functions run in a worker thread, so they may call ``agent.client``. Both
  share their handler book, :class:`AgentBase` (here).

A handler that raises is logged and the agent keeps running. When the
client gives up reconnecting, ``run_forever`` ends with the client's error.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from thalovant.core.bus.events import EVENT_SPEAK, EventFilter
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.deprecation import warn_once
from thalovant.core.errors import LocalProtocolError, ThalovantConnectionError, ThalovantError
from thalovant.shell.binary_inbox import BinaryHandler, BinarySubscription
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.constructors import FromIdentity
from thalovant.shell.conversation import AsyncThalovantConversation
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.listeners import EventHandler, EventPredicate, Subscription
from thalovant.shell.mesh_router import HiveHandler, HiveSubscription

__all__ = ["STOP_SIGNALS", "AgentBase", "AsyncThalovantAgent", "check_interval_of", "gave_up"]

log = logging.getLogger("thalovant")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Subscriber(Protocol):
    """The one client call the handler book makes (both clients have it)."""

    def on(
        self,
        event: str | EventFilter,
        handler: EventHandler,
        *,
        predicate: EventPredicate | None = ...,
        session_id: str | None = ...,
        request_id: str | None = ...,
    ) -> Subscription: ...

    def on_binary(self, handler: BinaryHandler, kind: Any = ...) -> BinarySubscription: ...
    def on_hive(self, kind: str, handler: HiveHandler) -> HiveSubscription: ...


C = TypeVar("C", bound=_Subscriber)


@dataclass(slots=True)
class _Handler:
    """A handler the agent attaches when it runs (and while it runs)."""

    event: str | EventFilter
    handler: Callable[[Any], Any]  # an EventHandler, a BinaryHandler (``binary``) or a HiveHandler (``hive``)
    options: dict[str, Any] = field(default_factory=dict)
    binary: bool = False  # a handler of binary frames (``on_binary``), not of events
    hive: bool = False  # a hive (mesh) frame handler: ``event`` is its kind


class _Handlers:
    """The handler book shared by both agents (no IO, no protocol)."""

    def __init__(self) -> None:
        self.pending: list[_Handler] = []

    def add(
        self, event: str | EventFilter, handler: Callable[[Any], Any], options: dict[str, Any], hive: bool = False
    ) -> _Handler:
        if not callable(handler):
            raise TypeError("handler must be callable")
        entry = _Handler(event, handler, options, hive=hive)
        self.pending.append(entry)
        return entry


def check_interval_of(check_interval: float | None, poll_interval: float | None) -> float:
    """``run_forever``'s interval: ``check_interval``, else 0.4.7's ``poll_interval`` (warns once), else 1 s.

    Raises:
        LocalProtocolError: both are given, or the interval is not a positive finite number.
    """
    if poll_interval is not None:
        warn_once("run_forever(poll_interval=...)", "run_forever(check_interval=...)", stacklevel=4)
        if check_interval is not None:
            raise LocalProtocolError("give check_interval or poll_interval, not both")
        check_interval = poll_interval
    interval = 1.0 if check_interval is None else check_interval
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval < math.inf:
        raise LocalProtocolError("check_interval must be a positive number of seconds")
    return float(interval)


def gave_up(last_error: str | None) -> ThalovantConnectionError:
    """The error ``run_forever`` ends with when the client gave up reconnecting."""
    return ThalovantConnectionError(f"the agent's client gave up reconnecting: {last_error or 'link lost'}")


class AgentBase(FromIdentity, Generic[C]):
    """What both agents share: the client, the handler book and the subscriptions (no IO, no protocol).

    ``on()`` before a run keeps the handler pending; while the agent runs
    (``_live``) it subscribes at once. A lock guards the book, since the
    blocking agent's handlers run in worker threads.
    """

    _client_class: Callable[..., C]

    def __init__(self, identity: ThalovantIdentity | Mapping[str, Any], **client_kwargs: Any) -> None:
        self.client: C = self._client_class(identity, **client_kwargs)
        self._handlers = _Handlers()
        self.subscriptions: list[Subscription | HiveSubscription | BinarySubscription] = []
        self.stopped_by: int | None = None
        self._running = False
        self._live = False  # handlers attached: later on() calls attach at once
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} handlers={len(self._handlers.pending)} running={self._running} {self.client!r}>"

    @property
    def running(self) -> bool:
        """True between the start of ``run_forever`` and its end."""
        return self._running

    def on(
        self,
        event: str | EventFilter,
        handler: EventHandler | None = None,
        *,
        predicate: EventPredicate | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
    ) -> Any:
        """Handle ``event`` with ``handler`` (a function taking the event; async agents: or a coroutine function).

        Works as ``agent.on("speak", fn)`` and as the decorator ``@agent.on("speak")``;
        returns the handler. Before ``run_forever`` the handler waits; while the
        agent runs it is subscribed at once (``subscriptions`` grows).
        """

        def register(fn: EventHandler) -> EventHandler:
            with self._lock:
                options = {"predicate": predicate, "session_id": session_id, "request_id": request_id}
                entry = self._handlers.add(event, fn, options)
                if self._live:  # the client keeps subscriptions across reconnects
                    self._attach(entry)
            return fn

        return register if handler is None else register(handler)

    def on_speak(self, handler: EventHandler | None = None) -> Any:
        """``on("speak", handler)``; also ``@agent.on_speak`` and ``@agent.on_speak()``."""
        return self.on(EVENT_SPEAK, handler)

    def on_binary(self, handler: BinaryHandler | None = None, *, kind: Any = None) -> Any:
        """Handle the binary frames the hub sends (TTS clips, files) with ``handler`` (it gets a
        :class:`~thalovant.ThalovantBinary`); ``kind``: only that kind (or kinds), e.g. ``"tts_audio"``.

        Works as ``agent.on_binary(fn)`` and as the decorators ``@agent.on_binary`` and
        ``@agent.on_binary(kind="tts_audio")``; returns the handler. Attached like :meth:`on`.
        """

        def register(fn: BinaryHandler) -> BinaryHandler:
            with self._lock:
                entry = self._handlers.add("", fn, {"kind": kind})
                entry.binary = True
                if self._live:
                    self._attach(entry)
            return fn

        return register if handler is None else register(handler)

    def on_hive(self, kind: str, handler: HiveHandler | None = None) -> Any:
        """Handle hive (mesh) frames of ``kind`` (``broadcast``, ``propagate`` ... or ``"*"``) with ``handler``.

        Works as ``agent.on_hive("broadcast", fn)`` and as the decorator ``@agent.on_hive("broadcast")``; the
        handler takes a :class:`~thalovant.core.bus.hive.ThalovantHiveMessage`. Returns the handler; pending
        and live handlers work as with :meth:`on` (see ``AsyncThalovantClient.on_hive``).
        """

        def register(fn: HiveHandler) -> HiveHandler:
            with self._lock:
                entry = self._handlers.add(kind, fn, {}, hive=True)
                if self._live:
                    self._attach(entry)
            return fn

        return register if handler is None else register(handler)

    def _attach(self, entry: _Handler) -> Subscription | HiveSubscription | BinarySubscription:
        sub: Subscription | HiveSubscription | BinarySubscription
        if entry.binary:
            sub = self.client.on_binary(entry.handler, **entry.options)
        elif entry.hive:
            assert isinstance(entry.event, str)
            sub = self.client.on_hive(entry.event, entry.handler)
        else:
            sub = self.client.on(entry.event, entry.handler, **entry.options)
        self.subscriptions.append(sub)
        return sub

    def _attach_pending(self) -> None:
        """Attach every pending handler and go live (the start of a run)."""
        with self._lock:
            for entry in list(self._handlers.pending):
                self._attach(entry)
            self._live = True
        log.info("agent running with %d handler(s)", len(self.subscriptions))

    def subscribe(self, event: str | EventFilter, handler: EventHandler, **options: Any) -> Subscription:
        """Subscribe ``handler`` now; unlike :meth:`on`, a later ``run_forever`` does not re-attach it."""
        with self._lock:
            sub = self._attach(_Handler(event, handler, dict(options)))
            assert isinstance(sub, Subscription)
            return sub


class AsyncThalovantAgent(AgentBase[AsyncThalovantClient]):
    """An async agent: ``@agent.on("speak")`` handlers, then ``await agent.run_forever()``.

    Args:
        identity: a :class:`~thalovant.ThalovantIdentity` (or its mapping form).
        **client_kwargs: passed to :class:`~thalovant.AsyncThalovantClient`.

    Attributes:
        client: the agent's client; handlers may use it (``await agent.client.emit(...)``).
        subscriptions: the live subscriptions while running.
        stopped_by: the signal number that stopped the last run, if any.
    """

    _client_class = AsyncThalovantClient

    def __init__(self, identity: ThalovantIdentity | Mapping[str, Any], **client_kwargs: Any) -> None:
        super().__init__(identity, **client_kwargs)
        self._stop: anyio.Event | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None

    # ---- pass-throughs --------------------------------------------------------------------------

    def conversation(self, **kwargs: Any) -> AsyncThalovantConversation:
        """See :meth:`AsyncThalovantClient.conversation`."""
        return self.client.conversation(**kwargs)

    async def ask(self, text: str, **kwargs: Any) -> ThalovantReply:
        """Send ``text`` and wait for the reply (see :meth:`AsyncThalovantClient.ask`)."""
        return await self.client.ask(text, **kwargs)

    async def send_utterance(self, text: str, **kwargs: Any) -> str:
        """Send ``text`` without waiting (see :meth:`AsyncThalovantClient.send_utterance`)."""
        return await self.client.send_utterance(text, **kwargs)

    # ---- running --------------------------------------------------------------------------------

    async def run_forever(
        self, *, handle_signals: bool = True, check_interval: float | None = None, poll_interval: float | None = None
    ) -> None:
        """Connect, attach the handlers, and run until :meth:`stop`, SIGINT or SIGTERM.

        Args:
            handle_signals: stop cleanly on SIGINT/SIGTERM (only in the main thread).
            check_interval: seconds between checks that the client has not given up (None: 1 s).
            poll_interval: the 0.4.7 name of ``check_interval`` (deprecated, warns once).

        Raises:
            ThalovantConnectionError: the first connect failed, or the client gave up reconnecting.
            ThalovantAuthenticationError: the hub refused the credentials.
            LocalProtocolError: both intervals are given, or the interval is not positive.
        """
        interval = check_interval_of(check_interval, poll_interval)
        if self._running:
            raise RuntimeError("run_forever is already running")
        self._running = True
        self.stopped_by = None
        self._stop = anyio.Event()
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        try:
            async with self.client:
                self._attach_pending()
                error: ThalovantError | None = None
                async with anyio.create_task_group() as tg:
                    if handle_signals and threading.current_thread() is threading.main_thread():
                        tg.start_soon(self._watch_signals)
                    try:
                        await self._wait_until_stopped(interval)
                    except ThalovantError as exc:  # raised below, outside the task group (no ExceptionGroup)
                        error = exc
                    tg.cancel_scope.cancel()
                self._close_subscriptions()
                if error is not None:
                    raise error
        finally:
            self._live = False
            self._close_subscriptions()
            self._running = False
            self._stop = None
            self._token = None

    async def _wait_until_stopped(self, check_interval: float) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            with anyio.move_on_after(check_interval):
                await self._stop.wait()
            if self._stop.is_set():
                return
            health = await self.client.healthcheck()
            if not health.transport_alive:
                raise gave_up(health.last_error)

    async def _watch_signals(self) -> None:
        try:
            with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
                async for signum in signals:
                    log.info("agent stopping on signal %d", int(signum))
                    self.stopped_by = int(signum)
                    if self._stop is not None:
                        self._stop.set()
                    return
        except (NotImplementedError, RuntimeError, ValueError):  # no signal support on this loop/thread
            log.debug("signal handling unavailable; stop the agent with stop()")

    def stop(self) -> None:
        """End :meth:`run_forever`. Thread-safe; a no-op when the agent is not running."""
        stop, token = self._stop, self._token
        if stop is None or token is None:
            return
        if threading.get_ident() == self._loop_thread:
            stop.set()
            return
        try:
            anyio.from_thread.run_sync(stop.set, token=token)
        except RuntimeError:  # the loop already ended
            pass

    def _close_subscriptions(self) -> None:
        subs, self.subscriptions = self.subscriptions, []
        for sub in subs:
            sub.close()

    async def close(self) -> None:
        """Close the subscriptions, then the client."""
        self._close_subscriptions()
        await self.client.close()

    async def __aenter__(self) -> Self:
        await self.client.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
