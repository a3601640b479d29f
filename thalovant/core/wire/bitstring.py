"""HIVEMIND-WIRE-1 "binarized" frames (spec §6).

Theory of operation
-------------------
A binarized frame is a bit string, most significant bit first::

    [z zero bits] 1 V [version:8 if V] code:5 C M:8 metadata:M*8
        BINARY: bin_type:4 payload-bytes       other types: payload-JSON (zlib if C)

``z`` (0..7) pads the whole thing to whole bytes, so a non-BINARY frame with
V=0 is byte aligned and a BINARY frame starts with 4 zero bits. The whole
frame is handled as one Python integer: the encoder shifts fields in, the
decoder finds the marker as the highest set bit and shifts fields out.

Refused (``Failure`` on decode, ``LocalProtocolError`` on encode):

* INTERCOM (no 5-bit code; it always travels as JSON) and codes 13..31;
* a version byte other than 1 when V=1;
* metadata longer than 255 bytes after optional compression;
* padding longer than 7 bits, metadata or payload that is not a JSON object,
  zlib data that is corrupt or inflates past :data:`MAX_INFLATED` bytes.

Only the inner payload object and the metadata travel; ``route``, ``node``,
``target_*`` and ``source_peer`` are not carried (spec §6.1).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core import jsontree
from thalovant.core.errors import LocalProtocolError
from thalovant.core.wire.frame import FrameProblem
from thalovant.core.wire.message import HiveMessage, MsgType

__all__ = ["MAX_INFLATED", "decode_bitstring", "encode_bitstring"]

#: Decompression bound for one field (spec §6.2 suggests 32 MiB).
MAX_INFLATED = 32 * 1024 * 1024

_BY_CODE: dict[int, MsgType] = {t.code: t for t in MsgType if t.code is not None}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _json_bytes(value: dict[str, Any]) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(f"bitstring field is not JSON-serializable: {exc}") from None


def encode_bitstring(message: HiveMessage, *, compress: bool | None = False) -> bytes:
    """Encode a message as a binarized frame.

    Args:
        message: the message; its ``payload`` must be bytes for BINARY and a dict otherwise.
        compress: ``False`` (default, what every hub decodes), ``True`` (zlib), or ``None``
            for "auto": build both and keep the shorter, as the hub does.

    Returns:
        The frame bytes.

    Raises:
        LocalProtocolError: INTERCOM or a payload of the wrong kind, non-JSON values, or
            metadata longer than 255 bytes.
    """
    code = message.msg_type.code
    if code is None:
        raise LocalProtocolError(f"{message.msg_type.value} has no binarized code; send it as JSON")
    binary = message.msg_type is MsgType.BINARY
    if binary != isinstance(message.payload, bytes | bytearray):
        raise LocalProtocolError("BINARY needs a bytes payload and every other type a dict payload")
    if binary and not 0 <= message.bin_type <= 15:
        raise LocalProtocolError("bin_type must fit in 4 bits")
    if compress is None:
        plain = encode_bitstring(message, compress=False)
        try:
            packed = encode_bitstring(message, compress=True)
        except LocalProtocolError:
            return plain
        return packed if len(packed) < len(plain) else plain

    meta = _json_bytes(message.metadata)
    if compress:
        meta = zlib.compress(meta)
    if len(meta) > 255:
        raise LocalProtocolError(f"metadata is {len(meta)} bytes; a binarized frame holds at most 255")

    value = 1  # marker
    value = (value << 1) | 0  # V=0: no version byte
    value = (value << 5) | code
    value = (value << 1) | int(bool(compress))
    value = (value << 8) | len(meta)
    nbits = 16
    if meta:
        value = (value << (8 * len(meta))) | int.from_bytes(meta, "big")
        nbits += 8 * len(meta)
    if isinstance(message.payload, bytes | bytearray):
        body = bytes(message.payload)
        value = (value << 4) | message.bin_type
        nbits += 4
    else:
        body = _json_bytes(message.payload)
        if compress:
            body = zlib.compress(body)
    if body:
        value = (value << (8 * len(body))) | int.from_bytes(body, "big")
        nbits += 8 * len(body)
    return value.to_bytes((nbits + 7) // 8, "big")


def _inflate(data: bytes) -> Result[bytes, FrameProblem]:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED)
    except zlib.error as exc:
        return Failure(FrameProblem("bad-bitstring", f"zlib: {exc}"))
    if inflater.unconsumed_tail:
        return Failure(FrameProblem("bad-bitstring", f"field inflates past {MAX_INFLATED} bytes"))
    if not inflater.eof:
        return Failure(FrameProblem("bad-bitstring", "truncated zlib stream"))
    return Success(out)


def _json_object(data: bytes, what: str) -> Result[dict[str, Any], FrameProblem]:
    try:
        value = jsontree.loads(data.decode("utf-8"), decoder=_DECODER)
    except jsontree.JsonTooDeep as exc:
        return Failure(FrameProblem("too-deep", f"{what}: {exc}"))
    except ValueError:  # UnicodeDecodeError included
        return Failure(FrameProblem("bad-bitstring", f"{what} is not UTF-8 JSON"))
    if not isinstance(value, dict):
        return Failure(FrameProblem("bad-bitstring", f"{what} is not a JSON object"))
    return Success(value)


def decode_bitstring(data: bytes) -> Result[HiveMessage, FrameProblem]:
    """Decode a binarized frame. Total: any bytes give a message or a ``bad-bitstring`` problem.

    Args:
        data: the frame (already decrypted, if it was encrypted).

    Returns:
        ``Success(HiveMessage)`` (``route`` etc. empty) or ``Failure(FrameProblem)``.
    """
    data = bytes(data)
    total = 8 * len(data)
    value = int.from_bytes(data, "big")
    if value == 0:
        return Failure(FrameProblem("bad-bitstring", "no marker bit"))
    pad = total - value.bit_length()
    if pad > 7:
        return Failure(FrameProblem("bad-bitstring", f"{pad} bits of padding before the marker"))
    remaining = value.bit_length() - 1  # bits after the marker

    def take(n: int) -> int:
        nonlocal remaining
        remaining -= n
        return (value >> remaining) & ((1 << n) - 1)

    if remaining < 15:
        return Failure(FrameProblem("bad-bitstring", "frame shorter than its header"))
    if take(1):
        if remaining < 22:
            return Failure(FrameProblem("bad-bitstring", "frame shorter than its header"))
        version = take(8)
        if version != 1:
            return Failure(FrameProblem("bad-bitstring", f"unsupported wire version {version}"))
    code = take(5)
    msg_type = _BY_CODE.get(code)
    if msg_type is None:
        return Failure(FrameProblem("bad-bitstring", f"unassigned msg_type code {code}"))
    compressed = bool(take(1))
    meta_len = take(8)
    extra = 4 if msg_type is MsgType.BINARY else 0
    if remaining < 8 * meta_len + extra:
        return Failure(FrameProblem("bad-bitstring", "metadata runs past the end of the frame"))
    meta_raw = take(8 * meta_len).to_bytes(meta_len, "big")
    bin_type = take(extra) if extra else 0
    if remaining % 8:
        return Failure(FrameProblem("bad-bitstring", "payload is not whole bytes"))
    body = (value & ((1 << remaining) - 1)).to_bytes(remaining // 8, "big")

    if compressed:
        meta_res = _inflate(meta_raw) if meta_raw else Success(b"")
    else:
        meta_res = Success(meta_raw)
    if not isinstance(meta_res, Success):
        return Failure(meta_res.failure())
    meta_bytes = meta_res.unwrap()
    metadata_res = _json_object(meta_bytes, "metadata") if meta_bytes else Success({})
    if not isinstance(metadata_res, Success):
        return Failure(metadata_res.failure())
    metadata = metadata_res.unwrap()

    if msg_type is MsgType.BINARY:
        return Success(HiveMessage(msg_type=msg_type, payload=body, metadata=metadata, bin_type=bin_type))
    body_res = _inflate(body) if compressed else Success(body)
    if not isinstance(body_res, Success):
        return Failure(body_res.failure())
    payload_res = _json_object(body_res.unwrap(), "payload")
    if not isinstance(payload_res, Success):
        return Failure(payload_res.failure())
    return Success(HiveMessage(msg_type=msg_type, payload=payload_res.unwrap(), metadata=metadata))
