"""Legacy (protocol v1, hub 4.x) encryption: AEADs, text wrappers, key derivation, channel.

Theory of operation
-------------------
Spec §5: after the key exists every frame is sealed with AES-GCM (16-byte
nonce) or ChaCha20-Poly1305 (12-byte nonce), tag 16 bytes, no AAD, no
sequence numbers. A text frame is the wrapper ``{"ciphertext", "tag",
"nonce"}`` whose three fields use the negotiated text encoding; a binary
frame is ``nonce ‖ ciphertext ‖ tag`` around a bitstring (spec §6).

Everything here is pure computation. Nonces come from the caller (the
channel draws them from its injected entropy), so sealing is deterministic
in tests. Every ``open_*`` function is total: malformed input, a wrong key or
tampering give ``Failure(CryptoProblem)``, never an exception.

Key derivation (spec §4.3, §4.4): the password path hashes an 8-byte IV with
the password into a 48-hex-character envelope, XORs both IVs into a salt and
runs PBKDF2-HMAC-SHA256 (100000 rounds, 32 bytes); the pre-shared path uses
the UTF-8 bytes of ``crypto_key[:16]`` directly.

:class:`LegacyChannel` is the generation-1 :class:`~thalovant.core.handshake.contract.SecureChannel`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from returns.result import Failure, Result, Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Entropy
from thalovant.core.wire import basecodecs
from thalovant.core.wire.bitstring import decode_bitstring, encode_bitstring
from thalovant.core.wire.codec import decode_json, encode_json, parse_json_object
from thalovant.core.wire.frame import Frame, FrameProblem
from thalovant.core.wire.message import HiveMessage, MsgType

__all__ = [
    "PBKDF2_ITERATIONS",
    "TAG_LEN",
    "Cipher",
    "CryptoProblem",
    "Encoding",
    "LegacyChannel",
    "client_envelope",
    "decode_text",
    "derive_password_key",
    "encode_text",
    "open_binary",
    "open_bytes",
    "open_wrapper",
    "preshared_key",
    "seal_binary",
    "seal_bytes",
    "seal_wrapper",
    "verify_envelope",
]

TAG_LEN = 16
PBKDF2_ITERATIONS = 100_000


class Cipher(enum.Enum):
    """AEAD names of spec §5.1."""

    AES_GCM = "AES-GCM"
    CHACHA20_POLY1305 = "CHACHA20-POLY1305"

    @property
    def nonce_len(self) -> int:
        return 16 if self is Cipher.AES_GCM else 12


class Encoding(enum.Enum):
    """Text encodings of the JSON wrapper (spec §5.2)."""

    JSON_HEX = "JSON-HEX"
    JSON_B64 = "JSON-B64"
    JSON_URLSAFE_B64 = "JSON-URLSAFE-B64"
    JSON_B32 = "JSON-B32"
    JSON_B91 = "JSON-B91"
    JSON_Z85B = "JSON-Z85B"
    JSON_Z85P = "JSON-Z85P"


@dataclass(frozen=True, slots=True)
class CryptoProblem:
    """Why something could not be decrypted or verified. Never holds key material."""

    code: str  # "bad-encoding", "bad-wrapper", "auth-failed", "bad-nonce", "bad-envelope", "wrong-password"
    detail: str = ""

    def as_frame_problem(self) -> FrameProblem:
        return FrameProblem(self.code, self.detail)


# ---- text encodings -----------------------------------------------------------------------------


def encode_text(data: bytes, encoding: Encoding) -> str:
    """Encode bytes with one of the seven wrapper encodings."""
    if encoding is Encoding.JSON_HEX:
        return data.hex()
    if encoding is Encoding.JSON_B64:
        return base64.b64encode(data).decode("ascii")
    if encoding is Encoding.JSON_URLSAFE_B64:
        return base64.urlsafe_b64encode(data).decode("ascii")
    if encoding is Encoding.JSON_B32:
        return base64.b32encode(data).decode("ascii")
    if encoding is Encoding.JSON_B91:
        return basecodecs.b91encode(data)
    if encoding is Encoding.JSON_Z85B:
        return basecodecs.z85b_encode(data)
    return basecodecs.z85p_encode(data)


def decode_text(text: object, encoding: Encoding) -> Result[bytes, CryptoProblem]:
    """Decode one wrapper field; any malformed value is a ``bad-encoding`` problem."""
    if not isinstance(text, str):
        return Failure(CryptoProblem("bad-encoding", "field is not a string"))
    try:
        if encoding is Encoding.JSON_HEX:
            return Success(bytes.fromhex(text))
        if encoding in (Encoding.JSON_B64, Encoding.JSON_URLSAFE_B64, Encoding.JSON_B32):
            raw = text.encode("ascii")
            if encoding is Encoding.JSON_B64:
                return Success(base64.b64decode(raw, validate=True))
            if encoding is Encoding.JSON_URLSAFE_B64:
                return Success(base64.b64decode(raw, altchars=b"-_", validate=True))
            return Success(base64.b32decode(raw))
        decoded = {
            Encoding.JSON_B91: basecodecs.b91decode,
            Encoding.JSON_Z85B: basecodecs.z85b_decode,
            Encoding.JSON_Z85P: basecodecs.z85p_decode,
        }[encoding](text)
    except (ValueError, binascii.Error) as exc:  # UnicodeEncodeError is a ValueError
        return Failure(CryptoProblem("bad-encoding", f"{encoding.value}: {type(exc).__name__}"))
    return Success(decoded)


# Encodings whose alphabets hold no character JSON must escape (no quote, backslash, control or
# non-ASCII character): json.dumps writes their text between plain quotes.
_NO_ESCAPES = frozenset({Encoding.JSON_HEX, Encoding.JSON_B64, Encoding.JSON_URLSAFE_B64, Encoding.JSON_B32})


# ---- AEAD ---------------------------------------------------------------------------------------


def _check_key(key: bytes, cipher: Cipher) -> None:
    allowed = (16, 24, 32) if cipher is Cipher.AES_GCM else (32,)
    if len(key) not in allowed:
        raise LocalProtocolError(f"{cipher.value} needs a key of {allowed} bytes, got {len(key)}")


def _aead(key: bytes, cipher: Cipher) -> AESGCM | ChaCha20Poly1305:
    return AESGCM(key) if cipher is Cipher.AES_GCM else ChaCha20Poly1305(key)


def seal_bytes(plaintext: bytes, *, key: bytes, cipher: Cipher, nonce: bytes) -> tuple[bytes, bytes]:
    """AEAD-encrypt; returns ``(ciphertext_without_tag, tag)``.

    Raises:
        LocalProtocolError: wrong key or nonce length for the cipher.
    """
    _check_key(key, cipher)
    if len(nonce) != cipher.nonce_len:
        raise LocalProtocolError(f"{cipher.value} nonce must be {cipher.nonce_len} bytes")
    sealed = _aead(key, cipher).encrypt(nonce, plaintext, None)
    return sealed[:-TAG_LEN], sealed[-TAG_LEN:]


def open_bytes(
    ciphertext: bytes, tag: bytes, *, key: bytes, cipher: Cipher, nonce: bytes
) -> Result[bytes, CryptoProblem]:
    """AEAD-decrypt; tampering or a wrong key give ``auth-failed``."""
    _check_key(key, cipher)
    if len(tag) != TAG_LEN:
        return Failure(CryptoProblem("bad-wrapper", f"tag is {len(tag)} bytes, not {TAG_LEN}"))
    if cipher is Cipher.CHACHA20_POLY1305 and len(nonce) != 12:
        return Failure(CryptoProblem("bad-nonce", "ChaCha20-Poly1305 needs a 12-byte nonce"))
    if cipher is Cipher.AES_GCM and not 8 <= len(nonce) <= 128:
        return Failure(CryptoProblem("bad-nonce", f"AES-GCM nonce of {len(nonce)} bytes"))
    try:
        return Success(_aead(key, cipher).decrypt(nonce, ciphertext + tag, None))
    except InvalidTag:
        return Failure(CryptoProblem("auth-failed", "authentication tag mismatch (wrong key or tampered frame)"))
    except (ValueError, OverflowError) as exc:
        return Failure(CryptoProblem("bad-wrapper", type(exc).__name__))


def seal_wrapper(plaintext: str, *, key: bytes, cipher: Cipher, encoding: Encoding, nonce: bytes) -> str:
    """Encrypt JSON text into the wrapper text frame ``{"ciphertext", "tag", "nonce"}`` (spec §5.2)."""
    ct, tag = seal_bytes(plaintext.encode("utf-8"), key=key, cipher=cipher, nonce=nonce)
    ct_text, tag_text, nonce_text = encode_text(ct, encoding), encode_text(tag, encoding), encode_text(nonce, encoding)
    if encoding in _NO_ESCAPES:
        # Same text as json.dumps below, without its per-character escape scan (a third of
        # the round-trip time of a 64 KB message; see benchmarks/RESULTS.md).
        return f'{{"ciphertext": "{ct_text}", "tag": "{tag_text}", "nonce": "{nonce_text}"}}'
    return json.dumps({"ciphertext": ct_text, "tag": tag_text, "nonce": nonce_text})


def open_wrapper(
    wrapper: str | bytes | dict[str, Any], *, key: bytes, cipher: Cipher, encoding: Encoding
) -> Result[str, CryptoProblem]:
    """Decrypt a wrapper (text or already-parsed object) back to its JSON text.

    Accepts the "Web Crypto" form without ``tag`` (the tag is then the last 16 bytes
    of ``ciphertext``).
    """
    if isinstance(wrapper, dict):
        obj = wrapper
    else:
        parsed = parse_json_object(wrapper)
        if not isinstance(parsed, Success):
            return Failure(CryptoProblem("bad-wrapper", parsed.failure().detail))
        obj = parsed.unwrap()
    if "ciphertext" not in obj or "nonce" not in obj:
        return Failure(CryptoProblem("bad-wrapper", "wrapper lacks ciphertext or nonce"))
    decoded: list[bytes] = []
    for res in (decode_text(obj["ciphertext"], encoding), decode_text(obj["nonce"], encoding)):
        if not isinstance(res, Success):
            return Failure(res.failure())
        decoded.append(res.unwrap())
    ct, nonce = decoded
    if "tag" in obj:
        tag_res = decode_text(obj["tag"], encoding)
        if not isinstance(tag_res, Success):
            return Failure(tag_res.failure())
        tag = tag_res.unwrap()
    else:
        if len(ct) < TAG_LEN:
            return Failure(CryptoProblem("bad-wrapper", "ciphertext shorter than a tag"))
        ct, tag = ct[:-TAG_LEN], ct[-TAG_LEN:]
    opened = open_bytes(ct, tag, key=key, cipher=cipher, nonce=nonce)
    if not isinstance(opened, Success):
        return Failure(opened.failure())
    try:
        return Success(opened.unwrap().decode("utf-8"))
    except UnicodeDecodeError:
        return Failure(CryptoProblem("bad-wrapper", "plaintext is not UTF-8"))


def seal_binary(plaintext: bytes, *, key: bytes, cipher: Cipher, nonce: bytes) -> bytes:
    """Encrypt into the binary frame ``nonce ‖ ciphertext ‖ tag`` (spec §5.3)."""
    ct, tag = seal_bytes(plaintext, key=key, cipher=cipher, nonce=nonce)
    return nonce + ct + tag


def open_binary(frame: bytes, *, key: bytes, cipher: Cipher) -> Result[bytes, CryptoProblem]:
    """Decrypt a binary frame ``nonce ‖ ciphertext ‖ tag``."""
    n = cipher.nonce_len
    if len(frame) < n + TAG_LEN:
        return Failure(CryptoProblem("bad-wrapper", f"binary frame of {len(frame)} bytes is too short"))
    return open_bytes(frame[n:-TAG_LEN], frame[-TAG_LEN:], key=key, cipher=cipher, nonce=frame[:n])


# ---- key derivation (spec §4.3, §4.4) -----------------------------------------------------------


def _envelope_for(iv: bytes, password: str, length: int = 48) -> str:
    digest = hashlib.sha256(iv + password.encode("utf-8")).digest()
    return (iv + digest).hex()[:length]


def client_envelope(password: str, iv: bytes) -> str:
    """The 48-hex-character password envelope for an 8-byte IV (spec §4.3 step 1)."""
    if len(iv) != 8:
        raise LocalProtocolError("the password handshake IV is 8 bytes")
    return _envelope_for(iv, password)


def verify_envelope(envelope: object, password: str, *, own_iv: bytes) -> Result[bytes, CryptoProblem]:
    """Check the hub's envelope against the password (spec §4.3 step 5); returns the hub IV.

    ``wrong-password`` means the hub does not know this password; ``bad-envelope`` means the
    value is malformed or reflects our own IV.
    """
    if not isinstance(envelope, str) or not 48 <= len(envelope) <= 80:
        return Failure(CryptoProblem("bad-envelope", "envelope missing or not 48..80 characters"))
    try:
        iv = bytes.fromhex(envelope[:16])
    except ValueError:
        return Failure(CryptoProblem("bad-envelope", "envelope IV is not hex"))
    if iv == own_iv:
        return Failure(CryptoProblem("bad-envelope", "hub reflected our own IV"))
    expected = _envelope_for(iv, password, len(envelope))
    if not hmac.compare_digest(expected, envelope.lower()):
        return Failure(CryptoProblem("wrong-password", "the hub's envelope does not match this password"))
    return Success(iv)


def derive_password_key(password: str, client_iv: bytes, hub_iv: bytes) -> bytes:
    """PBKDF2-HMAC-SHA256(password, salt = iv_c XOR iv_h, 100000, 32 bytes) (spec §4.3 step 4)."""
    if len(client_iv) != 8 or len(hub_iv) != 8:
        raise LocalProtocolError("password handshake IVs are 8 bytes")
    salt = bytes(a ^ b for a, b in zip(client_iv, hub_iv, strict=True))
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, PBKDF2_ITERATIONS, 32)


#: Why a ``crypto_key`` cannot key the pre-shared path (the identity loads such a key, as 0.4.7 did).
PRESHARED_KEY_RULE = "crypto_key must have at least 16 characters, the first 16 ASCII (the hub uses crypto_key[:16])"


def usable_preshared_key(crypto_key: str) -> bytes | None:
    """The AES key of the pre-shared path, or None when ``crypto_key`` cannot give one (:data:`PRESHARED_KEY_RULE`)."""
    head = crypto_key[:16]
    return head.encode("ascii") if len(head) == 16 and head.isascii() else None


def preshared_key(crypto_key: str) -> bytes:
    """The AES key of the pre-shared path: the first 16 characters, ASCII (spec §4.4).

    Raises:
        LocalProtocolError: ``crypto_key`` is shorter than 16 characters or not ASCII there.
    """
    key = usable_preshared_key(crypto_key)
    if key is None:
        raise LocalProtocolError(PRESHARED_KEY_RULE)
    return key


# ---- the generation-1 SecureChannel -------------------------------------------------------------


class LegacyChannel:
    """Seals and opens v1 frames with one negotiated key, cipher and encoding.

    Text frames carry the JSON wrapper; binary frames carry ``nonce ‖ ct ‖ tag`` of a
    bitstring. BINARY messages are always sealed as binary frames.
    """

    def __init__(self, *, key: bytes, cipher: Cipher, encoding: Encoding, entropy: Entropy) -> None:
        _check_key(key, cipher)
        self._key = key
        self._cipher = cipher
        self._encoding = encoding
        self._entropy = entropy

    def __repr__(self) -> str:
        return f"LegacyChannel(cipher={self._cipher.value}, encoding={self._encoding.value})"

    @property
    def generation(self) -> int:
        return 1

    @property
    def cipher(self) -> Cipher:
        return self._cipher

    @property
    def encoding(self) -> Encoding:
        return self._encoding

    def _nonce(self) -> bytes:
        nonce = self._entropy(self._cipher.nonce_len)
        if len(nonce) != self._cipher.nonce_len:
            raise LocalProtocolError("entropy returned the wrong number of bytes")
        return nonce

    def seal(self, message: HiveMessage, *, binary: bool = False) -> list[Frame]:
        """Encrypt one message: a wrapper text frame, or a binary frame if ``binary`` or BINARY."""
        if binary or message.msg_type is MsgType.BINARY:
            plain = encode_bitstring(message)
            return [seal_binary(plain, key=self._key, cipher=self._cipher, nonce=self._nonce())]
        text = encode_json(message)
        return [seal_wrapper(text, key=self._key, cipher=self._cipher, encoding=self._encoding, nonce=self._nonce())]

    def open(self, frame: Frame) -> Result[HiveMessage | None, FrameProblem]:
        """Decrypt one inbound frame (text wrapper or binary). A cleartext text frame is a ``downgrade``."""
        if isinstance(frame, str):
            parsed = parse_json_object(frame)
            if not isinstance(parsed, Success):
                return Failure(parsed.failure())
            obj = parsed.unwrap()
            if "ciphertext" not in obj:
                return Failure(FrameProblem("downgrade", "cleartext frame after the key exists"))
            text = open_wrapper(obj, key=self._key, cipher=self._cipher, encoding=self._encoding)
            if not isinstance(text, Success):
                return Failure(text.failure().as_frame_problem())
            return decode_json(text.unwrap()).map(_optional)
        plain = open_binary(bytes(frame), key=self._key, cipher=self._cipher)
        if not isinstance(plain, Success):
            return Failure(plain.failure().as_frame_problem())
        return decode_bitstring(plain.unwrap()).map(_optional)


def _optional(message: HiveMessage) -> HiveMessage | None:
    return message
