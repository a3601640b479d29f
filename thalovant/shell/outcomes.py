"""The one place where what the core reported becomes a public exception: :func:`raise_for`.

The client waits for the :class:`~thalovant.core.client.connection.Connection` machine to end
each call, then wraps what it got in one of three outcomes, which add what an error message
needs (the seconds waited, the protocol):

==================  ========================================================================
outcome             ``result`` (the core's answer; ``None``: none came before the guard)
==================  ========================================================================
``SendEnded``       ``SendDone`` (success) or ``SendError``
``AskEnded``        ``AskFinished`` (success), ``AskFailed``, or ``SendError`` (client closed)
``ConnectEnded``    the ``GAVE_UP`` status, or None when ``connect_timeout`` ran out
==================  ========================================================================

:func:`error_for` returns the exception (listeners are failed with it, not raised);
:func:`raise_for` raises it. A success maps to no exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thalovant.core.client import connection as cx
from thalovant.core.client import correlate as corr
from thalovant.core.client.hub_keys import KeyStop
from thalovant.core.errors import (
    ThalovantAuthenticationError,
    ThalovantConnectionError,
    ThalovantPolicyDenied,
    ThalovantProxyAuthenticationError,
    ThalovantTimeoutError,
)
from thalovant.core.links.proxy_connect import proxy_refused_credentials
from thalovant.core.machine import Output
from thalovant.shell.hub_keys import key_error

__all__ = ["AskEnded", "ConnectEnded", "Outcome", "SendEnded", "error_for", "raise_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SendEnded:
    """How a plain send ended: ``result`` is the core's ``SendDone``/``SendError``."""

    result: Output | None
    wait: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AskEnded:
    """How an ask ended: ``AskFinished``/``AskFailed``, or ``SendError`` when the client was closed."""

    result: Output | None
    wait: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectEnded:
    """``connect()`` ended without a ready session: the core gave up (``gave_up``), or time ran out."""

    protocol: str
    timeout: float
    gave_up: cx.StatusChanged | None
    detail: str = ""
    stop: KeyStop | None = None  # the connection stopped over a Noise key (hub 5.x pinning)


Outcome = SendEnded | AskEnded | ConnectEnded


def _send_error(outcome: SendEnded) -> Exception | None:
    result = outcome.result
    if isinstance(result, cx.SendDone):
        return None
    if isinstance(result, cx.SendError):
        if result.kind == "timeout":
            return ThalovantTimeoutError(f"message not delivered: {result.reason}")
        return ThalovantConnectionError(f"message not delivered: {result.reason}", retryable=result.kind != "closed")
    return ThalovantTimeoutError(f"the transport did not take the message within {outcome.wait:g} s")


def _ask_error(outcome: AskEnded) -> Exception | None:
    result = outcome.result
    if isinstance(result, corr.AskFinished):
        return None
    if isinstance(result, corr.AskFailed):
        if result.kind == "policy_denied" and result.denial is not None:
            d = result.denial
            return ThalovantPolicyDenied(d.message(), **d.exception_fields(), event=result.reply.failure_event)
        if result.kind == "timeout":
            return ThalovantTimeoutError(f"the hub did not answer within {outcome.wait:g} s")
        if result.kind == "link_lost":
            return ThalovantConnectionError(f"the link to the hub was lost during the ask: {result.reason}")
        return ThalovantConnectionError(f"the ask ended without an answer: {result.reason or result.kind}")
    if isinstance(result, cx.SendError):
        return ThalovantConnectionError(f"the ask was not delivered: {result.reason}")
    return ThalovantTimeoutError(f"the hub did not answer within {outcome.wait:g} s")


def _connect_error(outcome: ConnectEnded) -> Exception:
    status = outcome.gave_up
    if status is not None and outcome.stop is not None:
        return key_error(outcome.stop)
    if status is not None:
        if status.auth:
            return ThalovantAuthenticationError(f"the hub refused the credentials: {status.detail}")
        refused = proxy_refused_credentials(status.detail)  # the proxy's 407, not the hub's refusal
        if refused is not None:
            return ThalovantProxyAuthenticationError(
                f"could not connect to the hub ({outcome.protocol}): {status.detail}", proxy=refused.proxy
            )
        return ThalovantConnectionError(
            f"could not connect to the hub ({outcome.protocol}): {status.detail}", retryable=False
        )
    detail = f" (last error: {outcome.detail})" if outcome.detail else ""
    return ThalovantTimeoutError(f"no ready session with the hub within {outcome.timeout:g} s{detail}")


_TABLE: dict[type[Any], Callable[[Any], Exception | None]] = {
    SendEnded: _send_error,
    AskEnded: _ask_error,
    ConnectEnded: _connect_error,
}


def error_for(outcome: Outcome) -> Exception | None:
    """The public exception ``outcome`` means, or None for a success."""
    return _TABLE[type(outcome)](outcome)


def raise_for(outcome: Outcome) -> None:
    """Raise the public exception ``outcome`` means; return quietly for a success.

    Raises:
        ThalovantTimeoutError: the core's deadline (or ``connect_timeout``) passed first.
        ThalovantConnectionError: the link was lost, the client closed or gave up, or a send was refused.
        ThalovantAuthenticationError: the hub refused the credentials.
        ThalovantProxyAuthenticationError: the proxy refused its credentials (HTTP 407; also a
            ThalovantConnectionError).
        ThalovantPolicyDenied: the hub refused the ask's utterance.
    """
    error = error_for(outcome)
    if error is not None:
        raise error
