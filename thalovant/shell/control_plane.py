"""Control-plane client: sign in, list hubs, provision client identities.

Theory of operation
-------------------
:class:`AsyncThalovantControlPlane` is the one implementation. It asks
``thalovant.core.control.api`` for each request, sends it over one keep-alive
:class:`~thalovant.shell.links.http.HttpConnection`, and turns every failure into
``ThalovantAPIError`` in :meth:`AsyncThalovantControlPlane._send` (the single
place). Its blocking twin, :class:`~thalovant.shell.sync.control_plane.ThalovantControlPlane`,
runs each async method through the one blocking portal; there is no second copy
of the logic.

Secrets. ``create_client_identity`` draws the client's ``apiKey`` and
``password`` (32 lowercase hex characters each, 128 bits) and ``cryptoKey``
(16 lowercase hex characters, the length the hub keeps) from
``secrets.token_bytes``. They are sent once, in the body of ``POST v1/clients``,
and are never logged. The API may answer with secret *references* (Vault) in
place of values; the identity is then completed from the local values.
Error messages are scrubbed of the request's secrets and of the access token,
and never quote a raw response body.

Retries. Nothing is retried automatically except an idempotent GET whose
kept-alive connection had been closed by the server before the response
started. ``POST v1/clients`` carries an ``Idempotency-Key`` so the caller may
retry it safely with the same key.
"""

from __future__ import annotations

import logging
import os
import secrets as _secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from returns.pipeline import is_successful

from thalovant.core.client.plan import DEFAULT_USERAGENT
from thalovant.core.control import api as control
from thalovant.core.control.api import ApiProblem, ApiRequest, ClientSecrets
from thalovant.core.control.identity import DEFAULT_PREFERENCE, assemble_identity
from thalovant.core.identity.protocols import SelectedHubEndpoint, normalize_protocol
from thalovant.errors import (
    LocalProtocolError,
    ThalovantAPIError,
    ThalovantConnectionError,
    ThalovantTimeoutError,
)
from thalovant.shell.control_result import BootstrapIdentityResult, build_identity
from thalovant.shell.control_session import RequestsStyleSession, session_request
from thalovant.shell.links.http import (
    Connector,
    HttpBodyTooLargeError,
    HttpConnection,
    HttpResponse,
    HttpTimeouts,
    split_url,
)
from thalovant.shell.tls import make_ssl_context

log = logging.getLogger("thalovant.control")

DEFAULT_API_URL = "https://api.thalovant.com"
USER_AGENT = DEFAULT_USERAGENT
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _raise(problem: ApiProblem) -> NoReturn:
    raise ThalovantAPIError(
        problem.message,
        status_code=problem.status_code,
        code=problem.code,
        detail=problem.detail,
        retry_after=problem.retry_after,
    )


class AsyncThalovantControlPlane:
    """Async client of the Thalovant control-plane API.

    Args:
        base_url: API root, e.g. ``https://api.thalovant.com`` (paths are joined below it).
        access_token: bearer token; :meth:`login` sets it too.
        timeout: seconds allowed for each whole request (connect, send, read).
        user_agent: ``User-Agent`` header.
        ca_file: PEM CA bundle to trust (else ``$SSL_CERT_FILE`` or the system store).
        insecure: disable TLS verification (warns; never for production).
        allow_http: permit ``http://`` to a non-loopback host (the password would travel in clear).
        max_body: largest response body accepted, in bytes.
        connector: test seam passed to :class:`HttpConnection`.
        entropy: ``entropy(n)`` returns ``n`` random bytes; the source of generated client secrets, site
            ids and idempotency keys (default :func:`secrets.token_bytes`; a test seam).
        session: a requests-style session (0.4.7's seam): every request goes through
            ``session.request(method, url, json=, params=, headers=, timeout=)`` in a worker thread
            (see ``thalovant.shell.control_session``); None: thalovant's own HTTP/1.1 connection.

    Raises:
        LocalProtocolError: bad ``base_url`` or plain ``http://`` to a remote host.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        access_token: str | None = None,
        *,
        timeout: float = 10.0,
        user_agent: str = USER_AGENT,
        ca_file: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        allow_http: bool = False,
        max_body: int = 4 * 1024 * 1024,
        connector: Connector | None = None,
        entropy: Callable[[int], bytes] = _secrets.token_bytes,
        session: RequestsStyleSession | None = None,
    ) -> None:
        url = split_url(base_url)
        if url.scheme not in ("http", "https") or "?" in url.path:
            raise LocalProtocolError("base_url must be an http(s) URL without a query")
        if url.scheme == "http" and url.host not in _LOOPBACK and not allow_http:
            raise LocalProtocolError("base_url uses plain http:// to a remote host; use https:// (or allow_http=True)")
        self.base_url = url.origin + url.path.rstrip("/")
        self._url = url
        self._token = access_token
        self.timeout = timeout
        self.user_agent = user_agent
        self._ssl = make_ssl_context(ca_file=ca_file, insecure=insecure) if url.tls else None
        self._max_body = max_body
        self._connector = connector
        self._entropy = entropy
        self._conn: HttpConnection | None = None
        self.session = session

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, authenticated={self._token is not None})"

    async def __aenter__(self) -> AsyncThalovantControlPlane:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the kept-alive connection (a later call dials again)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()

    @property
    def authenticated(self) -> bool:
        """Whether an access token is set."""
        return self._token is not None

    def _connection(self) -> HttpConnection:
        if self._conn is None:
            self._conn = HttpConnection(
                self._url.host,
                self._url.port,
                tls=self._url.tls,
                ssl_context=self._ssl,
                timeouts=HttpTimeouts.uniform(self.timeout),
                max_body=self._max_body,
                connector=self._connector,
            )
        return self._conn

    async def _request(self, req: ApiRequest, target: str, headers: list[tuple[str, str]]) -> HttpResponse:
        """One round trip, over the caller's ``session`` when given, else the kept-alive connection."""
        if self.session is None:
            return await self._connection().request(req.method, target, headers, req.body or b"")
        return await session_request(
            self.session, req, origin=self._url.origin, base_path=self._url.path, headers=headers, timeout=self.timeout
        )

    async def _send(self, req: ApiRequest, *, secrets: Sequence[str] = ()) -> dict[str, Any]:
        """Send ``req``; return the JSON object, or raise the one ``ThalovantAPIError``."""
        known = [*secrets, *([self._token] if self._token else [])]
        headers = [("accept", "application/json"), ("user-agent", self.user_agent)]
        if req.body is not None:
            headers.append(("content-type", "application/json"))
        if req.authenticated:
            if not self._token:
                raise ThalovantAPIError(
                    "Missing Thalovant API access token: call login() or pass access_token=", code="not_authenticated"
                )
            headers.append(("authorization", f"Bearer {self._token}"))
        if req.idempotency_key:
            headers.append(("idempotency-key", req.idempotency_key))
        target = req.target(self._url.path)
        shown = f"{req.method} /{req.path}"
        try:
            resp: HttpResponse = await self._request(req, target, headers)
        except ThalovantTimeoutError as exc:
            log.debug("%s: timed out", shown)
            raise ThalovantAPIError(
                f"Thalovant API {shown} timed out after {self.timeout:g} s"
                + (
                    f"; it may have been applied: retry with idempotency_key={req.idempotency_key!r}"
                    if req.idempotency_key
                    else ""
                ),
                code="timeout",
            ) from exc
        except HttpBodyTooLargeError as exc:
            log.debug("%s: response larger than %d bytes", shown, exc.limit)
            raise ThalovantAPIError(
                f"Thalovant API {shown} answered with more than {exc.limit} bytes; refused", code="response_too_large"
            ) from exc
        except ThalovantConnectionError as exc:
            log.debug("%s: %s", shown, control.one_line(str(exc), known))
            raise ThalovantAPIError(
                f"Could not reach the Thalovant API: {control.one_line(str(exc), known)}", code="unreachable"
            ) from exc
        log.debug("%s -> HTTP %d (%d bytes)", shown, resp.status, len(resp.body))
        if not 200 <= resp.status < 300:
            _raise(
                control.problem_for_response(
                    method=req.method,
                    path=f"/{req.path}",
                    status_code=resp.status,
                    headers=resp.headers,
                    body=resp.body,
                    secrets=known,
                    now_epoch=time.time(),
                )
            )
        parsed = control.parse_object(resp.body, status_code=resp.status)
        if not is_successful(parsed):
            _raise(parsed.failure())
        return parsed.unwrap()

    def require_runtime_protocol(
        self, result: BootstrapIdentityResult, *, protocol: str = "https"
    ) -> SelectedHubEndpoint:
        """The endpoint (``.protocol``, ``.endpoint``) if ``result``'s identity can use ``protocol`` (as in 0.4.7).

        Raises:
            ThalovantUnsupportedProtocolError: see :meth:`BootstrapIdentityResult.require_protocol`.
        """
        return SelectedHubEndpoint(normalize_protocol(protocol), result.require_protocol(protocol))

    async def login(
        self,
        email: str,
        password: str,
        otp_code: str | None = None,
        recovery_code: str | None = None,
        *,
        scope: str | None = None,
    ) -> dict[str, Any]:
        """Sign in with email and password (plus an MFA code when the account needs one).

        The returned ``access_token`` is stored and used by later calls.

        Args:
            email: the account's email address.
            password: the account's password.
            otp_code: the current one-time MFA code, if the account uses MFA.
            recovery_code: an MFA recovery code.
            scope: the token scope to ask for (None: none is sent).

        Returns:
            The token answer (it contains the token: do not log it).

        Raises:
            ThalovantAPIError: wrong credentials (401), MFA needed, network failure, bad answer.
            LocalProtocolError: ``email``, ``password`` or a given code or scope is not a non-empty string.
        """
        req = control.build_login_request(email, password, otp_code=otp_code, recovery_code=recovery_code, scope=scope)
        codes = [c for c in (password, otp_code, recovery_code) if c]
        body = await self._send(req, secrets=codes)
        token = control.token_from_login(body)
        if not is_successful(token):
            _raise(token.failure())
        self._token = token.unwrap()
        return body

    async def list_hubs(
        self, *, limit: int = 100, cursor: str | None = None, owner_id: str | None = None
    ) -> dict[str, Any]:
        """``GET v1/hubs``: the raw page (``items``, cursor fields as the API sends them).

        Args:
            limit: the most hubs in one page (a positive integer).
            cursor: the cursor of the page to fetch, from the previous page (None: the first page).
            owner_id: only the hubs of this owner (sent as the ``owner_id`` query parameter).

        Raises:
            ThalovantAPIError: non-2xx answer, network failure or a body that is not a JSON object.
            LocalProtocolError: ``limit`` is not a positive integer, or ``cursor``/``owner_id`` is blank.
        """
        return await self._send(control.build_list_hubs_request(limit=limit, cursor=cursor, owner_id=owner_id))

    async def get_hub(self, hub_id: str) -> dict[str, Any]:
        """``GET v1/hubs/<hub_id>`` (the id is URL-encoded).

        Raises:
            ThalovantAPIError: e.g. 404 when there is no such hub.
        """
        return await self._send(control.build_get_hub_request(hub_id))

    async def create_client(self, payload: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST v1/clients`` with a caller-built payload. Never retried automatically.

        Args:
            payload: the request body; the values of its secret-looking ``spec`` keys are kept out of errors.
            idempotency_key: the ``Idempotency-Key`` header; reuse one to retry safely (None: a random one).

        Raises:
            ThalovantAPIError: non-2xx answer (409 conflict, 412, 429...), network failure.
        """
        key = idempotency_key or control.new_idempotency_key(self._entropy)
        spec = payload.get("spec")
        hidden = [str(v) for k, v in spec.items() if control.is_secret_key(str(k))] if isinstance(spec, Mapping) else []
        return await self._send(control.build_create_client_request(payload, key), secrets=hidden)

    async def create_client_identity(
        self,
        hub: str | Mapping[str, Any],
        *,
        name: str,
        site_id: str | None = None,
        spec: Mapping[str, Any] | None = None,
        owner_id: str | None = None,
        active: bool = True,
        preferred_protocols: Sequence[str] = DEFAULT_PREFERENCE,
        idempotency_key: str | None = None,
    ) -> BootstrapIdentityResult:
        """Register a new client on a hub and return a ready identity for it.

        ``apiKey``, ``password`` (32 hex chars) and ``cryptoKey`` (16 hex chars) are generated
        here with :mod:`secrets` and sent once.

        Args:
            hub: a hub id (fetched with :meth:`get_hub`) or a hub record already fetched.
            name: client name; also the site id unless ``site_id`` is given.
            site_id: explicit site id.
            spec: extra client spec fields (the generated secrets override same-named keys).
            owner_id: owner to assign, when the account may choose.
            active: create the client enabled.
            preferred_protocols: order used to pick :attr:`BootstrapIdentityResult.endpoint`.
            idempotency_key: reuse one to retry safely; a random one is made otherwise.

        Raises:
            ThalovantAPIError: any API or network failure, a hub record without an ``id``, or a
                hub with no endpoint at all.
        """
        hub_record = dict(hub) if isinstance(hub, Mapping) else await self.get_hub(hub)
        hub_id = hub_record.get("id")
        if not isinstance(hub_id, str) or not hub_id:
            raise ThalovantAPIError("hub record has no string 'id'", code="invalid_response")
        creds: ClientSecrets = control.generate_client_secrets(self._entropy)
        site = control.derive_site_id(name, site_id, self._entropy)
        body = control.build_client_body(
            hub_id=hub_id, name=name, site_id=site, secrets=creds, spec=spec, owner_id=owner_id, active=active
        )
        key = idempotency_key or control.new_idempotency_key(self._entropy)
        client = await self._send(control.build_create_client_request(body, key), secrets=creds.values())
        assembled = assemble_identity(
            hub=hub_record, client=client, secrets=creds, site_id=site, preferred=tuple(preferred_protocols)
        )
        if not is_successful(assembled):
            _raise(assembled.failure())
        result = assembled.unwrap()
        for note in result.notes:
            log.info("create_client_identity(hub %s): %s", hub_id, note)
        return BootstrapIdentityResult(
            identity=build_identity(result.mapping),
            mapping=result.mapping,
            hub=hub_record,
            client=client,
            endpoint=result.selected,
            notes=result.notes,
        )


__all__ = [
    "DEFAULT_API_URL",
    "USER_AGENT",
    "AsyncThalovantControlPlane",
    "BootstrapIdentityResult",
]
