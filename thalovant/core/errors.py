"""The exception tree, defined in the core so pure code can raise it.

`thalovant.errors` re-exports every name here; users import from there.
Only *caller misuse* and the public identity constructors raise from the
core. Bad data from the network never raises: it becomes machine outputs,
which the shell turns into these exceptions in one place.

Rule: no message built here may contain a secret value. Messages name the
field that is wrong (``mqtt.password``), never what it contained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ThalovantError(Exception):
    """Base class of every error thalovant raises on purpose."""


class ThalovantIdentityError(ThalovantError, ValueError):
    """The identity (file, environment or mapping) is missing or invalid.

    Attributes:
        problems: one ``(field_path, message)`` pair per problem found. All
            problems are collected at once, so a user can fix them in one go.
    """

    def __init__(self, problems: Sequence[tuple[str, str]] | str, *, origin: str = "identity") -> None:
        if isinstance(problems, str):
            problems = (("", problems),)
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        self.origin = origin
        lines = [f"{path}: {msg}" if path else msg for path, msg in self.problems]
        if len(lines) == 1:
            text = f"invalid {origin}: {lines[0]}"
        else:
            text = f"invalid {origin} ({len(lines)} problems): " + "; ".join(lines)
        super().__init__(text)


class ThalovantArgumentError(ThalovantError, ValueError):
    """An argument of a public constructor is out of range or not one of its choices.

    Raised at once by the constructor (never later, from ``connect()``). The message names the
    argument and what is wrong with it, never its value.

    Attributes:
        argument: the name of the refused argument (``"connect_timeout"``).
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


class ThalovantArgumentTypeError(ThalovantArgumentError, TypeError):
    """An argument of a public constructor has the wrong type (also a ``TypeError``)."""


class ThalovantPayloadTooLargeError(ThalovantArgumentError):
    """A binary payload to send is larger than the client's cap (``max_binary_bytes``).

    Raised before anything is sent. The message names the size and the cap, never the content.

    Attributes:
        size: the payload's size in bytes.
        limit: the cap in bytes.
    """

    def __init__(self, argument: str, *, size: int, limit: int) -> None:
        super().__init__(argument, f"{size} bytes is over the cap of {limit} bytes")
        self.size = size
        self.limit = limit


class ThalovantBinaryUnsupportedError(ThalovantError, NotImplementedError):
    """This connection cannot carry binary frames (HTTP polling to a hub 4.x: its form decoder takes text only).

    Raised before anything is sent; use WebSocket or MQTT (or a hub 5.x) to send audio and files.

    Attributes:
        protocol: the client's transport (``"https"``).
    """

    def __init__(self, message: str, *, protocol: str) -> None:
        super().__init__(message)
        self.protocol = protocol


class ThalovantUnsupportedProtocolError(ThalovantIdentityError):
    """The requested protocol is unknown or not usable with this identity."""

    def __init__(self, message: str) -> None:
        super().__init__((("protocol", message),), origin="protocol choice")


class ThalovantConnectionError(ThalovantError, ConnectionError):
    """The hub could not be reached, or the link to it was lost.

    Attributes:
        retryable: whether reconnecting may help (False for refused
            credentials, for example).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ThalovantHandshakeError(ThalovantConnectionError):
    """The encryption handshake with the hub failed."""


class ThalovantAuthenticationError(ThalovantHandshakeError):
    """The hub refused the credentials (wrong access key, password or key)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class ThalovantHubKeyChangedError(ThalovantHandshakeError):
    """The hub (5.x) presented another Noise static key than the one pinned for it; never retried.

    Either the hub was reinstalled or got a new identity (then accept the new key: forget the pin,
    ``client.forget_hub_key()`` or ``thalovant identity forget-hub-key``, and connect again), or another
    machine answers for the hub. The message names the endpoint and both key fingerprints (public keys,
    no secret).

    Attributes:
        endpoint: the hub as ``scheme://host:port`` (no query, no credentials).
        pinned: the fingerprint (``SHA256:...``) of the pinned key.
        presented: the fingerprint of the key the hub presented.
    """

    def __init__(self, message: str, *, endpoint: str, pinned: str, presented: str) -> None:
        super().__init__(message, retryable=False)
        self.endpoint = endpoint
        self.pinned = pinned
        self.presented = presented


class ThalovantClientKeyRejectedError(ThalovantAuthenticationError):
    """The hub (5.x) refused this client's Noise static key: it pinned another one for this access key.

    The client's key file was lost or replaced (a new machine, ``noise_key_file=False``, another
    ``noise_key_file``). Use the original key file, or have the hub operator clear the pin
    (``hivemind-core reset-noise-pin <client id>``) so the hub pins the new key. Never retried.

    Attributes:
        endpoint: the hub as ``scheme://host:port`` (no query, no credentials).
        client_key: the fingerprint (``SHA256:...``) of the static key this client presented.
    """

    def __init__(self, message: str, *, endpoint: str, client_key: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.client_key = client_key


class ThalovantProxyError(ThalovantConnectionError):
    """The HTTP proxy in front of the hub could not open a tunnel to it.

    The proxy was unreachable, answered the ``CONNECT`` with an error status, or did not speak
    HTTP. The message names the proxy by scheme, host and port: never its user or password.

    Attributes:
        proxy: the proxy as ``http://host:port`` (no credentials), or the environment variable
            that holds an unusable proxy URL.
        status_code: the proxy's HTTP status, or None when it gave none.
    """

    def __init__(self, message: str, *, proxy: str, status_code: int | None = None, retryable: bool = True) -> None:
        ThalovantConnectionError.__init__(self, message, retryable=retryable)  # not super(): see the 407 subclass
        self.proxy = proxy
        self.status_code = status_code


class ThalovantProxyAuthenticationError(ThalovantProxyError, ThalovantAuthenticationError):
    """The proxy, not the hub, refused the credentials (HTTP 407); never retried.

    Attributes:
        proxy: the proxy as ``http://host:port`` (no credentials).
        status_code: 407.
    """

    def __init__(self, message: str, *, proxy: str, status_code: int | None = 407) -> None:
        ThalovantProxyError.__init__(self, message, proxy=proxy, status_code=status_code, retryable=False)


class ThalovantTimeoutError(ThalovantError, TimeoutError):
    """A wait ran out of time (connect, handshake, send or reply)."""


class ThalovantRuntimeError(ThalovantError, RuntimeError):
    """The hub answered, but reported a failure."""


class ThalovantPolicyDenied(ThalovantRuntimeError):
    """The hub (or a skill) refused the message by policy.

    Attributes carry only clean, non-blank strings, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        denied_type: str | None = None,
        code: str | None = None,
        reason: str | None = None,
        allowed: tuple[str, ...] = (),
        period: str | None = None,
        limit: int | None = None,
        used: int | None = None,
        reset_after: float | None = None,
        event: Any = None,
    ) -> None:
        super().__init__(message)
        self.denied_type = denied_type
        self.code = code
        self.reason = reason
        self.allowed = allowed
        self.period = period
        self.limit = limit
        self.used = used
        self.reset_after = reset_after
        self.event = event


class ThalovantProtocolError(ThalovantError):
    """Base of protocol violations, by us (local) or by the hub (remote)."""


class LocalProtocolError(ThalovantProtocolError):
    """The caller asked a machine to do something illegal in its state.

    This is a bug in the calling code; the machine's state is unchanged.
    """


class RemoteProtocolError(ThalovantProtocolError):
    """The hub sent data that breaks the protocol.

    Attributes:
        problem: the core's problem value describing what was wrong.
    """

    def __init__(self, message: str, *, problem: object = None) -> None:
        super().__init__(message)
        self.problem = problem


class ThalovantAPIError(ThalovantError):
    """A control-plane API request failed.

    Attributes:
        status_code: HTTP status, or None when no response arrived.
        code: the problem ``code`` from the body, when the API sent one.
        detail: at most 200 characters on one line; never the raw body.
        retry_after: seconds from ``Retry-After``, when present.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


__all__ = [
    "LocalProtocolError",
    "RemoteProtocolError",
    "ThalovantAPIError",
    "ThalovantArgumentError",
    "ThalovantArgumentTypeError",
    "ThalovantAuthenticationError",
    "ThalovantBinaryUnsupportedError",
    "ThalovantClientKeyRejectedError",
    "ThalovantConnectionError",
    "ThalovantError",
    "ThalovantHandshakeError",
    "ThalovantHubKeyChangedError",
    "ThalovantIdentityError",
    "ThalovantPayloadTooLargeError",
    "ThalovantPolicyDenied",
    "ThalovantProtocolError",
    "ThalovantProxyAuthenticationError",
    "ThalovantProxyError",
    "ThalovantRuntimeError",
    "ThalovantTimeoutError",
    "ThalovantUnsupportedProtocolError",
]
