"""Mutation fuzzing of every decoder and machine that takes bytes from a network or a file.

``python -m tests.fuzz.fuzz --count 100000`` (``make fuzz``) feeds generated inputs, seeded and so
reproducible, to each target and reports, per target, how many inputs ran and every exception that
escaped. A decoder returns a ``Result``; a machine turns bad bytes into outputs; an identity or
control-plane answer becomes a typed problem: *any* exception is a finding. The run also reports
the peak resident memory, and fails over ``--max-rss-mb``.

Inputs are mutations of valid seeds (frames, bitstrings, identity files, API bodies): bit flips,
truncations, random insertions, slices repeated, deep nesting (``[`` and ``{"a":`` thousands deep),
lone surrogates and control characters, huge and non-finite numbers. Sealed garbage (valid
encryption around mutated plaintext) reaches the parts behind the decryption.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from thalovant.core.client.connection import ConnectionState
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.control.api import parse_object, parse_retry_after, problem_for_response
from thalovant.core.handshake.v1_crypto import seal_wrapper
from thalovant.core.identity.parse import parse_identity_text
from thalovant.core.session.classify import classify_frame
from thalovant.core.wire.bitstring import decode_bitstring, encode_bitstring
from thalovant.core.wire.codec import bus_message, decode_json, encode_json, hello_message
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType
from thalovant.testing import InMemoryHubSession

_BUS = bus_message(BusMessage(type="speak", data={"utterance": "hi", "n": [1, 2.5, None, True]}), session_id="s")
_MESSAGES = [
    hello_message(session_id="fuzz-session", site_id="kitchen"),
    _BUS,
    HiveMessage(msg_type=MsgType.HANDSHAKE, payload={"handshake": False, "binarize": False, "envelope": "x" * 40}),
]
_JSON_SEEDS = [encode_json(m) for m in _MESSAGES]
_BIT_SEEDS = [encode_bitstring(m) for m in _MESSAGES] + [encode_bitstring(_BUS, compress=True)]
_IDENTITY_SEED = json.dumps(
    {
        "name": "fuzz",
        "access_key": "0123456789abcdef0123456789abcdef",
        "password": "fuzz-password",
        "crypto_key": "0123456789abcdef",
        "site_id": "kitchen",
        "host": "127.0.0.1",
        "port": 5678,
        "protocol": "wss",
        "mqtt": {"host": "127.0.0.1", "port": 1883, "topic_prefix": "hivemind/hub", "username": "u", "password": "p"},
    }
)
_API_SEEDS = [
    b'{"detail": "not found", "code": "hub_not_found"}',
    b'{"detail": [{"loc": ["body", "name"], "msg": "field required"}]}',
    b'{"token": "abc", "hubs": [{"id": "h1"}], "next_cursor": null}',
]
_NASTY = ["\ud800", "\x00", "\x1b[31m", "\u202e", "1e99999", "NaN", "-Infinity", "\\ud800", '\\"', "\ufeff"]


def _nest(rng: random.Random, inner: str) -> str:
    depth = rng.choice([100, 999, 1001, 5000, 50000])
    if rng.random() < 0.5:
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + inner + "}" * depth


def mutate_text(seed: str, rng: random.Random) -> str:
    """One mutation of ``seed`` (text)."""
    choice = rng.randrange(8)
    if choice == 0 and seed:  # truncate
        return seed[: rng.randrange(len(seed))]
    if choice == 1:  # insert nasty text
        at = rng.randrange(len(seed) + 1)
        return seed[:at] + rng.choice(_NASTY) + seed[at:]
    if choice == 2:  # random characters replace a slice
        at = rng.randrange(len(seed) + 1)
        junk = "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(1, 12)))
        return seed[:at] + junk + seed[at + rng.randrange(8) :]
    if choice == 3:  # deep nesting in place of a value, or alone
        return _nest(rng, "1") if rng.random() < 0.3 else seed.replace('"hi"', _nest(rng, '"hi"'), 1)
    if choice == 4 and seed:  # repeat a slice
        a = rng.randrange(len(seed))
        return seed[:a] + seed[a : a + rng.randrange(1, 40)] * rng.randrange(2, 50) + seed[a:]
    if choice == 5:  # a value of another JSON type
        return seed.replace('"hi"', rng.choice(["null", "[]", "{}", "1e400", "-0", "true", '"' + "x" * 5000 + '"']), 1)
    if choice == 6:  # random JSON-ish soup
        return "".join(rng.choice('{}[]:,"\\0123456789aeflnrstu ') for _ in range(rng.randrange(0, 200)))
    return "".join(chr(rng.randrange(0, 0x11000)) for _ in range(rng.randrange(0, 64)))


def mutate_bytes(seed: bytes, rng: random.Random) -> bytes:
    """One mutation of ``seed`` (bytes)."""
    data = bytearray(seed)
    choice = rng.randrange(5)
    if choice == 0 and data:  # flip bits
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if choice == 1 and data:
        return bytes(data[: rng.randrange(len(data))])
    if choice == 2:
        at = rng.randrange(len(data) + 1)
        return bytes(data[:at]) + rng.randbytes(rng.randrange(1, 64)) + bytes(data[at:])
    if choice == 3:
        return rng.randbytes(rng.randrange(0, 256))
    return mutate_text(seed.decode("latin-1"), rng).encode("utf-8", "surrogatepass")


@dataclass
class Target:
    """One thing to fuzz: ``run(rng)`` makes one input and feeds it."""

    name: str
    run: Callable[[random.Random], None]
    inputs: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)


def _decoders() -> list[Target]:
    def json_frames(rng: random.Random) -> None:
        frame = mutate_text(rng.choice(_JSON_SEEDS), rng)
        decode_json(frame)
        decode_json(frame.encode("utf-8", "surrogatepass"))
        classify_frame(frame, keyed=rng.random() < 0.5, handshaking=rng.random() < 0.5)

    def bitstrings(rng: random.Random) -> None:
        data = mutate_bytes(rng.choice(_BIT_SEEDS), rng)
        decode_bitstring(data)
        classify_frame(data, keyed=True, handshaking=False)

    def identities(rng: random.Random) -> None:
        text = mutate_text(_IDENTITY_SEED, rng)
        parse_identity_text(text)
        parse_identity_text(text.encode("utf-8", "surrogatepass"))

    def api_bodies(rng: random.Random) -> None:
        body = mutate_bytes(rng.choice(_API_SEEDS), rng)
        status = rng.choice([200, 201, 400, 401, 404, 409, 422, 429, 500, 503])
        parse_object(body, status_code=status)
        retry = mutate_text("Wed, 21 Oct 2015 07:28:00 GMT", rng) if rng.random() < 0.5 else str(rng.random() * 1e12)
        headers = [("Retry-After", retry)]
        problem_for_response(method="GET", path="/hubs", status_code=status, headers=headers, body=body)
        parse_retry_after(retry, now_epoch=1.7e9)

    return [
        Target("wire.decode_json + classify_frame", json_frames),
        Target("wire.decode_bitstring", bitstrings),
        Target("identity.parse_identity_text", identities),
        Target("control.api answers", api_bodies),
    ]


class _Connected:
    """A connected in-memory session per transport, made again when garbage ended it."""

    def __init__(self, protocol: Any, generation: int = 1) -> None:
        self.protocol, self.generation = protocol, generation
        self.session = self._new()

    def _new(self) -> InMemoryHubSession:
        creds: dict[str, Any] = {"crypto_key": "0f1e2d3c4b5a6978"}
        if self.generation == 3:
            creds = {"password": "fuzz-password", "generation": 3}
        s = InMemoryHubSession(protocol=self.protocol, reconnect=ReconnectConfig(max_attempts=2), **creds)
        s.connect()
        return s

    def get(self) -> InMemoryHubSession:
        s = self.session
        if s.connection.state is not ConnectionState.READY or len(s.outputs) > 2000:
            self.session = s = self._new()
        return s


def _machines() -> list[Target]:
    links = {p: _Connected(p) for p in ("wss", "https", "mqtt")}
    noise = {p: _Connected(p, generation=3) for p in ("wss", "https")}

    def cleartext(rng: random.Random) -> None:
        s = links[rng.choice(["wss", "https", "mqtt"])].get()
        frame: str | bytes
        if rng.random() < 0.5:
            frame = mutate_text(rng.choice(_JSON_SEEDS), rng)
            try:
                frame.encode("utf-8")
            except UnicodeEncodeError:  # no network carries a lone surrogate as text: it arrives as bad bytes
                frame = frame.encode("utf-8", "surrogatepass")
        else:
            frame = mutate_bytes(rng.choice(_BIT_SEEDS), rng)
        s.transport.inject(frame)
        s.settle()

    def v3_frames(rng: random.Random) -> None:
        s = noise[rng.choice(["wss", "https"])].get()
        s.transport.inject(mutate_bytes(rng.choice(_BIT_SEEDS), rng) if rng.random() < 0.7 else rng.randbytes(40))
        s.settle()

    def inject_sealed(plaintext: str) -> None:
        s = links["wss"].get()
        link = s.hub._link  # the hub's side of the link: its v1 key and choices
        if link is None or link.key is None:
            return
        nonce = random.Random(len(plaintext)).randbytes(link.cipher.nonce_len)
        try:
            frame = seal_wrapper(plaintext, key=link.key, cipher=link.cipher, encoding=link.encoding, nonce=nonce)
        except UnicodeEncodeError:  # a lone surrogate cannot be sent as UTF-8 by any hub
            return
        s.transport.inject(frame)
        s.settle()

    def sealed(rng: random.Random) -> None:
        inject_sealed(mutate_text(rng.choice(_JSON_SEEDS[:2]), rng))

    def deep_events(rng: random.Random) -> None:
        depth = rng.choice([10, 200, 600, 1500, 20000])
        nested = "".join(rng.choice(['{"a":', "["]) for _ in range(depth))
        closing = "".join("}" if c == "{" else "]" for c in reversed(nested.replace('{"a":', "{")))
        inject_sealed(encode_json(_BUS).replace('"hi"', nested + '"leaf"' + closing, 1))

    return [
        Target("connection: cleartext garbage (ws/http/mqtt)", cleartext),
        Target("connection: sealed garbage (ws, v1)", sealed),
        Target("connection: v3 (Noise) garbage frames (ws/http)", v3_frames),
        Target("connection: deeply nested events", deep_events),
    ]


def run(count: int, seed: int, *, budget: float | None = None) -> list[Target]:
    """Run ``count`` inputs over the targets (shared round robin); stop early past ``budget`` seconds."""
    rng = random.Random(seed)
    targets = _decoders() + _machines()
    started = time.monotonic()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    for i in range(count):
        target = targets[i % len(targets)]
        target.inputs += 1
        try:
            target.run(rng)
        except Exception as exc:  # every escaped exception is a finding
            kind = type(exc).__name__
            target.findings[kind] += 1
            if kind not in target.examples:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                place = f"{where.filename.rsplit('/', 2)[-1]}:{where.lineno}"
                target.examples[kind] = f"input #{i} (seed {seed}) at {place}: {str(exc)[:120]!r}"
        if budget is not None and time.monotonic() - started > budget:
            break
    return targets


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="inputs in all (default 100000)")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--max-rss-mb", type=float, default=400.0, help="fail above this peak RSS (MB)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    targets = run(args.count, args.seed)
    failed = False
    for t in targets:
        found = sum(t.findings.values())
        failed |= found > 0
        print(f"{t.name:48} {t.inputs:>7} inputs  {found:>5} untyped exceptions")
        for kind, example in t.examples.items():
            print(f"    {kind} x{t.findings[kind]}: {example}")
    rss = peak_rss_mb()
    print(f"total {sum(t.inputs for t in targets)} inputs in {time.monotonic() - started:.0f}s; peak RSS {rss:.0f} MB")
    if rss > args.max_rss_mb:
        print(f"FAIL: peak RSS over {args.max_rss_mb:.0f} MB")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
