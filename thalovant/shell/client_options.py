"""Client keywords that need more than passing on: 0.4.7's ``reply_settle_seconds`` and ``reconnect_attempts``.

``reply_settle_seconds`` (default 0: off) is checked here and handed to the core with every ask
(``AskStarted.settle``, rule 2b of ``thalovant.core.client.correlate``): once the hub ends the turn,
the ask keeps collecting speech until that many seconds after the first speech.

``reconnect_attempts`` is 0.4.7's count of retries after a connection failure. thalovant reconnects
in the background instead (``reconnect=ReconnectConfig(...)``), so the old keyword becomes that
policy: ``reconnect_attempts=N`` gives up after ``N + 1`` failed links in a row; with
``auto_reconnect=False`` it changes nothing (one attempt, as in 0.4.7). It warns once.
"""

from __future__ import annotations

import math

from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.deprecation import warn_once
from thalovant.core.errors import LocalProtocolError

__all__ = ["reconnect_policy", "settle_seconds"]


def settle_seconds(value: float) -> float:
    """``reply_settle_seconds``, checked.

    Raises:
        LocalProtocolError: it is not a finite number >= 0.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value >= 0):
        raise LocalProtocolError("reply_settle_seconds must be a finite number of seconds >= 0")
    return float(value)


def reconnect_policy(
    *, reconnect: ReconnectConfig | None, reconnect_attempts: int | None, auto_reconnect: bool
) -> ReconnectConfig | None:
    """The reconnect policy for ``reconnect`` or the 0.4.7 ``reconnect_attempts`` (None: the plan's default).

    Raises:
        LocalProtocolError: both are given, or ``reconnect_attempts`` is not an integer.
    """
    if reconnect_attempts is None:
        return reconnect
    warn_once("reconnect_attempts=", "reconnect=ReconnectConfig(max_attempts=...)", stacklevel=5)
    if reconnect is not None:
        raise LocalProtocolError("give reconnect or reconnect_attempts, not both")
    if isinstance(reconnect_attempts, bool) or not isinstance(reconnect_attempts, int):
        raise LocalProtocolError("reconnect_attempts must be an integer")
    if not auto_reconnect:
        return None
    return ReconnectConfig(max_attempts=max(0, reconnect_attempts) + 1)
