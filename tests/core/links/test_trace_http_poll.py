"""Deterministic replay of a recorded HttpPoll scenario (cassette ``tests/cassettes/http_poll_basic.jsonl``).

Regenerate the cassette after an intended behaviour change with::

    .venv/bin/python -m tests.core.links.test_trace_http_poll --regen

and review the diff like a snapshot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from typing import Any

from tests.paths import ROOT, TESTS
from thalovant.core.links.base import OutboundFrame, StopRequested
from thalovant.core.links.http_poll import (
    TRACE_TYPES,
    HttpPoll,
    HttpPollConfig,
    RequestFailed,
    ResponseReceived,
    Started,
    StartRequest,
)
from thalovant.core.machine import Entropy, Input, Output, Tick
from thalovant.core.replay import ReplayReport, replay
from thalovant.core.trace import Recorder, RecordingEntropy, TraceHeader, TypeRegistry

ROOT = ROOT
CASSETTE = TESTS / "cassettes" / "http_poll_basic.jsonl"
REGISTRY = TypeRegistry(TRACE_TYPES)
# A throwaway token ("throwaway:0000..."): the cassette must carry it to be replayable.
TOKEN = base64.b64encode(b"throwaway:" + b"0" * 32).decode()


def counter_entropy() -> Entropy:
    state = {"n": 0}

    def draw(n: int) -> bytes:
        state["n"] += 1
        return hashlib.sha256(f"draw-{state['n']}".encode()).digest()[:n]

    return draw


def build(header: TraceHeader, entropy: Entropy) -> HttpPoll:
    assert header.machine == "http_poll"
    return HttpPoll.from_trace_config(header.config, entropy)


def _body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def record_scenario() -> list[str]:
    """Drive HttpPoll through connect, traffic, errors with jitter, a timeout and a stop."""
    entropy = RecordingEntropy(counter_entropy())
    m = HttpPoll(
        authorization=TOKEN,
        useragent="thalovant-cassette/1",
        entropy=entropy,
        config=HttpPollConfig(request_timeout=2.0, max_errors=4),
    )
    header = TraceHeader("http_poll", m.trace_config(), "0.1.0", secrets="throwaway token, made up for this cassette")
    recorder = Recorder(header, entropy=entropy)
    inflight: list[StartRequest] = []

    def step(inp: Input, now: float) -> list[Output]:
        outs = m.handle(inp, now=now)
        recorder.record_step(now, inp, outs, m.deadline)
        inflight.extend(o for o in outs if isinstance(o, StartRequest))
        return outs

    def take(path: str) -> int:
        req = next(r for r in inflight if r.target.startswith(path))
        inflight.remove(req)
        return req.req_id

    step(Started(), 0.0)
    step(ResponseReceived(req_id=take("/disconnect"), status=200, body=_body({"status": "Disconnected"})), 0.01)
    step(ResponseReceived(req_id=take("/connect"), status=200, body=_body({"status": "Connected"})), 0.02)
    step(OutboundFrame(data='{"msg_type":"hello"}', refs=(1,)), 0.03)
    hello = '{"msg_type":"shake","payload":{}}'
    step(ResponseReceived(req_id=take("/get_messages"), status=200, body=_body({"messages": [hello]})), 0.04)
    step(ResponseReceived(req_id=take("/send_message"), status=200, body=_body({"status": "message sent"})), 0.05)
    step(ResponseReceived(req_id=take("/get_binary_messages"), status=200, body=_body({"b64_messages": []})), 0.06)
    step(ResponseReceived(req_id=take("/get_messages"), status=500, body=b"oops"), 0.07)  # jittered backoff
    step(Tick(), m.deadline or 0.0)
    step(RequestFailed(req_id=take("/get_binary_messages"), kind="reset", detail="peer reset"), 0.5)
    step(Tick(), m.deadline or 0.0)
    now = (m.deadline or 0.0) + 0.001
    step(Tick(), now)  # request timeout -> CancelRequest
    step(OutboundFrame(data=b"\x00binary", refs=(2,)), now)
    step(StopRequested(), now + 0.01)
    for r in list(inflight):
        if r.target.startswith("/disconnect"):
            step(ResponseReceived(req_id=take("/disconnect"), status=200, body=_body({"status": "Disconnected"})), 3.0)
    assert m.finished, m.state
    return recorder.lines


def report_dict(report: ReplayReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "steps": report.steps,
        "divergence": repr(report.divergence),
        "problem": repr(report.problem),
    }


def replay_cassette() -> dict[str, Any]:
    return report_dict(replay(CASSETTE.read_text(encoding="utf-8").splitlines(), build, registry=REGISTRY))


def test_recording_matches_the_committed_cassette() -> None:
    assert CASSETTE.read_text(encoding="utf-8").splitlines() == record_scenario()


def test_cassette_has_header_and_uses_entropy() -> None:
    lines = CASSETTE.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["v"] == 1 and header["machine"] == "http_poll" and "throwaway" in header["secrets"]
    steps = [json.loads(ln) for ln in lines[1:]]
    assert [s["seq"] for s in steps] == list(range(len(steps)))
    assert any(s["entropy"] for s in steps), "the scenario must exercise jitter"
    assert any(o.get("$t") == "links.http_wire.CancelRequest" for s in steps for o in s["out"])


def test_cassette_replays_identically_twice() -> None:
    first, second = replay_cassette(), replay_cassette()
    assert first == second
    assert first["ok"] is True and first["steps"] == len(CASSETTE.read_text().splitlines()) - 1


def test_cassette_replays_identically_in_subprocesses_with_other_hash_seeds() -> None:
    code = (
        "import json; from tests.core.links.test_trace_http_poll import replay_cassette; "
        "print(json.dumps(replay_cassette()))"
    )
    results = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
        )
        results.append(json.loads(out.stdout))
    assert results[0] == results[1] == replay_cassette()


def _altered(seq: int, change: Any) -> list[str]:
    lines = CASSETTE.read_text(encoding="utf-8").splitlines()
    obj = json.loads(lines[seq + 1])
    change(obj)
    lines[seq + 1] = json.dumps(obj)
    return lines


def test_altered_output_reports_the_first_divergent_step() -> None:
    def drop_first_out(obj: dict[str, Any]) -> None:
        obj["out"] = obj["out"][1:]

    for seq in (2, 4):  # LinkUp step; the step that delivered a frame
        report = replay(_altered(seq, drop_first_out), build, registry=REGISTRY)
        assert not report.ok and report.divergence is not None
        assert (report.divergence.seq, report.divergence.what) == (seq, "out")
        assert report.steps == seq + 1


def test_ill_typed_input_in_a_tampered_trace_is_reported_not_raised() -> None:
    def text_body(obj: dict[str, Any]) -> None:
        obj["in"]["body"] = "not bytes"

    report = replay(_altered(2, text_body), build, registry=REGISTRY)  # the /connect answer is parsed
    assert report.divergence is not None and (report.divergence.seq, report.divergence.what) == (2, "raised")
    assert "AttributeError" in report.divergence.got


def test_altered_now_entropy_or_deadline_are_caught_too() -> None:
    lines = CASSETTE.read_text(encoding="utf-8").splitlines()
    jitter_seq = next(json.loads(ln)["seq"] for ln in lines[1:] if json.loads(ln)["entropy"])

    def flip_draw(obj: dict[str, Any]) -> None:
        obj["entropy"] = ["00" * (len(obj["entropy"][0]) // 2)]

    report = replay(_altered(jitter_seq, flip_draw), build, registry=REGISTRY)
    assert report.divergence is not None and report.divergence.seq == jitter_seq
    assert report.divergence.what == "deadline"  # other jitter -> other backoff deadline

    def extra_draw(obj: dict[str, Any]) -> None:
        obj["entropy"] = [*obj["entropy"], "00"]

    report = replay(_altered(0, extra_draw), build, registry=REGISTRY)
    assert report.divergence is not None and (report.divergence.seq, report.divergence.what) == (0, "entropy")

    def shift_deadline(obj: dict[str, Any]) -> None:
        obj["deadline"] = (obj["deadline"] or 0) + 1

    report = replay(_altered(1, shift_deadline), build, registry=REGISTRY)
    assert report.divergence is not None and (report.divergence.seq, report.divergence.what) == (1, "deadline")


if __name__ == "__main__" and "--regen" in sys.argv:
    CASSETTE.parent.mkdir(exist_ok=True)
    CASSETTE.write_text("\n".join(record_scenario()) + "\n", encoding="utf-8")
    print(f"wrote {CASSETTE}")


def test_replay_without_an_explicit_registry_uses_every_imported_message_class() -> None:
    from thalovant.core.trace import default_registry

    registry = default_registry()
    assert registry.get("links.LinkUp") is not None and registry.get("links.http_wire.StartRequest") is not None
    report = replay(CASSETTE.read_text(encoding="utf-8").splitlines(), build)
    assert report.ok and report.steps == len(CASSETTE.read_text().splitlines()) - 1
