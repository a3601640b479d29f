"""The ``thalovant`` CLI without a hub: parsing, exit codes, lazy imports, redaction, progress, record/replay files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.paths import ROOT
from thalovant import cli
from thalovant.core.client import connection as cx
from thalovant.core.errors import (
    LocalProtocolError,
    ThalovantConnectionError,
    ThalovantIdentityError,
    ThalovantPolicyDenied,
    ThalovantTimeoutError,
)
from thalovant.core.machine import Tick
from thalovant.core.trace import RecordingEntropy
from thalovant.shell import recording

ROOT = ROOT
SECRETS = {"access_key": "QQaccessQQ-91x", "password": "QQpasswordQQ-91x", "crypto_key": "QQcryptoKEY91xyz"}


def identity_file(tmp_path: Path, **extra: Any) -> Path:
    data = {**SECRETS, "site_id": "unit", "default_master": "http://127.0.0.1", "default_port": 9, **extra}
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("THALOVANT_") and not key.startswith("THALOVANT_TEST"):
            monkeypatch.delenv(key)


# ---- lazy imports -------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_do_not_import_the_network_stack(flag: str) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from thalovant.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): rc = main([{flag!r}])\n"
        "heavy = sorted(m for m in ('anyio', 'h11', 'wsproto', 'paho', 'cryptography', 'thalovant.shell.client')"
        " if m in sys.modules)\n"
        "print(rc, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.stdout.strip() == "0 []", done.stderr


def test_installed_script_prints_the_version() -> None:
    script = Path(sys.executable).with_name("thalovant")
    if not script.exists():
        pytest.skip("console script not installed")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("thalovant ")


# ---- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-i", "f.json", "--json", "--timeout", "3", "--protocol", "mqtt", "ask", "hi"],
        ["ask", "hi", "--json", "-i", "f.json", "--timeout", "3", "--protocol", "mqtt"],
        ["--json", "ask", "-i", "f.json", "hi", "--protocol=mqtt", "--timeout=3"],
    ],
)
def test_global_options_anywhere(argv: list[str]) -> None:
    args = cli.parse(cli.build_parser(), argv)
    assert (args.command, args.text, args.identity, args.json, args.timeout, args.protocol) == (
        "ask",
        "hi",
        "f.json",
        True,
        3.0,
        "mqtt",
    )


def test_defaults_are_filled_in() -> None:
    args = cli.parse(cli.build_parser(), ["health"])
    assert (args.identity, args.protocol, args.json, args.timeout, args.verbose) == (None, None, False, None, 0)
    assert cli.parse(cli.build_parser(), ["-vv", "health"]).verbose == 2


@pytest.mark.parametrize(
    "argv",
    [[], ["nope"], ["ask"], ["listen"], ["--timeout", "x", "health"], ["identity"], ["--protocol", "smtp", "health"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_version_command(capsys: pytest.CaptureFixture[str]) -> None:
    from thalovant import __version__

    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"thalovant {__version__}"
    assert cli.main(["version", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"version": __version__}


# ---- exit codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (cli.UsageError("x"), 2),
        (ThalovantIdentityError("x"), 2),
        (LocalProtocolError("x"), 2),
        (cli.RemoteFailure("x"), 1),
        (ThalovantConnectionError("x"), 1),
        (ThalovantTimeoutError("x"), 1),
        (ThalovantPolicyDenied("x"), 1),
        (OSError("x"), 1),
        (RuntimeError("x"), 1),
    ],
)
def test_exit_code_mapping(exc: BaseException, code: int) -> None:
    assert cli.exit_code(exc) == code


def test_missing_identity_is_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    no_env(monkeypatch)
    assert cli.main(["health"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("thalovant: ") and err.count("\n") == 1


def test_identity_env_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_env(monkeypatch)
    monkeypatch.setenv(cli.IDENTITY_ENV, str(identity_file(tmp_path)))
    args = cli.parse(cli.build_parser(), ["health"])
    assert cli.load_identity(args).site_id == "unit"


@pytest.mark.parametrize(
    ("data", "message"), [("{oops", "--data must be valid JSON"), ("[1, 2]", "--data must be a JSON object")]
)
def test_emit_rejects_bad_data_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: str, message: str
) -> None:
    path = identity_file(tmp_path)
    assert cli.main(["-i", str(path), "emit", "x.y", "--data", data]) == 2
    assert capsys.readouterr().err.startswith(f"thalovant: {message}")
    assert cli.main(["-i", str(path), "emit", "x.y", "--context", "3"]) == 2


def test_keyboard_interrupt_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def interrupted(ctx: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "health", interrupted)
    assert cli.main(["-i", str(identity_file(tmp_path)), "health"]) == 130
    assert capsys.readouterr().err == "thalovant: interrupted\n"


def test_unexpected_errors_are_one_scrubbed_line_and_a_traceback_only_with_v(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(ctx: Any) -> int:
        ctx.identity  # noqa: B018
        raise RuntimeError(f"bad key {SECRETS['access_key']} and {SECRETS['password']}")

    monkeypatch.setitem(cli.COMMANDS, "health", broken)
    path = str(identity_file(tmp_path))
    assert cli.main(["-i", path, "health"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError" in err and "Traceback" not in err
    assert cli.main(["-v", "-i", path, "health"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert all(secret not in err for secret in SECRETS.values())


def test_record_needs_a_command_and_refuses_nesting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(identity_file(tmp_path))
    trace = str(tmp_path / "t.jsonl")
    assert cli.main(["-i", path, "record", trace]) == 2
    assert cli.main(["-i", path, "record", trace, "--", "replay", trace]) == 2
    assert cli.main(["-i", path, "record", trace, "--", "ask"]) == 2  # inner usage error
    assert "record" in capsys.readouterr().err


# ---- identity check -----------------------------------------------------------------------------


def test_identity_check_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"access_key": 5, "site_id": [], "default_port": "x", "password": SECRETS["password"]}))
    bad.chmod(0o600)
    assert cli.main(["identity", "check", str(bad)]) == 2
    captured = capsys.readouterr()
    problems = [ln for ln in captured.err.splitlines() if ln.startswith("thalovant:   ")]
    assert len(problems) >= 3 and any("access_key" in p for p in problems) and any("site_id" in p for p in problems)
    assert SECRETS["password"] not in captured.err + captured.out
    assert cli.main(["identity", "check", str(bad), "--json"]) == 2
    shown = json.loads(capsys.readouterr().out)
    assert shown["ok"] is False and len(shown["problems"]) == len(problems)


def test_identity_check_ok_is_redacted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["identity", "check", str(identity_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: protocols") and '"site_id": "unit"' in out
    assert all(secret not in out for secret in SECRETS.values())


# ---- redaction and progress ---------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    secret=st.text(min_size=4, max_size=20).filter(lambda s: "*" not in s),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_scrub_removes_every_secret(secret: str, before: str, after: str) -> None:
    assert secret not in cli.scrub(before + secret + after + secret, [secret])


def test_identity_secrets_cover_the_access_token(tmp_path: Path) -> None:
    import base64

    from thalovant.core.client.plan import DEFAULT_USERAGENT
    from thalovant.shell.identity_io import ThalovantIdentity

    found = cli.identity_secrets(ThalovantIdentity.from_file(identity_file(tmp_path)))
    token = base64.b64encode(f"{DEFAULT_USERAGENT}:{SECRETS['access_key']}".encode()).decode()
    assert set(SECRETS.values()) | {token} <= set(found)


def test_progress_writes_only_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    fake = io.StringIO()
    monkeypatch.setattr(sys, "stderr", fake)
    off = cli.Progress(enabled=False)
    off.set("connecting")
    off.close()
    assert fake.getvalue() == ""
    on = cli.Progress(enabled=True)
    on.set("connecting")
    time.sleep(0.35)
    on.close()
    text = fake.getvalue()
    assert "connecting\u2026" in text and text.endswith("\r\x1b[K")


# ---- record / replay files (no network: a machine driven by hand) --------------------------------


def _config() -> cx.ConnectionConfig:
    return cx.ConnectionConfig(
        protocol="https",
        useragent="unit-agent",
        session_id="s",
        site_id="unit",
        access_key=SECRETS["access_key"],
        password=SECRETS["password"],
    )


def _record(path: Path) -> list[str]:
    """Record a few real steps of a Connection (connect, then ticks past its deadlines) to ``path``."""
    import os

    writer = recording.TraceWriter(path)
    recorder = writer.begin(_config())
    entropy = RecordingEntropy(os.urandom)
    machine = cx.Connection(config=_config(), entropy=entropy)
    now = 100.0
    for inp in [cx.Connect(), Tick(), Tick()]:
        outputs = machine.handle(inp, now=now)
        recorder.record_step(now, inp, outputs, machine.deadline, entropy.take())
        now = max(now + 0.5, machine.deadline or now)
    writer.close()
    return path.read_text().splitlines()


def test_trace_writer_file_replays_identically(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.jsonl"
    lines = _record(trace)
    assert trace.stat().st_mode & 0o777 == 0o600
    assert json.loads(lines[0])["machine"] == "connection" and len(lines) == 4
    report, secrets = recording.replay_file(trace)
    assert report.ok and report.steps == 3
    assert SECRETS["access_key"] in secrets
    assert cli.main(["replay", str(trace)]) == 0
    assert capsys.readouterr().out.startswith("identical: 3 step(s)")
    writer = recording.TraceWriter(tmp_path / "again.jsonl")
    writer.begin(_config())
    with pytest.raises(LocalProtocolError):
        writer.begin(_config())  # one session per writer
    writer.close()


def test_replay_reports_the_first_divergence_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.jsonl"
    lines = _record(trace)
    step = json.loads(lines[1])
    step["out"] = [*step["out"], {"$t": "machine.Tick"}]
    trace.write_text("\n".join([lines[0], json.dumps(step), *lines[2:]]))
    assert cli.main(["replay", str(trace)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("diverged at step 0 (out)")
    token_forms = recording.header_secrets(lines)
    assert all(s not in out for s in [*SECRETS.values(), *token_forms])
    assert cli.main(["replay", "--json", str(trace)]) == 1
    assert json.loads(capsys.readouterr().out)["divergence"]["seq"] == 0


def test_replay_of_a_foreign_machine_or_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "f.jsonl"
    foreign.write_text(json.dumps({"v": 1, "machine": "http_poll", "config": {}, "thalovant": "x"}) + "\n")
    assert cli.main(["replay", str(foreign)]) == 1
    assert "not a recorded client session" in capsys.readouterr().out
    assert cli.main(["replay", str(tmp_path / "missing.jsonl")]) == 2


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_STEPISH = st.builds(json.dumps, st.dictionaries(st.sampled_from(["v", "seq", "in", "out", "now", "machine"]), _TEXT))


@settings(max_examples=60, deadline=None)
@given(garbage=st.lists(st.one_of(_TEXT, _STEPISH), max_size=6))
def test_replay_of_garbage_never_raises(tmp_path_factory: pytest.TempPathFactory, garbage: list[str]) -> None:
    path = tmp_path_factory.mktemp("g") / "g.jsonl"
    path.write_text("\n".join(garbage), encoding="utf-8")
    report, _ = recording.replay_file(path)  # a report, never an exception
    assert report.steps == 0 and (not report.ok or not any(g.strip() for g in garbage[1:]))


@settings(max_examples=60, deadline=None)
@given(
    useragent=st.text(st.characters(blacklist_characters=":", blacklist_categories=("Cs",)), min_size=1, max_size=20),
    session=st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    queue=st.integers(1, 10_000),
    protocol=st.sampled_from(["https", "wss"]),
)
def test_connection_config_round_trips_through_the_header(
    useragent: str, session: str, queue: int, protocol: str
) -> None:
    from thalovant.core.trace import decode_value, encode_value, load_header

    config = cx.ConnectionConfig(
        protocol=protocol,  # type: ignore[arg-type]
        useragent=useragent,
        session_id=session,
        access_key="k",
        max_queue=queue,
    )
    header = load_header(
        json.dumps({"v": 1, "machine": "connection", "config": {"connection": encode_value(config)}})
    ).unwrap()
    decoded = decode_value(header.config["connection"], recording.connection_registry()).unwrap()
    assert decoded == config


def test_warnings_are_one_line_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    path = identity_file(tmp_path)
    path.chmod(0o644)  # readable by others: the SDK warns
    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main(["identity", "check", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("thalovant: warning: ") and err.count("\n") == 1 and "0644" in err
    assert warnings.showwarning is before  # restored after main()
