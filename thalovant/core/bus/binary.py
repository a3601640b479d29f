"""``ThalovantBinary``: one BINARY frame (spec §1.4) as users see it, and the pure mapping to and from it.

A BINARY frame carries raw bytes, a 4-bit ``bin_type`` and a metadata object. :func:`binary_of` turns
a delivered :class:`~thalovant.core.wire.message.HiveMessage` into a :class:`ThalovantBinary` (or says
why not, as a value: bad frames never raise); :func:`binary_message` builds the frame a client sends.

Kinds are the spec's names in lower case (``tts_audio``, ``file``, ``raw_audio`` ...); a ``bin_type``
the spec does not name is ``binary:<n>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core.wire.message import HiveMessage, MsgType

__all__ = [
    "BIN_TYPES",
    "MAX_BINARY_BYTES",
    "BinaryProblem",
    "ThalovantBinary",
    "bin_type_of",
    "binary_message",
    "binary_of",
    "kind_of",
]

#: The spec's ``bin_type`` values (§1.4) by kind.
BIN_TYPES: Mapping[str, int] = {
    "undefined": 0,
    "raw_audio": 1,
    "numpy_image": 2,
    "file": 3,
    "stt_audio_transcribe": 4,
    "stt_audio_handle": 5,
    "tts_audio": 6,
}
_KINDS = {value: kind for kind, value in BIN_TYPES.items()}

#: The default cap on one binary frame's bytes, both ways (a typed error above it when sending;
#: a dropped frame with a note when receiving).
MAX_BINARY_BYTES = 16 * 1024 * 1024


def kind_of(bin_type: int) -> str:
    """The kind name of a ``bin_type``: ``tts_audio`` for 6, ``binary:<n>`` for one the spec does not name.

    >>> kind_of(6), kind_of(3), kind_of(11)
    ('tts_audio', 'file', 'binary:11')
    """
    return _KINDS.get(bin_type, f"binary:{bin_type}")


def bin_type_of(kind: str | int) -> int | None:
    """The ``bin_type`` of a kind name (or of ``binary:<n>``, or of an int 0..15); None when it names none.

    >>> bin_type_of("tts_audio"), bin_type_of("binary:9"), bin_type_of(3), bin_type_of("binary:99")
    (6, 9, 3, None)
    """
    if isinstance(kind, bool):
        return None
    if isinstance(kind, int):
        return kind if 0 <= kind <= 15 else None
    if kind in BIN_TYPES:
        return BIN_TYPES[kind]
    head, _, tail = kind.partition(":")
    if head == "binary" and tail.isdigit() and int(tail) <= 15:
        return int(tail)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ThalovantBinary:
    """One binary frame from (or for) the hub.

    Attributes:
        kind: ``tts_audio``, ``file``, ``raw_audio``, ... or ``binary:<n>`` for a ``bin_type`` the spec
            does not name.
        data: the bytes.
        metadata: the frame's metadata (``lang``, ``utterance``, ``file_name``, ``sample_rate`` ...).
        bin_type: the raw 4-bit type.
    """

    kind: str
    data: bytes = field(repr=False)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    bin_type: int = 0

    @property
    def utterance(self) -> str | None:
        """The text a TTS clip speaks (``metadata["utterance"]``), if the hub said."""
        value = self.metadata.get("utterance")
        return value if isinstance(value, str) else None

    @property
    def lang(self) -> str | None:
        """The language of the clip (``metadata["lang"]``), if the hub said."""
        value = self.metadata.get("lang")
        return value if isinstance(value, str) else None

    @property
    def file_name(self) -> str | None:
        """The file name the sender gave (``metadata["file_name"]``), if any."""
        value = self.metadata.get("file_name")
        return value if isinstance(value, str) else None

    def __repr__(self) -> str:
        return f"ThalovantBinary(kind={self.kind!r}, size={len(self.data)}, metadata_keys={sorted(self.metadata)!r})"


@dataclass(frozen=True, slots=True)
class BinaryProblem:
    """Why a delivered frame is not a usable binary frame (a value, never raised)."""

    reason: str


def binary_of(message: HiveMessage, *, max_bytes: int = MAX_BINARY_BYTES) -> Result[ThalovantBinary, BinaryProblem]:
    """The :class:`ThalovantBinary` a BINARY frame carries, or why it carries none.

    >>> frame = HiveMessage(msg_type=MsgType.BINARY, payload=b"RIFF", metadata={"lang": "en"}, bin_type=6)
    >>> binary_of(frame).unwrap()
    ThalovantBinary(kind='tts_audio', size=4, metadata_keys=['lang'])
    """
    if message.msg_type is not MsgType.BINARY:
        return Failure(BinaryProblem(f"not a binary frame ({message.msg_type.value})"))
    if not isinstance(message.payload, bytes):
        return Failure(BinaryProblem("a binary frame without bytes"))
    if len(message.payload) > max_bytes:
        return Failure(BinaryProblem(f"a binary frame of {len(message.payload)} bytes is over the cap of {max_bytes}"))
    metadata = dict(message.metadata) if isinstance(message.metadata, dict) else {}
    bin_type = message.bin_type if 0 <= message.bin_type <= 15 else 0
    return Success(ThalovantBinary(kind=kind_of(bin_type), data=message.payload, metadata=metadata, bin_type=bin_type))


def binary_message(binary: ThalovantBinary) -> HiveMessage:
    """The BINARY frame that sends ``binary`` (size and type are checked by the caller's door)."""
    return HiveMessage(
        msg_type=MsgType.BINARY, payload=bytes(binary.data), metadata=dict(binary.metadata), bin_type=binary.bin_type
    )
