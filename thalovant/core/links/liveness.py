"""Liveness: notice a dead path (a stall, a half-open connection) on a link that looks open.

Theory of operation
-------------------
TCP keeps a connection "open" through a stalled middlebox or a path that lost one direction:
nothing fails, nothing arrives. A link that only waits for the hub would never notice. So every
link that holds a connection open (WebSocket, MQTT) runs this pure timer beside its machine:

* whatever arrives from the hub (a message, a pong, an MQTT PINGRESP or acknowledgement) is
  :meth:`Liveness.heard`;
* after ``idle`` seconds with nothing heard, :meth:`Liveness.check` answers ``"probe"`` once: the
  link sends a probe that the hub must answer (a WebSocket PING, an MQTT PINGREQ);
* if nothing at all is heard within ``timeout`` seconds of the probe, ``check`` answers ``"dead"``:
  the link reports itself lost (retryable), and the client's normal reconnect takes over.

So a path that dies right after the last thing heard is declared dead
``idle + timeout`` seconds later at the latest (:attr:`LivenessConfig.bound`); a healthy idle link
costs one small probe and its answer every ``idle`` seconds, and is never declared dead while the
hub answers within ``timeout``. Each link (each reconnect) has its own timer, so an answer that
reaches an old link never keeps a new one alive.

Defaults (:data:`DEFAULT_LIVENESS`): ``idle`` 10 s, ``timeout`` 5 s, so a dead path is noticed
within 15 s. A kiosk mostly sits idle; 10 s keeps the probes negligible (a few bytes each way)
while a hub answers a ping in milliseconds on any working network, so 5 s leaves room for a busy
hub or a slow mobile link without letting a dead one linger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from thalovant.core.errors import LocalProtocolError

__all__ = ["DEFAULT_LIVENESS", "MIN_BOUND", "Liveness", "LivenessConfig", "Verdict"]

#: What :meth:`Liveness.check` asks the link to do: nothing, send a probe, or give the link up.
Verdict = Literal["wait", "probe", "dead"]

_MAX_SECONDS = 86400.0
#: The smallest ``idle + timeout`` accepted. A link that ends without a word from the hub within 2 s of
#: the session becoming ready is how hub 4.x refuses a pre-shared key (the session then gives up, see
#: ``core/session/classify.py``); a liveness verdict must never look like that.
MIN_BOUND = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LivenessConfig:
    """How a link tells a dead path from a quiet one (see the module docstring).

    Attributes:
        idle: seconds with nothing heard from the hub before a probe is sent.
        timeout: seconds a probe may go unanswered (nothing heard at all) before the link is dead.

    Raises:
        LocalProtocolError: a value is not a finite number of seconds in (0, 86400], or
            ``idle + timeout`` is below :data:`MIN_BOUND` (the message names the field).
    """

    idle: float = 10.0
    timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("idle", "timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise LocalProtocolError(f"LivenessConfig.{name} must be a number of seconds")
            if not (math.isfinite(value) and 0 < value <= _MAX_SECONDS):
                raise LocalProtocolError(f"LivenessConfig.{name} must be in (0, {_MAX_SECONDS:g}] seconds")
        if self.idle + self.timeout < MIN_BOUND:
            raise LocalProtocolError(f"LivenessConfig.idle + LivenessConfig.timeout must be at least {MIN_BOUND:g} s")

    @property
    def bound(self) -> float:
        """The longest a dead path goes unnoticed: ``idle + timeout`` seconds after the last thing heard."""
        return self.idle + self.timeout


#: The liveness every WebSocket and MQTT link uses unless the client is given another one.
DEFAULT_LIVENESS = LivenessConfig()


class Liveness:
    """The timer of one link (pure: ``now`` comes in, :attr:`deadline` goes out).

    Args:
        config: the figures.
        now: when the link came up (it counts as heard).
    """

    def __init__(self, config: LivenessConfig, *, now: float) -> None:
        self.config = config
        self._heard_at = now
        self._probed_at: float | None = None

    def __repr__(self) -> str:
        return f"<Liveness heard_at={self._heard_at:.3f} probed_at={self._probed_at}>"

    @property
    def probing(self) -> bool:
        """Whether a probe is out and unanswered."""
        return self._probed_at is not None

    @property
    def deadline(self) -> float:
        """When :meth:`check` next has something to say (a probe is due, or the probe is overdue)."""
        if self._probed_at is not None:
            return self._probed_at + self.config.timeout
        return self._heard_at + self.config.idle

    def heard(self, now: float) -> None:
        """Something arrived from the hub at ``now``: the path works; any probe is answered."""
        self._heard_at = max(self._heard_at, now)
        self._probed_at = None

    def check(self, now: float) -> Verdict:
        """What the link must do at ``now``: ``"probe"`` (once per quiet spell), ``"dead"``, or ``"wait"``."""
        if now < self.deadline:
            return "wait"
        if self._probed_at is not None:
            return "dead"
        self._probed_at = now
        return "probe"
