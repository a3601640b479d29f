"""Conversations: several turns that share one user-side session.

``client.conversation()`` returns an :class:`AsyncThalovantConversation`
(``ThalovantClient.conversation()`` a :class:`ThalovantConversation`). Every
turn carries the conversation's session id and a fresh request id.

Hub 4.x rewrites ``context.session`` to the connection's own session
(harness P13), so replies are matched by request id, never by session id;
the user's session id keeps working. Hub 5.x is stateless: the session it
sends back with a reply is carried into the next turn of the same
conversation (``ConversationState``, pure, in ``core.correlate``).

Listeners of a conversation see only its own events: those carrying one of
its request ids, or (hub 5.x) its session id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.bus.outbound import merge_context, new_session_id
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client.correlate import ConversationState
from thalovant.shell.listeners import EventPredicate, Listener

if TYPE_CHECKING:
    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.sync.client import ThalovantClient


class AsyncThalovantConversation:
    """A conversation on an async client. Closing it does not close the client.

    Args:
        client: the connected client.
        session_id: the conversation's session id (default: a fresh one).
        lang: the language of every turn unless a call says otherwise.
        context: a context merged into every turn (the call's own context wins).
    """

    def __init__(
        self,
        client: AsyncThalovantClient,
        *,
        session_id: str | None = None,
        lang: str = "en-us",
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.session_id = session_id or new_session_id(client._entropy)
        self.lang = lang
        self.context: dict[str, Any] = dict(context or {})
        self.request_ids: list[str] = []
        self._state = ConversationState(self.session_id)

    def __repr__(self) -> str:
        return f"<AsyncThalovantConversation session_id={self.session_id!r} turns={len(self.request_ids)}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    # ---- helpers --------------------------------------------------------------------------------

    def _turn_context(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        return self._state.context_for_next_turn(merge_context(self.context, context))

    def _remember(self, request_id: str) -> str:
        self.request_ids.append(request_id)
        return request_id

    def owns(self, event: ThalovantEvent) -> bool:
        """Whether an event belongs to this conversation."""
        if any(rid in self.request_ids for rid in event.request_ids):
            return True
        return event.session_id == self.session_id

    def _new_request_id(self) -> str:
        from thalovant.core.bus.outbound import new_request_id

        return self._remember(new_request_id(self.client._entropy))

    # ---- turns ----------------------------------------------------------------------------------

    async def ask(
        self,
        text: str,
        *,
        lang: str | None = None,
        context: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> ThalovantReply:
        """One turn: see :meth:`AsyncThalovantClient.ask`."""
        reply = await self.client.ask(
            text,
            lang=lang or self.lang,
            context=self._turn_context(context),
            session_id=self.session_id,
            request_id=self._new_request_id(),
            timeout=timeout,
        )
        self._state = self._state.update_from_reply(reply)
        return reply

    async def send_utterance(
        self, text: str, *, lang: str | None = None, context: Mapping[str, Any] | None = None
    ) -> str:
        """Send a turn without waiting; returns its request id."""
        return await self.client.send_utterance(
            text,
            lang=lang or self.lang,
            context=self._turn_context(context),
            session_id=self.session_id,
            request_id=self._new_request_id(),
        )

    async def send_action(
        self,
        payload: str,
        *,
        title: str | None = None,
        lang: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> str:
        """A button press in this conversation; returns its request id."""
        return await self.client.send_action(
            payload,
            title=title,
            lang=lang or self.lang,
            context=self._turn_context(context),
            session_id=self.session_id,
            request_id=self._new_request_id(),
        )

    async def send_code(
        self,
        value: str,
        *,
        kind: str = "code",
        label: str | None = None,
        lang: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> str:
        """A scanned or typed code in this conversation; returns its request id."""
        return await self.client.send_code(
            value,
            kind=kind,
            label=label,
            lang=lang or self.lang,
            context=self._turn_context(context),
            session_id=self.session_id,
            request_id=self._new_request_id(),
        )

    async def emit(
        self, event: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        """A raw bus event with this conversation's session (no request id)."""
        ctx = self._turn_context(context)
        ctx.setdefault("lang", self.lang)
        await self.client.emit(event, data, ctx)

    def listen(
        self,
        event: str | EventFilter = "*",
        *,
        timeout: float | None = None,
        max_events: int | None = None,
        predicate: EventPredicate | None = None,
    ) -> Listener:
        """Iterate over this conversation's events only."""

        def mine(ev: ThalovantEvent) -> bool:
            return self.owns(ev) and (predicate is None or predicate(ev))

        return self.client.listen(event, timeout=timeout, max_events=max_events, predicate=mine)

    async def wait_for_event(
        self, event: str | EventFilter, *, timeout: float | None = None, predicate: EventPredicate | None = None
    ) -> ThalovantEvent:
        """The next event of this conversation matching ``event``."""

        def mine(ev: ThalovantEvent) -> bool:
            return self.owns(ev) and (predicate is None or predicate(ev))

        return await self.client.wait_for_event(event, timeout=timeout, predicate=mine)


class ThalovantConversation:
    """A conversation on a blocking client (forwards to :class:`AsyncThalovantConversation`)."""

    def __init__(self, client: ThalovantClient, **kwargs: Any) -> None:
        self.client = client
        self._async = AsyncThalovantConversation(client.async_client, **kwargs)

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
        reply: ThalovantReply = self.client._call(self._async.ask, text, **kwargs)
        return reply

    def send_utterance(self, text: str, **kwargs: Any) -> str:
        rid: str = self.client._call(self._async.send_utterance, text, **kwargs)
        return rid

    def send_action(self, payload: str, **kwargs: Any) -> str:
        rid: str = self.client._call(self._async.send_action, payload, **kwargs)
        return rid

    def send_code(self, value: str, **kwargs: Any) -> str:
        rid: str = self.client._call(self._async.send_code, value, **kwargs)
        return rid

    def emit(self, event: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None) -> None:
        self.client._call(self._async.emit, event, data, context)

    def wait_for_event(self, event: str | EventFilter, **kwargs: Any) -> ThalovantEvent:
        found: ThalovantEvent = self.client._call(self._async.wait_for_event, event, **kwargs)
        return found

    def listen(self, event: str | EventFilter = "*", **kwargs: Any) -> Iterator[ThalovantEvent]:
        predicate = kwargs.pop("predicate", None)

        def mine(ev: ThalovantEvent) -> bool:
            return self._async.owns(ev) and (predicate is None or predicate(ev))

        return self.client.listen(event, predicate=mine, **kwargs)
