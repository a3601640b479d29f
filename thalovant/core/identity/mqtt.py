"""MQTT broker credentials and topic settings of an identity (the ``mqtt`` block).

Theory of operation
-------------------
The ``mqtt`` object of an identity names the broker and how to log in to it,
and the fields the three HiveMind topics are derived from, by thalovant 0.4.7's
rule (``reference-sdk.md`` §d.10; the rule is
``thalovant.core.links.mqtt_topics.derive_topics``, read through
``thalovant.core.client.topics.mqtt_topics_for_identity``)::

    topic_prefix "hivemind/hub-1/<access_key>"   (ends in the key, the username
                                                  or the satellite id: stripped)
    topic_prefix "hivemind" + hub_id "hub-1"     (hub_id appended when absent)
        -> hivemind/hub-1/c2s/<key>, hivemind/hub-1/s2c/<key>, hivemind/hub-1/status/<key>

``c2s_topic`` and ``s2c_topic`` together win over the prefix; ``hash_topics``
puts ``sha256(access_key)[:16]`` where the key goes.

Keys (canonical first, then aliases):

=============  ==============================================  ==========================
field          aliases                                         rule
=============  ==============================================  ==========================
endpoint       broker_url, brokerUrl, url                      mqtt/mqtts/tcp/ssl URL;
                                                               falls back to
                                                               data_plane_endpoints.mqtt
username       broker_username, brokerUsername                 optional (secret)
password       broker_password, brokerPassword                 optional, needs username
topic_prefix   topicPrefix                                     topic levels, no wildcards
hub_id         hubId                                           one topic level
c2s_topic ...  c2sTopic, s2cTopic, statusTopic                 full topic names
hash_topics    hashTopics                                      bool-ish, default false
qos            (none)                                          0 or 1, default 1
tls            (none)                                          bool-ish; default: scheme
                                                               is mqtts:// or ssl://
=============  ==============================================  ==========================

Unlike 0.4.7, an incomplete block is an error rather than silently dropped,
a bad ``qos`` is an error rather than 1, and ``tls: false`` with an
``mqtts://`` endpoint is an error. Anonymous brokers are allowed (no
username, no password).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from thalovant.core.identity.fields import (
    REDACTED,
    Problems,
    first_present,
    is_blank,
    read_bool,
    read_int,
    read_text,
    read_url,
    split_url,
    without_userinfo,
)
from thalovant.core.identity.protocols import DEFAULT_PORTS

_TLS_SCHEMES = ("mqtts", "ssl")
#: Field name -> accepted keys of an ``mqtt`` block (canonical first), in field order.
MQTT_KEYS: dict[str, tuple[str, ...]] = {
    "endpoint": ("endpoint", "broker_url", "brokerUrl", "url"),
    "username": ("username", "broker_username", "brokerUsername"),
    "password": ("password", "broker_password", "brokerPassword"),
    "topic_prefix": ("topic_prefix", "topicPrefix"),
    "hub_id": ("hub_id", "hubId"),
    "c2s_topic": ("c2s_topic", "c2sTopic"),
    "s2c_topic": ("s2c_topic", "s2cTopic"),
    "status_topic": ("status_topic", "statusTopic"),
    "hash_topics": ("hash_topics", "hashTopics"),
    "qos": ("qos",),
    "tls": ("tls",),
}


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class MqttBrokerCredentials:
    """How to reach and log in to the MQTT broker. ``username``/``password`` are secrets.

    Attributes:
        endpoint: the broker URL (``mqtt://``, ``mqtts://``, ``tcp://`` or ``ssl://``; host and port only).
        username: the broker login, or None for an anonymous broker.
        password: the broker password, or None.
        topic_prefix: the levels the client's topics start with (no wildcards), or None. A last
            level that is the access key, the username or the satellite id is dropped (the
            control plane's ``<root>/<hub_id>/<key>``); a prefix with a ``c2s``/``s2c``/``status``
            level is a full topic.
        hub_id: the hub's id (one topic level), or None; appended to the prefix unless already in it.
        c2s_topic: the full client-to-hub topic, or None; with ``s2c_topic`` both win over the prefix.
        s2c_topic: the full hub-to-client topic, or None (used only together with ``c2s_topic``).
        status_topic: the full status topic, or None (used only with ``c2s_topic`` and ``s2c_topic``;
            else ``c2s_topic`` with its ``c2s`` level read as ``status``).
        hash_topics: use ``sha256(access_key)[:16]`` (hex) as the topics' client level.
        qos: the MQTT QoS the client uses, 0 or 1.
        tls: use TLS (an ``mqtts://`` or ``ssl://`` endpoint uses it in any case).
    """

    endpoint: str
    username: str | None = None
    password: str | None = None
    topic_prefix: str | None = None
    hub_id: str | None = None
    c2s_topic: str | None = None
    s2c_topic: str | None = None
    status_topic: str | None = None
    hash_topics: bool = False
    qos: int = 1
    tls: bool = True

    @property
    def host(self) -> str:
        """The broker host name (IPv6 without brackets)."""
        split = split_url(self.endpoint)
        return split.host.strip("[]") if not isinstance(split, str) else ""

    @property
    def port(self) -> int:
        """The broker port: from the endpoint, else 8883 with TLS and 1883 without."""
        split = split_url(self.endpoint)
        if not isinstance(split, str) and split.port is not None:
            return split.port
        return DEFAULT_PORTS["mqtts" if self.tls else "mqtt"]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> MqttBrokerCredentials | None:
        """Validate an ``mqtt`` block on its own. Returns None for an empty block.

        Args:
            values: the block's keys, canonical or aliases (table in the module docstring).

        Raises:
            ThalovantIdentityError: listing every problem found.
        """
        problems = Problems()
        creds = read_mqtt({"mqtt": values}, problems, fallback_endpoint=None)
        problems.raise_any("MQTT credentials")
        return creds

    def as_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """``{endpoint, tls}`` (endpoint without userinfo), or every field with ``include_secrets``."""
        if not include_secrets:
            return {"endpoint": without_userinfo(self.endpoint), "tls": self.tls}
        return {
            "endpoint": self.endpoint,
            "username": self.username,
            "password": self.password,
            "topic_prefix": self.topic_prefix,
            "hub_id": self.hub_id,
            "c2s_topic": self.c2s_topic,
            "s2c_topic": self.s2c_topic,
            "status_topic": self.status_topic,
            "hash_topics": self.hash_topics,
            "qos": self.qos,
            "tls": self.tls,
        }

    def __repr__(self) -> str:
        return (
            f"MqttBrokerCredentials(endpoint={without_userinfo(self.endpoint)!r}, "
            f"username={'None' if self.username is None else REDACTED}, "
            f"password={'None' if self.password is None else REDACTED}, topic_prefix={self.topic_prefix!r}, "
            f"hub_id={self.hub_id!r}, qos={self.qos}, tls={self.tls}, hash_topics={self.hash_topics})"
        )

    __str__ = __repr__


def _read_topic(value: object, path: str, problems: Problems, *, kind: str) -> str | None:
    """A topic (``kind="topic"``), a prefix (trailing ``/`` dropped) or a single level (``kind="level"``)."""
    single_level = kind == "level"
    text = read_text(value, path, problems)
    if text is None:
        return None
    if kind == "prefix":
        text = text.rstrip("/")
    if "+" in text or "#" in text:
        problems.add(path, "must not contain MQTT wildcards (+ or #)")
        return None
    if single_level and "/" in text:
        problems.add(path, "must be a single topic level (no '/')")
        return None
    if text.startswith("$"):
        problems.add(path, "must not start with '$' (reserved for the broker)")
        return None
    if "" in text.split("/"):
        problems.add(path, "must not contain empty topic levels")
        return None
    if len(text.encode("utf-8")) > 60000:
        problems.add(path, "is too long for an MQTT topic")
        return None
    return text


def read_mqtt(
    values: Mapping[str, Any], problems: Problems, *, fallback_endpoint: str | None
) -> MqttBrokerCredentials | None:
    """Parse the identity's ``mqtt`` object (None when absent), recording problems.

    A string ``mqtt`` value is a data-plane endpoint, not credentials, and is
    handled by ``protocols.read_endpoints``.
    """
    block = values.get("mqtt")
    if is_blank(block) or isinstance(block, str):
        return None
    if not isinstance(block, Mapping):
        problems.add("mqtt", "must be an object with endpoint, username, password, topic_prefix, ...")
        return None
    if not any(first_present(block, keys) for keys in MQTT_KEYS.values()):
        return None
    found: dict[str, Any] = {}
    for name, keys in MQTT_KEYS.items():
        hit = first_present(block, keys)
        if hit is not None:
            found[name] = (f"mqtt.{hit[0]}", hit[1])
    count = len(problems.items)
    endpoint = None
    if "endpoint" in found:
        split = read_url(found["endpoint"][1], found["endpoint"][0], problems, schemes=("mqtt", "mqtts", "tcp", "ssl"))
        if split is not None and (split.path or split.query):
            problems.add(found["endpoint"][0], "an MQTT endpoint is scheme://host:port only (no path or query)")
        elif split is not None:
            endpoint = split.unsplit()
    elif fallback_endpoint is not None:
        endpoint = fallback_endpoint
    else:
        problems.add("mqtt.endpoint", "missing (or give data_plane_endpoints.mqtt)")
    text: dict[str, str | None] = {}
    for name in ("username", "password"):
        text[name] = read_text(found[name][1], found[name][0], problems) if name in found else None
    if "password" in found and "username" not in found:
        problems.add("mqtt.username", "required when mqtt.password is given")
    for name in ("topic_prefix", "hub_id", "c2s_topic", "s2c_topic", "status_topic"):
        if name in found:
            kind = {"topic_prefix": "prefix", "hub_id": "level"}.get(name, "topic")
            text[name] = _read_topic(found[name][1], found[name][0], problems, kind=kind)
        else:
            text[name] = None
    hash_topics: bool | None = False
    if "hash_topics" in found:
        hash_topics = read_bool(found["hash_topics"][1], found["hash_topics"][0], problems)
    qos = read_int(found["qos"][1], found["qos"][0], problems, low=0, high=1) if "qos" in found else 1
    scheme_tls = endpoint is not None and endpoint.split("://", 1)[0] in _TLS_SCHEMES
    tls = read_bool(found["tls"][1], found["tls"][0], problems) if "tls" in found else scheme_tls
    if scheme_tls and tls is False:
        problems.add(found["tls"][0], "must not be false with an mqtts:// or ssl:// endpoint")
    if len(problems.items) > count or endpoint is None:
        return None
    return MqttBrokerCredentials(
        endpoint=endpoint,
        username=text["username"],
        password=text["password"],
        topic_prefix=text["topic_prefix"],
        hub_id=text["hub_id"],
        c2s_topic=text["c2s_topic"],
        s2c_topic=text["s2c_topic"],
        status_topic=text["status_topic"],
        hash_topics=bool(hash_topics),
        qos=1 if qos is None else qos,
        tls=bool(tls),
    )
