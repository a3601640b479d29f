"""What the doctor planner is told: :class:`DoctorSettings`, derived from an identity without keeping a secret.

Theory of operation
-------------------
:func:`settings_from_identity` turns an identity (or anything else: it never
raises) into the facts the planner decides the first two checks from, and the
place later probes dial:

* ``identity_problems``: every reason the identity cannot be used (empty
  access key, a ``:`` in it, no site id, a protocol it does not enable); they
  fail the ``identity`` check;
* ``endpoint_problem``: why the endpoint URL for the chosen protocol is
  unusable (unparsable, or a scheme the protocol cannot use); it fails the
  ``endpoint`` check;
* ``host`` / ``port`` / ``tls`` / ``path``: where the probes connect.

The identity summary kept for the report is the identity's own redacted
``as_dict()``; every other text passes :func:`~thalovant.core.doctor_report.scrub_text`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from thalovant.core.doctor_report import scrub_text
from thalovant.core.identity.fields import split_url
from thalovant.core.identity.model import Identity
from thalovant.core.identity.protocols import DEFAULT_PORTS, normalize_protocol

__all__ = ["DoctorSettings", "settings_from_identity"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorSettings:
    """Everything the planner needs, and no secret.

    ``identity_problems`` fail the identity check; ``endpoint_problem`` fails the
    endpoint check. ``host``/``port``/``tls``/``path`` describe where to dial.
    """

    protocol: str
    site_id: str = ""
    identity_problems: tuple[str, ...] = ()
    endpoint: str = ""
    endpoint_problem: str | None = None
    host: str = ""
    port: int = 0
    tls: bool = False
    path: str = "/"
    timeout: float = 10.0
    handshake_available: bool = False
    link_available: bool = False
    summary: Mapping[str, Any] = field(default_factory=dict)


def settings_from_identity(
    identity: object,
    *,
    protocol: str | None = None,
    timeout: float = 10.0,
    handshake_available: bool = False,
    link_available: bool = False,
) -> DoctorSettings:
    """Derive :class:`DoctorSettings` from an identity. Never raises and never keeps a secret."""
    common: dict[str, Any] = {
        "timeout": timeout if isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0 else 10.0,
        "handshake_available": handshake_available,
        "link_available": link_available,
    }
    if not isinstance(identity, Identity):
        problem = f"not a ThalovantIdentity but a {type(identity).__name__}"
        return DoctorSettings(protocol=str(protocol or ""), identity_problems=(problem,), **common)
    problems: list[str] = []
    try:
        summary: dict[str, Any] = identity.as_dict()
    except Exception as exc:  # a broken subclass; report it, do not crash the doctor
        summary = {}
        problems.append(f"as_dict() failed: {type(exc).__name__}")
    if not identity.access_key:
        problems.append("access_key is empty")
    elif ":" in identity.access_key:
        problems.append("access_key contains ':' (the hub cannot parse the token)")
    if not identity.site_id:
        problems.append("site_id is empty")
    chosen = ""
    try:
        enabled = identity.enabled_protocols()
        chosen = normalize_protocol(protocol) if protocol is not None else (enabled[0] if enabled else "https")
        identity.require_protocol(chosen)
    except Exception as exc:  # ThalovantUnsupportedProtocolError and friends
        problems.append(scrub_text(str(exc)))
    base = DoctorSettings(
        protocol=chosen or scrub_text(str(protocol or "")),
        site_id=scrub_text(identity.site_id),
        identity_problems=tuple(problems),
        summary=summary,
        **common,
    )
    if problems:
        return base
    return _with_endpoint(base, identity, chosen)


def _with_endpoint(base: DoctorSettings, identity: Identity, protocol: str) -> DoctorSettings:
    try:
        url = identity.endpoint_for(protocol) or ""
    except Exception as exc:
        return replace(base, endpoint_problem=scrub_text(str(exc)))
    split = split_url(url)
    if isinstance(split, str):
        return replace(base, endpoint_problem=f"the {protocol} endpoint {split}")
    shown = scrub_text(split.unsplit(with_userinfo=False).split("?", 1)[0])
    host = split.host[1:-1] if split.host.startswith("[") else split.host
    if protocol == "mqtt":
        creds = identity.mqtt
        tls = bool(creds is not None and (creds.tls or split.scheme in ("mqtts", "ssl")))
        port = split.port or DEFAULT_PORTS["mqtts" if tls else "mqtt"]
        allowed: tuple[str, ...] = ("mqtt", "mqtts", "ssl", "tcp", "ws", "wss")
    else:
        want = ("http", "https") if protocol == "https" else ("ws", "wss")
        allowed = want
        tls = split.scheme in ("https", "wss")
        port = split.port or DEFAULT_PORTS["https" if tls else "http"]
    if split.scheme not in allowed:
        problem = f"{shown}: a {protocol} endpoint must use {' or '.join(s + '://' for s in allowed)}"
        return replace(base, endpoint=shown, endpoint_problem=problem)
    return replace(base, endpoint=shown, host=host, port=port, tls=tls, path=split.path or "/")
