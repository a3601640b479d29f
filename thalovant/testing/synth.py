"""The FakeHub renders speech: ``speak:synth`` answered with a TTS_AUDIO binary frame.

A hub with the ``hivemind-audio-binary-protocol`` plugin and a TTS plugin answers a client's
``speak:synth`` (``data.utterance``, ``data.lang``) with one BINARY frame of ``bin_type`` 6
(TTS_AUDIO) whose metadata names ``lang``, ``file_name`` and the ``utterance`` it speaks. The
FakeHub does the same with :func:`tiny_wav`: a short, valid WAV file whose length follows the text
(a tone, not speech), built in memory.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable
from typing import Any

from thalovant.core.bus.binary import BIN_TYPES
from thalovant.core.handshake.v1_crypto import seal_binary
from thalovant.core.wire.bitstring import encode_bitstring
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

__all__ = ["SYNTH_TYPE", "speech_frames", "tiny_wav", "tts_message"]

#: The bus type a client sends to have the hub render speech.
SYNTH_TYPE = "speak:synth"
_RATE = 8000


def tiny_wav(text: str, *, rate: int = _RATE) -> bytes:
    """A mono 16-bit PCM WAV of a 440 Hz tone, 20 ms per character of ``text`` (at least 20 ms, at most 2 s)."""
    frames = rate * min(max(len(text), 1) * 20, 2000) // 1000
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(frames))
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)  # PCM, mono, rate, byte rate, block align, bits
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(chunks)) + chunks


def tts_message(request: BusMessage) -> HiveMessage | None:
    """The TTS_AUDIO frame that answers a ``speak:synth`` request (None: it names no utterance)."""
    utterance = request.data.get("utterance")
    if not isinstance(utterance, str) or not utterance.strip():
        return None
    lang = request.data.get("lang")
    name = hashlib.md5(utterance.encode("utf-8"), usedforsecurity=False).hexdigest() + ".wav"
    metadata = {"lang": lang if isinstance(lang, str) else "en-us", "file_name": name, "utterance": utterance}
    return HiveMessage(
        msg_type=MsgType.BINARY, payload=tiny_wav(utterance), metadata=metadata, bin_type=BIN_TYPES["tts_audio"]
    )


def speech_frames(request: BusMessage, link: Any, entropy: Callable[[int], bytes]) -> list[str | bytes]:
    """The frames that carry the answer to ``request`` over the FakeHub's ``link`` (v1 key or v3 channel)."""
    message = tts_message(request)
    if message is None:
        return []
    if link.channel is not None:
        return list(link.channel.seal(message))
    if link.key is None:
        return []
    nonce = entropy(link.cipher.nonce_len)
    return [seal_binary(encode_bitstring(message), key=link.key, cipher=link.cipher, nonce=nonce)]
