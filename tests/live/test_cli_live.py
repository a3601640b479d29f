"""The real ``thalovant`` executable against the real test hub: every command, every exit code."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.live.pipe_lines import PipeLines
from tests.paths import ROOT

CLI = [sys.executable, "-m", "thalovant.cli"]
ROOT = ROOT


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THALOVANT_") or k.startswith("THALOVANT_TEST")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or _env(), stdin=subprocess.DEVNULL
    )


def secrets_of(identity: dict[str, Any]) -> list[str]:
    import base64

    from thalovant.core.client.plan import DEFAULT_USERAGENT

    found = [identity.get("access_key"), identity.get("password"), identity.get("crypto_key")]
    found.append((identity.get("mqtt") or {}).get("password"))
    token = base64.b64encode(f"{DEFAULT_USERAGENT}:{identity['access_key']}".encode()).decode()
    return [s for s in [*found, token] if s]


def assert_no_secret(identity: dict[str, Any], *outputs: str) -> None:
    for secret in secrets_of(identity):
        for text in outputs:
            assert secret not in text


@pytest.fixture()
def ident(real_hub: Any) -> tuple[str, dict[str, Any]]:
    return str(real_hub.identity_path("psk")), real_hub.identity("psk")


def test_ask_answers_with_exit_0_and_global_options_anywhere(ident: tuple[str, dict[str, Any]]) -> None:
    path, identity = ident
    done = run("-i", path, "ask", "hello there")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "echo: hello there"
    assert done.stderr == ""  # not a terminal: nothing but the result
    late = run("ask", "hi again", "--json", "--identity", path, "--timeout", "15")
    assert late.returncode == 0, late.stderr
    reply = json.loads(late.stdout)
    assert reply["text"] == "echo: hi again"
    assert_no_secret(identity, done.stdout, done.stderr, late.stdout, late.stderr)


@pytest.mark.parametrize("text", ["deny", "fail"])
def test_ask_refused_or_failed_exits_1_with_one_stderr_line(ident: tuple[str, dict[str, Any]], text: str) -> None:
    path, identity = ident
    done = run("-i", path, "ask", text)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("thalovant: ")
    assert "Traceback" not in done.stderr
    assert_no_secret(identity, done.stdout, done.stderr)


def test_ask_unanswered_times_out_with_exit_1(ident: tuple[str, dict[str, Any]]) -> None:
    path, _ = ident
    done = run("-i", path, "--timeout", "2", "ask", "silent")
    assert done.returncode == 1
    assert done.stderr.startswith("thalovant: ") and "2 s" in done.stderr


def test_verbose_shows_a_traceback_on_failure(ident: tuple[str, dict[str, Any]]) -> None:
    path, identity = ident
    done = run("-v", "-i", path, "ask", "deny")
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert_no_secret(identity, done.stdout, done.stderr)


def test_health_and_doctor_ok(ident: tuple[str, dict[str, Any]]) -> None:
    path, identity = ident
    health = run("-i", path, "health")
    assert health.returncode == 0, health.stderr
    assert health.stdout.splitlines()[0] == "ok"
    as_json = json.loads(run("health", "--json", "-i", path).stdout)
    assert as_json["ok"] is True and as_json["handshake_complete"] is True
    doctor = run("-i", path, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    doctor_json = run("-i", path, "--json", "doctor")
    assert json.loads(doctor_json.stdout)["ok"] is True
    assert_no_secret(identity, health.stdout, doctor.stdout, doctor_json.stdout, doctor.stderr)


def test_health_and_doctor_fail_with_exit_1_when_the_hub_is_unreachable(tmp_path: Path, real_hub: Any) -> None:
    identity = real_hub.identity("psk")
    identity["data_plane_endpoints"] = {"https": "http://127.0.0.1:9", "wss": "ws://127.0.0.1:9"}
    identity["default_port"] = 9
    identity.pop("mqtt", None)
    identity["protocols"]["mqtt"] = {"enabled": False}
    path = tmp_path / "down.json"
    path.write_text(json.dumps(identity))
    path.chmod(0o600)
    health = run("-i", str(path), "--timeout", "2", "health")
    assert health.returncode == 1
    assert health.stdout.splitlines()[0] == "failed"
    doctor = run("-i", str(path), "--timeout", "2", "doctor")
    assert doctor.returncode == 1
    ask = run("-i", str(path), "--timeout", "2", "ask", "hello")
    assert ask.returncode == 1 and ask.stderr.startswith("thalovant: ")
    assert_no_secret(identity, health.stdout, health.stderr, doctor.stdout, doctor.stderr, ask.stderr)


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_host_and_port_reach_the_hub_the_identity_does_not_name(tmp_path: Path, real_hub: Any, protocol: str) -> None:
    """0.4.7's global ``--host``/``--port`` (before or after the command) move every endpoint of the identity."""
    identity = real_hub.identity("psk")
    hub_port = identity["data_plane_endpoints"][protocol].rsplit(":", 1)[1]
    identity["data_plane_endpoints"] = {"https": "https://127.0.0.1:9", "wss": "wss://127.0.0.1:9"}
    identity.update(default_master="https://127.0.0.1", default_port=9)
    identity.pop("mqtt", None)
    identity["protocols"]["mqtt"] = {"enabled": False}
    path = tmp_path / "elsewhere.json"
    path.write_text(json.dumps(identity))
    path.chmod(0o600)
    moved = ["--host", "http://127.0.0.1", "--port", hub_port]
    before = run("-i", str(path), "--protocol", protocol, *moved, "ask", "moved before", "--timeout", "15")
    assert before.returncode == 0, before.stderr
    assert before.stdout.strip() == "echo: moved before"
    after = run("-i", str(path), "--protocol", protocol, "ask", "moved after", "--timeout", "15", *moved)
    assert after.returncode == 0 and after.stdout.strip() == "echo: moved after", after.stderr
    unmoved = run("-i", str(path), "--protocol", protocol, "--timeout", "2", "ask", "nowhere")
    assert unmoved.returncode == 1  # without the options the identity's dead endpoint is used
    assert_no_secret(identity, before.stdout, before.stderr, after.stderr, unmoved.stderr)


def test_utter_reaches_the_bus(ident: tuple[str, dict[str, Any]], real_hub: Any) -> None:
    path, _ = ident
    done = run("-i", path, "utter", "cli utter probe")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sent"
    real_hub.wait_echo("recognizer_loop:utterance", utterances=["cli utter probe"])


def test_emit_sends_data_and_rejects_bad_json(real_hub: Any) -> None:
    path = str(real_hub.identity_path("wide"))
    done = run("-i", path, "emit", "thalovant.test.emit", "--data", '{"probe": "cli-emit"}', "--context", "{}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sent"
    real_hub.wait_echo("thalovant.test.emit", probe="cli-emit")
    bad = run("-i", path, "emit", "thalovant.test.emit", "--data", "{not json")
    assert bad.returncode == 2 and bad.stderr.startswith("thalovant: --data must be valid JSON")
    not_object = run("-i", path, "emit", "x", "--data", "[1]")
    assert not_object.returncode == 2


def _push_until_exit(real_hub: Any, proc: subprocess.Popen[str], utterance: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < deadline:
        real_hub.push_event("speak", {"utterance": utterance})
        try:
            proc.wait(0.5)
        except subprocess.TimeoutExpired:
            pass


def test_listen_prints_jsonl_and_stops_after_max_events(ident: tuple[str, dict[str, Any]], real_hub: Any) -> None:
    path, identity = ident
    proc = subprocess.Popen(
        [*CLI, "-i", path, "listen", "speak", "--max-events", "2", "--json", "--timeout", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        _push_until_exit(real_hub, proc, "pushed to listen")
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) == 2
    assert all(e["type"] == "speak" and e["text"] == "pushed to listen" for e in events)
    assert_no_secret(identity, out, err)


def test_listen_ends_quietly_at_its_timeout(ident: tuple[str, dict[str, Any]]) -> None:
    path, _ = ident
    started = time.monotonic()
    done = run("-i", path, "listen", "no.such.event", "--timeout", "1.5")
    assert done.returncode == 0 and done.stdout == ""
    assert time.monotonic() - started < 20


def test_listen_interrupted_by_sigint_exits_130(ident: tuple[str, dict[str, Any]]) -> None:
    path, _ = ident
    proc = subprocess.Popen(
        [*CLI, "-v", "-i", path, "listen", "speak", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stderr is not None
        # PipeLines, not select + readline: "connected" comes 1 ms after "handshake: ..." (tests/live/pipe_lines.py)
        assert PipeLines(proc.stderr).wait_for("connected to the hub", 30)
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 130


def test_identity_errors_exit_2(tmp_path: Path, real_hub: Any) -> None:
    missing = run("-i", str(tmp_path / "nope.json"), "health")
    assert missing.returncode == 2 and missing.stderr.startswith("thalovant: ")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"access_key": 5, "site_id": [], "default_port": "x"}))
    bad.chmod(0o600)
    check = run("identity", "check", str(bad))
    assert check.returncode == 2
    problems = [ln for ln in check.stderr.splitlines() if ln.startswith("thalovant:   ")]
    assert len(problems) >= 2  # all problems listed, one per line
    as_json = json.loads(run("--json", "identity", "check", str(bad)).stdout)
    assert as_json["ok"] is False and len(as_json["problems"]) == len(problems)
    no_env = run("health")  # no --identity, no THALOVANT_IDENTITY, no THALOVANT_* variables
    assert no_env.returncode == 2
    usage = run("ask")
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_identity_check_prints_the_redacted_identity(real_hub: Any) -> None:
    identity = real_hub.identity("psk")
    done = run("identity", "check", str(real_hub.identity_path("psk")), "--json")
    assert done.returncode == 0
    shown = json.loads(done.stdout)
    assert shown["ok"] is True and shown["identity"]["site_id"] == "loopback-test"
    assert_no_secret(identity, done.stdout, done.stderr)


def test_identity_from_environment(real_hub: Any) -> None:
    done = run("ask", "env identity", env=_env(THALOVANT_IDENTITY=str(real_hub.identity_path("psk"))))
    assert done.returncode == 0 and done.stdout.strip() == "echo: env identity"


def test_distinctive_secrets_never_appear_in_output(tmp_path: Path, real_hub: Any) -> None:
    identity = real_hub.identity("psk")
    identity.update(
        access_key="ZZACCESSzz7781secret",
        password="ZZPASSWORDzz7781secret",
        crypto_key="ZZcryptoKEY7781x",
    )
    identity.pop("mqtt", None)
    identity["protocols"]["mqtt"] = {"enabled": False}
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(identity))
    path.chmod(0o600)
    outputs: list[str] = []
    for args in (
        ["health"],
        ["ask", "hello"],
        ["-v", "ask", "hello"],
        ["doctor"],
        ["--json", "doctor"],
        ["--protocol", "https", "-vv", "health"],
        ["-vv", "ask", "hello"],
        ["-vv", "record", str(tmp_path / "wrong.jsonl"), "--", "ask", "hello"],
        ["identity", "check", str(path)],
    ):
        done = run("-i", str(path), "--timeout", "3", *args)
        assert done.returncode in (0, 1), (args, done.stderr)
        outputs += [done.stdout, done.stderr]
    assert_no_secret(identity, *outputs)
    assert any("ZZ" not in o and o for o in outputs)


def test_record_then_replay_is_identical_and_tampering_diverges(
    ident: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    path, identity = ident
    trace = tmp_path / "ask.jsonl"
    done = run("-i", path, "record", str(trace), "--", "ask", "recorded turn")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "echo: recorded turn"
    assert trace.stat().st_mode & 0o777 == 0o600
    lines = trace.read_text().splitlines()
    assert json.loads(lines[0])["machine"] == "connection" and len(lines) > 5
    replayed = run("replay", str(trace))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.startswith("identical:")
    report = json.loads(run("--json", "replay", str(trace)).stdout)
    assert report["identical"] is True and report["steps"] == len(lines) - 1
    # change the recorded outputs of the first step: the replay must point at step 0
    first = json.loads(lines[1])
    first["out"] = []
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([lines[0], json.dumps(first), *lines[2:]]) + "\n")
    diverged = run("replay", str(tampered))
    assert diverged.returncode == 1
    assert diverged.stdout.startswith("diverged at step 0 (out)")
    assert_no_secret(identity, done.stdout, done.stderr, replayed.stdout, diverged.stdout, diverged.stderr)
    missing = run("replay", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 2


def test_progress_shows_on_a_terminal_and_not_on_a_pipe(ident: tuple[str, dict[str, Any]]) -> None:
    path, _ = ident
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*CLI, "-i", path, "ask", "on a terminal"],
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            env=_env(),
        )
        os.close(slave)
        slave = -1
        seen = b""
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        out, _ = proc.communicate(timeout=10)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert proc.returncode == 0
    assert out.decode().strip() == "echo: on a terminal"  # stdout is unchanged
    text = seen.decode(errors="replace")
    assert "connecting" in text or "waiting for the answer" in text
    assert "\x1b[K" in text  # the progress line is cleared afterwards
    piped = run("-i", path, "ask", "on a pipe")
    assert piped.returncode == 0 and piped.stderr == ""


@pytest.mark.parametrize("protocol", ["wss", "https", "mqtt"])
def test_ask_and_record_over_every_transport(protocol: str, real_hub: Any, tmp_path: Path) -> None:
    if protocol == "mqtt" and not real_hub.mqtt_available:
        pytest.skip(real_hub.mqtt_unavailable_reason)
    path = str(real_hub.identity_path("password"))
    trace = tmp_path / f"{protocol}.jsonl"
    done = run("--protocol", protocol, "-i", path, "record", str(trace), "--", "ask", f"over {protocol}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"echo: over {protocol}"
    replayed = run("--json", "replay", str(trace))
    assert replayed.returncode == 0, replayed.stdout
    assert json.loads(replayed.stdout)["steps"] > 3
