"""The conversation correlator: which hub event belongs to which ask, and when an ask ends.

Theory of operation
-------------------
One :class:`Correlator` per connection. The shell feeds it:

* ``AskStarted`` when it sends an ask's utterance (with the ask's request id,
  the user's session id, the message type and an absolute deadline);
* ``MessageSent`` for every fire-and-forget send (it may provoke a denial);
* ``EventArrived`` for every bus event the hub delivers; ``FrameArrived`` for every other frame (Rule 5);
* ``AskCancelled`` when the caller gives up; ``LinkLost`` when the link dies;
* ``Tick`` at ``deadline``.

It answers with ``AskProgress`` for each event of an ask, then exactly one ``AskFinished`` or
``AskFailed`` per ask, ``UnattributedDenial`` for a refusal it cannot pin on one ask, and ``SynthWanted``
when a ``synth`` ask wants its speech rendered (Rule 5).

States: ``IDLE`` (no ask in flight) and ``WAITING`` (one or more), following the set of pending
asks; ``TABLE`` lists what each input does. Deadline: the earliest of the pending asks', or None.

Rule 1 (correlation by request id, spec §9.1/§9.2, harness P13). Hub 4.x
replaces ``context.session`` with the connection's session, so an event is
matched by any of its correlation ids (``request_id`` survives the round
trip). Only an event with no id at all falls back to the session id, and only
when exactly one pending ask has that (user-given) session id.

Rule 2 (ends). An ask ends as soon as the hub says so: ``ovos.utterance.handled``
→ finished; ``complete_intent_failure`` / ``ovos.intent.unmatched`` / ``hive.query.timeout``
(its ``query_id`` is the ask's request id: ``core/bus/ends.py``) → finished with ``unanswered``;
``hive.policy.denied`` → failed (denial), not followed by ``handled`` on hub 5.x. At the deadline,
speech already heard is returned (``timed_out=True``); only a silent ask fails with ``timeout``.

Rule 2b (settle, 0.4.7's ``reply_settle_seconds``; off by default). An ask
with ``settle > 0`` that hears its end is held until ``settle`` seconds after
its first speech (after the end itself when nothing was said yet), collecting
late speech; it then finishes (a deadline, never past the ask's own). A
denial or a cancel still ends it at once; a lost link finishes it.

Rule 2c (late speech). Hub 4.x does not keep a turn's events in order (a thread pool; its MQTT plugin
writes from two threads through paho 1.6), so ``handled`` can overtake its ``speak``: an ask that hears
``handled`` before any speech waits up to ``quiet_grace`` s (0.15) for it, then ends with what it has.

Rule 3 (denials). A denial with a request id belongs to that ask only. Hub
5.x sends denials with **no** id (spec §9.2); such a denial is attributed only
when exactly one pending ask has the denied message type and no other send of
that type happened within ``send_window`` seconds; otherwise it is reported
as ``UnattributedDenial``.

Rule 4 (duplicates, harness P18). An event identical to one seen within
``dedup_window`` seconds (same type, data and context) is dropped. The window
is short on purpose: hub 5.x sends byte-identical denials for separate sends,
and those must not be swallowed.

Rule 5 (speech audio, ``speech_audio.py``). ``FrameArrived`` feeds every non-bus frame; a TTS clip whose
``utterance`` matches speech of a pending ask is attached to it (``reply.audio``). A ``synth`` ask answers
each new speech piece with ``SynthWanted`` (the shell sends ``speak:synth``) and, once done (after any
settle), is held until each piece has its clip, at most until its own deadline; a refused ``speak:synth``
releases it. Without ``synth``, clips that came while the ask was pending are attached.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from thalovant.core.bus.ends import ends_unanswered, request_id_of, turn_ids
from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.refusal import Denial, clean_text, parse_denial
from thalovant.core.bus.reply import ThalovantReply, build_reply
from thalovant.core.client.correlate_events import (
    AskCancelled,
    AskFailed,
    AskFinished,
    AskProgress,
    AskStarted,
    EventArrived,
    FailKind,
    FrameArrived,
    LinkLost,
    MessageSent,
    SynthWanted,
    UnattributedDenial,
)  # fmt: skip
from thalovant.core.client.speech_audio import AudioTrack, EarlyClips, refuses_synth, tts_clip
from thalovant.core.errors import LocalProtocolError
from thalovant.core.jsontree import weight
from thalovant.core.machine import Input, Output, Row, Table, Tick

MAX_ASK_EVENTS: Final = 1000  # events one ask keeps for its reply; more speech is dropped (Rule 2)
MAX_ASK_BYTES: Final = 16 * 1024 * 1024  # ... and bytes of them (their JSON size, ``jsontree.weight``)


class CorrelatorState(enum.Enum):
    IDLE = "idle"  # no ask in flight
    WAITING = "waiting"  # at least one ask in flight


# ------------------------------------------------------------------ machine


@dataclass(slots=True)
class _Pending:
    ask_id: str
    request_id: str
    session_id: str | None
    msg_type: str
    deadline: float
    settle: float = 0.0
    events: list[ThalovantEvent] = field(default_factory=list)
    size: int = 0  # the events' weight
    first_speech: float | None = None  # when the first speech arrived
    hold_until: float | None = None  # done, collecting late speech until then (Rule 2b)
    quiet_hold: bool = False  # handled before any speech: the first speech finishes it (Rule 2c)
    track: AudioTrack = field(default_factory=AudioTrack)  # its TTS clips (Rule 5)
    audio_hold: bool = False  # done, waiting for the clips of its speech (Rule 5)

    @property
    def due(self) -> float:
        return self.deadline if self.hold_until is None else min(self.deadline, self.hold_until)

    def reply(self, *, timed_out: bool = False) -> ThalovantReply:
        return build_reply(
            self.events,
            session_id=self.session_id,
            request_id=self.request_id,
            timed_out=timed_out,
            audio=self.track.clips,
            dropped_audio=self.track.dropped,
        )


@dataclass(frozen=True, slots=True)
class _Send:
    msg_type: str
    request_id: str | None
    at: float


class Correlator:
    """Matches hub events to pending asks and decides when each ask ends.

    Args:
        send_window: seconds during which a send may still provoke a denial
            with no id; used by the denial attribution rule.
        dedup_window: seconds during which an identical event counts as a duplicate.
        dedup_size: at most this many recent event keys are remembered.
        quiet_grace: seconds an ask that heard ``handled`` before any speech waits for it (Rule 2c).
    """

    def __init__(
        self, *, send_window: float = 10.0, dedup_window: float = 2.0, dedup_size: int = 1024, quiet_grace: float = 0.15
    ) -> None:
        if not send_window >= 0 or not dedup_window >= 0 or dedup_size < 1 or not 0 <= quiet_grace <= 5:
            raise LocalProtocolError("windows must be >= 0, dedup_size >= 1 and quiet_grace within 0..5 s")
        self._quiet_grace = quiet_grace
        self._dedup_window = dedup_window
        self._send_window = send_window
        self._dedup_size = dedup_size
        self._pending: dict[str, _Pending] = {}
        self._by_request: dict[str, str] = {}
        self._sends: list[_Send] = []
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> first seen, oldest first
        self._early = EarlyClips()  # TTS clips that matched no pending speech yet (Rule 5)

    @property
    def state(self) -> CorrelatorState:
        """IDLE with no ask pending, else WAITING."""
        return CorrelatorState.WAITING if self._pending else CorrelatorState.IDLE

    @property
    def finished(self) -> bool:
        """Never: a correlator serves for the whole life of its connection."""
        return False

    @property
    def deadline(self) -> float | None:
        """The earliest deadline of the pending asks."""
        return min((p.due for p in self._pending.values()), default=None)

    @property
    def pending(self) -> tuple[str, ...]:
        """The ask ids in flight, oldest first."""
        return tuple(self._pending)

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        """Feed one input; returns the outputs in order.

        Raises:
            LocalProtocolError: caller misuse (unknown input, duplicate or
                unknown ask id, duplicate request id); the state is unchanged.
        """
        row = TABLE.get((self.state, type(inp)))
        if row is None:
            raise LocalProtocolError(f"Correlator cannot handle {type(inp).__name__}")
        return row.act(self, inp, now)

    def _on_ask_started(self, inp: AskStarted, now: float) -> list[Output]:
        if not inp.ask_id or not inp.request_id:
            raise LocalProtocolError("ask_id and request_id must be non-empty")
        if inp.ask_id in self._pending:
            raise LocalProtocolError(f"ask {inp.ask_id!r} is already in flight")
        if inp.request_id in self._by_request:
            raise LocalProtocolError("request id is already in flight")
        if not math.isfinite(inp.deadline) or not (math.isfinite(inp.settle) and inp.settle >= 0):
            raise LocalProtocolError("deadline must be a finite time and settle a finite number >= 0")
        pending = _Pending(inp.ask_id, inp.request_id, inp.session_id, inp.msg_type, inp.deadline, inp.settle)
        pending.track.synth = inp.synth
        self._pending[inp.ask_id] = pending
        self._by_request[inp.request_id] = inp.ask_id
        self._remember_send(_Send(inp.msg_type, inp.request_id, now), now)
        return []

    def _on_sent(self, inp: MessageSent, now: float) -> list[Output]:
        self._remember_send(_Send(inp.msg_type, inp.request_id, now), now)
        return []

    def _on_event(self, inp: EventArrived, now: float) -> list[Output]:
        event = inp.event
        key = event.dedup_key()
        while self._seen and (
            len(self._seen) >= self._dedup_size or now - next(iter(self._seen.values())) > self._dedup_window
        ):
            self._seen.popitem(last=False)
        if key in self._seen:
            return []
        self._seen[key] = now
        owner = self._owner(event, now)
        if owner is None:
            if event.is_policy_denied:
                return [UnattributedDenial(denial=parse_denial(event), event=event), *self._synth_refused(event, now)]
            return []
        ends = event.is_handled or ends_unanswered(event) or event.is_policy_denied
        if (len(owner.events) < MAX_ASK_EVENTS and owner.size < MAX_ASK_BYTES) or ends:
            owner.events.append(event)  # a flood of speech is capped; the end signals always count
            owner.size += weight((event.type, event.data, event.context), stop_at=MAX_ASK_BYTES)
        if event.is_speech and owner.first_speech is None:
            owner.first_speech = now
        out: list[Output] = [AskProgress(ask_id=owner.ask_id, event=event)]
        if event.is_speech:  # Rule 5: a clip that came first, and the hub's rendering of this speech
            self._early.give(owner.track, owner.events, now)
            for piece in owner.track.to_request(owner.events):
                wanted = SynthWanted(ask_id=owner.ask_id, utterance=piece, lang=event.lang, session_id=owner.session_id)
                out.append(wanted)
        if event.is_policy_denied:
            denial = parse_denial(event)
            out.append(self._end_failed(owner, "policy_denied", denial.message(), denial=denial))
        elif owner.quiet_hold and event.is_speech:  # Rule 2c: the speech that handled overtook
            owner.quiet_hold, owner.hold_until = False, None
            out += self._done(owner, now)
        elif (event.is_handled or ends_unanswered(event)) and owner.hold_until is None:
            if event.is_handled and owner.first_speech is None and self._quiet_grace > 0:
                owner.quiet_hold, owner.hold_until = True, now + self._quiet_grace  # Rule 2c
            else:
                out += self._done(owner, now)
        return out

    def _done(self, owner: _Pending, now: float) -> list[Output]:
        """The hub ended the turn of ``owner``: finish it, or hold it while it settles (Rule 2b)."""
        anchor = now if owner.first_speech is None else owner.first_speech
        if anchor + owner.settle > now:
            owner.hold_until = anchor + owner.settle  # Rule 2b: keep collecting until then
            return []
        return self._release(owner, now)

    def _release(self, owner: _Pending, now: float) -> list[Output]:
        """A done ask ends, unless it waits for the clips of its speech (Rule 5)."""
        if now < owner.deadline and owner.track.waiting(owner.events):
            owner.audio_hold, owner.hold_until = True, owner.deadline
            return []
        return [self._end_finished(owner)]

    def _on_frame(self, inp: FrameArrived, now: float) -> list[Output]:
        clip = tts_clip(inp.message)
        if clip is None or not self._pending:
            return []
        for ask in list(self._pending.values()):
            if ask.track.offer(clip, ask.events):
                done = ask.audio_hold and not ask.track.waiting(ask.events)
                return [self._end_finished(ask)] if done else []
        self._early.add(clip, now)
        return []

    def _synth_refused(self, event: ThalovantEvent, now: float) -> list[Output]:
        if not refuses_synth(event):
            return []
        out: list[Output] = []
        for ask in [a for a in self._pending.values() if a.track.synth]:
            ask.track.refused = True
            if ask.audio_hold:
                out.append(self._end_finished(ask))
        return out

    def _on_cancelled(self, inp: AskCancelled, now: float) -> list[Output]:
        ask = self._pending.get(inp.ask_id)
        if ask is None:
            raise LocalProtocolError(f"ask {inp.ask_id!r} is not in flight")
        return [self._end_failed(ask, "cancelled", "cancelled by the caller")]

    def _on_link_lost(self, inp: LinkLost, now: float) -> list[Output]:
        reason = clean_text(inp.reason) or "link to the hub lost"
        self._sends.clear()
        self._early.clear()
        out: list[Output] = []
        for ask in list(self._pending.values()):
            settling = ask.hold_until is not None  # already done (Rule 2b): finish it
            out.append(self._end_finished(ask) if settling else self._end_failed(ask, "link_lost", reason))
        return out

    def _on_tick(self, inp: Tick, now: float) -> list[Output]:
        out: list[Output] = []
        for ask in [a for a in self._pending.values() if a.due <= now]:
            if ask.hold_until is not None:  # done and settled (Rule 2b), maybe waiting for audio (Rule 5)
                out += [self._end_finished(ask)] if ask.quiet_hold or ask.audio_hold else self._release(ask, now)
                continue
            reply = ask.reply(timed_out=True)
            if reply.text:
                self._forget(ask)
                out.append(AskFinished(ask_id=ask.ask_id, reply=reply))
            else:
                out.append(self._end_failed(ask, "timeout", "the hub did not finish the turn in time"))
        return out

    # ---------------------------------------------------------- helpers

    def _remember_send(self, send: _Send, now: float) -> None:
        self._sends = [s for s in self._sends if now - s.at <= self._send_window]
        self._sends.append(send)

    def _owner(self, event: ThalovantEvent, now: float) -> _Pending | None:
        ids = turn_ids(event)
        if ids:
            for rid in ids:
                ask_id = self._by_request.get(rid)
                if ask_id is not None:
                    return self._pending[ask_id]
            return None  # someone else's request
        if event.is_policy_denied:
            return self._denial_owner(event, now)
        session_id = event.session_id
        if session_id is None:
            return None
        same = [a for a in self._pending.values() if a.session_id == session_id]
        return same[0] if len(same) == 1 else None

    def _denial_owner(self, event: ThalovantEvent, now: float) -> _Pending | None:
        denied = parse_denial(event).denied_type
        candidates = [a for a in self._pending.values() if denied is None or a.msg_type == denied]
        if len(candidates) != 1:
            return None
        only = candidates[0]
        for send in self._sends:
            if now - send.at > self._send_window:
                continue
            if (denied is None or send.msg_type == denied) and send.request_id != only.request_id:
                return None  # another send could have caused it
        return only

    def _forget(self, ask: _Pending) -> None:
        del self._pending[ask.ask_id]
        del self._by_request[ask.request_id]

    def _end_finished(self, ask: _Pending) -> AskFinished:
        self._forget(ask)
        return AskFinished(ask_id=ask.ask_id, reply=ask.reply())

    def _end_failed(self, ask: _Pending, kind: FailKind, reason: str, *, denial: Denial | None = None) -> AskFailed:
        self._forget(ask)
        return AskFailed(ask_id=ask.ask_id, kind=kind, reason=reason, denial=denial, reply=ask.reply())


_S = CorrelatorState
_ENDS = frozenset({_S.IDLE})  # the step ended the last pending ask

#: ``(state, input type) -> Row(to, handler, exits)``. The state follows the pending asks, so ``to``
#: and ``exits`` say which states the step can leave behind (a test drives every row).
TABLE: Final[Table[CorrelatorState, Correlator]] = {
    (_S.IDLE, AskStarted): Row(_S.WAITING, Correlator._on_ask_started),  # a new ask
    (_S.WAITING, AskStarted): Row(_S.WAITING, Correlator._on_ask_started),  # another ask alongside
    (_S.IDLE, MessageSent): Row(_S.IDLE, Correlator._on_sent),  # remembered for denial attribution
    (_S.WAITING, MessageSent): Row(_S.WAITING, Correlator._on_sent),
    (_S.IDLE, EventArrived): Row(_S.IDLE, Correlator._on_event),  # only a denial matters (unattributed)
    (_S.WAITING, EventArrived): Row(_S.WAITING, Correlator._on_event, _ENDS),  # match, record, maybe end
    (_S.IDLE, FrameArrived): Row(_S.IDLE, Correlator._on_frame),  # no ask: nothing to attach to
    (_S.WAITING, FrameArrived): Row(_S.WAITING, Correlator._on_frame, _ENDS),  # a TTS clip; may end a synth ask
    (_S.IDLE, AskCancelled): Row(_S.IDLE, Correlator._on_cancelled),  # nothing pending: misuse (raises)
    (_S.WAITING, AskCancelled): Row(_S.WAITING, Correlator._on_cancelled, _ENDS),
    (_S.IDLE, LinkLost): Row(_S.IDLE, Correlator._on_link_lost),  # forget recent sends
    (_S.WAITING, LinkLost): Row(_S.IDLE, Correlator._on_link_lost),  # every pending ask fails
    (_S.IDLE, Tick): Row(_S.IDLE, Correlator._on_tick),  # nothing can expire
    (_S.WAITING, Tick): Row(_S.WAITING, Correlator._on_tick, _ENDS),  # expire asks past their deadline
}


# ------------------------------------------------------------------ helpers for the Connection


def ask_failed(ask: AskStarted | None, kind: FailKind, reason: str) -> list[Output]:
    """The end of an ask whose message never reached the correlator (none for a plain send)."""
    if ask is None:
        return []
    reply = ThalovantReply(session_id=ask.session_id, request_id=ask.request_id)
    return [AskFailed(ask_id=ask.ask_id, kind=kind, reason=reason, reply=reply)]


__all__ = [  # the machine, its inputs, its outputs, helpers for the Connection
    "Correlator", "CorrelatorState", "FailKind", "TABLE",
    "AskCancelled", "AskStarted", "EventArrived", "FrameArrived", "LinkLost", "MessageSent",
    "AskFailed", "AskFinished", "AskProgress", "SynthWanted", "UnattributedDenial",
    "ask_failed", "request_id_of",
]  # fmt: skip
