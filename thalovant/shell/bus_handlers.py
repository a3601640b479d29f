"""The handlers a client registers on a bus-level transport (0.4.7's ``transport=`` duck type).

Theory of operation
-------------------
A bus-level transport (:class:`BusTransport`) delivers messages only to handlers registered by name
(``on_mycroft(name, fn)``). A :class:`HandlerBook` keeps exactly the names the client needs
registered, each with one bridge function of its own:

* the ask names (:data:`~thalovant.core.client.bus_events.ASK_EVENT_TYPES`) while at least one ask is
  in flight: registered before the ask's message is posted, removed when its last ask ended and
  before its caller hears of it (as 0.4.7 did, a fake transport may check that nothing is left);
* the literal type names of the client's listeners and subscriptions (:class:`WatchedListeners`),
  from the first listener of a name to the last one's ``close()``. Patterns (``"*"``, ``"ovos.*"``)
  cannot be registered by name: such listeners see what the other names bring.

Registration runs on the caller's thread, at once, under a lock (0.4.7 registered from the caller's
thread too), so a handler is in place when ``on()`` returns; a bridge queues the message
(:meth:`HandlerBook.deliver`) and wakes the client's event loop. On a thread of the transport's own,
for a type a listener or subscription takes, it then waits (bounded) until the client's ``on()``
handlers ran, as 0.4.7's synchronous handlers had; on the loop's thread, inside the client's own
calls to the transport, for :mod:`thalovant.transport`'s adapters and while the client registers or
removes a name, it never waits (``thalovant.shell.bus_transport``). A transport may thus call
handlers from any thread, including from inside ``emit_event`` on the thread that called it, and
may hold a lock of its own while it does: the client never calls ``on_mycroft`` or
``remove_mycroft`` while one of the transport's threads waits for it.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol, runtime_checkable

from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.filters import type_matches
from thalovant.core.client.bus_events import ASK_EVENT_TYPES
from thalovant.core.wire.message import BusMessage
from thalovant.shell.listeners import Listener, ListenerRegistry

__all__ = ["BusTransport", "HandlerBook", "WatchedListeners", "as_bus_message", "is_bus_transport"]

log = logging.getLogger("thalovant")

_METHODS = (
    "connect",
    "disconnect",
    "on_mycroft",
    "remove_mycroft",
    "emit_event",
    "healthcheck",
    "is_connected",
    "last_error",
)


@runtime_checkable
class BusTransport(Protocol):
    """The ``transport=`` duck type of thalovant 0.4.7 (all eight methods are plain, blocking calls).

    Handlers receive objects with ``data`` and ``context`` attributes and, optionally, ``msg_type``
    (the name they were registered for is used when it is missing). Calls from the client come from a
    worker thread (``connect``, ``disconnect``, ``emit_event``, ``is_connected``, ``last_error``) or
    from the caller's thread (``on_mycroft``, ``remove_mycroft``); ``healthcheck`` is not called.
    """

    def connect(self) -> Any: ...

    def disconnect(self) -> Any: ...

    def on_mycroft(self, name: str, fn: Callable[[Any], Any]) -> Any: ...

    def remove_mycroft(self, name: str, fn: Callable[[Any], Any]) -> Any: ...

    def emit_event(self, event_type: str, data: Any, context: Any) -> Any: ...

    def healthcheck(self) -> Any: ...

    def is_connected(self) -> bool: ...

    def last_error(self) -> BaseException | None: ...


def is_bus_transport(value: object) -> bool:
    """Whether ``value`` has the eight callables of :class:`BusTransport`."""
    return all(callable(getattr(value, name, None)) for name in _METHODS)


def _mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return {}


def as_bus_message(name: str, raw: Any) -> BusMessage:
    """The bus message a handler registered for ``name`` was given (a message object or a mapping).

    ``raw.msg_type`` (or ``type``) names it when it is a non-empty string, else ``name`` does; a
    missing or non-object ``data`` / ``context`` reads as ``{}``. Values are copied: the transport may
    reuse its objects.
    """
    if isinstance(raw, Mapping):
        kind, data, context = raw.get("msg_type") or raw.get("type"), raw.get("data"), raw.get("context")
    else:
        kind = getattr(raw, "msg_type", None) or getattr(raw, "type", None)
        data, context = getattr(raw, "data", None), getattr(raw, "context", None)
    msg_type = kind if isinstance(kind, str) and kind.strip() else name
    return BusMessage(type=msg_type, data=copy.deepcopy(_mapping(data)), context=copy.deepcopy(_mapping(context)))


class HandlerBook:
    """The names registered on one transport and their bridges (see the module docstring).

    Args:
        transport: the bus-level transport.
    """

    def __init__(self, transport: BusTransport) -> None:
        self.transport = transport
        self._lock = threading.Lock()
        self._bridges: dict[str, Callable[[Any], None]] = {}
        self._asks: set[str] = set()
        self._listened: Counter[str] = Counter()
        self._sink: Callable[[BusMessage], None] | None = None
        self._taken: list[tuple[Listener, int]] = []
        self._expecting: Callable[[], bool] = lambda: False
        self._hold: Callable[[], AbstractContextManager[Any]] = nullcontext
        #: False for thalovant.transport's adapters: their threads never wait for our handlers.
        self.waits = getattr(transport, "_hands_off_deliveries", False) is not True
        #: Whether a listener or subscription may take a message of this type (set by WatchedListeners).
        self.listened: Callable[[str], bool] = lambda name: False

    def __repr__(self) -> str:
        return f"<HandlerBook names={sorted(self._bridges)} asks={len(self._asks)}>"

    @property
    def names(self) -> tuple[str, ...]:
        """The names registered on the transport now, sorted."""
        return tuple(sorted(self._bridges))

    # ---- where messages go ---------------------------------------------------------------------------

    def attach(
        self,
        sink: Callable[[BusMessage], None],
        expecting: Callable[[], bool] = lambda: False,
        hold: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        """Deliver messages to ``sink`` and register every name wanted now.

        ``expecting()``: whether a transport's thread waits for a delivery now (only then does
        :meth:`took` keep what subscriptions accepted). ``hold()``: entered around every call to
        ``on_mycroft``/``remove_mycroft`` (no transport thread may wait for the client meanwhile).
        """
        self._sink, self._expecting, self._hold = sink, expecting, hold
        self._sync()

    def detach(self) -> None:
        """Remove every handler from the transport and drop later messages (the client stopped)."""
        self._sink = None
        self._taken = []
        with self._lock, self._hold():
            self._asks.clear()  # the client failed every ask still waiting
            for name in list(self._bridges):
                self._remove(name)

    def deliver(self, name: str, raw: Any) -> None:
        """The bridge of ``name``: a transport handed it ``raw`` (any thread; never raises; waits bounded)."""
        sink = self._sink
        if sink is None:
            return
        try:
            sink(as_bus_message(name, raw))
        except Exception:  # a transport's thread must never see our errors
            log.exception("could not take a message from the transport")

    # ---- what is wanted ------------------------------------------------------------------------------

    def ask_started(self, ask_id: str) -> None:
        with self._lock:
            self._asks.add(ask_id)
        self._sync()

    def ask_ended(self, ask_id: str) -> None:
        with self._lock:
            self._asks.discard(ask_id)
        self._sync()

    def listening(self, types: Iterable[str], delta: int) -> None:
        """Listeners of ``types`` were added (``delta=1``) or removed (``-1``)."""
        with self._lock:
            for name in set(types):
                if name and "*" not in name:
                    self._listened[name] += delta
                    if self._listened[name] <= 0:
                        del self._listened[name]
        self._sync()

    # ---- what was delivered (the event loop only) -----------------------------------------------------

    def took(self, listener: Listener, count: int) -> None:
        """``listener`` (a subscription's) accepted its ``count``-th event (handed out by :meth:`take`).

        Kept only while a transport's thread waits for a delivery (else nobody would take it).
        """
        if self._expecting():
            self._taken.append((listener, count))

    def take(self) -> list[tuple[Listener, int]]:
        """The subscriptions' listeners that accepted an event since the last call, each with its count.

        The runtime calls it once per message (``BusTaken``): what it returns is that message's.
        """
        taken, self._taken = self._taken, []
        return taken

    def _wanted(self) -> set[str]:
        wanted = set(self._listened)
        if self._asks:
            wanted.update(ASK_EVENT_TYPES)
        return wanted

    def _sync(self) -> None:
        if self._sink is None:
            return
        with self._lock:
            wanted = self._wanted()
            if wanted == set(self._bridges):
                return  # no call to the transport: no transport thread is let go
            with self._hold():
                for name in sorted(set(self._bridges) - wanted):
                    self._remove(name)
                for name in sorted(wanted - set(self._bridges)):
                    bridge = functools.partial(self.deliver, name)
                    try:
                        self.transport.on_mycroft(name, bridge)
                    except Exception as exc:
                        log.warning("the transport refused a handler for %r: %s", name, type(exc).__name__)
                        continue
                    self._bridges[name] = bridge

    def _remove(self, name: str) -> None:
        bridge = self._bridges.pop(name)
        try:
            self.transport.remove_mycroft(name, bridge)
        except Exception as exc:
            log.debug("the transport could not remove the handler for %r: %s", name, type(exc).__name__)


class WatchedListeners(ListenerRegistry):
    """A client's listeners that tell a :class:`HandlerBook` which names they need.

    Args:
        book: the book to tell.
    """

    def __init__(self, book: HandlerBook) -> None:
        super().__init__()
        self._book = book
        self._watched: set[int] = set()
        book.listened = self.listened

    def listened(self, name: str) -> bool:
        """Whether a listener (or a subscription's) may take an event of type ``name`` (any thread)."""
        return any(
            any(type_matches(pattern, name) for pattern in listener.filter.types) for listener in list(self._listeners)
        )

    def add(self, listener: Listener) -> Listener:
        added = super().add(listener)
        self._watched.add(id(listener))
        self._book.listening(listener.filter.types, +1)
        return added

    def publish(self, event: ThalovantEvent) -> None:
        """Offer ``event`` to every listener; tell the book which subscriptions took it (:meth:`HandlerBook.take`)."""
        for listener in list(self._listeners):
            before = listener.accepted
            listener.offer(event)
            if listener.awaited and listener.accepted > before:
                self._book.took(listener, listener.accepted)

    def remove(self, listener: Listener) -> None:
        super().remove(listener)
        if id(listener) in self._watched:
            self._watched.discard(id(listener))
            self._book.listening(listener.filter.types, -1)
