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

The client id is random (``thalovant-<16 hex>`` from the injected entropy,
drawn when ``Started`` arrives so a replay sees the draw):
a fixed id per access key made two processes kick each other (P16).
Topics embed the access key, so they never appear in ``repr``.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from returns.maybe import Maybe, Nothing, Some
from returns.result import Failure

from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.base import (
    FrameNotSent,
    FrameSent,
    InboundFrame,
    LinkDown,
    LinkMachine,
    LinkUp,
    OutboundFrame,
    Refs,
    Started,
    StopRequested,
    printable,
)
from thalovant.core.links.mqtt import (
    TRACE_TYPES,
    ConnectMqtt,
    DisconnectMqtt,
    MqttConnected,
    MqttDisconnected,
    MqttLayout,
    MqttMessage,
    MqttPublished,
    MqttPublishFailed,
    MqttState,
    MqttSubscribed,
    MqttTopics,
    Publish,
    SessionEstablished,
    SetWill,
    Subscribe,
    TopicOverrides,
)
from thalovant.core.links.mqtt_topics import classify_payload, classify_rc, mqtt_topics
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Row, Table, Tick

# The vocabulary is re-exported so one import gives the machine and what it speaks.
__all__ = [
    "TABLE",
    "TRACE_TYPES",
    "MqttConnected",
    "MqttDisconnected",
    "MqttMap",
    "MqttMessage",
    "MqttPublishFailed",
    "MqttPublished",
    "MqttState",
    "MqttSubscribed",
]

_ONLINE, _OFFLINE = b"online", b"offline"


class MqttMap(LinkMachine[MqttState]):
    """The MQTT link machine. See the module docstring; its transitions are :data:`TABLE`.

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

    _TERMINAL = frozenset({MqttState.CLOSED})
    _CLOSED = MqttState.CLOSED
    _QUIET: ClassVar[tuple[type[Input], ...]] = (Started, StopRequested, OutboundFrame, Tick, SessionEstablished)
    _QUIET += (MqttConnected, MqttSubscribed, MqttPublished, MqttPublishFailed, MqttMessage, MqttDisconnected)

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

    def __repr__(self) -> str:
        return f"<MqttMap state={self._state.value} pending={len(self._pending)} queued={len(self._queue)}>"

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
        """Feed one input; returns the orders for the shell.

        Unlisted pairs: a late or repeated broker fact, an early tick or a repeated stop is
        ignored; any other input is misuse.
        """
        return self._step(TABLE, inp, now)

    def _is_quiet(self, inp: Input) -> bool:
        return type(inp) in self._QUIET  # the exact type: a subclass of an input is misuse here

    # ---- handlers -------------------------------------------------------------------------------

    def _on_started(self, inp: Started, now: float) -> list[Output]:
        self.client_id = "thalovant-" + self._entropy(8).hex()
        return [self.will, ConnectMqtt(client_id=self.client_id, keepalive=self._keepalive)]

    def _on_connected(self, inp: MqttConnected, now: float) -> list[Output]:
        return [Subscribe(topic=self.topics.s2c, qos=self._qos)]

    def _on_subscribed(self, inp: MqttSubscribed, now: float) -> list[Output]:
        if not 0 <= inp.granted_qos <= 2:
            text = f"broker refused the subscription (granted {inp.granted_qos}); check the broker ACL"
            return [DisconnectMqtt(), *self._down(LinkDown(reason=text, retryable=False))]
        if self._reset:
            return [self._status(_OFFLINE)]
        return self._go_up(now)

    def _on_reset_done(self, inp: MqttPublished | MqttPublishFailed, now: float) -> list[Output]:
        if inp.pub_id not in self._control:
            self._exit(MqttState.RESETTING)  # not the reset publish: keep waiting for it
            return []
        self._control.discard(inp.pub_id)
        out: list[Output] = []
        if isinstance(inp, MqttPublishFailed):
            out.append(Note(level=NoteLevel.WARNING, text="mqtt: the offline reset publish failed; continuing"))
        return out + self._go_up(now)

    def _go_up(self, now: float) -> list[Output]:
        self._exit(MqttState.UP)
        out: list[Output] = [LinkUp()]
        while self._queue:
            out.extend(self._on_send(self._queue.popleft(), now))
        return out

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
        reason = "publish failed" + (f": {printable(inp.reason)}" if inp.reason else "")
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
        return self._fail_all("link closed")

    def _on_stop_early(self, inp: StopRequested, now: float) -> list[Output]:
        return [DisconnectMqtt(), *self._closed_by_client()]

    def _on_stop(self, inp: StopRequested, now: float) -> list[Output]:
        self._close_by = now + self._close_timeout
        return [*self._fail_queue("link closing"), self._status(_OFFLINE)]

    def _on_closing_published(self, inp: MqttPublished | MqttPublishFailed, now: float) -> list[Output]:
        if inp.pub_id not in self._control:  # a frame's publish: still waiting for the offline one
            self._exit(MqttState.CLOSING)
            return self._on_published(inp, now) if isinstance(inp, MqttPublished) else self._on_publish_failed(inp, now)
        return [DisconnectMqtt(), *self._closed_by_client()]

    def _on_close_timeout(self, inp: Tick, now: float) -> list[Output]:
        if not self._close_overdue(now):
            return []
        return [DisconnectMqtt(), *self._closed_by_client()]

    def _on_disconnected(self, inp: MqttDisconnected, now: float) -> list[Output]:
        if self._state is MqttState.CLOSING:
            return self._closed_by_client()
        down = classify_rc(inp.rc)
        if self._state is MqttState.CONNECTING and inp.rc in (0, 7):
            down = LinkDown(reason=f"could not connect to the broker (rc {inp.rc})", retryable=True)
        return self._down(down)

    # ---- helpers --------------------------------------------------------------------------------

    def _new_pub(self) -> int:
        pub_id = self._next_pub
        self._next_pub += 1
        return pub_id

    def _status(self, payload: bytes) -> Publish:
        pub_id = self._new_pub()
        self._control.add(pub_id)
        return Publish(pub_id=pub_id, topic=self.topics.status, payload=payload, qos=1, retain=True)

    def _fail_all(self, reason: str) -> list[Output]:
        out = [FrameNotSent(refs=refs, reason=reason) for refs in self._pending.values()]
        self._pending.clear()
        return out + self._fail_queue(reason)

    def _fail_unanswered(self, reason: str) -> list[Output]:
        self._control.clear()
        return self._fail_all(reason)


_S = MqttState
_R = Row  # each row is typed by the table annotation
_EARLY = (_S.CONNECTING, _S.SUBSCRIBING, _S.RESETTING)
#: (state, input type) -> Row(next state, handler, other possible ends). Unlisted: late broker facts
#: are ignored; unknown inputs raise.
TABLE: Table[MqttState, MqttMap] = {
    (_S.IDLE, Started): _R(_S.CONNECTING, MqttMap._on_started),  # SetWill + ConnectMqtt
    (_S.IDLE, OutboundFrame): _R(_S.IDLE, MqttMap._on_queue),
    (_S.IDLE, StopRequested): _R(_S.CLOSED, MqttMap._on_stop_idle),
    (_S.CONNECTING, MqttConnected): _R(_S.SUBSCRIBING, MqttMap._on_connected),  # Subscribe(s2c) first
    # publish "offline" (reset); straight UP without the reset; CLOSED if the broker refused
    (_S.SUBSCRIBING, MqttSubscribed): _R(_S.RESETTING, MqttMap._on_subscribed, frozenset({_S.UP, _S.CLOSED})),
    (_S.RESETTING, MqttPublished): _R(_S.UP, MqttMap._on_reset_done, frozenset({_S.RESETTING})),  # LinkUp, flush
    (_S.RESETTING, MqttPublishFailed): _R(_S.UP, MqttMap._on_reset_done, frozenset({_S.RESETTING})),
    (_S.UP, OutboundFrame): _R(_S.UP, MqttMap._on_send),  # Publish(c2s)
    (_S.UP, MqttPublished): _R(_S.UP, MqttMap._on_published),  # FrameSent
    (_S.UP, MqttPublishFailed): _R(_S.UP, MqttMap._on_publish_failed),  # FrameNotSent
    (_S.UP, SessionEstablished): _R(_S.UP, MqttMap._on_ready),  # Publish(status, "online")
    (_S.UP, StopRequested): _R(_S.CLOSING, MqttMap._on_stop),  # Publish(status, "offline"), then DisconnectMqtt
    (_S.CLOSING, MqttPublished): _R(_S.CLOSED, MqttMap._on_closing_published, frozenset({_S.CLOSING})),
    (_S.CLOSING, MqttPublishFailed): _R(_S.CLOSED, MqttMap._on_closing_published, frozenset({_S.CLOSING})),
    (_S.CLOSING, Tick): _R(_S.CLOSED, MqttMap._on_close_timeout, frozenset({_S.CLOSING})),  # at close_timeout
    (_S.CLOSING, OutboundFrame): _R(_S.CLOSING, MqttMap._on_refuse),
    (_S.CLOSED, OutboundFrame): _R(_S.CLOSED, MqttMap._on_refuse),
    **{(s, OutboundFrame): _R(s, MqttMap._on_queue) for s in _EARLY},  # held until UP
    **{(s, StopRequested): _R(_S.CLOSED, MqttMap._on_stop_early) for s in _EARLY},  # DisconnectMqtt + LinkDown
    **{(s, MqttDisconnected): _R(_S.CLOSED, MqttMap._on_disconnected) for s in (*_EARLY, _S.UP, _S.CLOSING)},
    **{(s, MqttMessage): _R(s, MqttMap._on_message) for s in (_S.SUBSCRIBING, _S.RESETTING, _S.UP, _S.CLOSING)},
}
