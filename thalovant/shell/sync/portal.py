"""The one blocking portal: how every blocking twin runs its async implementation.

Theory of operation
-------------------
A blocking twin (``ThalovantClient``, ``ThalovantConversation``, ``ThalovantAgent``,
``ThalovantControlPlane``) holds no protocol logic: it forwards each call to its
async class through a :class:`Portal`, an anyio ``BlockingPortal`` (an event loop
on a background thread) with a life cycle:

* :meth:`Portal.open` starts the loop and keeps it until :meth:`Portal.close`.
  Given an async context manager (``serve=``), one long-lived task enters it and
  holds it open until the close, so the owner's task group lives on that loop
  whatever thread later calls ``close()``.
* :meth:`Portal.call` runs one call on the open loop. A portal built with
  ``autostart=`` opens itself on first use (the client connects on demand).
* :meth:`Portal.run` runs one call on the open loop, or, when none is open, on a
  short-lived loop that ends with the call (after an optional clean-up call).
* :meth:`Portal.iterate` turns an async iterator living on the loop into a
  blocking one; :func:`in_worker_thread` runs a plain event handler in a worker
  thread so it may call the blocking twin again without deadlocking the loop.

Blocking run loops (``ThalovantAgent.run_forever``) wait on a :class:`StopRequest`:
``stop()`` from any thread, or a signal while :meth:`StopRequest.on_signals` is active,
ends the wait.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, contextmanager
from functools import partial
from typing import Any, ParamSpec, Protocol, TypeVar

import anyio
import anyio.abc
import anyio.to_thread
from anyio.from_thread import BlockingPortal, start_blocking_portal

from thalovant.errors import LocalProtocolError

__all__ = ["Portal", "StopRequest", "in_worker_thread", "refuse_in_event_loop"]

P = ParamSpec("P")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class AsyncStream(Protocol[T_co]):
    """An async iterator that must be closed (a listener)."""

    def __anext__(self) -> Awaitable[T_co]: ...

    def aclose(self) -> Awaitable[None]: ...


class Portal:
    """An event loop on a background thread that a blocking twin forwards its calls to.

    Args:
        autostart: called by :meth:`call` and :meth:`iterate` when the portal is not open
            (it must open it); without it they raise ``RuntimeError``.
    """

    def __init__(self, *, autostart: Callable[[], None] | None = None) -> None:
        self._autostart = autostart
        self._portal: BlockingPortal | None = None
        self._stack: ExitStack | None = None
        self._stop: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<Portal open={self.is_open}>"

    @property
    def is_open(self) -> bool:
        """Whether the loop is running (between :meth:`open` and :meth:`close`)."""
        return self._portal is not None

    def open(self, serve: AbstractAsyncContextManager[object] | None = None) -> None:
        """Start the loop (a no-op when open); with ``serve``, hold it entered until :meth:`close`.

        Raises:
            Exception: whatever entering ``serve`` raised (the loop is stopped again).
        """
        if self._portal is not None:
            return
        stack = ExitStack()
        portal = stack.enter_context(start_blocking_portal())
        stop: anyio.Event | None = None
        try:
            if serve is not None:
                stop = portal.call(anyio.Event)
                future, _ = portal.start_task(_hold, serve, stop)
                stack.callback(future.result)
        except BaseException:
            stack.close()
            raise
        self._stack, self._portal, self._stop = stack, portal, stop

    def close(self, before: Callable[[], Awaitable[object]] | None = None) -> None:
        """Run ``before`` on the loop, leave ``serve``, stop the loop. Idempotent.

        Raises:
            Exception: whatever ``before`` or leaving ``serve`` raised (the loop stops anyway).
        """
        portal, stack, stop = self._portal, self._stack, self._stop
        self._portal = self._stack = self._stop = None
        if portal is None or stack is None:
            return
        with stack:
            if stop is not None:
                stack.callback(portal.call, stop.set)
            if before is not None:
                portal.call(before)

    def _current(self) -> BlockingPortal:
        if self._portal is None:
            if self._autostart is None:
                raise RuntimeError("the blocking portal is not open")
            self._autostart()
        assert self._portal is not None
        return self._portal

    def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """``await fn(*args, **kwargs)`` on the loop, blocking until it is done."""
        return self._current().call(partial(fn, *args, **kwargs))

    def call_sync(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` (a plain function) on the loop's thread."""
        return self._current().call(partial(fn, *args, **kwargs))

    def run(self, fn: Callable[[], Awaitable[T]], *, after: Callable[[], Awaitable[object]] | None = None) -> T:
        """``await fn()`` on the open loop; when none is open, on a short-lived one that runs ``after`` last."""
        if self._portal is not None:
            return self._portal.call(fn)
        with start_blocking_portal() as portal:
            try:
                return portal.call(fn)
            finally:
                if after is not None:
                    portal.call(after)

    def run_on_loop(self, fn: Callable[[], None]) -> None:
        """``fn()`` on the loop's thread when called from another thread while the loop runs; else right here
        (on the loop's own thread, or once the loop has stopped and nothing else touches what ``fn`` does)."""
        portal = self._portal
        if portal is None:
            fn()
            return
        try:
            portal.call(fn)
        except RuntimeError:  # the loop's own thread, or the portal closed meanwhile
            fn()

    def iterate(self, stream: AsyncStream[T]) -> Iterator[T]:
        """Iterate ``stream`` (which lives on this loop) from this thread; closing the iterator closes it."""
        return _iterate(self._current(), stream)


async def _hold(
    serve: AbstractAsyncContextManager[object],
    stop: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Keep ``serve`` entered (its task group on this loop) until ``stop`` is set."""
    async with serve:
        task_status.started()
        await stop.wait()


def _iterate(portal: BlockingPortal, stream: AsyncStream[T]) -> Iterator[T]:
    try:
        while True:
            try:
                yield portal.call(stream.__anext__)
            except StopAsyncIteration:
                return
    finally:
        portal.call(stream.aclose)


async def in_worker_thread(fn: Callable[[T], object], item: T) -> None:
    """Run a plain handler in a worker thread (it may block, or call the blocking twin)."""
    await anyio.to_thread.run_sync(fn, item)


def refuse_in_event_loop(message: str) -> None:
    """Raise ``LocalProtocolError(message)`` when called from inside an event loop (blocking there would hang it)."""
    try:
        anyio.get_current_task()
    except RuntimeError:  # anyio's NoEventLoopError: not inside an event loop, blocking is fine
        return
    raise LocalProtocolError(message)


class StopRequest:
    """A thread-safe "stop now" that a blocking run loop waits on (a ``threading.Event``)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Request the stop (from any thread, a handler or a signal handler)."""
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True once the stop was requested."""
        return self._event.wait(timeout)

    @contextmanager
    def on_signals(
        self, signals: Iterable[int], record: Callable[[int], None], *, enabled: bool = True
    ) -> Iterator[None]:
        """Inside the block, each of ``signals`` calls ``record(signum)`` and requests the stop.

        The previous handlers are restored on the way out. Installed only in the main
        thread (Python delivers signals there); elsewhere, or with ``enabled=False``,
        nothing changes.
        """

        def handler(signum: int, frame: object) -> None:
            record(signum)
            self.set()

        previous: dict[int, Any] = {}
        if enabled and threading.current_thread() is threading.main_thread():
            for signum in signals:
                previous[signum] = signal.signal(signum, handler)
        try:
            yield
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)
