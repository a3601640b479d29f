"""The dialing seam: the one place the data-plane drivers open a byte stream, and what it measures.

Every WebSocket and HTTP connection the shell makes is opened by
:func:`open_stream` (TCP, or a tunnel through an HTTP proxy, then TLS when a
context is given), looked up on this module at call time. Tests replace it, e.g. with
``monkeypatch.setattr(dial, "open_stream", fake)``, by a function that returns
one end of an in-memory stream pair, so a whole client runs without sockets
while everything above the byte stream (h11, wsproto, the runtime, the core)
stays real (the dial phases of :class:`LinkTimes` then stay None).

Proxies. ``proxy`` is the connection's
:class:`~thalovant.core.links.proxy.ProxyPolicy`; None (the default) reads
``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` at each dial. When the policy names a
proxy for the destination, the stream is a ``CONNECT`` tunnel
(:func:`thalovant.shell.links.proxy.open_tunnel`) and TLS, if any, runs inside it
with the hub's name, so certificate checks are the same as without the proxy.

Timings. A link epoch's driver makes a :class:`LinkTimes` current (:func:`timing`) in the task that
dials; the first dial of the epoch records its phases there: ``dns_ms`` (the host name's resolution;
None for an IP literal, nothing is resolved), ``tcp_ms`` (the TCP connect to the resolved addresses,
tried in the resolver's order, the next one started after :data:`HAPPY_EYEBALLS_DELAY` as anyio
does), ``tls_ms`` (the TLS handshake; None without TLS). Through a proxy ``dns_ms`` is None (the
proxy resolves the hub's name), ``tcp_ms`` is reaching the proxy plus its answer to the ``CONNECT``
(the tunnel is the TCP path to the hub) and ``tls_ms`` the TLS with the hub inside the tunnel.

MQTT is the exception: paho opens and owns its socket inside
``client.connect()`` (see :mod:`thalovant.shell.links.mqtt`); it never uses a proxy,
and records its phases in the same :class:`LinkTimes` from paho's connect thread.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from thalovant.core.client.info import PhaseTimes
from thalovant.core.links.proxy import BadProxySetting, ProxyPolicy
from thalovant.shell.links.proxy import environment_policy, open_tunnel

__all__ = [
    "HAPPY_EYEBALLS_DELAY",
    "LinkTimes",
    "current_times",
    "is_ip_literal",
    "open_stream",
    "stream_opened",
    "timing",
]

#: Seconds before the next resolved address is tried while the previous attempt is still pending (anyio's).
HAPPY_EYEBALLS_DELAY = 0.25


@dataclass(slots=True)
class LinkTimes:
    """How long one link epoch's opening took, phase by phase, in milliseconds (None: not applicable or not
    measured). Durations only: the phases measured in paho's thread and on the event loop share no clock.

    ``opened_at``/``admitted_at`` are event-loop times (``anyio.current_time()``) of the byte stream being
    ready and of the hub's admission (WebSocket upgrade, MQTT CONNACK, first HTTP answer).
    """

    dns_ms: float | None = None
    tcp_ms: float | None = None
    tls_ms: float | None = None
    admission_ms: float | None = None
    proxied: bool = False
    dialed: bool = False
    opened_at: float | None = None
    admitted_at: float | None = None

    def opened(self, now: float) -> None:
        """The byte stream (or paho's socket) is ready at event-loop time ``now``."""
        if self.opened_at is None:
            self.opened_at = now

    def admitted(self, now: float) -> None:
        """The hub admitted the link at event-loop time ``now`` (the first call counts)."""
        if self.admitted_at is None:
            self.admitted_at = now
            if self.opened_at is not None:
                self.admission_ms = ms(now - self.opened_at)

    def phases(self, ready_at: float) -> PhaseTimes:
        """The phase times of this link, whose session became ready at event-loop time ``ready_at``."""
        handshake = None if self.admitted_at is None else ms(ready_at - self.admitted_at)
        return PhaseTimes(
            dns_ms=self.dns_ms,
            tcp_ms=self.tcp_ms,
            tls_ms=self.tls_ms,
            admission_ms=self.admission_ms,
            handshake_ms=handshake,
        )


_CURRENT: ContextVar[LinkTimes | None] = ContextVar("thalovant_link_times", default=None)


def current_times() -> LinkTimes | None:
    """The :class:`LinkTimes` the running task records into (None: nothing is measured)."""
    return _CURRENT.get()


@contextmanager
def timing(times: LinkTimes) -> Iterator[LinkTimes]:
    """Make ``times`` current for the block (dials inside record their phases there)."""
    token = _CURRENT.set(times)
    try:
        yield times
    finally:
        _CURRENT.reset(token)


def stream_opened() -> None:
    """A byte stream from the seam is ready now (marks the current :class:`LinkTimes`, whoever dialed)."""
    times = current_times()
    if times is not None:
        times.opened(anyio.current_time())


def ms(seconds: float) -> float:
    """Milliseconds, rounded to 0.1 ms."""
    return round(max(seconds, 0.0) * 1000, 1)


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IPv4/IPv6 address (nothing to resolve)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def open_stream(
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    tls_hostname: str | None = None,
    tls_standard_compatible: bool = True,
    proxy: ProxyPolicy | None = None,
) -> anyio.abc.ByteStream:
    """Open a TCP stream to ``host:port`` (directly or through a proxy), wrapped in TLS when ``tls`` is given.

    Args:
        host: host name or IP address.
        port: TCP port.
        tls: the client context for TLS, or None for plain TCP.
        tls_hostname: name for SNI and the certificate check (default ``host``).
        tls_standard_compatible: whether the TLS stream expects a close_notify
            (False for HTTP, whose responses are framed by length).
        proxy: which proxy to use; None reads the environment now (see the module docstring).

    Raises:
        OSError: the connection failed (DNS, refused, reset).
        ssl.SSLError: the TLS handshake failed.
        ThalovantProxyError: the proxy failed or refused the tunnel
            (``ThalovantProxyAuthenticationError`` for 407).
    """
    route = (environment_policy() if proxy is None else proxy).route(host, port, tls=tls is not None)
    if isinstance(route, BadProxySetting):
        raise route.error()
    times = current_times()
    if times is not None and times.dialed:
        times = None  # the epoch's first dial is the one reported (HTTP opens two connections)
    if times is not None:
        times.dialed = True
    clock = time.perf_counter
    if route is None:
        stream = await _connect(host, port, times)
    else:
        started = clock()
        stream = await open_tunnel(route, host, port)
        if times is not None:
            times.proxied, times.tcp_ms = True, ms(clock() - started)
    if tls is None:
        if times is not None:
            times.opened(anyio.current_time())
        return stream
    started = clock()
    try:
        wrapped = await TLSStream.wrap(
            stream, hostname=tls_hostname or host, ssl_context=tls, standard_compatible=tls_standard_compatible
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(stream)
        raise
    if times is not None:
        times.tls_ms = ms(clock() - started)
        times.opened(anyio.current_time())
    return wrapped


async def _connect(host: str, port: int, times: LinkTimes | None) -> anyio.abc.ByteStream:
    """Resolve ``host`` (timed) and connect to its addresses (timed), as ``anyio.connect_tcp`` would."""
    clock = time.perf_counter
    started = clock()
    if is_ip_literal(host):
        addresses = [host.strip("[]")]
    else:
        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if times is not None:
            times.dns_ms = ms(clock() - started)
    started = clock()
    stream = await _first_connected(addresses, port)
    if times is not None:
        times.tcp_ms = ms(clock() - started)
    return stream


async def _first_connected(addresses: list[str], port: int) -> anyio.abc.ByteStream:
    """Connect to the first of ``addresses`` that answers (the next one is tried after
    :data:`HAPPY_EYEBALLS_DELAY` or at once when one fails); the others are closed."""
    if len(addresses) == 1:
        return await anyio.connect_tcp(addresses[0], port)
    won: list[anyio.abc.ByteStream] = []
    errors: list[OSError] = []

    async def attempt(address: str, failed: anyio.Event, group: anyio.abc.TaskGroup) -> None:
        try:
            stream = await anyio.connect_tcp(address, port)
        except OSError as exc:
            errors.append(exc)
            failed.set()
            return
        if won:
            await anyio.aclose_forcefully(stream)
            return
        won.append(stream)
        group.cancel_scope.cancel()

    try:
        async with anyio.create_task_group() as group:
            for address in addresses:
                failed = anyio.Event()
                group.start_soon(attempt, address, failed, group)
                with anyio.move_on_after(HAPPY_EYEBALLS_DELAY):
                    await failed.wait()
    except BaseException:  # cancelled from outside after a win: the connect that gave up owns no stream
        with anyio.CancelScope(shield=True):
            for stream in won:
                await anyio.aclose_forcefully(stream)
        raise
    if won:
        return won[0]
    raise errors[-1] if errors else OSError(f"no connection attempt to port {port} succeeded")
