"""``ThalovantConversation``: the blocking twin of ``AsyncThalovantConversation``.

No logic of its own: each turn runs the async conversation's method on its
client's :class:`~thalovant.shell.sync.portal.Portal` (connecting the client
first if needed). What it needs from that client is written down as
:class:`BlockingConversationClient`, so this module imports no client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, Self

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.bus.query import ThalovantQueryResult
from thalovant.core.bus.reply import ThalovantReply
from thalovant.shell.conversation import AsyncThalovantConversation, ConversationClient
from thalovant.shell.listeners import EventHandler, EventPredicate, Subscription
from thalovant.shell.sync.portal import Portal

__all__ = ["BlockingConversationClient", "ThalovantConversation"]


class BlockingConversationClient(Protocol):
    """What a blocking conversation needs from its client (:class:`~thalovant.ThalovantClient` is one)."""

    @property
    def async_client(self) -> ConversationClient: ...

    @property
    def _portal(self) -> Portal: ...

    def listen(self, event: str | EventFilter = ..., **kwargs: Any) -> Iterator[ThalovantEvent]: ...

    def on(
        self, event: str | EventFilter, handler: EventHandler, *, predicate: EventPredicate | None = ...
    ) -> Subscription: ...


class ThalovantConversation:
    """A conversation on a blocking client (forwards to :class:`AsyncThalovantConversation`)."""

    def __init__(self, client: BlockingConversationClient, **kwargs: Any) -> None:
        self.client = client
        self._async = AsyncThalovantConversation(client.async_client, **kwargs)
        self._portal = client._portal

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncThalovantConversation", "ThalovantConversation", 1)

    @property
    def session_id(self) -> str:
        """The session id shared by every turn of this conversation."""
        return self._async.session_id

    @property
    def lang(self) -> str:
        """The language of every turn unless a call says otherwise."""
        return self._async.lang

    @property
    def context(self) -> dict[str, Any]:
        """The context merged into every turn (a call's own context wins)."""
        return self._async.context

    @property
    def request_ids(self) -> list[str]:
        """The request ids of this conversation's turns, oldest first."""
        return self._async.request_ids

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def owns(self, event: ThalovantEvent) -> bool:
        """Whether ``event`` belongs to this conversation (one of its request ids, or its session id)."""
        return self._async.owns(event)

    def ask(self, text: str, **kwargs: Any) -> ThalovantReply:
        """One turn: send ``text`` and wait for the reply (see :meth:`AsyncThalovantConversation.ask`)."""
        return self._portal.call(self._async.ask, text, **kwargs)

    def send_utterance(self, text: str, **kwargs: Any) -> str:
        """Send ``text`` without waiting (see :meth:`AsyncThalovantConversation.send_utterance`)."""
        return self._portal.call(self._async.send_utterance, text, **kwargs)

    def send_action(self, payload: str, **kwargs: Any) -> str:
        """Press the button ``payload`` (see :meth:`AsyncThalovantConversation.send_action`)."""
        return self._portal.call(self._async.send_action, payload, **kwargs)

    def send_code(self, value: str, **kwargs: Any) -> str:
        """Send the code ``value`` (see :meth:`AsyncThalovantConversation.send_code`)."""
        return self._portal.call(self._async.send_code, value, **kwargs)

    def emit(self, event: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None) -> None:
        """Send the raw bus ``event`` with ``data`` and ``context`` (see :meth:`AsyncThalovantConversation.emit`)."""
        self._portal.call(self._async.emit, event, data, context)

    def query(self, text: str, **kwargs: Any) -> ThalovantQueryResult:
        """Ask ``text`` with a QUERY frame in this conversation (see :meth:`AsyncThalovantConversation.query`)."""
        return self._portal.call(self._async.query, text, **kwargs)

    def wait_for_event(self, event: str | EventFilter, **kwargs: Any) -> ThalovantEvent:
        """The next matching ``event`` of this conversation (see :meth:`AsyncThalovantConversation.wait_for_event`)."""
        return self._portal.call(self._async.wait_for_event, event, **kwargs)

    def listen(self, event: str | EventFilter = "*", **kwargs: Any) -> Iterator[ThalovantEvent]:
        """This conversation's events matching ``event`` (the keyword arguments of :meth:`ThalovantClient.listen`).

        ``context`` (0.4.7, deprecated): see :meth:`AsyncThalovantConversation.listen`.
        """
        mine = self._async._mine(kwargs.pop("predicate", None), kwargs.pop("context", None), "listen")
        return self.client.listen(event, predicate=mine, **kwargs)

    def on(
        self,
        event: str | EventFilter,
        handler: EventHandler,
        *,
        predicate: EventPredicate | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Subscription:
        """Call ``handler(event)`` (in a worker thread) for each of this conversation's events matching ``event``.

        ``predicate`` and ``context`` (0.4.7, deprecated): see :meth:`AsyncThalovantConversation.on`.
        """
        return self.client.on(event, handler, predicate=self._async._mine(predicate, context, "on"))
