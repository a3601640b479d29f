"""The life cycle of a :class:`~thalovant.core.client.connection.Connection`, as data.

Theory of operation
-------------------
Everything that moves a connection between its five states
(:class:`~thalovant.core.client.connection_events.ConnectionState`) is written in this file, the
way h11's ``_state.py`` holds HTTP/1.1's::

    IDLE       --Connect-----------------------> CONNECTING  (the reconnect policy opens a link)
    CONNECTING --SessionReady------------------> READY       (and the link confirmed the HELLO)
    READY      --link lost (rc.LinkLost)-------> CONNECTING  (asks in flight fail; reconnecting)
    CONNECTING --rc.GiveUp---------------------> GAVE_UP     (everything queued fails)
    IDLE, CONNECTING, READY, GAVE_UP --Disconnect--> CLOSED  (links told to stop politely)

A trigger is a user input (``Connect``, ``Disconnect``) or what a child machine said: the
session is ready and the link confirmed its HELLO (``SessionReady``), the link of the current
epoch was lost (``rc.LinkLost``, as the reconnect policy is told) or the reconnect policy gave
up (``rc.GiveUp``).

Rule 1. :data:`TRANSITIONS` is the one place a transition is written: the connection never sets
its state, it asks :meth:`Lifecycle.move` to take the row for a trigger.

Rule 2. A pair that is not in the table leaves the state as it is. That is how ``Connect`` while
running is idempotent, a link lost while CONNECTING stays CONNECTING, and CLOSED is final.

Rule 3. GAVE_UP and CLOSED are terminal: the only way out of GAVE_UP is ``Disconnect``.
"""

from __future__ import annotations

from collections.abc import Mapping

from thalovant.core.client import reconnect as rc
from thalovant.core.client.connection_events import Connect, ConnectionState, Disconnect
from thalovant.core.session.events import SessionReady

__all__ = ["TERMINAL", "TRANSITIONS", "Lifecycle"]

_S = ConnectionState

#: ``(state, trigger) -> next state``.
TRANSITIONS: Mapping[tuple[ConnectionState, type], ConnectionState] = {
    (_S.IDLE, Connect): _S.CONNECTING,  # the reconnect policy opens the first link
    (_S.IDLE, Disconnect): _S.CLOSED,  # closed before it started
    (_S.CONNECTING, SessionReady): _S.READY,  # handshake done and the HELLO confirmed: the hub knows us
    (_S.CONNECTING, rc.GiveUp): _S.GAVE_UP,  # everything queued fails
    (_S.CONNECTING, Disconnect): _S.CLOSED,  # queued and in-flight sends fail
    (_S.READY, rc.LinkLost): _S.CONNECTING,  # asks in flight fail at once; reconnecting
    (_S.READY, Disconnect): _S.CLOSED,  # the link is closed politely
    (_S.GAVE_UP, Disconnect): _S.CLOSED,  # nothing left to stop
}

#: The states a connection ends in.
TERMINAL = frozenset({_S.CLOSED, _S.GAVE_UP})


class Lifecycle:
    """A connection's life-cycle state, moved only through :data:`TRANSITIONS`."""

    def __init__(self) -> None:
        self._state = _S.IDLE

    @property
    def state(self) -> ConnectionState:
        return self._state

    def move(self, trigger: type) -> bool:
        """Take the row for ``(state, trigger)``; False (and no change) when the table has none."""
        target = TRANSITIONS.get((self._state, trigger))
        if target is None:
            return False
        self._state = target
        return True
