"""TLS for the loopback test hub: a throwaway CA, a server certificate for 127.0.0.1, and a hub whose
WebSocket and HTTP plugins serve ``wss://`` and ``https://`` with it.

Theory of operation
-------------------
``make_certificates(folder)`` creates, with ``cryptography``, a CA key + self-signed CA certificate
(``ca.crt``) and a server key + certificate signed by it (``hivemind.crt`` / ``hivemind.key``) whose
subjectAltName is ``IP:127.0.0.1`` and ``DNS:localhost``. Keys are mode 0600.

``TlsTestHub`` is a ``TestHub`` whose configuration step also turns ``ssl`` on for the
``hivemind-websocket-plugin`` and ``hivemind-http-plugin`` (their ``cert_dir``/``cert_name`` options
point at those files, so the plugins never generate their own self-signed certificate) and rewrites
the identity files to ``wss://`` / ``https://`` endpoints. Its readiness check speaks TLS (verified
against the CA) instead of plain HTTP. Everything else (processes, pids, ports) is ``TestHub``'s.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness import procs
from tests.harness.hub import READY_TIMEOUT, TestHub

__all__ = ["TlsFiles", "TlsTestHub", "make_certificates", "tls_http_status"]

CERT_NAME = "hivemind"


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the generated CA certificate and the server certificate/key."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @property
    def cert_dir(self) -> Path:
        return self.cert_file.parent


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def make_certificates(folder: Path, *, days: int = 2) -> TlsFiles:
    """Create a CA and a server certificate for 127.0.0.1/localhost in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "thalovant test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca_file=folder / "ca.crt", cert_file=folder / f"{CERT_NAME}.crt", key_file=folder / f"{CERT_NAME}.key"
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files.key_file, server_key)
    return files


def tls_http_status(port: int, target: str, ca_file: Path, timeout: float = 1.0) -> int | None:
    """Status code of ``GET target`` over TLS (verified against ``ca_file``), or None."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            sock.settimeout(timeout)
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(64)
    except (OSError, ssl.SSLError):
        return None
    parts = head.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


class TlsTestHub(TestHub):
    """A hub 4.x/5.x test hub serving WSS and HTTPS with a certificate from a local CA."""

    __test__ = False

    tls: TlsFiles | None = None

    def _configure(self) -> None:
        super()._configure()
        self.tls = make_certificates(self.run_dir / "tls")
        server_path = self.run_dir / "config" / "hivemind-core" / "server.json"
        server = json.loads(server_path.read_text())
        for plugin in ("hivemind-websocket-plugin", "hivemind-http-plugin"):
            server["network_protocol"][plugin].update(ssl=True, cert_dir=str(self.tls.cert_dir), cert_name=CERT_NAME)
        server_path.write_text(json.dumps(server, indent=1))  # keeps the file's 0600 mode
        ports = self._ports()
        for kind in self.kinds:
            path = self.identity_path(kind)
            identity = json.loads(path.read_text())
            identity["default_master"] = "https://127.0.0.1"
            identity["data_plane_endpoints"].update(
                https=f"https://127.0.0.1:{ports.http}", wss=f"wss://127.0.0.1:{ports.ws}"
            )
            path.write_text(json.dumps(identity, indent=1))

    def start_hub(self) -> None:
        """Start hivemind-core and wait until WSS and HTTPS answer over verified TLS."""
        ports = self._ports()
        assert self.tls is not None
        ca = self.tls.ca_file
        log = self.run_dir / "logs" / "hub.log"
        self._hub_log_offset = log.stat().st_size if log.exists() else 0
        t0 = time.monotonic()
        launcher = str(Path(__file__).resolve().parent / "hub_launcher.py")
        self._spawn(
            "hub",
            [self._python(), "-u", launcher, "--log-level", "INFO", "--log-path", "stdout"],
            log,
            "hub_launcher.py",
        )

        def ready() -> bool:
            if tls_http_status(ports.ws, "/", ca) != 400 or tls_http_status(ports.http, "/get_messages", ca) != 400:
                return False
            return not self.mqtt_available or "[MQTT] Connected to broker" in self._hub_log()

        procs.wait_until(
            "hivemind-core (TLS)", ready, READY_TIMEOUT, alive=lambda: self._procs.alive("hub"), logs=(log,)
        )
        self.timings.start["hub"] = time.monotonic() - t0
