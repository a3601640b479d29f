"""The vocabulary of :class:`thalovant.core.client.correlate.Correlator`: the inputs the Connection feeds it
and the answers it gives back (``correlate`` re-exports every name here; traces name them by that module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from thalovant.core.bus.events import EVENT_RECOGNIZER_LOOP_UTTERANCE, ThalovantEvent
from thalovant.core.bus.refusal import Denial
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.machine import Input, Output
from thalovant.core.wire.message import HiveMessage

FailKind = Literal["policy_denied", "link_lost", "timeout", "cancelled"]


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class AskStarted(Input):
    """The shell sent an ask's utterance.

    Attributes:
        ask_id: the caller's handle for this ask (unique among pending asks).
        request_id: the correlation id sent in the context (unique among pending asks).
        session_id: the user's session id, or None.
        msg_type: the bus type that was sent (a denial names it).
        deadline: absolute time (same clock as ``now``) at which the ask times out.
        settle: seconds to keep collecting after the first speech once the ask is done (Rule 2b).
        synth: ask the hub to render each speech piece (``SynthWanted``) and wait, within the
            deadline, for the TTS clip of each (Rule 5).
    """

    ask_id: str
    request_id: str
    session_id: str | None = None
    msg_type: str = EVENT_RECOGNIZER_LOOP_UTTERANCE
    deadline: float
    settle: float = 0.0
    synth: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSent(Input):
    """The shell sent a message that no ask waits for (it may still be refused)."""

    msg_type: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventArrived(Input):
    """The hub delivered a bus event."""

    event: ThalovantEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameArrived(Input):
    """The hub delivered a frame that is not a bus event; a TTS clip may belong to an ask (Rule 5)."""

    message: HiveMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class AskCancelled(Input):
    """The caller gave up on an ask."""

    ask_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkLost(Input):
    """The link to the hub is gone; every pending ask fails."""

    reason: str = ""


# ------------------------------------------------------------------ outputs


@dataclass(frozen=True, slots=True, kw_only=True)
class AskProgress(Output):
    """An event that belongs to an ask (speech, handled, failure …), in arrival order."""

    ask_id: str
    event: ThalovantEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class AskFinished(Output):
    """The ask ended with a reply (handled, unanswered, or timed out after speech)."""

    ask_id: str
    reply: ThalovantReply


@dataclass(frozen=True, slots=True, kw_only=True)
class AskFailed(Output):
    """The ask ended without a usable reply.

    Attributes:
        ask_id: the ask.
        kind: ``policy_denied``, ``link_lost``, ``timeout`` or ``cancelled``.
        reason: a clean one-line reason.
        denial: the refusal, for ``policy_denied``.
        reply: whatever the ask collected before it ended (never lost).
    """

    ask_id: str
    kind: FailKind
    reason: str = ""
    denial: Denial | None = None
    reply: ThalovantReply = field(default_factory=ThalovantReply)


@dataclass(frozen=True, slots=True, kw_only=True)
class SynthWanted(Output):
    """Send ``speak:synth`` for this speech of a ``synth`` ask: the hub answers with a TTS clip (Rule 5).

    Attributes:
        ask_id: the ask (its request id goes in the message's context).
        utterance: the speech to render, as the hub said it.
        lang: the speech's language, if the hub said.
        session_id: the ask's session id, if the caller gave one.
    """

    ask_id: str
    utterance: str
    lang: str | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnattributedDenial(Output):
    """A refusal that cannot be pinned on exactly one ask; deliver it to listeners."""

    denial: Denial
    event: ThalovantEvent


__all__ = [
    "AskCancelled", "AskFailed", "AskFinished", "AskProgress", "AskStarted", "EventArrived", "FailKind",
    "FrameArrived", "LinkLost", "MessageSent", "SynthWanted", "UnattributedDenial",
]  # fmt: skip
