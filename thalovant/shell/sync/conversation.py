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
from thalovant.core.bus.reply import ThalovantReply
from thalovant.shell.conversation import AsyncThalovantConversation, ConversationClient
from thalovant.shell.sync.portal import Portal

__all__ = ["BlockingConversationClient", "ThalovantConversation"]


class BlockingConversationClient(Protocol):
    """What a blocking conversation needs from its client (:class:`~thalovant.ThalovantClient` is one)."""

    @property
    def async_client(self) -> ConversationClient: ...

    @property
    def _portal(self) -> Portal: ...

    def listen(self, event: str | EventFilter = ..., **kwargs: Any) -> Iterator[ThalovantEvent]: ...


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
        return self._async.session_id

    @property
    def lang(self) -> str:
        return self._async.lang

    @property
    def request_ids(self) -> list[str]:
        return self._async.request_ids

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def owns(self, event: ThalovantEvent) -> bool:
        return self._async.owns(event)

    def ask(self, text: str, **kwargs: Any) -> ThalovantReply:
        return self._portal.call(self._async.ask, text, **kwargs)

    def send_utterance(self, text: str, **kwargs: Any) -> str:
        return self._portal.call(self._async.send_utterance, text, **kwargs)

    def send_action(self, payload: str, **kwargs: Any) -> str:
        return self._portal.call(self._async.send_action, payload, **kwargs)

    def send_code(self, value: str, **kwargs: Any) -> str:
        return self._portal.call(self._async.send_code, value, **kwargs)

    def emit(self, event: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None) -> None:
        self._portal.call(self._async.emit, event, data, context)

    def wait_for_event(self, event: str | EventFilter, **kwargs: Any) -> ThalovantEvent:
        return self._portal.call(self._async.wait_for_event, event, **kwargs)

    def listen(self, event: str | EventFilter = "*", **kwargs: Any) -> Iterator[ThalovantEvent]:
        """This conversation's events (the keyword arguments of :meth:`ThalovantClient.listen`)."""
        return self.client.listen(event, predicate=self._async._mine(kwargs.pop("predicate", None)), **kwargs)
