"""Control plane: build a client identity from the hub record and the API's answer.

Theory of operation
-------------------
After ``POST v1/clients`` the SDK holds three things: the hub record (from
``GET v1/hubs/<id>`` or the caller), the API's answer for the new client, and
the secrets it generated itself (``ClientSecrets``). This module turns them into
a plain mapping in the identity-file format (``access_key``, ``password``,
``crypto_key``, ``site_id``, ``default_master``/``port``/``path``,
``data_plane_endpoints``, ``protocols``, ``mqtt``), which
``ThalovantIdentity.from_mapping`` accepts.

* If the answer carries ``initial_identify`` (reference §d.11), it is the base.
  Any secret in it that is missing or only a *reference* (a mapping such as
  ``{"name": ..., "key": ...}``, as stored in Vault) is filled from the locally
  generated value. That block is also where per-client MQTT broker
  credentials arrive.
* Otherwise the identity is built locally: ``default_master`` is the origin of
  the hub's HTTPS endpoint, else ``https://<domain>``, else the origin of the
  selected endpoint; port 443; empty path.
* Protocol flags come from ``spec.protocols``, ``protocols`` or ``network``
  (bool, "yes"/"no" strings, or ``{"enabled": ...}``); with none given, only
  wss is on (the 0.4.7 default).
* The selected endpoint is the first preferred protocol that is enabled and
  has an endpoint (MQTT also needs broker credentials).

Nothing here raises on bad API data: the result is a ``Failure(ApiProblem)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core.control.api import ApiProblem, ClientSecrets, redact
from thalovant.core.identity.mqtt import MQTT_KEYS
from thalovant.core.identity.protocols import DEFAULT_PORTS

#: Protocol order used when the caller gives none (reference 0.4.7 ``DEFAULT_PROTOCOL_PREFERENCE``).
DEFAULT_PREFERENCE: tuple[str, ...] = ("https", "wss", "mqtt")

_PROTOCOL_ALIASES = {"wss": ("wss", "websocket", "ws"), "http": ("http", "https"), "mqtt": ("mqtt", "mqtts")}
_ENDPOINT_ALIASES = {"https": ("https", "http"), "wss": ("wss", "ws"), "mqtt": ("mqtt", "mqtts")}
_SCHEMES = {"https": ("https", "http"), "wss": ("wss", "ws"), "mqtt": ("mqtt", "mqtts", "tcp", "ssl")}
_TRUE = frozenset({"1", "true", "yes", "on", "enabled"})
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>[^/?#\s]+)(?P<rest>[^\s]*)")
_IDENTITY_SECRET_KEYS = (
    ("access_key", ("access_key", "key", "api_key", "apiKey")),
    ("password", ("password",)),
    ("crypto_key", ("crypto_key", "cryptoKey")),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityAssembly:
    """The identity mapping plus what was chosen. ``mapping`` holds secrets (not in repr)."""

    mapping: dict[str, Any]
    selected: tuple[str, str] | None
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"IdentityAssembly(selected={self.selected!r}, notes={self.notes!r})"


def _pick(mapping: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        value = mapping.get(name)
        if value is not None and value != "":
            return value
    return None


def _truthy(value: Any) -> bool | None:
    if isinstance(value, Mapping):
        return _truthy(value.get("enabled"))
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    if isinstance(value, int | float):
        return bool(value)
    return None


def protocol_flags(hub: Mapping[str, Any]) -> dict[str, bool]:
    """Enable flags ``{"wss", "http", "mqtt"}`` from ``spec.protocols``, ``protocols`` or ``network``."""
    spec = hub.get("spec")
    nested = spec.get("protocols") if isinstance(spec, Mapping) else None
    candidates = [nested, hub.get("protocols"), hub.get("network")]
    source = next((c for c in candidates if isinstance(c, Mapping)), None)
    flags = {"wss": True, "http": False, "mqtt": False}
    if source is None:
        return flags
    for name, aliases in _PROTOCOL_ALIASES.items():
        value = _truthy(_pick(source, aliases))
        if value is not None:
            flags[name] = value
    return flags


def _clean_endpoint(value: Any, protocol: str) -> str | None:
    if not isinstance(value, str):
        return None
    match = _URL.fullmatch(value.strip())
    if match is None or match.group("scheme").lower() not in _SCHEMES[protocol]:
        return None
    return value.strip().rstrip("/")


def origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, without any ``user:pass@``."""
    match = _URL.fullmatch(url)
    if match is None:
        return None
    return f"{match.group('scheme').lower()}://{match.group('host').rpartition('@')[2]}"


def hub_endpoints(hub: Mapping[str, Any], flags: Mapping[str, bool]) -> dict[str, str]:
    """Data-plane endpoints of a hub, filling https/wss from ``domain`` when their flag is on."""
    block = next(
        (
            hub[k]
            for k in ("data_plane_endpoints", "dataPlaneEndpoints", "endpoints")
            if isinstance(hub.get(k), Mapping)
        ),
        hub,
    )
    found: dict[str, str] = {}
    for protocol, aliases in _ENDPOINT_ALIASES.items():
        url = _clean_endpoint(_pick(block, aliases), protocol)
        if url is not None:
            found[protocol] = url
    domain = hub.get("domain")
    if isinstance(domain, str) and domain.strip() and "/" not in domain.strip():
        host = domain.strip()
        if flags.get("http") and "https" not in found:
            found["https"] = f"https://{host}"
        if flags.get("wss") and "wss" not in found:
            found["wss"] = f"wss://{host}"
    return found


def _mqtt_block(raw: Any, endpoint: str | None) -> dict[str, Any] | None:
    """Canonical MQTT credentials, or None when endpoint, username or password is unusable."""
    if not isinstance(raw, Mapping):
        return None
    block = {key: _pick(raw, names) for key, names in MQTT_KEYS.items()}
    block = {k: v for k, v in block.items() if v is not None}
    block.setdefault("endpoint", endpoint)
    if not all(isinstance(block.get(k), str) and block[k] for k in ("endpoint", "username", "password")):
        return None
    block.setdefault("tls", str(block["endpoint"]).lower().startswith(("mqtts://", "ssl://")))
    return block


def select_endpoint(
    endpoints: Mapping[str, str], flags: Mapping[str, bool], preferred: Sequence[str], *, mqtt_ready: bool
) -> tuple[str, str] | None:
    """First preferred protocol that is enabled and has an endpoint (and, for MQTT, credentials)."""
    for protocol in preferred:
        flag = flags.get("http" if protocol == "https" else protocol, False)
        url = endpoints.get(protocol)
        if flag and url and (protocol != "mqtt" or mqtt_ready):
            return protocol, url
    return None


def _secret_or_local(base: Mapping[str, Any], names: Sequence[str], local: str) -> str:
    value = _pick(base, names)
    return value if isinstance(value, str) and value.strip() else local


def assemble_identity(
    *,
    hub: Mapping[str, Any],
    client: Mapping[str, Any],
    secrets: ClientSecrets,
    site_id: str,
    preferred: Sequence[str] = DEFAULT_PREFERENCE,
) -> Result[IdentityAssembly, ApiProblem]:
    """The identity mapping for a client the API just created (see the module docstring)."""
    flags = protocol_flags(hub)
    endpoints = hub_endpoints(hub, flags)
    notes: list[str] = []
    initial = client.get("initial_identify")
    base: Mapping[str, Any] = initial if isinstance(initial, Mapping) else {}
    local = dict(zip(("access_key", "password", "crypto_key"), secrets.values(), strict=True))
    mapping: dict[str, Any] = {key: _secret_or_local(base, names, local[key]) for key, names in _IDENTITY_SECRET_KEYS}
    mapping["site_id"] = str(_pick(base, ("site_id", "siteId", "site")) or site_id)
    raw_mqtt = base.get("mqtt") if isinstance(base.get("mqtt"), Mapping) else client.get("mqtt")
    mqtt = _mqtt_block(raw_mqtt, endpoints.get("mqtt"))
    if mqtt is not None and "mqtt" not in endpoints:
        endpoints["mqtt"] = str(mqtt["endpoint"])
    if flags["mqtt"] and mqtt is None:
        notes.append("the hub has MQTT enabled but the API returned no usable broker credentials")
    selected = select_endpoint(endpoints, flags, preferred, mqtt_ready=mqtt is not None)
    if initial is not None and isinstance(base.get("default_master"), str):
        mapping["default_master"] = base["default_master"]
        for key in ("default_port", "default_path"):
            if key in base:
                mapping[key] = base[key]
    else:
        master = next(
            (
                o
                for o in (
                    origin(endpoints.get("https", "")),
                    origin(endpoints.get("wss", "")),
                    origin(selected[1]) if selected else None,
                )
                if o
            ),
            None,
        )
        if master is None:
            return Failure(
                ApiProblem(
                    message="the hub has no data-plane endpoint (no https/wss URL and no domain); "
                    "the client was created but no identity can be built",
                    code="no_endpoint",
                )
            )
        mapping.update(
            default_master=master.replace("wss://", "https://", 1).replace("ws://", "http://", 1),
            default_port=DEFAULT_PORTS["https" if master.startswith(("https://", "wss://")) else "http"],
            default_path="",
        )
    mapping["data_plane_endpoints"] = dict(endpoints)
    mapping["protocols"] = {name: {"enabled": on} for name, on in flags.items()}
    if mqtt is not None:
        mapping["mqtt"] = mqtt
    metadata = base.get("metadata")
    if isinstance(metadata, Mapping):
        mapping["metadata"] = dict(metadata)
    return Success(IdentityAssembly(mapping=mapping, selected=selected, notes=tuple(notes)))


def redact_identity(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The identity mapping with its secrets removed and URL credentials scrubbed.

    The MQTT block keeps only ``endpoint`` and ``tls`` (0.4.7's shape, and that of
    ``ThalovantIdentity.as_dict()``): its username is often the access key, and its topic
    prefix ends in it.
    """
    known = [str(mapping.get(k)) for k in ("access_key", "password", "crypto_key") if mapping.get(k)]
    raw_mqtt = mapping.get("mqtt")
    if isinstance(raw_mqtt, Mapping):
        known += [str(raw_mqtt.get(k)) for k in ("username", "password") if raw_mqtt.get(k)]
    out = redact({k: v for k, v in mapping.items() if k not in ("mqtt", "metadata")}, known)
    if isinstance(raw_mqtt, Mapping):
        out["mqtt"] = redact({k: v for k, v in raw_mqtt.items() if k in ("endpoint", "tls")}, known)
    if isinstance(mapping.get("metadata"), Mapping):
        out["metadata"] = redact(mapping["metadata"], known)
    return dict(out)
