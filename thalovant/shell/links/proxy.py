"""HTTP CONNECT proxies: read the environment, open a tunnel through a proxy.

Theory of operation
-------------------
What to do is decided by the pure :mod:`thalovant.core.links.proxy` (which proxy, if any) and
:mod:`thalovant.core.links.proxy_connect` (the request, and what the answer means). This module
does the IO:

* :func:`proxy_policy` turns the client's ``proxy=`` argument into the policy its links dial
  with: ``True`` (the default) means "the environment, read at each dial" (returned as None),
  ``None`` or ``False`` mean no proxy, and a URL string means that proxy for every connection;
* :func:`environment_policy` reads ``https_proxy``/``http_proxy``/``no_proxy`` (either case) from
  ``os.environ``;
* :func:`open_tunnel` connects to the proxy, sends ``CONNECT host:port`` (h11 writes it and parses
  the answer's head, at most 16 KiB), and returns the stream once the proxy answered 2xx. The
  caller then speaks to the hub through it: :func:`thalovant.shell.links.dial.open_stream` starts
  TLS inside the tunnel for ``wss``/``https``.

Failures leave as :class:`~thalovant.errors.ThalovantProxyError` (the proxy unreachable, closed,
not speaking HTTP, or refusing the tunnel) or its subclass
:class:`~thalovant.errors.ThalovantProxyAuthenticationError` (407); every message names the proxy
as ``http://host:port``, never its credentials. No deadline is kept here: the caller's
(``connect_timeout``) covers the TCP connect to the proxy and the whole ``CONNECT`` exchange.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import anyio
import anyio.abc
import h11

from thalovant.core.errors import ThalovantProxyError
from thalovant.core.links.base import printable
from thalovant.core.links.proxy import DIRECT, ProxyPolicy, ProxyUrl
from thalovant.core.links.proxy_connect import auth_schemes, connect_request, judge_answer, tunnel_target

__all__ = ["ProxyOption", "environment_policy", "open_tunnel", "proxy_policy"]

log = logging.getLogger("thalovant")

#: What the client's ``proxy=`` argument takes (see :func:`proxy_policy`).
ProxyOption = str | bool | ProxyPolicy | None

_MAX_HEAD = 16 * 1024
_READ = 4096
_MAX_INFORMATIONAL = 8


def environment_policy(environ: Mapping[str, str] | None = None) -> ProxyPolicy:
    """The proxies the environment names (``os.environ`` unless ``environ`` is given)."""
    return ProxyPolicy.from_environ(os.environ if environ is None else environ)


def proxy_policy(proxy: ProxyOption = True) -> ProxyPolicy | None:
    """The policy for a client's ``proxy=`` argument; None means "the environment, at each dial".

    Args:
        proxy: ``True``: ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` (the default); ``None`` or
            ``False``: never a proxy; ``"http://[user:password@]host[:port]"``: that proxy for every
            connection (``NO_PROXY`` is not read); a :class:`~thalovant.core.links.proxy.ProxyPolicy`
            as it is.

    Raises:
        LocalProtocolError: the URL is not a usable ``http://`` proxy URL (the message names
            ``proxy``, never the value).
    """
    if proxy is True:
        return None
    if proxy is None or proxy is False:
        return DIRECT
    if isinstance(proxy, ProxyPolicy):
        return proxy
    return ProxyPolicy.fixed(proxy)


async def open_tunnel(proxy: ProxyUrl, host: str, port: int) -> anyio.abc.ByteStream:
    """Connect to ``proxy`` and ask it for a tunnel to ``host:port``; return the tunnel.

    Raises:
        ThalovantProxyAuthenticationError: the proxy answered 407.
        ThalovantProxyError: the proxy is unreachable, closed the connection, did not answer
            HTTP, or answered anything but 2xx (``.status_code``).
    """
    try:
        stream: anyio.abc.ByteStream = await anyio.connect_tcp(proxy.host, proxy.port)
    except OSError as exc:
        reason = printable(exc.strerror or str(exc) or type(exc).__name__, 80)
        raise ThalovantProxyError(f"cannot reach the proxy {proxy.display} ({reason})", proxy=proxy.display) from None
    try:
        await _handshake(stream, proxy, host, port)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(stream)
        raise
    log.debug("tunnel to %s open through the proxy %s", tunnel_target(host, port), proxy.display)
    return stream


async def _handshake(stream: anyio.abc.ByteStream, proxy: ProxyUrl, host: str, port: int) -> None:
    where = proxy.display
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
    target, headers = connect_request(host, port, proxy)
    request = conn.send(h11.Request(method="CONNECT", target=target, headers=headers))
    request += conn.send(h11.EndOfMessage())
    try:
        await stream.send(request)
        answer = await _read_answer(stream, conn)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        raise ThalovantProxyError(f"the connection to the proxy {where} was lost", proxy=where) from None
    except h11.RemoteProtocolError:
        raise ThalovantProxyError(
            f"the proxy {where} did not answer the CONNECT with HTTP (is it an HTTP proxy?)",
            proxy=where,
            retryable=False,
        ) from None
    if answer is None:
        raise ThalovantProxyError(f"the proxy {where} closed the connection before answering the CONNECT", proxy=where)
    schemes = auth_schemes(v.decode("latin-1") for k, v in answer.headers if k == b"proxy-authenticate")
    reason = answer.reason.decode("latin-1")
    refused = judge_answer(proxy, host, port, status=answer.status_code, reason=reason, schemes=schemes)
    if refused is not None:
        raise refused
    extra, _closed = conn.trailing_data
    if extra:
        raise ThalovantProxyError(
            f"the proxy {where} sent data into the tunnel before it was used", proxy=where, retryable=False
        )


async def _read_answer(stream: anyio.abc.ByteStream, conn: h11.Connection) -> h11.Response | None:
    """The proxy's final answer (h11 bounds its head), or None when the proxy closed first."""
    informational, received = 0, 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                chunk = await stream.receive(_READ)
            except anyio.EndOfStream:
                chunk = b""
            if not chunk and not received:
                return None
            received += len(chunk)
            conn.receive_data(chunk)
        elif isinstance(event, h11.InformationalResponse):
            informational += 1
            if informational > _MAX_INFORMATIONAL:
                raise h11.RemoteProtocolError("too many informational answers")
        elif isinstance(event, h11.Response):
            return event
        else:  # ConnectionClosed
            return None
