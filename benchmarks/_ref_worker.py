"""Reference-side measurements, run by the reference venv's python (thalovant 0.4.7).

Not part of the ``benchmarks`` package at run time: ``python _ref_worker.py`` is
started by :mod:`benchmarks.codec` / :mod:`benchmarks.handshake` with the
reference venv's interpreter. It reads one JSON job on stdin and writes one
JSON result on stdout. Only the standard library, ``_timing`` (next to this
file) and the reference venv's packages are imported.

Jobs:
    {"task": "codec", "key": str, "samples": int, "workloads": [{"label", "type", "data", "context"}]}
    {"task": "handshake", "password": str, "samples": int}
    {"task": "versions"}
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from importlib import metadata
from typing import Any

import _timing  # type: ignore[import-not-found]  # sibling file; sys.path[0] is this directory


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in (
        "thalovant",
        "hivemind_bus_client",
        "ovos-bus-client",
        "poorman-handshake",
        "pycryptodomex",
        "cryptography",
        "bitstring",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def codec(job: dict[str, Any]) -> dict[str, Any]:
    """encode+encrypt+decrypt+decode of one BUS message, the way 0.4.7 / bus client 0.4.4 do it."""
    from hivemind_bus_client.encryption import decrypt_from_json, encrypt_as_json  # type: ignore[import-not-found]
    from hivemind_bus_client.message import HiveMessage, HiveMessageType  # type: ignore[import-not-found]
    from hivemind_bus_client.util import serialize_message  # type: ignore[import-not-found]
    from ovos_bus_client.message import Message  # type: ignore[import-not-found]

    key = job["key"]
    results = []
    for wl in job["workloads"]:
        typ, data, context = wl["type"], wl["data"], wl["context"]

        def round_trip(typ: str = typ, data: Any = data, context: Any = context) -> Any:
            hm = HiveMessage(HiveMessageType.BUS, Message(typ, data, context))
            wire = encrypt_as_json(key, serialize_message(hm), cipher="AES-GCM", encoding="JSON-HEX")
            text = decrypt_from_json(key, wire, cipher="AES-GCM", encoding="JSON-HEX")
            back = HiveMessage(**json.loads(text))
            return back.payload, len(wire)

        msg, wire_len = round_trip()
        if msg.msg_type != typ or msg.data != data:  # the round trip must give back what went in
            raise SystemExit(f"reference round trip changed the message for {wl['label']}")
        stats = _timing.measure(round_trip, samples=job["samples"])
        stats.update(label=wl["label"], wire_bytes=wire_len)
        results.append(stats)
    return {"results": results}


def handshake(job: dict[str, Any]) -> dict[str, Any]:
    """Client-side cost of the password handshake as 0.4.7 does it (poorman-handshake), hub side untimed."""
    from hivemind_bus_client.encryption import encrypt_as_json  # type: ignore[import-not-found,unused-ignore]
    from poorman_handshake import PasswordHandShake  # type: ignore[import-not-found]

    password = job["password"]
    hello = json.dumps({"msg_type": "hello", "payload": {"session": {"session_id": "bench"}}})
    totals, kdfs = [], []
    for _ in range(job["samples"]):
        hub = PasswordHandShake(password)
        start = time.perf_counter()
        client = PasswordHandShake(password)
        env_c = client.generate_handshake()
        spent = time.perf_counter() - start
        env_h = hub.generate_handshake()  # hub side: not billed to the client
        hub.receive_and_verify(env_c)
        start = time.perf_counter()
        if not client.receive_and_verify(env_h):
            raise SystemExit("reference password handshake did not verify")
        key = client.secret
        encrypt_as_json(key, hello, cipher="AES-GCM", encoding="JSON-HEX")
        spent += time.perf_counter() - start
        totals.append(spent)
        start = time.perf_counter()
        hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), client.salt, 100000)
        kdfs.append(time.perf_counter() - start)
    return {"password": {"total": _timing.summarize(totals), "kdf": _timing.summarize(kdfs)}}


def main() -> int:
    job = json.loads(sys.stdin.read())
    task = job.get("task")
    if task == "codec":
        out = codec(job)
    elif task == "handshake":
        out = handshake(job)
    elif task == "versions":
        out = {}
    else:
        raise SystemExit(f"unknown task {task!r}")
    out["versions"] = versions()
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
