"""Reference-client ask latency on the live hub, run by the reference venv's python (thalovant 0.4.7).

Not part of the ``benchmarks`` package at run time: :mod:`benchmarks.latency` starts
``python _ref_live_worker.py`` with the reference venv's interpreter, from a neutral working
directory and with ``XDG_CONFIG_HOME`` inside the hub's run directory (the reference writes an RSA
key there, harness pitfall P17). It reads one JSON job on stdin and writes one JSON result on stdout.

Job: ``{"identities": [path, ...], "protocol": "wss"|"https"|"mqtt", "n": int,
"settle": float | null, "attempts": int}``. ``settle`` null keeps the client's default
``reply_settle_seconds``. Identities are tried in order; each gets ``attempts`` fresh clients
(psk over WebSocket fails to connect in a fraction of attempts, pitfall P9).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def chain(exc: BaseException | None) -> str:
    parts = []
    while exc is not None and len(parts) < 4:
        parts.append(f"{type(exc).__name__}: {exc}"[:200])
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def one(ident_path: str, job: dict[str, Any]) -> dict[str, Any]:
    from thalovant import ThalovantClient, ThalovantIdentity  # type: ignore[import-not-found]

    kwargs: dict[str, Any] = {}
    if job.get("settle") is not None:
        kwargs["reply_settle_seconds"] = float(job["settle"])
    client = ThalovantClient(ThalovantIdentity.from_file(ident_path), protocol=job["protocol"], **kwargs)
    start = time.perf_counter()
    client.connect()
    out: dict[str, Any] = {"connect_s": round(time.perf_counter() - start, 4)}
    out["settle_s"] = getattr(client, "reply_settle_seconds", None)
    latencies, errors = [], []
    try:
        client.ask("warm up", timeout=10)
        for i in range(int(job["n"])):
            t = time.perf_counter()
            try:
                reply = client.ask(f"hello {i}", timeout=10)
            except Exception as exc:  # recorded, the run goes on
                errors.append(f"ask {i}: {chain(exc)}")
                continue
            latencies.append(time.perf_counter() - t)
            if reply.text != f"echo: hello {i}":
                errors.append(f"ask {i}: unexpected reply {reply.text!r}")
    finally:
        try:
            client.close()
        except Exception as exc:
            errors.append(f"close: {chain(exc)}")
    out.update(latencies_s=latencies, errors=errors[:5], n_errors=len(errors))
    return out


def main() -> int:
    job = json.loads(sys.stdin.read())
    result_out = sys.stdout
    sys.stdout = sys.stderr  # the reference client prints; keep stdout for the one JSON answer
    failures = []
    for ident_path in job["identities"]:
        for attempt in range(int(job.get("attempts", 1))):
            try:
                out = one(ident_path, job)
            except Exception as exc:
                failures.append(f"{ident_path.rsplit('/', 1)[-1]} attempt {attempt + 1}: {chain(exc)}")
                continue
            out.update(identity=ident_path.rsplit("/", 1)[-1], connect_failures=failures)
            json.dump(out, result_out)
            return 0
    json.dump({"error": "the reference client never connected", "connect_failures": failures}, result_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
