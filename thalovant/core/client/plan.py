"""Every client default, written once: how an identity and the caller's options become a connection plan.

Theory of operation
-------------------
``AsyncThalovantClient`` picks the protocol (:func:`choose_protocol`), reads
the Noise static key when the identity needs one (``thalovant.shell.keys``),
and hands the identity plus its options (:class:`ClientOptions`) to
:func:`build_plan`. The result is one frozen value per transport:

=============  ===========================================================
plan           what the shell does with it
=============  ===========================================================
``WsPlan``     dials ``url`` (``ws://`` or ``wss://``)
``HttpPlan``   polls ``url`` (``http://`` or ``https://``)
``MqttPlan``   connects to the broker ``host``:``port`` (TLS if ``tls``) and talks on
               the identity's three topics (``reference-sdk.md`` §d.10)
=============  ===========================================================

Each plan carries the :class:`~thalovant.core.client.connection_events.ConnectionConfig`
of the machine the shell runs. The shell dispatches on the plan's *type*; the
protocol name is branched on here (:func:`build_plan`) and nowhere else.

Rule 1 (defaults once). Every default that depends on something else is
resolved here: the protocol (the identity's first enabled one, else
``https``), the keep-alive (:data:`MQTT_KEEPALIVE` on MQTT, off elsewhere),
HTTP polling (:data:`DEFAULT_HTTP_POLL`), the reconnect policy (a single
attempt without ``auto_reconnect``), the session id (fresh, from entropy)
and the MQTT topics (the identity's prefix, ``hub_id``, explicit topics and
``hash_topics``, by :func:`~thalovant.core.client.topics.mqtt_topics_for_identity`).
The port a URL scheme implies is the identity's table
(:data:`thalovant.core.identity.protocols.DEFAULT_PORTS`).

Rule 2 (pure). Nothing here reads a file or a clock: the Noise static key
comes in as bytes, randomness as the ``entropy`` callable.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, Protocol

from thalovant._version import __version__
from thalovant.core.bus.outbound import new_session_id
from thalovant.core.client.connection_events import ConnectionConfig
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.client.topics import mqtt_topics_for_identity
from thalovant.core.identity.mqtt import MqttBrokerCredentials
from thalovant.core.identity.protocols import HubProtocol, normalize_protocol
from thalovant.core.links.http_wire import HttpPollConfig
from thalovant.core.links.liveness import DEFAULT_LIVENESS, LivenessConfig
from thalovant.core.links.mqtt_topics import MqttLayout
from thalovant.core.machine import Entropy

__all__ = [
    "DEFAULT_HTTP_POLL",
    "DEFAULT_USERAGENT",
    "MQTT_KEEPALIVE",
    "ClientOptions",
    "ClientPlan",
    "HttpPlan",
    "MqttPlan",
    "PlannedIdentity",
    "WsPlan",
    "build_plan",
    "choose_protocol",
]

#: The user agent the hub sees (and the first half of the authorization token) unless one is given.
DEFAULT_USERAGENT = f"ThalovantPythonSDK/{__version__}"

#: HTTP polling used when ``http`` is not given: the hot-window interval grows by 1.2 per empty poll, which
#: cut the hub's work for an ask followed by a quiet second from ~170 requests to ~27 with the same ask
#: latency (``benchmarks/NOTES.md``).
DEFAULT_HTTP_POLL = HttpPollConfig(hot_growth=1.2)

#: Idle seconds before a keep-alive PING on MQTT when ``keepalive`` is not given: a restarted hub 4.x
#: notices an MQTT client only when it sends something. Other transports send none unless asked.
MQTT_KEEPALIVE = 15.0


class PlannedIdentity(Protocol):
    """What planning reads from an identity (``thalovant.ThalovantIdentity`` is one)."""

    @property
    def site_id(self) -> str: ...

    @property
    def access_key(self) -> str: ...

    @property
    def password(self) -> str | None: ...

    @property
    def runtime_crypto_key(self) -> str | None: ...

    @property
    def mqtt(self) -> MqttBrokerCredentials | None: ...

    def enabled_protocols(self) -> tuple[HubProtocol, ...]: ...

    def require_protocol(self, protocol: str) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """The client's options that shape the connection (the client's docstring explains each).

    ``None`` means "the default of :func:`build_plan`" (Rule 1).
    """

    protocol: HubProtocol
    useragent: str
    handshake_timeout: float
    queue_timeout: float
    max_queue: int
    auto_reconnect: bool
    auth_encoding: Literal["raw", "percent"]
    mqtt_layout: Literal["legacy", "modern"]
    session_id: str | None = None
    reconnect: ReconnectConfig | None = None
    http: HttpPollConfig | None = None
    keepalive: float | None = None
    liveness: LivenessConfig | None = None
    #: the Noise (hub 5.x) static key; given only for an identity with a password
    noise_static_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class WsPlan:
    """Talk to the hub over a WebSocket at ``url``."""

    protocol: ClassVar[HubProtocol] = "wss"
    link_words: ClassVar[str] = "WebSocket open"

    config: ConnectionConfig
    url: str = field(repr=False)  # a wss endpoint may carry a query


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpPlan:
    """Talk to the hub by HTTP polling at ``url`` (the hub's HTTP base)."""

    protocol: ClassVar[HubProtocol] = "https"
    link_words: ClassVar[str] = "polling"

    config: ConnectionConfig
    url: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttPlan:
    """Talk to the hub through the MQTT broker at ``host``:``port``. Holds the broker login: no repr."""

    protocol: ClassVar[HubProtocol] = "mqtt"
    link_words: ClassVar[str] = "MQTT connected"

    config: ConnectionConfig
    host: str
    port: int
    tls: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


ClientPlan = WsPlan | HttpPlan | MqttPlan


def choose_protocol(identity: PlannedIdentity, protocol: str | None) -> HubProtocol:
    """``protocol`` in its canonical spelling, or the identity's first enabled protocol (else ``https``).

    Raises:
        ThalovantUnsupportedProtocolError: the protocol is unknown, disabled, or lacks an endpoint.
    """
    enabled = identity.enabled_protocols()
    chosen = normalize_protocol(protocol) if protocol is not None else (enabled[0] if enabled else "https")
    identity.require_protocol(chosen)
    return chosen


def build_plan(identity: PlannedIdentity, options: ClientOptions, *, entropy: Entropy) -> ClientPlan:
    """The plan for ``options.protocol`` (see the module docstring).

    Raises:
        ThalovantUnsupportedProtocolError: the identity cannot use ``options.protocol``.
        ThalovantConnectionError: MQTT, and no topics can be derived from the identity
            (:func:`~thalovant.core.client.topics.mqtt_topics_for_identity`).
        LocalProtocolError: an option is out of range (e.g. ``keepalive <= 0``).
    """
    url = identity.require_protocol(options.protocol)
    shared = _shared_config(identity, options, entropy)
    if options.protocol == "mqtt":
        return _mqtt_plan(identity, options, shared)
    if options.protocol == "https":
        http = options.http or DEFAULT_HTTP_POLL
        return HttpPlan(config=replace(shared, protocol="https", http=http, http_base_path=_path_of(url)), url=url)
    return WsPlan(config=shared, url=url)


def _shared_config(identity: PlannedIdentity, options: ClientOptions, entropy: Entropy) -> ConnectionConfig:
    """The fields every transport shares, as a WebSocket config (the other plans ``replace`` theirs in)."""
    reconnect = options.reconnect
    if reconnect is None:
        reconnect = ReconnectConfig() if options.auto_reconnect else ReconnectConfig(max_attempts=1)
    key = options.noise_static_key
    return ConnectionConfig(
        protocol="wss",
        useragent=options.useragent,
        session_id=options.session_id or new_session_id(entropy),
        site_id=identity.site_id,
        access_key=identity.access_key,
        password=identity.password,
        crypto_key=identity.runtime_crypto_key,
        handshake_timeout=options.handshake_timeout,
        queue_timeout=options.queue_timeout,
        max_queue=options.max_queue,
        reconnect=reconnect,
        auth_encoding=options.auth_encoding,
        keepalive=options.keepalive,
        liveness=options.liveness or DEFAULT_LIVENESS,
        v3_options=(("static_key", key),) if key is not None else (),
    )


def _mqtt_plan(identity: PlannedIdentity, options: ClientOptions, shared: ConnectionConfig) -> MqttPlan:
    """The broker plan; the three topics are resolved here, once (Rule 1), by the identity's rule.

    The link machine gets them as complete overrides, so it never re-derives them from a prefix.
    """
    creds = identity.mqtt
    assert creds is not None  # identity.require_protocol("mqtt") checked it
    layout = MqttLayout.MODERN if options.mqtt_layout == "modern" else MqttLayout.LEGACY
    topics = mqtt_topics_for_identity(identity, layout=layout)
    config = replace(
        shared,
        protocol="mqtt",
        keepalive=MQTT_KEEPALIVE if options.keepalive is None else options.keepalive,
        mqtt_topic_prefix="",
        mqtt_overrides=topics.as_overrides(),
        mqtt_qos=creds.qos,
        mqtt_layout=layout,
    )
    scheme = creds.endpoint.split("://", 1)[0].lower()
    return MqttPlan(
        config=config,
        host=creds.host,
        port=creds.port,
        tls=creds.tls or scheme in ("mqtts", "ssl"),
        username=creds.username,
        password=creds.password,
    )


def _path_of(url: str) -> str:
    """The path of an HTTP endpoint URL without its trailing ``/`` (``""`` for the root): the poll prefix."""
    authority, slash, tail = url.strip().partition("://")[2].partition("/")
    _, question, query = authority.partition("?")
    return ("/?" + query if question else slash + tail).rstrip("/")
