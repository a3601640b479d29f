"""What the ``thalovant`` command prints: exit codes, error lines, scrubbing, JSON in/out and every result's text."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from thalovant.core import render
from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client.health import ThalovantHealth
from thalovant.core.client.plan import DEFAULT_USERAGENT
from thalovant.core.errors import (
    LocalProtocolError,
    ThalovantConnectionError,
    ThalovantIdentityError,
    ThalovantTimeoutError,
)
from thalovant.core.replay import Divergence, ReplayReport
from thalovant.core.trace import TraceProblem
from thalovant.shell.identity_io import ThalovantIdentity

KEY = "QQaccessQQ-91x"


@pytest.mark.parametrize(
    ("exc", "code", "internal"),
    [
        (render.UsageError("x"), 2, False),
        (ThalovantIdentityError("bad"), 2, False),
        (LocalProtocolError("misuse"), 2, False),
        (render.RemoteFailure("x"), 1, False),
        (ThalovantConnectionError("down"), 1, False),
        (ThalovantTimeoutError("slow"), 1, False),
        (ConnectionRefusedError(111, "refused"), 1, False),
        (KeyError("k"), 1, True),
    ],
)
def test_exit_code_and_error_text(exc: BaseException, code: int, internal: bool) -> None:
    assert render.exit_code(exc) == code
    text = render.error_text(exc)
    assert text.startswith("internal error: KeyError: ") is internal
    assert "\n" not in text and text


def test_error_text_is_one_line_and_never_empty() -> None:
    assert render.error_text(render.UsageError("two\nlines ")) == "two lines"
    assert render.error_text(render.RemoteFailure("")) == "RemoteFailure"


@given(st.text(min_size=4, max_size=12).filter(lambda s: "*" not in s), st.text(max_size=20), st.text(max_size=20))
def test_scrub_removes_a_secret_everywhere(secret: str, before: str, after: str) -> None:
    assert secret not in render.scrub(before + secret + after + secret, [secret])


def test_scrub_replaces_the_longest_secret_first() -> None:
    assert render.scrub("abcdefgh abcd", ["abcd", "abcdefgh"]) == "*** ***"


def test_identity_secrets_hold_the_token_in_both_encodings() -> None:
    identity = ThalovantIdentity.from_mapping(
        {"access_key": KEY, "password": "hunter2-pw", "site_id": "s", "default_master": "http://127.0.0.1"}
    )
    token = base64.b64encode(f"{DEFAULT_USERAGENT}:{KEY}".encode()).decode("ascii")
    found = render.identity_secrets(identity)
    assert {KEY, "hunter2-pw", token, urllib.parse.quote(token, safe="")} <= set(found)
    assert all(len(s) >= 4 for s in found)


def test_json_text_indented_or_one_line() -> None:
    value = {"b": 1, "a": "é"}
    assert render.json_text(value) == '{\n  "a": "é",\n  "b": 1\n}'
    assert render.json_text(value, indent=None) == '{"b": 1, "a": "é"}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', Success({"a": 1})),
        ("[1]", Failure("--data must be a JSON object")),
        ("{", Failure("--data must be valid JSON (Expecting property name enclosed in double quotes at position 1)")),
    ],
)
def test_json_object(text: str, expected: object) -> None:
    assert render.json_object(text, "--data") == expected


def test_emit_arguments_check_data_then_context_then_the_event_type() -> None:
    assert render.emit_arguments("x.y", data="{}", context='{"c": 1}') == Success(({}, {"c": 1}))
    assert render.emit_arguments(" ", data="3", context="3") == Failure("--data must be a JSON object")
    assert render.emit_arguments(" ", data="{}", context="3") == Failure("--context must be a JSON object")
    assert render.emit_arguments(" ", data="{}", context="{}") == Failure("the event type must not be empty")


def test_health_text_and_unhealthy() -> None:
    down = render.unhealthy("refused", "https")
    assert not down.ok and down.as_dict()["last_error"] == "refused"
    assert render.health_text(down).splitlines() == [
        "failed",
        "connected=False",
        "handshake_complete=False",
        "transport_alive=False",
        "protocol=https",
        "last_error=refused",
    ]
    up = ThalovantHealth(connected=True, handshake_complete=True, transport_alive=True, protocol="wss", generation=3)
    assert render.health_text(up).splitlines()[0] == "ok"
    assert render.health_text(up).splitlines()[-1] == "generation=3"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (ThalovantReply(failure_event=ThalovantEvent("complete_intent_failure")), "(complete_intent_failure)"),
        (ThalovantReply(unanswered=True), "no skill answered"),
        (ThalovantReply(cancelled=True), "cancelled"),
        (ThalovantReply(timed_out=True), "did not finish in time"),
        (ThalovantReply(), "did not confirm"),
    ],
)
def test_ask_failure_names_the_reason(reply: ThalovantReply, reason: str) -> None:
    assert reason in render.ask_failure(reply)


def test_reply_text_strips_ssml_and_is_none_when_silent() -> None:
    assert render.reply_text(ThalovantReply(text="<speak>hi there</speak>")) == "hi there"
    assert render.reply_text(ThalovantReply()) is None


def test_event_line() -> None:
    spoken = ThalovantEvent("speak", {"utterance": "hello"})
    silent = ThalovantEvent("x.y", {"n": 1})
    assert render.event_line(spoken, as_json=False) == "hello"
    assert render.event_line(silent, as_json=False) == '{"n": 1}'
    line = render.event_line(spoken, as_json=True)
    assert "\n" not in line and json.loads(line)["type"] == "speak"


def test_sent_and_version_texts() -> None:
    assert render.sent_text(as_json=False, request_id="r") == "sent"
    assert json.loads(render.sent_text(as_json=True, type="x.y")) == {"sent": True, "type": "x.y"}
    assert render.version_text("1.2", as_json=False) == "thalovant 1.2"
    assert json.loads(render.version_text("1.2", as_json=True)) == {"version": "1.2"}


def test_identity_check_texts() -> None:
    problems = [("", "not JSON"), ("site_id", "must be text")]
    assert render.identity_invalid("f.json", problems) == {
        "ok": False,
        "origin": "f.json",
        "problems": [{"path": "", "message": "not JSON"}, {"path": "site_id", "message": "must be text"}],
    }
    assert render.identity_problems_text("f.json", problems) == (
        "thalovant: invalid f.json: 2 problem(s)\nthalovant:   (file): not JSON\nthalovant:   site_id: must be text\n"
    )
    assert render.identity_valid_text(["wss"], {"a": 1}, as_json=False) == 'ok: protocols wss\n{\n  "a": 1\n}'
    assert render.identity_valid_text([], {}, as_json=False).startswith("ok: protocols (none)\n")
    assert json.loads(render.identity_valid_text([], {"a": 1}, as_json=True)) == {"ok": True, "identity": {"a": 1}}


def test_replay_result_and_text_are_redacted() -> None:
    same = render.replay_result(ReplayReport(True, 4), [KEY])
    assert same == {"ok": True, "identical": True, "steps": 4}
    assert render.replay_text(same) == "identical: 4 step(s) replayed"
    diverged = ReplayReport(False, 2, divergence=Divergence(seq=3, what="out", expected={"k": KEY}, got="x" * 3000))
    result = render.replay_result(diverged, [KEY])
    assert KEY not in json.dumps(result) and result["divergence"]["expected"] == '{"k": "***"}'
    lines = render.replay_text(result).splitlines()
    assert lines[0] == "diverged at step 3 (out) after 2 identical step(s)"
    assert lines[2] == "  got:      " + "x" * 2000
    broken = render.replay_result(ReplayReport(False, 0, problem=TraceProblem("bad-json", f"line {KEY}")), [KEY])
    assert render.replay_text(broken) == "unreadable trace after 0 step(s): line ***"


def test_spinner() -> None:
    assert render.spinner_line(5, "connecting") == "\r/ connecting\u2026\x1b[K"
    assert render.SPINNER_CLEAR == "\r\x1b[K"
