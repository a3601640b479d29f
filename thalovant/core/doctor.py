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

States: ``IDLE`` until :class:`Start`, ``PROBING`` while a probe is out, and
``DONE`` (terminal) once every check is decided and :class:`Done` carries the
report. :data:`TABLE` is the one place these transitions are written; a step
that decides the last check ends in ``DONE`` instead of its row's ``to``.

Time enters as ``now``; the planner times every probe itself. If the shell
never answers, ``deadline`` (probe timeout plus a grace second) makes a
``Tick`` fail the probe. An answer that is not a :class:`ProbeOutcome`, or
has an unknown id, never raises: it becomes a failed check or a ``Note``.

The report's values live in :mod:`thalovant.core.doctor_report` and the
settings in :mod:`thalovant.core.doctor_settings`; both are re-exported here.
Every text that reaches a check passes :func:`scrub_text`, which cuts any
``authorization=`` query value, so a probe error quoting a URL cannot leak the
access key. The shell additionally removes the identity's literal secrets.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from thalovant.core.doctor_report import (
    CHECK_ORDER,
    DEFAULT_HINTS,
    CheckStatus,
    ProbeKind,
    ThalovantDoctorCheck,
    ThalovantDoctorReport,
    make_check,
    scrub_text,
)
from thalovant.core.doctor_settings import DoctorSettings, settings_from_identity
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Input, Note, NoteLevel, Output, Row, Table, TableMachine, Tick

__all__ = [
    "CHECK_ORDER",
    "TABLE",
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

_RUN_THROUGH_CLIENT = "run through the client (client.doctor() or the thalovant CLI)"
_GRACE = 1.0


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
    """Begin the checks with ``settings`` (once per doctor)."""

    settings: DoctorSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeFinished(Input):
    """The shell ran a probe.

    Attributes:
        probe_id: the id of the :class:`RunProbe` this answers (an unknown id only makes a ``Note``).
        outcome: a :class:`ProbeOutcome`; anything else fails the check instead of raising.
    """

    probe_id: int
    outcome: object


@dataclass(frozen=True, slots=True, kw_only=True)
class RunProbe(Output):
    """Run a probe, within ``params.timeout``, and answer with :class:`ProbeFinished`.

    Attributes:
        probe_id: the id to answer with.
        kind: which check the probe decides (dns, tcp, tls, admission, handshake or link).
        params: where and how to probe; no secret (the shell adds the credentials).
    """

    probe_id: int
    kind: ProbeKind
    params: ProbeParams


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding(Output):
    """A check was decided (ran, failed or was skipped)."""

    check: ThalovantDoctorCheck


@dataclass(frozen=True, slots=True, kw_only=True)
class Done(Output):
    """Every check is decided: the ``report`` (literal secrets are removed by the shell)."""

    report: ThalovantDoctorReport


class DoctorState(enum.Enum):
    IDLE = "idle"
    PROBING = "probing"
    DONE = "done"


# ---- the machine --------------------------------------------------------------------------------


class Doctor(TableMachine[DoctorState]):
    """The doctor planner machine (see the module docstring); its transitions are :data:`TABLE`."""

    _TERMINAL = frozenset({DoctorState.DONE})

    def __init__(self) -> None:
        self._state = DoctorState.IDLE
        self._settings: DoctorSettings | None = None
        self._checks: list[ThalovantDoctorCheck] = []
        self._next_id = 0
        self._current: tuple[int, ProbeKind, float] | None = None

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
        row = TABLE.get((self._state, type(inp)))
        if row is not None:
            return self._fire(row, inp, now)
        if isinstance(inp, Start):
            raise LocalProtocolError("the doctor was already started")
        raise LocalProtocolError(f"the doctor does not take {type(inp).__name__}")

    # ---- handlers -------------------------------------------------------------------------------

    def _on_start(self, inp: Start, now: float) -> list[Output]:
        if not isinstance(inp.settings, DoctorSettings):
            raise LocalProtocolError("Start.settings must be DoctorSettings")
        self._settings = inp.settings
        out: list[Output] = [self._record(self._identity_check())]
        out.append(self._record(self._endpoint_check()))
        return out + self._advance(now)

    def _on_finished(self, inp: ProbeFinished, now: float) -> list[Output]:
        current = self._current
        if current is None or inp.probe_id != current[0]:
            return self._on_stray(inp, now)
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
        out: list[Output] = [self._record(make_check(kind, status, detail, hint, max(elapsed, 0.0)))]
        return out + self._advance(now)

    def _on_stray(self, inp: ProbeFinished, now: float) -> list[Output]:
        text = f"doctor: ignoring the answer of probe {scrub_text(inp.probe_id)} (not running)"
        return [Note(level=NoteLevel.DEBUG, text=text)]

    def _on_tick(self, inp: Tick, now: float) -> list[Output]:
        deadline = self.deadline
        if self._current is None or deadline is None or not now >= deadline:
            return []
        _, kind, started = self._current
        self._current = None
        detail = f"no answer within {self._need().timeout:g} s"
        elapsed = max((now - started) * 1000.0, 0.0) if math.isfinite(now - started) else 0.0
        failed = make_check(kind, CheckStatus.FAILED, detail, DEFAULT_HINTS[kind], elapsed)
        return [self._record(failed), *self._advance(now)]

    def _on_nothing(self, inp: Input, now: float) -> list[Output]:
        return []

    # ---- helpers --------------------------------------------------------------------------------

    def _identity_check(self) -> ThalovantDoctorCheck:
        s = self._need()
        if s.identity_problems:
            detail = "; ".join(scrub_text(p) for p in s.identity_problems)
            return make_check(ProbeKind.IDENTITY, CheckStatus.FAILED, detail, DEFAULT_HINTS[ProbeKind.IDENTITY])
        return make_check(ProbeKind.IDENTITY, CheckStatus.OK, f"site_id={s.site_id}, protocol={s.protocol}")

    def _endpoint_check(self) -> ThalovantDoctorCheck:
        s = self._need()
        if self._first_failure() is not None:
            return self._skipped(ProbeKind.ENDPOINT)
        if s.endpoint_problem is not None:
            detail = scrub_text(s.endpoint_problem)
            return make_check(ProbeKind.ENDPOINT, CheckStatus.FAILED, detail, DEFAULT_HINTS[ProbeKind.ENDPOINT])
        return make_check(ProbeKind.ENDPOINT, CheckStatus.OK, s.endpoint)

    def _advance(self, now: float) -> list[Output]:
        """Decide the checks that need no probe; order the next probe, or finish (``DONE``) with the report."""
        s = self._need()
        out: list[Output] = []
        for kind in CHECK_ORDER[len(self._checks) :]:
            if self._first_failure() is not None:
                out.append(self._record(self._skipped(kind)))
                continue
            if kind is ProbeKind.TLS and not s.tls:
                detail = f"not used: the {s.protocol} endpoint is not encrypted"
                out.append(self._record(make_check(kind, CheckStatus.SKIPPED, detail)))
                continue
            available = {ProbeKind.HANDSHAKE: s.handshake_available, ProbeKind.LINK: s.link_available}
            if not available.get(kind, True):
                detail = f"not run: the {kind.value} check needs a client"
                out.append(self._record(make_check(kind, CheckStatus.SKIPPED, detail, _RUN_THROUGH_CLIENT)))
                continue
            params = ProbeParams(
                protocol=s.protocol, host=s.host, port=s.port, tls=s.tls, path=s.path, timeout=s.timeout
            )
            self._next_id += 1
            self._current = (self._next_id, kind, now)
            out.append(RunProbe(probe_id=self._next_id, kind=kind, params=params))
            return out
        self._exit(DoctorState.DONE)
        out.append(Done(report=ThalovantDoctorReport(dict(s.summary), tuple(self._checks), s.protocol)))
        return out

    def _skipped(self, kind: ProbeKind) -> ThalovantDoctorCheck:
        failed = self._first_failure() or "an earlier check"
        return make_check(kind, CheckStatus.SKIPPED, f"skipped: {failed} failed", f"fix {failed} first")

    def _first_failure(self) -> str | None:
        return next((c.name for c in self._checks if c.status == CheckStatus.FAILED.value), None)

    def _record(self, check: ThalovantDoctorCheck) -> Finding:
        self._checks.append(check)
        return Finding(check=check)

    def _need(self) -> DoctorSettings:
        if self._settings is None:
            raise LocalProtocolError("the doctor was not started")
        return self._settings


_S = DoctorState
_FINISHES = frozenset({_S.DONE})  # the step decided the last check
#: (state, input type) -> Row(next state, handler, other possible ends). Unlisted pairs are misuse:
#: a second Start, or an input the doctor does not take.
TABLE: Table[DoctorState, Doctor] = {
    (_S.IDLE, Start): Row(_S.PROBING, Doctor._on_start, _FINISHES),  # decide identity + endpoint, first probe
    (_S.IDLE, ProbeFinished): Row(_S.IDLE, Doctor._on_stray),  # nothing runs yet: a Note
    (_S.IDLE, Tick): Row(_S.IDLE, Doctor._on_nothing),
    (_S.PROBING, ProbeFinished): Row(_S.PROBING, Doctor._on_finished, _FINISHES),  # record it, next probe
    (_S.PROBING, Tick): Row(_S.PROBING, Doctor._on_tick, _FINISHES),  # past the deadline: the probe failed
    (_S.DONE, ProbeFinished): Row(_S.DONE, Doctor._on_stray),  # a late answer: a Note
    (_S.DONE, Tick): Row(_S.DONE, Doctor._on_nothing),
}
