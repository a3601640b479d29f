"""HttpPoll: the HiveMind HTTP transport as a pure polling machine (spec §8.2).

Theory of operation
-------------------
The hub's HTTP listener has five endpoints, each answered at once (no long
poll). Every request carries ``?authorization=<token>`` with the token
percent-encoded (spec §3.2: Tornado URL-decodes it; a raw ``+`` breaks it):

* ``POST /connect``             -> 200 ``{"status": "Connected"}``
* ``POST /send_message``        form ``message=<frame text>`` (hub 5.x binary:
  ``message=<base64>&binary=1``) -> 200 ``{"status": "message sent"}``
* ``GET  /get_messages``        -> 200 ``{"messages": [<text frame>, ...]}``
* ``GET  /get_binary_messages`` -> 200 ``{"b64_messages": [<base64>, ...]}``
* ``POST /disconnect``          -> 200 ``{"status": "Disconnected"}``

Hub 4.x reports some errors with status **200** and ``{"error": ...}``, so
every body is checked, not only the status. "Client is not connected"
(200 on 4.x, 409 on 5.x) means the hub dropped us: the link goes down and
a reconnect (new machine, new handshake) is needed.

States::

    IDLE --Started--> RESETTING --any answer--> CONNECTING --200--> UP
      (RESETTING is skipped when ``reset_on_start`` is off)
    UP --StopRequested--> STOPPING --answer/failure--> CLOSED
    any started state --fatal answer / too many errors--> FAILED

``RESETTING`` sends ``POST /disconnect`` first: hub 4.x keeps one logical
connection per access key and reuses it (with its old key) on a second
``/connect`` (spec §8.2, §13.1), so starting from a clean slate is safer.

Requests: at most one poll is in flight, plus at most one send (sends are
strictly sequential, in ``OutboundFrame`` order). Polls alternate between the
text and the binary queue. Timing, all folded into ``deadline``:

* after a non-empty poll reply, or right after a send completes: poll again
  at once (the hub probably has an answer queued);
* after an empty reply within ``hot_window`` seconds of the last send or
  non-empty reply: poll again after ``hot_interval`` (an answer is probably
  on its way; this is what keeps an ask's latency near the hub's own). With
  ``hot_growth`` > 1 that interval grows by this factor after each empty
  poll (capped at ``idle_max``), so a quiet hot window costs the hub a few
  dozen requests instead of one every ``hot_interval``;
* after an empty reply later than that: wait ``idle_delay``, which grows
  from 0 by ``idle_first * idle_factor**n`` up to ``idle_max``;
* after an error: hold every request for a jittered, exponentially growing
  delay (jitter from the injected entropy); after ``max_errors`` consecutive
  errors the link goes down (retryable);
* every request has a ``request_timeout``; when it passes, the machine emits
  ``CancelRequest`` and treats the request as failed.

Every ``OutboundFrame`` ends in exactly one ``FrameSent`` or ``FrameNotSent``.
A send whose request failed is never retried (the hub may have it).
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from returns.result import Failure, Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.base import (
    FrameNotSent,
    FrameSent,
    InboundFrame,
    LinkDown,
    LinkUp,
    OutboundFrame,
    Refs,
    Started,
    StopRequested,
    percent_encode,
)
from thalovant.core.links.http_wire import (
    NOT_SENT,
    TLS_FAILED,
    CancelRequest,
    HttpPollConfig,
    HttpProblem,
    RequestFailed,
    ResponseReceived,
    StartRequest,
    error_text,
    parse_body,
    poll_frames,
    replica_cookie,
    request_headers,
    send_body,
    unit_interval,
)
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Tick, earliest

__all__ = [
    "TRACE_TYPES",
    "CancelRequest",
    "HttpPoll",
    "HttpPollConfig",
    "HttpProblem",
    "HttpState",
    "RequestFailed",
    "ResponseReceived",
    "Started",
    "StartRequest",
]


class HttpState(enum.Enum):
    IDLE = "idle"
    RESETTING = "resetting"
    CONNECTING = "connecting"
    UP = "up"
    STOPPING = "stopping"
    CLOSED = "closed"
    FAILED = "failed"


class _Kind(enum.Enum):
    RESET = "reset"
    CONNECT = "connect"
    POLL_TEXT = "poll-text"
    POLL_BINARY = "poll-binary"
    SEND = "send"
    DISCONNECT = "disconnect"


@dataclass(slots=True)
class _Request:
    kind: _Kind
    started: float
    refs: Refs = ()


_S = HttpState
#: (state, input type) -> handler. Pairs not listed: remote input is ignored, commands raise.
_TABLE: dict[tuple[HttpState, type[Input]], str] = {
    (_S.IDLE, Started): "_on_started",  # reset first (or connect)
    (_S.IDLE, OutboundFrame): "_on_outbound",  # queued until UP
    (_S.IDLE, StopRequested): "_on_stop_idle",  # never started: CLOSED, no LinkDown
    (_S.IDLE, Tick): "_on_tick",
    (_S.RESETTING, ResponseReceived): "_on_answer",  # any answer -> CONNECTING
    (_S.RESETTING, RequestFailed): "_on_answer",  # hub unreachable -> FAILED
    (_S.RESETTING, OutboundFrame): "_on_outbound",
    (_S.RESETTING, StopRequested): "_on_stop",
    (_S.RESETTING, Tick): "_on_tick",
    (_S.CONNECTING, ResponseReceived): "_on_answer",  # 200 -> UP + LinkUp; refusal -> FAILED
    (_S.CONNECTING, RequestFailed): "_on_answer",
    (_S.CONNECTING, OutboundFrame): "_on_outbound",
    (_S.CONNECTING, StopRequested): "_on_stop",
    (_S.CONNECTING, Tick): "_on_tick",
    (_S.UP, ResponseReceived): "_on_answer",  # poll -> InboundFrame*, send -> FrameSent
    (_S.UP, RequestFailed): "_on_answer",  # jittered backoff, maybe FAILED
    (_S.UP, OutboundFrame): "_on_outbound",  # queued, sent one at a time
    (_S.UP, StopRequested): "_on_stop",  # POST /disconnect after the in-flight send
    (_S.UP, Tick): "_on_tick",  # next poll / request timeouts
    (_S.STOPPING, ResponseReceived): "_on_answer",  # disconnect answered -> CLOSED
    (_S.STOPPING, RequestFailed): "_on_answer",
    (_S.STOPPING, OutboundFrame): "_on_refuse",  # FrameNotSent
    (_S.STOPPING, StopRequested): "_on_nothing",
    (_S.STOPPING, Tick): "_on_tick",
    (_S.CLOSED, OutboundFrame): "_on_refuse",
    (_S.CLOSED, StopRequested): "_on_nothing",
    (_S.FAILED, OutboundFrame): "_on_refuse",
    (_S.FAILED, StopRequested): "_on_nothing",
}
_TERMINAL = frozenset({HttpState.CLOSED, HttpState.FAILED})
_NOT_CONNECTED = "not connected"


class HttpPoll:
    """The HTTP polling link machine. See the module docstring for the theory.

    Args:
        authorization: the §3.1 token (base64); percent-encoded here. Secret.
        useragent: the ``User-Agent`` header value.
        entropy: random bytes, used only for backoff jitter.
        config: timing knobs.
    """

    def __init__(
        self,
        *,
        authorization: str,
        useragent: str,
        entropy: Entropy,
        config: HttpPollConfig | None = None,
    ) -> None:
        if not authorization:
            raise LocalProtocolError("HttpPoll needs an authorization token")
        self._token = authorization
        self._query = "?authorization=" + percent_encode(authorization)
        self._useragent = useragent
        self._entropy = entropy
        self._cfg = config or HttpPollConfig()
        self._state = HttpState.IDLE
        self._next_id = 1
        self._inflight: dict[int, _Request] = {}
        self._queue: deque[OutboundFrame] = deque()
        self._poll_at = 0.0
        self._poll_soon = False
        self._idle_delay = 0.0
        self._hot_until = 0.0
        self._hot_delay = self._cfg.hot_interval
        self._hold_until = 0.0
        self._errors = 0
        self._binary_next = False
        self._stop_pending = False
        self._cookie: str | None = None

    def __repr__(self) -> str:
        return f"<HttpPoll state={self._state.value} inflight={len(self._inflight)} queued={len(self._queue)}>"

    # ---- contract -------------------------------------------------------------------------------

    @property
    def state(self) -> HttpState:
        return self._state

    @property
    def finished(self) -> bool:
        """True once CLOSED or FAILED: the driver may stop."""
        return self._state in _TERMINAL

    @property
    def deadline(self) -> float | None:
        timeouts = [r.started + self._cfg.request_timeout for r in self._inflight.values()]
        waits: list[float | None] = []
        if self._state is HttpState.UP and not self._stop_pending:
            if not self._poll_inflight():
                waits.append(max(self._poll_at, self._hold_until))
            if self._queue and self._send_inflight() is None:
                waits.append(self._hold_until)
        return earliest(*timeouts, *waits)

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns the orders for the shell, in order."""
        name = _TABLE.get((self._state, type(inp)))
        if name is None:
            if isinstance(inp, ResponseReceived | RequestFailed | Tick):
                return []  # late answers after the end: nothing to do
            raise LocalProtocolError(f"HttpPoll: {type(inp).__name__} not allowed in state {self._state.value}")
        out: list[Output] = getattr(self, name)(inp, now)
        self._expire(now, out)
        self._pump(now, out)
        return out

    # ---- handlers -------------------------------------------------------------------------------

    def _on_started(self, inp: Started, now: float) -> list[Output]:
        out: list[Output] = []
        if self._cfg.reset_on_start:
            self._state = HttpState.RESETTING
            out.append(self._request(_Kind.RESET, now))
        else:
            self._state = HttpState.CONNECTING
            out.append(self._request(_Kind.CONNECT, now))
        return out

    def _on_outbound(self, inp: OutboundFrame, now: float) -> list[Output]:
        if isinstance(inp.data, bytes) and not self._cfg.binary_uploads:
            return [FrameNotSent(refs=inp.refs, reason="this hub cannot receive binary frames over HTTP")]
        if len(self._queue) >= self._cfg.max_queue:
            return [FrameNotSent(refs=inp.refs, reason="send queue full")]
        self._queue.append(inp)
        return []

    def _on_refuse(self, inp: OutboundFrame, now: float) -> list[Output]:
        return [FrameNotSent(refs=inp.refs, reason="link closed")]

    def _on_nothing(self, inp: Input, now: float) -> list[Output]:
        return []

    def _on_stop_idle(self, inp: StopRequested, now: float) -> list[Output]:
        self._state = HttpState.CLOSED
        return self._fail_queue("link closed")

    def _on_stop(self, inp: StopRequested, now: float) -> list[Output]:
        out = self._fail_queue("link closing")
        keep_send = self._state is HttpState.UP
        for req_id, req in list(self._inflight.items()):
            if keep_send and req.kind is _Kind.SEND:
                continue  # let the hub answer it; disconnect follows
            del self._inflight[req_id]
            out.append(CancelRequest(req_id=req_id))
        self._state = HttpState.STOPPING
        self._stop_pending = True
        return out

    def _on_tick(self, inp: Tick, now: float) -> list[Output]:
        return []  # timers are checked after every input, in _expire and _pump

    def _expire(self, now: float, out: list[Output]) -> None:
        """Give up on every request whose timeout has passed."""
        for req_id, req in list(self._inflight.items()):
            if req_id in self._inflight and now >= req.started + self._cfg.request_timeout:
                out.append(CancelRequest(req_id=req_id))
                out.extend(self._on_answer(RequestFailed(req_id=req_id, kind="timeout"), now))

    def _on_answer(self, inp: ResponseReceived | RequestFailed, now: float) -> list[Output]:
        req = self._inflight.pop(inp.req_id, None)
        if req is None:
            return [Note(level=NoteLevel.DEBUG, text=f"http: ignoring answer to unknown request {inp.req_id}")]
        if isinstance(inp, ResponseReceived):
            self._cookie = replica_cookie(inp.headers) or self._cookie
        if req.kind is _Kind.RESET:
            if isinstance(inp, RequestFailed):
                return self._connect_answered(inp, now)  # the same verdict as a failed /connect
            self._state = HttpState.CONNECTING
            return [self._request(_Kind.CONNECT, now)]
        if req.kind is _Kind.CONNECT:
            return self._connect_answered(inp, now)
        if req.kind is _Kind.SEND:
            return self._send_answered(inp, req, now)
        if req.kind is _Kind.DISCONNECT:
            return self._go_down("closed by the client", retryable=False, closed=True)
        return self._poll_answered(inp, req, now)

    # ---- answers by request kind ----------------------------------------------------------------

    def _connect_answered(self, inp: ResponseReceived | RequestFailed, now: float) -> list[Output]:
        if isinstance(inp, RequestFailed):
            if inp.kind == TLS_FAILED:
                return self._go_down(f"TLS failed: {inp.detail}", retryable=False)
            return self._go_down(f"hub unreachable ({inp.kind})", retryable=True)
        body = parse_body(inp.body)
        err = error_text(body.unwrap()) if isinstance(body, Success) else None
        if inp.status == 200 and isinstance(body, Success) and err is None:
            self._state = HttpState.UP
            self._poll_at = now
            return [LinkUp()]
        if inp.status in (400, 401, 403) or (inp.status == 500 and err == "Connection failed"):
            return self._go_down(f"hub refused the credentials (HTTP {inp.status})", retryable=False, auth=True)
        return self._go_down(f"connect failed (HTTP {inp.status}: {err or 'unexpected answer'})", retryable=True)

    def _send_answered(self, inp: ResponseReceived | RequestFailed, req: _Request, now: float) -> list[Output]:
        if isinstance(inp, RequestFailed):
            if inp.kind == NOT_SENT:  # nothing left us: safe to send again, and the hub is gone
                unsent = FrameNotSent(refs=req.refs, reason="the hub could not be reached (not sent)", unsent=True)
                return [unsent, *self._go_down(f"the hub could not be reached: {inp.detail}", retryable=True)]
            out: list[Output] = [FrameNotSent(refs=req.refs, reason=f"request failed ({inp.kind}); delivery unknown")]
            return out + self._count_error(now)
        body = parse_body(inp.body)
        err = error_text(body.unwrap()) if isinstance(body, Success) else None
        if inp.status == 200 and isinstance(body, Success) and err is None:
            self._errors = 0
            self._idle_delay = 0.0
            self._hot_until = now + self._cfg.hot_window
            self._hot_delay = self._cfg.hot_interval
            self._poll_soon = True
            self._poll_at = min(self._poll_at, now)
            return [FrameSent(refs=req.refs)]
        reason = f"hub answered HTTP {inp.status}: {err or 'unexpected answer'}"
        out = [FrameNotSent(refs=req.refs, reason=reason)]
        if inp.status == 409 or (err is not None and _NOT_CONNECTED in err.lower()):
            return out + self._go_down("the hub dropped this client", retryable=True)
        if inp.status == 403:
            return out + self._go_down("hub refused the credentials (HTTP 403)", retryable=False, auth=True)
        return out + self._count_error(now)

    def _poll_answered(self, inp: ResponseReceived | RequestFailed, req: _Request, now: float) -> list[Output]:
        if isinstance(inp, RequestFailed):
            return self._count_error(now)
        body = parse_body(inp.body)
        if inp.status == 409:
            return self._go_down("the hub dropped this client", retryable=True)
        if inp.status == 403:
            return self._go_down("hub refused the credentials (HTTP 403)", retryable=False, auth=True)
        if inp.status != 200 or not isinstance(body, Success):
            return self._count_error(now)
        value = body.unwrap()
        err = error_text(value)
        if err is not None:
            if _NOT_CONNECTED in err.lower():
                return self._go_down("the hub dropped this client", retryable=True)
            return self._count_error(now)
        frames = poll_frames(value, binary=req.kind is _Kind.POLL_BINARY)
        if isinstance(frames, Failure):
            problem = frames.failure()
            note = Note(level=NoteLevel.WARNING, text=f"http: bad poll answer: {problem.code}")
            return [note, *self._count_error(now)]
        got, skipped = frames.unwrap()
        self._errors = 0
        out: list[Output] = [InboundFrame(data=f) for f in got]
        if skipped:
            out.append(Note(level=NoteLevel.WARNING, text=f"http: skipped {skipped} undecodable frame(s)"))
        if got or self._poll_soon:
            self._idle_delay = 0.0
            self._poll_at = now
            if got:
                self._hot_until = now + self._cfg.hot_window
                self._hot_delay = self._cfg.hot_interval
        elif now < self._hot_until:
            self._poll_at = now + self._hot_delay
            self._hot_delay = min(
                max(self._cfg.idle_max, self._cfg.hot_interval), self._hot_delay * self._cfg.hot_growth
            )
        else:
            self._poll_at = now + self._idle_delay
            self._idle_delay = min(
                self._cfg.idle_max, max(self._cfg.idle_first, self._idle_delay * self._cfg.idle_factor)
            )
        self._poll_soon = False
        return out

    # ---- helpers --------------------------------------------------------------------------------

    def _count_error(self, now: float) -> list[Output]:
        self._errors += 1
        if self._errors >= self._cfg.max_errors:
            return self._go_down(f"{self._errors} failed requests in a row", retryable=True)
        span = min(self._cfg.error_max, self._cfg.error_base * 2 ** (self._errors - 1))
        self._hold_until = now + span / 2 + unit_interval(self._entropy) * span / 2
        self._poll_at = max(self._poll_at, self._hold_until)
        return []

    def _go_down(self, reason: str, *, retryable: bool, auth: bool = False, closed: bool = False) -> list[Output]:
        out: list[Output] = []
        for req_id, req in list(self._inflight.items()):
            out.append(CancelRequest(req_id=req_id))
            if req.kind is _Kind.SEND:
                out.append(FrameNotSent(refs=req.refs, reason="link down before the hub answered"))
        self._inflight.clear()
        out.extend(self._fail_queue("link down"))
        self._state = HttpState.CLOSED if closed else HttpState.FAILED
        out.append(LinkDown(reason=reason, retryable=retryable and not auth, auth=auth))
        return out

    def _fail_queue(self, reason: str) -> list[Output]:
        out: list[Output] = [FrameNotSent(refs=f.refs, reason=reason) for f in self._queue]
        self._queue.clear()
        return out

    def _pump(self, now: float, out: list[Output]) -> None:
        """Start every request that is due now."""
        if self._state is HttpState.STOPPING:
            if self._stop_pending and not self._inflight:
                self._stop_pending = False
                out.append(self._request(_Kind.DISCONNECT, now))
            return
        if self._state is not HttpState.UP or now < self._hold_until:
            return
        if self._queue and self._send_inflight() is None:
            frame = self._queue.popleft()
            out.append(self._request(_Kind.SEND, now, frame))
        if not self._poll_inflight() and now >= self._poll_at:
            kind = _Kind.POLL_BINARY if self._binary_next and self._cfg.poll_binary else _Kind.POLL_TEXT
            self._binary_next = not self._binary_next
            out.append(self._request(kind, now))

    def _request(self, kind: _Kind, now: float, frame: OutboundFrame | None = None) -> StartRequest:
        req_id = self._next_id
        self._next_id += 1
        self._inflight[req_id] = _Request(kind, now, frame.refs if frame else ())
        method = "GET" if kind in (_Kind.POLL_TEXT, _Kind.POLL_BINARY) else "POST"
        body = send_body(frame.data) if frame is not None else b""
        headers = request_headers(useragent=self._useragent, cookie=self._cookie, method=method)
        path = _PATHS[kind]
        return StartRequest(
            req_id=req_id,
            method=method,
            target=f"{self._cfg.base_path}{path}{self._query}",
            headers=tuple(headers),
            body=body,
        )

    def _poll_inflight(self) -> bool:
        return any(r.kind in (_Kind.POLL_TEXT, _Kind.POLL_BINARY) for r in self._inflight.values())

    def _send_inflight(self) -> int | None:
        return next((i for i, r in self._inflight.items() if r.kind is _Kind.SEND), None)

    # ---- replay support -------------------------------------------------------------------------

    def trace_config(self) -> dict[str, Any]:
        """Everything :meth:`from_trace_config` needs, as JSON. Holds the token: throwaway identities only."""
        cfg = {f.name: getattr(self._cfg, f.name) for f in dataclasses.fields(self._cfg)}
        return {"authorization": self._token, "useragent": self._useragent, "http": cfg}

    @classmethod
    def from_trace_config(cls, config: Mapping[str, Any], entropy: Entropy) -> HttpPoll:
        """Rebuild a machine from a trace header's ``config``."""
        return cls(
            authorization=str(config["authorization"]),
            useragent=str(config["useragent"]),
            entropy=entropy,
            config=HttpPollConfig(**dict(config.get("http", {}))),
        )


_PATHS = {
    _Kind.RESET: "/disconnect",
    _Kind.CONNECT: "/connect",
    _Kind.POLL_TEXT: "/get_messages",
    _Kind.POLL_BINARY: "/get_binary_messages",
    _Kind.SEND: "/send_message",
    _Kind.DISCONNECT: "/disconnect",
}


#: Every class an HttpPoll trace may contain (for ``trace.TypeRegistry``).
TRACE_TYPES: tuple[type, ...] = (
    Started,
    ResponseReceived,
    RequestFailed,
    OutboundFrame,
    StopRequested,
    Tick,
    StartRequest,
    CancelRequest,
    InboundFrame,
    FrameSent,
    FrameNotSent,
    LinkUp,
    LinkDown,
    Note,
    NoteLevel,
)
