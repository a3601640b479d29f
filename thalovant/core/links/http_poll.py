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
a reconnect (new machine, new handshake) is needed; a send answered so was
surely not handled (``FrameNotSent(unsent=True)``). A request the hub's port
refuses (nothing listens: the hub is down, and its sessions died with it)
takes the link down at once too.

States::

    IDLE --Started--> RESETTING --any answer--> CONNECTING --200--> UP
      (RESETTING is skipped when ``reset_on_start`` is off)
    UP --StopRequested--> STOPPING --answer/failure--> CLOSED
    any started state --fatal answer / too many errors--> FAILED

``RESETTING`` sends ``POST /disconnect`` first: hub 4.x keeps one logical
connection per access key and reuses it (with its old key) on a second
``/connect`` (spec §8.2, §13.1), so starting from a clean slate is safer.

Requests: at most one poll is in flight, plus at most one send (sends are
strictly sequential, in ``OutboundFrame`` order). When to poll is
:class:`~.http_schedule.PollSchedule`'s business, folded into ``deadline``:
poll again at once after a non-empty reply or a completed send; soon
(``hot_interval``, growing by ``hot_growth``) within ``hot_window`` of one,
because an answer is probably on its way; then ever slower up to
``idle_max``. After an error every request is held for a jittered,
exponentially growing delay (jitter from the injected entropy); after
``max_errors`` consecutive errors the link goes down (retryable). Every
request has a ``request_timeout``; when it passes, the machine emits
``CancelRequest`` and treats the request as failed. The timeout counts from the
last sign of life: each ``ResponseProgress`` (bytes of an answer still arriving)
restarts it, so a large poll body on a slow link is not silence. A *poll* that
times out (here or in the shell) takes the link down at once: the hub answers
polls at once, so silence means a stalled or half-open path (liveness: a dead
path is noticed within the poll interval plus the request timeout).

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
    LINK_TRACE_TYPES,
    FrameNotSent,
    FrameSent,
    InboundFrame,
    LinkDown,
    LinkMachine,
    LinkUp,
    OutboundFrame,
    Refs,
    Started,
    StopRequested,
    percent_encode,
    printable,
)
from thalovant.core.links.http_schedule import PollSchedule
from thalovant.core.links.http_wire import (
    NOT_SENT,
    POLLS,
    TLS_FAILED,
    CancelRequest,
    HttpPollConfig,
    HttpProblem,
    RequestFailed,
    RequestKind,
    ResponseProgress,
    ResponseReceived,
    StartRequest,
    error_text,
    parse_body,
    poll_frames,
    replica_cookie,
    start_request,
)
from thalovant.core.machine import Entropy, Input, Note, NoteLevel, Output, Row, Table, Tick, earliest

__all__ = ["TABLE", "TRACE_TYPES", "CancelRequest", "HttpPoll", "HttpPollConfig", "HttpProblem", "HttpState"]
__all__ += ["RequestFailed", "ResponseProgress", "ResponseReceived", "Started", "StartRequest"]


class HttpState(enum.Enum):
    IDLE = "idle"
    RESETTING = "resetting"
    CONNECTING = "connecting"
    UP = "up"
    STOPPING = "stopping"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(slots=True)
class _Request:
    kind: RequestKind
    started: float  # when it was sent, or the last ResponseProgress: its timeout counts from here
    refs: Refs = ()


_NOT_CONNECTED = "not connected"


class HttpPoll(LinkMachine[HttpState]):
    """The HTTP polling link machine. See the module docstring; its transitions are :data:`TABLE`.

    Args:
        authorization: the §3.1 token (base64); percent-encoded here. Secret.
        useragent: the ``User-Agent`` header value.
        entropy: random bytes, used only for backoff jitter.
        config: timing knobs.
    """

    _TERMINAL = frozenset({HttpState.CLOSED, HttpState.FAILED})
    _QUIET = (ResponseReceived, ResponseProgress, RequestFailed, Tick)  # late answers after the end: nothing to do

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
        self._cfg = config or HttpPollConfig()
        self._schedule = PollSchedule(self._cfg, entropy)
        self._state = HttpState.IDLE
        self._next_id = 1
        self._inflight: dict[int, _Request] = {}
        self._queue: deque[OutboundFrame] = deque()
        self._max_queue = self._cfg.max_queue
        self._stop_pending = False
        self._cookie: str | None = None

    def __repr__(self) -> str:
        return f"<HttpPoll state={self._state.value} inflight={len(self._inflight)} queued={len(self._queue)}>"

    # ---- contract -------------------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        timeouts = [r.started + self._cfg.request_timeout for r in self._inflight.values()]
        waits: list[float | None] = []
        if self._state is HttpState.UP and not self._stop_pending:
            if not self._poll_inflight():
                waits.append(self._schedule.next_poll)
            if self._queue and self._send_inflight() is None:
                waits.append(self._schedule.hold_until)
        return earliest(*timeouts, *waits)

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns the orders for the shell, in order.

        Unlisted pairs: late answers and ticks are ignored; commands raise. After the row, every
        request past its timeout fails (as the state's ``RequestFailed`` row), then every request
        that is due starts.
        """
        out = self._step(TABLE, inp, now)
        self._expire(now, out)
        self._pump(now, out)
        return out

    # ---- handlers -------------------------------------------------------------------------------

    def _on_started(self, inp: Started, now: float) -> list[Output]:
        if self._cfg.reset_on_start:
            return [self._request(RequestKind.RESET, now)]
        self._exit(HttpState.CONNECTING)
        return [self._request(RequestKind.CONNECT, now)]

    def _on_outbound(self, inp: OutboundFrame, now: float) -> list[Output]:
        if isinstance(inp.data, bytes) and not self._cfg.binary_uploads:
            return [FrameNotSent(refs=inp.refs, reason="this hub cannot receive binary frames over HTTP")]
        return self._on_queue(inp, now)

    def _on_nothing(self, inp: Input, now: float) -> list[Output]:
        return []  # a Tick: timers are checked after every input, in _expire and _pump

    def _on_progress(self, inp: ResponseProgress, now: float) -> list[Output]:
        req = self._inflight.get(inp.req_id)
        if req is not None:  # an answer on its way: its timeout restarts (an unknown id changes nothing)
            req.started = max(req.started, now)
        return []

    def _on_stop_idle(self, inp: StopRequested, now: float) -> list[Output]:
        return self._fail_queue("link closed")

    def _on_stop(self, inp: StopRequested, now: float) -> list[Output]:
        out = self._fail_queue("link closing")
        keep_send = self._state is HttpState.UP
        for req_id, req in list(self._inflight.items()):
            if keep_send and req.kind is RequestKind.SEND:
                continue  # let the hub answer it; disconnect follows
            del self._inflight[req_id]
            out.append(CancelRequest(req_id=req_id))
        self._stop_pending = True
        return out

    def _expire(self, now: float, out: list[Output]) -> None:
        """Give up on every request whose timeout has passed: the state's ``RequestFailed`` row runs."""
        for req_id, req in list(self._inflight.items()):
            if req_id in self._inflight and now >= req.started + self._cfg.request_timeout:
                out.append(CancelRequest(req_id=req_id))
                out.extend(
                    self._fire(TABLE[(self._state, RequestFailed)], RequestFailed(req_id=req_id, kind="timeout"), now)
                )

    def _on_answer(self, inp: ResponseReceived | RequestFailed, now: float) -> list[Output]:
        """An answer (or failure) of a request: what it leads to depends on the request's kind."""
        req = self._inflight.pop(inp.req_id, None)
        if req is None:
            self._exit(self._state)  # not one of ours (any more): nothing changes
            return [Note(level=NoteLevel.DEBUG, text=f"http: ignoring answer to unknown request {inp.req_id}")]
        if isinstance(inp, ResponseReceived):
            self._cookie = replica_cookie(inp.headers) or self._cookie
        if req.kind is RequestKind.RESET:
            if isinstance(inp, RequestFailed):
                return self._connect_answered(inp, now)  # the same verdict as a failed /connect
            return [self._request(RequestKind.CONNECT, now)]
        if req.kind is RequestKind.CONNECT:
            return self._connect_answered(inp, now)
        if req.kind is RequestKind.DISCONNECT:
            return self._go_down("closed by the client", retryable=False, closed=True)
        self._exit(self._state)  # a send or a poll keeps the state, unless the link goes down
        if req.kind is RequestKind.SEND:
            return self._send_answered(inp, req, now)
        return self._poll_answered(inp, req, now)

    # ---- answers by request kind ----------------------------------------------------------------

    def _connect_answered(self, inp: ResponseReceived | RequestFailed, now: float) -> list[Output]:
        if isinstance(inp, RequestFailed):
            detail = f": {printable(inp.detail, 200)}" if inp.detail else ""
            if inp.kind == TLS_FAILED:  # not worth retrying: TLS verification failed, or a proxy refused
                return self._go_down(f"could not connect{detail}", retryable=False)
            return self._go_down(f"hub unreachable ({inp.kind}){detail}", retryable=True)
        body = parse_body(inp.body)
        err = error_text(body.unwrap()) if isinstance(body, Success) else None
        if inp.status == 200 and isinstance(body, Success) and err is None:
            self._schedule.connected(now)
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
            self._schedule.sent(now)
            return [FrameSent(refs=req.refs)]
        reason = f"hub answered HTTP {inp.status}: {err or 'unexpected answer'}"
        if inp.status == 409 or (err is not None and _NOT_CONNECTED in err.lower()):  # refused: never handled
            unsent = FrameNotSent(refs=req.refs, reason=reason, unsent=True)
            return [unsent, *self._go_down("the hub dropped this client", retryable=True)]
        out = [FrameNotSent(refs=req.refs, reason=reason)]
        if inp.status == 403:
            return out + self._go_down("hub refused the credentials (HTTP 403)", retryable=False, auth=True)
        return out + self._count_error(now)

    def _poll_answered(self, inp: ResponseReceived | RequestFailed, req: _Request, now: float) -> list[Output]:
        if isinstance(inp, RequestFailed) and inp.kind == NOT_SENT:  # refused: the hub is not listening
            return self._go_down(f"the hub could not be reached: {inp.detail}", retryable=True)
        if isinstance(inp, RequestFailed) and inp.kind == "timeout":  # the hub answers polls at once: a dead path
            return self._go_down(
                "no answer to a poll in time (the network path stalled or the hub hung)", retryable=True
            )
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
        frames = poll_frames(value, binary=req.kind is RequestKind.POLL_BINARY)
        if isinstance(frames, Failure):
            problem = frames.failure()
            note = Note(level=NoteLevel.WARNING, text=f"http: bad poll answer: {problem.code}")
            return [note, *self._count_error(now)]
        got, skipped = frames.unwrap()
        out: list[Output] = [InboundFrame(data=f) for f in got]
        if skipped:
            out.append(Note(level=NoteLevel.WARNING, text=f"http: skipped {skipped} undecodable frame(s)"))
        self._schedule.polled(now, got=bool(got))
        return out

    # ---- helpers --------------------------------------------------------------------------------

    def _count_error(self, now: float) -> list[Output]:
        if self._schedule.failed(now):
            return self._go_down(f"{self._schedule.errors} failed requests in a row", retryable=True)
        return []

    def _go_down(self, reason: str, *, retryable: bool, auth: bool = False, closed: bool = False) -> list[Output]:
        out: list[Output] = []
        for req_id, req in list(self._inflight.items()):
            out.append(CancelRequest(req_id=req_id))
            if req.kind is RequestKind.SEND:
                out.append(FrameNotSent(refs=req.refs, reason="link down before the hub answered"))
        self._inflight.clear()
        out.extend(self._fail_queue("link down"))
        self._exit(HttpState.CLOSED if closed else HttpState.FAILED)
        out.append(LinkDown(reason=reason, retryable=retryable and not auth, auth=auth))
        return out

    def _pump(self, now: float, out: list[Output]) -> None:
        """Start every request that is due now."""
        if self._state is HttpState.STOPPING:
            if self._stop_pending and not self._inflight:
                self._stop_pending = False
                out.append(self._request(RequestKind.DISCONNECT, now))
            return
        if self._state is not HttpState.UP or now < self._schedule.hold_until:
            return
        if self._queue and self._send_inflight() is None:
            frame = self._queue.popleft()
            out.append(self._request(RequestKind.SEND, now, frame))
        if not self._poll_inflight() and now >= self._schedule.poll_at:
            binary = self._schedule.next_poll_binary()
            out.append(self._request(RequestKind.POLL_BINARY if binary else RequestKind.POLL_TEXT, now))

    def _request(self, kind: RequestKind, now: float, frame: OutboundFrame | None = None) -> StartRequest:
        req_id = self._next_id
        self._next_id += 1
        self._inflight[req_id] = _Request(kind, now, frame.refs if frame else ())
        return start_request(
            req_id,
            kind,
            base_path=self._cfg.base_path,
            query=self._query,
            useragent=self._useragent,
            cookie=self._cookie,
            data=frame.data if frame is not None else None,
        )

    def _poll_inflight(self) -> bool:
        return any(r.kind in POLLS for r in self._inflight.values())

    def _send_inflight(self) -> int | None:
        return next((i for i, r in self._inflight.items() if r.kind is RequestKind.SEND), None)

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


_S = HttpState
_R = Row  # each row is typed by the table annotation
_answer, _on_refuse, _on_nothing = HttpPoll._on_answer, HttpPoll._on_refuse, HttpPoll._on_nothing
_on_progress = HttpPoll._on_progress
#: (state, input type) -> Row(next state, handler, other possible ends). Unlisted: remote input is
#: ignored, commands raise. A request timeout runs the state's RequestFailed row. An answer leads
#: to ``to`` when it answers the request the state waits for; an unknown id changes nothing.
TABLE: Table[HttpState, HttpPoll] = {
    (_S.IDLE, Started): _R(_S.RESETTING, HttpPoll._on_started, frozenset({_S.CONNECTING})),  # reset first, or connect
    (_S.IDLE, OutboundFrame): _R(_S.IDLE, HttpPoll._on_outbound),  # queued until UP
    (_S.IDLE, StopRequested): _R(_S.CLOSED, HttpPoll._on_stop_idle),  # never started: no LinkDown
    (_S.IDLE, Tick): _R(_S.IDLE, _on_nothing),
    (_S.RESETTING, ResponseReceived): _R(_S.CONNECTING, _answer, frozenset({_S.RESETTING})),  # any answer: connect
    (_S.RESETTING, RequestFailed): _R(_S.FAILED, _answer, frozenset({_S.RESETTING})),  # hub unreachable
    (_S.RESETTING, OutboundFrame): _R(_S.RESETTING, HttpPoll._on_outbound),
    (_S.RESETTING, StopRequested): _R(_S.STOPPING, HttpPoll._on_stop),
    (_S.RESETTING, ResponseProgress): _R(_S.RESETTING, _on_progress),  # an answer on its way: its timeout restarts
    (_S.RESETTING, Tick): _R(_S.RESETTING, _on_nothing),
    (_S.CONNECTING, ResponseReceived): _R(_S.UP, _answer, frozenset({_S.FAILED, _S.CONNECTING})),  # 200: LinkUp
    (_S.CONNECTING, RequestFailed): _R(_S.FAILED, _answer, frozenset({_S.CONNECTING})),
    (_S.CONNECTING, OutboundFrame): _R(_S.CONNECTING, HttpPoll._on_outbound),
    (_S.CONNECTING, StopRequested): _R(_S.STOPPING, HttpPoll._on_stop),
    (_S.CONNECTING, ResponseProgress): _R(_S.CONNECTING, _on_progress),
    (_S.CONNECTING, Tick): _R(_S.CONNECTING, _on_nothing),
    (_S.UP, ResponseReceived): _R(_S.UP, _answer, frozenset({_S.FAILED})),  # poll: InboundFrame*, send: FrameSent
    (_S.UP, RequestFailed): _R(_S.UP, _answer, frozenset({_S.FAILED})),  # jittered backoff, FAILED after max_errors
    (_S.UP, OutboundFrame): _R(_S.UP, HttpPoll._on_outbound),  # queued, sent one at a time
    (_S.UP, StopRequested): _R(_S.STOPPING, HttpPoll._on_stop),  # POST /disconnect after the in-flight send
    (_S.UP, ResponseProgress): _R(_S.UP, _on_progress),
    (_S.UP, Tick): _R(_S.UP, _on_nothing),  # next poll / request timeouts
    # the disconnect answered (or failed): CLOSED; the in-flight send answered: STOPPING (or FAILED)
    (_S.STOPPING, ResponseReceived): _R(_S.CLOSED, _answer, frozenset({_S.STOPPING, _S.FAILED})),
    (_S.STOPPING, RequestFailed): _R(_S.CLOSED, _answer, frozenset({_S.STOPPING, _S.FAILED})),
    (_S.STOPPING, OutboundFrame): _R(_S.STOPPING, _on_refuse),  # FrameNotSent
    (_S.STOPPING, StopRequested): _R(_S.STOPPING, _on_nothing),
    (_S.STOPPING, ResponseProgress): _R(_S.STOPPING, _on_progress),
    (_S.STOPPING, Tick): _R(_S.STOPPING, _on_nothing),
    (_S.CLOSED, OutboundFrame): _R(_S.CLOSED, _on_refuse),
    (_S.CLOSED, StopRequested): _R(_S.CLOSED, _on_nothing),
    (_S.FAILED, OutboundFrame): _R(_S.FAILED, _on_refuse),
    (_S.FAILED, StopRequested): _R(_S.FAILED, _on_nothing),
}


#: Every class an HttpPoll trace may contain (for ``trace.TypeRegistry``).
TRACE_TYPES: tuple[type, ...] = (Started, ResponseReceived, ResponseProgress, RequestFailed, StartRequest)
TRACE_TYPES += (CancelRequest, *LINK_TRACE_TYPES)
