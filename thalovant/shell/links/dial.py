"""The dialing seam: the one place the data-plane drivers open a byte stream.

Every WebSocket and HTTP connection the shell makes is opened by
:func:`open_stream` (TCP, then TLS when a context is given), looked up on this
module at call time. Tests replace it, e.g. with
``monkeypatch.setattr(dial, "open_stream", fake)``, by a function that returns
one end of an in-memory stream pair, so a whole client runs without sockets
while everything above the byte stream (h11, wsproto, the runtime, the core)
stays real.

MQTT is the exception: paho opens and owns its socket inside
``client.connect()`` (see :mod:`thalovant.shell.links.mqtt`).
"""

from __future__ import annotations

import ssl

import anyio
import anyio.abc

__all__ = ["open_stream"]


async def open_stream(
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    tls_hostname: str | None = None,
    tls_standard_compatible: bool = True,
) -> anyio.abc.ByteStream:
    """Open a TCP stream to ``host:port``, wrapped in TLS when ``tls`` is given.

    Args:
        host: host name or IP address.
        port: TCP port.
        tls: the client context for TLS, or None for plain TCP.
        tls_hostname: name for SNI and the certificate check (default ``host``).
        tls_standard_compatible: whether the TLS stream expects a close_notify
            (False for HTTP, whose responses are framed by length).

    Raises:
        OSError: the connection failed (DNS, refused, reset).
        ssl.SSLError: the TLS handshake failed.
    """
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
