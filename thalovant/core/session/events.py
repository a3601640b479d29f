"""Inputs and outputs of the session machine (:mod:`thalovant.core.session.machine`).

The machine module re-exports every name here, so import them from either module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from thalovant.core.machine import Input, Output
from thalovant.core.wire.message import BusMessage, HiveMessage

__all__ = [
    "CloseLink",
    "Deliver",
    "FrameReceived",
    "HELLO_REF",
    "LinkClosed",
    "LinkOpened",
    "SendFailed",
    "SendFrame",
    "SessionFailed",
    "SessionReady",
    "UserClose",
    "UserSend",
    "Wire",
]

Wire = Literal["text", "bitstring"]


# ---- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkOpened(Input):
    """The transport is up (WS upgraded, HTTP connected, MQTT subscribed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameReceived(Input):
    """One frame from the hub: text, or bytes (WS binary, HTTP b64 queue, MQTT payload)."""

    data: str | bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkClosed(Input):
    """The transport went down. ``code`` is the WS close code if there was one."""

    code: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSend(Input):
    """Send a message; ``ref`` is the caller's id, echoed in ``SendFrame.refs`` or ``SendFailed``."""

    message: BusMessage | HiveMessage
    ref: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UserClose(Input):
    """The user wants to close the session."""


# ---- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SendFrame(Output):
    """Write this frame. ``refs`` are the user sends completed once it is written."""

    data: str | bytes
    refs: tuple[int, ...] = ()


#: The ref the frame carrying the client's HELLO completes. When the link confirms that frame
#: (``FrameSent``: HTTP -- the hub answered; MQTT -- the broker acknowledged; WebSocket -- written in
#: order), the hub has the HELLO and knows this client as a peer. User refs are never below 1.
HELLO_REF = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionReady(Output):
    """Keys exist and HELLO is handed to the link (its frame completes :data:`HELLO_REF`): the session is usable."""

    generation: int
    hub_peer: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver(Output):
    """A decrypted message from the hub (BUS and everything else)."""

    message: HiveMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class SendFailed(Output):
    """A user send that will never be written."""

    ref: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionFailed(Output):
    """The session is over. ``auth``: credentials refused; ``retryable``: reconnecting may help."""

    code: str
    detail: str
    retryable: bool
    auth: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseLink(Output):
    """Close the transport (WS close code semantics)."""

    code: int
    reason: str
