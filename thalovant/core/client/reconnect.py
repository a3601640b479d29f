"""Reconnect: the redial policy, as a machine, so shells never decide when to retry.

Theory of operation
-------------------
The shell owns one link at a time (a WebSocket, an HTTP poller or an MQTT
session). This machine tells it *when* to open the next one::

    IDLE --OpenRequested--> CONNECTING (OpenLink attempt=1)
    CONNECTING --LinkUp--> UP
    CONNECTING/UP --LinkLost(retryable)--> WAITING (deadline = retry time)
    WAITING --Tick at deadline--> CONNECTING (OpenLink attempt=n+1)
    CONNECTING/UP --LinkLost(not retryable or auth)--> GAVE_UP (GiveUp)
    CONNECTING/UP --LinkLost, max_attempts reached--> GAVE_UP (GiveUp)
    any --UserClose--> CLOSED

The policy (:class:`ReconnectConfig`, plain data) is fast while an outage is
young and polite when it lasts. An *outage* starts with the first attempt or
loss of a run of failures. While it is young, each wait is drawn over the span
of its age's ``young`` step: over 0.25 s for the first 5 s, over 0.5 s until
20 s (the default), so a hub that comes back (a restart, an upgrade) is tried
again within that span. After the last step the span starts at ``base`` and
doubles with each failure, up to ``cap``. The draw is ``Jitter.EQUAL`` by
default, uniform in ``[span/2, span)``; ``Jitter.FULL`` draws in ``[0, span)``
and ``Jitter.DECORRELATED`` in ``[base, min(cap, 3 * previous))`` once the
outage is old (AWS architecture blog, "Exponential backoff and jitter"). All
waits are capped at ``cap``; randomness comes from the injected entropy.

Bound (the default policy: ``young`` 5 s over 0.25 s then 20 s over 0.5 s,
``base`` 0.5 s, ``cap`` 30 s, equal jitter): whatever the entropy, a hub that
stays unreachable sees at most :data:`MAX_ATTEMPTS_PER_MINUTE` attempts in any
minute and :data:`MAX_ATTEMPTS_PER_10_MINUTES` in any ten minutes (one per
0.125 s for 5 s, one per 0.25 s until 20 s, then 0.25, 0.5, 1, 2, 4, 8 s and
15 s from then on). With random jitter it is about two thirds of that. An
attempt that itself takes time (a TCP timeout, a handshake timeout) only
lowers the count.

Attempts count *consecutive* failures. A link that stayed up for at least
``stable_after`` seconds, or on which the hub answered (``Served``: a message
came after the session was ready), resets the count and starts a new outage
when it is lost, so a long-lived session that drops reconnects quickly, while a link
that comes up and dies at once (e.g. hub 4.x closing right after the
upgrade) keeps backing off and eventually hits ``max_attempts`` (None = retry
forever).

Fatal causes never retry: a ``LinkLost`` with ``auth=True`` (the hub refused
the credentials) or ``retryable=False`` gives up at once with a clear reason.
A *suspected* refusal (``suspect=True``: hub 4.x drops a WebSocket with a wrong
pre-shared key right after the handshake, the way a hub that dies at that
moment does) gives up only when the next attempt ends the same way, or when
no attempt is left.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import (
    Entropy,
    Input,
    Note,
    NoteLevel,
    Output,
    Row,
    Table,
    TableMachine,
    Tick,
    unit_interval,
)

__all__ = [
    "MAX_ATTEMPTS_PER_10_MINUTES",
    "MAX_ATTEMPTS_PER_MINUTE",
    "TRACE_TYPES",
    "GiveUp",
    "Jitter",
    "LinkLost",
    "LinkUp",
    "OpenLink",
    "OpenRequested",
    "Served",
    "TABLE",
    "Reconnect",
    "ReconnectConfig",
    "ReconnectState",
    "UserClose",
]


class _DownLike(Protocol):
    @property
    def reason(self) -> str: ...
    @property
    def retryable(self) -> bool: ...
    @property
    def auth(self) -> bool: ...


class ReconnectState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    UP = "up"
    WAITING = "waiting"
    CLOSED = "closed"
    GAVE_UP = "gave-up"


class Jitter(enum.Enum):
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"


# ---- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenRequested(Input):
    """The user wants a connection: open the first link now."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkUp(Input):
    """The link opened by the last ``OpenLink`` is usable (fed from the link's ``LinkUp``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Served(Input):
    """The hub answered on the link that is up (a message arrived after the session was ready)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkLost(Input):
    """The current link failed or closed (fed from the link's ``LinkDown``)."""

    reason: str
    retryable: bool
    auth: bool = False
    suspect: bool = False  # a refusal of the credentials is suspected (twice in a row: given up)

    @classmethod
    def from_link_down(cls, down: _DownLike) -> LinkLost:
        """The ``LinkLost`` for a link machine's ``LinkDown`` (any object with the same three fields)."""
        return cls(reason=down.reason, retryable=down.retryable, auth=down.auth)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserClose(Input):
    """The user closed the client: never open another link."""


# ---- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenLink(Output):
    """Open a new link now; ``attempt`` counts from 1 within a run of failures."""

    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GiveUp(Output):
    """Stop trying; ``reason`` is for the user (no secrets)."""

    reason: str
    auth: bool = False


#: The most attempts the default :class:`ReconnectConfig` makes in any minute of an outage (module docstring).
MAX_ATTEMPTS_PER_MINUTE = 110
#: The most attempts the default :class:`ReconnectConfig` makes in any ten minutes of an outage.
MAX_ATTEMPTS_PER_10_MINUTES = 145

#: ``(until, span)`` steps of a young outage: until it is ``until`` s old, waits are drawn over ``span`` s.
YOUNG_STEPS: tuple[tuple[float, float], ...] = ((5.0, 0.25), (20.0, 0.5))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectConfig:
    """The redial policy (seconds), as data; the module docstring explains it and its bound.

    Attributes:
        base: the first span once the outage is no longer young; it doubles with each failure.
        cap: the longest wait.
        max_attempts: give up after this many consecutive failed attempts (None: never).
        jitter: how a wait is drawn from its span.
        stable_after: a link up at least this long resets the attempt count and the outage when lost.
        young: ``(until, span)`` steps, in order: while the outage is younger than ``until`` seconds,
            waits are drawn over ``span`` (capped at ``cap``); ``()`` grows the waits from the first failure.
    """

    base: float = 0.5
    cap: float = 30.0
    max_attempts: int | None = None
    jitter: Jitter = Jitter.EQUAL
    stable_after: float = 10.0
    young: tuple[tuple[float, float], ...] = YOUNG_STEPS

    def __post_init__(self) -> None:
        if not (0 < self.base <= self.cap) or self.stable_after < 0:
            raise LocalProtocolError("ReconnectConfig: need 0 < base <= cap and stable_after >= 0")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise LocalProtocolError("ReconnectConfig: max_attempts must be None or >= 1")
        untils = [until for until, _ in self.young]
        if any(not span > 0 for _, span in self.young) or untils != sorted(set(untils)) or min(untils, default=1) <= 0:
            raise LocalProtocolError("ReconnectConfig: young steps need increasing positive ages and positive spans")

    def young_span(self, age: float) -> float | None:
        """The span of a wait ``age`` seconds into an outage while it is young, else None."""
        return next((min(span, self.cap) for until, span in self.young if age < until), None)


class Reconnect(TableMachine[ReconnectState]):
    """Decides when to (re)open links. See the module docstring; its transitions are :data:`TABLE`.

    Args:
        entropy: random bytes for jitter (4 per wait).
        config: backoff policy.
    """

    _TERMINAL = frozenset({ReconnectState.CLOSED, ReconnectState.GAVE_UP})

    def __init__(self, *, entropy: Entropy, config: ReconnectConfig | None = None) -> None:
        self._entropy = entropy
        self._cfg = config or ReconnectConfig()
        self._state = ReconnectState.IDLE
        self._attempt = 0  # attempts in the current run of failures
        self._suspects = 0  # suspected refusals in a row
        self._retry_at: float | None = None
        self._up_since: float | None = None
        self._served = False  # the hub answered on the link that is up
        self._outage_since: float | None = None  # when the current run of failures began
        self._slow = 0  # failures since the outage stopped being young
        self._prev_wait = self._cfg.base

    def __repr__(self) -> str:
        return f"<Reconnect state={self._state.value} attempt={self._attempt} retry_at={self._retry_at}>"

    @property
    def attempt(self) -> int:
        """The attempt number of the last ``OpenLink`` (0 before the first)."""
        return self._attempt

    @property
    def deadline(self) -> float | None:
        return self._retry_at if self._state is ReconnectState.WAITING else None

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns ``OpenLink`` / ``GiveUp`` / ``Note`` orders."""
        row = TABLE.get((self._state, type(inp)))
        if row is None:
            if isinstance(inp, OpenRequested):
                raise LocalProtocolError(f"Reconnect: OpenRequested in state {self._state.value}")
            return []  # a late LinkUp/LinkLost or an early Tick: nothing to do
        return self._fire(row, inp, now)

    # ---- handlers -------------------------------------------------------------------------------

    def _on_open(self, inp: OpenRequested, now: float) -> list[Output]:
        self._outage_since = now
        return [self._open()]

    def _on_up(self, inp: LinkUp, now: float) -> list[Output]:
        self._up_since = now
        return []

    def _on_served(self, inp: Served, now: float) -> list[Output]:
        self._served = True
        return []

    def _on_lost(self, inp: LinkLost, now: float) -> list[Output]:
        stable = self._up_since is not None and now - self._up_since >= self._cfg.stable_after
        if stable or self._served:
            self._attempt = 0  # the link was healthy: a new outage starts now
            self._outage_since = None
        if self._outage_since is None:
            self._outage_since, self._slow, self._prev_wait = now, 0, self._cfg.base
        self._up_since = None
        self._suspects = self._suspects + 1 if inp.suspect else 0
        if inp.auth or self._suspects >= 2:
            return self._give_up(f"not retrying, credentials refused: {inp.reason}", auth=True)
        if not inp.retryable:
            return self._give_up(f"not retrying: {inp.reason}")
        limit = self._cfg.max_attempts
        if limit is not None and self._attempt >= limit and inp.suspect:  # no next attempt to settle it
            return self._give_up(f"not retrying, credentials refused: {inp.reason}", auth=True)
        if limit is not None and self._attempt >= limit:
            return self._give_up(f"gave up after {self._attempt} attempt(s); last error: {inp.reason}")
        wait = self._wait(self._cfg.young_span(now - self._outage_since))
        self._retry_at = now + wait
        text = f"link lost ({inp.reason}); retrying in {wait:.2f}s"
        return [Note(level=NoteLevel.INFO, text=text)]

    def _on_tick(self, inp: Tick, now: float) -> list[Output]:
        if self._retry_at is None or now < self._retry_at:
            self._exit(ReconnectState.WAITING)  # an early Tick changes nothing
            return []
        return [self._open()]

    def _on_close(self, inp: UserClose, now: float) -> list[Output]:
        self._retry_at = None
        return []

    def _on_nothing(self, inp: Input, now: float) -> list[Output]:
        return []

    # ---- helpers --------------------------------------------------------------------------------

    def _open(self) -> OpenLink:
        self._attempt += 1
        self._served = False
        self._retry_at = None
        return OpenLink(attempt=self._attempt)

    def _give_up(self, reason: str, *, auth: bool = False) -> list[Output]:
        self._exit(ReconnectState.GAVE_UP)
        self._retry_at = None
        return [GiveUp(reason=reason, auth=auth)]

    def _wait(self, young: float | None) -> float:
        """The jittered wait before the next attempt: over the ``young`` span while the outage is young,
        then over a span doubling with each failure from ``base`` up to ``cap``."""
        cfg = self._cfg
        u = unit_interval(self._entropy)
        if young is None:
            self._slow += 1
            if cfg.jitter is Jitter.DECORRELATED:
                hi = min(cfg.cap, self._prev_wait * 3)
                wait = cfg.base + u * max(0.0, hi - cfg.base)
                self._prev_wait = max(wait, cfg.base)
                return min(cfg.cap, wait)
        span = young if young is not None else min(cfg.cap, cfg.base * 2.0 ** min(self._slow - 1, 64))
        if cfg.jitter is Jitter.FULL:
            return u * span
        return span / 2 + u * span / 2  # equal (and decorrelated while young)


_S = ReconnectState
_GAVE_UP, _STILL_WAITING = frozenset({_S.GAVE_UP}), frozenset({_S.WAITING})
_R = Row  # each row is typed by the table annotation
#: (state, input type) -> Row(next state, handler, other possible ends). Unlisted pairs are ignored
#: (late link facts, early ticks) or misuse (OpenRequested).
TABLE: Table[ReconnectState, Reconnect] = {
    (_S.IDLE, OpenRequested): _R(_S.CONNECTING, Reconnect._on_open),  # first OpenLink, attempt 1
    (_S.IDLE, UserClose): _R(_S.CLOSED, Reconnect._on_close),
    (_S.CONNECTING, LinkUp): _R(_S.UP, Reconnect._on_up),  # remember when it came up
    (_S.CONNECTING, LinkLost): _R(_S.WAITING, Reconnect._on_lost, _GAVE_UP),  # backoff, or give up
    (_S.CONNECTING, UserClose): _R(_S.CLOSED, Reconnect._on_close),
    (_S.UP, Served): _R(_S.UP, Reconnect._on_served),  # the hub answered: this link ends the outage when lost
    (_S.UP, LinkLost): _R(_S.WAITING, Reconnect._on_lost, _GAVE_UP),  # stable/served links reset the count
    (_S.UP, UserClose): _R(_S.CLOSED, Reconnect._on_close),
    (_S.WAITING, Tick): _R(_S.CONNECTING, Reconnect._on_tick, _STILL_WAITING),  # OpenLink when the wait is over
    (_S.WAITING, UserClose): _R(_S.CLOSED, Reconnect._on_close),
    (_S.CLOSED, UserClose): _R(_S.CLOSED, Reconnect._on_nothing),
    (_S.GAVE_UP, UserClose): _R(_S.GAVE_UP, Reconnect._on_nothing),
}


#: Every class a Reconnect trace may contain (for ``trace.TypeRegistry``).
TRACE_TYPES: tuple[type, ...] = (
    OpenRequested,
    LinkUp,
    Served,
    LinkLost,
    UserClose,
    Tick,
    OpenLink,
    GiveUp,
    Note,
    NoteLevel,
)
