"""MqttMap: the HiveMind <-> MQTT topic scheme and link life cycle (spec §8.3).

Theory of operation
-------------------
paho-mqtt (in the shell) speaks MQTT; this machine decides which topics,
QoS and retain flags to use, and in which order (§8.3 rules 1-7)::

    IDLE --Started--> CONNECTING       SetWill(status, "offline", QoS 1, retain), ConnectMqtt(client_id)
    CONNECTING --MqttConnected--> SUBSCRIBING       Subscribe(s2c)          (rule 2: before any publish)
    SUBSCRIBING --MqttSubscribed--> RESETTING       Publish(status, "offline", retained)   (rule 3)
    RESETTING --MqttPublished/Failed--> UP          LinkUp; queued frames go out
    UP --OutboundFrame--> Publish(c2s) ... --MqttPublished--> FrameSent
    UP --MqttMessage(s2c)--> InboundFrame
    UP --SessionEstablished--> Publish(status, "online", retained)      (rule 6, optional)
    UP --StopRequested--> CLOSING      Publish(status, "offline") (rule 7) then DisconnectMqtt
    any --MqttDisconnected--> CLOSED   LinkDown (classified by return code)

Rule 3 (publish ``offline`` first, wait for the PUBACK) makes hub 4.x drop a
stale logical connection left by an earlier process (harness P16). It is
UNCERTAIN on brokers other than mosquitto (§13.2), so ``reset_on_connect``
can turn it off; a failed reset publish is only a warning.

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

The client id is random (``thalovant-<16 hex>`` from the injected entropy,
drawn when ``Started`` arrives so a replay sees the draw):
a fixed id per access key made two processes kick each other (P16).
Topics embed the access key, so they never appear in ``repr``.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from returns.maybe import Maybe, Nothing, Some
from returns.result import Failure

from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.base import (
    FrameNotSent,
    FrameSent,
    InboundFrame,
    LinkDown,
    LinkUp,
    OutboundFrame,
    Refs,
    Started,
    StopRequested,
)
from thalovant.core.links.mqtt_topics import (
    MqttLayout,
    MqttProblem,
    MqttTopics,
    TopicOverrides,
    classify_payload,
    classify_rc,
    mqtt_topics,
    validate_topic,
)
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Tick

__all__ = [
    "TRACE_TYPES",
    "ConnectMqtt",
    "DisconnectMqtt",
    "MqttConnected",
    "MqttDisconnected",
    "MqttLayout",
    "MqttMap",
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
    "mqtt_topics",
    "validate_topic",
]


class MqttState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    SUBSCRIBING = "subscribing"
    RESETTING = "resetting"
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


_S = MqttState
#: (state, input type) -> handler. Unlisted: late broker facts are ignored; unknown inputs raise.
_TABLE: dict[tuple[MqttState, type[Input]], str] = {
    (_S.IDLE, Started): "_on_started",  # SetWill + ConnectMqtt
    (_S.IDLE, OutboundFrame): "_on_queue",
    (_S.IDLE, StopRequested): "_on_stop_idle",
    (_S.CONNECTING, MqttConnected): "_on_connected",  # Subscribe(s2c) first
    (_S.SUBSCRIBING, MqttSubscribed): "_on_subscribed",  # publish "offline" (reset) or go UP
    (_S.RESETTING, MqttPublished): "_on_reset_done",  # LinkUp, flush
    (_S.RESETTING, MqttPublishFailed): "_on_reset_done",
    (_S.UP, OutboundFrame): "_on_send",  # Publish(c2s)
    (_S.UP, MqttPublished): "_on_published",  # FrameSent
    (_S.UP, MqttPublishFailed): "_on_publish_failed",  # FrameNotSent
    (_S.UP, SessionEstablished): "_on_ready",  # Publish(status, "online")
    (_S.UP, StopRequested): "_on_stop",  # Publish(status, "offline"), then DisconnectMqtt
    (_S.CLOSING, MqttPublished): "_on_closing_published",
    (_S.CLOSING, MqttPublishFailed): "_on_closing_published",
    (_S.CLOSING, Tick): "_on_close_timeout",
    (_S.CLOSED, OutboundFrame): "_on_refuse",
}
for _state in (_S.CONNECTING, _S.SUBSCRIBING, _S.RESETTING):
    _TABLE[(_state, OutboundFrame)] = "_on_queue"  # held until UP
    _TABLE[(_state, StopRequested)] = "_on_stop_early"  # DisconnectMqtt + LinkDown
for _state in (_S.CONNECTING, _S.SUBSCRIBING, _S.RESETTING, _S.UP, _S.CLOSING):
    _TABLE[(_state, MqttDisconnected)] = "_on_disconnected"  # LinkDown by rc
for _state in (_S.SUBSCRIBING, _S.RESETTING, _S.UP, _S.CLOSING):
    _TABLE[(_state, MqttMessage)] = "_on_message"  # InboundFrame if the topic is s2c
_TABLE[(_S.CLOSING, OutboundFrame)] = "_on_refuse"
_ONLINE, _OFFLINE = b"online", b"offline"


class MqttMap:
    """The MQTT link machine. See the module docstring.

    Args:
        access_key: the client's access key (a topic level on hub 4.x). Secret.
        topic_prefix: see :class:`MqttLayout`; validated with :func:`validate_topic`.
        entropy: random bytes for the client id.
        layout: which plugin generation's topics to use.
        overrides: explicit topics from the identity.
        qos: QoS for the s2c subscription and c2s publishes (status is always QoS 1).
        keepalive: MQTT keep-alive (seconds).
        reset_on_connect: publish ``offline`` before the first frame (rule 3).
        announce_online: publish ``online`` on ``SessionEstablished`` (rule 6).
        close_timeout: how long ``StopRequested`` waits for the ``offline`` PUBACK.
        max_queue: frames held before the link is up.
    """

    def __init__(
        self,
        *,
        access_key: str,
        topic_prefix: str,
        entropy: Entropy,
        layout: MqttLayout = MqttLayout.LEGACY,
        overrides: TopicOverrides | None = None,
        qos: int = 1,
        keepalive: int = 60,
        reset_on_connect: bool = True,
        announce_online: bool = False,
        close_timeout: float = 5.0,
        max_queue: int = 64,
    ) -> None:
        topics = mqtt_topics(access_key=access_key, topic_prefix=topic_prefix, layout=layout, overrides=overrides)
        if isinstance(topics, Failure):
            raise LocalProtocolError(f"MqttMap: {topics.failure().detail}")
        if qos not in (0, 1, 2) or keepalive < 0:
            raise LocalProtocolError("MqttMap: qos must be 0, 1 or 2 and keepalive >= 0")
        self.topics: MqttTopics = topics.unwrap()
        self._entropy = entropy
        self.client_id: str | None = None  # drawn at Started, inside a step, so replays see the draw
        self._qos = qos
        self._keepalive = keepalive
        self._reset = reset_on_connect
        self._announce = announce_online
        self._close_timeout = close_timeout
        self._max_queue = max_queue
        self._state = MqttState.IDLE
        self._queue: deque[OutboundFrame] = deque()
        self._pending: dict[int, Refs] = {}  # pub_id -> refs of frames in flight
        self._control: set[int] = set()  # pub_ids of status publishes
        self._next_pub = 1
        self._close_by: float | None = None

    def __repr__(self) -> str:
        return f"<MqttMap state={self._state.value} pending={len(self._pending)} queued={len(self._queue)}>"

    @property
    def state(self) -> MqttState:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state is MqttState.CLOSED

    @property
    def deadline(self) -> float | None:
        return self._close_by if self._state is MqttState.CLOSING else None

    @property
    def will(self) -> SetWill:
        """The last will (rule 1): ``offline`` on the status topic, QoS 1, retained."""
        return SetWill(topic=self.topics.status, payload=_OFFLINE, qos=1, retain=True)

    def route(self, topic: str) -> Maybe[str]:
        """Which of our topics ``topic`` is (``"s2c"``), if any."""
        return Some("s2c") if topic == self.topics.s2c else Nothing

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns the orders for the shell."""
        name = _TABLE.get((self._state, type(inp)))
        if name is None:
            if type(inp) in _KNOWN_INPUTS:
                return []  # a late or repeated broker fact, an early tick, a repeated stop
            raise LocalProtocolError(f"MqttMap: {type(inp).__name__} not allowed in state {self._state.value}")
        out: list[Output] = getattr(self, name)(inp, now)
        return out

    # ---- handlers -------------------------------------------------------------------------------

    def _on_started(self, inp: Started, now: float) -> list[Output]:
        self._state = MqttState.CONNECTING
        self.client_id = "thalovant-" + self._entropy(8).hex()
        return [self.will, ConnectMqtt(client_id=self.client_id, keepalive=self._keepalive)]

    def _on_connected(self, inp: MqttConnected, now: float) -> list[Output]:
        self._state = MqttState.SUBSCRIBING
        return [Subscribe(topic=self.topics.s2c, qos=self._qos)]

    def _on_subscribed(self, inp: MqttSubscribed, now: float) -> list[Output]:
        if not 0 <= inp.granted_qos <= 2:
            text = f"broker refused the subscription (granted {inp.granted_qos}); check the broker ACL"
            return [DisconnectMqtt(), *self._down(LinkDown(reason=text, retryable=False))]
        if self._reset:
            self._state = MqttState.RESETTING
            return [self._status(_OFFLINE)]
        return self._go_up(now)

    def _on_reset_done(self, inp: MqttPublished | MqttPublishFailed, now: float) -> list[Output]:
        if inp.pub_id not in self._control:
            return []
        self._control.discard(inp.pub_id)
        out: list[Output] = []
        if isinstance(inp, MqttPublishFailed):
            out.append(Note(level=NoteLevel.WARNING, text="mqtt: the offline reset publish failed; continuing"))
        return out + self._go_up(now)

    def _go_up(self, now: float) -> list[Output]:
        self._state = MqttState.UP
        out: list[Output] = [LinkUp()]
        while self._queue:
            out.extend(self._on_send(self._queue.popleft(), now))
        return out

    def _on_queue(self, inp: OutboundFrame, now: float) -> list[Output]:
        if len(self._queue) >= self._max_queue:
            return [FrameNotSent(refs=inp.refs, reason="send queue full")]
        self._queue.append(inp)
        return []

    def _on_send(self, inp: OutboundFrame, now: float) -> list[Output]:
        payload = inp.data.encode("utf-8") if isinstance(inp.data, str) else inp.data
        pub_id = self._new_pub()
        self._pending[pub_id] = inp.refs
        return [Publish(pub_id=pub_id, topic=self.topics.c2s, payload=payload, qos=self._qos, retain=False)]

    def _on_published(self, inp: MqttPublished, now: float) -> list[Output]:
        self._control.discard(inp.pub_id)
        refs = self._pending.pop(inp.pub_id, None)
        return [] if refs is None else [FrameSent(refs=refs)]

    def _on_publish_failed(self, inp: MqttPublishFailed, now: float) -> list[Output]:
        if inp.pub_id in self._control:
            self._control.discard(inp.pub_id)
            return [Note(level=NoteLevel.WARNING, text="mqtt: a status publish failed")]
        refs = self._pending.pop(inp.pub_id, None)
        reason = "publish failed" + (f": {_clean(inp.reason)}" if inp.reason else "")
        return [] if refs is None else [FrameNotSent(refs=refs, reason=reason)]

    def _on_ready(self, inp: SessionEstablished, now: float) -> list[Output]:
        return [self._status(_ONLINE)] if self._announce else []

    def _on_message(self, inp: MqttMessage, now: float) -> list[Output]:
        if self.route(inp.topic) == Nothing:
            return [Note(level=NoteLevel.DEBUG, text="mqtt: message on a topic that is not ours; dropped")]
        if self._state in (MqttState.SUBSCRIBING, MqttState.RESETTING):
            return [Note(level=NoteLevel.DEBUG, text="mqtt: frame before the link was up (stale); dropped")]
        return [InboundFrame(data=classify_payload(inp.payload))]

    def _on_stop_idle(self, inp: StopRequested, now: float) -> list[Output]:
        self._state = MqttState.CLOSED
        return self._fail_all("link closed")

    def _on_stop_early(self, inp: StopRequested, now: float) -> list[Output]:
        return [DisconnectMqtt(), *self._down(LinkDown(reason="closed by the client", retryable=False))]

    def _on_stop(self, inp: StopRequested, now: float) -> list[Output]:
        self._state = MqttState.CLOSING
        self._close_by = now + self._close_timeout
        return [*self._fail_queue("link closing"), self._status(_OFFLINE)]

    def _on_closing_published(self, inp: MqttPublished | MqttPublishFailed, now: float) -> list[Output]:
        if inp.pub_id not in self._control:
            return self._on_published(inp, now) if isinstance(inp, MqttPublished) else self._on_publish_failed(inp, now)
        return [DisconnectMqtt(), *self._down(LinkDown(reason="closed by the client", retryable=False))]

    def _on_close_timeout(self, inp: Tick, now: float) -> list[Output]:
        if self._close_by is None or now < self._close_by:
            return []
        return [DisconnectMqtt(), *self._down(LinkDown(reason="closed by the client", retryable=False))]

    def _on_disconnected(self, inp: MqttDisconnected, now: float) -> list[Output]:
        if self._state is MqttState.CLOSING:
            return self._down(LinkDown(reason="closed by the client", retryable=False))
        down = classify_rc(inp.rc)
        if self._state is MqttState.CONNECTING and inp.rc in (0, 7):
            down = LinkDown(reason=f"could not connect to the broker (rc {inp.rc})", retryable=True)
        return self._down(down)

    def _on_refuse(self, inp: OutboundFrame, now: float) -> list[Output]:
        return [FrameNotSent(refs=inp.refs, reason="link closed")]

    # ---- helpers --------------------------------------------------------------------------------

    def _new_pub(self) -> int:
        pub_id = self._next_pub
        self._next_pub += 1
        return pub_id

    def _status(self, payload: bytes) -> Publish:
        pub_id = self._new_pub()
        self._control.add(pub_id)
        return Publish(pub_id=pub_id, topic=self.topics.status, payload=payload, qos=1, retain=True)

    def _fail_queue(self, reason: str) -> list[Output]:
        out: list[Output] = [FrameNotSent(refs=f.refs, reason=reason) for f in self._queue]
        self._queue.clear()
        return out

    def _fail_all(self, reason: str) -> list[Output]:
        out = [FrameNotSent(refs=refs, reason=reason) for refs in self._pending.values()]
        self._pending.clear()
        return out + self._fail_queue(reason)

    def _down(self, down: LinkDown) -> list[Output]:
        out = self._fail_all("link down")
        self._control.clear()
        self._state = MqttState.CLOSED
        self._close_by = None
        out.append(down)
        return out


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text[:120])


_KNOWN_INPUTS: frozenset[type] = frozenset(
    {Started, StopRequested, OutboundFrame, Tick, SessionEstablished}
    | {MqttConnected, MqttSubscribed, MqttPublished, MqttPublishFailed, MqttMessage, MqttDisconnected}
)

#: Every class an MqttMap trace may contain (for ``trace.TypeRegistry``).
TRACE_TYPES: tuple[type, ...] = (
    Started,
    MqttConnected,
    MqttSubscribed,
    MqttPublished,
    MqttPublishFailed,
    MqttMessage,
    MqttDisconnected,
    SessionEstablished,
    OutboundFrame,
    StopRequested,
    Tick,
    SetWill,
    ConnectMqtt,
    Subscribe,
    Publish,
    DisconnectMqtt,
    InboundFrame,
    FrameSent,
    FrameNotSent,
    LinkUp,
    LinkDown,
    Note,
    NoteLevel,
)
