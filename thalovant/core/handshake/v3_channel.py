"""Protocol v3 transport: the marked-plaintext framing and the Noise ``SecureChannel``.

Theory of operation
-------------------
After ``Split()`` every message in both directions is one or more Noise transport messages
(spec §7.7). Each decrypted plaintext is ``marker (1 byte) || body``:

====== ===========================================
0x00   a complete JSON HiveMessage (UTF-8)
0x01   a complete bitstring frame (spec §6)
0x02   first chunk of a JSON message
0x03   first chunk of a bitstring message
0x04   middle chunk
0x05   last chunk
====== ===========================================

Bodies above 65000 bytes are cut into 65000-byte chunks sent back to back, so one Noise
message never exceeds 65000 + 1 + 16 bytes (the Noise cap is 65535). :class:`Reassembler`
joins them and enforces the order: a complete frame inside an open chunk sequence, or a
continuation without a first chunk, is fatal; so is a reassembled body above 32 MiB.

:class:`NoiseChannel` puts this on top of the two transport :class:`CipherState` objects.
Each direction has its own counter starting at 0; the AD is empty (spec §7.6).

Rule 1: ``open`` never raises. A decryption or framing failure is fatal for the channel (a
Noise counter cannot resynchronise), so every later ``open`` fails with ``channel-failed``.
A body that decrypts but does not parse is reported and is *not* fatal.

Rule 2: key material never appears in a repr.
"""

from __future__ import annotations

import enum
from typing import Final

from returns.result import Failure, Result, Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.noise import MAX_NOISE_MESSAGE, CipherState, NoiseProblem
from thalovant.core.wire.bitstring import decode_bitstring, encode_bitstring
from thalovant.core.wire.codec import decode_json, encode_json
from thalovant.core.wire.frame import Frame, FrameProblem
from thalovant.core.wire.message import HiveMessage

__all__ = [
    "CHUNK_BODY",
    "MAX_REASSEMBLED",
    "BodyKind",
    "NoiseChannel",
    "Reassembler",
    "frame_plaintexts",
]

CHUNK_BODY: Final = 65000
MAX_REASSEMBLED: Final = 32 * 1024 * 1024


class BodyKind(enum.Enum):
    JSON = 0
    BITSTRING = 1


MARK_JSON: Final = 0x00
MARK_BITSTRING: Final = 0x01
MARK_FIRST_JSON: Final = 0x02
MARK_FIRST_BITSTRING: Final = 0x03
MARK_MIDDLE: Final = 0x04
MARK_LAST: Final = 0x05


def frame_plaintexts(kind: BodyKind, body: bytes) -> list[bytes]:
    """Cut one message body into marked Noise plaintexts (spec §7.7).

    >>> [p[:1] for p in frame_plaintexts(BodyKind.JSON, b"{}")]
    [b'\\x00']
    >>> [(p[0], len(p)) for p in frame_plaintexts(BodyKind.BITSTRING, bytes(130001))]
    [(3, 65001), (4, 65001), (5, 2)]
    """
    if len(body) > MAX_REASSEMBLED:
        raise LocalProtocolError(f"message of {len(body)} bytes exceeds the 32 MiB v3 limit")
    if len(body) <= CHUNK_BODY:
        return [bytes([kind.value]) + body]
    chunks = [body[i : i + CHUNK_BODY] for i in range(0, len(body), CHUNK_BODY)]
    first = MARK_FIRST_JSON if kind is BodyKind.JSON else MARK_FIRST_BITSTRING
    out = [bytes([first]) + chunks[0]]
    out += [bytes([MARK_MIDDLE]) + c for c in chunks[1:-1]]
    out.append(bytes([MARK_LAST]) + chunks[-1])
    return out


class Reassembler:
    """Joins marked plaintexts back into complete bodies; strict about order (spec §7.7)."""

    __slots__ = ("_kind", "_parts", "_size")

    def __init__(self) -> None:
        self._kind: BodyKind | None = None
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def in_progress(self) -> bool:
        return self._kind is not None

    def feed(self, plaintext: bytes) -> Result[tuple[BodyKind, bytes] | None, NoiseProblem]:
        """One decrypted plaintext in; a complete ``(kind, body)``, ``None`` (partial) or a problem."""
        if not plaintext:
            return Failure(NoiseProblem("bad-marker", "empty transport plaintext"))
        marker, body = plaintext[0], plaintext[1:]
        if marker in (MARK_JSON, MARK_BITSTRING, MARK_FIRST_JSON, MARK_FIRST_BITSTRING):
            if self._kind is not None:
                return Failure(NoiseProblem("bad-marker", "a new message started inside a chunk sequence"))
            kind = BodyKind.JSON if marker in (MARK_JSON, MARK_FIRST_JSON) else BodyKind.BITSTRING
            if marker in (MARK_JSON, MARK_BITSTRING):
                return Success((kind, body))
            self._kind, self._parts, self._size = kind, [body], len(body)
            return Success(None)
        if marker not in (MARK_MIDDLE, MARK_LAST):
            return Failure(NoiseProblem("bad-marker", f"unknown transport marker 0x{marker:02x}"))
        if self._kind is None:
            return Failure(NoiseProblem("bad-marker", "a continuation chunk without a first chunk"))
        self._size += len(body)
        if self._size > MAX_REASSEMBLED:
            return Failure(NoiseProblem("too-long", "reassembled message exceeds 32 MiB"))
        self._parts.append(body)
        if marker == MARK_MIDDLE:
            return Success(None)
        kind, whole = self._kind, b"".join(self._parts)
        self._kind, self._parts, self._size = None, [], 0
        return Success((kind, whole))


# ---- the channel ---------------------------------------------------------------------------------


class NoiseChannel:
    """A ``SecureChannel`` (generation 3): every message is one or more Noise transport frames.

    Built by :class:`NoiseHandshake` after ``Split()``; the session never constructs one.
    Outbound frames are ``bytes`` (WS binary opcode, base64 over HTTP, raw over MQTT).
    A decryption or framing failure on an inbound frame is fatal (spec §7.6, §7.7): the
    channel stays failed and every later ``open`` fails with ``channel-failed``.
    """

    __slots__ = ("_failed", "_local_static", "_reasm", "_recv", "_remote_static", "_send", "pattern", "suite")

    def __init__(
        self,
        *,
        send: CipherState,
        receive: CipherState,
        pattern: str,
        suite: str,
        local_static: bytes,
        remote_static: bytes,
    ) -> None:
        self._send = send
        self._recv = receive
        self._reasm = Reassembler()
        self._failed = False
        self._local_static = local_static
        self._remote_static = remote_static
        self.pattern = pattern
        self.suite = suite

    def __repr__(self) -> str:
        return (
            f"NoiseChannel(pattern={self.pattern!r}, suite={self.suite!r}, sent={self._send.nonce}, "
            f"received={self._recv.nonce}, failed={self._failed})"
        )

    @property
    def generation(self) -> int:
        return 3

    @property
    def hub_static(self) -> bytes:
        """The hub's authenticated static X25519 public key (raw 32 bytes)."""
        return self._remote_static

    @property
    def client_static(self) -> bytes:
        """This client's static X25519 public key (raw 32 bytes)."""
        return self._local_static

    @property
    def failed(self) -> bool:
        return self._failed

    def seal(self, message: HiveMessage, *, binary: bool = False) -> list[Frame]:
        """Encrypt one message into Noise transport frames (spec §7.7).

        Args:
            message: the message to send.
            binary: send it as a bitstring (marker 0x01) instead of JSON (marker 0x00).

        Returns:
            One frame, or several for bodies above 65000 bytes; send them contiguously.

        Raises:
            LocalProtocolError: the message cannot be encoded, is over 32 MiB, or the send
                counter is exhausted.
        """
        if binary or isinstance(message.payload, bytes | bytearray):
            kind, body = BodyKind.BITSTRING, encode_bitstring(message)
        else:
            kind, body = BodyKind.JSON, encode_json(message).encode("utf-8")
        return [self._send.encrypt_with_ad(b"", p) for p in frame_plaintexts(kind, body)]

    def open(self, frame: Frame) -> Result[HiveMessage | None, FrameProblem]:
        """Decrypt one inbound frame.

        Returns:
            ``Success(message)``, ``Success(None)`` for a chunk of an unfinished message, or
            ``Failure(FrameProblem)``: ``downgrade`` (a text frame), ``auth-failed``,
            ``bad-frame``, ``channel-failed`` (all fatal), or a codec problem for a body that
            decrypted fine but does not parse (not fatal).
        """
        if self._failed:
            return Failure(FrameProblem("channel-failed", "an earlier Noise frame failed"))
        if not isinstance(frame, bytes | bytearray):
            self._failed = True
            return Failure(FrameProblem("downgrade", "text frame after the Noise handshake"))
        if len(frame) > MAX_NOISE_MESSAGE:
            self._failed = True
            return Failure(FrameProblem("bad-frame", f"Noise message of {len(frame)} bytes exceeds 65535"))
        plain = self._recv.decrypt_with_ad(b"", bytes(frame))
        if not isinstance(plain, Success):
            self._failed = True
            problem = plain.failure()
            code = "auth-failed" if problem.code == "auth-failed" else "bad-frame"
            return Failure(FrameProblem(code, problem.detail))
        piece = self._reasm.feed(plain.unwrap())
        if not isinstance(piece, Success):
            self._failed = True
            return Failure(FrameProblem("bad-frame", piece.failure().detail))
        whole = piece.unwrap()
        if whole is None:
            return Success(None)
        kind, body = whole
        if kind is BodyKind.JSON:
            return decode_json(body).map(_some)
        return decode_bitstring(body).map(_some)


def _some(message: HiveMessage) -> HiveMessage | None:
    return message
