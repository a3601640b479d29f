"""The conversation state a stateless hub (5.x) hands back, carried into the next turn.

Hub 5.x keeps no session between messages, so a conversation in the shell sends the session
fields the hub returned with each reply along with its next utterance. :class:`ConversationState`
is that carried state, as a pure value: it is updated from a reply and turned into the next
turn's context. The correlator decides which reply belongs to which ask; this module only decides
what of a reply is carried.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from thalovant.core.bus.reply import ThalovantReply

__all__ = ["ConversationState"]

#: Session keys the client owns; never copied back from the hub.
_NOT_CARRIED = frozenset({"session_id", "request_id", "site_id", "lang", "blacklisted_skills", "blacklisted_intents"})
_MAX_CARRY_KEYS = 64
_MAX_CARRY_CHARS = 64_000


@dataclass(frozen=True, slots=True)
class ConversationState:
    """The conversation state a stateless hub (5.x) hands back, to send with the next turn.

    Hub 5.x keeps no session between messages: OVOS's ``active_skills``,
    ``converse_handlers``, ``utterance_states``, ``context`` … come back in
    the reply's ``context.session`` and must be sent again with the next
    utterance of the same conversation. Hub 4.x rewrites the session to the
    connection's own id (P13); such a session is not ours and is not carried.

    Attributes:
        session_id: the conversation's (user-side) session id.
        carried: the session fields to send with the next turn.
    """

    session_id: str
    carried: Mapping[str, Any] = field(default_factory=dict)

    def update_from_reply(self, reply: ThalovantReply) -> ConversationState:
        """The state after a reply: the latest session of this conversation the hub sent back.

        The ``ovos.utterance.handled`` event wins; otherwise the last event
        whose session id is ours. Oversized or odd sessions leave the state as it was.
        """
        ordered = sorted(reply.events, key=lambda e: e.is_handled)  # stable: handled events last
        for event in reversed(ordered):
            session = event.session
            if session.get("session_id") != self.session_id:
                continue
            carried = {k: v for k, v in session.items() if isinstance(k, str) and k not in _NOT_CARRIED}
            if len(carried) > _MAX_CARRY_KEYS or not _small_json(carried):
                return self
            return ConversationState(self.session_id, carried)
        return self

    def context_for_next_turn(self, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A new context for the next turn: the carried session under the caller's own session fields."""
        ctx = dict(context) if context else {}
        own = ctx.get("session")
        ctx["session"] = {
            **copy.deepcopy(dict(self.carried)),
            **(dict(own) if isinstance(own, Mapping) else {}),
            "session_id": self.session_id,
        }
        return ctx


def _small_json(value: Any) -> bool:
    try:
        return len(json.dumps(value)) <= _MAX_CARRY_CHARS
    except (TypeError, ValueError, RecursionError):
        return False
