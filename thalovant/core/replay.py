"""Replay a recorded trace (see :mod:`thalovant.core.trace` for the format) and find the first divergence.

Theory of operation
-------------------
``replay`` rebuilds the machine from the trace header with a :class:`~thalovant.core.trace.Tape`
as its entropy, then for every step: loads the tape with that step's recorded draws, feeds the
decoded input at the recorded ``now``, and compares, in this order, the draws used (all of them,
no more), the encoded outputs and the deadline with the recording. The first difference stops the
replay and is reported as a :class:`Divergence` (step, what, expected, got). A replay never
raises: unreadable lines become a ``problem``, exceptions from the machine a ``"raised"``
divergence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from returns.result import Failure

from thalovant.core.machine import Entropy, Input, Machine
from thalovant.core.trace import (
    JSON,
    Tape,
    TapeMismatch,
    TraceHeader,
    TraceProblem,
    TypeRegistry,
    decode_value,
    default_registry,
    encode_value,
    load_header,
    load_step,
)

__all__ = ["BuildMachine", "Divergence", "ReplayReport", "replay"]


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first place where a replay differs from its recording.

    ``what`` is "out", "deadline", "entropy", "raised" or "input".
    """

    seq: int
    what: str
    expected: JSON
    got: JSON


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """Outcome of :func:`replay`: ``ok``, the steps replayed, and the first divergence or problem."""

    ok: bool
    steps: int
    divergence: Divergence | None = None
    problem: TraceProblem | None = None


BuildMachine = Callable[[TraceHeader, Entropy], Machine[Input]]


def replay(lines: Iterable[str], build_machine: BuildMachine, *, registry: TypeRegistry | None = None) -> ReplayReport:
    """Replay a trace against a fresh machine and report the first divergence.

    Args:
        lines: the trace's lines (header first); blank lines are skipped.
        build_machine: rebuilds the machine from the header, drawing from the given entropy.
        registry: the classes the trace's inputs may name; :func:`default_registry` if None.
    """
    registry = registry if registry is not None else default_registry()
    it = (ln for ln in lines if ln.strip())
    first = next(it, None)
    if first is None:
        return ReplayReport(False, 0, problem=TraceProblem("bad-header", "empty trace"))
    header = load_header(first)
    if isinstance(header, Failure):
        return ReplayReport(False, 0, problem=header.failure())
    tape = Tape()
    machine = build_machine(header.unwrap(), tape)
    count = 0
    for line in it:
        loaded = load_step(line)
        if isinstance(loaded, Failure):
            return ReplayReport(False, count, problem=loaded.failure())
        step = loaded.unwrap()
        inp = decode_value(step.inp, registry)
        if isinstance(inp, Failure) or not isinstance(inp.unwrap(), Input):
            problem = inp.failure() if isinstance(inp, Failure) else TraceProblem("bad-step", "'in' is not an Input")
            return ReplayReport(False, count, Divergence(step.seq, "input", step.inp, None), problem)
        tape.feed(step.entropy)
        try:
            got = machine.handle(inp.unwrap(), now=step.now)
        except TapeMismatch as exc:
            return ReplayReport(False, count, Divergence(step.seq, "entropy", list(step.entropy), str(exc)))
        except Exception as exc:  # a replay reports, it never crashes (tampered traces hold ill-typed fields)
            got_error = f"{type(exc).__name__}: {exc}"
            return ReplayReport(False, count, Divergence(step.seq, "raised", list(step.out), got_error))
        count += 1
        if tape.remaining:
            return ReplayReport(False, count, Divergence(step.seq, "entropy", list(step.entropy), "draws left over"))
        got_json = [encode_value(o) for o in got]
        if got_json != list(step.out):
            return ReplayReport(False, count, Divergence(step.seq, "out", list(step.out), got_json))
        if machine.deadline != step.deadline:
            return ReplayReport(False, count, Divergence(step.seq, "deadline", step.deadline, machine.deadline))
    return ReplayReport(True, count)
