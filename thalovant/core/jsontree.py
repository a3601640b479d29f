"""JSON from peers: parsed with a depth limit, and nested values copied without recursion.

Everything a hub or the control plane sends is parsed by :func:`loads`, which refuses a value
nested deeper than :data:`MAX_JSON_DEPTH` with :class:`JsonTooDeep` (a ``ValueError``, so every
caller's "not JSON" path takes it) and never lets a ``RecursionError`` out. The parse itself is
the standard library's C decoder; the depth is checked afterwards, without recursion, and only
when the text has enough brackets to be that deep at all (small messages pay one ``count``).

:func:`copy_tree` rebuilds a nested value (dicts and lists) with an explicit stack, so the
scrubbers and redactors that walk what a peer sent cannot overflow Python's stack either, and can
cut the nesting at a depth of their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["DESCEND", "DROP", "MAX_JSON_DEPTH", "JsonTooDeep", "copy_tree", "depth", "loads", "weight"]

#: Deepest nesting (objects and arrays) accepted from a peer; a hub's envelope uses 3 of them.
MAX_JSON_DEPTH = 128

_DECODER = json.JSONDecoder()


class JsonTooDeep(ValueError):
    """A JSON value nested deeper than the limit; ``limit`` says which."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def depth(value: Any) -> int:
    """How deeply dicts and lists nest in ``value`` (a scalar is 0, ``[]`` is 1, ``[{}]`` is 2); no recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children if isinstance(child, dict | list))
    return deepest


def weight(value: Any, *, stop_at: int | None = None) -> int:
    """About how many bytes ``value`` would take as JSON: string and bytes lengths, 8 per other scalar,
    2 per container and 2 per member; no recursion. Counting stops once the sum passes ``stop_at``."""
    total = 0
    stack: list[Any] = [value]
    while stack and (stop_at is None or total <= stop_at):
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 8
    return total


def loads(text: str, *, max_depth: int = MAX_JSON_DEPTH, decoder: json.JSONDecoder = _DECODER) -> Any:
    """Parse JSON ``text`` nested at most ``max_depth`` deep.

    Raises:
        JsonTooDeep: nested deeper than ``max_depth`` (also when the decoder hit Python's recursion limit).
        ValueError: not JSON (``json.JSONDecodeError``, or what ``decoder``'s hooks raise).
    """
    try:
        value = decoder.decode(text)
    except RecursionError:
        raise JsonTooDeep(max_depth) from None
    if text.count("[") + text.count("{") > max_depth and depth(value) > max_depth:
        raise JsonTooDeep(max_depth)
    return value


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: What an ``entry`` callback of :func:`copy_tree` returns to copy the value under a key as usual.
DESCEND: Any = _Marker("DESCEND")
#: What an ``entry`` callback of :func:`copy_tree` returns to leave the key out.
DROP: Any = _Marker("DROP")

Entry = Callable[[Any], tuple[Any, Any]]


def _keep(key: Any) -> tuple[Any, Any]:
    return key, DESCEND


def copy_tree(
    value: Any,
    leaf: Callable[[Any], Any],
    *,
    entry: Entry = _keep,
    maps: tuple[type[Mapping[Any, Any]], ...] = (dict,),
    seqs: tuple[type[Iterable[Any]], ...] = (list,),
    max_depth: int | None = None,
    cut: Any = None,
) -> Any:
    """A copy of ``value`` with its containers rebuilt (``maps`` as dicts, ``seqs`` as lists); no recursion.

    Args:
        value: the value to copy.
        leaf: what anything that is no container becomes (e.g. ``lambda v: v``).
        entry: for each key of a mapping, ``(new_key, what)``: ``what`` is :data:`DESCEND` (copy the
            value), :data:`DROP` (leave the key out) or the value to put there instead.
        maps / seqs: the types copied as containers (``maps``: mappings).
        max_depth: a value (container or not) deeper than this becomes ``cut``; None: no limit.
        cut: see ``max_depth``.

    >>> copy_tree({"a": [1, {"b": 2}], "t": "x"}, lambda v: v * 2)
    {'a': [2, {'b': 4}], 't': 'xx'}
    """
    pending: list[tuple[Iterator[Any], dict[Any, Any] | list[Any], int]] = []

    def start(item: Any, level: int) -> Any:
        if max_depth is not None and level > max_depth:
            return cut
        if isinstance(item, maps):
            built: dict[Any, Any] = {}
            pending.append((iter(item.items()), built, level))
            return built
        if isinstance(item, seqs):
            items: list[Any] = []
            pending.append((iter(item), items, level))
            return items
        return leaf(item)

    result = start(value, 0)
    while pending:
        children, target, level = pending[-1]
        for child in children:
            if isinstance(target, dict):
                key, what = entry(child[0])
                if what is DROP:
                    continue
                target[key] = start(child[1], level + 1) if what is DESCEND else what
            else:
                target.append(start(child, level + 1))
            if pending[-1][1] is not target:
                break  # a container was opened: copy it first, then come back here
        else:
            pending.pop()
    return result
