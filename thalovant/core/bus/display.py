"""Rich display: turn one bus event's data into renderable items.

Theory of operation
-------------------
Pure functions, no state. :func:`display_items_for` reads the data of one
event and returns a tuple of :class:`ThalovantDisplayItem`, in this order:

1. text chunks (SSML stripped, split at word boundaries to ``max_text_chars``);
2. a ``table`` item;
3. ``image`` / ``attachment`` items from ``attachments`` / ``attachment``;
4. one ``choices`` item from ``quick_replies`` / ``buttons``;
5. ``image`` items from ``image`` / ``images``.

The media source is the first of ``data.rich_media_data``, ``data.rich_media``
or ``data.display`` (a mapping, or a JSON string holding one); failing that the
top-level keys of ``data`` are used (reference SDK §d.5).

Rule 1: the input is untrusted JSON from the hub. No shape of it raises; a
piece that does not fit is skipped.

Rule 2: chunking never loses or reorders text. Joining the chunks' words gives
the original words, except that a single word longer than ``max_text_chars``
is cut into consecutive pieces.

Rule 3: :func:`strip_ssml` removes SSML/XML markup only. Text such as
``"5 < 6 and 7 > 3"`` is left alone (the 0.4.7 regex deleted it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The kinds of display item.
KIND_TEXT = "text"
KIND_CHOICES = "choices"
KIND_IMAGE = "image"
KIND_ATTACHMENT = "attachment"
KIND_TABLE = "table"

#: Largest JSON string we try to decode as a media payload.
_MAX_JSON_CHARS = 256_000


@dataclass(frozen=True, slots=True)
class ThalovantDisplayItem:
    """One renderable piece of a reply.

    Attributes:
        kind: ``"text"``, ``"choices"``, ``"image"``, ``"attachment"`` or ``"table"``.
        text: the text of a ``text`` item (SSML already stripped).
        data: kind-specific data: the table, the raw attachment or image entry,
            or for ``choices`` a list of ``{"title", "payload", "data"}`` dicts.
        title: a title, when the source gave one.
        payload: the attachment's own ``payload`` mapping, when present.
        url: the media URL of an image or attachment.
        silent: the text is for display only, not to be spoken.
    """

    kind: str
    text: str | None = None
    data: Any = None
    title: str | None = None
    payload: Any = None
    url: str | None = None
    silent: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The item as a plain JSON-ready dict (every field present)."""
        return {
            "kind": self.kind,
            "text": self.text,
            "data": self.data,
            "title": self.title,
            "payload": self.payload,
            "url": self.url,
            "silent": self.silent,
        }


# --------------------------------------------------------------------------- SSML

# SSML 1.1 elements plus the common vendor ones. A tag is removed only if its
# name is one of these or is namespaced (``amazon:effect``), and its attributes
# are well formed (``name="value"``, ``name='value'`` or an unquoted ``name=value``).
_SSML_NAMES = frozenset(
    "speak break prosody s p say-as sub emphasis audio voice phoneme lang mark lexicon lookup"
    " meta metadata desc token w par seq media emotion whisper".split()
)
_BOUNDARY_NAMES = frozenset("break p s speak audio voice par seq media".split())
_TAG = re.compile(
    r"<(?P<close>/)?(?P<name>[A-Za-z][\w.-]*(?::[A-Za-z][\w.-]*)?)"
    r"(?P<attrs>(?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'|[^\s\"'<>/=]+))*)\s*(?P<selfclose>/)?>"
)
_DECL = re.compile(r"<\?xml[^<>]*\?>|<!--.*?-->", re.DOTALL)
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot|apos)|#(\d{1,7})|#[xX]([0-9A-Fa-f]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_SPACES = re.compile(r"\s+")


def _is_markup(match: re.Match[str]) -> bool:
    name = match.group("name").lower()
    if match.group("close") and match.group("attrs"):
        return False  # "</x a='b'>" is not a closing tag
    return name in _SSML_NAMES or ":" in name


def _replace_tag(match: re.Match[str]) -> str:
    if not _is_markup(match):
        return match.group(0)
    return " " if match.group("name").lower() in _BOUNDARY_NAMES else ""


def _unescape(match: re.Match[str]) -> str:
    named, dec, hexa = match.groups()
    if named:
        return _NAMED[named]
    code = int(dec) if dec else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return match.group(0)
    return chr(code)


def strip_ssml(text: str) -> str:
    """Remove SSML / XML markup and unescape the XML entities.

    Only real markup is removed: known SSML elements (``<speak>``,
    ``<break time="1s"/>``, ``<prosody rate="slow">``, ``</s>`` …), namespaced
    vendor tags, XML declarations and comments. A ``<`` that does not open such
    a tag is ordinary text. When markup was removed, runs of whitespace are
    collapsed to one space. Entities (``&lt;``, ``&#39;``) are decoded last, so
    an escaped tag shows up as text instead of being removed.

    Args:
        text: the text, possibly SSML. Non-strings give ``""``.

    Returns:
        The plain text.

    >>> strip_ssml('<speak>Hello<break time="1s"/>world</speak>')
    'Hello world'
    >>> strip_ssml("5 < 6 and 7 > 3")
    '5 < 6 and 7 > 3'
    >>> strip_ssml("a &lt;b&gt; &amp; c")
    'a <b> & c'
    """
    if not isinstance(text, str):
        return ""
    stripped = _DECL.sub("", text)
    stripped = _TAG.sub(_replace_tag, stripped)
    if stripped != text:
        stripped = _SPACES.sub(" ", stripped).strip()
    return _ENTITY.sub(_unescape, stripped)


# --------------------------------------------------------------------------- chunking


def chunk_text(text: str, max_chars: int | None = None) -> tuple[str, ...]:
    """Split text into chunks of at most ``max_chars`` characters at word boundaries.

    Words are separated by single spaces inside a chunk. A word longer than
    ``max_chars`` is cut into consecutive pieces. Blank text gives no chunks.

    Args:
        text: the text to split.
        max_chars: the chunk size limit, or None for a single chunk.

    Returns:
        The chunks, in order.

    Raises:
        ValueError: ``max_chars`` is less than 1.

    >>> chunk_text("one two three", 7)
    ('one two', 'three')
    >>> chunk_text("abcdefgh", 3)
    ('abc', 'def', 'gh')
    """
    if max_chars is not None and max_chars < 1:
        raise ValueError("max_text_chars must be at least 1")
    words = text.split()
    if not words:
        return ()
    if max_chars is None:
        return (" ".join(words),)
    chunks: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) <= max_chars:
            current = f"{current} {word}"
            continue
        if current:
            chunks.append(current)
        while len(word) > max_chars:
            chunks.append(word[:max_chars])
            word = word[max_chars:]
        current = word
    if current:
        chunks.append(current)
    return tuple(chunks)


# --------------------------------------------------------------------------- media


def _decode_json(value: Any) -> Any:
    """A JSON string decoded, or the value itself; undecodable strings give None."""
    if not isinstance(value, str):
        return value
    if len(value) > _MAX_JSON_CHARS:
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return None


def _as_list(value: Any) -> list[Any]:
    """A list of entries: a list as is, a JSON string holding a list or object decoded, else ``[value]``."""
    if isinstance(value, str):
        decoded = _decode_json(value)
        if isinstance(decoded, list | Mapping):
            value = decoded
    if isinstance(value, list | tuple):
        return list(value)
    if value is None:
        return []
    return [value]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _first_str(mapping: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        found = _str_or_none(mapping.get(key))
        if found is not None:
            return found
    return None


def _media_source(data: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("rich_media_data", "rich_media", "display"):
        candidate = _decode_json(data.get(key))
        if isinstance(candidate, Mapping):
            return candidate
    return data


def _table_items(source: Mapping[str, Any]) -> list[ThalovantDisplayItem]:
    table = _decode_json(source.get("table"))
    if table is None or table == "" or table == [] or table == () or table == {}:
        return []
    title = _str_or_none(table.get("title")) if isinstance(table, Mapping) else None
    return [ThalovantDisplayItem(KIND_TABLE, data=table, title=title)]


def _either(source: Mapping[str, Any], key: str, alias: str) -> Any:
    """``source[key]``, or ``source[alias]`` when ``key`` is absent or null."""
    value = source.get(key)
    return source.get(alias) if value is None else value


def _attachment_items(source: Mapping[str, Any]) -> list[ThalovantDisplayItem]:
    raw = _either(source, "attachments", "attachment")
    items: list[ThalovantDisplayItem] = []
    for entry in _as_list(raw):
        if not isinstance(entry, Mapping):
            continue
        payload = entry.get("payload")
        inner = payload if isinstance(payload, Mapping) else {}
        url = _first_str(inner, "src", "url") or _first_str(entry, "src", "url")
        title = _first_str(entry, "title", "name") or _first_str(inner, "title", "name")
        kind = KIND_IMAGE if entry.get("type") == "image" else KIND_ATTACHMENT
        items.append(ThalovantDisplayItem(kind, data=entry, title=title, payload=payload, url=url))
    return items


def _choice(entry: Any) -> dict[str, Any] | None:
    if isinstance(entry, str):
        return {"title": entry, "payload": entry, "data": entry} if entry.strip() else None
    if not isinstance(entry, Mapping):
        return None
    title = _first_str(entry, "title", "label", "text")
    payload = entry.get("payload")
    if payload is None:
        payload = entry.get("value")
    if payload is None:
        payload = title
    if title is None and payload is None:
        return None
    return {"title": title if title is not None else str(payload), "payload": payload, "data": entry}


def _choice_items(source: Mapping[str, Any]) -> list[ThalovantDisplayItem]:
    raw = _either(source, "quick_replies", "buttons")
    choices = [c for c in (_choice(e) for e in _as_list(raw)) if c is not None]
    if not choices:
        return []
    return [ThalovantDisplayItem(KIND_CHOICES, data=choices)]


def _image_items(source: Mapping[str, Any]) -> list[ThalovantDisplayItem]:
    raw = _either(source, "images", "image")
    items: list[ThalovantDisplayItem] = []
    for entry in _as_list(raw):
        if isinstance(entry, str) and entry.strip():
            items.append(ThalovantDisplayItem(KIND_IMAGE, data=entry, url=entry))
        elif isinstance(entry, Mapping):
            url = _first_str(entry, "src", "url")
            if url is not None:
                items.append(ThalovantDisplayItem(KIND_IMAGE, data=entry, url=url, title=_first_str(entry, "title")))
    return items


def spoken_text(data: Mapping[str, Any]) -> str:
    """The raw text of an event's data: ``utterance``, ``text``, or the joined ``utterances``."""
    for key in ("utterance", "text"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value
    utterances = data.get("utterances")
    if isinstance(utterances, str):
        return utterances
    if isinstance(utterances, list | tuple):
        return " ".join(u for u in utterances if isinstance(u, str))
    return ""


def display_items_for(
    event_type: str,
    data: Mapping[str, Any],
    *,
    max_text_chars: int | None = None,
    include_text: bool = True,
) -> tuple[ThalovantDisplayItem, ...]:
    """The display items of one event.

    Args:
        event_type: the bus message type (``write`` marks text as silent).
        data: the event's ``data`` mapping (anything else gives no items).
        max_text_chars: split text into chunks of at most this many characters.
        include_text: False to skip the text items (for events whose text is
            the user's own utterance, such as intent failures).

    Returns:
        The items, in the order described in the module docstring.

    Raises:
        ValueError: ``max_text_chars`` is less than 1.
    """
    if max_text_chars is not None and max_text_chars < 1:
        raise ValueError("max_text_chars must be at least 1")
    if not isinstance(data, Mapping):
        return ()
    items: list[ThalovantDisplayItem] = []
    if include_text:
        silent = event_type == "write" or data.get("silent") is True
        for chunk in chunk_text(strip_ssml(spoken_text(data)), max_text_chars):
            items.append(ThalovantDisplayItem(KIND_TEXT, text=chunk, silent=silent))
    source = _media_source(data)
    items.extend(_table_items(source))
    items.extend(_attachment_items(source))
    items.extend(_choice_items(source))
    items.extend(_image_items(source))
    return tuple(items)


__all__ = [
    "KIND_ATTACHMENT",
    "KIND_CHOICES",
    "KIND_IMAGE",
    "KIND_TABLE",
    "KIND_TEXT",
    "ThalovantDisplayItem",
    "chunk_text",
    "display_items_for",
    "spoken_text",
    "strip_ssml",
]
