"""Wire details of the hub HTTP transport (spec §8.2), used by :mod:`.http_poll`.

The HTTP-specific inputs and outputs (re-exported by :mod:`.http_poll`) and
pure helpers: the five hub requests (:class:`RequestKind`, :func:`start_request`),
JSON answer parsing (``Result`` at this boundary), form bodies, request headers,
the hub 5.x replica cookie, and the tuning knobs.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core import jsontree
from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.base import form_encode, printable
from thalovant.core.machine import Input, Output
from thalovant.core.wire.frame import Frame

__all__ = [
    "CancelRequest",
    "RequestFailed",
    "ResponseProgress",
    "ResponseReceived",
    "StartRequest",
    "Headers",
    "HttpPollConfig",
    "HttpProblem",
    "RequestKind",
    "error_text",
    "parse_body",
    "poll_frames",
    "replica_cookie",
    "request_headers",
    "send_body",
    "start_request",
]

Headers = tuple[tuple[str, str], ...]
REPLICA_COOKIE = "hivemind_http_replica"


# ---- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived(Input):
    """The hub answered request ``req_id``."""

    req_id: int
    status: int
    headers: Headers = ()
    body: bytes = b""


#: ``RequestFailed.kind`` when the request never left (connect refused): no byte reached the hub.
NOT_SENT = "not-sent"
#: ``RequestFailed.kind`` when retrying cannot help: TLS verification failed, or a proxy refused the tunnel.
TLS_FAILED = "tls"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFailed(Input):
    """Request ``req_id`` got no HTTP answer. ``kind``: "connect", "timeout", "tls", "reset", ..."""

    req_id: int
    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseProgress(Input):
    """Bytes of the answer to request ``req_id`` arrived, the answer is not complete yet: the path works."""

    req_id: int


# ---- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class StartRequest(Output):
    """Send one HTTP request; answer with ``ResponseReceived`` or ``RequestFailed``.

    ``target`` holds the authorization token, so it is left out of ``repr``;
    use :attr:`redacted_target` in logs. ``headers`` has no framing headers:
    the shell adds ``Host`` and ``Content-Length`` (also ``Content-Length: 0``
    for an empty POST body, as Tornado-based hubs expect a framed POST).
    """

    req_id: int
    method: str
    target: str = field(repr=False)
    headers: Headers
    body: bytes

    def __repr__(self) -> str:
        return (
            f"StartRequest(req_id={self.req_id!r}, method={self.method!r}, target={self.redacted_target!r}, "
            f"headers={self.headers!r}, body={self.body!r})"
        )

    @property
    def redacted_target(self) -> str:
        """``target`` with the ``authorization`` value replaced by ``***``."""
        path, sep, _ = self.target.partition("?authorization=")
        return f"{path}{sep}***" if sep else path


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRequest(Output):
    """Abandon request ``req_id``; any later answer to it is ignored."""

    req_id: int


@dataclass(frozen=True, slots=True)
class HttpProblem:
    """Why a hub answer was not usable. Never holds a secret."""

    code: str  # "bad-json", "not-an-object", "bad-field"
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpPollConfig:
    """Timing and behaviour knobs of :class:`HttpPoll` (seconds)."""

    idle_first: float = 0.025
    idle_factor: float = 2.0
    idle_max: float = 0.5
    hot_window: float = 1.0  # after a send or a non-empty reply, keep polling every hot_interval this long
    hot_interval: float = 0.005
    hot_growth: float = 1.0  # each empty poll in the hot window multiplies the interval (1.0: constant)
    error_base: float = 0.25
    error_max: float = 5.0
    max_errors: int = 5
    request_timeout: float = 10.0
    max_queue: int = 256
    poll_binary: bool = True
    binary_uploads: bool = False  # hub 5.x only: ``binary=1`` sends
    reset_on_start: bool = True
    base_path: str = ""

    def __post_init__(self) -> None:
        if self.hot_window < 0 or self.hot_interval <= 0 or not self.hot_growth >= 1.0:
            raise LocalProtocolError("HttpPollConfig: need hot_window >= 0, hot_interval > 0 and hot_growth >= 1")
        if not (0 < self.idle_first <= self.idle_max and self.idle_factor >= 1.0):
            raise LocalProtocolError("HttpPollConfig: need 0 < idle_first <= idle_max and idle_factor >= 1")
        if not (0 < self.error_base <= self.error_max) or self.max_errors < 1:
            raise LocalProtocolError("HttpPollConfig: need 0 < error_base <= error_max and max_errors >= 1")
        if self.request_timeout <= 0 or self.max_queue < 1:
            raise LocalProtocolError("HttpPollConfig: request_timeout and max_queue must be positive")
        if self.base_path and (not self.base_path.startswith("/") or self.base_path.endswith("/")):
            raise LocalProtocolError("HttpPollConfig: base_path must start with '/' and not end with '/'")


def parse_body(body: bytes) -> Result[dict[str, Any], HttpProblem]:
    """Parse a hub JSON answer; anything but a JSON object is a problem."""
    try:
        value = jsontree.loads(body.decode("utf-8"))
    except jsontree.JsonTooDeep as exc:
        return Failure(HttpProblem("too-deep", str(exc)))
    except ValueError as exc:  # UnicodeDecodeError included
        return Failure(HttpProblem("bad-json", type(exc).__name__))
    if not isinstance(value, dict):
        return Failure(HttpProblem("not-an-object", type(value).__name__))
    return Success(value)


def error_text(value: dict[str, Any]) -> str | None:
    """The hub's ``{"error": ...}`` text, shortened and made printable; None when there is no error."""
    err = value.get("error")
    if err is None:
        return None
    if not isinstance(err, str):
        return f"<{type(err).__name__} error>"
    return printable(err, 200)


def poll_frames(value: dict[str, Any], *, binary: bool) -> Result[tuple[list[str | bytes], int], HttpProblem]:
    """The frames of a poll answer, and how many entries were skipped as undecodable."""
    key = "b64_messages" if binary else "messages"
    items = value.get(key, [])
    if not isinstance(items, list):
        return Failure(HttpProblem("bad-field", key))
    got: list[str | bytes] = []
    skipped = 0
    for item in items:
        if not isinstance(item, str):
            skipped += 1
        elif binary:
            try:
                got.append(base64.b64decode(item, validate=True))
            except (binascii.Error, ValueError):
                skipped += 1
        else:
            got.append(item)
    return Success((got, skipped))


def send_body(data: Frame) -> bytes:
    """The ``/send_message`` form body: ``message=<text>``, or hub 5.x ``message=<base64>&binary=1``."""
    if isinstance(data, bytes):
        return form_encode((("message", base64.b64encode(data).decode("ascii")), ("binary", "1")))
    return form_encode((("message", data),))


def request_headers(*, useragent: str, cookie: str | None, method: str) -> Headers:
    """Headers for one hub request.

    No ``Authorization`` header (no hub reads one, §3.1) and no framing
    headers: the HTTP shell adds ``Host`` and ``Content-Length`` itself.
    """
    headers: list[tuple[str, str]] = [("User-Agent", useragent), ("Accept", "application/json")]
    if cookie is not None:
        headers.append(("Cookie", f"{REPLICA_COOKIE}={cookie}"))
    if method == "POST":
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    return tuple(headers)


class RequestKind(enum.Enum):
    """The hub requests a link makes (``RESET`` is the ``/disconnect`` sent before ``/connect``)."""

    RESET = "reset"
    CONNECT = "connect"
    POLL_TEXT = "poll-text"
    POLL_BINARY = "poll-binary"
    SEND = "send"
    DISCONNECT = "disconnect"


_PATHS = {
    RequestKind.RESET: "/disconnect",
    RequestKind.CONNECT: "/connect",
    RequestKind.POLL_TEXT: "/get_messages",
    RequestKind.POLL_BINARY: "/get_binary_messages",
    RequestKind.SEND: "/send_message",
    RequestKind.DISCONNECT: "/disconnect",
}
#: The kinds that read a queue (GET); the others are POSTs.
POLLS = frozenset({RequestKind.POLL_TEXT, RequestKind.POLL_BINARY})


def start_request(
    req_id: int,
    kind: RequestKind,
    *,
    base_path: str,
    query: str,
    useragent: str,
    cookie: str | None,
    data: Frame | None,
) -> StartRequest:
    """The ``StartRequest`` for one hub request; ``data`` is the frame of a send (else None)."""
    method = "GET" if kind in POLLS else "POST"
    return StartRequest(
        req_id=req_id,
        method=method,
        target=f"{base_path}{_PATHS[kind]}{query}",
        headers=request_headers(useragent=useragent, cookie=cookie, method=method),
        body=send_body(data) if data is not None else b"",
    )


def replica_cookie(headers: Headers) -> str | None:
    """The ``hivemind_http_replica`` value from ``Set-Cookie`` headers, if a sane one is there."""
    found: str | None = None
    for name, value in headers:
        if name.lower() != "set-cookie":
            continue
        key, sep, val = value.split(";", 1)[0].strip().partition("=")
        val = val.strip()
        if sep and key.strip() == REPLICA_COOKIE and val and all(32 < ord(c) < 127 and c != ";" for c in val):
            found = val
    return found
