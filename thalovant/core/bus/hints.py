"""Request hints: ``stt_lang``, ``pipeline`` and ``location`` merged into one turn's context.

Theory of operation
-------------------
Pure functions that build new dicts; an input mapping is never mutated.
Each hint is checked at the door: a bad one raises
:class:`~thalovant.core.errors.ThalovantArgumentError` (or its ``TypeError``
subclass) naming the argument, never echoing its value.

The reference SDK 0.9.7 names ``ask(stt_lang=, pipeline=, location=)``,
``build_location(...)`` and ``request_context(...)`` but the spec does not
state where in the context they go. Our choice (OVOS ``Session`` field names,
so an OVOS hub reads them without a plugin)::

    context.stt_lang                  = "<tag>"        # the language the STT heard
    context.pipeline                  = ["<id>", ...]  # OVOS pipeline ids, in order
    context.location                  = <location>     # the dict build_location() makes
    context.session.stt_lang          = "<tag>"
    context.session.pipeline          = ["<id>", ...]
    context.session.location_preferences = <location>

Why both places: OVOS reads the ``Session`` fields, but hub 4.x replaces
``context.session`` with the connection's session (spec §9.1: it adopts the
message's session only when its id is the HELLO one, i.e. not inside a
conversation with its own session id), while top-level context keys reach the
hub bus unchanged on hub 4.x and 5.x. Seen on the harness hubs
(``tests/live/test_hints_live.py``): hub 5.x keeps all three session fields;
hub 4.x keeps ``session.pipeline`` but drops ``session.stt_lang`` and
``session.location_preferences``; the top-level keys arrive on both.

A hint argument wins over the same key already in ``context`` (it is the more
specific, per-request word); the ``session`` dict is merged key by key, so
other session keys survive.

``build_location`` makes the Mycroft/OVOS location shape::

    {"city": {"name", "code", "state": {"name", "code", "country": {"name", "code"}}},
     "coordinate": {"latitude", "longitude"}, "timezone": {"code", "name"}}

with only the parts that were given.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

from thalovant.core.errors import ThalovantArgumentError, ThalovantArgumentTypeError

#: Most pipeline ids one request may name.
MAX_PIPELINE_IDS = 64
#: Longest text hint (a language tag, a pipeline id, a place name), in characters.
MAX_HINT_CHARS = 256


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThalovantArgumentTypeError(name, "must be a string")
    text = value.strip()
    if not text:
        raise ThalovantArgumentError(name, "must not be blank")
    if len(text) > MAX_HINT_CHARS or any(ord(c) < 32 for c in text):
        raise ThalovantArgumentError(name, f"must be at most {MAX_HINT_CHARS} printable characters")
    return text


def _degrees(name: str, value: object, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ThalovantArgumentTypeError(name, "must be a number of degrees")
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        raise ThalovantArgumentError(name, f"must be between -{limit:g} and {limit:g}")
    return number


def build_location(
    *,
    latitude: float | None = None,
    longitude: float | None = None,
    city: str | None = None,
    city_code: str | None = None,
    state: str | None = None,
    state_code: str | None = None,
    country: str | None = None,
    country_code: str | None = None,
    timezone: str | None = None,
) -> dict[str, Any]:
    """A location hint in the Mycroft/OVOS shape (only the given parts).

    Args:
        latitude: degrees north, -90..90 (given together with ``longitude``).
        longitude: degrees east, -180..180.
        city: the city's name; ``city_code`` its code.
        state: the state or region; ``state_code`` its code.
        country: the country's name; ``country_code`` its code (``"PT"``).
        timezone: an IANA zone name (``"Europe/Lisbon"``).

    Returns:
        The location dict, for ``ask(location=...)``.

    Raises:
        ThalovantArgumentError: nothing given, only one coordinate, a coordinate out of range,
            or a blank or over-long name (the message names the argument, not the value).
        ThalovantArgumentTypeError: a value of the wrong type.

    >>> build_location(latitude=38.7, longitude=-9.1, country_code="PT")
    {'city': {'state': {'country': {'code': 'PT'}}}, 'coordinate': {'latitude': 38.7, 'longitude': -9.1}}
    """
    names = {
        "city": city,
        "city_code": city_code,
        "state": state,
        "state_code": state_code,
        "country": country,
        "country_code": country_code,
        "timezone": timezone,
    }
    clean = {key: _text(key, value) for key, value in names.items() if value is not None}
    if (latitude is None) != (longitude is None):
        raise ThalovantArgumentError("latitude" if latitude is None else "longitude", "needs the other coordinate")
    if not clean and latitude is None:
        raise ThalovantArgumentError("location", "give at least one part")
    country_part = {k: clean[f"country{s}"] for k, s in (("name", ""), ("code", "_code")) if f"country{s}" in clean}
    state_part: dict[str, Any] = {
        k: clean[f"state{s}"] for k, s in (("name", ""), ("code", "_code")) if f"state{s}" in clean
    }
    if country_part:
        state_part["country"] = country_part
    city_part: dict[str, Any] = {
        k: clean[f"city{s}"] for k, s in (("name", ""), ("code", "_code")) if f"city{s}" in clean
    }
    if state_part:
        city_part["state"] = state_part
    location: dict[str, Any] = {}
    if city_part:
        location["city"] = city_part
    if latitude is not None and longitude is not None:
        location["coordinate"] = {
            "latitude": _degrees("latitude", latitude, 90.0),
            "longitude": _degrees("longitude", longitude, 180.0),
        }
    if "timezone" in clean:
        location["timezone"] = {"code": clean["timezone"], "name": clean["timezone"]}
    return location


def _json_like(value: object, depth: int = 0) -> bool:
    if depth > 8:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _json_like(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_json_like(v, depth + 1) for v in value)
    return False


def _pipeline(value: object) -> list[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ThalovantArgumentTypeError("pipeline", "must be a list of pipeline ids")
    if not value:
        raise ThalovantArgumentError("pipeline", "must name at least one pipeline id")
    if len(value) > MAX_PIPELINE_IDS:
        raise ThalovantArgumentError("pipeline", f"must name at most {MAX_PIPELINE_IDS} pipeline ids")
    return [_text("pipeline", item) for item in value]


def _location(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ThalovantArgumentTypeError("location", "must be a mapping (see build_location)")
    if not value:
        raise ThalovantArgumentError("location", "must not be empty")
    if not _json_like(value):
        raise ThalovantArgumentError("location", "must hold only JSON values with string keys")
    return copy.deepcopy(dict(value))


def request_context(
    context: Mapping[str, Any] | None = None,
    *,
    stt_lang: str | None = None,
    pipeline: Sequence[str] | None = None,
    location: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new context with the request hints merged in (see the module docstring for where they go).

    Args:
        context: the starting context (not mutated); None: ``{}``.
        stt_lang: the language the speech recogniser heard (a language tag).
        pipeline: the OVOS pipeline ids to try, in order (a list of strings, at most 64).
        location: where the user is, e.g. from :func:`build_location` (JSON values only).

    Returns:
        The new context; equal to a copy of ``context`` when no hint is given.

    Raises:
        ThalovantArgumentError: a blank, over-long or out-of-range hint (names the argument).
        ThalovantArgumentTypeError: a hint of the wrong type.

    >>> request_context({"session": {"session_id": "s1"}}, pipeline=["adapt_high"])
    {'session': {'session_id': 's1', 'pipeline': ['adapt_high']}, 'pipeline': ['adapt_high']}
    """
    lang = None if stt_lang is None else _text("stt_lang", stt_lang)
    ids = None if pipeline is None else _pipeline(pipeline)
    where = None if location is None else _location(location)
    ctx = copy.deepcopy(dict(context)) if context else {}
    if lang is None and ids is None and where is None:
        return ctx
    current = ctx.get("session")
    session = dict(current) if isinstance(current, Mapping) else {}
    if lang is not None:
        ctx["stt_lang"] = lang
        session["stt_lang"] = lang
    if ids is not None:
        ctx["pipeline"] = ids
        session["pipeline"] = list(ids)
    if where is not None:
        ctx["location"] = where
        session["location_preferences"] = copy.deepcopy(where)
    ctx["session"] = session
    return ctx


__all__ = ["MAX_HINT_CHARS", "MAX_PIPELINE_IDS", "build_location", "request_context"]
