"""``ThalovantControlPlane``: the blocking twin of ``AsyncThalovantControlPlane``.

No logic of its own: each method runs the async method of the same name through
a :class:`~thalovant.shell.sync.portal.Portal`. Inside ``with`` the portal stays
open (one connection and one loop thread for many calls); without it each call
runs on a short-lived loop and closes its connection afterwards. Calling it from
async code is refused (it would block the event loop).
"""

from __future__ import annotations

import functools
import os
import secrets as _secrets
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar

from thalovant.core.deprecation import warn_once
from thalovant.core.identity.protocols import SelectedHubEndpoint
from thalovant.errors import LocalProtocolError
from thalovant.shell.control_plane import (
    DEFAULT_API_URL,
    USER_AGENT,
    AsyncThalovantControlPlane,
    BootstrapIdentityResult,
)
from thalovant.shell.control_session import RequestsStyleSession
from thalovant.shell.links.http import Connector
from thalovant.shell.sync.portal import Portal, refuse_in_event_loop

__all__ = ["ThalovantControlPlane"]

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(
    method: Callable[Concatenate[AsyncThalovantControlPlane, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[ThalovantControlPlane, P], T]:
    """The blocking twin of an async method (same signature and docstring)."""

    def run(self: ThalovantControlPlane, /, *args: P.args, **kwargs: P.kwargs) -> T:
        refuse_in_event_loop("ThalovantControlPlane blocks; use AsyncThalovantControlPlane in async code")
        return self._portal.run(partial(method, self._async, *args, **kwargs), after=self._async.aclose)

    functools.update_wrapper(run, method)
    run.__qualname__ = f"ThalovantControlPlane.{method.__name__}"
    return run


class ThalovantControlPlane:
    """Blocking facade over :class:`AsyncThalovantControlPlane` (same arguments, same methods).

    Use it as a context manager to keep one connection and one portal thread for many
    calls; without ``with``, each call starts a short-lived portal and closes its
    connection afterwards. Do not call it from async code: use the async class there.

    Args:
        base_url: API root.
        access_token: bearer token; :meth:`login` sets it too.
        timeout: seconds allowed for each whole request.
        user_agent: the ``User-Agent`` header.
        ca_file: PEM bundle to verify the API's certificate with (default: the system's).
        insecure: skip certificate verification (warns; tests only).
        allow_http: allow plain ``http://`` to a host that is not loopback.
        max_body: the largest response body accepted, in bytes.
        connector: opens the TCP/TLS stream instead of the default (tests).
        entropy: the random source for the secrets :meth:`create_client_identity` generates.
        session: a requests-style session every request goes through (0.4.7's seam; see
            :class:`AsyncThalovantControlPlane`).
        api_url: the 0.4.7 name of ``base_url`` (deprecated, warns once).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        access_token: str | None = None,
        timeout: float = 10.0,
        *,
        user_agent: str = USER_AGENT,
        ca_file: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        allow_http: bool = False,
        max_body: int = 4 * 1024 * 1024,
        connector: Connector | None = None,
        entropy: Callable[[int], bytes] = _secrets.token_bytes,
        session: RequestsStyleSession | None = None,
        api_url: str | None = None,
    ) -> None:
        if api_url is not None:
            warn_once("ThalovantControlPlane(api_url=...)", "ThalovantControlPlane(base_url=...)")
            if base_url != DEFAULT_API_URL:
                raise LocalProtocolError("give base_url or api_url, not both")
            base_url = api_url
        self._async = AsyncThalovantControlPlane(
            base_url,
            access_token,
            timeout=timeout,
            user_agent=user_agent,
            ca_file=ca_file,
            insecure=insecure,
            allow_http=allow_http,
            max_body=max_body,
            connector=connector,
            entropy=entropy,
            session=session,
        )
        self._portal = Portal()

    def __repr__(self) -> str:
        return f"ThalovantControlPlane({self._async.base_url!r}, authenticated={self._async.authenticated})"

    @property
    def base_url(self) -> str:
        """The API root, without a trailing ``/``."""
        return self._async.base_url

    @property
    def session(self) -> RequestsStyleSession | None:
        """The requests-style session given as ``session=``, if any."""
        return self._async.session

    @property
    def authenticated(self) -> bool:
        """Whether an access token is set."""
        return self._async.authenticated

    def __enter__(self) -> ThalovantControlPlane:
        refuse_in_event_loop("ThalovantControlPlane blocks; use AsyncThalovantControlPlane in async code")
        self._portal.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and stop the portal thread (safe to call twice)."""
        self._portal.close(before=self._async.aclose)

    login = _blocking(AsyncThalovantControlPlane.login)
    list_hubs = _blocking(AsyncThalovantControlPlane.list_hubs)
    get_hub = _blocking(AsyncThalovantControlPlane.get_hub)
    create_client = _blocking(AsyncThalovantControlPlane.create_client)
    create_client_identity = _blocking(AsyncThalovantControlPlane.create_client_identity)

    def require_runtime_protocol(
        self, result: BootstrapIdentityResult, *, protocol: str = "https"
    ) -> SelectedHubEndpoint:
        """The endpoint (``.protocol``, ``.endpoint``) if ``result``'s identity can use ``protocol``.

        See :meth:`AsyncThalovantControlPlane.require_runtime_protocol`.
        """
        return self._async.require_runtime_protocol(result, protocol=protocol)
