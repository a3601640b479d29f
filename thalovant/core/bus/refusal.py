"""Policy denials: read ``hive.policy.denied`` into a clean :class:`Denial` value.

Theory of operation
-------------------
Pure functions. :func:`parse_denial` reads the denial shapes of spec §9.3
(hub 5.x)::

    {"denied_type": "speak", "code": "acl_disallowed_type",
     "reason": "speak not in allowed_types",
     "data": {"msg_type": "speak", "allowed": ["recognizer_loop:utterance"]}}

and the flatter shape skills emit (``{"reason", "code", "utterance"}``).

Rule 1: every string field is clean: control and bidi characters removed,
whitespace collapsed, at most :data:`MAX_FIELD_CHARS` characters, and never
blank (None instead). Hub text is untrusted and ends up in exception messages
and terminals.

Rule 2: quota numbers (``limit``, ``used``, ``period``, ``reset_after``) are
read only when the code is a quota code (:func:`is_quota_code`). The hub's
built-in codes are not quota codes; quota codes are plugin-defined (spec §9.3
"plus plugin-defined codes (e.g. quota)").

Rule 3: no exception is built here. The shell raises
``ThalovantPolicyDenied(denial.message(), **denial.exception_fields())``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Codes hub 5.x itself sends (spec §9.3).
HUB_DENIAL_CODES = frozenset(
    {
        "acl_disallowed_type",
        "session_id_default_forbidden",
        "policy_error",
        "policy_chain_unavailable",
        "malformed_payload",
        "backend_unavailable",
    }
)
#: Plugin-defined quota codes we recognise exactly; see :func:`is_quota_code`.
QUOTA_CODES = frozenset(
    {
        "quota",
        "quota_exceeded",
        "quota_exhausted",
        "rate_limited",
        "rate_limit",
        "rate_limit_exceeded",
        "too_many_requests",
    }
)
MAX_FIELD_CHARS = 200
MAX_ALLOWED_ENTRIES = 64
_MAX_COUNT = 10**12
_MAX_SECONDS = 10.0**9

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_text(value: Any, *, limit: int = MAX_FIELD_CHARS) -> str | None:
    """A safe one-line version of an untrusted string, or None if it is not a non-blank string.

    >>> clean_text("  deny\\x1b[31m  me\\n")
    'deny [31m me'
    >>> clean_text("   ") is None, clean_text(5) is None
    (True, True)
    """
    if not isinstance(value, str):
        return None
    text = " ".join(_UNSAFE.sub(" ", value).split())
    if not text:
        return None
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def is_quota_code(code: str | None) -> bool:
    """Whether a denial code reports an exhausted quota or rate limit.

    Exact :data:`QUOTA_CODES`, or any code starting with ``quota`` or
    containing ``rate_limit``.

    >>> is_quota_code("quota_exceeded"), is_quota_code("acl_disallowed_type")
    (True, False)
    """
    if not code:
        return False
    lowered = code.lower()
    return lowered in QUOTA_CODES or lowered.startswith("quota") or "rate_limit" in lowered


@dataclass(frozen=True, slots=True, kw_only=True)
class Denial:
    """A policy refusal, reduced to clean fields.

    Attributes:
        denied_type: the message type that was refused.
        code: the machine-readable reason code.
        reason: the human-readable reason.
        allowed: the message types the client may send, when the hub said.
        period: the quota window (``"day"``, ``"minute"`` …), quota codes only.
        limit: the quota size, quota codes only.
        used: how much of the quota is used, quota codes only.
        reset_after: seconds until the quota resets, quota codes only.
    """

    denied_type: str | None = None
    code: str | None = None
    reason: str | None = None
    allowed: tuple[str, ...] = ()
    period: str | None = None
    limit: int | None = None
    used: int | None = None
    reset_after: float | None = None

    @property
    def is_quota(self) -> bool:
        """The denial is a quota / rate-limit refusal."""
        return is_quota_code(self.code)

    def message(self) -> str:
        """A one-line human summary (built only from clean fields).

        >>> Denial(code="acl_disallowed_type", denied_type="speak").message()
        'policy denied: speak (acl_disallowed_type)'
        """
        head = "policy denied"
        if self.reason:
            # the echo skill's reason already reads "policy denied by echo skill ..."
            head = self.reason if self.reason.lower().startswith(head) else f"{head}: {self.reason}"
        elif self.denied_type:
            head = f"{head}: {self.denied_type}"
        if self.code:
            head = f"{head} ({self.code})"
        if self.reset_after is not None:
            head = f"{head}; retry after {self.reset_after:g} s"
        return head

    def exception_fields(self) -> dict[str, Any]:
        """The keyword arguments for ``ThalovantPolicyDenied`` (all but ``event``)."""
        return {
            "denied_type": self.denied_type,
            "code": self.code,
            "reason": self.reason,
            "allowed": self.allowed,
            "period": self.period,
            "limit": self.limit,
            "used": self.used,
            "reset_after": self.reset_after,
        }


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 13:
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip()) if len(value) <= 32 else None
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= _MAX_SECONDS:
        return float(value)
    return None


def _first(places: tuple[Mapping[str, Any], ...], *keys: str) -> Any:
    for place in places:
        for key in keys:
            if key in place and place[key] is not None:
                return place[key]
    return None


def _allowed(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return ()
    found: list[str] = []
    for entry in value[:MAX_ALLOWED_ENTRIES]:
        text = clean_text(entry)
        if text is not None and text not in found:
            found.append(text)
    return tuple(found)


def _data_of(event: Any) -> Mapping[str, Any]:
    if isinstance(event, Mapping):
        is_message = "type" in event or "context" in event
        data = event.get("data") if is_message else event
    else:
        data = getattr(event, "data", None)
    return data if isinstance(data, Mapping) else {}


def parse_denial(event: Any) -> Denial:
    """Read a ``hive.policy.denied`` event (or its ``data`` mapping) as a :class:`Denial`.

    Args:
        event: a ``ThalovantEvent``, a bus-message dict, or the data dict itself.

    Returns:
        The denial; never raises. Unknown shapes give a Denial with None fields.

    >>> d = parse_denial({"type": "hive.policy.denied", "data": {"denied_type": "speak", "code": "acl_disallowed_type",
    ...     "data": {"msg_type": "speak", "allowed": ["recognizer_loop:utterance"]}}})
    >>> d.denied_type, d.allowed, d.limit
    ('speak', ('recognizer_loop:utterance',), None)
    """
    data = _data_of(event)
    nested = data.get("data")
    inner: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    raw_quota = data.get("quota", inner.get("quota"))
    quota: Mapping[str, Any] = raw_quota if isinstance(raw_quota, Mapping) else {}
    places = (data, inner)
    code = clean_text(_first(places, "code", "error"), limit=80)
    denial = Denial(
        denied_type=clean_text(_first(places, "denied_type", "msg_type", "type"), limit=120),
        code=code,
        reason=clean_text(_first(places, "reason", "message", "detail")),
        allowed=_allowed(_first(places, "allowed", "allowed_types")),
    )
    if not is_quota_code(code):
        return denial
    qplaces = (quota, data, inner)
    return Denial(
        denied_type=denial.denied_type,
        code=denial.code,
        reason=denial.reason,
        allowed=denial.allowed,
        period=clean_text(_first(qplaces, "period", "window"), limit=40),
        limit=_count(_first(qplaces, "limit", "quota_limit", "max")),
        used=_count(_first(qplaces, "used", "count", "consumed")),
        reset_after=_seconds(_first(qplaces, "reset_after", "reset_after_seconds", "retry_after")),
    )


__all__ = [
    "HUB_DENIAL_CODES",
    "MAX_FIELD_CHARS",
    "QUOTA_CODES",
    "Denial",
    "clean_text",
    "is_quota_code",
    "parse_denial",
]
