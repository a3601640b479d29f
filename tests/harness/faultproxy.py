"""A loopback TCP fault proxy for tests: forwards client <-> hub bytes and misbehaves on command.

Theory of operation
-------------------
:class:`FaultProxy` listens on ``127.0.0.1`` (a free port) and, for every connection it accepts,
opens a TCP connection to ``upstream_port`` on 127.0.0.1 (the hub's WebSocket/HTTP port, or
mosquitto's for MQTT) and copies bytes both ways with one task per direction. A test points the
client's identity at :attr:`FaultProxy.port` (:func:`identity_through`) and switches the proxy's
:class:`Fault` at any time with :meth:`FaultProxy.set`; the new behaviour applies at once to every
open connection and to every later one:

``PASS``
    forward everything unchanged.
``STALL``
    stop forwarding both ways, keep the sockets open (the proxy stops reading: TCP pushes back).
    Bytes already read wait (at most one chunk per direction) and flow when the stall ends.
``HALF_OPEN``
    client -> hub is forwarded; hub -> client is read and silently dropped.
``RST``
    every open connection is closed with ``SO_LINGER 0`` on both sides (the peers see a reset);
    connections accepted while the mode lasts are reset the same way at once.
``DELAY``
    every chunk waits ``delay`` seconds before it is forwarded (per direction, in order).
``THROTTLE``
    at most ``rate`` bytes per second per direction (sent in slices ten times a second).
``DROP_MID_FRAME``
    the next chunk in direction ``cut`` (``"s2c"`` hub -> client, default, or ``"c2s"``) is forwarded
    only in part (its first half, at least one byte), then the connection is reset both sides.

Bounds: at most ``max_connections`` connections at once (more are reset at accept), each lives at
most ``max_lifetime`` seconds (then reset), a chunk is at most 64 KiB and at most one chunk per
direction is held, the upstream connect waits at most ``CONNECT_TIMEOUT``. Counters in
:attr:`FaultProxy.stats`. Only loopback addresses: the upstream host is always 127.0.0.1.

Use it inside the test's event loop (``async with FaultProxy(port) as proxy``; ``set`` is a plain
method of that loop) or in a thread of its own with :func:`faultproxy_in_thread`.
"""

from __future__ import annotations

import enum
import socket
import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.from_thread import BlockingPortal, start_blocking_portal

__all__ = ["Fault", "FaultProxy", "ThreadedFaultProxy", "faultproxy_in_thread", "identity_through"]

HOST = "127.0.0.1"
CHUNK = 65536
CONNECT_TIMEOUT = 5.0
_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class Fault(enum.Enum):
    """What the proxy does to the bytes it carries (see the module docstring)."""

    PASS = "pass"
    STALL = "stall"
    HALF_OPEN = "half-open"
    RST = "rst"
    DELAY = "delay"
    THROTTLE = "throttle"
    DROP_MID_FRAME = "drop-mid-frame"


def _abort(stream: anyio.abc.SocketStream | None) -> None:
    """Make the next close of ``stream`` a reset (SO_LINGER on, 0 s)."""
    if stream is None:
        return
    with suppress(OSError, anyio.ClosedResourceError):
        raw: socket.socket = stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@dataclass(eq=False)
class _Link:
    """One proxied connection: its two sockets and the scope that ends it."""

    client: anyio.abc.SocketStream
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    upstream: anyio.abc.SocketStream | None = None
    was_reset: bool = False

    def reset(self) -> None:
        self.was_reset = True
        _abort(self.client)
        _abort(self.upstream)
        self.scope.cancel()


@dataclass
class FaultProxy:
    """The proxy (see the module docstring); ``port`` is where clients connect once it is entered."""

    upstream_port: int
    max_connections: int = 32
    max_lifetime: float = 120.0
    fault: Fault = Fault.PASS
    delay: float = 0.0
    rate: int = 0
    cut: Literal["s2c", "c2s"] = "s2c"
    port: int = 0
    stats: Counter[str] = field(default_factory=Counter)
    _links: set[_Link] = field(default_factory=set, repr=False)
    _changed: anyio.Event | None = field(default=None, repr=False)
    _tg: anyio.abc.TaskGroup | None = field(default=None, repr=False)
    _listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = field(default=None, repr=False)

    async def __aenter__(self) -> FaultProxy:
        self._changed = anyio.Event()
        self._listener = await anyio.create_tcp_listener(local_host=HOST, local_port=0)
        self.port = self._listener.extra(SocketAttribute.local_port)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._listener.serve, self._serve)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._tg is not None and self._listener is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        await self._listener.aclose()

    def set(
        self,
        fault: Fault,
        *,
        delay: float | None = None,
        rate: int | None = None,
        cut: Literal["s2c", "c2s"] | None = None,
    ) -> None:
        """Switch to ``fault`` now (call it from the proxy's event loop); ``RST`` resets every open connection."""
        if delay is not None:
            self.delay = delay
        if rate is not None:
            self.rate = rate
        if cut is not None:
            self.cut = cut
        if fault is Fault.THROTTLE and self.rate <= 0:
            raise ValueError("THROTTLE needs rate > 0 bytes per second")
        self.fault = fault
        self.stats[f"set {fault.value}"] += 1
        if fault is Fault.RST:
            for link in list(self._links):
                self.stats["reset"] += 1
                link.reset()
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()

    @property
    def open_connections(self) -> int:
        """Connections open right now."""
        return len(self._links)

    # ---- one connection -------------------------------------------------------------------------------

    async def _serve(self, client: anyio.abc.SocketStream) -> None:
        self.stats["accepted"] += 1
        link = _Link(client)
        if self.fault is Fault.RST or len(self._links) >= self.max_connections:
            self.stats["reset at accept"] += 1
            _abort(client)
            await client.aclose()
            return
        self._links.add(link)
        try:
            with link.scope:
                link.scope.deadline = anyio.current_time() + self.max_lifetime
                with anyio.fail_after(CONNECT_TIMEOUT):
                    link.upstream = await anyio.connect_tcp(HOST, self.upstream_port)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._pump, link, client, link.upstream, "c2s", tg.cancel_scope)
                    tg.start_soon(self._pump, link, link.upstream, client, "s2c", tg.cancel_scope)
            if link.scope.cancelled_caught and not link.was_reset:
                self.stats["lifetime over"] += 1
                link.reset()  # the lifetime ran out
        except (TimeoutError, *_ERRORS):
            self.stats["upstream failed"] += 1
            _abort(client)
        finally:
            self._links.discard(link)
            with anyio.CancelScope(shield=True):
                for stream in (client, link.upstream):
                    if stream is not None:
                        with suppress(*_ERRORS):
                            await stream.aclose()

    async def _until_changed(self) -> None:
        assert self._changed is not None
        await self._changed.wait()

    async def _pump(
        self,
        link: _Link,
        src: anyio.abc.SocketStream,
        dst: anyio.abc.SocketStream,
        direction: str,
        scope: anyio.CancelScope,
    ) -> None:
        try:
            while True:
                while self.fault is Fault.STALL:
                    await self._until_changed()
                data = await src.receive(CHUNK)
                while self.fault is Fault.STALL:  # read just before the stall: held until it ends
                    await self._until_changed()
                await self._forward(link, data, dst, direction)
        except _ERRORS:
            pass
        with suppress(*_ERRORS):
            await dst.send_eof()  # one side ended: let the other see the end, then end the connection
        scope.cancel()

    async def _forward(self, link: _Link, data: bytes, dst: anyio.abc.SocketStream, direction: str) -> None:
        fault = self.fault
        if fault is Fault.HALF_OPEN and direction == "s2c":
            self.stats["dropped bytes"] += len(data)
            return
        if fault is Fault.DROP_MID_FRAME and direction == self.cut:
            part = data[: max(1, len(data) // 2)]
            await dst.send(part)
            self.stats[f"{direction} bytes"] += len(part)
            self.stats["cut"] += 1
            link.reset()
            await anyio.sleep_forever()  # cancelled by the reset
        if fault is Fault.DELAY and self.delay > 0:
            await anyio.sleep(self.delay)
        if fault is Fault.THROTTLE and self.rate > 0:
            step = max(1, self.rate // 10)
            for start in range(0, len(data), step):
                await dst.send(data[start : start + step])
                await anyio.sleep(0.1)
        else:
            await dst.send(data)
        self.stats[f"{direction} bytes"] += len(data)


def identity_through(identity: dict[str, Any], protocol: str, port: int) -> dict[str, Any]:
    """A copy of a harness identity whose ``protocol`` endpoint is ``127.0.0.1:<port>`` (the proxy)."""
    out = dict(identity)
    endpoints = dict(out.get("data_plane_endpoints") or {})
    if protocol == "mqtt":
        endpoints["mqtt"] = f"mqtt://{HOST}:{port}"
        out["mqtt"] = {**out["mqtt"], "endpoint": endpoints["mqtt"]}
    elif protocol == "wss":
        endpoints["wss"] = f"ws://{HOST}:{port}"
    elif protocol == "https":
        endpoints["https"] = f"http://{HOST}:{port}"
        out["default_port"] = port
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
    out["data_plane_endpoints"] = endpoints
    return out


@dataclass
class ThreadedFaultProxy:
    """A :class:`FaultProxy` on an event loop of its own thread; ``set`` may be called from any thread."""

    proxy: FaultProxy
    portal: BlockingPortal

    @property
    def port(self) -> int:
        return self.proxy.port

    def set(self, fault: Fault, **kwargs: Any) -> None:
        """:meth:`FaultProxy.set`, run on the proxy's loop."""
        self.portal.call(lambda: self.proxy.set(fault, **kwargs))


@contextmanager
def faultproxy_in_thread(upstream_port: int, **kwargs: Any) -> Iterator[ThreadedFaultProxy]:
    """A :class:`FaultProxy` running in a thread of its own (for blocking tests)."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(FaultProxy(upstream_port, **kwargs)) as proxy,
    ):
        yield ThreadedFaultProxy(proxy, portal)
