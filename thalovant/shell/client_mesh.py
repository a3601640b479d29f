"""The mesh half of ``AsyncThalovantClient``: hive frames, ``reply()`` and ``query()`` (spec §9.5, §9.6).

:class:`ClientMesh` is mixed into :class:`~thalovant.shell.client.AsyncThalovantClient`. Its one piece
of state is a :class:`~thalovant.shell.mesh_router.MeshRouter`, made by the first mesh call.

Refusals. A hub says no to a mesh frame only by closing the connection: hub 5.x with 4003 (not an
admin, or a grant is off). So a mesh send watches the link for ``confirm`` seconds after the transport
took the frame; a 4003 in that window raises :class:`~thalovant.core.bus.hive.ThalovantHiveRefusedError`.
Only that frame was refused: the client reconnects by itself (the reconnect policy), its subscriptions
keep working and the refused frame is not sent again. Over HTTP hub 5.x has no close code: it drops the
client (later calls get 409). A drop within :data:`DEFAULT_CONFIRM` seconds of a mesh frame or a QUERY on
a protocol-v3 HTTP link raises the same error with ``code=None``; the client reconnects there too.
Hub 4.0.0 handles every PROPAGATE and ESCALATE from a client (relays it, injects it at its site) and then
fails building its ``hive.send.upstream``: it aborts a WebSocket (1006) and answers HTTP 500, so the call
raises ``ThalovantConnectionError`` (the frame did its work; the client reconnects). Hub 4.x drops a
non-admin BROADCAST silently: nothing can tell, the call returns.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anyio

from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.hive import (
    HIVE_BROADCAST,
    HIVE_ESCALATE,
    HIVE_PROPAGATE,
    ThalovantHiveMessage,
    ThalovantHiveRefusedError,
    hive_kind,
    refusal_of,
    reply_context,
    wrap,
)
from thalovant.core.bus.query import (
    QueryAnswer,
    QueryComplete,
    QueryTimeout,
    ThalovantQueryNotSupportedError,
    ThalovantQueryRefusedError,
    ThalovantQueryResult,
    query_answer,
    query_message,
    query_result,
)
from thalovant.core.client import connection as cx
from thalovant.core.errors import (
    LocalProtocolError,
    ThalovantArgumentError,
    ThalovantArgumentTypeError,
    ThalovantConnectionError,
)
from thalovant.core.wire.message import BusMessage, HiveMessage
from thalovant.shell.arguments import check_seconds
from thalovant.shell.composer import Composer, json_object
from thalovant.shell.engine import ClientEngine
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.mesh_router import HiveHandler, HiveSubscription, LinkLoss, MeshRouter
from thalovant.shell.outcomes import SendEnded, raise_for

__all__ = ["DEFAULT_CONFIRM", "ClientMesh"]

#: Seconds a mesh send watches the link for the hub's refusal (hub 5.x refuses within milliseconds).
DEFAULT_CONFIRM = 0.5
_HTTP_DROP = "the hub dropped this client"  # the HTTP link's words for a 409 / "Client is not connected"


class ClientMesh:
    """Mixin: ``propagate``, ``escalate``, ``broadcast``, ``on_hive``, ``reply`` and ``query``."""

    _engine: ClientEngine
    _composer: Composer
    _entropy: Any
    identity: ThalovantIdentity
    protocol: str
    useragent: str
    session_id: str
    send_timeout: float
    reply_timeout: float
    _mesh_router: MeshRouter | None = None

    async def _first_use(self) -> None:  # pragma: no cover - the client's
        raise NotImplementedError

    async def _deliver(self, message: BusMessage) -> None:  # pragma: no cover - the client's
        raise NotImplementedError

    def _mesh(self) -> MeshRouter:
        if self._mesh_router is None:
            router = MeshRouter(access_key=self.identity.access_key, own_peer=self._own_peer)
            self._engine.results.frame_handlers.append(router.on_frame)
            self._engine.status_watchers.append(router.on_status)
            self._mesh_router = router
        return self._mesh_router

    def _own_peer(self) -> str | None:
        """This client's peer id as hubs write it in routes: the HELLO peer renamed to our session id (hub 5.x
        greets with a uuid of its own as the last part, then names the peer by the session of our HELLO)."""
        peer = self._engine.info().hub_peer
        return None if not peer or "::" not in peer else f"{peer.rsplit('::', 1)[0]}::{self.session_id}"

    def _http_v3(self) -> bool:
        """Hub 5.x over HTTP: it refuses a frame by dropping the client (no close code)."""
        return self.protocol == "https" and self._engine.generation == 3

    # ---- sending wrappers -------------------------------------------------------------------------

    async def _send_wrapped(
        self,
        kind: str,
        msg_type: str,
        data: Mapping[str, Any] | None,
        context: Mapping[str, Any] | None,
        target_site_id: str | None,
        confirm: float,
    ) -> None:
        wait = check_seconds("confirm", confirm, zero=True)
        if not isinstance(msg_type, str) or not msg_type.strip():
            raise ThalovantArgumentError("msg_type", "must be a non-empty string")
        if target_site_id is not None and not isinstance(target_site_id, str):
            raise ThalovantArgumentError("target_site_id", "must be a string or None")
        if target_site_id is not None and self.protocol == "mqtt":  # MQTT frames are binarized (spec §6.1)
            raise ThalovantArgumentError("target_site_id", "cannot travel over MQTT: binarized frames carry no site")
        inner = self._composer.event(msg_type, data, context)
        frame = wrap(
            kind,
            inner,
            session_id=self.session_id,
            site_id=self.identity.site_id,
            useragent=self.useragent,
            target_site_id=target_site_id,
        )
        await self._send_frame(frame, kind, wait)

    async def _send_frame(self, frame: HiveMessage, kind: str, confirm: float) -> None:
        """Send one frame and watch the link ``confirm`` seconds for the hub's refusal."""
        await self._first_use()
        router = self._mesh()
        lost: list[LinkLoss] = []
        seen = anyio.Event()

        def watch(loss: LinkLoss) -> None:
            lost.append(loss)
            seen.set()

        router.watches.append(watch)
        try:
            sent = await self._engine.send(frame, self.send_timeout)
            if isinstance(sent, cx.SendDone):  # losses before the link it left on became READY are not about it
                lost[:] = [loss for loss in lost if loss.readies >= router.readies]
            if not lost:
                seen = anyio.Event()
                raise_for(SendEnded(result=sent, wait=self.send_timeout))
                with anyio.move_on_after(confirm):
                    await seen.wait()
        finally:
            router.watches.remove(watch)
        if lost:
            raise _refused(kind, lost[0].status, ThalovantHiveRefusedError, http_drop=self._http_v3())

    async def propagate(
        self,
        msg_type: str,
        data: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        target_site_id: str | None = None,
        confirm: float = DEFAULT_CONFIRM,
    ) -> None:
        """Send the bus message ``msg_type`` wrapped in a PROPAGATE: the hub relays it to every other peer
        (and upstream); the hub whose site is ``target_site_id`` also injects it into its own bus.

        ``confirm``: seconds to watch the link for a refusal after sending (0: do not wait).

        Raises:
            ThalovantArgumentError: ``target_site_id`` over MQTT (binarized frames carry no site, spec §6.1);
                ``msg_type`` not a non-empty string; ``data`` or ``context`` no JSON object (mapping).
            ThalovantHiveRefusedError: hub 5.x closed with 4003 (``can_propagate`` is off); the client reconnects.
            ThalovantConnectionError: the link was lost right after the frame. Hub 4.0.0 always drops it after
                handling a PROPAGATE/ESCALATE from a client (the frame was relayed; the client reconnects).
            ThalovantTimeoutError: as :meth:`emit`.
        """
        await self._send_wrapped(HIVE_PROPAGATE, msg_type, data, context, target_site_id, confirm)

    async def escalate(
        self,
        msg_type: str,
        data: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        target_site_id: str | None = None,
        confirm: float = DEFAULT_CONFIRM,
    ) -> None:
        """Send the bus message ``msg_type`` wrapped in an ESCALATE: up the chain of hubs only; the hub whose
        site is ``target_site_id`` injects it into its own bus. Arguments and errors as :meth:`propagate`
        (the grant is ``can_escalate``).
        """
        await self._send_wrapped(HIVE_ESCALATE, msg_type, data, context, target_site_id, confirm)

    async def broadcast(
        self,
        msg_type: str,
        data: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        target_site_id: str | None = None,
        confirm: float = DEFAULT_CONFIRM,
    ) -> None:
        """Send the bus message ``msg_type`` wrapped in a BROADCAST (admin clients only): the hub sends it to
        every other peer; the hub whose site is ``target_site_id`` also injects it into its own bus.

        Raises:
            ThalovantHiveRefusedError: hub 5.x closed with 4003 (not an admin, or ``can_broadcast`` off).
                Hub 4.x drops a non-admin broadcast silently: no error is possible there.
            ThalovantConnectionError, ThalovantTimeoutError: as :meth:`emit`.
        """
        await self._send_wrapped(HIVE_BROADCAST, msg_type, data, context, target_site_id, confirm)

    # ---- receiving --------------------------------------------------------------------------------

    def on_hive(self, kind: str, handler: HiveHandler, *, _call: Any = None) -> HiveSubscription:
        """Call ``handler(hive)`` with each :class:`~thalovant.core.bus.hive.ThalovantHiveMessage` of ``kind``.

        ``kind``: ``broadcast``, ``propagate``, ``escalate``, ``intercom``, ``rendezvous``, ``query``,
        ``cascade``, ``ping`` or ``"*"``. Hub 5.x delivers relayed wrappers as such; hub 4.x unwraps them, so
        their inner bus message arrives as an ordinary event (:meth:`on`). The handler may be a coroutine
        function; one that raises is logged and kept. Close the subscription with ``.close()``.

        Raises:
            ThalovantArgumentError: ``kind`` names no hive kind.
            LocalProtocolError: the client is not connected (use it inside ``async with client``).
        """
        name = hive_kind(kind)
        if name is None:
            raise ThalovantArgumentError("kind", "must be one of broadcast, propagate, escalate, intercom, "
                                         "rendezvous, query, cascade, ping or '*'")  # fmt: skip
        tg = self._engine.task_group
        if tg is None:
            raise LocalProtocolError("on_hive() needs a connected client (inside 'async with client')")
        router = self._mesh()
        sub = HiveSubscription(router, name, handler, call=_call)
        router.subscriptions.append(sub)
        tg.start_soon(sub.run)
        return sub

    async def reply(
        self,
        event: ThalovantEvent | ThalovantHiveMessage,
        msg_type: str,
        data: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Answer ``event`` along its route: send ``msg_type`` with its context, ``source`` and ``destination``
        swapped when it has both (as OVOS ``Message.reply``), ``context`` merged in first.

        Raises:
            ThalovantArgumentError: ``event`` is no event, or carries no bus message (a hive frame without one);
                ``msg_type`` is not a non-empty string; ``data`` or ``context`` is no JSON object.
            ThalovantConnectionError, ThalovantTimeoutError: as :meth:`emit`.
        """
        if not isinstance(event, ThalovantEvent | ThalovantHiveMessage):
            raise ThalovantArgumentTypeError("event", "must be a ThalovantEvent or a ThalovantHiveMessage")
        if not isinstance(msg_type, str) or not msg_type.strip():
            raise ThalovantArgumentError("msg_type", "must be a non-empty string")
        if isinstance(event, ThalovantHiveMessage) and event.message is None:
            raise ThalovantArgumentError("event", "this hive frame carries no bus message to reply to")
        message = self._composer.event(msg_type, data, reply_context(event.context, context, data))
        await self._deliver(message)

    # ---- QUERY (hub 5.x) --------------------------------------------------------------------------

    async def query_stream(
        self,
        text: str,
        *,
        lang: str = "en-us",
        timeout: float | None = None,
        context: Mapping[str, Any] | None = None,
        query_id: str | None = None,
    ) -> AsyncGenerator[QueryAnswer, None]:
        """Send ``text`` as a QUERY and yield each answer as it arrives: :class:`QueryChunk` (one ``speak``),
        then :class:`QueryComplete`, or :class:`QueryTimeout` (nobody answered). Ends there, or quietly at
        ``timeout`` seconds (None: ``reply_timeout``). Raises as :meth:`query`, and ``ThalovantArgumentError``
        for a ``query_id`` a running query already uses.
        """
        wait = self.reply_timeout if timeout is None else check_seconds("timeout", timeout)
        for name, value in (("text", text), ("lang", lang), ("query_id", query_id or "-")):
            if not isinstance(value, str) or not value.strip():
                raise ThalovantArgumentError(name, "must be a non-empty string")
        ctx = json_object("context", context)
        await self._first_use()
        if self._engine.generation != 3:
            raise ThalovantQueryNotSupportedError("this hub speaks protocol v1 (hub 4.x), which ignores QUERY")
        qid = query_id or f"thalovant-query-{self._entropy(8).hex()}"
        router = self._mesh()
        if qid in router.queries:  # its answers could not be told apart: one query would get both
            raise ThalovantArgumentError("query_id", "is already in use by a running query")
        frame = query_message(text, query_id=qid, session_id=self.session_id, lang=lang,
                              site_id=self.identity.site_id, useragent=self.useragent, context=ctx)  # fmt: skip
        answers = router.open_query(qid)
        deadline = anyio.current_time() + wait
        try:
            budget = min(self.send_timeout, wait)  # the frame waits for a link no longer than the query's timeout
            sent = await self._engine.send(frame, budget)
            raise_for(SendEnded(result=sent, wait=budget))
            epoch = router.readies  # the link the frame left on: an older loss was not its
            sent_at = anyio.current_time()
            while True:
                got: ThalovantHiveMessage | LinkLoss | None = None
                with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                    got = await answers.receive()
                if got is None:
                    return
                if isinstance(got, LinkLoss) and got.readies < epoch:
                    continue
                if isinstance(got, LinkLoss):
                    soon = anyio.current_time() - sent_at <= DEFAULT_CONFIRM
                    raise _refused("query", got.status, ThalovantQueryRefusedError, http_drop=soon and self._http_v3())
                answer = query_answer({"metadata": got.metadata, "message": got.message}, qid)
                if answer is not None:
                    yield answer
                if isinstance(answer, QueryComplete | QueryTimeout):
                    return
        finally:
            router.close_query(qid)
            answers.close()

    async def query(
        self,
        text: str,
        *,
        lang: str = "en-us",
        timeout: float | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> ThalovantQueryResult:
        """Ask ``text`` with a QUERY frame (hub 5.x) and collect the streamed answer.

        Unlike :meth:`ask`, the hub answers a QUERY itself (its agent, or a hub above it), in ``speak``
        chunks and then ``hive.query.complete``. ``timeout``: seconds (None: ``reply_timeout``).

        Returns:
            The answer: ``result.text``, ``result.chunks``; ``result.unanswered`` when nobody answered
            (``hive.query.timeout``, or nothing before the timeout); ``result.timed_out`` when the timeout
            cut the stream.

        Raises:
            ThalovantArgumentError: ``text`` or ``lang`` is not a non-empty string, ``context`` no JSON object,
                ``timeout`` no positive number of seconds.
            ThalovantQueryNotSupportedError: the hub speaks protocol v1 (hub 4.x ignores QUERY).
            ThalovantQueryRefusedError: the hub closed with 4003 (the client has no ``can_escalate`` grant; over
                HTTP it dropped the client, ``code`` None). The client reconnects by itself.
            ThalovantConnectionError: the link was lost while waiting.
            ThalovantTimeoutError: no link took the frame within ``timeout`` (or ``send_timeout``, if shorter);
                it is not sent later.
        """
        collected: list[QueryAnswer] = []
        qid = f"thalovant-query-{self._entropy(8).hex()}"
        async for answer in self.query_stream(text, lang=lang, timeout=timeout, context=context, query_id=qid):
            collected.append(answer)
        ended = any(isinstance(a, QueryComplete | QueryTimeout) for a in collected)
        return query_result(qid, collected, timed_out=not ended)


def _refused(
    kind: str, status: cx.StatusChanged, error: type[ThalovantHiveRefusedError], *, http_drop: bool = False
) -> ThalovantHiveRefusedError | ThalovantConnectionError:
    """What a link lost right after a mesh frame means: the hub's refusal (4003, or hub 5.x dropping an HTTP
    client at once: ``http_drop``), else a lost link. The client reconnects either way (unless it was closed)."""
    code, reason = refusal_of(status.detail)
    if status.state is cx.ConnectionState.CLOSED:
        return ThalovantConnectionError("the client was closed while the hub had the frame", retryable=False)
    if code == 4003:
        said = f"close {code}" + (f": {reason}" if reason else "")
        return error(f"the hub refused the {kind} frame ({said}); the client reconnects", kind=kind, code=code,
                     reason=reason)  # fmt: skip
    if http_drop and _HTTP_DROP in status.detail:
        why = "hub 5.x refuses a frame type this client has no grant for that way over HTTP; the client reconnects"
        return error(f"the hub dropped this client right after the {kind} frame ({why})", kind=kind,
                     reason=_HTTP_DROP)  # fmt: skip
    if kind in (HIVE_PROPAGATE, HIVE_ESCALATE):  # hub 4.0.0 handles the frame, then fails its hive.send.upstream
        why = "hub 4.0.0 always drops it after relaying one; the client reconnects"
        return ThalovantConnectionError(
            f"the link was lost right after the {kind} frame ({why}): {status.detail[:160]}"
        )
    return ThalovantConnectionError(f"the link was lost right after the {kind} frame: {status.detail[:200]}")
