"""The event half of ``AsyncThalovantClient``: listeners, waits and subscriptions.

:class:`ClientEvents` is mixed into :class:`~thalovant.shell.client.AsyncThalovantClient`; it holds
no state of its own (the client's :class:`~thalovant.shell.listeners.ListenerRegistry` and engine).
Listeners live in the client, so they survive reconnects; a listener made before the client
connected connects it when first iterated (as 0.4.7's ``listen`` did).

The 0.4.7 keyword ``context=`` still works on :meth:`ClientEvents.listen`, :meth:`ClientEvents.wait_for_event`
and :meth:`ClientEvents.on`: it names the wanted session and request ids the way a message context
does (``session.session_id``, ``request_id`` ...); explicit ``session_id=``/``request_id=`` win. It
warns once (``DeprecationWarning``): pass the ids instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.bus.filters import ids_from_context
from thalovant.core.deprecation import warn_once
from thalovant.core.errors import LocalProtocolError, ThalovantTimeoutError
from thalovant.shell.arguments import check_seconds
from thalovant.shell.engine import ClientEngine
from thalovant.shell.listeners import (
    EventHandler,
    EventPredicate,
    Listener,
    ListenerRegistry,
    Subscription,
    event_filter,
)

__all__ = ["ClientEvents", "wanted_ids"]


def wanted_ids(
    method: str,
    context: Mapping[str, Any] | None,
    session_id: str | None,
    request_id: str | None,
    *,
    stacklevel: int = 4,
) -> tuple[str | None, str | None]:
    """The ids a 0.4.7-style ``context=`` filter adds to explicit ``session_id``/``request_id``.

    Warns once (``stacklevel``: the user's frame as seen from ``warn_once``).
    """
    if context is None:
        return session_id, request_id
    warn_once(f"{method}(context=...)", f"{method}(session_id=..., request_id=...)", stacklevel=stacklevel)
    from_session, from_request = ids_from_context(context)
    return session_id or from_session, request_id or from_request


class _ConnectingListener(Listener):
    """A listener made before its client connected: the first wait connects the client."""

    def __init__(self, connect: Callable[[], Awaitable[None]], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connect: Callable[[], Awaitable[None]] | None = connect

    async def __anext__(self) -> ThalovantEvent:
        connect, self._connect = self._connect, None
        if connect is not None:
            await connect()
        return await super().__anext__()


class ClientEvents:
    """Listening to the hub: :meth:`listen`, :meth:`wait_for_event`, :meth:`on` (see the module docstring)."""

    _listeners: ListenerRegistry
    _engine: ClientEngine
    reply_timeout: float

    async def connect(self) -> None:  # pragma: no cover - the client's
        raise NotImplementedError

    def listen(
        self,
        event: str | EventFilter = "*",
        *,
        timeout: float | None = None,
        max_events: int | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        predicate: EventPredicate | None = None,
        buffer: int = 1000,
        context: Mapping[str, Any] | None = None,
    ) -> Listener:
        """Iterate over matching events (``async for event in client.listen("speak")``).

        Listeners survive reconnects. Iteration ends quietly at ``timeout`` (seconds, in total) or after ``max_events``;
        it raises ``ThalovantConnectionError`` if the client gives up reconnecting. ``session_id`` and ``request_id``
        narrow a type name; ``predicate`` filters further; ``buffer`` caps the unread events (the oldest are dropped).
        A client that is not connected yet connects when the listener is first iterated.
        ``context``: the 0.4.7 way to name the ids (deprecated; see the module docstring).
        """
        session_id, request_id = wanted_ids("listen", context, session_id, request_id)
        if timeout is not None:
            check_seconds("timeout", timeout, zero=True)  # 0: what is already buffered
        flt = event_filter(event, session_id, request_id)
        options: dict[str, Any] = dict(predicate=predicate, timeout=timeout, max_events=max_events, buffer=buffer)
        if self._engine.runtime is None:
            return self._listeners.add(_ConnectingListener(self.connect, self._listeners, flt, **options))
        return self._listeners.add(Listener(self._listeners, flt, **options))

    async def wait_for_event(
        self,
        event: str | EventFilter,
        *,
        timeout: float | None = None,
        predicate: EventPredicate | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> ThalovantEvent:
        """The next matching event (``predicate``, ``session_id``, ``request_id``, ``context``: see :meth:`listen`).

        Raises:
            ThalovantTimeoutError: none arrived within ``timeout`` seconds (None: the client's ``reply_timeout``).
        """
        session_id, request_id = wanted_ids("wait_for_event", context, session_id, request_id)
        wait = self.reply_timeout if timeout is None else check_seconds("timeout", timeout, zero=True)
        async for found in self.listen(
            event, timeout=wait, max_events=1, predicate=predicate, session_id=session_id, request_id=request_id
        ):
            return found
        raise ThalovantTimeoutError(f"the hub did not emit {event!r} within {wait:g} s")

    def on(
        self,
        event: str | EventFilter,
        handler: EventHandler,
        *,
        predicate: EventPredicate | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        _call: Any = None,
    ) -> Subscription:
        """Call ``handler(event)`` for each matching event until the subscription is closed.

        The handler may be a plain function or a coroutine function; it may call the client itself. A handler
        that raises is logged and kept. ``predicate``, ``session_id``, ``request_id``, ``context``: see
        :meth:`listen`.
        """
        tg = self._engine.task_group
        if tg is None:
            raise LocalProtocolError("on() needs a connected client (inside 'async with client')")
        session_id, request_id = wanted_ids("on", context, session_id, request_id)
        listener = self.listen(event, predicate=predicate, session_id=session_id, request_id=request_id)
        name = event if isinstance(event, str) else ",".join(event.types)
        sub = Subscription(listener, handler, name, call=_call)
        tg.start_soon(sub.run)
        return sub
