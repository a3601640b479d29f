"""Hub protocols, their enable flags and their data-plane endpoints.

Theory of operation
-------------------
A hub can be reached three ways: WebSocket (``"wss"``), HTTP polling
(``"https"``) and MQTT (``"mqtt"``). ``ws``/``websocket`` are spellings of
``wss``, ``http`` is a spelling of ``https`` and ``mqtts`` of ``mqtt``; the
scheme of the endpoint URL (not the protocol name) decides whether TLS is
used. :func:`normalize_protocol` maps every spelling to the canonical name
and raises :class:`ThalovantUnsupportedProtocolError` for anything else.

:class:`HubProtocolSettings` holds one enable flag per protocol.
:class:`HubDataPlaneEndpoints` holds one URL per protocol:

=========  ===========================  ==================================
protocol   accepted URL schemes         also accepted
=========  ===========================  ==================================
https      ``https://``, ``http://``    path; no query, no fragment
wss        ``wss://``, ``ws://``        path and query
mqtt       ``mqtt://``, ``mqtts://``,   host and port only
           ``tcp://``, ``ssl://``
=========  ===========================  ==================================

The parsers here never raise: they record problems (see
``identity_values``); the public ``from_mapping`` classmethods raise one
:class:`ThalovantIdentityError` listing them all.

HTTP base composition (:func:`compose_http_base`), used by
``ThalovantIdentity.endpoint_base``:

* With an explicit ``https`` data-plane endpoint, that URL is the base and
  ``default_path`` is not added (the endpoint is complete).
* Otherwise the base is built from ``default_master`` (``ws://`` becomes
  ``http://``, ``wss://`` becomes ``https://``; a bare host gets ``https://``
  when the port is 443, else ``http://``) plus the master's own path plus
  ``default_path``.
* Port: a port in the URL always wins. Else an explicit ``default_port`` is
  added. Else ``http://`` URLs get the HiveMind port 5679 and ``https://``
  URLs get none (443 is implied) -- unlike 0.4.7, which produced
  ``https://host:5679``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from thalovant.core.errors import ThalovantUnsupportedProtocolError
from thalovant.core.identity.fields import (
    DEFAULT_HUB_PORT,
    NOT_A_PORT,
    Problems,
    SplitUrl,
    first_present,
    is_blank,
    read_bool,
    read_url,
    split_url,
    without_userinfo,
)

HubProtocol = Literal["wss", "https", "mqtt"]

#: The order ``enabled_protocols()`` reports protocols in.
PROTOCOL_DISPLAY_ORDER: tuple[HubProtocol, ...] = ("wss", "https", "mqtt")

#: 0.4.7's preference when several protocols are usable.
DEFAULT_PROTOCOL_PREFERENCE: tuple[HubProtocol, ...] = ("https", "wss", "mqtt")

#: The port each URL scheme implies when a URL names none: the one table of default ports.
DEFAULT_PORTS: Mapping[str, int] = MappingProxyType(
    {"http": 80, "https": 443, "ws": 80, "wss": 443, "mqtt": 1883, "mqtts": 8883, "tcp": 1883, "ssl": 8883}
)

_SPELLINGS: dict[str, HubProtocol] = {
    "wss": "wss",
    "ws": "wss",
    "websocket": "wss",
    "websockets": "wss",
    "https": "https",
    "http": "https",
    "mqtt": "mqtt",
    "mqtts": "mqtt",
}

#: URL schemes accepted per protocol.
ENDPOINT_SCHEMES: dict[HubProtocol, tuple[str, ...]] = {
    "https": ("https", "http"),
    "wss": ("wss", "ws"),
    "mqtt": ("mqtt", "mqtts", "tcp", "ssl"),
}


def normalize_protocol(name: object) -> HubProtocol:
    """The canonical protocol name for any accepted spelling.

    Args:
        name: ``"wss"``, ``"ws"``, ``"websocket"``, ``"https"``, ``"http"``,
            ``"mqtt"`` or ``"mqtts"`` (case and surrounding spaces ignored).

    Returns:
        ``"wss"``, ``"https"`` or ``"mqtt"``.

    Raises:
        ThalovantUnsupportedProtocolError: for any other value.
    """
    if isinstance(name, str):
        found = _SPELLINGS.get(name.strip().lower())
        if found is not None:
            return found
        shown = repr(name[:40])
    else:
        shown = f"a {type(name).__name__}"
    raise ThalovantUnsupportedProtocolError(f"unknown protocol {shown}; use one of wss, https, mqtt")


# ---- enable flags ---------------------------------------------------------------------------------

_FLAG_KEYS: dict[HubProtocol, tuple[str, ...]] = {
    "wss": ("wss", "websocket", "ws"),
    "https": ("http", "https"),
    "mqtt": ("mqtt", "mqtts"),
}


@dataclass(frozen=True, slots=True)
class HubProtocolSettings:
    """Which protocols the identity allows. ``http`` is the HTTP-polling flag (alias ``https``).

    Attributes:
        wss: WebSocket is enabled.
        http: HTTP polling is enabled.
        mqtt: MQTT is enabled.
    """

    wss: bool = True
    http: bool = False
    mqtt: bool = False

    @property
    def https(self) -> bool:
        """Same as :attr:`http`."""
        return self.http

    def is_enabled(self, protocol: str) -> bool:
        """Whether ``protocol`` (any spelling) is enabled.

        Raises:
            ThalovantUnsupportedProtocolError: for an unknown protocol name.
        """
        name = normalize_protocol(protocol)
        return {"wss": self.wss, "https": self.http, "mqtt": self.mqtt}[name]

    def enabled_protocols(self) -> tuple[HubProtocol, ...]:
        """The enabled protocols, in the order wss, https, mqtt."""
        return tuple(p for p in PROTOCOL_DISPLAY_ORDER if self.is_enabled(p))

    def as_dict(self) -> dict[str, dict[str, bool]]:
        """``{"wss": {"enabled": b}, "http": {"enabled": b}, "mqtt": {"enabled": b}}``."""
        return {"wss": {"enabled": self.wss}, "http": {"enabled": self.http}, "mqtt": {"enabled": self.mqtt}}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> HubProtocolSettings:
        """Read flags from ``protocols``, ``network`` or ``spec.protocols`` (first one present).

        Unspecified flags take the class defaults (wss on, http and mqtt off).

        Args:
            values: the mapping (e.g. an identity) that holds one of those blocks.

        Raises:
            ThalovantIdentityError: listing every malformed flag.
        """
        problems = Problems()
        flags = read_protocol_flags(values, problems)
        problems.raise_any("protocol settings")
        default = cls()
        return cls(
            wss=default.wss if flags["wss"] is None else flags["wss"],
            http=default.http if flags["https"] is None else flags["https"],
            mqtt=default.mqtt if flags["mqtt"] is None else flags["mqtt"],
        )


def read_protocol_flags(values: Mapping[str, Any], problems: Problems) -> dict[HubProtocol, bool | None]:
    """The three flags as found (None where not given), recording malformed ones.

    Sources, first present wins: ``protocols``, ``network``, ``spec.protocols``.
    A flag may be a bool, a word ("yes", "off", ...), 0/1 or ``{"enabled": ...}``.
    """
    found: dict[HubProtocol, bool | None] = {"wss": None, "https": None, "mqtt": None}
    block: object = None
    path = ""
    for key in ("protocols", "network"):
        if not is_blank(values.get(key)):
            block, path = values[key], key
            break
    spec = values.get("spec")
    if block is None and isinstance(spec, Mapping) and not is_blank(spec.get("protocols")):
        block, path = spec["protocols"], "spec.protocols"
    if block is None:
        return found
    if not isinstance(block, Mapping):
        problems.add(path, 'must be an object such as {"wss": {"enabled": true}}')
        return found
    for protocol, keys in _FLAG_KEYS.items():
        hit = first_present(block, keys)
        if hit is None:
            continue
        key, raw = hit
        flag_path = f"{path}.{key}"
        if isinstance(raw, Mapping):
            raw = raw.get("enabled")
            flag_path += ".enabled"
            if is_blank(raw):
                continue
        found[protocol] = read_bool(raw, flag_path, problems)
    return found


# ---- endpoints ------------------------------------------------------------------------------------

_ENDPOINT_BLOCKS = ("data_plane_endpoints", "dataPlaneEndpoints", "endpoints")
_ENDPOINT_KEYS: dict[HubProtocol, tuple[str, ...]] = {
    "https": ("https", "http"),
    "wss": ("wss", "ws"),
    "mqtt": ("mqtt", "mqtts"),
}


@dataclass(frozen=True, slots=True)
class HubDataPlaneEndpoints:
    """One normalised URL (or None) per protocol. URLs may carry credentials; see ``as_dict``.

    Attributes:
        https: the HTTP-polling URL (``https://`` or ``http://``), or None.
        wss: the WebSocket URL (``wss://`` or ``ws://``), or None.
        mqtt: the MQTT broker URL (``mqtt://``, ``mqtts://``, ``tcp://`` or ``ssl://``), or None.
    """

    https: str | None = None
    wss: str | None = None
    mqtt: str | None = None

    def endpoint_for(self, protocol: str) -> str | None:
        """The URL for ``protocol`` (any spelling), or None.

        Raises:
            ThalovantUnsupportedProtocolError: for an unknown protocol name.
        """
        name = normalize_protocol(protocol)
        return {"https": self.https, "wss": self.wss, "mqtt": self.mqtt}[name]

    def is_empty(self) -> bool:
        """True when no endpoint is set."""
        return self.https is None and self.wss is None and self.mqtt is None

    def as_dict(self, *, redact_credentials: bool = False) -> dict[str, str]:
        """The set endpoints; with ``redact_credentials`` any ``user:password@`` is removed."""
        out: dict[str, str] = {}
        for name in ("https", "wss", "mqtt"):
            value = getattr(self, name)
            if value is not None:
                out[name] = without_userinfo(value) if redact_credentials else value
        return out

    def http_base(self, master: str, port: int | None = None, path: str = "") -> str:
        """The HTTP base URL for these endpoints and a master (see the module docstring).

        Args:
            master: ``default_master``: an ``http(s)://`` or ``ws(s)://`` URL, or a bare host.
            port: the explicit ``default_port``, or None when none was given.
            path: the normalised ``default_path`` (``""`` or ``/a/b``); not added to an ``https`` endpoint.
        """
        return compose_http_base(master=master, https_endpoint=self.https, port=port, path=path)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> HubDataPlaneEndpoints:
        """Read endpoints from ``data_plane_endpoints`` / ``dataPlaneEndpoints`` / ``endpoints``.

        Without those blocks, the top-level keys ``https``, ``http``, ``wss``,
        ``ws``, ``mqtt`` (a string only) and ``mqtts`` are used.

        Args:
            values: the mapping (e.g. an identity) that holds the endpoints.

        Raises:
            ThalovantIdentityError: listing every malformed endpoint.
        """
        problems = Problems()
        endpoints = read_endpoints(values, problems)
        problems.raise_any("endpoints")
        return endpoints

    @classmethod
    def from_hub(cls, hub: Mapping[str, Any]) -> HubDataPlaneEndpoints:
        """Endpoints of a control-plane hub resource.

        Explicit endpoints win; otherwise ``https://<domain>`` and
        ``wss://<domain>`` are filled in for the enabled protocols.

        Raises:
            ThalovantIdentityError: when the resource is malformed.
        """
        problems = Problems()
        endpoints = read_endpoints(hub, problems)
        flags = read_protocol_flags(hub, problems)
        domain = hub.get("domain")
        https, wss = endpoints.https, endpoints.wss
        if isinstance(domain, str) and domain.strip():
            host = domain.strip().rstrip("/")
            if "://" in host:
                host = host.split("://", 1)[1]
            if https is None and flags["https"]:
                https = _read_endpoint(f"https://{host}", "https", "domain", problems)
            if wss is None and flags["wss"] is not False:
                wss = _read_endpoint(f"wss://{host}", "wss", "domain", problems)
        problems.raise_any("hub resource")
        return cls(https=https, wss=wss, mqtt=endpoints.mqtt)


def _read_endpoint(raw: object, protocol: HubProtocol, path: str, problems: Problems) -> str | None:
    split = read_url(raw, path, problems, schemes=ENDPOINT_SCHEMES[protocol])
    if split is None:
        return None
    if protocol == "mqtt" and (split.path or split.query):
        problems.add(path, "an MQTT endpoint is scheme://host:port only (no path or query)")
        return None
    if protocol == "https" and split.query:
        problems.add(path, "must not contain a ?query")
        return None
    return split.unsplit()


def read_endpoints(values: Mapping[str, Any], problems: Problems) -> HubDataPlaneEndpoints:
    """Parse the data-plane endpoints of an identity mapping, recording problems."""
    block: Mapping[str, Any] = values
    prefix = ""
    hit = first_present(values, _ENDPOINT_BLOCKS)
    if hit is not None:
        key, raw = hit
        if not isinstance(raw, Mapping):
            problems.add(key, "must be an object of protocol -> URL")
            return HubDataPlaneEndpoints()
        block, prefix = raw, f"{key}."
    found: dict[HubProtocol, str | None] = {"https": None, "wss": None, "mqtt": None}
    for protocol, keys in _ENDPOINT_KEYS.items():
        for key in keys:
            raw = block.get(key)
            if is_blank(raw):
                continue
            if not prefix and key == "mqtt" and not isinstance(raw, str):
                continue  # a top-level non-string "mqtt" is the broker credentials block, not an endpoint
            found[protocol] = _read_endpoint(raw, protocol, prefix + key, problems)
            break
    return HubDataPlaneEndpoints(https=found["https"], wss=found["wss"], mqtt=found["mqtt"])


def master_url(master: str, port: int | None) -> SplitUrl | str:
    """``default_master`` as an HTTP(S) URL, or why it cannot be one (see the module docstring)."""
    if "://" in master:
        split = split_url(master)
        if isinstance(split, str):
            return split
        scheme = {"ws": "http", "wss": "https"}.get(split.scheme, split.scheme)
        if scheme not in ("http", "https"):
            return "scheme must be one of http://, https://, ws://, wss:// (or give a bare host name)"
    else:
        split = split_url(f"http://{master}")
        if split == NOT_A_PORT:  # "javascript:x", "host:abc": neither a host nor a URL
            return "must be a host name, host:port or a URL such as https://host:port"
        if isinstance(split, str):
            return split
        effective = split.port if split.port is not None else port
        scheme = "https" if effective == DEFAULT_PORTS["https"] else "http"
    if split.has_authorization:
        return "must not carry ?authorization= (the client adds that token itself)"
    if split.query:
        return "must not contain a ?query"
    return SplitUrl(scheme, split.host, split.port, split.path, "", split.userinfo)


def _port_for(split: SplitUrl, port: int | None) -> int | None:
    if split.port is not None:
        return split.port
    if port is not None:
        return port
    return DEFAULT_HUB_PORT if split.scheme == "http" else None


def compose_http_base(*, master: str, https_endpoint: str | None, port: int | None, path: str) -> str:
    """The URL the HTTP transport talks to (rules in the module docstring).

    Args:
        master: ``default_master`` (already validated by the identity parser).
        https_endpoint: ``data_plane_endpoints.https``, if any.
        port: the explicit ``default_port``, or None when none was given.
        path: the normalised ``default_path`` (``""`` or ``/a/b``).
    """
    if https_endpoint is not None:
        split = split_url(https_endpoint)
        if isinstance(split, SplitUrl):
            return split.unsplit(port=_port_for(split, port))
    base = master_url(master, port)
    if isinstance(base, str):  # unreachable for a parsed identity; keep the raw text rather than raise
        return master
    return base.unsplit(port=_port_for(base, port), path=base.path + path)


@dataclass(frozen=True, slots=True)
class SelectedHubEndpoint:
    """A protocol and the endpoint chosen for it."""

    protocol: HubProtocol
    endpoint: str


def select_data_plane_endpoint(
    endpoints: HubDataPlaneEndpoints,
    protocols: HubProtocolSettings,
    preferred: tuple[str, ...] = DEFAULT_PROTOCOL_PREFERENCE,
) -> SelectedHubEndpoint | None:
    """The first protocol in ``preferred`` that is enabled and has an endpoint, or None.

    Args:
        endpoints: the URL of each protocol.
        protocols: which protocols are enabled.
        preferred: protocol names (any spelling), the most preferred first.

    Raises:
        ThalovantUnsupportedProtocolError: if ``preferred`` names an unknown protocol.
    """
    for name in preferred:
        protocol = normalize_protocol(name)
        endpoint = endpoints.endpoint_for(protocol)
        if protocols.is_enabled(protocol) and endpoint is not None:
            return SelectedHubEndpoint(protocol, endpoint)
    return None
