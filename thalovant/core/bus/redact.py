"""Bus values made safe to show: secret-looking keys masked, nesting cut at a fixed depth (no recursion)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from thalovant.core.jsontree import DESCEND, copy_tree

__all__ = ["bounded_json", "redact"]

_SECRET_KEY = re.compile(r"(token|password|passwd|secret|authorization|access_key|crypto_key|api_key|credential)", re.I)
_REDACTED = "***"
_MAX_REDACT_DEPTH = 40


def _mask(key: Any) -> tuple[Any, Any]:
    return key, _REDACTED if isinstance(key, str) and _SECRET_KEY.search(key) else DESCEND


def _as_is(value: Any) -> Any:
    return value


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of a JSON value with the values of secret-looking keys replaced by ``"***"`` (no recursion).

    Nesting deeper than 40 levels is cut (``"***"``); ``_depth`` is where ``value`` already sits.

    >>> redact({"auth": {"token": "abc"}, "x": 1})
    {'auth': {'token': '***'}, 'x': 1}
    """
    return copy_tree(
        value,
        _as_is,
        entry=_mask,
        maps=(Mapping,),
        seqs=(list, tuple),
        max_depth=_MAX_REDACT_DEPTH - _depth,
        cut=_REDACTED,
    )


def _str_key(key: Any) -> tuple[Any, Any]:
    return str(key), DESCEND


def _jsonable(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else repr(value)


def bounded_json(value: Any, depth: int) -> Any:
    """A JSON-dumpable copy: string keys, nesting cut at ``_MAX_REDACT_DEPTH`` (``value`` sits at ``depth``)."""
    return copy_tree(
        value,
        _jsonable,
        entry=_str_key,
        maps=(Mapping,),
        seqs=(list, tuple),
        max_depth=_MAX_REDACT_DEPTH - depth,
        cut="...",
    )
