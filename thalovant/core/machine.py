"""Shared vocabulary of every core machine.

Every machine in ``thalovant.core`` follows one contract::

    machine.handle(inp, now=...) -> list[Output]   # the only way in
    machine.deadline -> float | None               # earliest `now` a Tick is needed
    machine.state -> <Machine>State (an Enum)      # read-only
    machine.finished -> bool                       # True once the state is terminal

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
4. A machine with a transition table writes each transition once, as a
   :class:`Row` keyed by ``(state, input type)``: the handler to run and the
   state it leads to (plus the other states the handler may end in instead,
   e.g. FAILED). :class:`TableMachine` runs such a table.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

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

    @property
    def finished(self) -> bool: ...

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


def unit_interval(entropy: Entropy) -> float:
    """A number in [0, 1) from four entropy bytes (for jitter).

    >>> unit_interval(lambda n: bytes([128]) + bytes(n - 1))
    0.5
    """
    return int.from_bytes(entropy(4)[:4].ljust(4, b"\0"), "big") / 2**32


# ---- transition tables --------------------------------------------------------------------------

StateT = TypeVar("StateT", bound=enum.Enum)
HostT = TypeVar("HostT")


@dataclass(frozen=True, slots=True)
class Row(Generic[HostT, StateT]):
    """One transition: run ``act(machine, inp, now)``, then the machine is in ``to``.

    ``exits`` are the other states ``act`` may end the step in instead (it says so with
    :meth:`TableMachine._exit`): going down, giving up, an early Tick that changes nothing.
    """

    to: StateT
    act: Callable[[HostT, Any, float], list[Output]]
    exits: frozenset[StateT] = frozenset()

    @property
    def ends(self) -> frozenset[StateT]:
        """Every state this row can leave the machine in."""
        return self.exits | {self.to}


#: ``(state, input type) -> Row``: the one place a machine's transitions are written.
Table = Mapping[tuple[StateT, type[Input]], Row[HostT, StateT]]


class TableMachine(Generic[StateT]):
    """Base of a machine run by a :data:`Table`: ``state``, ``finished`` and the step itself.

    A subclass sets ``_state`` in ``__init__``, names its terminal states in ``_TERMINAL`` and
    calls :meth:`_fire` with the row for ``(self.state, type(inp))``. Handlers read ``self._state``
    as the state the step started in; they never assign it.
    """

    _TERMINAL: ClassVar[frozenset[enum.Enum]] = frozenset()
    _state: StateT
    _next: StateT

    @property
    def state(self) -> StateT:
        return self._state

    @property
    def finished(self) -> bool:
        """True once the state is terminal: the driver may stop."""
        return self._state in self._TERMINAL

    def _fire(self, row: Row[Any, StateT], inp: Input, now: float) -> list[Output]:
        """Run ``row``: its handler, then its ``to`` (or the exit the handler chose)."""
        self._next = row.to
        out = row.act(self, inp, now)
        self._state = self._next
        return out

    def _exit(self, state: StateT) -> None:
        """End the current step in ``state`` (one of the row's ``exits``) instead of the row's ``to``."""
        self._next = state
