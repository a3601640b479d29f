"""The doctor's report: its checks, their statuses and hints, and how the report is kept free of secrets.

Theory of operation
-------------------
A report (:class:`ThalovantDoctorReport`) is the identity summary plus one
:class:`ThalovantDoctorCheck` per :class:`ProbeKind`, in :data:`CHECK_ORDER`.
The planner (:mod:`thalovant.core.doctor`) builds the checks with
:func:`make_check`; the shell only runs probes and never writes a check itself.

Secrets are kept out twice. Every text that reaches a check passes
:func:`scrub_text`, which cuts any ``authorization=`` query value, so a probe
error quoting a URL cannot leak the access key. Before a report leaves the
doctor, :func:`scrub_report` replaces the identity's literal secrets (and the
``authorization`` token forms built from the access key, see
:func:`secret_texts`) with ``***``.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from thalovant.core.errors import LocalProtocolError, ThalovantError
from thalovant.core.identity.model import Identity
from thalovant.core.links.base import percent_encode
from thalovant.core.wire.auth import authorization_token

__all__ = [
    "CHECK_ORDER",
    "DEFAULT_HINTS",
    "TRANSPORT_CHECKS",
    "TRANSPORT_HINTS",
    "CheckStatus",
    "ProbeKind",
    "ThalovantDoctorCheck",
    "ThalovantDoctorReport",
    "identity_summary_047",
    "make_check",
    "scrub_report",
    "scrub_text",
    "secret_texts",
    "transport_check",
]


class CheckStatus(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    WARNING = "warning"


class ProbeKind(enum.Enum):
    IDENTITY = "identity"
    ENDPOINT = "endpoint"
    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    ADMISSION = "admission"
    HANDSHAKE = "handshake"
    LINK = "link"


#: The order checks run and are reported in.
CHECK_ORDER: tuple[ProbeKind, ...] = tuple(ProbeKind)

#: What to do next when a check failed and the probe gave no better hint.
DEFAULT_HINTS: Mapping[ProbeKind, str] = {
    ProbeKind.IDENTITY: "fix the identity file (ask the hub admin for a fresh one if in doubt)",
    ProbeKind.ENDPOINT: "set default_master (or the data_plane_endpoints entry for this protocol) to the hub's URL",
    ProbeKind.DNS: "check the host name spelling and this machine's DNS / hosts configuration",
    ProbeKind.TCP: "check that the hub is running and listens on this host and port, and that no firewall blocks it",
    ProbeKind.TLS: "pass ca_file= (CLI --ca-file) with the hub's CA, or insecure=True for a test hub",
    ProbeKind.ADMISSION: "check the access key with the hub admin and that this port serves the selected protocol",
    ProbeKind.HANDSHAKE: "check that password / crypto_key match the hub's entry for this client",
    ProbeKind.LINK: "the link dropped after the handshake; check the hub's log and the network",
}

#: The checks of a client with ``transport=``, thalovant 0.4.7's four (no network to probe: the
#: transport replaces DNS, TCP, TLS and admission).
TRANSPORT_CHECKS: tuple[str, ...] = ("identity", "endpoint", "connect", "transport")

#: What to do next when a ``transport=`` check failed.
TRANSPORT_HINTS: Mapping[str, str] = {
    "identity": DEFAULT_HINTS[ProbeKind.IDENTITY],
    "endpoint": DEFAULT_HINTS[ProbeKind.ENDPOINT],
    "connect": "the transport's connect() failed (or, over an in-memory hub, the handshake): see the detail",
    "transport": "the transport says it is not connected; see its last_error()",
}

_MAX_TEXT = 300
_TOKEN = re.compile(r"(authorization=)[^\s&#'\"]*", re.IGNORECASE)


def scrub_text(text: object) -> str:
    """``text`` as one safe line: ``authorization=`` values cut, control characters replaced, length capped."""
    raw = text if isinstance(text, str) else repr(text)
    cleaned = _TOKEN.sub(r"\1***", raw)
    cleaned = "".join(c if c.isprintable() else " " for c in cleaned)
    return cleaned if len(cleaned) <= _MAX_TEXT else cleaned[: _MAX_TEXT - 3] + "..."


@dataclass(frozen=True, slots=True)
class ThalovantDoctorCheck:
    """One doctor check (0.4.7 fields ``name, ok, detail, duration_ms`` plus ``status`` and ``hint``).

    Attributes:
        name: the check: identity, endpoint, dns, tcp, tls, admission, handshake or link.
        ok: False only when the check failed (skipped and warning checks are ok).
        detail: what was found. Never contains a secret.
        duration_ms: how long the probe took; 0 for checks that did not run.
        status: ``"ok"``, ``"failed"``, ``"skipped"`` or ``"warning"``; derived from ``ok`` when empty.
        hint: what to do next, or ``""``.
    """

    name: str
    ok: bool
    detail: str
    duration_ms: float = 0.0
    status: str = ""
    hint: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", "ok" if self.ok else "failed")
        allowed = {s.value for s in CheckStatus}
        if self.status not in allowed:
            raise LocalProtocolError(f"status must be one of {sorted(allowed)}")
        if self.ok != (self.status != "failed"):
            raise LocalProtocolError("ok must be False exactly when status is 'failed'")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: name, ok, status, detail, hint and ``duration_ms`` rounded to 3 decimals."""
        return {
            "name": self.name,
            "ok": self.ok,
            "status": self.status,
            "detail": self.detail,
            "hint": self.hint,
            "duration_ms": round(self.duration_ms, 3),
        }

    def format(self) -> str:
        """One line: ``- name: status (N ms) - detail; hint: ...``."""
        ms = f" ({self.duration_ms:.1f} ms)" if self.duration_ms > 0 else ""
        hint = f"; hint: {self.hint}" if self.hint else ""
        return f"- {self.name}: {self.status}{ms} - {self.detail}{hint}"


@dataclass(frozen=True, slots=True)
class ThalovantDoctorReport:
    """The doctor's verdict.

    Attributes:
        identity: the redacted identity summary (``identity.as_dict()``).
        checks: every check, in :data:`CHECK_ORDER`.
        protocol: the protocol that was checked (``""`` if unknown).
    """

    identity: dict[str, Any]
    checks: tuple[ThalovantDoctorCheck, ...]
    protocol: str = ""

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(check.ok for check in self.checks)

    def check(self, name: str) -> ThalovantDoctorCheck | None:
        """The check called ``name``, or None."""
        return next((c for c in self.checks if c.name == name), None)

    def format(self) -> str:
        """``Thalovant doctor: ok|failed`` and then one line per check."""
        head = f"Thalovant doctor: {'ok' if self.ok else 'failed'}"
        return "\n".join([head, *(c.format() for c in self.checks)])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{ok, protocol, identity, checks[]}``."""
        return {
            "ok": self.ok,
            "protocol": self.protocol,
            "identity": self.identity,
            "checks": [c.as_dict() for c in self.checks],
        }


def make_check(
    kind: ProbeKind, status: CheckStatus, detail: str, hint: str = "", duration_ms: float = 0.0
) -> ThalovantDoctorCheck:
    """The check ``kind`` with ``status`` (``ok`` follows from the status)."""
    return ThalovantDoctorCheck(kind.value, status is not CheckStatus.FAILED, detail, duration_ms, status.value, hint)


def transport_check(name: str, status: CheckStatus, detail: str, duration_ms: float = 0.0) -> ThalovantDoctorCheck:
    """The ``transport=`` check ``name`` (one of :data:`TRANSPORT_CHECKS`); a failed one gets its hint.

    Raises:
        LocalProtocolError: ``name`` is not one of :data:`TRANSPORT_CHECKS`.
    """
    if name not in TRANSPORT_CHECKS:
        raise LocalProtocolError(f"a transport check is one of {list(TRANSPORT_CHECKS)}")
    hint = TRANSPORT_HINTS[name] if status is CheckStatus.FAILED else ""
    return ThalovantDoctorCheck(name, status is not CheckStatus.FAILED, detail, duration_ms, status.value, hint)


def identity_summary_047(identity: Identity) -> dict[str, Any]:
    """``identity`` summarised as thalovant 0.4.7's ``as_dict()`` did, without secrets.

    ``site_id``, ``default_master``, ``default_port``, ``default_path``; then ``data_plane_endpoints``,
    ``mqtt`` (``{endpoint, tls}``) and ``metadata`` (secret-named keys as ``"***"``) only when present.
    No ``protocols`` (0.4.7 reported none).
    """
    full = identity.as_dict()
    out = {key: full.get(key) for key in ("site_id", "default_master", "default_port", "default_path")}
    for key in ("data_plane_endpoints", "mqtt", "metadata"):
        if full.get(key):
            out[key] = full[key]
    return out


# ---- secrets ------------------------------------------------------------------------------------


def secret_texts(identity: object, useragent: str) -> list[str]:
    """Every secret text of ``identity`` (an identity or a raw mapping) and its token forms, longest first."""
    values: list[object] = []
    if isinstance(identity, Identity):
        values += [identity.access_key, identity.password, identity.crypto_key]
        if identity.mqtt is not None:
            values += [identity.mqtt.password, identity.mqtt.username]
    elif isinstance(identity, Mapping):
        values += [identity.get(k) for k in ("access_key", "key", "api_key", "accessKey", "apiKey", "password")]
        values += [identity.get(k) for k in ("crypto_key", "cryptoKey")]
        mqtt = identity.get("mqtt")
        if isinstance(mqtt, Mapping):
            values += [mqtt.get("password"), mqtt.get("username")]
    texts = {v for v in values if isinstance(v, str) and len(v) >= 4}
    for key in list(texts):
        try:
            token = authorization_token(useragent, key)
        except ThalovantError:
            continue
        texts |= {token, percent_encode(token)}
    return sorted(texts, key=len, reverse=True)


def scrub_report(report: ThalovantDoctorReport, secrets: Sequence[str]) -> ThalovantDoctorReport:
    """``report`` with every text of ``secrets`` replaced by ``***`` (pass them longest first)."""

    def clean(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    checks = tuple(replace(c, detail=clean(c.detail), hint=clean(c.hint)) for c in report.checks)
    identity = json.loads(clean(json.dumps(report.identity, default=str)))
    return ThalovantDoctorReport(identity, checks, report.protocol)
