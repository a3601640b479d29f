"""When :class:`~.http_poll.HttpPoll` polls next: its timing rules as one small pure object.

The machine asks this schedule when a poll is due and tells it what happened: the link came up,
a send was accepted, a poll came back (with frames or empty), a request failed. The rules (see
the :mod:`.http_poll` docstring for the why):

* after a non-empty poll reply, or right after a send completes: poll again at once;
* after an empty reply within ``hot_window`` of the last send or non-empty reply: poll again
  after ``hot_interval``, growing by ``hot_growth`` per empty poll (capped at ``idle_max``);
* after an empty reply later than that: wait ``idle_delay``, growing from 0 by
  ``idle_first * idle_factor**n`` up to ``idle_max``;
* after an error: hold every request for a jittered, exponentially growing delay; after
  ``max_errors`` consecutive errors the link should go down.

Polls alternate between the text and the binary queue (when ``poll_binary`` is on).
"""

from __future__ import annotations

from thalovant.core.links.http_wire import HttpPollConfig
from thalovant.core.machine import Entropy, unit_interval

__all__ = ["PollSchedule"]


class PollSchedule:
    """The poll timing of one HTTP link (all times are the machine's ``now``).

    Args:
        config: the timing knobs.
        entropy: random bytes for the error backoff jitter (4 per error).
    """

    def __init__(self, config: HttpPollConfig, entropy: Entropy) -> None:
        self._cfg = config
        self._entropy = entropy
        self.poll_at = 0.0  # the next poll is due at this time (subject to hold_until)
        self.hold_until = 0.0  # no request starts before this (error backoff)
        self.errors = 0  # consecutive failed requests
        self._poll_soon = False
        self._idle_delay = 0.0
        self._hot_until = 0.0
        self._hot_delay = config.hot_interval
        self._binary_next = False

    @property
    def next_poll(self) -> float:
        """When the next poll may start."""
        return max(self.poll_at, self.hold_until)

    def connected(self, now: float) -> None:
        """The link came up: poll at once."""
        self.poll_at = now

    def sent(self, now: float) -> None:
        """The hub accepted a send: an answer is probably queued, so poll at once and stay hot."""
        self.errors = 0
        self._idle_delay = 0.0
        self._hot_until = now + self._cfg.hot_window
        self._hot_delay = self._cfg.hot_interval
        self._poll_soon = True
        self.poll_at = min(self.poll_at, now)

    def polled(self, now: float, *, got: bool) -> None:
        """A poll came back well, with frames (``got``) or empty: set the next poll time."""
        cfg = self._cfg
        self.errors = 0
        if got or self._poll_soon:
            self._idle_delay = 0.0
            self.poll_at = now
            if got:
                self._hot_until = now + cfg.hot_window
                self._hot_delay = cfg.hot_interval
        elif now < self._hot_until:
            self.poll_at = now + self._hot_delay
            self._hot_delay = min(max(cfg.idle_max, cfg.hot_interval), self._hot_delay * cfg.hot_growth)
        else:
            self.poll_at = now + self._idle_delay
            self._idle_delay = min(cfg.idle_max, max(cfg.idle_first, self._idle_delay * cfg.idle_factor))
        self._poll_soon = False

    def failed(self, now: float) -> bool:
        """A request failed: back off. True when ``max_errors`` failed in a row (the link should go down)."""
        cfg = self._cfg
        self.errors += 1
        if self.errors >= cfg.max_errors:
            return True
        span = min(cfg.error_max, cfg.error_base * 2 ** (self.errors - 1))
        self.hold_until = now + span / 2 + unit_interval(self._entropy) * span / 2
        self.poll_at = max(self.poll_at, self.hold_until)
        return False

    def next_poll_binary(self) -> bool:
        """Whether the poll starting now reads the binary queue (polls alternate when it is polled)."""
        binary = self._binary_next and self._cfg.poll_binary
        self._binary_next = not self._binary_next
        return binary
