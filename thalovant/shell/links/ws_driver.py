"""The WebSocket driver: carries out one link epoch's WebSocket orders over a :class:`WsConnection`.

Theory of operation
-------------------
* ``OpenWebSocket`` spawns the epoch's reader task: it dials and upgrades
  (:meth:`WsConnection.connect`), reports ``WsOpened``, then reports every
  complete message as ``WsMessage`` until the connection ends, which it
  reports as ``WsClosed``. It reports through ``epoch.deliver``, so it reads
  the next message only once the machine's inbox had room for the last one.
  A refused upgrade is ``WsRejected(status)`` (an authentication refusal
  keeps its 401 or 403); a failed dial is ``WsClosed(1006)``, or
  ``WsClosed(1015)`` when retrying cannot help (TLS verification failed, the
  proxy refused the tunnel or the proxy credentials). The dial records its
  phases in ``epoch.times`` and the 101 marks the hub's admission.
* ``SendWs`` writes on the runtime's driver task, so frames leave in order,
  bounded by the send timeout; a failed or slow write aborts the stream and
  the reader reports the loss.
* ``CloseWs`` sends a close frame from a task of its own; the reader task
  receives the hub's reply and reports ``WsClosed``.
* ``PingWs`` (the liveness probe) sends a PING from a task of its own, bounded
  by the send timeout (a stalled path must not hold the runtime's task); the
  reader reports the hub's PONG as ``WsPonged``, and the first bytes read after
  the ping that complete nothing as ``WsReceiving`` (the PONG queues behind a
  large message the hub is sending: its bytes arriving prove the path). A ping
  that cannot be written needs no report: the unanswered probe is what the
  machine acts on. A ping cut off by the send timeout mid-write aborts the
  stream (:class:`WsConnection` does it: a half-written frame leaves the stream
  unusable); the reader reports the loss. Still waiting for a large send to
  finish, it has written nothing and the link stays up.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import anyio

from thalovant.core.client.connection_events import OpenWebSocket
from thalovant.core.errors import (
    ThalovantAuthenticationError,
    ThalovantConnectionError,
    ThalovantError,
    ThalovantProxyError,
)
from thalovant.core.links.ws import (
    CloseWs,
    PingWs,
    SendWs,
    WsClosed,
    WsMessage,
    WsOpened,
    WsPonged,
    WsReceiving,
    WsRejected,
)
from thalovant.core.machine import Output
from thalovant.shell.links.dial import timing
from thalovant.shell.links.epoch import LinkEpoch
from thalovant.shell.links.ws import WsClosed as ShellWsClosed
from thalovant.shell.links.ws import WsConnection, WsPong, WsProgress, WsUpgradeRejected

__all__ = ["WsDriver"]

log = logging.getLogger("thalovant")


class WsDriver:
    """The WebSocket of one link epoch."""

    ORDERS: ClassVar[tuple[type[Output], ...]] = (OpenWebSocket, SendWs, CloseWs, PingWs)

    def __init__(self, epoch: LinkEpoch) -> None:
        self.epoch = epoch
        self.ws: WsConnection | None = None

    def __repr__(self) -> str:
        return f"<WsDriver epoch={self.epoch.number} {self.ws!r}>"

    async def execute(self, order: Output) -> None:
        if isinstance(order, OpenWebSocket):
            self.epoch.spawn(self._read, order)
        elif isinstance(order, SendWs):
            await self._send(order)
        elif isinstance(order, CloseWs):
            self.epoch.spawn(self._close, order)
        elif isinstance(order, PingWs):
            self.epoch.spawn(self._ping)

    async def _read(self, order: OpenWebSocket) -> None:
        epoch, ep = self.epoch, self.epoch.endpoint
        try:
            with timing(epoch.times):  # the dial records its phases there
                ws = await WsConnection.connect(
                    ep.host,
                    ep.port,
                    order.target,
                    tls=ep.tls,
                    server_hostname=ep.server_hostname,
                    timeout=epoch.timeouts.connect,
                    extra_headers=order.headers,
                    proxy=ep.proxy,
                )
        except WsUpgradeRejected as exc:
            await epoch.deliver(WsRejected(status=getattr(exc, "status_code", 0)))
            return
        except ThalovantProxyError as exc:  # the proxy's refusal (even a 407) is not the hub's
            await epoch.deliver(WsClosed(code=1006 if exc.retryable else 1015, reason=str(exc)))
            return
        except ThalovantAuthenticationError as exc:  # 401 or 403: report the status the hub really sent
            await epoch.deliver(WsRejected(status=401 if "HTTP 401" in str(exc) else 403))
            return
        except ThalovantConnectionError as exc:  # not retryable here means TLS verification failed
            await epoch.deliver(WsClosed(code=1006 if exc.retryable else 1015, reason=str(exc)))
            return
        except ThalovantError as exc:
            await epoch.deliver(WsClosed(code=1006, reason=str(exc)))
            return
        self.ws = ws
        epoch.times.admitted(anyio.current_time())  # the upgrade was answered 101
        await epoch.deliver(WsOpened())
        try:
            while True:
                item = await ws.receive_event()
                if isinstance(item, ShellWsClosed):
                    await epoch.deliver(WsClosed(code=item.code, reason=item.reason))
                    return
                if isinstance(item, WsPong):
                    await epoch.deliver(WsPonged())
                elif isinstance(item, WsProgress):
                    await epoch.deliver(WsReceiving())
                else:
                    await epoch.deliver(WsMessage(data=item))
        except ThalovantError as exc:
            await epoch.deliver(WsClosed(code=1006, reason=str(exc)))
        finally:
            with anyio.CancelScope(shield=True):
                await ws.abort()

    async def _send(self, order: SendWs) -> None:
        ws = self.ws
        if ws is None:
            return  # the reader reports the failure; the machine accounts for the frame
        try:
            with anyio.fail_after(self.epoch.timeouts.send):
                if isinstance(order.data, str):
                    await ws.send_text(order.data)
                else:
                    await ws.send_bytes(order.data)
        except (ThalovantError, TimeoutError) as exc:
            log.debug("websocket send failed: %s", type(exc).__name__)
            await ws.abort()

    async def _ping(self) -> None:
        ws = self.ws
        if ws is None:
            return
        ws.want_progress()
        with anyio.move_on_after(self.epoch.timeouts.send):  # cut off mid-write, it aborts the stream
            try:
                await ws.send_ping()
            except ThalovantError as exc:
                log.debug("websocket ping failed: %s", type(exc).__name__)

    async def _close(self, order: CloseWs) -> None:
        if self.ws is not None:
            with anyio.move_on_after(self.epoch.timeouts.send):
                await self.ws.send_close(order.code, order.reason)  # the reader task gets the reply
