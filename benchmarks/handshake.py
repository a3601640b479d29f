"""Item 5: handshake cost. Client CPU time from link-up to a ready session, in memory.

Our core's ``Session`` talks to the in-test hub counterparts (``tests.core.session.test_session_pair.FakeHub``
for hub 4.x, ``tests.core.handshake.test_v3.FakeNoiseHub`` for hub 5.x). Only the time spent inside
the client's ``Session`` (construction + every ``handle`` call until ``SessionReady``, encrypted
HELLO included) is counted; the fake hub's work is not. No sockets, so this is the protocol's
own cost: what a fast network would still leave.

The key-derivation share is measured separately on the same inputs: ``preshared_key`` (PSK),
PBKDF2-HMAC-SHA256 x 100000 (password, spec §4.3), Argon2id 64 MiB x 3 (Noise PSK, spec §7.3).

The reference (thalovant 0.4.7) row runs its password handshake the way it does
(poorman-handshake ``PasswordHandShake`` + ``encrypt_as_json`` of HELLO) in its own venv.
Its PSK path does no work at all (HELLO is sent in cleartext, spec §4.4) and it has no v3.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks._timing import summarize
from benchmarks.refvenv import run_worker
from thalovant.core.handshake.noise import derive_psk, public_key
from thalovant.core.handshake.v1_crypto import derive_password_key, preshared_key
from thalovant.core.machine import Input, Output
from thalovant.core.session.machine import FrameReceived, LinkOpened, SendFrame, Session, SessionState
from thalovant.core.wire.codec import decode_json, encode_json

__all__ = ["CASES", "render", "run"]

V3_PASSWORD = "correct horse battery staple 7"


class _Clock:
    """Sums the time spent inside the client's calls."""

    def __init__(self) -> None:
        self.spent = 0.0

    def call(self, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.spent += time.perf_counter() - start


def _step(clock: _Clock, session: Session, inp: Input) -> list[Output]:
    outs: list[Output] = clock.call(lambda: session.handle(inp, now=0.0))
    return outs


def v1_once(*, password: str | None = None, crypto_key: str | None = None) -> float:
    """One hub 4.x handshake (password or PSK path); returns client seconds to READY."""
    from tests.core.session.test_session_pair import FakeHub

    hub = FakeHub(password=password, crypto_key=crypto_key)
    clock = _Clock()
    session: Session = clock.call(
        lambda: Session(
            session_id="bench-1", useragent="bench/1", entropy=os.urandom, password=password, crypto_key=crypto_key
        )
    )
    _step(clock, session, LinkOpened())
    pending: list[str | bytes] = list(hub.greeting())
    for _ in range(20):
        if not pending:
            break
        for out in _step(clock, session, FrameReceived(data=pending.pop(0))):
            if isinstance(out, SendFrame):
                pending.extend(hub.receive(out.data))
    if session.state is not SessionState.READY:
        raise RuntimeError(f"v1 handshake did not complete: {session.state}")
    return clock.spent


class NoiseBench:
    """A hub 5.x counterpart plus the client state that survives reconnects (static key, pin, PSK)."""

    def __init__(self) -> None:
        from tests.core.handshake.test_v3 import FakeNoiseHub

        probe = FakeNoiseHub(password_psk=b"\0" * 32, seed=b"bench")
        hello = probe.hello.payload
        if not isinstance(hello, dict):
            raise RuntimeError("the fake hub's HELLO has no JSON payload")
        node_id: str = hello["node_id"]
        self.psk = derive_psk(V3_PASSWORD, node_id)
        self.node_id = node_id
        self.hub = FakeNoiseHub(password_psk=self.psk, seed=b"bench")
        self.static = os.urandom(32)
        self.hub_static = public_key(self.hub.static)

    def once(self, *, cached_psk: bool, pinned: bool) -> float:
        """One v3 handshake; returns client seconds to READY."""
        hub = self.hub
        hub.noise, hub.channel = None, None
        if not pinned:
            hub.pinned_client = None
        offered = hub.offer()
        options: dict[str, Any] = {"static_key": self.static}
        if cached_psk:
            options["psk"] = self.psk
        if pinned:
            options["pinned_hub_key"] = self.hub_static
        clock = _Clock()
        session: Session = clock.call(
            lambda: Session(
                session_id="bench-3", useragent="bench/1", entropy=os.urandom, password=V3_PASSWORD, v3_options=options
            )
        )
        _step(clock, session, LinkOpened())
        _step(clock, session, FrameReceived(data=encode_json(hub.hello)))
        pending = [
            o for o in _step(clock, session, FrameReceived(data=encode_json(offered))) if isinstance(o, SendFrame)
        ]
        for _ in range(6):
            if session.state is SessionState.READY or not pending:
                break
            frame = pending.pop(0)
            if not isinstance(frame.data, str):
                continue  # transport frames (HELLO) after the handshake
            answer = hub.on_shake(decode_json(frame.data).unwrap(), offered)
            if answer is not None:
                pending.extend(
                    o
                    for o in _step(clock, session, FrameReceived(data=encode_json(answer)))
                    if isinstance(o, SendFrame)
                )
        if session.state is not SessionState.READY:
            raise RuntimeError(f"v3 handshake did not complete: {session.state}")
        if pending and isinstance(pending[0].data, str):  # XX message 3 still goes to the hub
            hub.on_shake(decode_json(pending[0].data).unwrap(), offered)
        return clock.spent


PASSWORD = "b3f1c2d4e5a6978812ab34cd56ef7890"
CRYPTO_KEY = "a1b2c3d4e5f60718"

CASES: tuple[tuple[str, str], ...] = (
    ("psk", "v1 pre-shared key (hub 4.x)"),
    ("password", "v1 password, PBKDF2 x 100000 (hub 4.x)"),
    ("noise-xx", "v3 Noise XXpsk2, first contact: Argon2id PSK (hub 5.x)"),
    ("noise-xx-cached", "v3 Noise XXpsk2, cached PSK"),
    ("noise-kk", "v3 Noise KKpsk0, pinned hub key + cached PSK"),
)


def _timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def run(*, quick: bool = False) -> dict[str, Any]:
    """Measure every case; Argon2id cases get fewer samples (0.3-0.5 s each)."""
    fast, slow = (15, 3) if quick else (60, 12)
    iv_c, iv_h = os.urandom(8), os.urandom(8)
    bench = NoiseBench()
    bench.once(cached_psk=True, pinned=False)  # warm up; pins the client on the hub
    plans: dict[str, tuple[Callable[[], float], Callable[[], object], int]] = {
        "psk": (lambda: v1_once(crypto_key=CRYPTO_KEY), lambda: preshared_key(CRYPTO_KEY), fast),
        "password": (lambda: v1_once(password=PASSWORD), lambda: derive_password_key(PASSWORD, iv_c, iv_h), fast),
        "noise-xx": (
            lambda: bench.once(cached_psk=False, pinned=False),
            lambda: derive_psk(V3_PASSWORD, bench.node_id),
            slow,
        ),
        "noise-xx-cached": (lambda: bench.once(cached_psk=True, pinned=False), lambda: None, fast),
        "noise-kk": (lambda: bench.once(cached_psk=True, pinned=True), lambda: None, fast),
    }
    rows: list[dict[str, Any]] = []
    for case, label in CASES:
        total_fn, kdf_fn, n = plans[case]
        total_fn()  # warm-up
        totals = [total_fn() for _ in range(n)]
        kdfs = _timed(kdf_fn, n)
        rows.append(
            {"case": case, "label": label, "impl": "thalovant", "total": summarize(totals), "kdf": summarize(kdfs)}
        )
    result: dict[str, Any] = {"name": "handshake", "status": "ok", "rows": rows}
    try:
        ref = run_worker({"task": "handshake", "password": PASSWORD, "samples": fast})
    except (RuntimeError, OSError) as exc:
        result["reference_error"] = str(exc)[-400:]
    else:
        rows.append(
            {"case": "password", "label": "v1 password (poorman-handshake)", "impl": "reference", **ref["password"]}
        )
        result["reference_versions"] = ref["versions"]
    return result


def render(result: dict[str, Any]) -> list[str]:
    """Markdown for RESULTS.md."""
    lines = [
        "Client CPU time from link-up to `SessionReady` (in memory, the hub's own work not counted), ms p50 / p95. "
        "KDF = the key derivation alone on the same inputs; share = KDF p50 ÷ total p50.",
        "",
        "| handshake | thalovant total | KDF | KDF share | thalovant without KDF | reference total | reference KDF |",
        "|---|---|---|---|---|---|---|",
    ]
    ref = {r["case"]: r for r in result["rows"] if r["impl"] == "reference"}
    for r in (r for r in result["rows"] if r["impl"] == "thalovant"):
        total, kdf = r["total"], r["kdf"]
        share = kdf["median"] / total["median"] if total["median"] else 0.0
        rest = max(total["median"] - kdf["median"], 0.0)
        other = ref.get(r["case"])
        ref_total = f"{other['total']['median'] * 1e3:.2f} / {other['total']['p95'] * 1e3:.2f}" if other else "—"
        ref_kdf = f"{other['kdf']['median'] * 1e3:.2f}" if other else "—"
        lines.append(
            f"| {r['label']} | {total['median'] * 1e3:.2f} / {total['p95'] * 1e3:.2f} | {kdf['median'] * 1e3:.3f} "
            f"| {share:.0%} | {rest * 1e3:.2f} | {ref_total} | {ref_kdf} |"
        )
    if "reference_error" in result:
        lines += ["", f"Reference not measured: `{result['reference_error']}`"]
    lines += [
        "",
        "The reference's PSK path does no cryptographic work before HELLO (it sends HELLO in cleartext, "
        "spec §4.4), and 0.4.7 has no v3, so those rows have no reference figure.",
    ]
    return lines
