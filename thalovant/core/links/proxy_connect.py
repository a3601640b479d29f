"""The ``CONNECT`` exchange with an HTTP proxy, as pure values: what to ask, and what the answer means.

Theory of operation
-------------------
To reach ``hub:443`` through a proxy the client opens TCP to the proxy and sends one request
(RFC 9110 §9.3.6)::

    CONNECT hub:443 HTTP/1.1
    Host: hub:443
    Proxy-Authorization: Basic <base64 of user:password>      (only when the proxy URL has them)

Any 2xx answer means the connection is now a tunnel to ``hub:443``: whatever the client writes
next (a TLS ClientHello, the WebSocket upgrade, an HTTP request) goes to the hub unchanged.
Anything else is a refusal, sorted by :func:`judge_answer` into a typed error naming the proxy
and the status, never the credentials:

=============  ==========================================================  =========
status         error                                                       retried
=============  ==========================================================  =========
2xx            none: the tunnel is open                                    \\-
407            :class:`~thalovant.errors.ThalovantProxyAuthenticationError`  no
502, 503, 504  the proxy could not reach the hub                           yes
other 5xx, 429 the proxy failed for now                                    yes
anything else  the proxy refused the tunnel (e.g. 403 by policy)           no
=============  ==========================================================  =========

The shell (:mod:`thalovant.shell.links.proxy`) serialises the request and parses the answer's
head with h11, then hands the status, reason and ``Proxy-Authenticate`` schemes to
:func:`judge_answer`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from thalovant.core.errors import ThalovantProxyAuthenticationError, ThalovantProxyError
from thalovant.core.links.base import printable
from thalovant.core.links.proxy import ProxyUrl, host_for_authority

__all__ = ["auth_schemes", "connect_request", "judge_answer", "proxy_refused_credentials", "tunnel_target"]

_SCHEME = re.compile(r"[A-Za-z0-9_.+-]{1,24}")
_REACH = frozenset({502, 503, 504})
_MAX_SCHEMES = 4
#: How :func:`judge_answer` words a 407 (the link machines carry the error on as text, maybe cut short).
_REFUSED_407 = re.compile(r"the proxy (\S+) (?:refused the proxy credentials|requires credentials) \(HTTP 407")


def tunnel_target(host: str, port: int) -> str:
    """The ``CONNECT`` target for ``host:port`` (authority form; IPv6 in brackets).

    >>> tunnel_target("hub.example", 443), tunnel_target("::1", 5678)
    ('hub.example:443', '[::1]:5678')
    """
    return f"{host_for_authority(host)}:{port}"


def connect_request(host: str, port: int, proxy: ProxyUrl) -> tuple[str, list[tuple[str, str]]]:
    """The request target and headers that ask ``proxy`` for a tunnel to ``host:port``.

    The headers carry ``Proxy-Authorization`` when the proxy URL has credentials: the result is
    secret and must never be logged.
    """
    target = tunnel_target(host, port)
    headers = [("Host", target)]
    authorization = proxy.authorization
    if authorization is not None:
        headers.append(("Proxy-Authorization", authorization))
    return target, headers


def auth_schemes(values: Iterable[str]) -> tuple[str, ...]:
    """The authentication schemes named by ``Proxy-Authenticate`` values (``Basic``, ``Negotiate``...).

    Only the scheme tokens are kept (a few, printable): realms and challenges are dropped.

    >>> auth_schemes(['Basic realm="corp"', "Negotiate", "NTLM xyz"])
    ('Basic', 'Negotiate', 'NTLM')
    """
    found: list[str] = []
    for value in values:
        for challenge in value.split(","):
            token = challenge.strip().split(" ", 1)[0]
            if "=" not in token and _SCHEME.fullmatch(token) and token not in found:
                found.append(token)
    return tuple(found[:_MAX_SCHEMES])


def _status_text(status: int, reason: str) -> str:
    shown = printable(reason.strip(), 60)
    return f"HTTP {status} {shown}" if shown else f"HTTP {status}"


def judge_answer(
    proxy: ProxyUrl, host: str, port: int, *, status: int, reason: str = "", schemes: tuple[str, ...] = ()
) -> ThalovantProxyError | None:
    """What the proxy's answer to ``CONNECT host:port`` means: None for a tunnel, else the error.

    Args:
        proxy: the proxy that answered (named by ``http://host:port`` only).
        host: the hub's host the tunnel was asked for.
        port: the hub's port.
        status: the answer's status code.
        reason: the answer's reason phrase (untrusted: shortened and made printable).
        schemes: the ``Proxy-Authenticate`` schemes (see :func:`auth_schemes`).
    """
    if 200 <= status < 300:
        return None
    where, said, target = proxy.display, _status_text(status, reason), tunnel_target(host, port)
    if status == 407:  # short: the link machines keep 120 characters of a reason
        if proxy.username is not None:
            text = f"the proxy {where} refused the proxy credentials (HTTP 407)"
        else:
            text = f"the proxy {where} requires credentials (HTTP 407): put user:password@ in its URL"
        if schemes and not any(s.lower() == "basic" for s in schemes):
            text += f" (it offers {', '.join(schemes)}; thalovant speaks Basic only)"
        return ThalovantProxyAuthenticationError(text, proxy=where, status_code=status)
    if status in _REACH:
        text, retry = f"the proxy {where} could not reach {target} ({said})", True
    elif status >= 500 or status == 429:
        text, retry = f"the proxy {where} failed to open a tunnel to {target} ({said})", True
    else:
        text, retry = f"the proxy {where} refused the tunnel to {target} ({said})", False
    return ThalovantProxyError(text, proxy=where, status_code=status, retryable=retry)


def proxy_refused_credentials(detail: str) -> ThalovantProxyAuthenticationError | None:
    """The 407 error again, if ``detail`` (why a connection failed, as text) is :func:`judge_answer`'s 407.

    The link machines report a failed tunnel by its text only; the client uses this to raise
    :class:`~thalovant.errors.ThalovantProxyAuthenticationError` at ``connect()``, as the dial did.
    """
    match = _REFUSED_407.search(detail)
    if match is None:
        return None
    return ThalovantProxyAuthenticationError(detail, proxy=match.group(1))
