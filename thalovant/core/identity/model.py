"""The client identity: who we are to the hub, and where the hub is.

Theory of operation
-------------------
An identity comes from a JSON object (a file, a mapping, or environment
variables turned into a mapping). :func:`parse_identity` reads every field,
collects *all* problems (``field.path: message``, never the value) and
returns ``Success(ThalovantIdentity)`` or ``Failure(problems)``. The public
classmethods raise one :class:`ThalovantIdentityError` listing them all.
Reading files and ``os.environ`` is the shell's job
(``thalovant.shell.identity_io``); this module only sees text and mappings.

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
  ``crypto_key`` needs at least 16 characters, the first 16 ASCII: the hub
  and the client use exactly ``crypto_key[:16]`` as the AES-128 key.
* URLs must use the schemes of their protocol (see ``identity_protocols``).
* ``default_port`` must be 1..65535; 0 is an error, not "use the default".
* MQTT topics contain no ``+``/``#`` wildcards, NUL or control characters,
  no empty levels and do not start with ``$``; ``qos`` is 0 or 1.

Protocol flags not given default to "usable": ``https`` on (the master gives
an HTTP base), ``wss`` on when a wss endpoint is set, ``mqtt`` on when MQTT
broker credentials are set.

Secrets (access key, password, crypto key, broker username and password,
URL userinfo, secret-named metadata keys) never appear in ``repr()``,
``str()``, ``as_dict()`` (without ``include_secrets``) or any error message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any, Self

from returns.result import Failure, Result, Success

from thalovant.core.errors import ThalovantIdentityError, ThalovantUnsupportedProtocolError
from thalovant.core.identity.env import identity_from_environ
from thalovant.core.identity.fields import (
    DEFAULT_HUB_PORT,
    REDACTED,
    IdentityProblem,
    Problems,
    copy_json,
    first_present,
    normalize_path,
    read_json_object,
    read_port,
    read_text,
    redact_json,
    split_url,
    without_userinfo,
)
from thalovant.core.identity.mqtt import MqttBrokerCredentials, read_mqtt
from thalovant.core.identity.protocols import (
    DEFAULT_PROTOCOL_PREFERENCE,
    HubDataPlaneEndpoints,
    HubProtocol,
    HubProtocolSettings,
    SelectedHubEndpoint,
    compose_http_base,
    master_url,
    normalize_protocol,
    read_endpoints,
    read_protocol_flags,
    select_data_plane_endpoint,
)

__all__ = [
    "DEFAULT_HUB_PORT",
    "DEFAULT_PROTOCOL_PREFERENCE",
    "HubDataPlaneEndpoints",
    "HubProtocol",
    "HubProtocolSettings",
    "IdentityProblem",
    "MqttBrokerCredentials",
    "SelectedHubEndpoint",
    "ThalovantIdentity",
    "identity_from_environ",
    "normalize_protocol",
    "parse_identity",
    "parse_identity_text",
    "select_data_plane_endpoint",
]

_ACCESS_KEY = ("access_key", "key", "api_key", "accessKey", "apiKey")
_PASSWORD = ("password",)
_CRYPTO_KEY = ("crypto_key", "cryptoKey")
_SITE_ID = ("site_id", "siteId", "site")
_MASTER = ("default_master", "host", "hub_http_host", "master")
_PORT = ("default_port", "port", "hub_http_port")
_PATH = ("default_path", "defaultPath", "hub_http_path", "path", "uri_path")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False, eq=False)
class ThalovantIdentity:
    """A validated client identity (core part). Build it with :meth:`from_mapping` or :meth:`from_text`.

    The public ``thalovant.ThalovantIdentity`` (``thalovant.shell.identity_io``) subclasses this and
    adds ``from_file`` and ``from_env``, which need IO.

    Attributes:
        access_key: the hub's client access key (secret).
        password: the handshake password (secret), or None for pre-shared-key-only clients.
        default_master: hub address: ``http(s)://`` or ``ws(s)://`` URL, or a bare host.
        site_id: the site this client speaks for.
        default_port: the explicit port, or None when none was given (see ``endpoint_base``).
        default_path: URL path prefix, ``""`` or ``/a/b``.
        crypto_key: the legacy pre-shared AES key (secret), or None.
        data_plane_endpoints: per-protocol URLs.
        protocols: per-protocol enable flags.
        mqtt: MQTT broker credentials, or None.
        metadata: merged into ``context["metadata"]`` of every message sent.
    """

    access_key: str
    password: str | None = None
    default_master: str
    site_id: str
    default_port: int | None = None
    default_path: str = ""
    crypto_key: str | None = None
    data_plane_endpoints: HubDataPlaneEndpoints = field(default_factory=HubDataPlaneEndpoints)
    protocols: HubProtocolSettings = field(default_factory=HubProtocolSettings)
    mqtt: MqttBrokerCredentials | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)

    # ---- construction ----------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, origin: str = "identity") -> Self:
        """Validate a mapping (the JSON object of an identity file).

        Raises:
            ThalovantIdentityError: listing every problem found (``.problems``).
        """
        return cls._adopt(_unwrap(parse_identity(values, origin=origin), origin))

    @classmethod
    def from_text(cls, text: str | bytes, *, origin: str = "identity file") -> Self:
        """Validate the contents of an identity file (UTF-8 JSON object).

        Raises:
            ThalovantIdentityError: for bad UTF-8, bad JSON, a non-object or invalid fields.
        """
        return cls._adopt(_unwrap(parse_identity_text(text, origin=origin), origin))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, prefix: str = "THALOVANT_") -> Self:
        """Validate an identity given as environment variables (see ``identity_env``).

        Raises:
            ThalovantIdentityError: listing every problem found.
        """
        origin = f"environment ({prefix}*)"
        return cls._adopt(_unwrap(parse_identity(identity_from_environ(environ, prefix=prefix), origin=origin), origin))

    @classmethod
    def _adopt(cls, identity: ThalovantIdentity) -> Self:
        """``identity`` as an instance of ``cls`` (the public subclass adds file and env loading)."""
        if type(identity) is cls:
            return identity
        return cls(**{f.name: getattr(identity, f.name) for f in dataclass_fields(identity)})

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclass_fields(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ThalovantIdentity):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(tuple(value for value in self._key() if not isinstance(value, dict)))

    def with_overrides(self, *, host: str | None = None, port: int | None = None) -> Self:
        """A copy with the CLI's ``--host`` / ``--port`` applied, re-validated.

        ``host`` replaces ``default_master`` and drops the ``https`` data-plane
        endpoint, so the override really takes effect (0.4.7 ignored it).
        ``port`` sets ``default_port`` and also replaces the port of a kept
        ``https`` endpoint.

        Raises:
            ThalovantIdentityError: if the result is invalid.
        """
        values = self.as_dict(include_secrets=True)
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
        return type(self).from_mapping(values, origin="identity with overrides")

    # ---- endpoints and protocols -----------------------------------------------------------------

    @property
    def runtime_crypto_key(self) -> str | None:
        """The pre-shared key as the hub uses it: the first 16 characters, or None."""
        return self.crypto_key[:16] if self.crypto_key else None

    def endpoint_base(self) -> str:
        """The HTTP(S) base URL of the hub (rules in ``identity_protocols``)."""
        return compose_http_base(
            master=self.default_master,
            https_endpoint=self.data_plane_endpoints.https,
            port=self.default_port,
            path=self.default_path,
        )

    def endpoint_for(self, protocol: str) -> str | None:
        """The URL for a protocol, or None when the identity has none.

        ``"https"``/``"http"`` give :meth:`endpoint_base` (never None);
        ``"wss"``/``"ws"`` the wss data-plane endpoint; ``"mqtt"`` the mqtt
        data-plane endpoint, else the broker endpoint of ``mqtt``.

        Raises:
            ThalovantUnsupportedProtocolError: for an unknown protocol name.
        """
        name = normalize_protocol(protocol)
        if name == "https":
            return self.endpoint_base()
        if name == "wss":
            return self.data_plane_endpoints.wss
        if self.data_plane_endpoints.mqtt is not None:
            return self.data_plane_endpoints.mqtt
        return self.mqtt.endpoint if self.mqtt is not None else None

    def enabled_protocols(self) -> tuple[HubProtocol, ...]:
        """The enabled flags, in the order wss, https, mqtt."""
        return self.protocols.enabled_protocols()

    def supports_protocol(self, protocol: str) -> bool:
        """Whether ``protocol`` is enabled *and* usable (has an endpoint; MQTT also needs ``mqtt``).

        Raises:
            ThalovantUnsupportedProtocolError: for an unknown protocol name.
        """
        name = normalize_protocol(protocol)
        if not self.protocols.is_enabled(name) or self.endpoint_for(name) is None:
            return False
        return name != "mqtt" or self.mqtt is not None

    def require_protocol(self, protocol: str) -> str:
        """The endpoint for ``protocol``, or raise why it cannot be used.

        Raises:
            ThalovantUnsupportedProtocolError: unknown, disabled, or missing endpoint/credentials.
        """
        name = normalize_protocol(protocol)
        endpoint = self.endpoint_for(name)
        if not self.protocols.is_enabled(name):
            raise ThalovantUnsupportedProtocolError(f"{name} is disabled in this identity's protocols")
        if name == "mqtt" and self.mqtt is None:
            raise ThalovantUnsupportedProtocolError("MQTT needs broker credentials (the identity's mqtt block)")
        if endpoint is None:
            raise ThalovantUnsupportedProtocolError(f"the identity has no {name} endpoint")
        return endpoint

    # ---- output ----------------------------------------------------------------------------------

    def as_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """A JSON-ready summary.

        Without secrets: site, master (no userinfo), port, path, endpoints (no
        userinfo), protocols, ``mqtt`` as ``{endpoint, tls}``, and metadata
        with secret-named keys replaced by ``"***"``. With secrets: every
        field, such that ``from_mapping(as_dict(include_secrets=True))``
        equals this identity.
        """
        out: dict[str, Any] = {}
        if include_secrets:
            out.update(access_key=self.access_key, password=self.password, crypto_key=self.crypto_key)
        out["site_id"] = self.site_id
        out["default_master"] = self.default_master if include_secrets else without_userinfo(self.default_master)
        if self.default_port is not None:
            out["default_port"] = self.default_port
        out["default_path"] = self.default_path
        endpoints = self.data_plane_endpoints.as_dict(redact_credentials=not include_secrets)
        if endpoints or include_secrets:
            out["data_plane_endpoints"] = endpoints
        out["protocols"] = self.protocols.as_dict()
        if self.mqtt is not None:
            out["mqtt"] = self.mqtt.as_dict(include_secrets=include_secrets)
        out["metadata"] = copy_json(self.metadata) if include_secrets else redact_json(self.metadata)
        return out

    def __repr__(self) -> str:
        def hidden(value: str | None) -> str:
            return "None" if value is None else REDACTED

        return (
            f"ThalovantIdentity(site_id={self.site_id!r}, default_master={without_userinfo(self.default_master)!r}, "
            f"default_port={self.default_port!r}, default_path={self.default_path!r}, "
            f"data_plane_endpoints={self.data_plane_endpoints.as_dict(redact_credentials=True)!r}, "
            f"protocols={self.enabled_protocols()!r}, mqtt={self.mqtt!r}, "
            f"metadata={redact_json(self.metadata)!r}, access_key={REDACTED}, "
            f"password={hidden(self.password)}, crypto_key={hidden(self.crypto_key)})"
        )

    __str__ = __repr__


def _unwrap(result: Result[ThalovantIdentity, tuple[IdentityProblem, ...]], origin: str) -> ThalovantIdentity:
    if isinstance(result, Success):
        identity: ThalovantIdentity = result.unwrap()
        return identity
    problems: tuple[IdentityProblem, ...] = result.failure()
    raise ThalovantIdentityError([(p.path, p.message) for p in problems], origin=origin)


# ---- parsing --------------------------------------------------------------------------------------


def parse_identity_text(
    text: str | bytes, *, origin: str = "identity file"
) -> Result[ThalovantIdentity, tuple[IdentityProblem, ...]]:
    """Parse identity-file contents: UTF-8 (a BOM is allowed) JSON holding one object."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return Failure((IdentityProblem("", f"{origin} is not valid UTF-8 (byte {exc.start})"),))
    text = text.removeprefix("\ufeff")
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        return Failure((IdentityProblem("", f"{origin} is not valid JSON (line {exc.lineno} column {exc.colno})"),))
    except (ValueError, RecursionError):
        return Failure((IdentityProblem("", f"{origin} is not valid JSON (too deeply nested or malformed)"),))
    return parse_identity(values, origin=origin)


def parse_identity(
    values: object, *, origin: str = "identity"
) -> Result[ThalovantIdentity, tuple[IdentityProblem, ...]]:
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
        ThalovantIdentity(
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
    key = read_text(hit[1], hit[0], problems)
    if key is not None and (len(key) < 16 or not key[:16].isascii()):
        problems.add(hit[0], "must have at least 16 characters, the first 16 ASCII (the hub uses crypto_key[:16])")
        return None
    return key


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
    master = master.rstrip("/")
    checked = master_url(master, port)
    if isinstance(checked, str):
        problems.add(hit[0], checked)
        return None
    return master


def _read_path(values: Mapping[str, Any], problems: Problems) -> str | None:
    hit = first_present(values, _PATH)
    return "" if hit is None else normalize_path(hit[1], hit[0], problems)
