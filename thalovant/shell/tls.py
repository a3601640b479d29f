"""TLS client contexts for every thalovant link (HTTPS, WSS, MQTT over TLS).

Certificates are verified by default: the peer must present a chain to a
trusted CA and a certificate for the host name dialled. Trust comes from, in
order: ``ca_file`` (argument), ``$SSL_CERT_FILE``, then the system store.

``insecure=True`` (alias ``self_signed=True``, the 0.4.7 spelling) turns
verification off. It issues a :class:`InsecureTLSWarning` every time, because
anyone on the path can then read the access key. Prefer ``ca_file=`` with the
hub's own CA.
"""

from __future__ import annotations

import os
import ssl
import warnings


class InsecureTLSWarning(UserWarning):
    """TLS certificate verification was switched off on purpose."""


def make_ssl_context(
    *, ca_file: str | os.PathLike[str] | None = None, insecure: bool = False, self_signed: bool | None = None
) -> ssl.SSLContext:
    """Build a client ``SSLContext``.

    Args:
        ca_file: PEM file of CA certificates to trust instead of the defaults.
            When None, ``$SSL_CERT_FILE`` is used if set, else the system store.
        insecure: disable certificate and host-name verification (warns).
        self_signed: alias of ``insecure`` kept for 0.4.7 callers.

    Returns:
        A context with TLS 1.2 as the minimum version.

    Raises:
        FileNotFoundError: ``ca_file`` (or ``$SSL_CERT_FILE``) does not exist.
        ssl.SSLError: the CA file is not valid PEM.
    """
    if self_signed is not None:
        insecure = insecure or self_signed
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        warnings.warn(
            "TLS certificate verification is disabled (insecure=True): the hub's identity is not checked "
            "and credentials can be intercepted; pass ca_file= instead",
            InsecureTLSWarning,
            stacklevel=2,
        )
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    chosen = ca_file if ca_file is not None else (os.environ.get("SSL_CERT_FILE") or None)
    if chosen is not None:
        ctx.load_verify_locations(cafile=os.fspath(chosen))
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return ctx
