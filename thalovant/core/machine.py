"""Shared vocabulary of every core machine.

Every machine in ``thalovant.core`` follows one contract::

    machine.handle(inp, now=...) -> list[Output]   # the only way in
    machine.deadline -> float | None               # earliest `now` a Tick is needed
    machine.state -> <Machine>State (an Enum)      # read-only

Inputs are facts (past tense: ``FrameReceived``), outputs are orders
(imperative: ``SendFrame``). Both are frozen, slotted, keyword-only
dataclasses deriving from :class:`Input` / :class:`Output`, so they compare
by value and can be written to replay traces.

Rules:

1. Time enters only as ``now`` (monotonic seconds). Timers leave only as
   ``deadline``. A ``Tick`` before the deadline must be harmless.
2. Randomness enters only through an injected :data:`Entropy` callable.
3. Bad data from the peer never raises: it becomes outputs and possibly a
   terminal FAILED state. Caller misuse raises ``LocalProtocolError`` and
   leaves the state unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

#: ``entropy(n)`` returns exactly ``n`` fresh random bytes. The shell passes
#: ``os.urandom``; tests and replays pass a recorded tape.
Entropy = Callable[[int], bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class Input:
    """Base of every fact fed into a machine."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """Base of every order a machine gives its driver."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick(Input):
    """Time passed; the driver calls this at (or after) ``machine.deadline``."""


class NoteLevel(enum.Enum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, kw_only=True)
class Note(Output):
    """A diagnostic for the shell to log. Never contains a secret."""

    level: NoteLevel
    text: str


In_contra = TypeVar("In_contra", bound=Input, contravariant=True)


class Machine(Protocol[In_contra]):
    """Structural type of every core machine."""

    @property
    def state(self) -> enum.Enum: ...

    @property
    def deadline(self) -> float | None: ...

    def handle(self, inp: In_contra, *, now: float) -> list[Output]: ...


def earliest(*deadlines: float | None) -> float | None:
    """The smallest deadline that is set, or None.

    >>> earliest(None, 3.0, 2.5)
    2.5
    >>> earliest(None, None) is None
    True
    """
    present = [d for d in deadlines if d is not None]
    return min(present) if present else None
