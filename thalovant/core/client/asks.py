"""Small pure helpers of :mod:`thalovant.core.client.connection` (kept apart to keep that module short)."""

from __future__ import annotations

from typing import Any

from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client import correlate as corr
from thalovant.core.machine import Output
from thalovant.core.wire.message import BusMessage

__all__ = ["ask_failed", "request_id", "scrub"]


def ask_failed(ask: corr.AskStarted | None, kind: corr.FailKind, reason: str) -> list[Output]:
    """The end of an ask whose message never reached the correlator (none for a plain send)."""
    if ask is None:
        return []
    reply = ThalovantReply(session_id=ask.session_id, request_id=ask.request_id)
    return [corr.AskFailed(ask_id=ask.ask_id, kind=kind, reason=reason, reply=reply)]


def scrub(value: Any, secret: str) -> Any:
    """``value`` with every occurrence of ``secret`` in strings replaced by ``<access-key>``."""
    if isinstance(value, str):
        return value.replace(secret, "<access-key>") if secret in value else value
    if isinstance(value, dict):
        return {k: scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secret) for v in value]
    return value


def request_id(message: BusMessage) -> str | None:
    rid = message.context.get("request_id")
    return rid if isinstance(rid, str) else None
