"""Link machines: carry opaque frames between the Session and one transport.

A *link* sits below :mod:`thalovant.core.session.machine`. It never looks inside a
frame (``str`` for a text frame, ``bytes`` for a binary frame); it only moves
frames and reports whether the transport is usable. There is one machine per
transport:

* :mod:`.http_poll` -- ``HttpPoll``: hub HTTP endpoints, polling (spec §8.2);
* :mod:`.ws` -- ``WsLink``: WebSocket upgrade target, close codes (§8.1, §3.3);
* :mod:`.mqtt_map` -- ``MqttMap``: HiveMind <-> MQTT topic scheme (§8.3).

The vocabulary shared by all three lives here. Every link:

* takes ``OutboundFrame(data, refs)`` from the session side and answers each
  one with exactly one ``FrameSent(refs)`` or ``FrameNotSent(refs, reason)``.
  What "sent" means depends on the transport: HTTP -- the hub answered
  ``/send_message`` with success; MQTT -- the broker acknowledged the publish
  (PUBACK at QoS 1); WebSocket -- the frame was handed to the socket in order
  (there is no per-message acknowledgement);
* emits ``InboundFrame(data)`` for every frame from the hub, in order;
* emits ``LinkUp`` once the transport is usable and exactly one ``LinkDown``
  when it stops being usable, after which the machine is finished.

``refs`` are the session's message references (``tuple[int, ...]``): the
link passes them back untouched so the session can account for delivery.

This module also has the pure helpers every link needs to put the
``authorization`` token (spec §3.1, built by the session module) into a URL,
and :class:`LinkMachine`, the table-run base that holds the frames waiting for
the link to come up.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Input, Note, NoteLevel, Output, StateT, Table, TableMachine, Tick
from thalovant.core.wire.frame import Frame

__all__ = [
    "Frame",
    "FrameNotSent",
    "FrameSent",
    "InboundFrame",
    "LINK_TRACE_TYPES",
    "LinkDown",
    "LinkMachine",
    "LinkUp",
    "OutboundFrame",
    "Refs",
    "Started",
    "StopRequested",
    "form_encode",
    "percent_encode",
    "printable",
]

#: The session's references for the messages inside one frame.
Refs = tuple[int, ...]

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def percent_encode(text: str) -> str:
    """Percent-encode every byte of ``text`` except RFC 3986 unreserved characters.

    This is what hub 4.x HTTP and every hub 5.x endpoint need for the
    ``authorization`` query value (spec §3.2): ``+`` -> ``%2B``, ``/`` ->
    ``%2F``, ``=`` -> ``%3D``.

    >>> percent_encode("a+b/c=")
    'a%2Bb%2Fc%3D'
    """
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def form_encode(fields: tuple[tuple[str, str], ...]) -> bytes:
    """Encode ``application/x-www-form-urlencoded`` fields (spaces as ``%20``).

    >>> form_encode((("message", '{"a": 1}'), ("binary", "1")))
    b'message=%7B%22a%22%3A%201%7D&binary=1'
    """
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in fields).encode("ascii")


def printable(text: str, limit: int = 120) -> str:
    """The first ``limit`` characters of ``text``, with every unprintable one replaced by ``?``.

    >>> printable("bad\\nkey", 5)
    'bad?k'
    """
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


# ---- shared inputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundFrame(Input):
    """The session wants ``data`` sent to the hub; ``refs`` come back in the answer."""

    data: Frame
    refs: Refs = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Started(Input):
    """Open the link now."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRequested(Input):
    """The user (or the session) wants the link closed politely."""


# ---- shared outputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundFrame(Output):
    """A frame from the hub, for the session's ``FrameReceived``."""

    data: Frame


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameSent(Output):
    """The hub accepted the frame carrying ``refs``."""

    refs: Refs


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameNotSent(Output):
    """The frame carrying ``refs`` was not (or maybe not) delivered; ``reason`` says why.

    ``unsent`` is True only when no byte of it can have reached the hub (e.g. the TCP
    connect was refused): the caller may then send the message again on a new link.
    """

    refs: Refs
    reason: str
    unsent: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkUp(Output):
    """The transport is usable: the session may start its handshake."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkDown(Output):
    """The transport is gone. Emitted once; the link machine is finished afterwards.

    Attributes:
        reason: human-readable, never holds a secret.
        retryable: whether a reconnect may help.
        auth: the hub (most likely) refused the credentials; implies not retryable.
    """

    reason: str
    retryable: bool
    auth: bool = field(default=False)


#: The shared vocabulary every link trace may contain; each link's ``TRACE_TYPES`` adds its own.
LINK_TRACE_TYPES: tuple[type, ...] = (OutboundFrame, StopRequested, Tick, InboundFrame, FrameSent, FrameNotSent)
LINK_TRACE_TYPES += (LinkUp, LinkDown, Note, NoteLevel)


# ---- the shared machine base ------------------------------------------------------------------


class LinkMachine(TableMachine[StateT]):
    """Base of the link machines: table dispatch, and the frames held until the link is up.

    ``_QUIET`` lists the input types that are ignored (late or repeated facts, early ticks) in a
    state whose table has no row for them; any other unlisted input is misuse.
    """

    _QUIET: ClassVar[tuple[type[Input], ...]] = ()
    _CLOSED: StateT  # where a link with a polite close (ws, mqtt) ends
    _queue: deque[OutboundFrame]
    _max_queue: int
    _close_by: float | None = None  # when a polite close gives up waiting

    def _step(self, table: Table[StateT, Any], inp: Input, now: float) -> list[Output]:
        """Run the row of ``table`` for this state and ``inp``: ignore or refuse an unlisted input."""
        row = table.get((self._state, type(inp)))
        if row is None:
            if self._is_quiet(inp):
                return []
            raise LocalProtocolError(
                f"{type(self).__name__}: {type(inp).__name__} not allowed in state {self._state.value}"
            )
        return self._fire(row, inp, now)

    def _is_quiet(self, inp: Input) -> bool:
        return isinstance(inp, self._QUIET)

    def _on_queue(self, inp: OutboundFrame, now: float) -> list[Output]:
        """Hold a frame until the link is up (``FrameNotSent`` when the queue is full)."""
        if len(self._queue) >= self._max_queue:
            return [FrameNotSent(refs=inp.refs, reason="send queue full")]
        self._queue.append(inp)
        return []

    def _on_refuse(self, inp: OutboundFrame, now: float) -> list[Output]:
        return [FrameNotSent(refs=inp.refs, reason="link closed")]

    def _down(self, down: LinkDown) -> list[Output]:
        """Fail every frame not answered yet, end in ``_CLOSED`` and report ``down`` (the only one)."""
        out = self._fail_unanswered("link down")
        self._exit(self._CLOSED)
        self._close_by = None
        out.append(down)
        return out

    def _closed_by_client(self) -> list[Output]:
        return self._down(LinkDown(reason="closed by the client", retryable=False))

    def _close_overdue(self, now: float) -> bool:
        """Whether the polite close waited long enough; if not, this Tick changes nothing."""
        if self._close_by is None or now < self._close_by:
            self._exit(self._state)
            return False
        return True

    def _fail_unanswered(self, reason: str) -> list[Output]:
        """``FrameNotSent(reason)`` for every frame still waiting for an answer (the queue, here)."""
        return self._fail_queue(reason)

    def _fail_queue(self, reason: str) -> list[Output]:
        """``FrameNotSent(reason)`` for every held frame; the queue is empty afterwards."""
        out: list[Output] = [FrameNotSent(refs=f.refs, reason=reason) for f in self._queue]
        self._queue.clear()
        return out
