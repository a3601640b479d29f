"""The protocol v3 (Noise, hub 5.x) client handshake machine and its secure channel.

Theory of operation
-------------------
The session machine sees the hub's cleartext HELLO and HANDSHAKE offer, asks
:func:`offer_generation` which generation the offer speaks, and for 3 builds a
:class:`NoiseHandshake` with the offer (and the HELLO, if it already came). Then::

    CREATED --start()----------------------------> WAIT_HELLO   (no HELLO yet: the prologue needs it)
    CREATED --start()--[emit msg1]---------------> WAIT_REPLY
    WAIT_HELLO --GreetingReceived(hello)--[msg1]-> WAIT_REPLY
    WAIT_REPLY --GreetingReceived(shake msg2)----> DONE         (XX: emits msg3 first; then HandshakeDone)
    any live state --bad msg2 / pin mismatch-----> FAILED       (HandshakeFailed; a mismatch: retryable=False)
    any live state --Tick at/after deadline------> FAILED       (HandshakeFailed code "timeout")

``start()`` negotiates (spec §7.2), derives the PSK (spec §7.3; Argon2id, about 0.3 s of CPU
unless the caller passes a cached ``psk=``), builds the prologue (§7.4) and emits Noise
message 1 as a cleartext ``shake`` frame (§7.5). Reading message 2 authenticates the hub
(wrong password -> ``HandshakeFailed(auth=True)``, spec §7.8). After ``Split()`` the machine
emits :class:`~thalovant.core.handshake.contract.HandshakeDone` with a :class:`NoiseChannel`; the session
MUST then send its HELLO as the first Noise transport message (spec §7.5 step 4).

The deadline is ``started_at + timeout`` while the handshake is live, else None.

Rule 1: the machine never raises on hub data. Malformed or unauthentic replies become
``HandshakeFailed`` and the FAILED state. Calling ``start()`` twice, or feeding an input type
the machine does not know, raises ``LocalProtocolError`` and changes nothing.

Rule 2: the pinned hub key is never replaced here. A hub static key that differs from
``pinned_hub_key`` is a hard failure (``code="hub-key-changed"``); TOFU pinning after a first
XX is the caller's job, using :attr:`NoiseHandshake.hub_static`.

Rule 3: secrets (password, PSK, private keys, transport keys) never appear in a repr,
an output or a failure detail.
"""

from __future__ import annotations

import binascii
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from returns.result import Failure, Result, Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.contract import GreetingReceived, HandshakeDone, HandshakeFailed, SendHandshake
from thalovant.core.handshake.noise import (
    KEY_LEN,
    MAX_NOISE_MESSAGE,
    PATTERN_KK,
    PATTERN_XX,
    PREFERRED_SUITES,
    build_prologue,
    canonical_json,
    derive_psk,
    protocol_name,
    public_key,
)
from thalovant.core.handshake.noise_handshaker import NoiseHandshaker
from thalovant.core.handshake.pins import PinDecision, decide, fingerprint
from thalovant.core.handshake.v3_channel import NoiseChannel
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Row, Table, TableMachine, Tick
from thalovant.core.wire.message import HiveMessage, MsgType

# NoiseChannel is re-exported for the session: the channel HandshakeDone carries
__all__ = ["NoiseChannel", "NoiseHandshake", "NoiseHandshakeState", "StartHandshake", "TABLE", "negotiate"]
__all__ += ["offer_generation"]


def offer_generation(offer_payload: object) -> int:
    """Which handshake generation a hub HANDSHAKE offer asks for (spec §0.2).

    Args:
        offer_payload: the ``payload`` of the hub's first cleartext ``shake`` frame.

    Returns:
        3 when ``payload.noise`` is an object and ``max_protocol_version >= 3`` (run the Noise
        handshake, spec §7); otherwise 1, meaning the legacy family of spec §4 (v0-v2).

    >>> offer_generation({"max_protocol_version": 3, "noise": {"patterns": ["XXpsk2"]}})
    3
    >>> offer_generation({"max_protocol_version": 1, "handshake": True})
    1
    """
    if not isinstance(offer_payload, dict):
        return 1
    version = offer_payload.get("max_protocol_version")
    noise = offer_payload.get("noise")
    if isinstance(noise, dict) and isinstance(version, int) and not isinstance(version, bool) and version >= 3:
        return 3
    return 1


def negotiate(
    offer_payload: object, *, have_pin: bool, suites: Sequence[str] = PREFERRED_SUITES
) -> Result[tuple[str, str], str]:
    """Pick ``(pattern, suite)`` from a v3 offer (spec §7.2), or say why none fits.

    >>> negotiate({"noise": {"patterns": ["KKpsk0", "XXpsk2"], "suites": ["25519_AESGCM_SHA256"]}}, have_pin=True)
    <Success: ('KKpsk0', '25519_AESGCM_SHA256')>
    """
    noise = offer_payload.get("noise") if isinstance(offer_payload, dict) else None
    if not isinstance(noise, dict):
        return Failure("the offer has no noise object")
    patterns, offered = noise.get("patterns"), noise.get("suites")
    if not isinstance(patterns, list) or not isinstance(offered, list):
        return Failure("the offer's noise.patterns / noise.suites are not lists")
    suite = next((s for s in suites if s in offered), None)
    if suite is None:
        return Failure("no common Noise suite")
    if have_pin and PATTERN_KK in patterns:
        return Success((PATTERN_KK, suite))
    if PATTERN_XX in patterns:
        return Success((PATTERN_XX, suite))
    return Failure("no usable Noise pattern offered")


# ---- the handshake machine -----------------------------------------------------------------------


class NoiseHandshakeState(enum.Enum):
    CREATED = enum.auto()  # constructed; start() not called yet
    WAIT_HELLO = enum.auto()  # started, but the hub HELLO the prologue needs has not arrived
    WAIT_REPLY = enum.auto()  # message 1 sent; waiting for the hub's message 2
    DONE = enum.auto()  # HandshakeDone emitted (terminal)
    FAILED = enum.auto()  # HandshakeFailed emitted (terminal)


_S = NoiseHandshakeState


@dataclass(frozen=True, slots=True, kw_only=True)
class StartHandshake(Input):
    """Begin the handshake (what :meth:`NoiseHandshake.start` feeds the table)."""
_MSG1_ENCODINGS: Final[list[str]] = []  # thalovant sends none; the hub then answers JSON-HEX (§7.5)


class NoiseHandshake(TableMachine[NoiseHandshakeState]):
    """Client side of the hub 5.x Noise handshake (XXpsk2 first contact, KKpsk0 when pinned).

    Args:
        password: the client's hub password (keys the PSK; never sent).
        access_key: the client's access key. Noise does not use it; it is accepted so that both
            handshake generations are built with the same arguments. Not stored.
        useragent: the client's user agent; likewise unused and not stored.
        entropy: randomness for the ephemeral key (and the static key if none is given).
        started_at: ``now`` when the link came up; the deadline counts from here.
        timeout: seconds allowed for the whole handshake.
        offer: the hub's cleartext HANDSHAKE offer; :func:`offer_generation` must say 3.
        hello: the hub's cleartext HELLO, if it already arrived (else it is awaited).
        static_key: this client's persistent raw X25519 private key; drawn from ``entropy``
            when None (then persist :attr:`static_key` after success).
        pinned_hub_key: the hub static public key pinned from an earlier XX; enables KKpsk0.
        psk: a cached PSK for this (password, node_id); skips the Argon2id derivation.
        suites: suite preference, best first.
        binarize: ask the hub to send bitstrings inside Noise (spec §7.5).
        allow_kk: False forces XXpsk2 even with a pin (spec §7.8: after a KK failure, retry once
            with XX; the pin is still checked, which tells a wrong password from a changed hub key).

    Raises:
        LocalProtocolError: bad arguments (wrong key sizes, non-v3 offer, timeout <= 0).
    """

    def __init__(
        self,
        *,
        password: str,
        access_key: str,
        useragent: str,
        entropy: Entropy,
        started_at: float,
        timeout: float,
        offer: HiveMessage,
        hello: HiveMessage | None = None,
        static_key: bytes | None = None,
        pinned_hub_key: bytes | None = None,
        psk: bytes | None = None,
        suites: Sequence[str] = PREFERRED_SUITES,
        binarize: bool = False,
        allow_kk: bool = True,
    ) -> None:
        if timeout <= 0:
            raise LocalProtocolError("the handshake timeout must be positive")
        if offer.msg_type is not MsgType.HANDSHAKE or offer_generation(offer.payload) != 3:
            raise LocalProtocolError("NoiseHandshake needs a v3 offer (see offer_generation)")
        for name, key in (("static_key", static_key), ("pinned_hub_key", pinned_hub_key), ("psk", psk)):
            if key is not None and len(key) != KEY_LEN:
                raise LocalProtocolError(f"{name} must be {KEY_LEN} bytes")
        if not suites or any(s not in PREFERRED_SUITES for s in suites):
            raise LocalProtocolError(f"suites must be drawn from {PREFERRED_SUITES}")
        self._password = password
        self._entropy = entropy
        self._deadline = started_at + timeout
        self._timeout = timeout
        self._offer = offer
        self._hello = hello if hello is not None and hello.msg_type is MsgType.HELLO else None
        self._static = static_key if static_key is not None else entropy(KEY_LEN)
        self._pin = pinned_hub_key
        self._psk = psk
        self._suites = tuple(suites)
        self._binarize = binarize
        self._allow_kk = allow_kk
        self._noise: NoiseHandshaker | None = None
        self._hub_static: bytes | None = None
        self._failure: str | None = None
        self._state = _S.CREATED

    _TERMINAL = frozenset({NoiseHandshakeState.DONE, NoiseHandshakeState.FAILED})

    def __repr__(self) -> str:
        pattern = self._noise.pattern if self._noise else None
        return f"NoiseHandshake(state={self._state.name}, pattern={pattern!r}, pinned={self._pin is not None})"

    # ---- read-only views --------------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        return None if self._state in (_S.DONE, _S.FAILED) else self._deadline

    @property
    def pattern(self) -> str | None:
        """``"XXpsk2"`` or ``"KKpsk0"`` once chosen (after message 1 went out)."""
        return self._noise.pattern if self._noise else None

    @property
    def suite(self) -> str | None:
        return self._noise.suite if self._noise else None

    @property
    def static_key(self) -> bytes:
        """This client's raw X25519 private key (secret: persist it, never log it)."""
        return self._static

    @property
    def static_public(self) -> bytes:
        return public_key(self._static)

    @property
    def hub_static(self) -> bytes | None:
        """The hub's static public key from message 2 (pin it after a first XX; on a mismatch: the new one)."""
        return self._hub_static

    @property
    def pinned_hub_key(self) -> bytes | None:
        return self._pin  # the pin the hub's key is checked against (None: trust on first use)

    @property
    def failure(self) -> str | None:
        return self._failure  # the HandshakeFailed code once FAILED ("hub-key-changed", "auth-failed" ...)

    @property
    def hub_knows_a_client_key(self) -> bool:
        """The hub offered KKpsk0: it pinned a client key for this access key (an XX with another key is refused)."""
        noise = self._offer.payload.get("noise") if isinstance(self._offer.payload, dict) else None
        return isinstance(noise, dict) and PATTERN_KK in (noise.get("patterns") or [])

    @property
    def verified_psk(self) -> bytes | None:
        """The PSK, once the hub proved it holds the same one (DONE); cache it (secret)."""
        return self._psk if self._state is _S.DONE else None

    # ---- inputs ---------------------------------------------------------------------------------

    def start(self, *, now: float) -> list[Output]:
        """Begin: emit Noise message 1 (or wait for the hub HELLO if it has not come yet).

        Raises:
            LocalProtocolError: ``start`` was already called.
        """
        if self._state is not _S.CREATED:
            raise LocalProtocolError(f"start() called in state {self._state.name}")
        return self.handle(StartHandshake(), now=now)

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input (``GreetingReceived`` or ``Tick``).

        Raises:
            LocalProtocolError: an input type this machine does not take.
        """
        row = TABLE.get((self._state, type(inp)))
        if row is None:
            raise LocalProtocolError(f"NoiseHandshake does not take {type(inp).__name__} in {self._state.name}")
        return self._fire(row, inp, now)

    # ---- transitions ------------------------------------------------------------------------------

    def _on_start(self, _inp: StartHandshake, now: float) -> list[Output]:
        if now >= self._deadline:
            return self._fail("timeout", f"no Noise handshake within {self._timeout:g} s")
        if self._hello is None:
            self._exit(_S.WAIT_HELLO)
            return [Note(level=NoteLevel.DEBUG, text="Noise: waiting for the hub HELLO before message 1")]
        return self._send_first(self._hello)

    def _on_tick(self, _inp: Tick, now: float) -> list[Output]:
        if now >= self._deadline:
            return self._fail("timeout", f"no Noise handshake within {self._timeout:g} s")
        return []

    def _on_tick_terminal(self, _inp: Tick, _now: float) -> list[Output]:
        return []

    def _on_greeting_early(self, inp: GreetingReceived, _now: float) -> list[Output]:
        if inp.message.msg_type is MsgType.HELLO and self._hello is None:
            self._hello = inp.message
            return []
        return [_ignored(inp.message, "before start()")]

    def _on_greeting_wait_hello(self, inp: GreetingReceived, _now: float) -> list[Output]:
        if inp.message.msg_type is MsgType.HELLO:
            self._hello = inp.message
            return self._send_first(inp.message)
        self._exit(_S.WAIT_HELLO)
        return [_ignored(inp.message, "while waiting for the hub HELLO")]

    def _on_greeting_wait_reply(self, inp: GreetingReceived, _now: float) -> list[Output]:
        msg = inp.message
        noise = msg.payload.get("noise") if isinstance(msg.payload, dict) else None
        if msg.msg_type is not MsgType.HANDSHAKE or not isinstance(noise, dict) or "msg" not in noise:
            self._exit(_S.WAIT_REPLY)
            return [_ignored(msg, "while waiting for Noise message 2")]  # e.g. a repeated offer (§10.1)
        raw = _unhex(noise["msg"])
        if raw is None:
            return self._fail("bad-reply", "Noise message 2 is not a hex string")
        return self._read_reply(raw)

    def _on_greeting_terminal(self, inp: GreetingReceived, _now: float) -> list[Output]:
        return [_ignored(inp.message, f"after the handshake ({self._state.name})")]

    # ---- steps ------------------------------------------------------------------------------------

    def _send_first(self, hello: HiveMessage) -> list[Output]:
        payload = hello.payload if isinstance(hello.payload, dict) else None
        node_id = payload.get("node_id") if payload is not None else None
        if not isinstance(node_id, str):
            return self._fail("bad-hello", "the hub HELLO carries no node_id string")
        chosen = negotiate(self._offer.payload, have_pin=self._pin is not None and self._allow_kk, suites=self._suites)
        if not isinstance(chosen, Success):
            return self._fail("unsupported", chosen.failure())
        pattern, suite = chosen.unwrap()
        if self._psk is None:
            self._psk = derive_psk(self._password, node_id)
        prologue = build_prologue(payload, self._offer.payload, protocol_name(pattern, suite))
        self._noise = NoiseHandshaker(
            pattern=pattern,
            suite=suite,
            psk=self._psk,
            prologue=prologue,
            static_private=self._static,
            entropy=self._entropy,
            initiator=True,
            remote_static=self._pin if pattern == PATTERN_KK else None,
        )
        msg1 = self._noise.write_message(canonical_json({"binarize": self._binarize, "encodings": _MSG1_ENCODINGS}))
        frame = HiveMessage(
            msg_type=MsgType.HANDSHAKE,
            payload={"noise": {"pattern": pattern, "suite": suite, "msg": msg1.hex()}},
        )
        return [SendHandshake(message=frame)]

    def _read_reply(self, raw: bytes) -> list[Output]:
        noise = self._noise
        assert noise is not None  # WAIT_REPLY always has one
        result = noise.read_message(raw)
        if not isinstance(result, Success):
            problem = result.failure()
            if problem.code == "auth-failed":
                return self._fail(
                    "auth-failed",
                    f"the hub's {noise.pattern} reply failed authentication: wrong password, or tampering",
                    auth=True,
                )
            return self._fail("bad-reply", f"Noise message 2 is malformed: {problem.detail}")
        hub_static = noise.remote_static
        assert hub_static is not None  # both patterns know it after message 2
        self._hub_static = hub_static  # kept on a mismatch too: the caller reports what the hub presented
        if self._pin is not None and decide(self._pin, hub_static) is PinDecision.MISMATCH:
            shown = f"pinned {fingerprint(self._pin)}, presented {fingerprint(hub_static)}"
            return self._fail("hub-key-changed", f"the hub's Noise static key changed ({shown})", retryable=False)
        out: list[Output] = []
        if not noise.finished:  # XXpsk2: message 3 carries our static key
            msg3 = noise.write_message(b"")
            out.append(
                SendHandshake(message=HiveMessage(msg_type=MsgType.HANDSHAKE, payload={"noise": {"msg": msg3.hex()}}))
            )
        send, receive = noise.split()
        channel = NoiseChannel(
            send=send,
            receive=receive,
            pattern=noise.pattern,
            suite=noise.suite,
            local_static=noise.local_static_public,
            remote_static=hub_static,
        )
        hello_payload = self._hello.payload if self._hello is not None else None
        peer = hello_payload.get("peer") if isinstance(hello_payload, dict) else None
        node_id = hello_payload.get("node_id") if isinstance(hello_payload, dict) else None
        out.append(
            HandshakeDone(
                channel=channel,
                hub_peer=peer if isinstance(peer, str) else None,
                node_id=node_id if isinstance(node_id, str) else None,
            )
        )
        return out

    def _fail(self, code: str, detail: str, *, auth: bool = False, retryable: bool = True) -> list[Output]:
        self._exit(_S.FAILED)
        self._failure = code
        return [HandshakeFailed(code=code, detail=detail, auth=auth, retryable=retryable)]


def _unhex(value: object) -> bytes | None:
    if not isinstance(value, str) or len(value) > 2 * MAX_NOISE_MESSAGE:
        return None
    try:
        return binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        return None


def _ignored(message: HiveMessage, when: str) -> Note:
    return Note(level=NoteLevel.DEBUG, text=f"Noise: ignored a cleartext {message.msg_type.value} frame {when}")


_LIVE_EXITS = frozenset({_S.FAILED})

#: ``(state, input type) -> Row(to, handler, exits)``: the one place a transition is written.
#: Terminal states swallow everything quietly.
TABLE: Final[Table[NoiseHandshakeState, NoiseHandshake]] = {
    (_S.CREATED, StartHandshake): Row(_S.WAIT_REPLY, NoiseHandshake._on_start, frozenset({_S.WAIT_HELLO, _S.FAILED})),
    (_S.CREATED, GreetingReceived): Row(_S.CREATED, NoiseHandshake._on_greeting_early),  # keep an early HELLO
    (_S.CREATED, Tick): Row(_S.CREATED, NoiseHandshake._on_tick, _LIVE_EXITS),  # the deadline runs from started_at
    # HELLO -> message 1 (anything else is ignored)
    (_S.WAIT_HELLO, GreetingReceived): Row(
        _S.WAIT_REPLY, NoiseHandshake._on_greeting_wait_hello, frozenset({_S.WAIT_HELLO, _S.FAILED})
    ),
    (_S.WAIT_HELLO, Tick): Row(_S.WAIT_HELLO, NoiseHandshake._on_tick, _LIVE_EXITS),  # timeout
    # message 2 -> done (or failed; a repeated offer is ignored)
    (_S.WAIT_REPLY, GreetingReceived): Row(
        _S.DONE, NoiseHandshake._on_greeting_wait_reply, frozenset({_S.WAIT_REPLY, _S.FAILED})
    ),
    (_S.WAIT_REPLY, Tick): Row(_S.WAIT_REPLY, NoiseHandshake._on_tick, _LIVE_EXITS),  # timeout
    (_S.DONE, GreetingReceived): Row(_S.DONE, NoiseHandshake._on_greeting_terminal),  # late cleartext: ignore
    (_S.DONE, Tick): Row(_S.DONE, NoiseHandshake._on_tick_terminal),  # no timers left
    (_S.FAILED, GreetingReceived): Row(_S.FAILED, NoiseHandshake._on_greeting_terminal),  # ignore
    (_S.FAILED, Tick): Row(_S.FAILED, NoiseHandshake._on_tick_terminal),  # no timers left
}
