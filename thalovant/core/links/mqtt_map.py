"""MqttMap: the HiveMind <-> MQTT topic scheme and link life cycle (spec §8.3).

Theory of operation
-------------------
paho-mqtt (in the shell) speaks MQTT; this machine decides which topics,
QoS and retain flags to use, and in which order (§8.3 rules 1-7)::

    IDLE --Started--> CONNECTING       SetWill(status, "offline", QoS 1, retain), ConnectMqtt(client_id)
    CONNECTING --MqttConnected--> SUBSCRIBING       [Subscribe(hub status), Subscribe(status)], Subscribe(s2c)
    SUBSCRIBING --last MqttSubscribed--> RESETTING  Publish(status, "offline", retained)   (rule 3)
    RESETTING --MqttPublished/Failed--> UP          LinkUp; queued frames go out
              (the hub's status is "offline") --> AWAITING_HUB --"online" or hub_wait--> UP
    UP --OutboundFrame--> Publish(c2s) ... --MqttPublished--> FrameSent
    UP --MqttMessage(s2c)--> InboundFrame
    UP --the status topics say the hub lost us--> HubSessionLost (the connection stops the link)
    UP --SessionEstablished--> Publish(status, "online", retained)      (rule 6, optional)
    UP --StopRequested--> CLOSING      Publish(status, "offline") (rule 7), [the hub's tombstone], DisconnectMqtt
    any --MqttDisconnected--> CLOSED   LinkDown (classified by return code)

Rule 3 (publish ``offline`` first, wait for the PUBACK) makes hub 4.x drop a stale logical connection
left by an earlier process (harness P16). It is UNCERTAIN on brokers other than mosquitto (§13.2), so
``reset_on_connect`` can turn it off; a failed reset publish is only a warning.

Status discipline (``watch_status``). Hub 4.x drops its connection for a key on *every* ``offline`` on
that key's status topic, then publishes its own retained ``offline`` there (a tombstone), which its
``status/+`` subscription brings back to it. It writes that tombstone only after reading the frames
queued behind the ``offline``, so the tombstone of a client that just closed can reach the hub after
the HELLO of the next client of the same key and kill that new connection (seen live: 8 of 20
back-to-back clients were greeted again mid-session; plugin 0.2.5a2 does the same). So this machine
subscribes to its status topic and the hub's presence (:mod:`.mqtt_presence`; on hub 5.x a wildcard,
the hub's topic learned, ``hub_name`` hands it to the next link) before the s2c topic, and:

* on close, after its ``offline``, waits up to ``tombstone_wait`` for the hub's tombstone (two
  ``offline`` in all) before it disconnects;
* says ``HubSessionLost`` when, after the hub spoke to this link, an ``offline`` arrives on its
  status topic, or the hub's presence turns ``offline`` (its last will) or ``online`` again (a restart);
* holds the link in AWAITING_HUB while the hub's presence is ``offline`` and goes up the moment it
  turns ``online`` (or after ``hub_wait``: it may be stale).

Topics the broker does not let the client read stay silent: the link then behaves as without them.
The client id is random (``thalovant-<16 hex>`` from the injected entropy, drawn when ``Started``
arrives so a replay sees the draw): a fixed id per access key made two processes kick each other
(P16). Topics embed the access key, so they never appear in ``repr``.
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
    HubSessionLost,
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
from thalovant.core.links.mqtt_presence import HubPresence
from thalovant.core.links.mqtt_topics import classify_payload, classify_rc, mqtt_topics
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Row, Table, Tick, earliest

# The vocabulary is re-exported so one import gives the machine and what it speaks.
__all__ = ["TABLE", "TRACE_TYPES", "MqttConnected", "MqttDisconnected", "MqttMap", "MqttMessage"]
__all__ += ["MqttPublishFailed", "MqttPublished", "MqttState", "MqttSubscribed"]

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
        watch_status: follow the status topics (see "Status discipline" in the module docstring).
        hub_wait: the longest AWAITING_HUB lasts before the link goes up anyway.
        tombstone_wait: the longest a close waits for the hub's tombstone after its ``offline``.
        hub_name: the hub 5.x node name an earlier link learned (:attr:`hub_name`), or None.
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
        watch_status: bool = False,
        hub_wait: float = 10.0,
        tombstone_wait: float = 1.0,
        hub_name: str | None = None,
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
        self._presence = HubPresence(self.topics, layout=layout, hub_name=hub_name) if watch_status else None
        self._hub_wait, self._tomb_wait = hub_wait, tombstone_wait
        self._acks_due = 0  # SUBACKs still to come (the s2c one is the last)
        self._hub_status: bytes | None = None  # the last "online"/"offline" of the hub's presence
        self._hub_by: float | None = None  # AWAITING_HUB ends by then
        self._own_seen = False  # something arrived on our status topic: we can read it
        self._heard = False  # the hub sent this link a frame while UP
        self._lost: str | None = None  # "peer" or "hub" once HubSessionLost was said
        self._tombs = 0  # "offline" messages on our status topic since StopRequested
        self._await_tomb = False  # the close waits for the hub's tombstone
        self._offline_acked = False  # the close's "offline" publish is done
        self._tomb_by: float | None = None

    def __repr__(self) -> str:
        return f"<MqttMap state={self._state.value} pending={len(self._pending)} queued={len(self._queue)}>"

    @property
    def deadline(self) -> float | None:
        if self._state is MqttState.AWAITING_HUB:
            return self._hub_by
        if self._state is not MqttState.CLOSING:
            return None
        return earliest(self._close_by, self._tomb_by if self._offline_acked and self._await_tomb else None)

    @property
    def will(self) -> SetWill:
        """The last will (rule 1): ``offline`` on the status topic, QoS 1, retained."""
        return SetWill(topic=self.topics.status, payload=_OFFLINE, qos=1, retain=True)

    @property
    def hub_name(self) -> str | None:
        """The hub 5.x node name this link knows (given or learned): for the next link's ``hub_name``."""
        return None if self._presence is None else self._presence.hub_name

    def route(self, topic: str) -> Maybe[str]:
        """Which of our topics ``topic`` is (``"s2c"``; while watching ``"status"``, ``"hub"``, ``"other"``)."""
        if topic == self.topics.s2c:
            return Some("s2c")
        which = None if self._presence is None else self._presence.route(topic)
        return Nothing if which is None else Some(which)

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
        status = self._presence.subscriptions() if self._presence is not None else []
        subs: list[Output] = [Subscribe(topic=t, qos=1) for t in status]
        subs.append(Subscribe(topic=self.topics.s2c, qos=self._qos))  # last: its SUBACK ends SUBSCRIBING
        self._acks_due = len(subs)
        return subs

    def _on_subscribed(self, inp: MqttSubscribed, now: float) -> list[Output]:
        self._acks_due -= 1
        if self._acks_due > 0:  # a status topic's SUBACK: a refusal only leaves that topic silent
            self._exit(MqttState.SUBSCRIBING)  # (a refused wildcard: the own status topic instead)
            instead = self._presence.refused() if self._presence and not 0 <= inp.granted_qos <= 2 else None
            return [] if instead is None else [Subscribe(topic=instead, qos=1)]
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
        if self._hub_status == _OFFLINE and self._hub_by is None:
            self._exit(MqttState.AWAITING_HUB)
            self._hub_by = now + self._hub_wait
            return [Note(level=NoteLevel.INFO, text="mqtt: the hub's status is offline; waiting for it to return")]
        self._exit(MqttState.UP)
        self._hub_by = None
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
        which = self.route(inp.topic)
        if which == Nothing:
            return [Note(level=NoteLevel.DEBUG, text="mqtt: message on a topic that is not ours; dropped")]
        value = inp.payload.strip()
        if which == Some("other") and self._presence is not None:
            self._presence.note_other(inp.topic, value)
            return []
        if which != Some("s2c"):
            return self._on_hub_status(value, now) if which == Some("hub") else self._on_own_status(value)
        if self._state in (MqttState.SUBSCRIBING, MqttState.RESETTING, MqttState.AWAITING_HUB):
            return [Note(level=NoteLevel.DEBUG, text="mqtt: frame before the link was up (stale); dropped")]
        if not self._heard and self._state is MqttState.UP:
            self._heard = True  # the hub is online and speaks to us: its presence is the one "online" (hub 5.x)
            learned = self._presence.learn() if self._presence is not None else None
            self._hub_status = learned or self._hub_status
        return [InboundFrame(data=classify_payload(inp.payload))]

    def _on_hub_status(self, value: bytes, now: float) -> list[Output]:
        if value not in (_ONLINE, _OFFLINE):
            return []
        self._hub_status = value
        state = self._state
        if state is MqttState.AWAITING_HUB and value == _ONLINE:
            return [Note(level=NoteLevel.INFO, text="mqtt: the hub is online again"), *self._go_up(now)]
        if state is MqttState.UP and value == _OFFLINE:
            return self._say_lost("hub", "the hub went offline (its status topic)")
        if state is MqttState.UP and self._heard:
            return self._say_lost("hub", "the hub restarted (its status topic)")
        if state is MqttState.CLOSING and value == _OFFLINE:
            self._await_tomb = False  # a dead hub sends no tombstone
            return self._end_close()
        return []

    def _on_own_status(self, value: bytes) -> list[Output]:
        self._own_seen = True
        if value != _OFFLINE:
            return []
        if self._state is MqttState.CLOSING:
            self._tombs += 1
            return self._end_close()
        if self._state is MqttState.UP and self._heard:
            return self._say_lost("peer", "the hub dropped this client (an offline on its status topic)")
        return []

    def _say_lost(self, kind: str, reason: str) -> list[Output]:
        if self._lost is not None:
            return []
        self._lost = kind
        return [HubSessionLost(reason=reason)]

    def _on_hub_wait_over(self, inp: Tick, now: float) -> list[Output]:
        if self._hub_by is None or now < self._hub_by:
            self._exit(MqttState.AWAITING_HUB)
            return []
        note = Note(level=NoteLevel.WARNING, text="mqtt: the hub's status still says offline; trying anyway")
        return [note, *self._go_up(now)]

    def _on_stop_idle(self, inp: StopRequested, now: float) -> list[Output]:
        return self._fail_all("link closed")

    def _on_stop_early(self, inp: StopRequested, now: float) -> list[Output]:
        return [DisconnectMqtt(), *self._closed_by_client()]

    def _on_stop(self, inp: StopRequested, now: float) -> list[Output]:
        self._close_by = now + self._close_timeout
        self._tomb_by = now + self._tomb_wait
        # the hub holds a connection for this link (it spoke, nothing said it is gone): its tombstone follows ours
        alive = self._hub_status != _OFFLINE and self._lost != "hub"
        self._await_tomb = self._own_seen and self._heard and alive
        return [*self._fail_queue("link closing"), self._status(_OFFLINE)]

    def _on_closing_published(self, inp: MqttPublished | MqttPublishFailed, now: float) -> list[Output]:
        if inp.pub_id not in self._control:  # a frame's publish: still waiting for the offline one
            self._exit(MqttState.CLOSING)
            return self._on_published(inp, now) if isinstance(inp, MqttPublished) else self._on_publish_failed(inp, now)
        self._offline_acked = True
        return self._end_close()

    def _end_close(self) -> list[Output]:
        """Disconnect once the ``offline`` is done and, if awaited, the tombstone came (ours plus the hub's)."""
        if self._offline_acked and (not self._await_tomb or self._tombs >= 2):
            return [DisconnectMqtt(), *self._closed_by_client()]
        self._exit(MqttState.CLOSING)
        return []

    def _on_close_timeout(self, inp: Tick, now: float) -> list[Output]:
        tomb_over = self._offline_acked and self._tomb_by is not None and now >= self._tomb_by
        if not tomb_over and not self._close_overdue(now):
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
_AWAITING, _CLOSING = frozenset({_S.AWAITING_HUB}), frozenset({_S.CLOSING})
#: (state, input type) -> Row(next state, handler, other possible ends). Unlisted: late broker facts
#: are ignored; unknown inputs raise.
TABLE: Table[MqttState, MqttMap] = {
    (_S.IDLE, Started): _R(_S.CONNECTING, MqttMap._on_started),  # SetWill + ConnectMqtt
    (_S.IDLE, OutboundFrame): _R(_S.IDLE, MqttMap._on_queue),
    (_S.IDLE, StopRequested): _R(_S.CLOSED, MqttMap._on_stop_idle),
    (_S.CONNECTING, MqttConnected): _R(_S.SUBSCRIBING, MqttMap._on_connected),  # [status topics], Subscribe(s2c)
    # the s2c SUBACK: publish "offline" (reset); straight up without the reset; CLOSED if the broker refused
    (_S.SUBSCRIBING, MqttSubscribed): _R(
        _S.RESETTING, MqttMap._on_subscribed, frozenset({_S.SUBSCRIBING, _S.UP, _S.AWAITING_HUB, _S.CLOSED})
    ),
    # LinkUp and flush; or wait for the hub to come back
    (_S.RESETTING, MqttPublished): _R(_S.UP, MqttMap._on_reset_done, frozenset({_S.RESETTING, _S.AWAITING_HUB})),
    (_S.RESETTING, MqttPublishFailed): _R(_S.UP, MqttMap._on_reset_done, frozenset({_S.RESETTING, _S.AWAITING_HUB})),
    (_S.AWAITING_HUB, MqttMessage): _R(_S.AWAITING_HUB, MqttMap._on_message, frozenset({_S.UP})),  # "online": up
    (_S.AWAITING_HUB, Tick): _R(_S.UP, MqttMap._on_hub_wait_over, _AWAITING),  # hub_wait over: up anyway
    (_S.AWAITING_HUB, OutboundFrame): _R(_S.AWAITING_HUB, MqttMap._on_queue),
    (_S.AWAITING_HUB, StopRequested): _R(_S.CLOSING, MqttMap._on_stop),
    (_S.UP, OutboundFrame): _R(_S.UP, MqttMap._on_send),  # Publish(c2s)
    (_S.UP, MqttPublished): _R(_S.UP, MqttMap._on_published),  # FrameSent
    (_S.UP, MqttPublishFailed): _R(_S.UP, MqttMap._on_publish_failed),  # FrameNotSent
    (_S.UP, SessionEstablished): _R(_S.UP, MqttMap._on_ready),  # Publish(status, "online")
    (_S.UP, MqttMessage): _R(_S.UP, MqttMap._on_message),  # InboundFrame, or HubSessionLost from a status topic
    (_S.UP, StopRequested): _R(_S.CLOSING, MqttMap._on_stop),  # Publish(status, "offline"), then DisconnectMqtt
    (_S.CLOSING, MqttPublished): _R(_S.CLOSED, MqttMap._on_closing_published, _CLOSING),
    (_S.CLOSING, MqttPublishFailed): _R(_S.CLOSED, MqttMap._on_closing_published, _CLOSING),
    (_S.CLOSING, MqttMessage): _R(_S.CLOSING, MqttMap._on_message, frozenset({_S.CLOSED})),  # the tombstone: done
    (_S.CLOSING, Tick): _R(_S.CLOSED, MqttMap._on_close_timeout, _CLOSING),  # tombstone_wait / close_timeout
    (_S.CLOSING, OutboundFrame): _R(_S.CLOSING, MqttMap._on_refuse),
    (_S.CLOSED, OutboundFrame): _R(_S.CLOSED, MqttMap._on_refuse),
    **{(s, OutboundFrame): _R(s, MqttMap._on_queue) for s in _EARLY},  # held until UP
    **{(s, StopRequested): _R(_S.CLOSED, MqttMap._on_stop_early) for s in _EARLY},  # DisconnectMqtt + LinkDown
    **{(s, MqttDisconnected): _R(_S.CLOSED, MqttMap._on_disconnected) for s in (*_EARLY, *_AWAITING, _S.UP, *_CLOSING)},
    **{(s, MqttMessage): _R(s, MqttMap._on_message) for s in (_S.SUBSCRIBING, _S.RESETTING)},
}
