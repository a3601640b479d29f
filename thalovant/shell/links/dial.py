"""The dialing seam: the one place the data-plane drivers open a byte stream.

Every WebSocket and HTTP connection the shell makes is opened by
:func:`open_stream` (TCP, or a tunnel through an HTTP proxy, then TLS when a
context is given), looked up on this module at call time. Tests replace it, e.g. with
``monkeypatch.setattr(dial, "open_stream", fake)``, by a function that returns
one end of an in-memory stream pair, so a whole client runs without sockets
while everything above the byte stream (h11, wsproto, the runtime, the core)
stays real.

Proxies. ``proxy`` is the connection's
:class:`~thalovant.core.links.proxy.ProxyPolicy`; None (the default) reads
``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` at each dial. When the policy names a
proxy for the destination, the stream is a ``CONNECT`` tunnel
(:func:`thalovant.shell.links.proxy.open_tunnel`) and TLS, if any, runs inside it
with the hub's name, so certificate checks are the same as without the proxy.

MQTT is the exception: paho opens and owns its socket inside
``client.connect()`` (see :mod:`thalovant.shell.links.mqtt`); it never uses a proxy.
"""

from __future__ import annotations

import ssl

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from thalovant.core.links.proxy import BadProxySetting, ProxyPolicy
from thalovant.shell.links.proxy import environment_policy, open_tunnel

__all__ = ["open_stream"]


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
    if route is None:
        if tls is None:
            return await anyio.connect_tcp(host, port)
        return await anyio.connect_tcp(
            host,
            port,
            tls=True,
            ssl_context=tls,
            tls_hostname=tls_hostname,
            tls_standard_compatible=tls_standard_compatible,
        )
    tunnel = await open_tunnel(route, host, port)
    if tls is None:
        return tunnel
    try:
        return await TLSStream.wrap(
            tunnel, hostname=tls_hostname or host, ssl_context=tls, standard_compatible=tls_standard_compatible
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(tunnel)
        raise
