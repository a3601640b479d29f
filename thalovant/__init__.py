"""thalovant: a client SDK and CLI for HiveMind-protocol hubs.

Names are imported lazily (PEP 562) so that ``import thalovant`` stays cheap:
the network stack loads only when a client is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from thalovant._version import __version__

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ThalovantDoctorReport": "thalovant.core.doctor",
    "ThalovantDoctorCheck": "thalovant.core.doctor",
    "run_doctor": "thalovant.shell.doctor",
    "ThalovantAgent": "thalovant.shell.sync.agent",
    "AsyncThalovantAgent": "thalovant.shell.agent",
    "ThalovantConversation": "thalovant.shell.sync.conversation",
    "AsyncThalovantConversation": "thalovant.shell.conversation",
    "AsyncThalovantClient": "thalovant.shell.client",
    "ThalovantClient": "thalovant.shell.sync.client",
    "ThalovantHealth": "thalovant.core.client.health",
    "ThalovantConnectionInfo": "thalovant.core.client.info",
    "ThalovantSubscription": "thalovant.shell.listeners",
    "ThalovantListener": "thalovant.shell.listeners",
    "EventHandler": "thalovant.shell.listeners",
    "EventPredicate": "thalovant.shell.listeners",
    # errors
    "ThalovantError": "thalovant.errors",
    "ThalovantIdentityError": "thalovant.errors",
    "ThalovantUnsupportedProtocolError": "thalovant.errors",
    "ThalovantArgumentError": "thalovant.errors",
    "ThalovantProxyError": "thalovant.errors",
    "ThalovantProxyAuthenticationError": "thalovant.errors",
    "ThalovantArgumentTypeError": "thalovant.errors",
    "ThalovantPayloadTooLargeError": "thalovant.errors",
    "ThalovantBinaryUnsupportedError": "thalovant.errors",
    "ThalovantConnectionError": "thalovant.errors",
    "ThalovantHandshakeError": "thalovant.errors",
    "ThalovantAuthenticationError": "thalovant.errors",
    "ThalovantHubKeyChangedError": "thalovant.errors",
    "ThalovantClientKeyRejectedError": "thalovant.errors",
    "ThalovantTimeoutError": "thalovant.errors",
    "ThalovantRuntimeError": "thalovant.errors",
    "ThalovantPolicyDenied": "thalovant.errors",
    "ThalovantProtocolError": "thalovant.errors",
    "LocalProtocolError": "thalovant.errors",
    "RemoteProtocolError": "thalovant.errors",
    "ThalovantAPIError": "thalovant.errors",
    "ThalovantIdentity": "thalovant.shell.identity_io",
    "ThalovantSecurityWarning": "thalovant.shell.identity_io",
    "ThalovantIdentityWarning": "thalovant.shell.identity_io",
    "MqttBrokerCredentials": "thalovant.core.identity.mqtt",
    "MqttTopicSet": "thalovant.core.links.mqtt_topics",
    "mqtt_topics_for_identity": "thalovant.core.client.topics",
    "HiveMindMQTTTransport": "thalovant.transport",
    "HubProtocol": "thalovant.core.identity.protocols",
    "HubProtocolSettings": "thalovant.core.identity.protocols",
    "HubDataPlaneEndpoints": "thalovant.core.identity.protocols",
    "SelectedHubEndpoint": "thalovant.core.identity.protocols",
    "select_data_plane_endpoint": "thalovant.core.identity.protocols",
    "DEFAULT_PROTOCOL_PREFERENCE": "thalovant.core.identity.protocols",
    "ThalovantEvent": "thalovant.core.bus.events",
    "EventFilter": "thalovant.core.bus.events",
    "ThalovantReply": "thalovant.core.bus.reply",
    "ThalovantBinary": "thalovant.core.bus.binary",
    "ThalovantDisplayItem": "thalovant.core.bus.display",
    "strip_ssml": "thalovant.core.bus.display",
    "build_client_context": "thalovant.core.bus.outbound",
    "build_location": "thalovant.core.bus.hints",
    "request_context": "thalovant.core.bus.hints",
    "ThalovantUnansweredError": "thalovant.core.bus.failures",
    "THALOVANT_CLAIMED_META_KEY": "thalovant.core.bus.reply",
    "EVENT_RECOGNIZER_LOOP_UTTERANCE": "thalovant.core.bus.events",
    "EVENT_SPEAK": "thalovant.core.bus.events",
    "EVENT_UTTERANCE_HANDLED": "thalovant.core.bus.events",
    "EVENT_INTENT_FAILURE": "thalovant.core.bus.events",
    "EVENT_INTENT_UNMATCHED": "thalovant.core.bus.events",
    "EVENT_POLICY_DENIED": "thalovant.core.bus.events",
    "ThalovantControlPlane": "thalovant.shell.sync.control_plane",
    "AsyncThalovantControlPlane": "thalovant.shell.control_plane",
    "BootstrapIdentityResult": "thalovant.shell.control_plane",
    # mesh (hive) frames and QUERY
    **dict.fromkeys(
        [
            "ThalovantHiveMessage",
            "ThalovantHiveRefusedError",
            "HIVE_BROADCAST",
            "HIVE_PROPAGATE",
            "HIVE_ESCALATE",
            "HIVE_INTERCOM",
            "HIVE_RENDEZVOUS",
            "HIVE_QUERY",
        ],
        "thalovant.core.bus.hive",
    ),
    **dict.fromkeys(
        ["ThalovantQueryResult", "ThalovantQueryRefusedError", "ThalovantQueryNotSupportedError"],
        "thalovant.core.bus.query",
    ),
    "ThalovantHiveSubscription": "thalovant.shell.mesh_router",
}

if TYPE_CHECKING:
    from thalovant.core.bus.binary import ThalovantBinary
    from thalovant.core.bus.display import ThalovantDisplayItem, strip_ssml
    from thalovant.core.bus.events import (
        EVENT_INTENT_FAILURE,
        EVENT_INTENT_UNMATCHED,
        EVENT_POLICY_DENIED,
        EVENT_RECOGNIZER_LOOP_UTTERANCE,
        EVENT_SPEAK,
        EVENT_UTTERANCE_HANDLED,
        EventFilter,
        ThalovantEvent,
    )
    from thalovant.core.bus.failures import ThalovantUnansweredError
    from thalovant.core.bus.hints import build_location, request_context
    from thalovant.core.bus.hive import (
        HIVE_BROADCAST,
        HIVE_ESCALATE,
        HIVE_INTERCOM,
        HIVE_PROPAGATE,
        HIVE_QUERY,
        HIVE_RENDEZVOUS,
        ThalovantHiveMessage,
        ThalovantHiveRefusedError,
    )
    from thalovant.core.bus.outbound import build_client_context
    from thalovant.core.bus.query import (
        ThalovantQueryNotSupportedError,
        ThalovantQueryRefusedError,
        ThalovantQueryResult,
    )
    from thalovant.core.bus.reply import THALOVANT_CLAIMED_META_KEY, ThalovantReply
    from thalovant.core.client.health import ThalovantHealth
    from thalovant.core.client.info import ThalovantConnectionInfo
    from thalovant.core.client.topics import mqtt_topics_for_identity
    from thalovant.core.doctor import ThalovantDoctorCheck, ThalovantDoctorReport
    from thalovant.core.identity.mqtt import MqttBrokerCredentials
    from thalovant.core.identity.protocols import (
        DEFAULT_PROTOCOL_PREFERENCE,
        HubDataPlaneEndpoints,
        HubProtocol,
        HubProtocolSettings,
        SelectedHubEndpoint,
        select_data_plane_endpoint,
    )
    from thalovant.core.links.mqtt_topics import MqttTopicSet
    from thalovant.errors import (
        LocalProtocolError,
        RemoteProtocolError,
        ThalovantAPIError,
        ThalovantArgumentError,
        ThalovantArgumentTypeError,
        ThalovantAuthenticationError,
        ThalovantBinaryUnsupportedError,
        ThalovantClientKeyRejectedError,
        ThalovantConnectionError,
        ThalovantError,
        ThalovantHandshakeError,
        ThalovantHubKeyChangedError,
        ThalovantIdentityError,
        ThalovantPayloadTooLargeError,
        ThalovantPolicyDenied,
        ThalovantProtocolError,
        ThalovantProxyAuthenticationError,
        ThalovantProxyError,
        ThalovantRuntimeError,
        ThalovantTimeoutError,
        ThalovantUnsupportedProtocolError,
    )
    from thalovant.shell.agent import AsyncThalovantAgent
    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.control_plane import AsyncThalovantControlPlane, BootstrapIdentityResult
    from thalovant.shell.conversation import AsyncThalovantConversation
    from thalovant.shell.doctor import run_doctor
    from thalovant.shell.identity_io import ThalovantIdentity, ThalovantIdentityWarning, ThalovantSecurityWarning
    from thalovant.shell.listeners import EventHandler, EventPredicate
    from thalovant.shell.listeners import Listener as ThalovantListener
    from thalovant.shell.listeners import Subscription as ThalovantSubscription
    from thalovant.shell.mesh_router import HiveSubscription as ThalovantHiveSubscription
    from thalovant.shell.sync.agent import ThalovantAgent
    from thalovant.shell.sync.client import ThalovantClient
    from thalovant.shell.sync.control_plane import ThalovantControlPlane
    from thalovant.shell.sync.conversation import ThalovantConversation
    from thalovant.transport import HiveMindMQTTTransport


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'thalovant' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = ["__version__", *_EXPORTS]
