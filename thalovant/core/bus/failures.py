"""Typed turn failures that a caller opts into: :class:`ThalovantUnansweredError`.

0.4.7 code reads ``reply.unanswered`` (a flag) and must keep working, so ``ask``
never raises this by default. A caller opts in per call with
``ask(..., raise_unanswered=True)``, or after the fact with
``reply.raise_for_unanswered()``; both raise the same error.
"""

from __future__ import annotations

from typing import Any

from thalovant.core.errors import ThalovantRuntimeError


class ThalovantUnansweredError(ThalovantRuntimeError):
    """No skill matched the utterance (``complete_intent_failure`` / ``ovos.intent.unmatched``).

    Attributes:
        said: what the client said (the utterance of the turn), or None when unknown.
        request_id: the turn's request id, or None.
        reply: the :class:`~thalovant.core.bus.reply.ThalovantReply` of the turn (speech, events).
    """

    def __init__(self, said: str | None = None, *, request_id: str | None = None, reply: Any = None) -> None:
        super().__init__("no skill answered the utterance")
        self.said = said
        self.request_id = request_id
        self.reply = reply


__all__ = ["ThalovantUnansweredError"]
