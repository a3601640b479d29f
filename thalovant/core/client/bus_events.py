"""The vocabulary of :class:`thalovant.core.client.bus_connection.BusConnection`: its configuration,
the facts a bus-level transport reports and the orders the machine gives it.

A *bus-level transport* is the duck type thalovant 0.4.7 accepted as ``transport=``: it takes bus
messages (``emit_event(type, data, context)``) and hands bus messages to handlers registered by
name (``on_mycroft``). It replaces the link and the session of a
:class:`~thalovant.core.client.connection.Connection`: no frames, no handshake. The machine keeps
the rest (the queue, the reconnect policy, the correlator). The shell runs the orders
(``thalovant.shell.bus_transport``) and reports back with :class:`BusFact`.

The user-facing inputs (``Connect``, ``Disconnect``, ``SendRequested``, ``CancelAsk``) and outputs
(``StatusChanged``, ``EventDelivered``, ``SendDone``, ``SendError`` and the correlator's) are the
Connection's, so the client waits for a BusConnection exactly as it waits for a Connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from thalovant.core.bus.events import (
    EVENT_UTTERANCE_CANCELLED,
    EVENT_UTTERANCE_HANDLED,
    FAILURE_EVENTS,
    SPEECH_EVENTS,
)
from thalovant.core.client import reconnect as rc
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Input, Output
from thalovant.core.wire.message import BusMessage

__all__ = [
    "ASK_EVENT_TYPES",
    "BusClosed",
    "BusConfig",
    "BusEmitFailed",
    "BusEmitted",
    "BusFact",
    "BusOpenFailed",
    "BusOpened",
    "BusProbed",
    "BusReceived",
    "BusTaken",
    "CloseBus",
    "EmitBus",
    "OpenBus",
    "ProbeBus",
]

#: The event types an ask follows: the names a client registers on a bus transport while an ask is in flight.
ASK_EVENT_TYPES: tuple[str, ...] = tuple(
    sorted(SPEECH_EVENTS | FAILURE_EVENTS | {EVENT_UTTERANCE_HANDLED, EVENT_UTTERANCE_CANCELLED})
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BusConfig:
    """What a BusConnection needs (built by the shell from the client's plan).

    Attributes:
        reconnect: when to (re)connect the transport after a failure (``max_attempts=1``: never again).
        queue_timeout: seconds a message may wait while the transport is not connected.
        max_queue: messages that may wait; one more is refused.
        probe_interval: seconds between two ``is_connected()`` checks while connected.
        retry_unsent: re-send, once, a message the transport refused before taking it (0.4.7 re-sent after
            any failure; a message the transport may have taken is never re-sent).
        retry_first_connect: when the very first ``connect()`` fails, try again by the reconnect policy;
            False (default, as 0.4.7): give up at once, so ``client.connect()`` raises the transport's error.
            Later connects (after a loss) always follow the policy.
    """

    reconnect: rc.ReconnectConfig = field(default_factory=rc.ReconnectConfig)
    queue_timeout: float = 5.0
    max_queue: int = 256
    probe_interval: float = 1.0
    retry_unsent: bool = True
    retry_first_connect: bool = False

    def __post_init__(self) -> None:
        if self.queue_timeout <= 0 or self.max_queue < 1 or self.probe_interval <= 0:
            raise LocalProtocolError("queue_timeout, max_queue and probe_interval must be positive")


# ---- facts (inputs, wrapped in BusFact) ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BusOpened(Input):
    """``connect()`` returned: the transport is connected."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BusOpenFailed(Input):
    """``connect()`` raised (``auth``: the hub refused the credentials; ``retryable``: worth trying again)."""

    reason: str
    retryable: bool = True
    auth: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BusEmitted(Input):
    """``emit_event`` returned for send ``ref``: the transport took the message."""

    ref: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BusEmitFailed(Input):
    """``emit_event`` failed for send ``ref``.

    Attributes:
        reason: one clean line (never a secret).
        taken: the transport may have taken the message (a timeout): it is never sent again.
        link_down: the failure says the connection is gone (reconnect before the next send).
    """

    ref: int
    reason: str
    taken: bool = False
    link_down: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class BusProbed(Input):
    """``is_connected()`` answered ``alive`` (``reason``: the transport's ``last_error()``, if any)."""

    alive: bool
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BusClosed(Input):
    """``disconnect()`` returned (or raised: a transport that cannot close is closed for us)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BusReceived(Input):
    """A handler registered on the transport got ``message`` (whatever the epoch: handlers outlive it).

    ``receipt`` (not 0): the shell waits for this message; the machine answers :class:`BusTaken` after
    the message's own outputs.
    """

    message: BusMessage
    receipt: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BusFact(Input):
    """A fact about connection attempt ``epoch`` (facts of an older attempt are ignored, except a
    send's outcome, which is matched by its ref)."""

    epoch: int
    fact: Input


# ---- orders ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenBus(Output):
    """Call ``connect()`` for attempt ``epoch``; answer ``BusOpened`` or ``BusOpenFailed``."""

    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EmitBus(Output):
    """Call ``emit_event(message.type, message.data, message.context)``; answer ``BusEmitted`` or
    ``BusEmitFailed`` (not taken, when attempt ``epoch`` is no longer the connected one)."""

    epoch: int
    ref: int
    message: BusMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeBus(Output):
    """Call ``is_connected()`` (and ``last_error()``); answer ``BusProbed``."""

    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BusTaken(Output):
    """Every output of the :class:`BusReceived` with ``receipt`` came before this one."""

    receipt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseBus(Output):
    """Call ``disconnect()``; answer ``BusClosed``."""

    epoch: int
