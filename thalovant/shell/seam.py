"""``transport=``: what a client runs when it is given a transport instead of a network.

Theory of operation
-------------------
``AsyncThalovantClient`` (and every class built on it: the blocking client, conversations, agents,
the CLI) accepts ``transport=``; this module is everything that keyword changes. Two kinds of
transport are accepted, told apart by their methods (:func:`transport_kind`):

* **link level**, ``thalovant.testing.MemoryHub``: the client keeps its whole core (handshake,
  encryption, correlation, reconnect, traces) and only the network is in memory
  (:mod:`thalovant.shell.memory_link`);
* **bus level**, thalovant 0.4.7's duck type (``connect``, ``disconnect``, ``on_mycroft``,
  ``remove_mycroft``, ``emit_event``, ``healthcheck``, ``is_connected``, ``last_error``), e.g. a test
  fake or :mod:`thalovant.transport`'s classes: it replaces the link and the session; the queue,
  the correlator, listeners and results stay (:mod:`thalovant.shell.bus_transport`).

Either way the client's :class:`~thalovant.shell.engine.ClientEngine` runs with a backend
(:func:`engine_for`), so waits, listeners and exceptions behave as over a real network. As in 0.4.7,
a transport skips the identity's endpoint checks: the identity needs no endpoint for the protocol
(:func:`planning_inputs`), and ``client.doctor()`` runs 0.4.7's four checks through the transport
(:func:`transport_doctor`) instead of probing DNS, TCP and TLS.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, Protocol, cast

import anyio

from thalovant.core.client.health import ThalovantHealth
from thalovant.core.client.plan import ClientPlan, PlannedIdentity
from thalovant.core.doctor_report import (
    CheckStatus,
    ThalovantDoctorCheck,
    ThalovantDoctorReport,
    identity_summary_047,
    scrub_report,
    scrub_text,
    secret_texts,
    transport_check,
)
from thalovant.core.errors import ThalovantUnsupportedProtocolError
from thalovant.core.identity.fields import without_userinfo
from thalovant.core.identity.mqtt import MqttBrokerCredentials
from thalovant.core.identity.protocols import HubProtocol, normalize_protocol
from thalovant.shell.bus_handlers import BusTransport, HandlerBook, WatchedListeners, is_bus_transport
from thalovant.shell.bus_transport import BusBackend
from thalovant.shell.client_doctor import DoctorClient
from thalovant.shell.engine import ClientEngine, EngineBackend
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.keys import NoiseKeyFile
from thalovant.shell.links.epoch import Endpoint, Timeouts
from thalovant.shell.listeners import ListenerRegistry
from thalovant.shell.memory_link import LinkLevelTransport, MemoryBackend
from thalovant.shell.recording import TraceSink

__all__ = ["engine_for", "own_links", "patched_transport", "planning_inputs", "transport_doctor", "transport_kind"]

#: Where a transport client "is" when its identity has no endpoint for the protocol (never dialled).
_STAND_IN = {"wss": "wss://transport.invalid", "https": "https://transport.invalid", "mqtt": "mqtt://transport.invalid"}
_STAND_IN_BROKER = MqttBrokerCredentials(endpoint="mqtt://transport.invalid", topic_prefix="hivemind/transport")


def transport_kind(transport: object) -> Literal["link", "bus"]:
    """``"link"`` for an in-memory network (``attach`` and ``bind``), ``"bus"`` for 0.4.7's duck type.

    Raises:
        TypeError: ``transport`` is neither.
    """
    if callable(getattr(transport, "attach", None)) and callable(getattr(transport, "bind", None)):
        return "link"
    if is_bus_transport(transport):
        return "bus"
    raise TypeError(
        "transport must be a thalovant.testing.MemoryHub or have connect, disconnect, on_mycroft, "
        "remove_mycroft, emit_event, healthcheck, is_connected and last_error"
    )


class _Unchecked:
    """An identity planned without endpoint checks: a transport replaces the network."""

    def __init__(self, identity: ThalovantIdentity) -> None:
        self._identity = identity

    @property
    def site_id(self) -> str:
        return self._identity.site_id

    @property
    def access_key(self) -> str:
        return self._identity.access_key

    @property
    def password(self) -> str | None:
        return self._identity.password

    @property
    def runtime_crypto_key(self) -> str | None:
        return self._identity.runtime_crypto_key

    @property
    def mqtt(self) -> MqttBrokerCredentials | None:
        return self._identity.mqtt or _STAND_IN_BROKER

    def enabled_protocols(self) -> tuple[HubProtocol, ...]:
        return self._identity.enabled_protocols()

    def require_protocol(self, protocol: str) -> str:
        name = normalize_protocol(protocol)
        if name == "mqtt" and self._identity.mqtt is not None:
            return self._identity.mqtt.endpoint
        return self._identity.endpoint_for(name) or _STAND_IN[name]


_PATCHABLE = {"https": "HiveMindHTTPTransport", "wss": "HiveMindWSSTransport", "mqtt": "HiveMindMQTTTransport"}
_OWN_LINKS: ContextVar[bool] = ContextVar("thalovant_own_links", default=False)


@contextmanager
def own_links() -> Iterator[None]:
    """Clients built inside this block ignore patched transport classes (:func:`patched_transport`).

    :mod:`thalovant.transport`'s adapters build their inner client in it: a patched class that
    subclasses one of them would otherwise build itself again, without end.
    """
    token = _OWN_LINKS.set(True)
    try:
        yield
    finally:
        _OWN_LINKS.reset(token)


def patched_transport(
    identity: ThalovantIdentity, protocol: str, useragent: str, timeouts: tuple[float, float, float]
) -> object | None:
    """The transport 0.4.7 code asked for by patching ``thalovant.client.HiveMind*Transport``, or None.

    A client without ``transport=`` calls this once it knows its protocol. When ``thalovant.client``
    is loaded and its class for ``protocol`` is not the one it shipped (``SHIPPED_TRANSPORTS``), the
    replacement is built with 0.4.7's call: ``cls(identity, useragent=..., connect_timeout=...,
    handshake_timeout=..., send_timeout=...)``. Otherwise None: the client uses its own links. (Nothing
    is imported: a module nobody imported cannot have been patched.) Inside :func:`own_links`: None.

    Args:
        identity: the client's identity.
        protocol: the protocol the client chose.
        useragent: the client's user agent.
        timeouts: ``(connect_timeout, handshake_timeout, send_timeout)``.
    """
    module = sys.modules.get("thalovant.client")
    name = _PATCHABLE.get(protocol)
    if module is None or name is None or _OWN_LINKS.get():
        return None
    current = getattr(module, name, None)
    if current is None or current is getattr(module, "SHIPPED_TRANSPORTS", {}).get(name):
        return None
    connect, handshake, send = timeouts
    made: object = current(
        identity, useragent=useragent, connect_timeout=connect, handshake_timeout=handshake, send_timeout=send
    )
    return made


def planning_inputs(
    identity: ThalovantIdentity, transport: object | None, key_file: NoiseKeyFile
) -> tuple[PlannedIdentity, NoiseKeyFile]:
    """The identity a client plans with and where its Noise key lives.

    Without a transport: both unchanged. With one: the identity without endpoint checks, and the key in
    memory unless a key file was named (a test never writes to ``$XDG_STATE_HOME``).

    Raises:
        TypeError: ``transport`` is not a transport (see :func:`transport_kind`).
    """
    if transport is None:
        return identity, key_file
    transport_kind(transport)
    return _Unchecked(identity), (False if key_file is None else key_file)


def engine_for(
    transport: object | None,
    plan: ClientPlan,
    endpoint: Callable[[], Endpoint],
    identity: ThalovantIdentity,
    entropy: Any,
    trace: TraceSink | None,
    waits: tuple[float, float],
) -> tuple[ListenerRegistry, ClientEngine]:
    """The listeners and the engine of a client with ``plan`` (over ``transport`` when one is given).

    Args:
        transport: the client's ``transport=`` (None: the network).
        plan: the client's plan.
        endpoint: where the client dials (called only without a transport).
        identity: the client's identity (its secrets are kept out of transport errors).
        entropy: the machine's random bytes.
        trace: the client's ``trace=``.
        waits: the client's ``(connect_timeout, send_timeout)``.

    Raises:
        TypeError: ``transport`` is not a transport.
        ThalovantUnsupportedProtocolError: ``trace=`` with a bus-level transport (nothing to record).
    """
    connect, send = waits
    timeouts = Timeouts(connect=connect, send=send, http_request=send, liveness=plan.config.liveness)
    backend: EngineBackend | None = None
    listeners: ListenerRegistry
    if transport is None:
        listeners = ListenerRegistry()
    elif transport_kind(transport) == "link":
        listeners, backend = ListenerRegistry(), MemoryBackend(cast(LinkLevelTransport, transport))
    else:
        if trace is not None:
            raise ThalovantUnsupportedProtocolError(
                "trace= needs the core connection, which a bus-level transport= replaces"
            )
        book = HandlerBook(cast(BusTransport, transport))  # transport_kind checked the methods
        secrets = secret_texts(identity, plan.config.useragent)
        listeners, backend = WatchedListeners(book), BusBackend(book, timeouts=timeouts, secrets=secrets)
    engine = ClientEngine(
        config=plan.config,
        endpoint=endpoint() if backend is None else None,
        timeouts=timeouts,
        listeners=listeners,
        entropy=entropy,
        trace=trace,
        backend=backend,
    )
    return listeners, engine


class _TransportClient(DoctorClient, Protocol):
    @property
    def identity(self) -> ThalovantIdentity: ...

    @property
    def useragent(self) -> str: ...


async def transport_doctor(client: _TransportClient, transport: object, timeout: float) -> ThalovantDoctorReport:
    """The doctor of a client with ``transport=``: thalovant 0.4.7's four checks and identity summary.

    ``identity``, ``endpoint`` (what the identity names; never dialled), ``connect`` (through the
    transport; over an in-memory hub this includes the handshake) and ``transport`` (its health). DNS,
    TCP, TLS and admission do not apply: the transport replaces the network. A client that was not
    connected is connected for the check (within its ``connect_timeout``) and closed again; ``timeout``
    bounds the health check. After a failure the later checks are skipped. Never raises for a failing
    check; no secret reaches the report.
    """
    name, identity = type(transport).__name__, client.identity
    try:
        where = f"{without_userinfo(identity.endpoint_base())} (not dialled: the client talks through {name})"
    except Exception:  # no default_master: nothing to name
        where = f"no network: the client talks through {name}"
    checks = [
        transport_check("identity", CheckStatus.OK, f"site_id={identity.site_id}"),
        transport_check("endpoint", CheckStatus.OK, where),
    ]
    was_connected = client.connected

    async def connect() -> str:
        if not was_connected:  # bounded by the client's connect_timeout (its task groups outlive a scope here)
            await client.connect()
        return f"connected through {name}"

    async def health() -> str:
        with anyio.fail_after(timeout):
            found: ThalovantHealth = await client.healthcheck()
        if not found.ok:
            raise ConnectionError(found.last_error or "the transport is not alive")
        return f"{client.protocol} over {name} alive"

    try:
        checks += await _probes((("connect", connect), ("transport", health)))
    finally:
        if not was_connected:
            await client.close()
    report = ThalovantDoctorReport(identity_summary_047(identity), tuple(checks), client.protocol)
    return scrub_report(report, secret_texts(identity, client.useragent))


async def _probes(probes: Sequence[tuple[str, Callable[[], Awaitable[str]]]]) -> list[ThalovantDoctorCheck]:
    """Run ``probes`` in order; after a failure the rest are skipped."""
    checks: list[ThalovantDoctorCheck] = []
    failed = False
    for name, probe in probes:
        if failed:
            checks.append(transport_check(name, CheckStatus.SKIPPED, "an earlier check failed"))
            continue
        started = anyio.current_time()
        try:
            detail = await probe()
        except Exception as exc:
            failed = True
            why = scrub_text(f"{type(exc).__name__}: {exc}")
            checks.append(transport_check(name, CheckStatus.FAILED, why, _ms(started)))
        else:
            checks.append(transport_check(name, CheckStatus.OK, detail, _ms(started)))
    return checks


def _ms(started: float) -> float:
    return (anyio.current_time() - started) * 1000.0
