"""The MQTT link's vocabulary (spec §8.3): its states, the facts paho reports, the orders it carries out.

The machine that uses them, with its theory of operation and transition table, is
:class:`~.mqtt_map.MqttMap`; the topic helpers are in :mod:`.mqtt_topics`. Traces name
these classes by this module (``links.mqtt_map.<class>``), so they stay here.

Layouts (``MqttLayout``):

* ``LEGACY`` -- hivemind-mqtt-protocol 0.1.0a2 (hub 4.x, the harness):
  ``topic_prefix`` is ``<prefix>/<hub_id>`` (e.g. ``hivemind/thalovant-test-hub``)
  and the topics are ``<topic_prefix>/c2s|s2c|status/<access_key>``.
* ``MODERN`` -- plugin 0.2.x (hub >= 5.1): ``topic_prefix`` already ends with
  the key (``hivemind/<access_key>``, as thalovant 0.9.7 does) and the topics
  are ``<topic_prefix>/in|out|status``.

``TopicOverrides`` replaces any of the three topics outright.

Frames: client -> hub frames are published as bytes (``str`` frames as UTF-8;
on hub 4.x the session must already produce bitstrings). Hub -> client
payloads are classified like the hub's own ``_coerce_payload`` (§2 step 3):
UTF-8 that parses as a JSON object becomes a text frame, anything else a
binary frame.

Status topics (§8.3). The client's own status topic carries retained ``online`` /
``offline``; the hub drops its logical connection for a key on every ``offline`` there and
answers with its own ``offline`` (a *tombstone*). Plugin 0.1.0a2 also keeps the hub's
presence on ``<topic_prefix>/status/hub`` (retained ``online`` at start, ``offline`` as its
last will). :func:`hub_status_topic` derives it; ``MqttMap(watch_status=True)`` follows both.

Topics embed the access key, so they never appear in ``repr``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from thalovant.core.links.base import (
    LINK_TRACE_TYPES,
    Started,
)
from thalovant.core.links.mqtt_topics import (
    MqttLayout,
    MqttProblem,
    MqttTopics,
    TopicOverrides,
    classify_payload,
    mqtt_topics,
    validate_topic,
)
from thalovant.core.machine import Input, Output

__all__ = [
    "TRACE_TYPES",
    "ConnectMqtt",
    "DisconnectMqtt",
    "HubSessionLost",
    "MqttConnected",
    "MqttDisconnected",
    "MqttLayout",
    "MqttMessage",
    "MqttProblem",
    "MqttPublishFailed",
    "MqttPublished",
    "MqttState",
    "MqttSubscribed",
    "MqttTopics",
    "Publish",
    "SessionEstablished",
    "SetWill",
    "Subscribe",
    "TopicOverrides",
    "classify_payload",
    "hub_status_topic",
    "mqtt_topics",
    "validate_topic",
]


class MqttState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    SUBSCRIBING = "subscribing"
    RESETTING = "resetting"
    AWAITING_HUB = "awaiting-hub"  # connected to the broker; the hub's status says it is offline
    UP = "up"
    CLOSING = "closing"
    CLOSED = "closed"


# ---- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttConnected(Input):
    """CONNACK accepted."""

    session_present: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSubscribed(Input):
    """SUBACK for the s2c subscription; ``granted_qos`` 0x80 (128) means refused."""

    granted_qos: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttPublished(Input):
    """Publish ``pub_id`` is done (PUBACK for QoS 1, written for QoS 0)."""

    pub_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttPublishFailed(Input):
    """Publish ``pub_id`` failed or timed out."""

    pub_id: int
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class MqttMessage(Input):
    """A message from the broker."""

    topic: str
    payload: bytes
    qos: int = 0

    def __repr__(self) -> str:
        return f"MqttMessage(topic=<redacted>, payload={self.payload[:64]!r}, qos={self.qos})"


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttDisconnected(Input):
    """The connection ended or never came up; ``rc`` is paho's reason code as an int."""

    rc: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEstablished(Input):
    """The session finished its handshake (lets the link announce ``online``)."""


# ---- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class SetWill(Output):
    """Configure the last will before connecting."""

    topic: str
    payload: bytes
    qos: int
    retain: bool

    def __repr__(self) -> str:
        return f"SetWill(topic=<redacted>, payload={self.payload!r}, qos={self.qos}, retain={self.retain})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectMqtt(Output):
    """Connect to the broker (host, port and broker credentials come from the shell's settings)."""

    client_id: str
    keepalive: int = 60
    clean_session: bool = True


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Subscribe(Output):
    """Subscribe to ``topic``; answer with ``MqttSubscribed``."""

    topic: str
    qos: int

    def __repr__(self) -> str:
        return f"Subscribe(topic=<redacted>, qos={self.qos})"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Publish(Output):
    """Publish; answer with ``MqttPublished(pub_id)`` or ``MqttPublishFailed(pub_id)``."""

    pub_id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def __repr__(self) -> str:
        return (
            f"Publish(pub_id={self.pub_id}, topic=<redacted>, payload={self.payload[:64]!r}, "
            f"qos={self.qos}, retain={self.retain})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectMqtt(Output):
    """Disconnect cleanly (the will is not published); answer with ``MqttDisconnected``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSessionLost(Output):
    """The status topics say the hub no longer holds this client's session (it went offline,
    restarted, or dropped the client): end the session and stop this link politely (``reason``
    has no secrets)."""

    reason: str


def hub_status_topic(topics: MqttTopics) -> str | None:
    """The hub's own presence topic next to the client's status topic (plugin 0.1.0a2:
    ``<prefix>/<hub_id>/status/hub``), or None when the status topic has another shape."""
    parent, _, _ = topics.status.rpartition("/")
    hub = f"{parent}/hub"
    return hub if parent.rpartition("/")[2] == "status" and hub != topics.status else None


#: Every class an MqttMap trace may contain (for ``trace.TypeRegistry``).
TRACE_TYPES: tuple[type, ...] = (Started, MqttConnected, MqttSubscribed, MqttPublished, MqttPublishFailed, MqttMessage)
TRACE_TYPES += (MqttDisconnected, SessionEstablished, SetWill, ConnectMqtt, Subscribe, Publish, DisconnectMqtt)
TRACE_TYPES += (HubSessionLost,)
TRACE_TYPES += LINK_TRACE_TYPES
