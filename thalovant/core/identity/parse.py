"""Parsing an identity: a JSON object (from a file, a mapping or the environment) into an ``Identity``.

Theory of operation
-------------------
An identity comes from a JSON object (a file, a mapping, or environment
variables turned into a mapping). :func:`parse_identity` reads every field,
collects *all* problems (``field.path: message``, never the value) and
returns ``Success(Identity)`` or ``Failure(problems)``. The constructors of
the public ``ThalovantIdentity`` (``thalovant.shell.identity_io``) raise one
:class:`ThalovantIdentityError` listing them all. Reading files and
``os.environ`` is the shell's job; this module only sees text and mappings.

Fields (canonical key first, then accepted aliases; unknown keys are ignored):

=====================  ===============================================  =========
field                  aliases                                          required
=====================  ===============================================  =========
access_key             key, api_key, accessKey, apiKey                  yes
password               (none)                                           one of
crypto_key             cryptoKey                                        these two
site_id                siteId, site (numbers become strings)            yes
default_master         host, hub_http_host, master                      yes
default_port           port, hub_http_port (1..65535)                   no
default_path           defaultPath, hub_http_path, path, uri_path       no
data_plane_endpoints   dataPlaneEndpoints, endpoints, or top-level      no
                       https/http/wss/ws/mqtt(string)/mqtts
protocols              network, spec.protocols                          no
mqtt                   (none)                                           no
metadata               (none)                                           no
=====================  ===============================================  =========

Precedence within one mapping: the canonical key wins over its aliases, and
an earlier alias over a later one. ``None`` and blank strings count as
missing. A file and the environment are never merged.

Validation (beyond 0.4.7, which accepted most of this silently):

* ``access_key`` has no ``:`` (hub 4.x splits the token on it, spec §3.1),
  no whitespace, and, when MQTT is configured, no ``/``, ``+`` or ``#``.
* ``password`` and ``crypto_key`` are each optional, but at least one is
  required (password-only, pre-shared-key-only and both all work).
  The pre-shared path needs a ``crypto_key`` of at least 16 characters, the
  first 16 ASCII: the hub and the client use exactly ``crypto_key[:16]`` as
  the AES-128 key. A shorter key still loads, as in 0.4.7
  (:func:`~thalovant.core.identity.fields.crypto_key_problem` says why it is
  unusable; the public constructors warn once): the handshake fails, naming
  ``crypto_key``, only if it has to take the pre-shared path.
* Every text field refuses lone surrogates (text that cannot be encoded,
  e.g. a non-UTF-8 environment variable) and control characters, naming
  the field.
* An ``authorization`` query parameter is dropped from every endpoint URL
  (the client adds its own token; 0.4.7 replaced it too), and refused in
  ``default_master``; it is never shown.
* URLs must use the schemes of their protocol (see ``protocols``).
* ``default_port`` must be 1..65535; 0 is an error, not "use the default".
* MQTT topics contain no ``+``/``#`` wildcards, NUL or control characters,
  no empty levels and do not start with ``$``; ``qos`` is 0 or 1.

Protocol flags not given default to "usable": ``https`` on (the master gives
an HTTP base), ``wss`` on when a wss endpoint is set, ``mqtt`` on when MQTT
broker credentials are set.

No problem message quotes a value (it may be a secret): messages name the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core.identity.fields import (
    IdentityProblem,
    Problems,
    decode_text,
    first_present,
    load_json,
    normalize_path,
    read_json_object,
    read_port,
    read_text,
    split_url,
)
from thalovant.core.identity.model import Identity
from thalovant.core.identity.mqtt import read_mqtt
from thalovant.core.identity.protocols import HubProtocolSettings, master_url, read_endpoints, read_protocol_flags

__all__ = ["override_values", "parse_identity", "parse_identity_text"]

_ACCESS_KEY = ("access_key", "key", "api_key", "accessKey", "apiKey")
_PASSWORD = ("password",)
_CRYPTO_KEY = ("crypto_key", "cryptoKey")
_SITE_ID = ("site_id", "siteId", "site")
_MASTER = ("default_master", "host", "hub_http_host", "master")
_PORT = ("default_port", "port", "hub_http_port")
_PATH = ("default_path", "defaultPath", "hub_http_path", "path", "uri_path")


def parse_identity_text(
    text: str | bytes, *, origin: str = "identity file"
) -> Result[Identity, tuple[IdentityProblem, ...]]:
    """Parse identity-file contents: UTF-8 (a BOM is allowed) JSON holding one object."""
    return (
        decode_text(text, origin)
        .bind(lambda decoded: load_json(decoded, origin, malformed=" (too deeply nested or malformed)"))
        .bind(lambda values: parse_identity(values, origin=origin))
    )


def parse_identity(values: object, *, origin: str = "identity") -> Result[Identity, tuple[IdentityProblem, ...]]:
    """Validate an identity mapping, collecting every problem.

    Returns:
        ``Success(identity)``, or ``Failure(problems)`` with one
        :class:`IdentityProblem` per bad or missing field.
    """
    if not isinstance(values, Mapping):
        return Failure((IdentityProblem("", f"{origin} must be a JSON object"),))
    problems = Problems()
    access_key = _read_access_key(values, problems)
    password = _optional_text(values, _PASSWORD, problems)
    crypto_key = _read_crypto_key(values, problems)
    if password is None and crypto_key is None and not _given(values, _PASSWORD + _CRYPTO_KEY):
        problems.add("password", "missing: give password, crypto_key or both")
    site_id = _required_text(values, _SITE_ID, problems, allow_numbers=True)
    port = _optional_port(values, problems)
    master = _read_master(values, port, problems)
    path = _read_path(values, problems)
    endpoints = read_endpoints(values, problems)
    flags = read_protocol_flags(values, problems)
    mqtt = read_mqtt(values, problems, fallback_endpoint=endpoints.mqtt)
    if mqtt is not None and access_key is not None and any(c in access_key for c in "/+#"):
        problems.add("access_key", "must not contain '/', '+' or '#' when MQTT is configured (it is a topic level)")
    metadata: dict[str, Any] | None = {}
    if values.get("metadata") is not None:
        metadata = read_json_object(values["metadata"], "metadata", problems)
    if problems:
        return Failure(problems.as_tuple())
    # No problem was recorded, so every required field was read.
    assert access_key is not None and site_id is not None and master is not None
    assert path is not None and metadata is not None
    protocols = HubProtocolSettings(
        wss=endpoints.wss is not None if flags["wss"] is None else flags["wss"],
        http=True if flags["https"] is None else flags["https"],
        mqtt=mqtt is not None if flags["mqtt"] is None else flags["mqtt"],
    )
    return Success(
        Identity(
            access_key=access_key,
            password=password,
            crypto_key=crypto_key,
            site_id=site_id,
            default_master=master,
            default_port=port,
            default_path=path,
            data_plane_endpoints=endpoints,
            protocols=protocols,
            mqtt=mqtt,
            metadata=metadata,
        )
    )


def override_values(identity: Identity, *, host: str | None = None, port: int | None = None) -> dict[str, Any]:
    """The identity mapping (secrets included) with ``--host`` / ``--port`` applied, not yet validated.

    The rules are those of ``ThalovantIdentity.with_overrides``, which validates the result.
    """
    values = identity.as_dict(include_secrets=True)
    endpoints = dict(values.get("data_plane_endpoints", {}))
    if host is not None:
        values["default_master"] = host
        endpoints.pop("https", None)
    if port is not None:
        values["default_port"] = port
        split = split_url(endpoints["https"]) if "https" in endpoints else None
        if split is not None and not isinstance(split, str) and 1 <= port <= 65535:
            endpoints["https"] = split.unsplit(port=port)
    values["data_plane_endpoints"] = endpoints
    return values


def _given(values: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    return first_present(values, keys) is not None


def _required_text(
    values: Mapping[str, Any], keys: tuple[str, ...], problems: Problems, *, allow_numbers: bool = False
) -> str | None:
    hit = first_present(values, keys)
    if hit is None:
        aliases = f" (or {', '.join(keys[1:])})" if len(keys) > 1 else ""
        problems.add(keys[0], f"missing required field{aliases}")
        return None
    return read_text(hit[1], hit[0], problems, allow_numbers=allow_numbers)


def _optional_text(values: Mapping[str, Any], keys: tuple[str, ...], problems: Problems) -> str | None:
    hit = first_present(values, keys)
    return None if hit is None else read_text(hit[1], hit[0], problems)


def _read_access_key(values: Mapping[str, Any], problems: Problems) -> str | None:
    hit = first_present(values, _ACCESS_KEY)
    if hit is None:
        problems.add("access_key", "missing required field (or key, api_key, accessKey, apiKey)")
        return None
    key = read_text(hit[1], hit[0], problems, allow_spaces=False)
    if key is not None and ":" in key:
        problems.add(hit[0], "must not contain ':' (the hub splits the authorization token on it)")
        return None
    return key


def _read_crypto_key(values: Mapping[str, Any], problems: Problems) -> str | None:
    hit = first_present(values, _CRYPTO_KEY)
    if hit is None:
        return None
    # A key the pre-shared path cannot use still loads, as in 0.4.7 (see ``crypto_key_problem``).
    return read_text(hit[1], hit[0], problems)


def _optional_port(values: Mapping[str, Any], problems: Problems) -> int | None:
    hit = first_present(values, _PORT)
    return None if hit is None else read_port(hit[1], hit[0], problems)


def _read_master(values: Mapping[str, Any], port: int | None, problems: Problems) -> str | None:
    hit = first_present(values, _MASTER)
    if hit is None:
        problems.add("default_master", "missing required field (or host, hub_http_host, master)")
        return None
    master = read_text(hit[1], hit[0], problems, allow_spaces=False)
    if master is None:
        return None
    if "://" in master and not master.partition("://")[2].strip("/"):  # "https://" names no host
        problems.add(hit[0], "must name a host")
        return None
    master = master.rstrip("/")
    checked = master_url(master, port)
    if isinstance(checked, str):
        problems.add(hit[0], checked)
        return None
    return master


def _read_path(values: Mapping[str, Any], problems: Problems) -> str | None:
    hit = first_present(values, _PATH)
    return "" if hit is None else normalize_path(hit[1], hit[0], problems)
