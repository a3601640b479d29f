"""Noise protocol pieces for HiveMind protocol v3 (hub 5.x), on ``cryptography`` primitives.

Theory of operation
-------------------
Spec §7.6 fixes everything this module does: Noise revision 34 with X25519, SHA-256 and either
ChaCha20-Poly1305 or AES-256-GCM, and the two patterns a hub 5.x offers::

    XXpsk2   -> e                       KKpsk0   (pre: -> s, <- s)
             <- e, ee, s, es, psk                -> psk, e, es, ss
             -> s, se                            <- e, ee, se

The layers, bottom up:

* :class:`CipherState` -- one AEAD key plus its 64-bit counter. The nonce is
  ``00000000 || uint64(n)``, little-endian for ChaChaPoly and big-endian for AESGCM.
* :class:`SymmetricState` -- the chaining key ``ck`` and transcript hash ``h`` with
  ``MixKey`` / ``MixHash`` / ``MixKeyAndHash`` / ``Split`` (HKDF on HMAC-SHA256).
* :class:`~thalovant.core.handshake.noise_handshaker.NoiseHandshaker` (its own module) -- a token
  interpreter for both roles. The client is the initiator; the responder side exists so that a hub
  can be simulated in tests.

The transport framing (spec §7.7) and the ``SecureChannel`` live in ``noise_channel``.

Rule 1: nothing here raises on bad peer data. Reads return ``Result[..., NoiseProblem]``;
writes that the caller makes out of turn raise ``LocalProtocolError``.

Rule 2: a failed read poisons the object. Noise has no recovery after an authentication
failure (spec §7.6: "a gap or reorder is fatal"), so every later read fails too.

Rule 3: ephemeral keys come from the injected ``entropy`` callable, never from the OS.
Keys never appear in a ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from returns.result import Failure, Result, Success

from thalovant.core.errors import LocalProtocolError

PATTERN_XX: Final = "XXpsk2"
PATTERN_KK: Final = "KKpsk0"
SUITE_CHACHA: Final = "25519_ChaChaPoly_SHA256"
SUITE_AESGCM: Final = "25519_AESGCM_SHA256"
#: The client's suite preference (spec §7.2): the first one the hub also offers wins.
PREFERRED_SUITES: Final = (SUITE_CHACHA, SUITE_AESGCM)

KEY_LEN: Final = 32
TAG_LEN: Final = 16
HASH_LEN: Final = 32
MAX_NOISE_MESSAGE: Final = 65535
_MAX_NONCE: Final = 2**64 - 1  # reserved by the Noise spec; never used for encryption


@dataclass(frozen=True, slots=True)
class NoiseProblem:
    """Why a Noise read or decryption failed. Never holds key material."""

    code: str  # "auth-failed", "bad-length", "bad-key", "too-long", "poisoned", "bad-marker", ...
    detail: str = ""


# ---- helpers shared with the handshake machine ---------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Spec §7.4 canonical form: sorted keys, no spaces, UTF-8, non-ASCII kept.

    >>> canonical_json({"b": [1, 2], "a": "é"})
    b'{"a":"\\xc3\\xa9","b":[1,2]}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def protocol_name(pattern: str, suite: str) -> str:
    """``Noise_<pattern>_<suite>``, e.g. ``Noise_XXpsk2_25519_ChaChaPoly_SHA256``."""
    return f"Noise_{pattern}_{suite}"


def build_prologue(hello_payload: Any, offer_payload: Any, name: str) -> bytes:
    """Spec §7.4: ``canonical(hello) || canonical(offer) || utf8(protocol name)``.

    Args:
        hello_payload: the hub HELLO's ``payload`` object, exactly as parsed.
        offer_payload: the hub HANDSHAKE offer's ``payload`` object, exactly as parsed.
        name: the full Noise protocol name.
    """
    return canonical_json(hello_payload) + canonical_json(offer_payload) + name.encode("utf-8")


def derive_psk(password: str, node_id: str) -> bytes:
    """Spec §7.3: the Argon2id-stretched pre-shared key (about 0.3 s and 64 MiB of work).

    The result depends only on ``(password, node_id)``; callers may cache it and must forget
    it after an authentication failure.
    """
    kdf = Argon2id(
        salt=hashlib.sha256(node_id.encode("utf-8")).digest(),
        length=32,
        iterations=3,
        lanes=1,
        memory_cost=65536,
    )
    return kdf.derive(password.encode("utf-8"))


def public_key(private: bytes) -> bytes:
    """The raw 32-byte X25519 public key for a raw 32-byte private key."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def hkdf(chaining_key: bytes, ikm: bytes, outputs: int) -> tuple[bytes, ...]:
    """Noise HKDF (spec §7.6) returning 2 or 3 32-byte outputs."""
    temp = _hmac(chaining_key, ikm)
    out: list[bytes] = []
    prev = b""
    for i in range(1, outputs + 1):
        prev = _hmac(temp, prev + bytes([i]))
        out.append(prev)
    return tuple(out)


def dh(private: bytes, remote_public: bytes) -> Result[bytes, NoiseProblem]:
    try:
        peer = X25519PublicKey.from_public_bytes(remote_public)
        return Success(X25519PrivateKey.from_private_bytes(private).exchange(peer))
    except ValueError:  # wrong length, or a low-order point giving an all-zero secret
        return Failure(NoiseProblem("bad-key", "the peer sent an unusable X25519 public key"))


# ---- CipherState -------------------------------------------------------------------------------


class CipherState:
    """One direction's AEAD key and nonce counter (Noise §5.1)."""

    __slots__ = ("_aead", "_big_endian", "_key", "nonce")

    def __init__(self, suite: str, key: bytes | None = None) -> None:
        if suite not in PREFERRED_SUITES:
            raise LocalProtocolError(f"unsupported Noise suite {suite!r}")
        self._big_endian = suite == SUITE_AESGCM
        self._key: bytes | None = None
        self._aead: AESGCM | ChaCha20Poly1305 | None = None
        self.nonce = 0
        if key is not None:
            self.initialize_key(key)

    def __repr__(self) -> str:
        return f"CipherState(keyed={self._key is not None}, nonce={self.nonce})"

    def initialize_key(self, key: bytes) -> None:
        self._key = key
        self._aead = AESGCM(key) if self._big_endian else ChaCha20Poly1305(key)
        self.nonce = 0

    @property
    def has_key(self) -> bool:
        return self._aead is not None

    def _nonce_bytes(self) -> bytes:
        return b"\x00\x00\x00\x00" + struct.pack(">Q" if self._big_endian else "<Q", self.nonce)

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """Encrypt and advance the counter; without a key, return the plaintext unchanged."""
        if self._aead is None:
            return plaintext
        if self.nonce >= _MAX_NONCE:
            raise LocalProtocolError("Noise nonce space exhausted; reconnect")
        out = self._aead.encrypt(self._nonce_bytes(), plaintext, ad)
        self.nonce += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> Result[bytes, NoiseProblem]:
        """Decrypt and advance the counter; the counter does not move on failure."""
        if self._aead is None:
            return Success(ciphertext)
        if self.nonce >= _MAX_NONCE:
            return Failure(NoiseProblem("nonce-exhausted", "the receive counter is exhausted"))
        if len(ciphertext) < TAG_LEN:
            return Failure(NoiseProblem("bad-length", f"{len(ciphertext)} bytes is shorter than a tag"))
        try:
            out = self._aead.decrypt(self._nonce_bytes(), ciphertext, ad)
        except InvalidTag:
            return Failure(NoiseProblem("auth-failed", f"authentication failed at nonce {self.nonce}"))
        self.nonce += 1
        return Success(out)


# ---- SymmetricState ----------------------------------------------------------------------------


class SymmetricState:
    """Chaining key, handshake hash and the handshake cipher (Noise §5.2)."""

    __slots__ = ("_suite", "cipher", "ck", "h")

    def __init__(self, name: str, suite: str) -> None:
        raw = name.encode("ascii")
        self.h = raw.ljust(HASH_LEN, b"\x00") if len(raw) <= HASH_LEN else hashlib.sha256(raw).digest()
        self.ck = self.h
        self._suite = suite
        self.cipher = CipherState(suite)

    def __repr__(self) -> str:
        return f"SymmetricState(suite={self._suite!r}, keyed={self.cipher.has_key})"

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, key = hkdf(self.ck, ikm, 2)
        self.cipher.initialize_key(key)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, key = hkdf(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self.cipher.initialize_key(key)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        out = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(out)
        return out

    def decrypt_and_hash(self, data: bytes) -> Result[bytes, NoiseProblem]:
        result = self.cipher.decrypt_with_ad(self.h, data)
        if isinstance(result, Success):
            self.mix_hash(data)
        return result

    def split(self) -> tuple[CipherState, CipherState]:
        k1, k2 = hkdf(self.ck, b"", 2)
        return CipherState(self._suite, k1), CipherState(self._suite, k2)
