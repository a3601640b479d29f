"""Old 0.4.7 spellings that keep working: each one warns once per process (``DeprecationWarning``).

Where thalovant prefers a new name (``check_interval`` for ``poll_interval``, ``type`` for an
event's ``name`` ...), the 0.4.7 name still works and :func:`warn_once` says which name to use
instead, the first time it is used. The registry of spellings already warned about is the one
piece of process state here; it holds short keys only (never a value the caller passed).
``docs/migrating.md`` lists every old spelling.
"""

from __future__ import annotations

import warnings

__all__ = ["forget_warnings", "warn_once"]

_WARNED: set[str] = set()


def warn_once(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn (``DeprecationWarning``) that the 0.4.7 spelling ``old`` is deprecated in favour of ``new``.

    Only the first use of each ``old`` in a process warns; ``stacklevel`` points the warning at the
    caller's line (3: the caller of the function that calls this one).
    """
    if old in _WARNED:
        return
    _WARNED.add(old)
    warnings.warn(f"{old} is the 0.4.7 spelling; use {new}", DeprecationWarning, stacklevel=stacklevel)


def forget_warnings() -> None:
    """Let every old spelling warn again (for tests that check the warning)."""
    _WARNED.clear()
