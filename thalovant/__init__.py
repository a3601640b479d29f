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
    "ThalovantAgent": "thalovant.shell.agent",
    "AsyncThalovantAgent": "thalovant.shell.agent",
    "ThalovantConversation": "thalovant.shell.conversation",
    "AsyncThalovantConversation": "thalovant.shell.conversation",
    "AsyncThalovantClient": "thalovant.shell.client",
    "ThalovantClient": "thalovant.shell.sync",
    "ThalovantHealth": "thalovant.core.health",
    "ThalovantSubscription": "thalovant.shell.listeners",
    "ThalovantListener": "thalovant.shell.listeners",
    # errors
    "ThalovantError": "thalovant.errors",
    "ThalovantIdentityError": "thalovant.errors",
    "ThalovantUnsupportedProtocolError": "thalovant.errors",
    "ThalovantConnectionError": "thalovant.errors",
    "ThalovantHandshakeError": "thalovant.errors",
    "ThalovantAuthenticationError": "thalovant.errors",
    "ThalovantTimeoutError": "thalovant.errors",
    "ThalovantRuntimeError": "thalovant.errors",
    "ThalovantPolicyDenied": "thalovant.errors",
    "ThalovantProtocolError": "thalovant.errors",
    "LocalProtocolError": "thalovant.errors",
    "RemoteProtocolError": "thalovant.errors",
    "ThalovantAPIError": "thalovant.errors",
    "ThalovantIdentity": "thalovant.shell.identity_io",
    "ThalovantSecurityWarning": "thalovant.shell.identity_io",
    "MqttBrokerCredentials": "thalovant.core.identity_mqtt",
    "HubProtocol": "thalovant.core.identity_protocols",
    "HubProtocolSettings": "thalovant.core.identity_protocols",
    "HubDataPlaneEndpoints": "thalovant.core.identity_protocols",
    "SelectedHubEndpoint": "thalovant.core.identity_protocols",
    "select_data_plane_endpoint": "thalovant.core.identity_protocols",
    "DEFAULT_PROTOCOL_PREFERENCE": "thalovant.core.identity_protocols",
    "ThalovantEvent": "thalovant.core.events",
    "EventFilter": "thalovant.core.events",
    "ThalovantReply": "thalovant.core.events_reply",
    "ThalovantDisplayItem": "thalovant.core.display",
    "strip_ssml": "thalovant.core.display",
    "build_client_context": "thalovant.core.context",
    "EVENT_RECOGNIZER_LOOP_UTTERANCE": "thalovant.core.events",
    "EVENT_SPEAK": "thalovant.core.events",
    "EVENT_UTTERANCE_HANDLED": "thalovant.core.events",
    "EVENT_INTENT_FAILURE": "thalovant.core.events",
    "EVENT_INTENT_UNMATCHED": "thalovant.core.events",
    "EVENT_POLICY_DENIED": "thalovant.core.events",
    "ThalovantControlPlane": "thalovant.shell.control_plane",
    "AsyncThalovantControlPlane": "thalovant.shell.control_plane",
    "BootstrapIdentityResult": "thalovant.shell.control_plane",
}

if TYPE_CHECKING:
    from thalovant.core.context import build_client_context
    from thalovant.core.display import ThalovantDisplayItem, strip_ssml
    from thalovant.core.doctor import ThalovantDoctorCheck, ThalovantDoctorReport
    from thalovant.core.events import (
        EVENT_INTENT_FAILURE,
        EVENT_INTENT_UNMATCHED,
        EVENT_POLICY_DENIED,
        EVENT_RECOGNIZER_LOOP_UTTERANCE,
        EVENT_SPEAK,
        EVENT_UTTERANCE_HANDLED,
        EventFilter,
        ThalovantEvent,
    )
    from thalovant.core.events_reply import ThalovantReply
    from thalovant.core.health import ThalovantHealth
    from thalovant.core.identity_mqtt import MqttBrokerCredentials
    from thalovant.core.identity_protocols import (
        DEFAULT_PROTOCOL_PREFERENCE,
        HubDataPlaneEndpoints,
        HubProtocol,
        HubProtocolSettings,
        SelectedHubEndpoint,
        select_data_plane_endpoint,
    )
    from thalovant.errors import (
        LocalProtocolError,
        RemoteProtocolError,
        ThalovantAPIError,
        ThalovantAuthenticationError,
        ThalovantConnectionError,
        ThalovantError,
        ThalovantHandshakeError,
        ThalovantIdentityError,
        ThalovantPolicyDenied,
        ThalovantProtocolError,
        ThalovantRuntimeError,
        ThalovantTimeoutError,
        ThalovantUnsupportedProtocolError,
    )
    from thalovant.shell.agent import AsyncThalovantAgent, ThalovantAgent
    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.control_plane import AsyncThalovantControlPlane, BootstrapIdentityResult, ThalovantControlPlane
    from thalovant.shell.conversation import AsyncThalovantConversation, ThalovantConversation
    from thalovant.shell.doctor import run_doctor
    from thalovant.shell.identity_io import ThalovantIdentity, ThalovantSecurityWarning
    from thalovant.shell.listeners import Listener as ThalovantListener
    from thalovant.shell.listeners import Subscription as ThalovantSubscription
    from thalovant.shell.sync import ThalovantClient


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
