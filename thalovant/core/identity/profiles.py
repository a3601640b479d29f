"""Config files with identity profiles: a small, strict YAML subset (pure).

Theory of operation
-------------------
``ThalovantIdentity.from_config(path=None, profile=None)`` (shell) reads
``$XDG_CONFIG_HOME/thalovant/config.yaml`` and hands the text here.
:func:`parse_config_text` turns it into a mapping, :func:`select_profile`
picks one identity mapping out of it, and ``parse_identity`` validates that.
Like the identity parser, nothing here raises on bad input and no problem
message quotes a value (problems name a line number or a field path).

Layout::

    default_profile: home          # optional
    profiles:
      home:
        access_key: "..."
        password: "..."
        site_id: kitchen
        default_master: https://hub.example
        mqtt:
          endpoint: mqtts://broker.example
      lab:
        ...

A file without ``profiles`` is one identity. A file whose first
non-blank character is ``{`` is read as JSON.

Profile choice: the ``profile`` argument, else ``default_profile``, else a
profile named ``default``, else the only profile; anything else is a
problem that lists the profile names.

The YAML subset: block mappings nested by spaces (no tabs), ``key: value``
lines, ``- value`` block sequences of scalars, ``#`` comments, and scalars
that are double-quoted (JSON escapes), single-quoted (``''`` escapes),
flow collections written as JSON (``[1, "a"]``, ``{"k": 1}``), ``null``/``~``,
``true``/``false``, or plain text. Plain numbers stay text (``port: 443`` is
the string ``"443"``, which the identity parser accepts wherever a number is
expected), so an all-digit secret is never mangled into an integer; write
typed metadata values as JSON. Anchors, aliases, tags, block scalars
(``|``, ``>``) and multi-document files are refused, not guessed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core.identity.fields import IdentityProblem, decode_text, load_json

_KEY = re.compile(
    r"(?P<key>\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^\s#'\"\-?:,\[\]{}&*!|>%@`][^#]*?|-[^\s#][^#]*?)\s*:(?:\s+|$)"
)
_UNSUPPORTED_START = "&*!|>%@`"
_MAX_DEPTH = 32
_MAX_LINE = 8192  # keeps every per-line scan cheap


class _Bad(Exception):
    """Internal: a problem at one line. Caught in :func:`parse_config_text` only."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _strip_comment(text: str) -> str:
    """``text`` without a trailing ``# comment`` (a ``#`` at the start or after a space, outside quotes)."""
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 1  # skip the escaped character
        elif quote == "'" and char == "'" and text[index + 1 : index + 2] == "'":
            index += 1  # '' is an escaped quote
        elif quote and char == quote:
            quote = ""
        elif not quote and char in "\"'" and (index == 0 or text[index - 1] in " \t:-[{,"):
            quote = char
        elif not quote and char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index].rstrip()
        index += 1
    return text.rstrip()


def _scalar(text: str, line: int) -> Any:
    if not text or text in ("~", "null", "Null", "NULL"):
        return None
    if text[0] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            raise _Bad(line, "malformed double-quoted string") from None
        if not isinstance(value, str):
            raise _Bad(line, "malformed double-quoted string")
        return value
    if text[0] == "'":
        if len(text) < 2 or text[-1] != "'" or re.search(r"(?<!')'(?!')", text[1:-1].replace("''", "")):
            raise _Bad(line, "malformed single-quoted string")
        return text[1:-1].replace("''", "'")
    if text[0] in "[{":
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise _Bad(line, "flow collections must be written as JSON") from None
    if text[0] in _UNSUPPORTED_START:
        raise _Bad(line, "anchors, aliases, tags and block scalars are not supported")
    if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return text.lower() == "true"
    return text  # numbers stay text: a secret like 0123456789 must not turn into an int


def _key(text: str, line: int) -> str:
    if text[0] in "\"'":
        value = _scalar(text, line)
        if not isinstance(value, str):
            raise _Bad(line, "malformed key")
        return value
    return text.strip()


class _Lines:
    def __init__(self, text: str) -> None:
        self.items: list[tuple[int, int, str]] = []  # (line number, indent, content)
        for number, raw in enumerate(text.splitlines(), start=1):
            if len(raw) > _MAX_LINE:
                raise _Bad(number, f"line longer than {_MAX_LINE} characters")
            content = _strip_comment(raw)
            if not content.strip():
                continue
            stripped = content.lstrip(" ")
            if stripped.startswith("\t"):
                raise _Bad(number, "indent with spaces, not tabs")
            if stripped in ("---", "...") and len(content) == len(stripped):
                if self.items:
                    raise _Bad(number, "only one YAML document is supported")
                continue
            self.items.append((number, len(content) - len(stripped), stripped))
        self.pos = 0

    def peek(self) -> tuple[int, int, str] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None


def _block(lines: _Lines, indent: int, depth: int) -> Any:
    first = lines.peek()
    assert first is not None  # callers check
    if depth > _MAX_DEPTH:
        raise _Bad(first[0], "nested too deeply")
    if first[2] == "-" or first[2].startswith("- "):
        return _sequence(lines, indent)
    out: dict[str, Any] = {}
    while (item := lines.peek()) is not None and item[1] == indent:
        number, _, content = item
        match = _KEY.match(content)
        if match is None:
            raise _Bad(number, "expected 'key: value'")
        key = _key(match.group("key"), number)
        if key in out:
            raise _Bad(number, "duplicate key")
        rest = content[match.end() :].strip()
        lines.pos += 1
        following = lines.peek()
        if rest:
            out[key] = _scalar(rest, number)
        elif following is not None and (following[1] > indent or (following[1] == indent and following[2][:1] == "-")):
            if following[1] == indent and not (following[2] == "-" or following[2].startswith("- ")):
                out[key] = None
                continue
            out[key] = _block(lines, following[1], depth + 1)
        else:
            out[key] = None
    item = lines.peek()
    if item is not None and item[1] > indent:
        raise _Bad(item[0], "unexpected indentation")
    return out


def _sequence(lines: _Lines, indent: int) -> list[Any]:
    out: list[Any] = []
    while (item := lines.peek()) is not None and item[1] == indent and (item[2] == "-" or item[2].startswith("- ")):
        number, _, content = item
        rest = content[1:].strip()
        if rest and _KEY.match(rest) and rest[0] not in "\"'[{":
            raise _Bad(number, "mappings inside lists are not supported (write the item as JSON)")
        out.append(_scalar(rest, number))
        lines.pos += 1
    item = lines.peek()
    if item is not None and item[1] > indent:
        raise _Bad(item[0], "unexpected indentation")
    return out


def parse_config_text(text: str | bytes, *, origin: str = "config file") -> Result[Any, tuple[IdentityProblem, ...]]:
    """Parse a config file (the YAML subset above, or JSON) into plain values."""
    return decode_text(text, origin).bind(lambda decoded: _parse_config(decoded, origin))


def _parse_config(text: str, origin: str) -> Result[Any, tuple[IdentityProblem, ...]]:
    if text.lstrip().startswith("{"):
        return load_json(text, origin)
    try:
        lines = _Lines(text)
        first = lines.peek()
        if first is None:
            return Success({})
        value = _block(lines, first[1], 0)
        leftover = lines.peek()
        if leftover is not None:
            raise _Bad(leftover[0], "unexpected indentation")
    except _Bad as bad:
        return Failure((IdentityProblem(f"line {bad.line}", bad.message),))
    return Success(value)


def select_profile(
    config: object, profile: str | None = None
) -> Result[Mapping[str, Any], tuple[IdentityProblem, ...]]:
    """Pick the identity mapping for ``profile`` (rules in the module docstring)."""
    if not isinstance(config, Mapping):
        return Failure((IdentityProblem("", "the config must be a mapping"),))
    profiles = config.get("profiles")
    if profiles is None:
        if profile not in (None, "default"):
            return Failure((IdentityProblem("profiles", "missing: the config has no profiles to choose from"),))
        return Success({k: v for k, v in config.items() if k != "default_profile"})
    if not isinstance(profiles, Mapping) or not profiles:
        return Failure((IdentityProblem("profiles", "must be a non-empty mapping of name -> identity"),))
    names = sorted(str(name) for name in profiles)
    wanted = profile or config.get("default_profile")
    if wanted is None:
        wanted = "default" if "default" in profiles else names[0] if len(names) == 1 else None
    if wanted is None:
        return Failure((IdentityProblem("profiles", f"choose a profile: {', '.join(names)}"),))
    chosen = profiles.get(wanted) if isinstance(wanted, str) else None
    if not isinstance(chosen, Mapping):
        problem = f"no profile {str(wanted)[:40]!r} (have: {', '.join(names)})" if chosen is None else "not a mapping"
        return Failure((IdentityProblem(f"profiles.{str(wanted)[:40]}", problem),))
    return Success(chosen)
