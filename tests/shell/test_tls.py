"""thalovant.shell.tls against a locally generated CA and a TLS server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fakes.control_server import FakeControlServer
from thalovant.errors import ThalovantAPIError, ThalovantConnectionError
from thalovant.shell.links.http import HttpConnection, HttpTimeouts
from thalovant.shell.sync.control_plane import ThalovantControlPlane
from thalovant.shell.tls import InsecureTLSWarning, make_ssl_context

FAST = HttpTimeouts(connect=3, read=3, write=3, total=5)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_pki(directory: Path) -> dict[str, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("thalovant test CA"))
        .issuer_name(_name("thalovant test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": directory / "ca.pem", "cert": directory / "server.pem", "key": directory / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _write_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_server(pki: dict[str, Path]) -> Iterator[FakeControlServer]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki["cert"], pki["key"])
    with FakeControlServer(ssl_context=server_ctx) as srv:
        yield srv


async def _get(port: int, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> int:
    async with HttpConnection(host, port, tls=True, ssl_context=ctx, timeouts=FAST) as conn:
        return (await conn.request("GET", "/api/v1/hubs")).status


def test_default_context_verifies() -> None:
    ctx = make_ssl_context()
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_verified_with_the_test_ca(tls_server: FakeControlServer, pki: dict[str, Path]) -> None:
    assert anyio.run(_get, tls_server.port, make_ssl_context(ca_file=pki["ca"])) == 401  # TLS fine; no token


def test_ssl_cert_file_is_honoured(
    tls_server: FakeControlServer, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca"]))
    assert anyio.run(_get, tls_server.port, make_ssl_context()) == 401


def test_rejected_without_the_ca(tls_server: FakeControlServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(ThalovantConnectionError, match="certificate verification failed") as info:
        anyio.run(_get, tls_server.port, make_ssl_context())
    assert info.value.retryable is False


def test_rejected_when_the_host_name_does_not_match(tls_server: FakeControlServer, pki: dict[str, Path]) -> None:
    # the certificate names only 127.0.0.1; dialling "localhost" must fail the host-name check
    with pytest.raises(ThalovantConnectionError):
        anyio.run(_get, tls_server.port, make_ssl_context(ca_file=pki["ca"]), "localhost")


def test_insecure_accepts_and_warns(tls_server: FakeControlServer) -> None:
    with pytest.warns(InsecureTLSWarning, match="disabled"):
        ctx = make_ssl_context(insecure=True)
    assert ctx.verify_mode is ssl.CERT_NONE
    assert anyio.run(_get, tls_server.port, ctx) == 401


def test_self_signed_alias_warns_too() -> None:
    with pytest.warns(InsecureTLSWarning):
        assert make_ssl_context(self_signed=True).check_hostname is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_ssl_context(self_signed=False).check_hostname is True


def test_missing_ca_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        make_ssl_context(ca_file=tmp_path / "absent.pem")


def test_control_plane_over_tls(tls_server: FakeControlServer, pki: dict[str, Path]) -> None:
    with ThalovantControlPlane(tls_server.url, ca_file=str(pki["ca"])) as cp:
        cp.login("dev@example.test", "correct horse battery")
        assert cp.get_hub("hub-1")["id"] == "hub-1"


def test_control_plane_over_tls_without_ca_is_an_api_error(
    tls_server: FakeControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(ThalovantAPIError, match="certificate verification failed") as info:
        ThalovantControlPlane(tls_server.url).login("dev@example.test", "correct horse battery")
    assert "correct horse" not in str(info.value)
