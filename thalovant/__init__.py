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
}

if TYPE_CHECKING:
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
