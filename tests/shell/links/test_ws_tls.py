"""wss: WsConnection over TLS to a loopback server with a throwaway self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from wsproto.events import TextMessage

from tests.shell.links.test_ws import Peer
from thalovant.errors import ThalovantConnectionError
from thalovant.shell.links.ws import WsConnection

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_cert(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for localhost/127.0.0.1; return (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_wss_round_trip_with_verified_certificate(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    listener = TLSListener(
        await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0), server_ctx, standard_compatible=False
    )
    port = listener.listener.extra(SocketAttribute.local_port)

    async def handler(stream: anyio.abc.ByteStream) -> None:
        peer = Peer(stream)  # type: ignore[arg-type]
        async with stream:
            with anyio.move_on_after(5):
                await peer.accept()
                await peer.send(TextMessage(data="x" * 70_000))  # larger than one TLS record
                await peer.echo_until_close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        with anyio.fail_after(10):
            good = ssl.create_default_context(cafile=str(cert))
            ws = await WsConnection.connect("127.0.0.1", port, "/?authorization=abc=", tls=good, timeout=5)
            assert await ws.receive() == "x" * 70_000
            await ws.send_text("over tls")
            assert await ws.receive() == "over tls"
            await ws.close()

            untrusted = ssl.create_default_context()  # system CAs do not know our certificate
            with pytest.raises(ThalovantConnectionError, match="TLS") as info:
                await WsConnection.connect(
                    "127.0.0.1", port, "/?authorization=abc=", tls=untrusted, server_hostname="localhost", timeout=5
                )
            assert "abc" not in str(info.value)
        tg.cancel_scope.cancel()
