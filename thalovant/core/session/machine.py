"""The session machine: one hub connection from link-up to close, over any transport.

Theory of operation
-------------------
``Session`` owns exactly one handshake machine (``handshake_v1.Handshake``,
switching to ``handshake_v3.NoiseHandshake`` when the hub's offer speaks
Noise) and, once that succeeds, its ``SecureChannel``::

    IDLE        --LinkOpened------------------------------> HANDSHAKING  (MQTT: send a trigger HELLO,
                                                                          again while no greeting comes)
    HANDSHAKING --FrameReceived(clear hello/shake)--------> handshake    (its SendHandshake -> SendFrame)
                --HandshakeDone---------------------------> READY        (encrypted HELLO, flush queue,
                                                                          SessionReady)
                --HandshakeFailed / timeout / link lost---> FAILED       (SessionFailed [+ CloseLink])
    READY       --FrameReceived(sealed)-------------------> Deliver      (open failure -> FAILED; a copy of
                                                                          a frame already opened: a Note)
                --UserSend--------------------------------> SendFrame(refs=(ref,))
    any live    --UserClose-------------------------------> CLOSED       (CloseLink 1000)
                --LinkClosed------------------------------> FAILED       (SessionFailed, classified)

Helpers: :mod:`.classify` sorts frames (clear, sealed or bad, spec §2) and link closes;
:mod:`.handshakes` builds the handshake that runs; :mod:`.outbound` encodes for the wire.

Cleartext HELLO/HANDSHAKE go to the handshake; cleartext anything else is dropped with a Note
(before keys: unexpected; after keys: a downgrade). Sealed frames that arrive while handshaking
are stale (HTTP re-connect, spec §8.2) and dropped; after READY a frame that does not open is fatal,
and so is any cleartext frame with a v3 channel (spec §7.7); a byte-identical copy of a frame that
opened is dropped (:mod:`.repeats`: hub 4.x can write one frame twice). A second hub HELLO after
READY means the hub greets a connection it does not know: it restarted or forgot us (FAILED,
retryable); the greeting's own HELLO arriving after its offer is not one.

Outbound messages queue (bounded) until READY and then go out once, in order, right after the
HELLO (``binary_ok=False`` refuses BINARY messages of v1 sessions, for HTTP on hub 4.x).

Every transition is a row of :data:`TABLE`: ``(state, input type) -> Row(next state, handler,
other possible ends)``; handlers never assign the state. Remote data never raises; caller misuse
(``UserSend`` after close, a second ``LinkOpened``, unserializable messages) raises
``LocalProtocolError`` and changes nothing. Secrets never reach an output, a Note or a repr.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from returns.result import Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.contract import (
    GreetingReceived,
    HandshakeDone,
    HandshakeFailed,
    SecureChannel,
    SendHandshake,
)
from thalovant.core.handshake.v1 import DEFAULT_CIPHERS, DEFAULT_ENCODINGS, Handshake, NoiseOffered
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Row, Table, TableMachine, Tick, earliest
from thalovant.core.session.classify import Verdict, classify_close, classify_frame, shown_peer
from thalovant.core.session.events import (
    HELLO_REF,
    CloseLink,
    Deliver,
    FrameReceived,
    LinkClosed,
    LinkOpened,
    SendFailed,
    SendFrame,
    SessionFailed,
    SessionReady,
    UserClose,
    UserSend,
    Wire,
)
from thalovant.core.session.handshakes import HandshakePlan
from thalovant.core.session.outbound import Outbound, Retrigger
from thalovant.core.session.repeats import RepeatWindow
from thalovant.core.wire.codec import is_default_session
from thalovant.core.wire.frame import Frame, FrameProblem
from thalovant.core.wire.message import HiveMessage, MsgType

__all__ = [  # the machine and its table, then its inputs and outputs (defined in .events)
    "TABLE", "Session", "SessionState", "CloseLink", "Deliver", "FrameReceived", "LinkClosed", "LinkOpened",
    "SendFailed", "SendFrame", "SessionFailed", "SessionReady", "UserClose", "UserSend",
]  # fmt: skip


class SessionState(enum.Enum):
    IDLE = enum.auto()  # link not up yet; sends queue
    HANDSHAKING = enum.auto()  # greeting/handshake in progress; sends queue
    READY = enum.auto()  # channel up, HELLO sent
    CLOSED = enum.auto()  # closed by the user (terminal)
    FAILED = enum.auto()  # failed (terminal)


_S = SessionState
_REFUSAL_WINDOW = 2.0  # s after READY in which a silent close means "credentials refused"


def _note(text: str, level: NoteLevel = NoteLevel.DEBUG) -> Note:
    return Note(level=level, text=text)


class Session(TableMachine[SessionState]):
    """One HiveMind session (spec §10.1), transport-independent.

    Args:
        session_id, useragent: the OVOS session id sent in HELLO (never empty or ``"default"``); the user agent.
        entropy: randomness for IVs, nonces and Noise keys.
        site_id: the client's site, sent in HELLO and filled into BUS sessions.
        access_key, password, crypto_key: the credentials (the access key only goes to the v3 handshake; the
            password serves the password path and the Noise PSK; the crypto key is the legacy pre-shared key).
        wire: ``"text"`` (WS, HTTP) or ``"bitstring"`` (MQTT on hub 4.x).
        binary_ok: False when a v1 session's transport cannot carry binary frames (HTTP on hub 4.x; v3 always can).
        trigger_hello, seal_trigger: a HELLO on link-up (MQTT), sealed with the crypto key if ``seal_trigger``.
        handshake_timeout, max_queue: seconds from link-up to a finished handshake; user sends held meanwhile.
        prefer, binarize, encodings, ciphers: the offer (:class:`.handshakes.HandshakePlan`; best first, §4.8).
        v3_options: extra keyword arguments for ``NoiseHandshake`` (``static_key``, ``pinned_hub_key``, ``psk``...).

    Raises:
        LocalProtocolError: a default/empty session id, no credentials, or bad options.
    """

    _TERMINAL = frozenset({_S.CLOSED, _S.FAILED})

    def __init__(
        self,
        *,
        session_id: str,
        useragent: str,
        entropy: Entropy,
        site_id: str | None = None,
        access_key: str = "",
        password: str | None = None,
        crypto_key: str | None = None,
        wire: Wire = "text",
        binary_ok: bool = True,
        trigger_hello: bool = False,
        seal_trigger: bool = True,
        handshake_timeout: float = 10.0,
        max_queue: int = 64,
        prefer: str = "password",
        binarize: bool = False,
        encodings: Sequence[str] = DEFAULT_ENCODINGS,
        ciphers: Sequence[str] = DEFAULT_CIPHERS,
        v3_options: Mapping[str, Any] | None = None,
    ) -> None:
        if is_default_session(session_id):
            raise LocalProtocolError("the session id must not be empty or 'default' (spec §4.7)")
        if wire not in ("text", "bitstring"):
            raise LocalProtocolError("wire must be 'text' or 'bitstring'")
        if not password and not crypto_key:
            raise LocalProtocolError("a session needs a password or a crypto_key")
        if handshake_timeout <= 0 or max_queue < 0:
            raise LocalProtocolError("handshake_timeout must be positive and max_queue >= 0")
        self._plan = HandshakePlan(
            entropy=entropy,
            timeout=handshake_timeout,
            password=password or None,
            crypto_key=crypto_key or None,
            access_key=access_key,
            useragent=useragent,
            prefer=prefer,
            binarize=binarize,
            encodings=tuple(encodings),
            ciphers=tuple(ciphers),
            bitstring=wire == "bitstring",
            v3_options=dict(v3_options or {}),
        )
        self._plan.legacy(started_at=0.0)  # a throw-away: bad credentials or options raise here, not at link-up
        self._out = Outbound(session_id=session_id, site_id=site_id, useragent=useragent, wire=wire)
        self._entropy = entropy
        self._binary_ok, self._max_queue = binary_ok, max_queue
        self._trigger_hello, self._trigger_key = trigger_hello, (self._plan.crypto_key if seal_trigger else None)
        self._state: SessionState = _S.IDLE
        self._queue: deque[tuple[HiveMessage, int]] = deque()
        self._handshake: Any = None  # Handshake or NoiseHandshake
        self._channel: SecureChannel | None = None
        self._opened = RepeatWindow()  # this session's recent sealed frames
        self._path: str | None = None
        self._ready_at: float | None = None
        self._inbound_since_ready = 0
        self._greeted = False
        self._hub_hellos = 0  # HELLOs of the hub seen (its greeting has one)
        self._hub_peer: str | None = None
        self._retrigger = Retrigger()

    def __repr__(self) -> str:
        return f"Session(state={self._state.name}, generation={self.generation}, queued={len(self._queue)})"

    # ---- read-only views --------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        """The OVOS session id this session announces in HELLO and puts on what it sends."""
        return self._out.session_id

    @property
    def deadline(self) -> float | None:
        if self._state is _S.HANDSHAKING and self._handshake is not None:
            return earliest(self._handshake.deadline, None if self._greeted else self._retrigger.at)
        return None

    @property
    def handshake(self) -> Any:
        """The current handshake machine (v1 or v3), if any; the shell reads v3 pins (``hub_static``...) from it."""
        return self._handshake

    @property
    def generation(self) -> int | None:
        return self._channel.generation if self._channel is not None else None

    @property
    def hub_peer(self) -> str | None:
        return self._hub_peer

    # ---- the one way in ---------------------------------------------------------------------------

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns the orders for the driver.

        Raises:
            LocalProtocolError: misuse (see the class docstring); the state is unchanged.
        """
        row = TABLE.get((self._state, type(inp)))
        if row is None:
            raise LocalProtocolError(f"Session cannot take {type(inp).__name__} in state {self._state.name}")
        return self._fire(row, inp, now)

    # ---- link events ------------------------------------------------------------------------------

    def _on_link_opened(self, _inp: LinkOpened, now: float) -> list[Output]:
        self._handshake = self._plan.legacy(started_at=now)
        if not self._trigger_hello:
            return []
        self._retrigger.start(now)
        return [SendFrame(data=self._out.trigger(crypto_key=self._trigger_key, entropy=self._entropy))]

    def _on_link_opened_again(self, _inp: LinkOpened, _now: float) -> list[Output]:
        raise LocalProtocolError("LinkOpened twice: a Session serves exactly one link")

    def _on_link_closed(self, inp: LinkClosed, now: float) -> list[Output]:
        quick = self._ready_at is not None and now - self._ready_at < _REFUSAL_WINDOW
        verdict = classify_close(
            inp,
            ready=self._state is _S.READY,
            greeted=self._greeted,
            silent_start=quick and self._inbound_since_ready == 0,
            path=self._path,
            generation=self.generation,
        )
        return self._fail(**verdict._asdict(), close=False)

    # ---- user events ------------------------------------------------------------------------------

    def _on_user_send(self, inp: UserSend, _now: float) -> list[Output]:
        message = self._out.message(inp.message)
        if message.msg_type is MsgType.BINARY and not self._binary_ok and self.generation != 3:
            return [SendFailed(ref=inp.ref, reason="this transport cannot carry binary frames")]
        if self._state is _S.READY:
            return self._seal(message, (inp.ref,))
        if len(self._queue) >= self._max_queue:
            return [SendFailed(ref=inp.ref, reason=f"send queue full ({self._max_queue} while connecting)")]
        self._queue.append((message, inp.ref))
        return []

    def _on_user_send_closed(self, inp: UserSend, _now: float) -> list[Output]:
        raise LocalProtocolError(f"UserSend after the session ended ({self._state.name})")

    def _on_user_close(self, _inp: UserClose, _now: float) -> list[Output]:
        outputs = self._drain_queue("session closed by the user")
        outputs.append(CloseLink(code=1000, reason="client closed"))
        return outputs

    def _on_nothing(self, _inp: Input, _now: float) -> list[Output]:
        return []

    def _on_tick(self, inp: Tick, now: float) -> list[Output]:
        if self._state is not _S.HANDSHAKING or self._handshake is None:
            return []
        out: list[Output] = []
        if not self._greeted and self._retrigger.due(now):
            out.append(_note("no greeting yet: sending the trigger HELLO again"))
            out.append(SendFrame(data=self._out.trigger(crypto_key=self._trigger_key, entropy=self._entropy)))
        return out + self._absorb(self._handshake.handle(inp, now=now), now)

    # ---- frames -----------------------------------------------------------------------------------

    def _on_frame(self, inp: FrameReceived, now: float) -> list[Output]:
        value = classify_frame(inp.data, keyed=self._channel is not None, handshaking=self._state is _S.HANDSHAKING)
        if isinstance(value, FrameProblem):
            return self._broken(value.code, f"unreadable frame from the hub: {value.detail}")
        if isinstance(value, HiveMessage):
            return self._on_clear(value, now)
        return self._on_sealed(value, now)

    def _on_frame_idle(self, _inp: FrameReceived, _now: float) -> list[Output]:
        return [_note("frame before LinkOpened dropped", NoteLevel.WARNING)]

    def _on_clear(self, message: HiveMessage, now: float) -> list[Output]:
        greeting = message.msg_type in (MsgType.HELLO, MsgType.HANDSHAKE)
        if self._state is _S.READY:
            if self.generation == 3:
                return self._broken("downgrade", "cleartext frame after the Noise handshake")
            self._inbound_since_ready += 1
            if message.msg_type is MsgType.HELLO and self._hub_hellos:
                # A hub greets only a connection it does not know: it restarted or dropped us (MQTT on
                # hub 4.x keeps the broker link up across a hub restart). Start over on a new link. (A
                # stale greeting of an earlier link cannot land here: see MqttMap's status discipline.)
                return self._fail("hub-reset", "the hub greeted again: it restarted or forgot us", retryable=True)
            self._hub_hellos += message.msg_type is MsgType.HELLO  # the greeting's own HELLO, after its offer
            if greeting:
                return [_note(f"cleartext {message.msg_type.value} after the handshake ignored")]
            return [
                _note(f"cleartext {message.msg_type.value} after the key exists dropped (downgrade)", NoteLevel.WARNING)
            ]
        if not greeting:
            return [
                _note(f"cleartext {message.msg_type.value} before the handshake finished dropped", NoteLevel.WARNING)
            ]
        self._greeted = True
        self._hub_hellos += message.msg_type is MsgType.HELLO
        return self._absorb(self._handshake.handle(GreetingReceived(message=message), now=now), now)

    def _on_sealed(self, frame: Frame, _now: float) -> list[Output]:
        if self._state is not _S.READY or self._channel is None:
            return [_note("sealed frame during the handshake dropped (stale key?)")]
        self._inbound_since_ready += 1
        if self._opened.seen(frame):
            return [_note("a copy of a hub frame already received dropped (the hub sent it twice)", NoteLevel.WARNING)]
        opened = self._channel.open(frame)
        if not isinstance(opened, Success):
            problem = opened.failure()
            return self._broken(problem.code, f"cannot open a hub frame: {problem.detail}")
        self._opened.remember(frame)
        message = opened.unwrap()
        return [] if message is None else [Deliver(message=message)]

    # ---- handshake outputs ------------------------------------------------------------------------

    def _absorb(self, outputs: list[Output], now: float) -> list[Output]:
        result: list[Output] = []
        for out in outputs:
            if isinstance(out, SendHandshake):
                result.append(SendFrame(data=self._out.clear(out.message, v3=self._handshake_generation() == 3)))
            elif isinstance(out, HandshakeDone):
                result.extend(self._on_done(out, now))
            elif isinstance(out, HandshakeFailed):
                result.extend(self._fail(out.code, out.detail, retryable=out.retryable and not out.auth, auth=out.auth))
            elif isinstance(out, NoiseOffered):
                result.extend(self._switch_to_v3(out, now))
            else:
                result.append(out)
        return result

    def _handshake_generation(self) -> int:
        return 1 if isinstance(self._handshake, Handshake) else 3

    def _switch_to_v3(self, offered: NoiseOffered, now: float) -> list[Output]:
        handshake = self._plan.noise(offered, started_at=now)
        if isinstance(handshake, Verdict):
            return self._fail(**handshake._asdict())
        self._handshake = handshake
        return [
            _note("hub offers protocol v3: running the Noise handshake", NoteLevel.INFO),
            *self._absorb(self._handshake.start(now=now), now),
        ]

    def _on_done(self, done: HandshakeDone, now: float) -> list[Output]:
        self._channel = done.channel
        self._exit(_S.READY)
        self._ready_at = now
        self._path = getattr(self._handshake, "path", None)
        peer = shown_peer(done.hub_peer, session_id=self._out.session_id, access_key=self._plan.access_key)
        self._hub_peer = peer
        outputs = self._seal(self._out.hello(), (HELLO_REF,))
        while self._queue:
            message, ref = self._queue.popleft()
            outputs.extend(self._seal(message, (ref,)))
        outputs.append(SessionReady(generation=done.channel.generation, hub_peer=peer))
        return outputs

    # ---- helpers ----------------------------------------------------------------------------------

    def _seal(self, message: HiveMessage, refs: tuple[int, ...]) -> list[Output]:
        assert self._channel is not None
        return self._out.seal(self._channel, message, refs)

    def _drain_queue(self, reason: str) -> list[Output]:
        failed: list[Output] = [SendFailed(ref=ref, reason=reason) for _, ref in self._queue]
        self._queue.clear()
        return failed

    def _fail(
        self, code: str, detail: str, *, retryable: bool, auth: bool = False, close: bool = True, close_code: int = 1000
    ) -> list[Output]:
        outputs = self._drain_queue(f"session failed: {code}")
        self._exit(_S.FAILED)
        outputs.append(SessionFailed(code=code, detail=detail, retryable=retryable, auth=auth))
        if close:
            outputs.append(CloseLink(code=close_code, reason=code))
        return outputs

    def _broken(self, code: str, detail: str) -> list[Output]:
        """The hub broke the protocol: fail (a new link may do better) and close with 1002."""
        return self._fail(code, detail, retryable=True, close_code=1002)


_R = Row  # each row is typed by the table annotation


def _after_the_end(end: SessionState) -> dict[tuple[SessionState, type[Input]], Callable[..., list[Output]]]:
    """The rows of a terminal state: nothing leaves it."""
    return {
        (end, LinkOpened): Session._on_link_opened_again,  # misuse
        (end, FrameReceived): Session._on_nothing,  # late frames: drop
        (end, LinkClosed): Session._on_nothing,  # expected after CloseLink
        (end, UserSend): Session._on_user_send_closed,  # misuse
        (end, UserClose): Session._on_nothing,  # idempotent
        (end, Tick): Session._on_tick,  # nothing
    }


_FAILS, _READY_OR_FAILS = frozenset({_S.FAILED}), frozenset({_S.READY, _S.FAILED})
#: (state, input type) -> Row(next state, handler, other possible ends): every transition, written once.
#: An unlisted pair cannot happen: every state lists every input.
TABLE: Table[SessionState, Session] = {
    (_S.IDLE, LinkOpened): _R(_S.HANDSHAKING, Session._on_link_opened),  # start the handshake (MQTT: trigger HELLO)
    (_S.IDLE, FrameReceived): _R(_S.IDLE, Session._on_frame_idle),  # driver bug or race: drop with a Note
    (_S.IDLE, LinkClosed): _R(_S.FAILED, Session._on_link_closed),  # never came up
    (_S.IDLE, UserSend): _R(_S.IDLE, Session._on_user_send),  # hold until READY
    (_S.IDLE, UserClose): _R(_S.CLOSED, Session._on_user_close),  # give up before starting
    (_S.IDLE, Tick): _R(_S.IDLE, Session._on_tick),  # no timers yet
    (_S.HANDSHAKING, LinkOpened): _R(_S.HANDSHAKING, Session._on_link_opened_again),  # misuse
    # greeting -> handshake (done: READY; refused or unreadable: FAILED); stale sealed: drop
    (_S.HANDSHAKING, FrameReceived): _R(_S.HANDSHAKING, Session._on_frame, _READY_OR_FAILS),
    (_S.HANDSHAKING, LinkClosed): _R(_S.FAILED, Session._on_link_closed),  # refused or lost
    (_S.HANDSHAKING, UserSend): _R(_S.HANDSHAKING, Session._on_user_send),  # hold until READY
    (_S.HANDSHAKING, UserClose): _R(_S.CLOSED, Session._on_user_close),  # abandon
    (_S.HANDSHAKING, Tick): _R(_S.HANDSHAKING, Session._on_tick, _FAILS),  # handshake timeout
    (_S.READY, LinkOpened): _R(_S.READY, Session._on_link_opened_again),  # misuse
    (_S.READY, FrameReceived): _R(_S.READY, Session._on_frame, _FAILS),  # open and deliver (or fail)
    (_S.READY, LinkClosed): _R(_S.FAILED, Session._on_link_closed),  # lost (or refused right after the handshake)
    (_S.READY, UserSend): _R(_S.READY, Session._on_user_send),  # seal and send
    (_S.READY, UserClose): _R(_S.CLOSED, Session._on_user_close),  # close 1000
    (_S.READY, Tick): _R(_S.READY, Session._on_tick),  # no timers
    # after the end (CLOSED or FAILED) the session only drops late input and refuses misuse
    **{row: _R(end, act) for end in (_S.CLOSED, _S.FAILED) for row, act in _after_the_end(end).items()},
}
