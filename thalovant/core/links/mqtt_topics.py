"""Pure MQTT topic helpers for :mod:`.mqtt_map` (spec §8.3): layouts, validation, payload and rc sorting.

``validate_topic`` and ``mqtt_topics`` return ``Result`` so identity checks
(``doctor``) can report every problem; :class:`~.mqtt_map.MqttMap` turns a
failure into ``LocalProtocolError`` at construction.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from returns.result import Failure, Result, Success

from thalovant.core.links.base import Frame, LinkDown

__all__ = [
    "MqttLayout",
    "MqttProblem",
    "MqttTopics",
    "TopicOverrides",
    "classify_payload",
    "classify_rc",
    "mqtt_topics",
    "validate_topic",
]


class MqttLayout(enum.Enum):
    LEGACY = "c2s-s2c"  # plugin 0.1.0a2, hub 4.x
    MODERN = "in-out"  # plugin 0.2.x, hub >= 5.1


@dataclass(frozen=True, slots=True)
class MqttProblem:
    """Why a topic or prefix is not usable. Never holds the topic itself (it may hold the key)."""

    code: str  # "empty", "wildcard", "control-char", "empty-level", "reserved", "too-long"
    detail: str = ""


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
    """The topics for one client, validated (see the module docstring for the layouts)."""
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
    over = overrides or TopicOverrides()
    chosen = {"c2s": over.c2s or base["c2s"], "s2c": over.s2c or base["s2c"], "status": over.status or base["status"]}
    for name, topic in chosen.items():
        checked = validate_topic(topic, what=f"{name}_topic")
        if isinstance(checked, Failure):
            return checked
    return Success(MqttTopics(**chosen))


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
