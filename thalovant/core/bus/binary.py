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

from thalovant.core.errors import (
    LocalProtocolError,
    ThalovantArgumentError,
    ThalovantArgumentTypeError,
    ThalovantPayloadTooLargeError,
)
from thalovant.core.wire.bitstring import encode_bitstring
from thalovant.core.wire.message import HiveMessage, MsgType

__all__ = [
    "AUDIO_KINDS",
    "BIN_TYPES",
    "MAX_BINARY_BYTES",
    "BinaryProblem",
    "ThalovantBinary",
    "audio_metadata",
    "bin_type_of",
    "binary_message",
    "binary_of",
    "check_cap",
    "file_metadata",
    "kind_of",
    "outgoing_binary",
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
    if head == "binary" and tail.isascii() and tail.isdigit() and int(tail) <= 15:  # not "²" (isdigit, no int)
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


#: The kinds :func:`audio_metadata` describes (PCM the hub hears, transcribes, or transcribes and handles).
AUDIO_KINDS = ("raw_audio", "stt_audio_transcribe", "stt_audio_handle")
_SAMPLE_WIDTHS = (1, 2, 3, 4)
_MAX_SAMPLE_RATE = 384_000
_MAX_FILE_NAME = 200


def check_cap(name: str, value: object) -> int:
    """``value`` as a byte cap: an int (not a bool) from 1 to 1 GiB.

    Raises:
        ThalovantArgumentTypeError: not an int.
        ThalovantArgumentError: out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ThalovantArgumentTypeError(name, f"must be an int (bytes), not {type(value).__name__}")
    if not 1 <= value <= 1024**3:
        raise ThalovantArgumentError(name, "must be from 1 byte to 1 GiB")
    return value


def _payload(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise ThalovantArgumentTypeError("data", f"must be bytes, not {type(data).__name__}")


def outgoing_binary(
    data: object, kind: object = "file", metadata: object = None, *, max_bytes: int = MAX_BINARY_BYTES
) -> ThalovantBinary:
    """The :class:`ThalovantBinary` a client may send, checked at the door (nothing is sent on an error).

    ``kind``: a kind name, ``binary:<n>`` or an int 0..15; ``metadata``: a JSON object (str keys) of at
    most 255 bytes as JSON (the bitstring's limit, spec §6.1).

    >>> outgoing_binary(b"RIFF", "file", {"file_name": "a.wav"})
    ThalovantBinary(kind='file', size=4, metadata_keys=['file_name'])

    Raises:
        ThalovantArgumentTypeError: ``data`` is not bytes, or ``metadata`` not a mapping with str keys.
        ThalovantArgumentError: ``kind`` names no ``bin_type``, or ``metadata`` is not JSON or too long.
        ThalovantPayloadTooLargeError: ``data`` is over ``max_bytes``.
    """
    payload = _payload(data)
    if len(payload) > max_bytes:
        raise ThalovantPayloadTooLargeError("data", size=len(payload), limit=max_bytes)
    bin_type = bin_type_of(kind) if isinstance(kind, str | int) else None
    if bin_type is None:
        raise ThalovantArgumentError("kind", f"must be one of {', '.join(BIN_TYPES)}, binary:<0-15> or an int 0-15")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise ThalovantArgumentTypeError("metadata", "must be a mapping with str keys")
    meta = dict(metadata)
    try:  # the metadata must fit the frame: encode it once without the payload
        encode_bitstring(HiveMessage(msg_type=MsgType.BINARY, payload=b"", metadata=meta, bin_type=bin_type))
    except LocalProtocolError:
        raise ThalovantArgumentError("metadata", "must be a JSON object of at most 255 bytes as JSON") from None
    return ThalovantBinary(kind=kind_of(bin_type), data=payload, metadata=meta, bin_type=bin_type)


def audio_metadata(*, kind: object, sample_rate: object, sample_width: object, lang: object) -> dict[str, Any]:
    """The metadata of PCM audio (spec §1.4): ``sample_rate``, ``sample_width`` and, if given, ``lang``.

    >>> audio_metadata(kind="stt_audio_transcribe", sample_rate=16000, sample_width=2, lang="en-US")
    {'sample_rate': 16000, 'sample_width': 2, 'lang': 'en-US'}

    Raises:
        ThalovantArgumentError, ThalovantArgumentTypeError: a value of the wrong type or out of range.
    """
    if kind not in AUDIO_KINDS:
        raise ThalovantArgumentError("kind", f"must be one of {', '.join(AUDIO_KINDS)}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        raise ThalovantArgumentTypeError("sample_rate", f"must be an int (Hz), not {type(sample_rate).__name__}")
    if not 1 <= sample_rate <= _MAX_SAMPLE_RATE:
        raise ThalovantArgumentError("sample_rate", f"must be from 1 to {_MAX_SAMPLE_RATE} Hz")
    if sample_width not in _SAMPLE_WIDTHS or isinstance(sample_width, bool):
        raise ThalovantArgumentError("sample_width", "must be 1, 2, 3 or 4 (bytes per sample)")
    meta: dict[str, Any] = {"sample_rate": sample_rate, "sample_width": sample_width}
    if lang is not None:
        if not isinstance(lang, str) or not 0 < len(lang) <= 35:
            raise ThalovantArgumentError("lang", "must be a language tag of 1 to 35 characters")
        meta["lang"] = lang
    return meta


def file_metadata(file_name: object) -> dict[str, Any]:
    """The metadata of a FILE frame: a plain file name (no directory, not ``.``/``..``, no NUL; at most 200).

    >>> file_metadata("notes.txt")
    {'file_name': 'notes.txt'}

    Raises:
        ThalovantArgumentTypeError: not a str.
        ThalovantArgumentError: empty, too long, or a path rather than a name.
    """
    if not isinstance(file_name, str):
        raise ThalovantArgumentTypeError("file_name", f"must be a str, not {type(file_name).__name__}")
    if not 0 < len(file_name) <= _MAX_FILE_NAME:
        raise ThalovantArgumentError("file_name", f"must be 1 to {_MAX_FILE_NAME} characters")
    if file_name in (".", "..") or any(c in file_name for c in "/\\\0"):
        raise ThalovantArgumentError("file_name", "must be a plain file name (no directory part)")
    return {"file_name": file_name}
