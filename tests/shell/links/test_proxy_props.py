"""The CONNECT exchange's reading side: whatever a proxy answers, the tunnel opens or a typed error says why.

The proxy's answer is scripted into an in-memory byte stream (split into arbitrary chunks), so no
socket is involved; ``open_tunnel``'s reading half (``_handshake``) runs for real with h11.
"""

from __future__ import annotations

import itertools

import anyio
import anyio.abc
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.errors import ThalovantProxyAuthenticationError, ThalovantProxyError
from thalovant.core.links.proxy import parse_proxy_url
from thalovant.shell.links import proxy as shell_proxy

SECRET = "Pr0xy-pw!"
PROXY = parse_proxy_url(f"http://alice:{SECRET}@proxy.corp:3128")


class ScriptedStream(anyio.abc.ByteStream):
    """Hands out ``chunks`` one per ``receive``, then end of stream; keeps what was sent."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sent = b""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.lowlevel.checkpoint()
        if not self.chunks:
            raise anyio.EndOfStream
        chunk = self.chunks.pop(0)
        if len(chunk) > max_bytes:
            self.chunks.insert(0, chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        return chunk

    async def send(self, item: bytes) -> None:
        self.sent += item

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def handshake(chunks: list[bytes]) -> tuple[BaseException | None, bytes]:
    stream = ScriptedStream(chunks)

    async def run() -> BaseException | None:
        try:
            await shell_proxy._handshake(stream, PROXY, "hub.example", 443)
        except ThalovantProxyError as exc:
            return exc
        return None

    return anyio.run(run), stream.sent


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


def test_the_request_asks_for_the_hub_with_the_credentials() -> None:
    error, sent = handshake([b"HTTP/1.1 200 Connection established\r\n\r\n"])
    assert error is None
    assert sent.startswith(b"CONNECT hub.example:443 HTTP/1.1\r\nHost: hub.example:443\r\n")
    assert b"Proxy-Authorization: Basic " in sent and sent.endswith(b"\r\n\r\n")


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_any_answer_opens_the_tunnel_or_raises_a_typed_error(data: bytes, cuts: list[int]) -> None:
    error, _sent = handshake(split(data, cuts))
    if error is not None:
        assert isinstance(error, ThalovantProxyError) and SECRET not in str(error) and "alice" not in str(error)
        assert str(error).isprintable()
    else:
        head = data.lstrip(b"\r\n")  # h11 tolerates blank lines before a response
        assert head.startswith(b"HTTP/1.") and head[9:10] == b"2"  # only a 2xx answer opens the tunnel


@settings(max_examples=200, deadline=None)
@given(
    status=st.integers(100, 599),
    reason=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    cuts=st.lists(st.integers(0, 200), max_size=6),
    body=st.binary(max_size=50),
)
def test_a_well_formed_final_answer_is_judged_by_its_status(
    status: int, reason: str, cuts: list[int], body: bytes
) -> None:
    if 100 <= status < 200:
        status += 100  # informational answers are skipped; test the final one
    length = b"" if 200 <= status < 300 else f"Content-Length: {len(body)}\r\n".encode()
    answer = f"HTTP/1.1 {status} {reason}\r\n".encode() + length + b"\r\n" + (b"" if 200 <= status < 300 else body)
    error, _sent = handshake(split(answer, cuts))
    if 200 <= status < 300:
        assert error is None
    else:
        assert error is not None and error.status_code == status and f"HTTP {status}" in str(error)
        assert isinstance(error, ThalovantProxyAuthenticationError) is (status == 407)


def test_informational_answers_are_skipped_but_bounded() -> None:
    assert handshake([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"])[0] is None
    flood = b"HTTP/1.1 100 Continue\r\n\r\n" * 20 + b"HTTP/1.1 200 OK\r\n\r\n"
    error = handshake([flood])[0]
    assert isinstance(error, ThalovantProxyError) and not error.retryable


def test_an_endless_head_is_refused_without_reading_it_all() -> None:
    endless = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Filler: " + b"a" * 1000 + b"\r\n"] * 100
    error = handshake(endless)[0]
    assert isinstance(error, ThalovantProxyError) and "did not answer the CONNECT with HTTP" in str(error)
