"""Environment variables -> identity mapping (pure: the caller passes the environ).

Theory of operation
-------------------
:func:`identity_from_environ` turns ``<prefix>*`` variables into the same
mapping an identity file holds; ``parse_identity`` then validates it, so the
environment gets exactly the file's rules and messages. Empty variables count
as unset. With the default prefix ``THALOVANT_``:

=================================  ==========================================
variable (first non-empty wins)    identity field
=================================  ==========================================
ACCESS_KEY                         access_key
PASSWORD                           password
CRYPTO_KEY                         crypto_key
SITE_ID                            site_id
HUB_HTTP_HOST, DEFAULT_MASTER      default_master
HUB_HTTP_PORT, DEFAULT_PORT        default_port
HUB_HTTP_PATH, DEFAULT_PATH        default_path
HUB_HTTPS_HOST                     data_plane_endpoints.https
HUB_WSS_HOST, HUB_WEBSOCKET_HOST   data_plane_endpoints.wss
HUB_MQTT_HOST                      data_plane_endpoints.mqtt
MQTT_ENDPOINT, HUB_MQTT_HOST       mqtt.endpoint
MQTT_USERNAME, MQTT_PASSWORD,      mqtt.username, mqtt.password,
MQTT_TOPIC_PREFIX, MQTT_HUB_ID,    mqtt.topic_prefix, mqtt.hub_id,
MQTT_C2S_TOPIC, MQTT_S2C_TOPIC,    mqtt.c2s_topic, mqtt.s2c_topic,
MQTT_STATUS_TOPIC,                 mqtt.status_topic,
MQTT_HASH_TOPICS, MQTT_QOS,        mqtt.hash_topics, mqtt.qos,
MQTT_TLS                           mqtt.tls
PROTOCOL_WSS_ENABLED               protocols.wss.enabled
PROTOCOL_HTTP_ENABLED,             protocols.http.enabled
PROTOCOL_HTTPS_ENABLED
PROTOCOL_MQTT_ENABLED              protocols.mqtt.enabled
METADATA                           metadata (a JSON object)
=================================  ==========================================

Differences from 0.4.7, on purpose:

* ``HUB_HTTP_HOST`` sets only ``default_master``; it is no longer copied
  into ``data_plane_endpoints.https``, so ``HUB_HTTP_PATH`` and
  ``HUB_HTTP_PORT`` apply to it. Use ``HUB_HTTPS_HOST`` for a complete HTTP
  endpoint URL (its own path and port are then used as given).
* The ``mqtt`` block is built only when at least one ``MQTT_*`` variable is
  set; ``HUB_MQTT_HOST`` alone gives just the data-plane endpoint.
* Protocol flags and metadata can be set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_TOP: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("access_key", ("ACCESS_KEY",)),
    ("password", ("PASSWORD",)),
    ("crypto_key", ("CRYPTO_KEY",)),
    ("site_id", ("SITE_ID",)),
    ("default_master", ("HUB_HTTP_HOST", "DEFAULT_MASTER")),
    ("default_port", ("HUB_HTTP_PORT", "DEFAULT_PORT")),
    ("default_path", ("HUB_HTTP_PATH", "DEFAULT_PATH")),
)
_ENDPOINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("https", ("HUB_HTTPS_HOST",)),
    ("wss", ("HUB_WSS_HOST", "HUB_WEBSOCKET_HOST")),
    ("mqtt", ("HUB_MQTT_HOST",)),
)
_MQTT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("username", ("MQTT_USERNAME",)),
    ("password", ("MQTT_PASSWORD",)),
    ("topic_prefix", ("MQTT_TOPIC_PREFIX",)),
    ("hub_id", ("MQTT_HUB_ID",)),
    ("c2s_topic", ("MQTT_C2S_TOPIC",)),
    ("s2c_topic", ("MQTT_S2C_TOPIC",)),
    ("status_topic", ("MQTT_STATUS_TOPIC",)),
    ("hash_topics", ("MQTT_HASH_TOPICS",)),
    ("qos", ("MQTT_QOS",)),
    ("tls", ("MQTT_TLS",)),
)
_FLAGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wss", ("PROTOCOL_WSS_ENABLED",)),
    ("http", ("PROTOCOL_HTTP_ENABLED", "PROTOCOL_HTTPS_ENABLED")),
    ("mqtt", ("PROTOCOL_MQTT_ENABLED",)),
)

#: Every variable suffix read, for documentation and ``doctor`` output.
ENV_SUFFIXES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [name for table in (_TOP, _ENDPOINTS, _MQTT, _FLAGS) for _, names in table for name in names]
        + ["MQTT_ENDPOINT", "METADATA"]
    )
)


def _pick(environ: Mapping[str, str], prefix: str, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = environ.get(prefix + name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _fill(environ: Mapping[str, str], prefix: str, table: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, names in table:
        value = _pick(environ, prefix, names)
        if value is not None:
            out[key] = value
    return out


def identity_from_environ(environ: Mapping[str, str], prefix: str = "THALOVANT_") -> dict[str, Any]:
    """The identity mapping described by ``<prefix>*`` variables (table in the module docstring).

    Args:
        environ: the variables, e.g. ``os.environ`` (read by the shell).
        prefix: the variable-name prefix.

    Returns:
        A mapping for ``parse_identity``; it is not validated here.
    """
    values = _fill(environ, prefix, _TOP)
    endpoints = _fill(environ, prefix, _ENDPOINTS)
    if endpoints:
        values["data_plane_endpoints"] = endpoints
    mqtt = _fill(environ, prefix, _MQTT)
    explicit_endpoint = _pick(environ, prefix, ("MQTT_ENDPOINT",))
    if mqtt or explicit_endpoint is not None:
        endpoint = explicit_endpoint or _pick(environ, prefix, ("HUB_MQTT_HOST",))
        if endpoint is not None:
            mqtt["endpoint"] = endpoint
        values["mqtt"] = mqtt
    flags = _fill(environ, prefix, _FLAGS)
    if flags:
        values["protocols"] = {name: {"enabled": value} for name, value in flags.items()}
    metadata = _pick(environ, prefix, ("METADATA",))
    if metadata is not None:
        try:
            values["metadata"] = json.loads(metadata)
        except (ValueError, RecursionError):
            values["metadata"] = metadata  # parse_identity reports "metadata: must be a JSON object"
    return values
