"""Item 2: codec throughput. encode + encrypt + decrypt + decode of one BUS message.

One *round trip* is what a client does for one message out and one in: build
the BUS envelope from (type, data, context), serialize it, encrypt it into the
wire frame, then decrypt that frame, parse it and get the bus message back.

Contenders, all on the same message and the same wire format (legacy v1,
AES-GCM, JSON-HEX wrapper, 16-byte pre-shared key; spec §5):

* ``thalovant``: ``codec.bus_message`` + ``LegacyChannel.seal`` / ``.open`` + ``HiveMessage.bus()``.
* ``reference``: what thalovant 0.4.7 runs: ``HiveMessage(BUS, Message(...))`` +
  ``serialize_message`` + ``encrypt_as_json`` / ``decrypt_from_json`` + ``HiveMessage(**json.loads(...))``
  (hivemind_bus_client 0.4.4, pycryptodomex), measured in the reference venv.
* ``floor``: the same bytes with nothing but ``json`` and ``cryptography``'s ``AESGCM``
  (one AEAD object, no validation).

A second table does the same for the v3 Noise transport (spec §7.7: ChaCha20-Poly1305,
marker byte, 65000-byte chunks): ``NoiseChannel`` against a ``json`` + ``ChaCha20Poly1305``
floor. The reference 0.4.7 has no v3.

Message sizes are the length of the inner bus message's JSON (200 B, 2 KB, 64 KB); the
HiveMessage envelope around it adds about 150 bytes.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from benchmarks._timing import measure
from benchmarks.refvenv import run_worker
from thalovant.core.handshake.noise import SUITE_CHACHA, CipherState
from thalovant.core.handshake.v1_crypto import Cipher, Encoding, LegacyChannel, preshared_key
from thalovant.core.handshake.v3_channel import NoiseChannel
from thalovant.core.wire.codec import bus_message
from thalovant.core.wire.message import BusMessage, HiveMessage

__all__ = ["SIZES", "render", "run", "workload"]

SIZES: tuple[tuple[str, int], ...] = (("200 B", 200), ("2 KB", 2048), ("64 KB", 65536))
CRYPTO_KEY = "a1b2c3d4e5f60718"  # a 16-character pre-shared key, as hub 4.x stores it
SESSION = "s1"


def workload(size: int) -> dict[str, Any]:
    """A ``speak`` bus message whose JSON is exactly ``size`` bytes (the context a hub needs, no more)."""
    context = {"destination": "HiveMind", "session": {"session_id": SESSION}}

    def build(n: int) -> dict[str, Any]:
        return {"type": "speak", "data": {"utterance": "x" * n}, "context": context}

    def length(n: int) -> int:
        wl = build(n)
        msg = bus_message(BusMessage(type=wl["type"], data=wl["data"], context=wl["context"]), session_id=SESSION)
        return len(json.dumps(msg.payload, ensure_ascii=False).encode("utf-8"))

    base = length(0)
    if size < base:
        raise ValueError(f"the smallest message is {base} bytes")
    wl = build(size - base)
    assert length(size - base) == size
    return wl


# ---- contenders ---------------------------------------------------------------------------------


def ours_v1(wl: dict[str, Any]) -> Callable[[], object]:
    channel = LegacyChannel(
        key=preshared_key(CRYPTO_KEY), cipher=Cipher.AES_GCM, encoding=Encoding.JSON_HEX, entropy=os.urandom
    )
    typ, data, context = wl["type"], wl["data"], wl["context"]

    def round_trip() -> object:
        out = bus_message(BusMessage(type=typ, data=data, context=context), session_id=SESSION)
        (frame,) = channel.seal(out)
        back = channel.open(frame).unwrap()
        assert back is not None
        return back.bus()

    return round_trip


def floor_v1(wl: dict[str, Any]) -> Callable[[], object]:
    aead = AESGCM(CRYPTO_KEY.encode())
    envelope: dict[str, Any] = {
        "msg_type": "bus",
        "payload": wl,
        "metadata": {},
        "route": [],
        "node": None,
        "target_site_id": None,
        "target_pubkey": None,
        "source_peer": None,
    }
    dumps, loads, urandom = json.dumps, json.loads, os.urandom

    def round_trip() -> object:
        nonce = urandom(16)
        sealed = aead.encrypt(nonce, dumps(envelope, ensure_ascii=False).encode(), None)
        wire = dumps({"ciphertext": sealed[:-16].hex(), "tag": sealed[-16:].hex(), "nonce": nonce.hex()})
        obj = loads(wire)
        plain = aead.decrypt(bytes.fromhex(obj["nonce"]), bytes.fromhex(obj["ciphertext"] + obj["tag"]), None)
        return loads(plain)["payload"]

    return round_trip


def _noise_pair() -> tuple[NoiseChannel, NoiseChannel]:
    k1, k2 = os.urandom(32), os.urandom(32)
    client = NoiseChannel(
        send=CipherState(SUITE_CHACHA, k1),
        receive=CipherState(SUITE_CHACHA, k2),
        pattern="XXpsk2",
        suite=SUITE_CHACHA,
        local_static=b"c" * 32,
        remote_static=b"h" * 32,
    )
    hub = NoiseChannel(
        send=CipherState(SUITE_CHACHA, k2),
        receive=CipherState(SUITE_CHACHA, k1),
        pattern="XXpsk2",
        suite=SUITE_CHACHA,
        local_static=b"h" * 32,
        remote_static=b"c" * 32,
    )
    return client, hub


def ours_v3(wl: dict[str, Any]) -> Callable[[], object]:
    client, hub = _noise_pair()
    typ, data, context = wl["type"], wl["data"], wl["context"]

    def round_trip() -> object:
        out = bus_message(BusMessage(type=typ, data=data, context=context), session_id=SESSION)
        back: HiveMessage | None = None
        for frame in client.seal(out):
            back = hub.open(frame).unwrap()
        assert back is not None
        return back.bus()

    return round_trip


def floor_v3(wl: dict[str, Any]) -> Callable[[], object]:
    key = os.urandom(32)
    aead = ChaCha20Poly1305(key)
    envelope: dict[str, Any] = {
        "msg_type": "bus",
        "payload": wl,
        "metadata": {},
        "route": [],
        "node": None,
        "target_site_id": None,
        "target_pubkey": None,
        "source_peer": None,
    }
    counter = [0, 0]
    dumps, loads, pack = json.dumps, json.loads, struct.pack

    def round_trip() -> object:
        body = dumps(envelope, ensure_ascii=False).encode()
        if len(body) <= 65000:
            pieces = [b"\x00" + body]
        else:
            chunks = [body[i : i + 65000] for i in range(0, len(body), 65000)]
            pieces = [b"\x02" + chunks[0], *(b"\x04" + c for c in chunks[1:-1]), b"\x05" + chunks[-1]]
        frames = []
        for p in pieces:
            frames.append(aead.encrypt(b"\0\0\0\0" + pack("<Q", counter[0]), p, b""))
            counter[0] += 1
        got = []
        for f in frames:
            got.append(aead.decrypt(b"\0\0\0\0" + pack("<Q", counter[1]), f, b"")[1:])
            counter[1] += 1
        return loads(b"".join(got))["payload"]

    return round_trip


# ---- run / render -------------------------------------------------------------------------------


def run(*, quick: bool = False) -> dict[str, Any]:
    """Measure every contender at every size; the reference runs in its own venv."""
    samples = 30 if quick else 150
    workloads = {label: workload(size) for label, size in SIZES}
    rows: list[dict[str, Any]] = []
    for label, wl in workloads.items():
        ours_fn, floor_fn = ours_v1(wl), floor_v1(wl)
        ours_res = ours_fn()
        if ours_res != BusMessage(type=wl["type"], data=wl["data"], context=wl["context"]):
            raise RuntimeError("thalovant round trip changed the message")
        if floor_fn() != wl:
            raise RuntimeError("floor round trip changed the message")
        rows.append({"proto": "v1", "size": label, "impl": "thalovant", **measure(ours_fn, samples=samples)})
        rows.append({"proto": "v1", "size": label, "impl": "floor", **measure(floor_fn, samples=samples)})
        rows.append({"proto": "v3", "size": label, "impl": "thalovant", **measure(ours_v3(wl), samples=samples)})
        rows.append({"proto": "v3", "size": label, "impl": "floor", **measure(floor_v3(wl), samples=samples)})
    result: dict[str, Any] = {"name": "codec", "status": "ok", "rows": rows, "samples": samples}
    try:
        ref = run_worker(
            {
                "task": "codec",
                "key": CRYPTO_KEY,
                "samples": samples,
                "workloads": [{"label": k, **v} for k, v in workloads.items()],
            }
        )
    except (RuntimeError, OSError) as exc:
        result["reference_error"] = str(exc)[-400:]
    else:
        result["reference_versions"] = ref["versions"]
        for r in ref["results"]:
            label = r.pop("label")
            rows.append({"proto": "v1", "size": label, "impl": "reference", **r})
    return result


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def render(result: dict[str, Any]) -> list[str]:
    """Markdown for RESULTS.md."""
    by = {(r["proto"], r["size"], r["impl"]): r for r in result["rows"]}
    sizes = {label: n for label, n in SIZES}
    lines = [
        "Round trip = build BUS envelope + serialize + encrypt into the wire frame + decrypt + parse + "
        "get the bus message back. Times in microseconds per round trip "
        f"({result['samples']} samples, each the mean of a batch); MB/s counts message bytes through one round trip.",
        "",
        "**v1 (hub 4.x): AES-GCM, JSON-HEX wrapper, 16-byte pre-shared key**",
        "",
        "| size | thalovant p50 / p95 (µs) | reference p50 / p95 (µs) | floor p50 / p95 (µs) | thalovant MB/s "
        "| reference ÷ thalovant (target ≥ 2x) | thalovant ÷ floor (target ≤ 1.5x) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, n in sizes.items():
        ours, ref, flo = (by.get(("v1", label, k)) for k in ("thalovant", "reference", "floor"))

        def cell(r: dict[str, Any] | None) -> str:
            return f"{_us(r['median'])} / {_us(r['p95'])}" if r else "not run"

        mbs = f"{n / ours['median'] / 1e6:,.1f}" if ours else "n/a"
        lines.append(
            f"| {label} | {cell(ours)} | {cell(ref)} | {cell(flo)} | {mbs} "
            f"| {_ratio(ref and ref['median'], ours and ours['median'])} "
            f"| {_ratio(ours and ours['median'], flo and flo['median'])} |"
        )
    if "reference_error" in result:
        lines += ["", f"Reference not measured: `{result['reference_error']}`"]
    lines += [
        "",
        "**v3 (hub 5.x): Noise transport, ChaCha20-Poly1305, marker byte, 65000-byte chunks** "
        "(the reference 0.4.7 has no v3)",
        "",
        "| size | thalovant p50 / p95 (µs) | floor p50 / p95 (µs) | thalovant ÷ floor |",
        "|---|---|---|---|",
    ]
    for label in sizes:
        ours, flo = by.get(("v3", label, "thalovant")), by.get(("v3", label, "floor"))
        if ours and flo:
            lines.append(
                f"| {label} | {_us(ours['median'])} / {_us(ours['p95'])} "
                f"| {_us(flo['median'])} / {_us(flo['p95'])} | {_ratio(ours['median'], flo['median'])} |"
            )
    return lines
