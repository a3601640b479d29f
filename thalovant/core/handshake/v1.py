"""The legacy (protocol v1, hub 4.x) client handshake machine.

Theory of operation
-------------------
The hub greets with two cleartext frames, HELLO then a HANDSHAKE offer
(spec §4.1). The session feeds each as ``GreetingReceived``::

    WAIT_HELLO    --hello------------------------------------------> WAIT_OFFER
    WAIT_HELLO /
    WAIT_OFFER    --offer, noise + max_protocol_version >= 3-------> HANDED_OVER  (NoiseOffered: run v3)
                  --offer, password path --[shake with envelope]---> WAIT_ENVELOPE
                  --offer, pre-shared path-------------------------> READY        (HandshakeDone)
                  --offer, nothing usable--------------------------> FAILED       (HandshakeFailed auth)
    WAIT_ENVELOPE --shake with envelope, verified------------------> READY        (HandshakeDone)
                  --shake with envelope, bad/foreign---------------> FAILED       (HandshakeFailed auth)
    any live state --Tick at/after started_at + timeout------------> FAILED       (code "timeout")

An offer arriving before HELLO is accepted (both come back to back). The
offer is handled exactly once; later offers are ignored with a Note (spec
§4.2, pitfalls P9/P10: two overlapping handshakes desynchronise the keys).
Nothing is ever sent on a timer.

Path choice (spec §4.2): the password path when the offer says
``password: true`` and a password is configured, else the pre-shared path
when it says ``preshared_key: true`` and a ``crypto_key`` is configured
(``prefer="psk"`` swaps that order). A ``crypto_key`` the pre-shared path
cannot use (under 16 characters, or not ASCII there: 0.4.7 loads such a
key) counts as absent while another path works; when the pre-shared path is
the only one, the handshake fails (``unusable-crypto-key``, naming
``crypto_key``, never retried). With bitstring client frames (MQTT)
and a hub that holds a crypto_key, only the pre-shared path works: hub 4.x
decrypts every binary frame with that key (checked live). The password path offers the client's
encodings/ciphers, filtered to what the hub allows, verifies the hub's
envelope (a mismatch means a wrong password) and derives the PBKDF2 key.

The machine never raises on hub data; misuse (an unknown input type, bad
constructor arguments) raises ``LocalProtocolError``. No secret appears in
a repr, a Note or a failure detail.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from returns.result import Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.contract import GreetingReceived, HandshakeDone, HandshakeFailed, SendHandshake
from thalovant.core.handshake.v1_crypto import (
    PRESHARED_KEY_RULE,
    Cipher,
    Encoding,
    LegacyChannel,
    client_envelope,
    derive_password_key,
    usable_preshared_key,
    verify_envelope,
)
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Row, TableMachine, Tick
from thalovant.core.wire.message import HiveMessage, MsgType

__all__ = [
    "DEFAULT_CIPHERS",
    "DEFAULT_ENCODINGS",
    "Handshake",
    "HandshakeState",
    "NoiseOffered",
    "TABLE",
    "is_noise_offer",
]

#: What the client offers on the password path (spec §4.8 recommendation).
DEFAULT_ENCODINGS: tuple[str, ...] = (Encoding.JSON_HEX.value, Encoding.JSON_B64.value)
DEFAULT_CIPHERS: tuple[str, ...] = (Cipher.AES_GCM.value, Cipher.CHACHA20_POLY1305.value)


class HandshakeState(enum.Enum):
    WAIT_HELLO = enum.auto()  # nothing from the hub yet
    WAIT_OFFER = enum.auto()  # HELLO seen, waiting for the HANDSHAKE offer
    WAIT_ENVELOPE = enum.auto()  # password shake sent, waiting for the hub's envelope
    READY = enum.auto()  # HandshakeDone emitted (terminal)
    HANDED_OVER = enum.auto()  # the offer speaks Noise; NoiseOffered emitted (terminal)
    FAILED = enum.auto()  # HandshakeFailed emitted (terminal)


@dataclass(frozen=True, slots=True, kw_only=True)
class NoiseOffered(Output):
    """The hub offered protocol v3: the session must run the Noise handshake instead."""

    offer: HiveMessage
    hello: HiveMessage | None = None


def is_noise_offer(payload: object) -> bool:
    """True when an offer payload asks for the v3 Noise handshake (spec §0.2)."""
    if not isinstance(payload, dict):
        return False
    version = payload.get("max_protocol_version")
    return (
        isinstance(payload.get("noise"), dict)
        and isinstance(version, int)
        and not isinstance(version, bool)
        and version >= 3
    )


_S = HandshakeState
_LIVE = (_S.WAIT_HELLO, _S.WAIT_OFFER, _S.WAIT_ENVELOPE)


def _kind(message: HiveMessage) -> str:
    if message.msg_type is MsgType.HELLO:
        return "hello"
    if message.msg_type is MsgType.HANDSHAKE and isinstance(message.payload, dict):
        return "envelope" if "envelope" in message.payload else "offer"
    return "other"


def _note(text: str, level: NoteLevel = NoteLevel.DEBUG) -> Note:
    return Note(level=level, text=text)


class Handshake(TableMachine[HandshakeState]):
    """Client side of the hub 4.x handshake (password or pre-shared key).

    Args:
        entropy: randomness for the 8-byte password IV and every message nonce.
        started_at: ``now`` when the link came up; the deadline counts from here.
        timeout: seconds allowed for HELLO + offer (+ envelope).
        password: the hub password (keys the PBKDF2 path; never sent).
        crypto_key: the legacy pre-shared key (its first 16 characters are the AES key).
        access_key: accepted for symmetry with ``NoiseHandshake``; not used here.
        useragent: accepted for symmetry with ``NoiseHandshake``; not used here.
        encodings: encodings to offer on the password path, best first.
        ciphers: ciphers to offer on the password path, best first.
        binarize: ask the hub for binarized hub→client frames (spec §6.4; default no).
        prefer: ``"password"`` (default) or ``"psk"`` when the hub offers both.
        bitstring: the client's frames are bitstrings (MQTT on hub 4.x). A hub that holds a
            crypto_key decrypts every binary frame with it, so a cleartext password shake would
            be dropped: the pre-shared path is then the only one that works.

    Raises:
        LocalProtocolError: no credentials, unknown encoding/cipher names or a non-positive
            timeout. (A crypto_key the pre-shared path cannot use fails the handshake, not this.)
    """

    def __init__(
        self,
        *,
        entropy: Entropy,
        started_at: float,
        timeout: float = 10.0,
        password: str | None = None,
        crypto_key: str | None = None,
        access_key: str = "",
        useragent: str = "",
        encodings: Sequence[str] = DEFAULT_ENCODINGS,
        ciphers: Sequence[str] = DEFAULT_CIPHERS,
        binarize: bool = False,
        prefer: str = "password",
        bitstring: bool = False,
    ) -> None:
        if timeout <= 0:
            raise LocalProtocolError("the handshake timeout must be positive")
        if not password and not crypto_key:
            raise LocalProtocolError("the legacy handshake needs a password or a crypto_key")
        if prefer not in ("password", "psk"):
            raise LocalProtocolError("prefer must be 'password' or 'psk'")
        try:
            self._encodings = tuple(Encoding(e) for e in encodings)
            self._ciphers = tuple(Cipher(c) for c in ciphers)
        except ValueError:
            raise LocalProtocolError("unknown encoding or cipher name (see spec §5)") from None
        if not self._encodings or not self._ciphers:
            raise LocalProtocolError("offer at least one encoding and one cipher")
        # A crypto_key the pre-shared path cannot use is kept as a problem: it fails only if that path is needed.
        self._psk = usable_preshared_key(crypto_key) if crypto_key else None
        self._psk_unusable = bool(crypto_key) and self._psk is None
        self._password = password or None
        self._entropy = entropy
        self._deadline = started_at + timeout
        self.channel: LegacyChannel | None = None  # the negotiated channel once READY (read by connection info)
        self._timeout = timeout
        self._binarize = binarize
        self._prefer = prefer
        self._bitstring = bitstring
        self._state = _S.WAIT_HELLO
        self._hello: HiveMessage | None = None
        self._iv: bytes | None = None
        self._offered: tuple[tuple[Encoding, ...], tuple[Cipher, ...]] = (self._encodings, self._ciphers)
        self.path: str | None = None  # "password" or "psk" once chosen

    _TERMINAL = frozenset({HandshakeState.READY, HandshakeState.HANDED_OVER, HandshakeState.FAILED})

    def __repr__(self) -> str:
        return f"Handshake(state={self._state.name}, path={self.path!r})"

    @property
    def deadline(self) -> float | None:
        return self._deadline if self._state in _LIVE else None

    @property
    def hub_hello(self) -> HiveMessage | None:
        """The hub's cleartext HELLO, once seen."""
        return self._hello

    @property
    def hub_peer(self) -> str | None:
        """The peer id the hub's HELLO announced (``...::default`` on hub 4.x)."""
        return self._hello_field("peer")

    @property
    def node_id(self) -> str | None:
        return self._hello_field("node_id")

    def _hello_field(self, name: str) -> str | None:
        if self._hello is None or not isinstance(self._hello.payload, dict):
            return None
        value = self._hello.payload.get(name)
        return value if isinstance(value, str) else None

    # ---- the one way in ---------------------------------------------------------------------------

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed ``GreetingReceived`` (a cleartext hello/shake) or ``Tick``.

        Raises:
            LocalProtocolError: any other input type.
        """
        if not isinstance(inp, Tick | GreetingReceived):
            raise LocalProtocolError(f"Handshake does not accept {type(inp).__name__}")
        if self._state in _LIVE and now >= self._deadline:
            return self._fire(_TIMED_OUT, inp, now)
        if isinstance(inp, Tick):
            return []
        row = TABLE.get((self._state, _kind(inp.message)))
        if row is None:
            if self._state in _LIVE:
                return [_note(f"handshake: ignored {inp.message.msg_type.value} in {self._state.name}")]
            return []
        return self._fire(row, inp, now)

    # ---- transitions ------------------------------------------------------------------------------

    def _on_timeout(self, _inp: Input, _now: float) -> list[Output]:
        return self._fail("timeout", f"no handshake within {self._timeout:g} s")

    def _on_hello(self, inp: GreetingReceived, _now: float) -> list[Output]:
        if self._hello is not None:
            return [_note("handshake: duplicate hub HELLO ignored")]
        self._hello = inp.message
        return []

    def _on_duplicate_offer(self, _inp: GreetingReceived, _now: float) -> list[Output]:
        return [_note("handshake: duplicate offer ignored (one handshake per connection)", NoteLevel.INFO)]

    def _on_offer(self, inp: GreetingReceived, _now: float) -> list[Output]:
        message = inp.message
        payload: dict[str, Any] = message.payload if isinstance(message.payload, dict) else {}
        if is_noise_offer(payload):
            self._exit(_S.HANDED_OVER)
            return [NoiseOffered(offer=message, hello=self._hello)]
        use_password = self._password is not None and payload.get("password") is True
        wants_psk = payload.get("preshared_key") is True
        use_psk = self._psk is not None and wants_psk
        if self._bitstring and wants_psk:
            if use_psk:
                return self._finish_psk()
            if self._psk_unusable:
                return self._fail_unusable_psk()
            detail = "the hub decrypts every binary frame with this client's crypto_key; configure crypto_key"
            return self._fail("needs-crypto-key", detail, auth=True)
        if use_psk and (self._prefer == "psk" or not use_password):
            return self._finish_psk()
        if use_password:
            return self._start_password(payload)
        if wants_psk and self._psk_unusable:
            return self._fail_unusable_psk()
        offered = ", ".join(k for k in ("password", "preshared_key") if payload.get(k) is True) or "no known method"
        return self._fail(
            "no-credentials", f"the hub offers {offered}; this identity has no matching credential", auth=True
        )

    def _start_password(self, payload: dict[str, Any]) -> list[Output]:
        encodings = _allowed(self._encodings, payload.get("encodings"))
        ciphers = _allowed(self._ciphers, payload.get("ciphers"))
        if not encodings or not ciphers:
            return self._fail("no-common-cipher", "the hub allows none of the offered encodings/ciphers")
        iv = self._entropy(8)
        if len(iv) != 8:
            raise LocalProtocolError("entropy returned the wrong number of bytes")
        self._iv = iv
        self._offered = (encodings, ciphers)
        self.path = "password"
        shake = {
            "binarize": self._binarize,
            "encodings": [e.value for e in encodings],
            "ciphers": [c.value for c in ciphers],
            "envelope": client_envelope(self._password or "", iv),
        }
        return [SendHandshake(message=HiveMessage(msg_type=MsgType.HANDSHAKE, payload=shake))]

    def _on_envelope(self, inp: GreetingReceived, _now: float) -> list[Output]:
        message = inp.message
        payload: dict[str, Any] = message.payload if isinstance(message.payload, dict) else {}
        assert self._iv is not None and self._password is not None  # WAIT_ENVELOPE implies both
        verified = verify_envelope(payload.get("envelope"), self._password, own_iv=self._iv)
        if not isinstance(verified, Success):
            problem = verified.failure()
            return self._fail(problem.code, problem.detail, auth=True)
        encodings, ciphers = self._offered
        try:
            encoding = Encoding(payload.get("encoding", Encoding.JSON_HEX.value))
            cipher = Cipher(payload.get("cipher", Cipher.AES_GCM.value))
        except (ValueError, TypeError):
            return self._fail("bad-negotiation", "the hub chose an unknown cipher or encoding")
        if encoding not in encodings or cipher not in ciphers:
            return self._fail(
                "bad-negotiation", f"the hub chose {cipher.value}/{encoding.value}, which we did not offer"
            )
        key = derive_password_key(self._password, self._iv, verified.unwrap())
        return self._done(LegacyChannel(key=key, cipher=cipher, encoding=encoding, entropy=self._entropy))

    def _finish_psk(self) -> list[Output]:
        assert self._psk is not None
        self.path = "psk"
        channel = LegacyChannel(key=self._psk, cipher=Cipher.AES_GCM, encoding=Encoding.JSON_HEX, entropy=self._entropy)
        return self._done(channel)

    def _fail_unusable_psk(self) -> list[Output]:
        """The hub needs the pre-shared path and the configured crypto_key cannot key it (never retried)."""
        detail = f"the hub asks for the pre-shared key: {PRESHARED_KEY_RULE}"
        return self._fail("unusable-crypto-key", detail, auth=True)

    def _done(self, channel: LegacyChannel) -> list[Output]:
        self._exit(_S.READY)
        self.channel = channel
        return [
            _note(f"handshake: {self.path} path, {channel.cipher.value}/{channel.encoding.value}", NoteLevel.INFO),
            HandshakeDone(channel=channel, hub_peer=self.hub_peer, node_id=self.node_id),
        ]

    def _fail(self, code: str, detail: str, *, auth: bool = False) -> list[Output]:
        self._exit(_S.FAILED)
        return [HandshakeFailed(code=code, detail=detail, auth=auth)]


def _allowed(ours: Sequence[Any], theirs: object) -> tuple[Any, ...]:
    """Our preference list filtered to what the hub allows (no list: hub defaults, allow all)."""
    if not isinstance(theirs, list):
        return tuple(ours)
    return tuple(item for item in ours if item.value in theirs)


_OFFER_ENDS = frozenset({_S.READY, _S.HANDED_OVER, _S.FAILED})

#: ``(state, greeting kind) -> Row(to, handler, exits)``: the one place a transition is written.
#: Missing rows: a Note (live states) or nothing (terminal states).
TABLE: Final[Mapping[tuple[HandshakeState, str], Row[Handshake, HandshakeState]]] = {
    (_S.WAIT_HELLO, "hello"): Row(_S.WAIT_OFFER, Handshake._on_hello),  # store peer/node_id, wait for the offer
    (_S.WAIT_HELLO, "offer"): Row(_S.WAIT_ENVELOPE, Handshake._on_offer, _OFFER_ENDS),  # offer first is accepted too
    (_S.WAIT_OFFER, "hello"): Row(_S.WAIT_OFFER, Handshake._on_hello),  # duplicate HELLO: Note
    (_S.WAIT_OFFER, "offer"): Row(_S.WAIT_ENVELOPE, Handshake._on_offer, _OFFER_ENDS),  # choose the path
    (_S.WAIT_ENVELOPE, "hello"): Row(_S.WAIT_ENVELOPE, Handshake._on_hello),  # late HELLO (offer came first)
    (_S.WAIT_ENVELOPE, "offer"): Row(_S.WAIT_ENVELOPE, Handshake._on_duplicate_offer),  # never a second handshake
    (_S.WAIT_ENVELOPE, "envelope"): Row(_S.READY, Handshake._on_envelope, frozenset({_S.FAILED})),  # verify, derive
}
#: Any live state past the deadline, on any input.
_TIMED_OUT: Final[Row[Handshake, HandshakeState]] = Row(_S.FAILED, Handshake._on_timeout)
