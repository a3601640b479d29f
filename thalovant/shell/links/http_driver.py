"""The HTTP driver: carries out one link epoch's requests on two keep-alive :class:`HttpConnection`\\ s.

Theory of operation
-------------------
* Polls (``GET``) and sends never share a connection: each kind has its own
  keep-alive :class:`HttpConnection`, opened on first use, so a long poll
  never holds a send back.
* Each ``StartRequest`` runs in its own task and reports (waiting for room
  in the machine's inbox) ``ResponseReceived``, or ``RequestFailed`` with a
  kind the poll machine sorts: ``not_sent`` (no byte left), ``tls_failed``
  (certificate verification, or a proxy that refused the tunnel or its
  credentials: not worth retrying), ``timeout`` or ``connect``.
* ``CancelRequest`` cancels that request's task; a cancelled request closes
  its connection, because a half-read response leaves it unusable.
* An answer still arriving is reported as ``ResponseProgress`` (its first bytes,
  then at most every quarter of the request timeout, at most every second): the
  machine's timeout for the request counts from there, and so does the shell's
  bound on the whole request (:meth:`HttpConnection.request` with ``progress``),
  so a large poll body on a slow link is not taken for a dead path.
* The epoch's first dial records its phases in ``epoch.times``; its first
  complete answer marks the hub's admission.
"""

from __future__ import annotations

import math
from typing import ClassVar

import anyio

from thalovant.core.errors import ThalovantError
from thalovant.core.links.http_wire import (
    NOT_SENT,
    TLS_FAILED,
    CancelRequest,
    RequestFailed,
    ResponseProgress,
    ResponseReceived,
    StartRequest,
)
from thalovant.core.machine import Output
from thalovant.shell.links.dial import timing
from thalovant.shell.links.epoch import LinkEpoch
from thalovant.shell.links.http import DEFAULT_MAX_BODY, HttpConnection, HttpNotSentError, HttpTimeouts

__all__ = ["POLL_MAX_BODY", "HttpDriver"]

#: Largest poll answer accepted (a GET drains a whole hub queue): a 16 MiB binary frame in base64 (hub 4.x
#: ``b64_messages``), or hub 5.x's 256 queued Noise frames of up to 65535 bytes each, in base64. A larger
#: answer fails the poll, and the frames the hub drained into it are lost (measured: NOTES.md, binary frames).
POLL_MAX_BODY = 24 * 1024 * 1024


class HttpDriver:
    """The HTTP requests of one link epoch."""

    ORDERS: ClassVar[tuple[type[Output], ...]] = (StartRequest, CancelRequest)

    def __init__(self, epoch: LinkEpoch) -> None:
        self.epoch = epoch
        self.poll: HttpConnection | None = None
        self.send: HttpConnection | None = None
        self.requests: dict[int, anyio.CancelScope] = {}

    def __repr__(self) -> str:
        return f"<HttpDriver epoch={self.epoch.number} requests={len(self.requests)}>"

    async def execute(self, order: Output) -> None:
        if isinstance(order, StartRequest):
            conn = self._connection(poll=order.method == "GET")
            scope = anyio.CancelScope()
            self.requests[order.req_id] = scope
            self.epoch.spawn(self._request, conn, order, scope)
        elif isinstance(order, CancelRequest):
            cancelled = self.requests.pop(order.req_id, None)
            if cancelled is not None:
                cancelled.cancel()

    def _connection(self, *, poll: bool) -> HttpConnection:
        conn = self.poll if poll else self.send
        if conn is None:
            ep = self.epoch.endpoint
            conn = HttpConnection(
                ep.host,
                ep.port,
                tls=ep.tls is not None,
                ssl_context=ep.tls,
                timeouts=HttpTimeouts.uniform(self.epoch.timeouts.http_request),
                proxy=ep.proxy,
                max_body=POLL_MAX_BODY if poll else DEFAULT_MAX_BODY,
            )
            if poll:
                self.poll = conn
            else:
                self.send = conn
        return conn

    async def _request(self, conn: HttpConnection, order: StartRequest, scope: anyio.CancelScope) -> None:
        fact = self.epoch.deliver
        every = min(1.0, self.epoch.timeouts.http_request / 4)
        reported = -math.inf

        async def progress() -> None:
            nonlocal reported
            now = anyio.current_time()
            if now - reported >= every:
                reported = now
                await fact(ResponseProgress(req_id=order.req_id))

        with scope, timing(self.epoch.times):  # the epoch's first dial records its phases there
            try:
                resp = await conn.request(order.method, order.target, order.headers, order.body, progress=progress)
            except HttpNotSentError as exc:  # not retryable: TLS verification failed, or a proxy refused
                kind = NOT_SENT if exc.retryable else TLS_FAILED
                await fact(RequestFailed(req_id=order.req_id, kind=kind, detail=str(exc)))
            except TimeoutError as exc:
                await fact(RequestFailed(req_id=order.req_id, kind="timeout", detail=str(exc)))
            except ThalovantError as exc:
                await fact(RequestFailed(req_id=order.req_id, kind="connect", detail=str(exc)))
            else:
                self.epoch.times.admitted(anyio.current_time())  # the hub's first answer admits the link
                headers = tuple((k, v) for k, v in resp.headers)
                await fact(ResponseReceived(req_id=order.req_id, status=resp.status, headers=headers, body=resp.body))
            finally:
                self.requests.pop(order.req_id, None)
        if scope.cancelled_caught:
            await conn.aclose()  # a half-read response leaves the connection unusable
