"""The vocabulary of :class:`thalovant.core.client.connection.Connection`: its configuration,
its states, the inputs the shell feeds it and the orders it gives back.

This is what the shell and recorded traces speak; the machine's logic is elsewhere (the
connection, its life-cycle table, outbox and epochs), so these values import nothing of it.
``connection`` re-exports every name here, and traces name them by that module.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.client import correlate as corr
from thalovant.core.client import reconnect as rc
from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.http_poll import HttpPollConfig
from thalovant.core.links.liveness import DEFAULT_LIVENESS, LivenessConfig
from thalovant.core.links.mqtt_topics import MqttLayout, TopicOverrides
from thalovant.core.machine import Input, Output
from thalovant.core.wire.message import BusMessage, HiveMessage

Protocol = Literal["wss", "https", "mqtt"]
#: Why a send failed (``SendError.kind``).
SendErrorKind = Literal["queue_full", "timeout", "link_lost", "closed", "gave_up", "refused"]


class ConnectionState(enum.Enum):
    IDLE = "idle"  # not started
    CONNECTING = "connecting"  # a link is being opened or is handshaking (first time or again)
    READY = "ready"  # a session is ready: messages flow
    CLOSED = "closed"  # the user closed it (terminal)
    GAVE_UP = "gave-up"  # the reconnect policy gave up (terminal)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionConfig:
    """Everything a Connection needs, as plain values (built by the shell from an identity)."""

    protocol: Protocol
    useragent: str
    session_id: str
    site_id: str | None = None
    access_key: str = field(default="", repr=False)
    password: str | None = field(default=None, repr=False)
    crypto_key: str | None = field(default=None, repr=False)
    http_base_path: str = ""
    auth_encoding: Literal["raw", "percent"] = "raw"
    mqtt_topic_prefix: str = field(default="", repr=False)
    mqtt_layout: MqttLayout = MqttLayout.LEGACY
    mqtt_overrides: TopicOverrides | None = field(default=None, repr=False)
    mqtt_qos: int = 1
    handshake_timeout: float = 10.0
    queue_timeout: float = 5.0
    max_queue: int = 256
    http: HttpPollConfig = field(default_factory=HttpPollConfig)
    reconnect: rc.ReconnectConfig = field(default_factory=rc.ReconnectConfig)
    v3_options: tuple[tuple[str, Any], ...] = field(default=(), repr=False)
    #: send a PING frame after this many idle seconds while ready (None: never). MQTT needs it:
    #: a restarted hub 4.x only notices (and re-greets) a client that sends something.
    keepalive: float | None = None
    #: when a quiet WebSocket or MQTT link sends a probe and when it is given up (None: never)
    liveness: LivenessConfig | None = DEFAULT_LIVENESS

    def __post_init__(self) -> None:
        if self.protocol not in ("wss", "https", "mqtt"):
            raise LocalProtocolError(f"unknown protocol {self.protocol!r}")
        if self.keepalive is not None and self.keepalive <= 0:
            raise LocalProtocolError("keepalive must be positive (or None)")
        if self.queue_timeout <= 0 or self.max_queue < 1:
            raise LocalProtocolError("queue_timeout and max_queue must be positive")
        if self.protocol == "mqtt" and not self.mqtt_topic_prefix and self.mqtt_overrides is None:
            raise LocalProtocolError("MQTT needs a topic prefix or explicit topics")


# ---- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect(Input):
    """The user wants the connection up (opens the first link now)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect(Input):
    """The user closed the client."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkFact(Input):
    """A fact from the transport of link ``epoch`` (e.g. ``WsMessage``, ``ResponseReceived``)."""

    epoch: int
    fact: Input


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRequested(Input):
    """Send ``message`` (a bus message, or a whole frame: BINARY, a mesh wrapper, QUERY) to the hub.

    Attributes:
        ref: the caller's unique reference; answered by ``SendDone`` or ``SendError``.
        deadline: absolute time after which a message still queued fails.
        ask: when set, the send is an ask: the correlator follows its replies.
    """

    ref: int
    message: BusMessage | HiveMessage
    deadline: float
    ask: corr.AskStarted | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAsk(Input):
    """The caller gave up on an ask (e.g. it was cancelled)."""

    ask_id: str


# ---- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenWebSocket(Output):
    """Open the WebSocket for this epoch with ``target`` (holds the token: never log it)."""

    target: str = field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkOrder(Output):
    """An order for the transport of link ``epoch`` (``SendWs``, ``StartRequest``, ``Publish``...)."""

    epoch: int
    order: Output


@dataclass(frozen=True, slots=True, kw_only=True)
class DropLink(Output):
    """Forget the transport of link ``epoch`` (close sockets, cancel its requests)."""

    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDelivered(Output):
    """A bus event from the hub, for listeners and subscriptions."""

    event: ThalovantEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameDelivered(Output):
    """A frame from the hub that is not a bus message (BINARY, QUERY, BROADCAST, PROPAGATE, ESCALATE, ...).

    The shell hands it to whoever registered for frames (binary and mesh handlers); with nobody
    registered it is dropped with a debug log, as before.
    """

    message: HiveMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDone(Output):
    """The message ``ref`` was handed over to the hub."""

    ref: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SendError(Output):
    """The message ``ref`` was not delivered.

    ``maybe_sent`` is True when it left us but the link died before the
    transport confirmed it: it is reported, not repeated.
    """

    ref: int
    reason: str
    kind: SendErrorKind
    maybe_sent: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged(Output):
    """The connection's state changed (``detail`` says why; never a secret)."""

    state: ConnectionState
    detail: str = ""
    generation: int | None = None
    epoch: int = 0
    auth: bool = False


# Trace tags name a value's module (``connection.ConnectionConfig``), and users import these
# from ``thalovant.core.client.connection``: keep that public home so recorded traces stay valid.
for _cls in (
    ConnectionState,
    ConnectionConfig,
    Connect,
    Disconnect,
    LinkFact,
    SendRequested,
    CancelAsk,
    OpenWebSocket,
    LinkOrder,
    DropLink,
    EventDelivered,
    FrameDelivered,
    SendDone,
    SendError,
    StatusChanged,
):
    _cls.__module__ = "thalovant.core.client.connection"
