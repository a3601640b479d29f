"""Pure MQTT topic helpers (spec §8.3): layouts, the identity's topic rule, validation, payload and rc sorting.

``validate_topic``, ``mqtt_topics`` and ``derive_topics`` return ``Result`` so identity checks
(``doctor``) can report every problem; :class:`~.mqtt_map.MqttMap` turns a
failure into ``LocalProtocolError`` at construction.

Theory of operation: the identity's topics
------------------------------------------
``mqtt_topics`` builds topics from a prefix that already is the base. What an
identity holds is less direct: the control plane hands out an ACL-scoped
``topic_prefix`` that ends in the client's own key (``hivemind/hub-1/<key>``),
or a root prefix plus ``hub_id``, or explicit topics. :func:`derive_topics`
turns those fields (:class:`TopicSettings`) into the three topics exactly as
thalovant 0.4.7 did (``reference-sdk.md`` §d.10), first rule that applies:

1. ``c2s_topic`` **and** ``s2c_topic`` given: used as is. The status topic is
   ``status_topic``, else ``c2s_topic`` with its ``c2s`` level replaced by
   ``status`` (no such level: a problem naming ``mqtt.status_topic``). One of
   the pair alone, or ``status_topic`` alone, is ignored (as 0.4.7 did).
2. ``topic_prefix`` has a ``c2s``, ``s2c`` or ``status`` level (not its first
   or last): it is a full topic; the three topics are it with that level set
   to ``c2s``, ``s2c`` and ``status``.
3. Otherwise the base is ``topic_prefix`` without its last level when that
   level is the access key, the broker username or the satellite id, then
   ``/<hub_id>`` unless ``hub_id`` already is one of its levels. No prefix (or
   nothing left of it): ``hivemind/<hub_id>``. No prefix and no ``hub_id``: a
   problem naming ``mqtt.topic_prefix``. Topics: ``<base>/c2s|s2c|status/<sat>``.

The satellite id (``sat``) is the access key, or ``sha256(access_key)[:16]``
(hex) with ``hash_topics`` (hub 4.x then looks the hash up as the key: spec §8.3
calls it unsupported; it is derived as 0.4.7 did).

The ``MODERN`` layout (plugin 0.2.x, hub >= 5.1, spec §8.3: ``<prefix>/<key>/in|out|status``)
takes the same fields: explicit ``c2s_topic``/``s2c_topic`` as in rule 1 (the status
topic from an ``in`` last level), else the base is ``topic_prefix`` (default
``hivemind``) without a last level that is ``in``/``out``/``status`` and then without
one that is the key, username or satellite id; ``hub_id`` is not used. Topics:
``<base>/<sat>/in``, ``/out`` and ``/status``. So 0.9.7's ``hivemind/<key>`` and the
plugin's root ``hivemind`` give the same topics.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import NamedTuple

from returns.result import Failure, Result, Success

from thalovant.core.links.base import Frame, LinkDown

__all__ = [
    "DEFAULT_ROOT",
    "MqttLayout",
    "MqttProblem",
    "MqttTopicSet",
    "MqttTopics",
    "TopicOverrides",
    "TopicSettings",
    "classify_payload",
    "classify_rc",
    "derive_topics",
    "mqtt_topics",
    "satellite_id",
    "validate_topic",
]

#: The topic root a prefix-less identity gets (the hub plugins' own ``topic_prefix`` default).
DEFAULT_ROOT = "hivemind"


class MqttLayout(enum.Enum):
    LEGACY = "c2s-s2c"  # plugin 0.1.0a2, hub 4.x
    MODERN = "in-out"  # plugin 0.2.x, hub >= 5.1


@dataclass(frozen=True, slots=True)
class MqttProblem:
    """Why a topic or prefix is not usable. Never holds the topic itself (it may hold the key)."""

    code: str  # "empty", "wildcard", "control-char", "empty-level", "reserved", "too-long", "missing", "bad-level"
    detail: str = ""
    #: the identity field at fault (``mqtt.topic_prefix`` ...), when the problem comes from one
    field: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicOverrides:
    """Explicit topics from the identity (``c2s_topic`` / ``s2c_topic`` / ``status_topic``)."""

    c2s: str | None = None
    s2c: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class MqttTopics:
    """The three topics one client uses."""

    c2s: str
    s2c: str
    status: str

    def __repr__(self) -> str:
        return "MqttTopics(<redacted: topics hold the access key>)"


def validate_topic(topic: str, *, what: str = "topic") -> Result[str, MqttProblem]:
    """Check a topic name (or prefix) we publish to or subscribe to exactly.

    Rejects: empty, MQTT wildcards ``+``/``#``, NUL or other control
    characters, empty levels (leading, trailing or double ``/``), ``$``
    topics (broker-reserved) and more than 65535 UTF-8 bytes.
    """
    if not topic:
        return Failure(MqttProblem("empty", f"{what} is empty"))
    if "+" in topic or "#" in topic:
        return Failure(MqttProblem("wildcard", f"{what} must not contain MQTT wildcards (+ or #)"))
    if any(not c.isprintable() or c == "\0" for c in topic):
        return Failure(MqttProblem("control-char", f"{what} must not contain NUL or control characters"))
    if "" in topic.split("/"):
        return Failure(MqttProblem("empty-level", f"{what} must not have empty levels (leading, trailing or //)"))
    if topic.startswith("$"):
        return Failure(MqttProblem("reserved", f"{what} must not start with $ (broker-reserved)"))
    if len(topic.encode("utf-8", "surrogatepass")) > 65535:
        return Failure(MqttProblem("too-long", f"{what} is longer than 65535 bytes"))
    return Success(topic)


def mqtt_topics(
    *, access_key: str, topic_prefix: str, layout: MqttLayout, overrides: TopicOverrides | None = None
) -> Result[MqttTopics, MqttProblem]:
    """The topics for one client, validated (see :mod:`.mqtt` for the layouts).

    ``overrides`` with all three topics (what the client's plan passes, from
    :func:`derive_topics`) are the topics: the prefix and key are not used.
    """
    over = overrides or TopicOverrides()
    if over.c2s and over.s2c and over.status:
        return _checked({"c2s": over.c2s, "s2c": over.s2c, "status": over.status})
    prefix = validate_topic(topic_prefix, what="topic_prefix")
    if isinstance(prefix, Failure):
        return prefix
    if layout is MqttLayout.LEGACY:
        key = validate_topic(access_key, what="access key (a topic level on hub 4.x)")
        if isinstance(key, Failure):
            return key
        if "/" in access_key:
            return Failure(MqttProblem("empty-level", "access key must not contain '/'"))
        base = {k: f"{topic_prefix}/{k}/{access_key}" for k in ("c2s", "s2c", "status")}
    else:
        base = {"c2s": f"{topic_prefix}/in", "s2c": f"{topic_prefix}/out", "status": f"{topic_prefix}/status"}
    chosen = {"c2s": over.c2s or base["c2s"], "s2c": over.s2c or base["s2c"], "status": over.status or base["status"]}
    return _checked(chosen)


def _checked(chosen: dict[str, str]) -> Result[MqttTopics, MqttProblem]:
    for name, topic in chosen.items():
        checked = validate_topic(topic, what=f"{name}_topic")
        if isinstance(checked, Failure):
            return checked
    return Success(MqttTopics(**chosen))


# ---- the identity's topics (module docstring: "Theory of operation") ------------------------------------


class MqttTopicSet(NamedTuple):
    """The three topics one client uses, as thalovant 0.4.7 named them (a tuple: ``c2s, s2c, status = ...``).

    Topics hold the satellite id (normally the access key), so ``repr`` hides them.

    Attributes:
        c2s: client -> hub (``.../c2s/<sat>``; ``.../<sat>/in`` in the modern layout).
        s2c: hub -> client (``.../s2c/<sat>``; ``.../<sat>/out``).
        status: the retained ``online``/``offline`` topic and the last will (``.../status/<sat>``).
    """

    c2s: str
    s2c: str
    status: str

    def __repr__(self) -> str:
        return "MqttTopicSet(<redacted: topics hold the access key>)"

    def as_overrides(self) -> TopicOverrides:
        """The three topics as :class:`TopicOverrides` (what the link machine takes)."""
        return TopicOverrides(c2s=self.c2s, s2c=self.s2c, status=self.status)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class TopicSettings:
    """The identity fields the topics are derived from (plain values; ``identity.mqtt`` holds them).

    Attributes:
        access_key: the client's access key (secret).
        username: the broker username (secret), or None.
        topic_prefix: the ``mqtt.topic_prefix``, or None.
        hub_id: the ``mqtt.hub_id``, or None.
        c2s_topic: the explicit client -> hub topic, or None.
        s2c_topic: the explicit hub -> client topic, or None.
        status_topic: the explicit status topic, or None.
        hash_topics: use ``sha256(access_key)[:16]`` as the topic's client level.
    """

    access_key: str = field(repr=False)
    username: str | None = field(default=None, repr=False)
    topic_prefix: str | None = None
    hub_id: str | None = None
    c2s_topic: str | None = None
    s2c_topic: str | None = None
    status_topic: str | None = None
    hash_topics: bool = False

    def __repr__(self) -> str:
        return "TopicSettings(<redacted: holds the access key>)"


def satellite_id(access_key: str, *, hash_topics: bool = False) -> str:
    """The client's topic level: the access key, or the first 16 hex digits of its SHA-256 with ``hash_topics``."""
    if hash_topics:
        return hashlib.sha256(access_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return access_key


_MARKERS = {MqttLayout.LEGACY: ("c2s", "s2c", "status"), MqttLayout.MODERN: ("in", "out", "status")}


def derive_topics(settings: TopicSettings, layout: MqttLayout = MqttLayout.LEGACY) -> Result[MqttTopicSet, MqttProblem]:
    """The identity's three topics by the rules of the module docstring, validated.

    A problem names the identity field at fault (``MqttProblem.field``), never a value.
    """
    s = settings
    if s.c2s_topic and s.s2c_topic:
        chosen = _explicit(s.c2s_topic, s.s2c_topic, s.status_topic, layout)
        fields = ("mqtt.c2s_topic", "mqtt.s2c_topic", "mqtt.status_topic" if s.status_topic else "mqtt.c2s_topic")
    else:
        chosen = _modern(s) if layout is MqttLayout.MODERN else _legacy(s)
        fields = ("mqtt.topic_prefix",) * 3
    if isinstance(chosen, Failure):
        return chosen
    topics = chosen.unwrap()
    for name, topic, culprit in zip(("c2s_topic", "s2c_topic", "status_topic"), topics, fields, strict=True):
        checked = validate_topic(topic, what=f"the derived {name.removesuffix('_topic')} topic")
        if isinstance(checked, Failure):
            problem = checked.failure()
            return Failure(MqttProblem(problem.code, problem.detail, field=culprit))
    return Success(topics)


def _explicit(c2s: str, s2c: str, status: str | None, layout: MqttLayout) -> Result[MqttTopicSet, MqttProblem]:
    if status:
        return Success(MqttTopicSet(c2s, s2c, status))
    levels = c2s.split("/")
    if layout is MqttLayout.MODERN:
        at = len(levels) - 1 if len(levels) > 1 and levels[-1] == "in" else None
    else:
        at = _marker_level(levels, ("c2s",))
    if at is None:
        marker = "in" if layout is MqttLayout.MODERN else "c2s"
        detail = f"required when mqtt.c2s_topic has no '{marker}' level to derive it from"
        return Failure(MqttProblem("missing", detail, field="mqtt.status_topic"))
    return Success(MqttTopicSet(c2s, s2c, "/".join([*levels[:at], "status", *levels[at + 1 :]])))


def _legacy(s: TopicSettings) -> Result[MqttTopicSet, MqttProblem]:
    levels = _prefix_levels(s.topic_prefix)
    at = _marker_level(levels, _MARKERS[MqttLayout.LEGACY])
    if at is not None:  # rule 2: the prefix is a full topic
        c2s, s2c, status = ("/".join([*levels[:at], k, *levels[at + 1 :]]) for k in _MARKERS[MqttLayout.LEGACY])
        return Success(MqttTopicSet(c2s, s2c, status))
    sat = _satellite_level(s)
    if isinstance(sat, Failure):
        return sat
    base = _strip_own_level(levels, s, sat.unwrap())
    if s.hub_id:
        hub = validate_topic(s.hub_id, what="it")
        if isinstance(hub, Failure) or "/" in s.hub_id:
            detail = hub.failure().detail if isinstance(hub, Failure) else "it must be a single topic level (no '/')"
            return Failure(MqttProblem("bad-level", detail, field="mqtt.hub_id"))
    if not base:
        if not s.hub_id:
            detail = "needed (or mqtt.hub_id, or mqtt.c2s_topic and mqtt.s2c_topic) to name the MQTT topics"
            return Failure(MqttProblem("missing", detail, field="mqtt.topic_prefix"))
        base = [DEFAULT_ROOT]
    if s.hub_id and s.hub_id not in base:
        base = [*base, s.hub_id]
    root = "/".join(base)
    return Success(MqttTopicSet(*(f"{root}/{k}/{sat.unwrap()}" for k in _MARKERS[MqttLayout.LEGACY])))


def _modern(s: TopicSettings) -> Result[MqttTopicSet, MqttProblem]:
    levels = _prefix_levels(s.topic_prefix)
    if levels and levels[-1] in _MARKERS[MqttLayout.MODERN]:
        levels = levels[:-1]
    sat = _satellite_level(s)
    if isinstance(sat, Failure):
        return sat
    root = "/".join([*(_strip_own_level(levels, s, sat.unwrap()) or [DEFAULT_ROOT]), sat.unwrap()])
    return Success(MqttTopicSet(*(f"{root}/{k}" for k in _MARKERS[MqttLayout.MODERN])))


def _satellite_level(s: TopicSettings) -> Result[str, MqttProblem]:
    """The satellite id, checked as one topic level (the problem names ``access_key``)."""
    sat = satellite_id(s.access_key, hash_topics=s.hash_topics)
    checked = validate_topic(sat, what="it (a topic level)")
    if isinstance(checked, Failure):
        return Failure(MqttProblem(checked.failure().code, checked.failure().detail, field="access_key"))
    if "/" in sat:
        return Failure(MqttProblem("empty-level", "it must not contain '/' (it is a topic level)", field="access_key"))
    return Success(sat)


def _prefix_levels(prefix: str | None) -> list[str]:
    """The prefix's levels (a trailing ``/`` dropped, as the identity parser does); [] for none."""
    text = (prefix or "").rstrip("/")
    return text.split("/") if text else []


def _marker_level(levels: list[str], markers: tuple[str, ...]) -> int | None:
    """The index of the last level in ``markers`` that is neither the first nor the last (``/c2s/`` in 0.4.7)."""
    hits = [i for i in range(1, len(levels) - 1) if levels[i] in markers]
    return hits[-1] if hits else None


def _strip_own_level(levels: list[str], s: TopicSettings, sat: str) -> list[str]:
    """``levels`` without the last one when it names this client (the key, the username or the satellite id)."""
    own = {s.access_key, sat} | ({s.username} if s.username else set())
    return levels[:-1] if levels and levels[-1] in own else levels


def classify_payload(payload: bytes) -> Frame:
    """UTF-8 JSON object -> text frame; anything else -> binary frame (spec §2 step 3)."""
    try:
        text = payload.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return payload
    return text if isinstance(value, dict) else payload


_AUTH_RC = {4: "bad user name or password", 5: "not authorized", 134: "bad user name or password"}
_AUTH_RC |= {135: "not authorized"}
_FATAL_RC = {1: "unacceptable protocol version", 2: "client id rejected", 132: "unsupported protocol version"}
_FATAL_RC |= {133: "client id not valid", 140: "bad authentication method"}
_FATAL_RC |= {8: "TLS certificate verification failed; pass ca_file= with the broker's CA"}  # paho MQTT_ERR_TLS
_RETRY_RC = {3: "server unavailable", 136: "server unavailable", 137: "server busy", 7: "connection lost"}
_RETRY_RC |= {142: "session taken over (another client with this id, harness P16)", 139: "server shutting down"}


def classify_rc(rc: int) -> LinkDown:
    """Sort a paho reason code (MQTT 3.1.1 CONNACK or MQTT 5) into a ``LinkDown``."""
    if rc in _AUTH_RC:
        return LinkDown(reason=f"broker refused the credentials (rc {rc}: {_AUTH_RC[rc]})", retryable=False, auth=True)
    if rc in _FATAL_RC:
        return LinkDown(reason=f"broker refused the connection (rc {rc}: {_FATAL_RC[rc]})", retryable=False)
    label = _RETRY_RC.get(rc, "unexpected disconnect")
    return LinkDown(reason=f"broker connection ended (rc {rc}: {label})", retryable=True)
