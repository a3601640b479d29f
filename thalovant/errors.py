"""Public exceptions. Catch these; nothing from anyio, h11, wsproto or paho leaks out.

::

    ThalovantError
    ├── ThalovantIdentityError (ValueError)      bad identity; .problems lists each field
    │   └── ThalovantUnsupportedProtocolError    protocol unknown or not usable
    ├── ThalovantArgumentError (ValueError)      bad constructor argument (range, choice); .argument
    │   ├── ThalovantArgumentTypeError (TypeError)  an argument of the wrong type
    │   └── ThalovantPayloadTooLargeError         a binary payload over the cap (.size, .limit)
    ├── ThalovantConnectionError (ConnectionError)  unreachable / link lost; .retryable
    │   ├── ThalovantHandshakeError
    │   │   ├── ThalovantHubKeyChangedError       hub 5.x presented another key than the pinned one
    │   │   └── ThalovantAuthenticationError      credentials refused (never retried)
    │   │       └── ThalovantClientKeyRejectedError  hub 5.x pinned another client key
    │   └── ThalovantProxyError                   the HTTP proxy failed or refused (.proxy, .status_code)
    │       └── ThalovantProxyAuthenticationError  the proxy refused its credentials (407; also an
    │                                              authentication error)
    ├── ThalovantTimeoutError (TimeoutError)      connect / handshake / send / reply wait
    ├── ThalovantRuntimeError (RuntimeError)      hub answered with a failure
    │   └── ThalovantPolicyDenied                 refused by policy (.code, .reason, quota)
    ├── ThalovantBinaryUnsupportedError (NotImplementedError)  no binary frames on this link (HTTP, hub 4.x)
    ├── ThalovantProtocolError
    │   ├── LocalProtocolError                    caller misuse of a core machine (a bug)
    │   └── RemoteProtocolError                   hub sent invalid data (.problem)
    └── ThalovantAPIError                         control plane (.status_code, .code, .detail)
"""

# The public tree is the core's, re-exported unchanged (the core raises these very classes).
from thalovant.core.errors import *  # noqa: F403
from thalovant.core.errors import __all__ as __all__
