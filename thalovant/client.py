"""thalovant 0.4.7's ``thalovant.client`` module, kept so that 0.4.7 imports and test patches work.

New code imports from ``thalovant`` itself. This module re-exports the clients and the names 0.4.7
had here, and it is the place 0.4.7 users patch to swap a transport class::

    monkeypatch.setattr("thalovant.client.HiveMindMQTTTransport", FakeMQTTTransport)
    client = ThalovantClient(identity, protocol="mqtt")   # talks through a FakeMQTTTransport

When one of :data:`HiveMindHTTPTransport`, :data:`HiveMindWSSTransport` or
:data:`HiveMindMQTTTransport` no longer is the class shipped here, a client built without
``transport=`` for that protocol builds one with 0.4.7's call, ``cls(identity, useragent=...,
connect_timeout=..., handshake_timeout=..., send_timeout=...)``, and talks through it as through any
``transport=`` (``thalovant.shell.seam``). Unpatched, a client uses thalovant's own links, as if this
module did not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thalovant.core.bus.events import (
    EVENT_INTENT_FAILURE,
    EVENT_POLICY_DENIED,
    EVENT_RECOGNIZER_LOOP_UTTERANCE,
    EVENT_SPEAK,
    EVENT_UTTERANCE_HANDLED,
    ThalovantEvent,
)
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client.health import ThalovantHealth
from thalovant.core.client.plan import DEFAULT_USERAGENT
from thalovant.core.doctor import ThalovantDoctorCheck, ThalovantDoctorReport
from thalovant.core.identity.protocols import HubProtocol
from thalovant.core.wire.codec import bus_message
from thalovant.core.wire.message import BusMessage
from thalovant.errors import (
    ThalovantConnectionError,
    ThalovantRuntimeError,
    ThalovantTimeoutError,
    ThalovantUnsupportedProtocolError,
)
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.conversation import AsyncThalovantConversation
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.listeners import EventHandler, EventPredicate, ThalovantSubscription
from thalovant.shell.sync.client import ThalovantClient
from thalovant.shell.sync.conversation import ThalovantConversation
from thalovant.transport import HiveMindHTTPTransport, HiveMindMQTTTransport, HiveMindWSSTransport, Transport

__all__ = [
    "DEFAULT_USERAGENT",
    "EVENT_INTENT_FAILURE",
    "EVENT_POLICY_DENIED",
    "EVENT_RECOGNIZER_LOOP_UTTERANCE",
    "EVENT_SPEAK",
    "EVENT_UTTERANCE_HANDLED",
    "SHIPPED_TRANSPORTS",
    "AsyncThalovantClient",
    "AsyncThalovantConversation",
    "EventHandler",
    "EventPredicate",
    "HiveMindHTTPTransport",
    "HiveMindMQTTTransport",
    "HiveMindWSSTransport",
    "HubProtocol",
    "ThalovantClient",
    "ThalovantConnectionError",
    "ThalovantConversation",
    "ThalovantDoctorCheck",
    "ThalovantDoctorReport",
    "ThalovantEvent",
    "ThalovantHealth",
    "ThalovantIdentity",
    "ThalovantReply",
    "ThalovantRuntimeError",
    "ThalovantSubscription",
    "ThalovantTimeoutError",
    "ThalovantUnsupportedProtocolError",
    "Transport",
]

#: The transport classes this module ships, by name: a name bound to anything else here was patched.
SHIPPED_TRANSPORTS: Mapping[str, type] = {
    "HiveMindHTTPTransport": HiveMindHTTPTransport,
    "HiveMindWSSTransport": HiveMindWSSTransport,
    "HiveMindMQTTTransport": HiveMindMQTTTransport,
}


def _runtime_crypto_key(raw_crypto_key: str | None) -> str | None:
    """0.4.7's private helper: the pre-shared key as the hub uses it (stripped, first 16 characters).

    Returns None for None, a non-string or a blank key. Never logs or shows the key.
    """
    if not isinstance(raw_crypto_key, str):
        return None
    stripped = raw_crypto_key.strip()
    return stripped[:16] or None


def _runtime_bus_context(
    raw_context: Mapping[str, Any] | None, *, useragent: str, session_id: str, site_id: str | None
) -> dict[str, Any]:
    """0.4.7's private helper: the context a bus message gets on its way to the hub.

    ``source`` and ``platform`` (``useragent``) and ``destination`` ("HiveMind") when absent; the
    session gets ``session_id`` unless it names its own (other than ``"default"``) and ``site_id``
    when absent. The same rules thalovant's own envelope applies (``thalovant.core.wire.codec``).

    Raises:
        LocalProtocolError: ``session_id`` is empty or ``"default"``.
    """
    message = BusMessage(type="thalovant.context", data={}, context=dict(raw_context or {}))
    payload = bus_message(message, session_id=session_id, site_id=site_id, useragent=useragent).payload
    context = payload.get("context") if isinstance(payload, dict) else None
    return dict(context) if isinstance(context, dict) else {}
