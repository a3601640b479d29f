"""The doctor planner: check order, dependencies and skips, timeouts, garbage answers, formatting, redaction."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.doctor import (
    CHECK_ORDER,
    TABLE,
    CheckStatus,
    Doctor,
    DoctorSettings,
    DoctorState,
    Done,
    Finding,
    ProbeFinished,
    ProbeKind,
    ProbeOutcome,
    RunProbe,
    Start,
    ThalovantDoctorCheck,
    ThalovantDoctorReport,
    scrub_text,
    settings_from_identity,
)
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Note, NoteLevel, Tick
from thalovant.shell.identity_io import ThalovantIdentity

OK, FAILED, WARNING = CheckStatus.OK, CheckStatus.FAILED, CheckStatus.WARNING
NAMES = [k.value for k in CHECK_ORDER]


def ident(**over: Any) -> ThalovantIdentity:
    values: dict[str, Any] = {
        "access_key": "0123456789abcdef0123456789abcdef",
        "password": "hunter2-password",
        "default_master": "http://127.0.0.1",
        "default_port": 5679,
        "site_id": "kitchen",
    }
    values.update(over)
    return ThalovantIdentity.from_mapping(values)


def drive(s: DoctorSettings, answers: dict[ProbeKind, ProbeOutcome]) -> tuple[ThalovantDoctorReport, list[ProbeKind]]:
    """Run the planner, answering each probe from ``answers``; returns the report and the probes asked for."""
    doc, now, asked = Doctor(), 0.0, []
    out = doc.handle(Start(settings=s), now=now)
    for _ in range(20):
        probes = [o for o in out if isinstance(o, RunProbe)]
        if not probes:
            break
        (probe,) = probes
        asked.append(probe.kind)
        now += 0.25
        out = doc.handle(ProbeFinished(probe_id=probe.probe_id, outcome=answers[probe.kind]), now=now)
    done = [o for o in out if isinstance(o, Done)]
    assert len(done) == 1 and doc.state is DoctorState.DONE and doc.deadline is None
    return done[0].report, asked


def all_ok(**over: ProbeOutcome) -> dict[ProbeKind, ProbeOutcome]:
    answers = {k: ProbeOutcome(status=OK, detail=f"{k.value} fine") for k in CHECK_ORDER}
    answers.update({ProbeKind(k): v for k, v in over.items()})
    return answers


def statuses(report: ThalovantDoctorReport) -> list[str]:
    assert [c.name for c in report.checks] == NAMES
    return [c.status for c in report.checks]


# ---- settings ----------------------------------------------------------------------------------


def test_settings_from_a_plain_http_identity() -> None:
    s = settings_from_identity(ident(), timeout=3.0)
    assert (s.protocol, s.host, s.port, s.tls, s.endpoint) == (
        "https",
        "127.0.0.1",
        5679,
        False,
        "http://127.0.0.1:5679",
    )
    assert s.identity_problems == () and s.endpoint_problem is None and s.timeout == 3.0


def test_settings_for_wss_and_mqtt_endpoints() -> None:
    s = settings_from_identity(
        ident(data_plane_endpoints={"wss": "wss://hub.example:5678"}, protocols={"wss": True}), protocol="ws"
    )
    assert (s.protocol, s.host, s.port, s.tls) == ("wss", "hub.example", 5678, True)
    m = settings_from_identity(
        ident(mqtt={"endpoint": "mqtt://127.0.0.1:1883", "tls": False}, protocols={"mqtt": True}), protocol="mqtt"
    )
    assert (m.protocol, m.host, m.port, m.tls) == ("mqtt", "127.0.0.1", 1883, False)


def test_unknown_or_disabled_protocol_fails_identity() -> None:
    assert settings_from_identity(ident(), protocol="gopher").identity_problems
    assert settings_from_identity(ident(), protocol="mqtt").identity_problems
    assert settings_from_identity("not an identity").identity_problems == ("not a ThalovantIdentity but a str",)


def test_wss_master_is_mapped_to_https_not_failed() -> None:
    s = settings_from_identity(ident(default_master="wss://127.0.0.1", default_port=5678))
    assert (s.endpoint, s.tls, s.endpoint_problem) == ("https://127.0.0.1:5678", True, None)


def test_endpoint_problem_fails_endpoint_and_skips_the_rest() -> None:
    s = DoctorSettings(protocol="https", site_id="a", endpoint_problem="the https endpoint must name a host")
    report, asked = drive(s, all_ok())
    assert asked == [] and statuses(report) == ["ok", "failed"] + ["skipped"] * 6
    assert report.checks[1].detail == "the https endpoint must name a host" and report.checks[1].hint


# ---- planning tables ---------------------------------------------------------------------------


def test_all_ok_with_callbacks_runs_every_probe_in_order() -> None:
    s = settings_from_identity(ident(), handshake_available=True, link_available=True)
    report, asked = drive(s, all_ok())
    assert asked == [ProbeKind.DNS, ProbeKind.TCP, ProbeKind.ADMISSION, ProbeKind.HANDSHAKE, ProbeKind.LINK]
    assert statuses(report) == ["ok", "ok", "ok", "ok", "skipped", "ok", "ok", "ok"]
    assert report.ok and report.check("tcp") is not None and report.check("tcp").duration_ms == 250.0  # type: ignore[union-attr]
    assert "not encrypted" in report.checks[4].detail


def test_without_callbacks_handshake_and_link_are_skipped_with_the_client_hint() -> None:
    report, asked = drive(settings_from_identity(ident()), all_ok())
    assert ProbeKind.HANDSHAKE not in asked and ProbeKind.LINK not in asked
    assert statuses(report)[-2:] == ["skipped", "skipped"]
    assert all("run through the client" in c.hint for c in report.checks[-2:])
    assert report.ok


def test_tls_endpoint_runs_the_tls_probe() -> None:
    s = settings_from_identity(ident(default_master="https://127.0.0.1"))
    _, asked = drive(s, all_ok())
    assert asked == [ProbeKind.DNS, ProbeKind.TCP, ProbeKind.TLS, ProbeKind.ADMISSION]


@pytest.mark.parametrize(
    ("failing", "expect"),
    [
        (ProbeKind.DNS, ["ok", "ok", "failed", "skipped", "skipped", "skipped", "skipped", "skipped"]),
        (ProbeKind.TCP, ["ok", "ok", "ok", "failed", "skipped", "skipped", "skipped", "skipped"]),
        (ProbeKind.TLS, ["ok", "ok", "ok", "ok", "failed", "skipped", "skipped", "skipped"]),
        (ProbeKind.ADMISSION, ["ok", "ok", "ok", "ok", "ok", "failed", "skipped", "skipped"]),
        (ProbeKind.HANDSHAKE, ["ok", "ok", "ok", "ok", "ok", "ok", "failed", "skipped"]),
        (ProbeKind.LINK, ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "failed"]),
    ],
)
def test_a_failure_skips_every_later_check_with_a_reason(failing: ProbeKind, expect: list[str]) -> None:
    s = settings_from_identity(ident(default_master="https://127.0.0.1"), handshake_available=True, link_available=True)
    report, asked = drive(s, all_ok(**{failing.value: ProbeOutcome(status=FAILED, detail="boom")}))
    assert statuses(report) == expect and not report.ok
    assert asked[-1] is failing
    failed = report.check(failing.value)
    assert failed is not None and failed.hint  # the default hint fills in
    for check in report.checks[[c.name for c in report.checks].index(failing.value) + 1 :]:
        assert check.detail == f"skipped: {failing.value} failed" and check.hint == f"fix {failing.value} first"


def test_a_warning_does_not_block_later_checks() -> None:
    s = settings_from_identity(ident(default_master="https://127.0.0.1"))
    report, asked = drive(s, all_ok(tls=ProbeOutcome(status=WARNING, detail="verification off", hint="use ca_file")))
    assert ProbeKind.ADMISSION in asked and report.ok
    assert report.check("tls") == ThalovantDoctorCheck("tls", True, "verification off", 250.0, "warning", "use ca_file")


def test_identity_failure_skips_everything() -> None:
    report, asked = drive(settings_from_identity(ident(), protocol="wss"), all_ok())
    assert asked == [] and statuses(report) == ["failed"] + ["skipped"] * 7
    assert "disabled" in report.checks[0].detail


def test_probe_timeout_via_tick() -> None:
    doc = Doctor()
    out = doc.handle(Start(settings=settings_from_identity(ident(), timeout=2.0)), now=100.0)
    assert isinstance(out[-1], RunProbe) and doc.deadline == 103.0
    assert doc.handle(Tick(), now=102.9) == []  # early ticks are harmless
    out = doc.handle(Tick(), now=103.0)
    dns = out[0]
    assert isinstance(dns, Finding) and dns.check.status == "failed" and "no answer within 2 s" in dns.check.detail
    assert dns.check.duration_ms == pytest.approx(3000.0)
    assert isinstance(out[-1], Done) and doc.state is DoctorState.DONE
    # the late answer of the timed-out probe is only a note
    (note,) = doc.handle(ProbeFinished(probe_id=1, outcome=ProbeOutcome(status=OK, detail="late")), now=104.0)
    assert isinstance(note, Note)


def test_misuse_raises_local_protocol_error() -> None:
    doc = Doctor()
    with pytest.raises(LocalProtocolError):
        doc.handle(Start(settings="nope"), now=0.0)  # type: ignore[arg-type]
    doc.handle(Start(settings=settings_from_identity(ident())), now=0.0)
    with pytest.raises(LocalProtocolError):
        doc.handle(Start(settings=settings_from_identity(ident())), now=0.0)


def test_check_value_type_is_reference_compatible() -> None:
    assert ThalovantDoctorCheck("connect", False, "x").status == "failed"
    assert ThalovantDoctorCheck("identity", True, "site_id=a", 1.23456).as_dict() == {
        "name": "identity",
        "ok": True,
        "status": "ok",
        "detail": "site_id=a",
        "hint": "",
        "duration_ms": 1.235,
    }
    with pytest.raises(LocalProtocolError):
        ThalovantDoctorCheck("x", True, "y", status="failed")
    with pytest.raises(LocalProtocolError):
        ThalovantDoctorCheck("x", True, "y", status="great")


def test_format_and_as_dict() -> None:
    report = ThalovantDoctorReport(
        {"site_id": "a"},
        (
            ThalovantDoctorCheck("identity", True, "site_id=a"),
            ThalovantDoctorCheck("tcp", False, "refused", 12.34, hint="start the hub"),
            ThalovantDoctorCheck("tls", True, "skipped: tcp failed", status="skipped", hint="fix tcp first"),
        ),
        "https",
    )
    assert report.format().splitlines() == [
        "Thalovant doctor: failed",
        "- identity: ok - site_id=a",
        "- tcp: failed (12.3 ms) - refused; hint: start the hub",
        "- tls: skipped - skipped: tcp failed; hint: fix tcp first",
    ]
    data = report.as_dict()
    assert (
        data["ok"] is False
        and data["protocol"] == "https"
        and [c["status"] for c in data["checks"]]
        == [
            "ok",
            "failed",
            "skipped",
        ]
    )
    json.dumps(data)
    assert (
        ThalovantDoctorReport({}, (ThalovantDoctorCheck("a", True, "b"),)).format().startswith("Thalovant doctor: ok")
    )


def test_scrub_text_cuts_tokens_and_control_characters() -> None:
    assert scrub_text("GET /connect?authorization=c2VjcmV0&x=1 failed") == "GET /connect?authorization=***&x=1 failed"
    assert scrub_text("a\nb\x00c") == "a b c"
    assert len(scrub_text("x" * 5000)) == 300


# ---- properties --------------------------------------------------------------------------------

garbage = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.builds(
        ProbeOutcome,
        status=st.sampled_from(list(CheckStatus)),
        detail=st.one_of(st.text(max_size=400), st.integers()),  # type: ignore[arg-type]
        hint=st.one_of(st.text(max_size=50), st.none()),  # type: ignore[arg-type]
    ),
)
events = st.lists(
    st.tuples(st.sampled_from(["finish", "tick", "stray"]), garbage, st.floats(0.0, 30.0)),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(events=events, tls=st.booleans(), hs=st.booleans(), link=st.booleans())
def test_garbage_answers_never_crash_and_the_report_stays_complete(
    events: list[tuple[str, object, float]], tls: bool, hs: bool, link: bool
) -> None:
    master = "https://127.0.0.1" if tls else "http://127.0.0.1"
    doc, now = Doctor(), 0.0
    out = doc.handle(
        Start(
            settings=settings_from_identity(
                ident(default_master=master), handshake_available=hs, link_available=link, timeout=5.0
            )
        ),
        now=now,
    )
    pending = [o for o in out if isinstance(o, RunProbe)]
    done = [o for o in out if isinstance(o, Done)]
    for what, outcome, step in events:
        now += step
        if what == "finish" and pending:
            out = doc.handle(ProbeFinished(probe_id=pending[-1].probe_id, outcome=outcome), now=now)
        elif what == "stray":
            out = doc.handle(ProbeFinished(probe_id=-7, outcome=outcome), now=now)
            assert all(isinstance(o, Note) for o in out)
        else:
            out = doc.handle(Tick(), now=now)
        pending += [o for o in out if isinstance(o, RunProbe)]
        done += [o for o in out if isinstance(o, Done)]
        assert len([o for o in out if isinstance(o, RunProbe)]) <= 1
    for check in doc.checks:
        assert check.status in {"ok", "failed", "skipped", "warning"} and check.duration_ms >= 0
        assert isinstance(check.detail, str) and len(check.detail) <= 300
    assert len(done) <= 1
    if done:
        assert [c.name for c in done[0].report.checks] == NAMES
        assert done[0].report.ok == all(c.status != "failed" for c in done[0].report.checks)


secret = st.text(alphabet="0123456789abcdefghjkmnpqrstuvwxyz", min_size=16, max_size=40)


@settings(max_examples=100, deadline=None)
@given(key=secret, password=secret, crypto=secret, broker=secret, fail_at=st.sampled_from(list(ProbeKind)))
def test_no_secret_ever_reaches_the_report(
    key: str, password: str, crypto: str, broker: str, fail_at: ProbeKind
) -> None:
    identity = ident(
        access_key=key,
        password=password,
        crypto_key=crypto,
        default_master="https://127.0.0.1",
        mqtt={"endpoint": "mqtts://127.0.0.1:8883", "username": "u-" + broker, "password": broker},
        protocols={"mqtt": True, "http": True},
    )
    token = "dGVzdDo" + key  # what a probe error quoting the URL would contain
    for protocol in ("https", "mqtt"):
        s = settings_from_identity(identity, protocol=protocol, handshake_available=True, link_available=True)
        leak = ProbeOutcome(status=FAILED, detail=f"POST https://127.0.0.1/connect?authorization={token} failed")
        report, asked = drive(s, all_ok(**{fail_at.value: leak}))
        assert ProbeKind.DNS in asked  # the identity is valid for both protocols
        text = report.format() + json.dumps(report.as_dict()) + repr(s) + repr(report)
        for value in (key, password, crypto, broker, token):
            assert value not in text


# ---- the transition table ----------------------------------------------------------------------

INPUTS = {Start, ProbeFinished, Tick}


def in_state(state: DoctorState, now: float = 0.0) -> Doctor:
    """A doctor in ``state``: IDLE fresh, PROBING with the dns probe out, DONE after a failed identity."""
    doc = Doctor()
    if state is DoctorState.PROBING:
        doc.handle(Start(settings=settings_from_identity(ident())), now=now)
    elif state is DoctorState.DONE:
        doc.handle(Start(settings=DoctorSettings(protocol="https", identity_problems=("bad",))), now=now)
    assert doc.state is state and doc.finished is (state is DoctorState.DONE)
    return doc


def example(kind: type, doc: Doctor, *, ends: bool) -> Any:
    """An input of ``kind`` for ``doc``; ``ends`` picks one that decides the last check, if there is one."""
    if kind is Start:
        s = DoctorSettings(protocol="https", identity_problems=("bad",)) if ends else settings_from_identity(ident())
        return Start(settings=s)
    if kind is ProbeFinished:
        status = FAILED if ends else OK  # a failure skips everything after it
        return ProbeFinished(probe_id=doc._next_id, outcome=ProbeOutcome(status=status, detail="x"))
    return Tick()


def test_the_table_covers_every_state_and_only_doctor_inputs() -> None:
    assert {state for state, _ in TABLE} == set(DoctorState)
    assert {kind for _, kind in TABLE} == INPUTS
    for row in TABLE.values():
        assert all(isinstance(end, DoctorState) for end in row.ends)
    assert not any(TABLE[(DoctorState.DONE, kind)].ends - {DoctorState.DONE} for kind in (ProbeFinished, Tick))


@pytest.mark.parametrize("key", list(TABLE), ids=lambda k: f"{k[0].name}-{k[1].__name__}")
def test_each_row_ends_in_its_to_or_one_of_its_exits(key: tuple[DoctorState, type]) -> None:
    state, kind = key
    row = TABLE[key]
    reached = set()
    for ends in (False, True):
        doc = in_state(state)
        now = 0.0 if kind is not Tick or not ends else 100.0  # a Tick past the deadline fails the probe
        doc.handle(example(kind, doc, ends=ends), now=now)
        assert doc.state in row.ends, (key, doc.state)
        assert doc.finished is (doc.state is DoctorState.DONE)
        reached.add(doc.state)
    assert reached == row.ends, (key, reached)


@pytest.mark.parametrize("state", list(DoctorState))
def test_pairs_missing_from_the_table_are_misuse_and_change_nothing(state: DoctorState) -> None:
    missing = [kind for kind in INPUTS if (state, kind) not in TABLE]
    for kind in missing:
        doc = in_state(state)
        with pytest.raises(LocalProtocolError):
            doc.handle(example(kind, doc, ends=False), now=0.0)
        assert doc.state is state
    with pytest.raises(LocalProtocolError, match="does not take"):
        in_state(state).handle(Note(level=NoteLevel.INFO, text="x"), now=0.0)  # an order, not an input


def test_transport_checks_are_0_4_7s_four_and_a_failed_one_has_a_hint() -> None:
    from thalovant.core.doctor_report import TRANSPORT_CHECKS, transport_check

    assert TRANSPORT_CHECKS == ("identity", "endpoint", "connect", "transport")
    failed = transport_check("connect", FAILED, "refused", 3.0)
    assert (failed.ok, failed.status, failed.duration_ms) == (False, "failed", 3.0) and failed.hint
    assert transport_check("transport", OK, "alive").hint == ""
    with pytest.raises(LocalProtocolError, match="transport check"):
        transport_check("dns", OK, "no such check with a transport")


def test_identity_summary_047_has_0_4_7s_keys_only() -> None:
    from thalovant.core.doctor_report import identity_summary_047

    plain = ThalovantIdentity.from_mapping(
        {"access_key": "k" * 12, "password": "p" * 12, "site_id": "s", "default_master": "https://u:pw@hub.test"}
    )
    summary = identity_summary_047(plain)
    assert list(summary) == ["site_id", "default_master", "default_port", "default_path"]
    assert summary["default_master"] == "https://hub.test" and "k" * 12 not in json.dumps(summary)
