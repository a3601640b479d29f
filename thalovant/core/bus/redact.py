"""Bus values made safe to show: secret-looking keys masked, nesting cut at a fixed depth."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["bounded_json", "redact"]

_SECRET_KEY = re.compile(r"(token|password|passwd|secret|authorization|access_key|crypto_key|api_key|credential)", re.I)
_REDACTED = "***"
_MAX_REDACT_DEPTH = 40


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of a JSON value with the values of secret-looking keys replaced by ``"***"``.

    >>> redact({"auth": {"token": "abc"}, "x": 1})
    {'auth': {'token': '***'}, 'x': 1}
    """
    if _depth > _MAX_REDACT_DEPTH:
        return _REDACTED
    if isinstance(value, Mapping):
        return {
            k: (_REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, _depth + 1) for v in value]
    return value


def bounded_json(value: Any, depth: int) -> Any:
    """A JSON-dumpable copy: string keys, nesting cut at ``_MAX_REDACT_DEPTH``."""
    if depth > _MAX_REDACT_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {str(k): bounded_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [bounded_json(v, depth + 1) for v in value]
    return value if value is None or isinstance(value, bool | int | float | str) else repr(value)
