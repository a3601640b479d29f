"""The Noise handshake as a token interpreter (spec §7.6): message patterns as data, either role.

The client is the initiator; the responder side exists so that a hub can be simulated in tests.
The primitives it runs on (:class:`~thalovant.core.handshake.noise.CipherState`,
:class:`~thalovant.core.handshake.noise.SymmetricState`, DH, HKDF) are in :mod:`thalovant.core.handshake.noise`.
"""

from __future__ import annotations

import enum
from typing import Final

from returns.result import Failure, Result, Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.noise import (
    KEY_LEN,
    MAX_NOISE_MESSAGE,
    PATTERN_KK,
    PATTERN_XX,
    TAG_LEN,
    CipherState,
    NoiseProblem,
    SymmetricState,
    dh,
    protocol_name,
    public_key,
)
from thalovant.core.machine import Entropy

__all__ = ["PATTERNS", "NoiseHandshaker", "Token"]


class Token(enum.Enum):
    E = "e"
    S = "s"
    EE = "ee"
    ES = "es"
    SE = "se"
    SS = "ss"
    PSK = "psk"


#: Message patterns as data: message i is written by the initiator when i is even.
PATTERNS: Final[dict[str, tuple[tuple[Token, ...], ...]]] = {
    PATTERN_XX: (
        (Token.E,),
        (Token.E, Token.EE, Token.S, Token.ES, Token.PSK),
        (Token.S, Token.SE),
    ),
    PATTERN_KK: (
        (Token.PSK, Token.E, Token.ES, Token.SS),
        (Token.E, Token.EE, Token.SE),
    ),
}
#: Patterns whose statics are known before the first message (``-> s``, ``<- s``).
_PREMESSAGE_STATICS: Final = frozenset({PATTERN_KK})


class NoiseHandshaker:
    """Runs one Noise handshake (either role) and hands out the transport ciphers.

    Args:
        pattern: ``"XXpsk2"`` or ``"KKpsk0"``.
        suite: ``"25519_ChaChaPoly_SHA256"`` or ``"25519_AESGCM_SHA256"``.
        psk: the 32-byte pre-shared key (:func:`derive_psk`).
        prologue: :func:`build_prologue` output.
        static_private: this side's raw X25519 private key.
        entropy: source of the ephemeral private key (32 bytes, drawn when ``e`` is written).
        initiator: True for the client.
        remote_static: the peer's raw public key; required for KKpsk0.

    Raises:
        LocalProtocolError: unknown pattern/suite, bad key sizes, or KK without ``remote_static``.
    """

    def __init__(
        self,
        *,
        pattern: str,
        suite: str,
        psk: bytes,
        prologue: bytes,
        static_private: bytes,
        entropy: Entropy,
        initiator: bool,
        remote_static: bytes | None = None,
    ) -> None:
        if pattern not in PATTERNS:
            raise LocalProtocolError(f"unsupported Noise pattern {pattern!r}")
        if len(psk) != KEY_LEN or len(static_private) != KEY_LEN:
            raise LocalProtocolError("the PSK and the static key must be 32 bytes")
        if pattern in _PREMESSAGE_STATICS and (remote_static is None or len(remote_static) != KEY_LEN):
            raise LocalProtocolError(f"{pattern} needs the peer's 32-byte static public key")
        self.pattern = pattern
        self.suite = suite
        self.initiator = initiator
        self._entropy = entropy
        self._psk = psk
        self._s = static_private
        self._s_pub = public_key(static_private)
        self._e: bytes | None = None
        self._re: bytes | None = None
        self._rs = remote_static
        self._sym = SymmetricState(protocol_name(pattern, suite), suite)
        self._sym.mix_hash(prologue)
        if pattern in _PREMESSAGE_STATICS:
            assert remote_static is not None
            first, second = (self._s_pub, remote_static) if initiator else (remote_static, self._s_pub)
            self._sym.mix_hash(first)
            self._sym.mix_hash(second)
        self._index = 0
        self._poisoned = False

    def __repr__(self) -> str:
        return (
            f"NoiseHandshaker(pattern={self.pattern!r}, suite={self.suite!r}, initiator={self.initiator}, "
            f"message={self._index}, finished={self.finished})"
        )

    @property
    def finished(self) -> bool:
        return self._index >= len(PATTERNS[self.pattern])

    @property
    def writes_next(self) -> bool:
        """True when the next handshake message is ours to write."""
        return not self.finished and (self._index % 2 == 0) == self.initiator

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key, once known (pre-message or received)."""
        return self._rs

    @property
    def local_static_public(self) -> bytes:
        return self._s_pub

    @property
    def handshake_hash(self) -> bytes:
        return self._sym.h

    def _dh_pair(self, token: Token) -> tuple[bytes | None, bytes | None]:
        """(our private, their public) for a DH token, following the initiator's view."""
        e, s, re, rs = self._e, self._s, self._re, self._rs
        if token is Token.EE:
            return e, re
        if token is Token.SS:
            return s, rs
        # es: initiator's e with responder's s; se: initiator's s with responder's e
        if (token is Token.ES) == self.initiator:
            return e, rs
        return s, re

    def _mixdh(self, token: Token) -> Result[None, NoiseProblem]:
        mine, theirs = self._dh_pair(token)
        if mine is None or theirs is None:  # impossible for the fixed patterns above
            raise LocalProtocolError(f"Noise token {token.value} before its keys exist")
        secret = dh(mine, theirs)
        if isinstance(secret, Success):
            self._sym.mix_key(secret.unwrap())
            return Success(None)
        return Failure(secret.failure())

    def write_message(self, payload: bytes) -> bytes:
        """Write our next handshake message.

        Raises:
            LocalProtocolError: it is not our turn, the handshake failed or is over.
        """
        if self._poisoned or not self.writes_next:
            raise LocalProtocolError("not this side's turn to write a Noise handshake message")
        out = bytearray()
        for token in PATTERNS[self.pattern][self._index]:
            if token is Token.E:
                self._e = self._entropy(KEY_LEN)
                e_pub = public_key(self._e)
                out += e_pub
                self._sym.mix_hash(e_pub)
                self._sym.mix_key(e_pub)  # psk rule: e also mixes the key
            elif token is Token.S:
                out += self._sym.encrypt_and_hash(self._s_pub)
            elif token is Token.PSK:
                self._sym.mix_key_and_hash(self._psk)
            else:
                mixed = self._mixdh(token)
                if not isinstance(mixed, Success):  # our own DH failed: the peer's key was bad
                    self._poisoned = True
                    raise LocalProtocolError(mixed.failure().detail)
        out += self._sym.encrypt_and_hash(payload)
        if len(out) > MAX_NOISE_MESSAGE:
            self._poisoned = True
            raise LocalProtocolError("Noise handshake payload too large")
        self._index += 1
        return bytes(out)

    def read_message(self, message: bytes) -> Result[bytes, NoiseProblem]:
        """Read the peer's next handshake message and return its payload.

        Raises:
            LocalProtocolError: it is our turn to write, or the handshake is over.
        """
        if self._poisoned:
            return Failure(NoiseProblem("poisoned", "an earlier handshake message failed"))
        if self.finished or self.writes_next:
            raise LocalProtocolError("not this side's turn to read a Noise handshake message")
        result = self._read(message)
        if isinstance(result, Success):
            self._index += 1
        else:
            self._poisoned = True
        return result

    def _read(self, message: bytes) -> Result[bytes, NoiseProblem]:
        if len(message) > MAX_NOISE_MESSAGE:
            return Failure(NoiseProblem("too-long", f"{len(message)} bytes"))
        view = memoryview(message)
        pos = 0
        for token in PATTERNS[self.pattern][self._index]:
            if token is Token.E:
                if len(view) - pos < KEY_LEN:
                    return Failure(NoiseProblem("bad-length", "message too short for an ephemeral key"))
                self._re = bytes(view[pos : pos + KEY_LEN])
                pos += KEY_LEN
                self._sym.mix_hash(self._re)
                self._sym.mix_key(self._re)
            elif token is Token.S:
                size = KEY_LEN + (TAG_LEN if self._sym.cipher.has_key else 0)
                if len(view) - pos < size:
                    return Failure(NoiseProblem("bad-length", "message too short for a static key"))
                rs = self._sym.decrypt_and_hash(bytes(view[pos : pos + size]))
                if not isinstance(rs, Success):
                    return rs
                self._rs = rs.unwrap()
                pos += size
            elif token is Token.PSK:
                self._sym.mix_key_and_hash(self._psk)
            else:
                mixed = self._mixdh(token)
                if not isinstance(mixed, Success):
                    return Failure(mixed.failure())
        return self._sym.decrypt_and_hash(bytes(view[pos:]))

    def split(self) -> tuple[CipherState, CipherState]:
        """``(send, receive)`` transport ciphers for this side.

        Raises:
            LocalProtocolError: the handshake has not finished.
        """
        if not self.finished or self._poisoned:
            raise LocalProtocolError("the Noise handshake has not finished")
        c1, c2 = self._sym.split()
        return (c1, c2) if self.initiator else (c2, c1)
