"""run_doctor against small servers on 127.0.0.1: refused, silent, TLS (trusted or not), hub-like and non-hub HTTP."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSListener
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.doctor import CheckStatus, ThalovantDoctorReport
from thalovant.core.errors import ThalovantAuthenticationError
from thalovant.shell.doctor import run_doctor
from thalovant.shell.doctor_admission import judge_connect
from thalovant.shell.identity_io import ThalovantIdentity

KEY = "f00dfeedf00dfeedf00dfeedf00dfeed"
PASSWORD = "correct-horse-battery"
UA = "DoctorTest"
Handler = Callable[[anyio.abc.ByteStream], Awaitable[None]]


def ident(master: str, **over: Any) -> ThalovantIdentity:
    values: dict[str, Any] = {"access_key": KEY, "password": PASSWORD, "default_master": master, "site_id": "den"}
    values.update(over)
    return ThalovantIdentity.from_mapping(values)


def statuses(report: ThalovantDoctorReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def assert_no_secret(report: ThalovantDoctorReport) -> None:
    text = report.format() + json.dumps(report.as_dict())
    for secret in (KEY, PASSWORD, "RG9jdG9yVGVzdDpmMDBk"):  # the key, the password, the token's start
        assert secret not in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(
    handler: Handler, body: Callable[[int], Awaitable[ThalovantDoctorReport]], tls: ssl.SSLContext | None = None
) -> ThalovantDoctorReport:
    """Serve ``handler`` on a loopback port while ``body(port)`` runs; everything bounded to 20 s."""
    listener: anyio.abc.Listener[Any] = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # type: ignore[attr-defined]
    if tls is not None:
        listener = TLSListener(listener, tls, standard_compatible=False)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:

            async def guarded(stream: anyio.abc.ByteStream) -> None:
                try:
                    with anyio.move_on_after(10):
                        await handler(stream)
                except (anyio.BrokenResourceError, anyio.EndOfStream, anyio.ClosedResourceError, ssl.SSLError, OSError):
                    pass
                finally:
                    await anyio.aclose_forcefully(stream)

            async def accept() -> None:
                try:
                    await listener.serve(guarded)
                except (ssl.SSLError, OSError, anyio.BrokenResourceError):
                    pass

            tg.start_soon(accept)
            report = await body(port)
            tg.cancel_scope.cancel()
    await listener.aclose()
    return report


def http_server(routes: dict[str, tuple[int, bytes]], seen: list[str]) -> Handler:
    """A keep-alive HTTP/1.1 server answering by path (query ignored); records every request line."""

    async def handle(stream: anyio.abc.ByteStream) -> None:
        buffer = b""
        for _ in range(10):
            while b"\r\n\r\n" not in buffer:
                buffer += await stream.receive()
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            seen.append(lines[0])
            length = next(
                (int(v) for k, _, v in (h.partition(": ") for h in lines[1:]) if k.lower() == "content-length"), 0
            )
            while len(buffer) < length:
                buffer += await stream.receive()
            buffer = buffer[length:]
            path = lines[0].split(" ")[1].split("?")[0]
            status, body = routes.get(path, (404, b"<html>not found</html>"))
            await stream.send(
                f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                + body
            )

    return handle


HUB_ROUTES = {"/connect": (200, b'{"status": "Connected"}'), "/disconnect": (200, b'{"status": "Disconnected"}')}


# ---- TCP level ----------------------------------------------------------------------------------


def test_closed_port_fails_tcp_and_skips_the_rest_with_hints() -> None:
    port = free_port()
    report = anyio.run(lambda: run_doctor(ident(f"http://127.0.0.1:{port}"), timeout=2.0, useragent=UA))
    assert statuses(report) == {
        "identity": "ok",
        "endpoint": "ok",
        "dns": "ok",
        "tcp": "failed",
        "tls": "skipped",
        "admission": "skipped",
        "handshake": "skipped",
        "link": "skipped",
    }
    tcp = report.check("tcp")
    assert tcp is not None and "refused" in tcp.detail and "nothing listens" in tcp.hint
    assert report.check("admission").hint == "fix tcp first"  # type: ignore[union-attr]
    assert not report.ok and report.format().startswith("Thalovant doctor: failed")


def test_silent_server_times_out_at_admission() -> None:
    async def silent(stream: anyio.abc.ByteStream) -> None:
        await anyio.sleep(5)

    async def body(port: int) -> ThalovantDoctorReport:
        return await run_doctor(ident(f"http://127.0.0.1:{port}"), timeout=0.5, useragent=UA)

    report = anyio.run(serve, silent, body)
    assert statuses(report)["tcp"] == "ok" and statuses(report)["admission"] == "failed"
    admission = report.check("admission")
    assert admission is not None and "no answer within 0.5 s" in admission.detail and "wrong port" in admission.hint
    assert 400 < admission.duration_ms < 3000


def test_unresolvable_host_uses_the_injected_resolver() -> None:
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    report = anyio.run(lambda: run_doctor(ident("http://hub.invalid:5679"), resolver=resolver, useragent=UA))
    assert asked == [("hub.invalid", 5679)]
    dns = report.check("dns")
    assert dns is not None and dns.status == "failed" and "hub.invalid" in dns.detail and "DNS" in dns.hint
    assert [c.status for c in report.checks[3:]] == ["skipped"] * 5


# ---- HTTP admission -----------------------------------------------------------------------------


def test_hub_like_http_server_admits_and_is_disconnected_again() -> None:
    seen: list[str] = []

    async def body(port: int) -> ThalovantDoctorReport:
        return await run_doctor(ident(f"http://127.0.0.1:{port}/hm"), timeout=2.0, useragent=UA)

    report = anyio.run(serve, http_server({"/hm" + k: v for k, v in HUB_ROUTES.items()}, seen), body)
    assert statuses(report)["admission"] == "ok" and report.ok
    assert [line.split("?")[0] for line in seen] == ["POST /hm/connect", "POST /hm/disconnect"]
    assert "?authorization=RG9jdG9yVGVzdDpmMDBk" in seen[0]  # the real token went on the wire ...
    assert_no_secret(report)  # ... but never into the report
    assert report.check("handshake").hint.startswith("run through the client")  # type: ignore[union-attr]


def test_non_hub_http_server_404_gives_a_hint() -> None:
    async def body(port: int) -> ThalovantDoctorReport:
        return await run_doctor(ident(f"http://127.0.0.1:{port}"), timeout=2.0, useragent=UA)

    report = anyio.run(serve, http_server({}, []), body)
    admission = report.check("admission")
    assert admission is not None and admission.status == "failed" and "404" in admission.detail
    assert "5679" in admission.hint and statuses(report)["handshake"] == "skipped"


def test_hub_refusing_the_key_gives_the_access_key_hint() -> None:
    routes = {"/connect": (500, b'{"error": "Connection failed"}')}

    async def body(port: int) -> ThalovantDoctorReport:
        return await run_doctor(ident(f"http://127.0.0.1:{port}"), timeout=2.0, useragent=UA)

    report = anyio.run(serve, http_server(routes, []), body)
    admission = report.check("admission")
    assert admission is not None and admission.status == "failed" and "Connection failed" in admission.detail
    assert "access key" in admission.hint


def test_callbacks_run_handshake_and_link_and_their_errors_are_scrubbed() -> None:
    async def good() -> str:
        return "connected and handshake completed"

    async def leaky() -> str:
        raise ThalovantAuthenticationError(f"hub said no to {KEY} / {PASSWORD}")

    async def body(port: int, hs: Callable[[], Awaitable[str]]) -> ThalovantDoctorReport:
        return await run_doctor(
            ident(f"http://127.0.0.1:{port}"), timeout=2.0, useragent=UA, handshake_probe=hs, link_probe=good
        )

    ok = anyio.run(serve, http_server(HUB_ROUTES, []), lambda port: body(port, good))
    assert statuses(ok)["handshake"] == "ok" and statuses(ok)["link"] == "ok" and ok.ok
    bad = anyio.run(serve, http_server(HUB_ROUTES, []), lambda port: body(port, leaky))
    handshake = bad.check("handshake")
    assert handshake is not None and handshake.status == "failed" and "***" in handshake.detail
    assert "access_key" in handshake.hint and statuses(bad)["link"] == "skipped"
    assert_no_secret(bad)


# ---- TLS ----------------------------------------------------------------------------------------


def _pki(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A one-off CA and a server certificate for 127.0.0.1; returns the CA file and a server context."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor test root")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return ca_file, server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    return _pki(tmp_path_factory.mktemp("doctor-pki"))


def _tls_run(server: ssl.SSLContext, **kwargs: Any) -> ThalovantDoctorReport:
    async def body(port: int) -> ThalovantDoctorReport:
        return await run_doctor(ident(f"https://127.0.0.1:{port}"), timeout=2.0, useragent=UA, **kwargs)

    return anyio.run(serve, http_server(HUB_ROUTES, []), body, server)


def test_tls_untrusted_without_ca_file(pki: tuple[Path, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    report = _tls_run(pki[1])
    tls = report.check("tls")
    assert tls is not None and tls.status == "failed" and "not trusted" in tls.detail and "ca_file" in tls.hint
    assert statuses(report)["admission"] == "skipped"


def test_tls_verified_with_ca_file_then_admitted(pki: tuple[Path, ssl.SSLContext]) -> None:
    report = _tls_run(pki[1], ca_file=pki[0])
    tls = report.check("tls")
    assert tls is not None and tls.status == "ok" and "certificate verified" in tls.detail and tls.duration_ms > 0
    assert statuses(report)["admission"] == "ok" and report.ok


def test_tls_insecure_is_a_warning_not_a_failure(pki: tuple[Path, ssl.SSLContext]) -> None:
    report = _tls_run(pki[1], insecure=True)
    assert statuses(report)["tls"] == "warning" and statuses(report)["admission"] == "ok" and report.ok
    assert "NOT verified" in report.check("tls").detail  # type: ignore[union-attr]


def test_missing_ca_file_fails_tls_with_a_hint(pki: tuple[Path, ssl.SSLContext], tmp_path: Path) -> None:
    report = _tls_run(pki[1], ca_file=tmp_path / "nope.pem")
    tls = report.check("tls")
    assert tls is not None and tls.status == "failed" and "ca_file" in tls.hint


def test_plain_server_on_a_tls_endpoint_fails_tls() -> None:
    async def body(port: int) -> ThalovantDoctorReport:
        return await run_doctor(ident(f"https://127.0.0.1:{port}"), timeout=1.0, useragent=UA)

    report = anyio.run(serve, http_server(HUB_ROUTES, []), body)
    assert statuses(report)["tls"] == "failed" and statuses(report)["admission"] == "skipped"


# ---- properties of the answer judging ----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    status=st.integers(100, 599),
    body=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda d: json.dumps(d).encode(),
            st.dictionaries(
                st.sampled_from(["status", "error", "x"]), st.one_of(st.text(max_size=30), st.integers(), st.none())
            ),
        ),
    ),
)
def test_any_connect_answer_is_judged_without_raising(status: int, body: bytes) -> None:
    verdict = judge_connect(status, body, "POST /connect")
    assert verdict.status in (CheckStatus.OK, CheckStatus.FAILED)
    assert (verdict.status is CheckStatus.OK) == (
        status == 200 and isinstance(parsed := _json_or_none(body), dict) and parsed.get("error") is None
    )
    assert "\n" not in verdict.detail and len(verdict.detail) < 400


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def test_an_invalid_identity_mapping_fails_the_identity_check_without_raising_or_leaking() -> None:
    raw = {"access_key": KEY, "password": PASSWORD, "site_id": "den", "default_port": 99999}
    report = anyio.run(lambda: run_doctor(raw, useragent=UA))
    identity = report.check("identity")
    assert identity is not None and identity.status == "failed"
    assert "default_master" in identity.detail and "default_port" in identity.detail  # every problem at once
    assert [c.status for c in report.checks[1:]] == ["skipped"] * 7
    assert_no_secret(report)


def test_a_valid_identity_mapping_is_accepted() -> None:
    port = free_port()
    raw = {"access_key": KEY, "password": PASSWORD, "site_id": "den", "default_master": f"http://127.0.0.1:{port}"}
    report = anyio.run(lambda: run_doctor(raw, useragent=UA, timeout=2.0))
    assert statuses(report)["identity"] == "ok" and statuses(report)["tcp"] == "failed"


def test_a_client_timeout_in_the_handshake_callback_keeps_its_words() -> None:
    from thalovant.core.errors import ThalovantTimeoutError

    async def slow() -> str:
        raise ThalovantTimeoutError("no ready session with the hub within 10 s")

    async def body(port: int) -> ThalovantDoctorReport:
        return await run_doctor(ident(f"http://127.0.0.1:{port}"), timeout=2.0, useragent=UA, handshake_probe=slow)

    report = anyio.run(serve, http_server(HUB_ROUTES, []), body)
    handshake = report.check("handshake")
    assert handshake is not None and handshake.detail == "no ready session with the hub within 10 s"
    assert "password" in handshake.hint and statuses(report)["link"] == "skipped"
