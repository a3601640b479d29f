"""Conversations: several turns that share one user-side session.

``client.conversation()`` returns an :class:`AsyncThalovantConversation`
(``ThalovantClient.conversation()`` its blocking twin, a
:class:`~thalovant.shell.sync.conversation.ThalovantConversation`). Every turn
carries the conversation's session id and a fresh request id. A conversation
needs only what :class:`ConversationClient` names from its client, so this
module imports no client.

Hub 4.x rewrites ``context.session`` to the connection's own session
(harness P13), so replies are matched by request id, never by session id;
the user's session id keeps working. Hub 5.x is stateless: the session it
sends back with a reply is carried into the next turn of the same
conversation (``ConversationState``, pure, in ``core.client.conversation_state``).

Listeners of a conversation see only its own events: those carrying one of
its request ids, or (hub 5.x) its session id. The 0.4.7 keyword ``context=``
of ``on``/``listen``/``wait_for_event`` narrows them further to the request id
it names (it warns once: see ``thalovant.shell.client_events``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.bus.outbound import merge_context, new_request_id, new_session_id
from thalovant.core.bus.query import ThalovantQueryResult
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client.conversation_state import ConversationState
from thalovant.shell.client_events import wanted_ids
from thalovant.shell.listeners import EventHandler, EventPredicate, Listener, Subscription

T = TypeVar("T")


class ConversationClient(Protocol):
    """What a conversation needs from its client (:class:`~thalovant.AsyncThalovantClient` is one).

    The calls take the keyword arguments of the client's methods of the same name.
    """

    @property
    def _entropy(self) -> Callable[[int], bytes]: ...

    async def ask(self, *args: Any, **kwargs: Any) -> ThalovantReply: ...

    async def send_utterance(self, *args: Any, **kwargs: Any) -> str: ...

    async def send_action(self, *args: Any, **kwargs: Any) -> str: ...

    async def send_code(self, *args: Any, **kwargs: Any) -> str: ...

    async def emit(self, *args: Any, **kwargs: Any) -> None: ...

    async def query(self, *args: Any, **kwargs: Any) -> ThalovantQueryResult: ...

    def listen(self, *args: Any, **kwargs: Any) -> Listener: ...

    def on(self, *args: Any, **kwargs: Any) -> Subscription: ...

    async def wait_for_event(self, *args: Any, **kwargs: Any) -> ThalovantEvent: ...


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
        client: ConversationClient,
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

    def _new_request_id(self, given: str | None = None) -> str:
        return self._remember(given or new_request_id(self.client._entropy))

    def _mine(
        self, predicate: EventPredicate | None, context: Mapping[str, Any] | None = None, method: str = "listen"
    ) -> EventPredicate:
        """A predicate: this conversation's events that ``predicate`` (if any) accepts.

        ``context`` (0.4.7): merged over the conversation's; a request id it names must match too.
        """
        wanted = None
        if context is not None:
            wanted = wanted_ids(method, merge_context(self.context, context), None, None)[1]

        def mine(ev: ThalovantEvent) -> bool:
            if wanted is not None and ev.request_ids and wanted not in ev.request_ids:
                return False
            return self.owns(ev) and (predicate is None or predicate(ev))

        return mine

    async def _turn(
        self,
        send: Callable[..., Awaitable[T]],
        first: str,
        lang: str | None,
        context: Mapping[str, Any] | None,
        request_id: str | None = None,
        **extra: Any,
    ) -> T:
        """``send(first, ...)`` as one turn: the conversation's session and language, ``request_id`` or a fresh one."""
        return await send(
            first,
            lang=lang or self.lang,
            context=self._turn_context(context),
            session_id=self.session_id,
            request_id=self._new_request_id(request_id),
            **extra,
        )

    # ---- turns ----------------------------------------------------------------------------------

    async def ask(
        self,
        text: str,
        *,
        lang: str | None = None,
        context: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        **hints: Any,
    ) -> ThalovantReply:
        """One turn: send ``text`` and wait for the reply (see :meth:`AsyncThalovantClient.ask`).

        Args:
            text: what the user says.
            lang: the turn's language (None: the conversation's ``lang``).
            context: merged over the conversation's context for this turn.
            timeout: seconds to wait (None: the client's ``reply_timeout``).
            request_id: the turn's request id (None: a fresh one).
            **hints: ``stt_lang``, ``pipeline``, ``location``, ``raise_unanswered``, ``synth`` of the client's ``ask``.
        """
        unknown = set(hints) - {"stt_lang", "pipeline", "location", "raise_unanswered", "synth"}
        if unknown:
            raise TypeError(f"ask() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
        strict = bool(hints.pop("raise_unanswered", False))
        reply = await self._turn(self.client.ask, text, lang, context, request_id, timeout=timeout, **hints)
        self._state = self._state.update_from_reply(reply)  # remembered even when it raises below
        return reply.raise_for_unanswered(text.strip()) if strict else reply

    async def send_utterance(
        self,
        text: str,
        *,
        lang: str | None = None,
        context: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> str:
        """Send ``text`` as a turn without waiting; returns its request id.

        ``lang`` (None: the conversation's), ``context`` and ``request_id``: as for :meth:`ask`.
        """
        return await self._turn(self.client.send_utterance, text, lang, context, request_id)

    async def send_action(
        self,
        payload: str,
        *,
        title: str | None = None,
        lang: str | None = None,
        context: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> str:
        """A button press in this conversation; returns its request id.

        ``payload`` and ``title``: see :meth:`AsyncThalovantClient.send_action`; ``lang``, ``context`` and
        ``request_id``: as for :meth:`ask`.
        """
        return await self._turn(self.client.send_action, payload, lang, context, request_id, title=title)

    async def send_code(
        self,
        value: str,
        *,
        kind: str = "code",
        label: str | None = None,
        lang: str | None = None,
        context: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> str:
        """A scanned or typed code in this conversation; returns its request id.

        ``value``, ``kind`` and ``label``: see :meth:`AsyncThalovantClient.send_code`; ``lang``, ``context`` and
        ``request_id``: as for :meth:`ask`.
        """
        return await self._turn(self.client.send_code, value, lang, context, request_id, kind=kind, label=label)

    async def emit(
        self, event: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        """A raw bus event with this conversation's session (no request id).

        ``event`` and ``data``: see :meth:`AsyncThalovantClient.emit`; ``context`` is merged over the
        conversation's context, and the result gets a ``lang`` key (the conversation's) if it has none.
        """
        ctx = self._turn_context(context)
        ctx.setdefault("lang", self.lang)
        await self.client.emit(event, data, ctx)

    async def query(
        self, text: str, *, lang: str | None = None, context: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> ThalovantQueryResult:
        """Ask ``text`` with a QUERY frame (hub 5.x) in this conversation's session (see
        :meth:`AsyncThalovantClient.query`): ``lang`` defaults to the conversation's, ``context`` is merged over
        the conversation's."""
        ctx = self._turn_context(context)
        session = dict(ctx.get("session") or {})
        ctx["session"] = {**session, "session_id": self.session_id}
        return await self.client.query(text, lang=lang or self.lang, context=ctx, **kwargs)

    def listen(
        self,
        event: str | EventFilter = "*",
        *,
        timeout: float | None = None,
        max_events: int | None = None,
        predicate: EventPredicate | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Listener:
        """Iterate over this conversation's events only.

        ``event``, ``timeout`` (seconds, in total), ``max_events`` and ``predicate``: see
        :meth:`AsyncThalovantClient.listen`; ``context``: see the module docstring.
        """
        mine = self._mine(predicate, context, "listen")
        return self.client.listen(event, timeout=timeout, max_events=max_events, predicate=mine)

    async def wait_for_event(
        self,
        event: str | EventFilter,
        *,
        timeout: float | None = None,
        predicate: EventPredicate | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> ThalovantEvent:
        """The next event of this conversation matching ``event``.

        ``timeout`` (seconds; None: the client's ``reply_timeout``) and ``predicate``: see
        :meth:`AsyncThalovantClient.wait_for_event`; ``context``: see the module docstring.
        """
        mine = self._mine(predicate, context, "wait_for_event")
        return await self.client.wait_for_event(event, timeout=timeout, predicate=mine)

    def on(
        self,
        event: str | EventFilter,
        handler: EventHandler,
        *,
        predicate: EventPredicate | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Subscription:
        """Call ``handler(event)`` for each of this conversation's events matching ``event``.

        ``handler`` and ``predicate``: see :meth:`AsyncThalovantClient.on`; ``context``: see the module docstring.
        """
        return self.client.on(event, handler, predicate=self._mine(predicate, context, "on"))
