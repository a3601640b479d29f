"""Doctor: the pure planner behind ``thalovant doctor`` and ``client.doctor()``.

Theory of operation
-------------------
The doctor answers "why can this client not talk to its hub?" by running a
fixed chain of checks, cheapest and most basic first::

    identity -> endpoint -> dns -> tcp -> tls -> admission -> handshake -> link

``identity`` and ``endpoint`` need no IO, so the planner decides them itself
from :class:`DoctorSettings` (built by :func:`settings_from_identity`, which
never keeps a secret). Every later check is an order :class:`RunProbe` that the
shell executes with its own time bound and answers with ``ProbeFinished``.
Probes run one at a time, in order, because each depends on the previous:
there is no point in a TLS handshake when TCP was refused. A check whose
predecessor failed is recorded as ``skipped`` with the reason and a hint, so
the report always lists all eight checks.

Three checks can be skipped without any failure: ``tls`` on a plain
(``http``/``ws``/``mqtt``) endpoint, and ``handshake`` / ``link`` when the
caller gave no callback to run them (they need a real client).

Time enters as ``now``; the planner times every probe itself. If the shell
never answers, ``deadline`` (probe timeout plus a grace second) makes a
``Tick`` fail the probe. An answer that is not a :class:`ProbeOutcome`, or
has an unknown id, never raises: it becomes a failed check or a ``Note``.

Every text that reaches a check passes :func:`scrub_text`, which cuts any
``authorization=`` query value, so a probe error quoting a URL cannot leak the
access key. The shell additionally removes the identity's literal secrets.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from thalovant.core.errors import LocalProtocolError
from thalovant.core.identity.fields import split_url
from thalovant.core.identity.model import Identity
from thalovant.core.identity.protocols import normalize_protocol
from thalovant.core.machine import Input, Note, NoteLevel, Output, Tick

__all__ = [
    "CHECK_ORDER",
    "CheckStatus",
    "Doctor",
    "DoctorSettings",
    "DoctorState",
    "Done",
    "Finding",
    "ProbeFinished",
    "ProbeKind",
    "ProbeOutcome",
    "ProbeParams",
    "RunProbe",
    "Start",
    "ThalovantDoctorCheck",
    "ThalovantDoctorReport",
    "scrub_text",
    "settings_from_identity",
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

_RUN_THROUGH_CLIENT = "run through the client (client.doctor() or the thalovant CLI)"
_MAX_TEXT = 300
_TOKEN = re.compile(r"(authorization=)[^\s&#'\"]*", re.IGNORECASE)


def scrub_text(text: object) -> str:
    """``text`` as one safe line: ``authorization=`` values cut, control characters replaced, length capped."""
    raw = text if isinstance(text, str) else repr(text)
    cleaned = _TOKEN.sub(r"\1***", raw)
    cleaned = "".join(c if c.isprintable() else " " for c in cleaned)
    return cleaned if len(cleaned) <= _MAX_TEXT else cleaned[: _MAX_TEXT - 3] + "..."


# ---- public value types -------------------------------------------------------------------------


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


# ---- settings -----------------------------------------------------------------------------------


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
    from dataclasses import replace

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
        port = split.port or (8883 if tls else 1883)
        allowed: tuple[str, ...] = ("mqtt", "mqtts", "ssl", "tcp", "ws", "wss")
    else:
        want = ("http", "https") if protocol == "https" else ("ws", "wss")
        allowed = want
        tls = split.scheme in ("https", "wss")
        port = split.port or (443 if tls else 80)
    if split.scheme not in allowed:
        problem = f"{shown}: a {protocol} endpoint must use {' or '.join(s + '://' for s in allowed)}"
        return replace(base, endpoint=shown, endpoint_problem=problem)
    return replace(base, endpoint=shown, host=host, port=port, tls=tls, path=split.path or "/")


# ---- machine vocabulary -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeParams:
    """Where and how to probe. Contains no secret: the shell adds credentials itself."""

    protocol: str
    host: str
    port: int
    tls: bool
    path: str
    timeout: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeOutcome:
    """What a probe found. ``status`` must be OK, FAILED or WARNING."""

    status: CheckStatus
    detail: str
    hint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Start(Input):
    settings: DoctorSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeFinished(Input):
    probe_id: int
    outcome: object


@dataclass(frozen=True, slots=True, kw_only=True)
class RunProbe(Output):
    probe_id: int
    kind: ProbeKind
    params: ProbeParams


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding(Output):
    """A check was decided (ran, failed or was skipped)."""

    check: ThalovantDoctorCheck


@dataclass(frozen=True, slots=True, kw_only=True)
class Done(Output):
    report: ThalovantDoctorReport


class DoctorState(enum.Enum):
    IDLE = "idle"
    PROBING = "probing"
    DONE = "done"


_GRACE = 1.0


class Doctor:
    """The doctor planner machine (see the module docstring)."""

    def __init__(self) -> None:
        self._state = DoctorState.IDLE
        self._settings: DoctorSettings | None = None
        self._checks: list[ThalovantDoctorCheck] = []
        self._next_id = 0
        self._current: tuple[int, ProbeKind, float] | None = None

    @property
    def state(self) -> DoctorState:
        return self._state

    @property
    def deadline(self) -> float | None:
        if self._current is None or self._settings is None:
            return None
        return self._current[2] + self._settings.timeout + _GRACE

    @property
    def checks(self) -> tuple[ThalovantDoctorCheck, ...]:
        """The checks decided so far."""
        return tuple(self._checks)

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns the orders and findings it causes."""
        if isinstance(inp, Start):
            if self._state is not DoctorState.IDLE:
                raise LocalProtocolError("the doctor was already started")
            if not isinstance(inp.settings, DoctorSettings):
                raise LocalProtocolError("Start.settings must be DoctorSettings")
            self._settings = inp.settings
            self._state = DoctorState.PROBING
            out: list[Output] = [self._record(self._identity_check())]
            out.append(self._record(self._endpoint_check()))
            return out + self._advance(now)
        if isinstance(inp, ProbeFinished):
            return self._on_finished(inp, now)
        if isinstance(inp, Tick):
            return self._on_tick(now)
        raise LocalProtocolError(f"the doctor does not take {type(inp).__name__}")

    # ---- internals -------------------------------------------------------------------------------

    def _identity_check(self) -> ThalovantDoctorCheck:
        s = self._need()
        if s.identity_problems:
            detail = "; ".join(scrub_text(p) for p in s.identity_problems)
            return _check(ProbeKind.IDENTITY, CheckStatus.FAILED, detail, DEFAULT_HINTS[ProbeKind.IDENTITY])
        return _check(ProbeKind.IDENTITY, CheckStatus.OK, f"site_id={s.site_id}, protocol={s.protocol}")

    def _endpoint_check(self) -> ThalovantDoctorCheck:
        s = self._need()
        if self._first_failure() is not None:
            return self._skipped(ProbeKind.ENDPOINT)
        if s.endpoint_problem is not None:
            detail = scrub_text(s.endpoint_problem)
            return _check(ProbeKind.ENDPOINT, CheckStatus.FAILED, detail, DEFAULT_HINTS[ProbeKind.ENDPOINT])
        return _check(ProbeKind.ENDPOINT, CheckStatus.OK, s.endpoint)

    def _advance(self, now: float) -> list[Output]:
        s = self._need()
        out: list[Output] = []
        for kind in CHECK_ORDER[len(self._checks) :]:
            if self._first_failure() is not None:
                out.append(self._record(self._skipped(kind)))
                continue
            if kind is ProbeKind.TLS and not s.tls:
                detail = f"not used: the {s.protocol} endpoint is not encrypted"
                out.append(self._record(_check(kind, CheckStatus.SKIPPED, detail)))
                continue
            available = {ProbeKind.HANDSHAKE: s.handshake_available, ProbeKind.LINK: s.link_available}
            if not available.get(kind, True):
                detail = f"not run: the {kind.value} check needs a client"
                out.append(self._record(_check(kind, CheckStatus.SKIPPED, detail, _RUN_THROUGH_CLIENT)))
                continue
            params = ProbeParams(
                protocol=s.protocol, host=s.host, port=s.port, tls=s.tls, path=s.path, timeout=s.timeout
            )
            self._next_id += 1
            self._current = (self._next_id, kind, now)
            out.append(RunProbe(probe_id=self._next_id, kind=kind, params=params))
            return out
        self._state = DoctorState.DONE
        out.append(Done(report=ThalovantDoctorReport(dict(s.summary), tuple(self._checks), s.protocol)))
        return out

    def _on_finished(self, inp: ProbeFinished, now: float) -> list[Output]:
        current = self._current
        if current is None or inp.probe_id != current[0]:
            text = f"doctor: ignoring the answer of probe {scrub_text(inp.probe_id)} (not running)"
            return [Note(level=NoteLevel.DEBUG, text=text)]
        _, kind, started = current
        self._current = None
        elapsed = (now - started) * 1000.0 if math.isfinite(now) and math.isfinite(started) else 0.0
        outcome = inp.outcome
        if (
            isinstance(outcome, ProbeOutcome)
            and outcome.status in (CheckStatus.OK, CheckStatus.FAILED, CheckStatus.WARNING)
            and isinstance(outcome.detail, str)
            and isinstance(outcome.hint, str)
        ):
            status, detail, hint = outcome.status, scrub_text(outcome.detail), scrub_text(outcome.hint)
            if status is CheckStatus.FAILED and not hint:
                hint = DEFAULT_HINTS[kind]
        else:
            status, detail = CheckStatus.FAILED, f"the probe gave an unreadable answer ({type(outcome).__name__})"
            hint = "this is a bug in the doctor's probe runner; please report it"
        out: list[Output] = [self._record(_check(kind, status, detail, hint, max(elapsed, 0.0)))]
        return out + self._advance(now)

    def _on_tick(self, now: float) -> list[Output]:
        deadline = self.deadline
        if self._current is None or deadline is None or not now >= deadline:
            return []
        _, kind, started = self._current
        self._current = None
        detail = f"no answer within {self._need().timeout:g} s"
        elapsed = max((now - started) * 1000.0, 0.0) if math.isfinite(now - started) else 0.0
        out: list[Output] = [self._record(_check(kind, CheckStatus.FAILED, detail, DEFAULT_HINTS[kind], elapsed))]
        return out + self._advance(now)

    def _skipped(self, kind: ProbeKind) -> ThalovantDoctorCheck:
        failed = self._first_failure() or "an earlier check"
        return _check(kind, CheckStatus.SKIPPED, f"skipped: {failed} failed", f"fix {failed} first")

    def _first_failure(self) -> str | None:
        return next((c.name for c in self._checks if c.status == CheckStatus.FAILED.value), None)

    def _record(self, check: ThalovantDoctorCheck) -> Finding:
        self._checks.append(check)
        return Finding(check=check)

    def _need(self) -> DoctorSettings:
        if self._settings is None:
            raise LocalProtocolError("the doctor was not started")
        return self._settings


def _check(
    kind: ProbeKind, status: CheckStatus, detail: str, hint: str = "", duration_ms: float = 0.0
) -> ThalovantDoctorCheck:
    return ThalovantDoctorCheck(kind.value, status is not CheckStatus.FAILED, detail, duration_ms, status.value, hint)
