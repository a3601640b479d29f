"""WsLink: the WebSocket transport's pure half (spec §8.1, §3.2, §3.3).

Theory of operation
-------------------
The shell does the WebSocket protocol (wsproto); this machine decides what to
ask for and what a close means::

    CONNECTING --WsOpened--> OPEN (LinkUp; queued frames flushed)
    CONNECTING --WsClosed / WsRejected--> CLOSED (LinkDown)
    OPEN --WsMessage--> OPEN (InboundFrame)
    OPEN --OutboundFrame--> OPEN (SendWs, FrameSent)
    OPEN --StopRequested--> CLOSING (CloseWs 1000) --WsClosed or close_timeout--> CLOSED
    OPEN --WsClosed--> CLOSED (LinkDown classified by close code)
    OPEN --Tick, idle--> OPEN (PingWs) --Tick, nothing heard in timeout--> CLOSED (LinkDown)

Liveness (:mod:`.liveness`): a stalled or half-open path keeps the socket "open" and silent.
After ``liveness.idle`` seconds with nothing from the hub the machine orders a ``PingWs``; if
nothing at all (``WsPonged``, a message, or ``WsReceiving``: bytes of a message still on its way)
arrives within ``liveness.timeout`` the link is lost, retryable, ``liveness.bound`` seconds after
the last thing heard at the latest. Hub 4.x and 5.x answer pings (their WebSocket servers do it on
their own), but the PONG queues behind whatever the hub is already sending: an 8 MiB message that
takes longer than ``timeout`` to arrive is not silence, so the shell reports its bytes as
``WsReceiving`` (once per probe, when asked by ``PingWs``).

Upgrade target (§3.2). The token always travels as ``?authorization=`` on path
``/``; how it is written depends on the hub:

* ``auth_encoding="raw"`` (default): ``/?authorization=<token>`` exactly,
  not percent-encoded. Hub 4.x splits the raw URI on ``/?authorization=`` and
  never URL-decodes, so ``%3D`` breaks it (harness pitfall P8).
* ``auth_encoding="percent"``: hub 5.x URL-decodes the query; a raw ``+``
  would become a space. Use this for hub 5.x.
* Portable trick: when ``len(useragent + ":" + key) % 3 == 0`` and the token
  has no ``+`` or ``/``, both forms are identical (:func:`is_portable_token`).

``FrameSent`` here means "handed to the socket, in order": WebSocket has no
per-message acknowledgement, and a write failure closes the link, which the
shell reports as ``WsClosed(1006)``.

Close codes (§3.3) are sorted into ``LinkDown(reason, retryable, auth)``:

* 1008 with "api key" / "authorization" in the reason (hub 5.x): bad
  credentials, fatal. 1008 "handshake failure: ..." (hub 5.x could not read
  a Noise message, e.g. KKpsk0 after the hub's key changed): retryable, the
  next link runs XXpsk2 (spec §7.8). Other 1008 (v3 required, invalid message,
  Noise pin mismatch): fatal, not an auth problem.
* 1005 (no status) **before the first hub frame**: hub 4.x closes this way
  for an unknown access key (§3.3), so it is treated as fatal auth.
  1006 before the first frame is what hub 4.x does for a token it cannot
  decode, but also what any network failure looks like; it stays retryable
  and the reason asks the user to check the key and ``auth_encoding``. The
  reconnect policy's ``max_attempts`` bounds the retries.
* 1005/1006 after the greeting, 1000/1001 from the hub, 1011-1014: retryable.
* 4003 (QUERY not allowed, hub 5.x): retryable (the link is fine; that one
  request was refused). 1002/1003/1007/1009/1010 (our frames were bad) and
  1015 (TLS failed): fatal.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Literal

from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.base import (
    LINK_TRACE_TYPES,
    Frame,
    FrameSent,
    InboundFrame,
    LinkDown,
    LinkMachine,
    LinkUp,
    OutboundFrame,
    Refs,
    StopRequested,
    percent_encode,
    printable,
)
from thalovant.core.links.liveness import DEFAULT_LIVENESS, Liveness, LivenessConfig
from thalovant.core.machine import Input, Note, NoteLevel, Output, Row, Table, Tick

__all__ = [
    "TABLE",
    "TRACE_TYPES",
    "CloseWs",
    "PingWs",
    "SendWs",
    "WsClosed",
    "WsLink",
    "WsMessage",
    "WsOpened",
    "WsPonged",
    "WsReceiving",
    "WsRejected",
    "WsState",
    "classify_close",
    "is_portable_token",
    "ws_target",
]

AuthEncoding = Literal["raw", "percent"]


class WsState(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# ---- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WsOpened(Input):
    """The upgrade answered 101: the socket is open."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WsRejected(Input):
    """The upgrade answered ``status`` instead of 101 (only behind a proxy, §8.1)."""

    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WsMessage(Input):
    """One complete message: ``str`` for a text message, ``bytes`` for a binary one."""

    data: Frame


@dataclass(frozen=True, slots=True, kw_only=True)
class WsPonged(Input):
    """The hub answered a ping (a PONG frame arrived)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WsReceiving(Input):
    """Bytes arrived from the hub that complete no message yet (a large message on its way): the path works."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WsClosed(Input):
    """The socket closed. ``code`` None = no status (wsproto 1005); 1006 = no close frame or connect failed."""

    code: int | None
    reason: str = ""


# ---- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SendWs(Output):
    """Send ``data`` as one text (``str``) or binary (``bytes``) message."""

    data: Frame
    refs: Refs = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PingWs(Output):
    """Send a PING frame (the liveness probe); the hub's PONG comes back as ``WsPonged``.

    The shell also reports the first bytes that arrive after it and complete nothing as ``WsReceiving``.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseWs(Output):
    """Start the closing handshake with ``code`` and ``reason``."""

    code: int
    reason: str = ""


def ws_target(authorization: str, auth_encoding: AuthEncoding = "raw") -> str:
    """The upgrade request target for the token (spec §3.2).

    >>> ws_target("dTprZXk=")
    '/?authorization=dTprZXk='
    >>> ws_target("dTprZXk=", "percent")
    '/?authorization=dTprZXk%3D'
    """
    if auth_encoding == "raw":
        return "/?authorization=" + authorization
    if auth_encoding == "percent":
        return "/?authorization=" + percent_encode(authorization)
    raise LocalProtocolError(f"auth_encoding must be 'raw' or 'percent', not {auth_encoding!r}")


def is_portable_token(authorization: str) -> bool:
    """True if raw and percent-encoded targets are identical (works on every hub)."""
    return percent_encode(authorization) == authorization


_FATAL_CODES = {1002: "protocol error", 1003: "unsupported data", 1007: "invalid payload", 1009: "message too big"}
_FATAL_CODES |= {1010: "extension required", 1015: "TLS handshake failed"}
_RETRY_CODES = {1000: "normal closure", 1001: "going away", 1011: "internal error", 1012: "service restart"}
_RETRY_CODES |= {1013: "try again later", 1014: "bad gateway", 4003: "request not allowed"}


def classify_close(code: int | None, reason: str, *, greeted: bool) -> LinkDown:
    """Sort a hub-initiated close into a ``LinkDown`` (see the module docstring)."""
    why = printable(reason)
    label = f"close {code if code is not None else 1005}" + (f" {why!r}" if why else "")
    if code == 1008:
        auth = "api key" in why.lower() or "authorization" in why.lower()
        if auth:
            return LinkDown(reason=f"hub refused the credentials ({label})", retryable=False, auth=True)
        if "handshake failure" in why.lower():  # hub 5.x cannot read a KKpsk0 message 1: retry with XXpsk2
            return LinkDown(reason=f"hub refused the Noise handshake ({label})", retryable=True)
        return LinkDown(reason=f"hub rejected the client ({label})", retryable=False)
    if code in (None, 1005) and not greeted:
        text = f"hub closed without a status before greeting ({label}): unknown access key on hub 4.x"
        return LinkDown(reason=text, retryable=False, auth=True)
    if code == 1006 and not greeted:
        text = f"connection lost before the hub greeted ({label}); check the access key and auth_encoding"
        return LinkDown(reason=text, retryable=True)
    if code in (None, 1005, 1006):
        return LinkDown(reason=f"hub closed the connection ({label})", retryable=True)
    if code in _FATAL_CODES:
        return LinkDown(reason=f"hub closed the connection: {_FATAL_CODES[code]} ({label})", retryable=False)
    if code in _RETRY_CODES:
        return LinkDown(reason=f"hub closed the connection: {_RETRY_CODES[code]} ({label})", retryable=True)
    return LinkDown(reason=f"hub closed the connection ({label})", retryable=True)


class WsLink(LinkMachine[WsState]):
    """The WebSocket link machine; its transitions are :data:`TABLE`.

    Args:
        authorization: the §3.1 token. Secret: only :attr:`target` holds it.
        auth_encoding: ``"raw"`` (hub 4.x, default) or ``"percent"`` (hub 5.x).
        useragent: sent as ``User-Agent`` if given (see :attr:`headers`).
        close_timeout: how long to wait for the hub's close echo (seconds).
        max_queue: frames held while connecting.
        liveness: when to probe a quiet link and when to give it up (None: never).
    """

    _TERMINAL = frozenset({WsState.CLOSED})
    _CLOSED = WsState.CLOSED
    _QUIET = (OutboundFrame, StopRequested, Tick, WsOpened, WsRejected, WsMessage, WsPonged, WsReceiving, WsClosed)

    def __init__(
        self,
        *,
        authorization: str,
        auth_encoding: AuthEncoding = "raw",
        useragent: str | None = None,
        close_timeout: float = 5.0,
        max_queue: int = 64,
        liveness: LivenessConfig | None = DEFAULT_LIVENESS,
    ) -> None:
        if not authorization:
            raise LocalProtocolError("WsLink needs an authorization token")
        self._target = ws_target(authorization, auth_encoding)
        self._useragent = useragent
        self._close_timeout = close_timeout
        self._max_queue = max_queue
        self._state = WsState.CONNECTING
        self._queue: deque[OutboundFrame] = deque()
        self._greeted = False
        self._liveness_config = liveness
        self._liveness: Liveness | None = None  # runs while OPEN

    def __repr__(self) -> str:
        return f"<WsLink state={self._state.value} greeted={self._greeted}>"

    @property
    def target(self) -> str:
        """The upgrade request target. Holds the token: never log it."""
        return self._target

    @property
    def redacted_target(self) -> str:
        return "/?authorization=***"

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Extra upgrade headers (no hub requires any, §8.1)."""
        return (("User-Agent", self._useragent),) if self._useragent else ()

    @property
    def deadline(self) -> float | None:
        if self._state is WsState.OPEN and self._liveness is not None:
            return self._liveness.deadline
        return self._close_by if self._state is WsState.CLOSING else None

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns the orders for the shell.

        Unlisted pairs: late or repeated socket facts, early ticks and repeated stops are
        ignored; any other input is misuse.
        """
        return self._step(TABLE, inp, now)

    # ---- handlers -------------------------------------------------------------------------------

    def _on_opened(self, inp: WsOpened, now: float) -> list[Output]:
        if self._liveness_config is not None:
            self._liveness = Liveness(self._liveness_config, now=now)
        out: list[Output] = [LinkUp()]
        while self._queue:
            out.extend(self._on_send(self._queue.popleft(), now))
        return out

    def _on_rejected(self, inp: WsRejected, now: float) -> list[Output]:
        if inp.status in (401, 403):
            down = LinkDown(reason=f"upgrade refused (HTTP {inp.status})", retryable=False, auth=True)
        elif 500 <= inp.status < 600:
            down = LinkDown(reason=f"upgrade failed (HTTP {inp.status})", retryable=True)
        else:
            down = LinkDown(reason=f"upgrade refused (HTTP {inp.status}); is this a HiveMind hub?", retryable=False)
        return self._down(down)

    def _on_connect_failed(self, inp: WsClosed, now: float) -> list[Output]:
        text = f"could not connect ({printable(inp.reason) or 'no reason'})"
        # 1015: the TLS handshake failed (e.g. the certificate is not trusted): retrying cannot help
        return self._down(LinkDown(reason=text, retryable=inp.code != 1015))

    def _on_closed(self, inp: WsClosed, now: float) -> list[Output]:
        return self._down(classify_close(inp.code, inp.reason, greeted=self._greeted))

    def _on_stop_early(self, inp: StopRequested, now: float) -> list[Output]:
        return [CloseWs(code=1000, reason=""), *self._closed_by_client()]

    def _on_message(self, inp: WsMessage, now: float) -> list[Output]:
        self._greeted = True
        self._heard(now)
        return [InboundFrame(data=inp.data)]

    def _on_pong(self, inp: WsPonged | WsReceiving, now: float) -> list[Output]:
        self._heard(now)
        return []

    def _heard(self, now: float) -> None:
        if self._liveness is not None:
            self._liveness.heard(now)

    def _on_open_tick(self, inp: Tick, now: float) -> list[Output]:
        verdict = self._liveness.check(now) if self._liveness is not None else "wait"
        if verdict == "probe":
            return [PingWs()]
        if verdict == "dead" and self._liveness is not None:
            bound = self._liveness.config
            text = f"no answer from the hub within {bound.timeout:g} s of a ping after {bound.idle:g} s of silence"
            return self._down(LinkDown(reason=text + " (the network path stalled or lost a direction)", retryable=True))
        return []

    def _on_send(self, inp: OutboundFrame, now: float) -> list[Output]:
        return [SendWs(data=inp.data, refs=inp.refs), FrameSent(refs=inp.refs)]

    def _on_stop(self, inp: StopRequested, now: float) -> list[Output]:
        self._close_by = now + self._close_timeout
        return [CloseWs(code=1000, reason="")]

    def _on_close_done(self, inp: WsClosed, now: float) -> list[Output]:
        return self._closed_by_client()

    def _on_close_timeout(self, inp: Tick, now: float) -> list[Output]:
        if not self._close_overdue(now):
            return []
        note = Note(level=NoteLevel.DEBUG, text="ws: the hub did not answer our close; dropping the socket")
        return [note, *self._closed_by_client()]


_S = WsState
_R = Row  # each row is typed by the table annotation
#: (state, input type) -> Row(next state, handler, other possible ends). Unlisted pairs: late socket
#: facts are ignored; other inputs raise.
TABLE: Table[WsState, WsLink] = {
    (_S.CONNECTING, WsOpened): _R(_S.OPEN, WsLink._on_opened),  # LinkUp, flush queue
    (_S.CONNECTING, WsRejected): _R(_S.CLOSED, WsLink._on_rejected),  # 401/403 auth, 5xx retryable
    (_S.CONNECTING, WsClosed): _R(_S.CLOSED, WsLink._on_connect_failed),
    (_S.CONNECTING, OutboundFrame): _R(_S.CONNECTING, WsLink._on_queue),  # held until open
    (_S.CONNECTING, StopRequested): _R(_S.CLOSED, WsLink._on_stop_early),  # CloseWs + LinkDown at once
    (_S.OPEN, WsMessage): _R(_S.OPEN, WsLink._on_message),  # InboundFrame
    (_S.OPEN, OutboundFrame): _R(_S.OPEN, WsLink._on_send),  # SendWs + FrameSent
    (_S.OPEN, WsClosed): _R(_S.CLOSED, WsLink._on_closed),  # classify_close
    (_S.OPEN, StopRequested): _R(_S.CLOSING, WsLink._on_stop),  # CloseWs(1000), wait for the echo
    (_S.OPEN, WsPonged): _R(_S.OPEN, WsLink._on_pong),  # the path works
    (_S.OPEN, WsReceiving): _R(_S.OPEN, WsLink._on_pong),  # a large message on its way: the path works
    (_S.OPEN, Tick): _R(_S.OPEN, WsLink._on_open_tick, frozenset({_S.CLOSED})),  # PingWs, or dead: LinkDown
    (_S.CLOSING, WsClosed): _R(_S.CLOSED, WsLink._on_close_done),
    (_S.CLOSING, Tick): _R(_S.CLOSED, WsLink._on_close_timeout, frozenset({_S.CLOSING})),  # at close_timeout
    (_S.CLOSING, OutboundFrame): _R(_S.CLOSING, WsLink._on_refuse),
    (_S.CLOSED, OutboundFrame): _R(_S.CLOSED, WsLink._on_refuse),
}


#: Every class a WsLink trace may contain (for ``trace.TypeRegistry``).
TRACE_TYPES: tuple[type, ...] = (WsOpened, WsRejected, WsMessage, WsPonged, WsReceiving, WsClosed, SendWs, PingWs)
TRACE_TYPES += (CloseWs,)
TRACE_TYPES += LINK_TRACE_TYPES
