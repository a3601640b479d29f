"""The three uncommon wrapper encodings of spec §5.2: basE91, Z85B and Z85P.

Theory of operation
-------------------
thalovant never *offers* these (spec §4.8 recommends JSON-HEX / JSON-B64),
but a hub may still be configured to prefer them, so the client can decode
and encode all seven. Each decoder raises ``ValueError`` on text outside its
alphabet or of an impossible length; ``crypto.decode_text`` turns that into a
``Failure``.

* basE91 (Henke): bits are packed little-endian; a 13-bit group is used when
  its value exceeds 88, else 14 bits; each group becomes two characters,
  ``v % 91`` first.
* Z85B: zero-pad to a multiple of 4 bytes, read each word little-endian and
  write 5 digits least significant first; drop as many trailing characters
  as padding bytes were added.
* Z85P: one raw character (code 0..3) with the padding count, then standard
  Z85 (big-endian words, most significant digit first) of the zero-padded
  input.
"""

from __future__ import annotations

__all__ = ["b91decode", "b91encode", "z85b_decode", "z85b_encode", "z85p_decode", "z85p_encode"]

_B91 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&()*+,./:;<=>?@[]^_`{|}~"'
_B91_INDEX = {c: i for i, c in enumerate(_B91)}
_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_INDEX = {c: i for i, c in enumerate(_Z85)}


def b91encode(data: bytes) -> str:
    out: list[str] = []
    acc = 0
    nbits = 0
    for byte in data:
        acc |= byte << nbits
        nbits += 8
        if nbits > 13:
            value = acc & 0x1FFF
            if value > 88:
                acc >>= 13
                nbits -= 13
            else:
                value = acc & 0x3FFF
                acc >>= 14
                nbits -= 14
            out.append(_B91[value % 91])
            out.append(_B91[value // 91])
    if nbits:
        out.append(_B91[acc % 91])
        if nbits > 7 or acc > 90:
            out.append(_B91[acc // 91])
    return "".join(out)


def b91decode(text: str) -> bytes:
    out = bytearray()
    acc = 0
    nbits = 0
    pending = -1
    for char in text:
        digit = _B91_INDEX.get(char)
        if digit is None:
            raise ValueError("character outside the basE91 alphabet")
        if pending < 0:
            pending = digit
            continue
        pending += digit * 91
        acc |= pending << nbits
        nbits += 13 if (pending & 0x1FFF) > 88 else 14
        while nbits > 7:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
        pending = -1
    if pending >= 0:
        out.append((acc | pending << nbits) & 0xFF)
    return bytes(out)


def _z85_digits(text: str) -> list[int]:
    digits = [_Z85_INDEX.get(c, -1) for c in text]
    if any(d < 0 for d in digits):
        raise ValueError("character outside the Z85 alphabet")
    return digits


def z85b_encode(data: bytes) -> str:
    pad = -len(data) % 4
    padded = data + b"\x00" * pad
    out: list[str] = []
    for i in range(0, len(padded), 4):
        word = int.from_bytes(padded[i : i + 4], "little")
        for _ in range(5):
            out.append(_Z85[word % 85])
            word //= 85
    return "".join(out[: len(out) - pad])


def z85b_decode(text: str) -> bytes:
    pad = -len(text) % 5
    if pad == 4:
        raise ValueError("impossible Z85B length")
    digits = _z85_digits(text) + [0] * pad
    out = bytearray()
    for i in range(0, len(digits), 5):
        word = 0
        for d in reversed(digits[i : i + 5]):
            word = word * 85 + d
        if word > 0xFFFFFFFF:
            raise ValueError("Z85B group out of range")
        out += word.to_bytes(4, "little")
    return bytes(out[: len(out) - pad])


def z85p_encode(data: bytes) -> str:
    pad = -len(data) % 4
    padded = data + b"\x00" * pad
    out: list[str] = [chr(pad)]
    for i in range(0, len(padded), 4):
        word = int.from_bytes(padded[i : i + 4], "big")
        group = []
        for _ in range(5):
            group.append(_Z85[word % 85])
            word //= 85
        out.extend(reversed(group))
    return "".join(out)


def z85p_decode(text: str) -> bytes:
    if not text or ord(text[0]) > 3 or (len(text) - 1) % 5:
        raise ValueError("not Z85P text")
    pad = ord(text[0])
    digits = _z85_digits(text[1:])
    out = bytearray()
    for i in range(0, len(digits), 5):
        word = 0
        for d in digits[i : i + 5]:
            word = word * 85 + d
        if word > 0xFFFFFFFF:
            raise ValueError("Z85P group out of range")
        out += word.to_bytes(4, "big")
    if pad > len(out):
        raise ValueError("Z85P padding longer than the data")
    return bytes(out[: len(out) - pad])
