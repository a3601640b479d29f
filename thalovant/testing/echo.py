"""The FakeHub's scripted answers (the harness echo skill) and a deterministic entropy source.

Echo rules, chosen by the utterance text: normal text -> ``speak {"utterance": "echo: <text>"}``
+ ``ovos.utterance.handled``; ``deny`` -> ``hive.policy.denied`` + handled; ``fail`` ->
``complete_intent_failure`` + handled; ``unmatched`` -> ``ovos.intent.unmatched``; ``silent`` ->
nothing; ``multi`` -> two ``speak`` + handled. Every answer is built like OVOS's
``Message.reply()``: the request's context is deep-copied and source and destination are swapped.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

from thalovant.core.machine import Entropy
from thalovant.core.wire.message import BusMessage

__all__ = ["UTTERANCE", "Behaviour", "counting_entropy", "denial_for", "echo_replies"]

#: A scripted behaviour: the request (after the hub's session rewrite) -> the bus messages to answer.
Behaviour = Callable[[BusMessage], list[BusMessage]]
UTTERANCE = "recognizer_loop:utterance"


def counting_entropy(seed: bytes | str = b"thalovant-testing") -> Entropy:
    """A deterministic entropy source: distinct bytes for every draw (SHA-256 of seed and a counter).

    Args:
        seed: makes two sources differ.

    Returns:
        A callable ``entropy(n) -> bytes`` (``n`` up to any size).
    """
    base = seed.encode("utf-8") if isinstance(seed, str) else seed
    count = 0

    def entropy(n: int) -> bytes:
        nonlocal count
        count += 1
        out = b""
        block = 0
        while len(out) < n:
            out += hashlib.sha256(base + count.to_bytes(8, "big") + block.to_bytes(4, "big")).digest()
            block += 1
        return out[:n]

    return entropy


def _reply(request: BusMessage, msg_type: str, data: dict[str, Any]) -> BusMessage:
    """Like OVOS ``Message.reply()``: deep-copied context, source and destination swapped."""
    context = copy.deepcopy(request.context)
    context["destination"] = request.context.get("source")
    context["source"] = request.context.get("destination", "skills")
    return BusMessage(type=msg_type, data=data, context=context)


def echo_replies(request: BusMessage) -> list[BusMessage]:
    """The harness echo skill's answers to a ``recognizer_loop:utterance`` (see the module docs)."""
    utterances = request.data.get("utterances") or []
    if isinstance(utterances, str):
        utterances = [utterances]
    first = utterances[0] if utterances and isinstance(utterances[0], str) else request.data.get("utterance", "")
    text = first.strip() if isinstance(first, str) else ""
    lang = request.data.get("lang") or request.context.get("lang") or "en-us"
    command = text.lower()
    handled = _reply(request, "ovos.utterance.handled", {"name": "echo.skill"})
    meta = {"expect_response": False, "meta": {"skill": "echo.skill"}}
    if command == "silent":
        return []
    if command == "deny":
        reason = "policy denied by echo skill (utterance 'deny')"
        data = {"reason": reason, "code": "policy_denied", "utterance": text, "lang": lang}
        return [_reply(request, "hive.policy.denied", data), handled]
    if command == "fail":
        return [_reply(request, "complete_intent_failure", {"utterance": text, "lang": lang}), handled]
    if command == "unmatched":
        return [_reply(request, "ovos.intent.unmatched", {"utterance": text, "lang": lang})]
    if command == "multi":
        return [
            _reply(request, "speak", {"utterance": f"echo: {text} (1/2)", "lang": lang, **meta}),
            _reply(request, "speak", {"utterance": f"echo: {text} (2/2)", "lang": lang, **meta}),
            handled,
        ]
    return [_reply(request, "speak", {"utterance": f"echo: {text}", "lang": lang, **meta}), handled]


def denial_for(msg_type: str, allowed: list[str]) -> BusMessage:
    """A hub 5.x ``hive.policy.denied`` for a refused message type (no request id, spec §9.2)."""
    reason = f"message type {msg_type} is not allowed for this client"
    data: dict[str, Any] = {"denied_type": msg_type, "code": "acl_disallowed_type", "reason": reason}
    data["data"] = {"msg_type": msg_type, "allowed": allowed}
    return BusMessage(type="hive.policy.denied", data=data, context={})
