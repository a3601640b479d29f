"""The control plane over a caller's requests-style session (0.4.7's ``session=`` seam).

0.4.7's ``ThalovantControlPlane(api_url, session=...)`` sent every request through
``session.request(method, url, json=, params=, headers=, timeout=)`` and read ``status_code``,
``json()`` and ``text`` from the answer; any object that does so works (a ``requests.Session``,
or a test double). :func:`session_request` makes that call for one :class:`ApiRequest`, in a worker
thread (the session blocks) bounded by the control plane's timeout, and turns the answer into the
:class:`~thalovant.shell.links.http.HttpResponse` that the control plane's one error path reads.
The session is the caller's: it is never closed here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from typing import Any, Protocol

import anyio
import anyio.to_thread

from thalovant.core.control.api import ApiRequest
from thalovant.errors import ThalovantConnectionError, ThalovantTimeoutError
from thalovant.shell.links.http import HttpResponse

__all__ = ["RequestsStyleSession", "session_request"]

#: 0.4.7's spelling of the headers it sent (a plain-dict double may look them up so).
_HEADER_NAMES = {"idempotency-key": "Idempotency-Key"}


class RequestsStyleSession(Protocol):
    """What ``session=`` needs: ``request(method, url, **kwargs)`` returning a response."""

    def request(self, method: str, url: str, **kwargs: Any) -> Any: ...


async def session_request(
    session: RequestsStyleSession,
    req: ApiRequest,
    *,
    origin: str,
    base_path: str,
    headers: list[tuple[str, str]],
    timeout: float,
) -> HttpResponse:
    """Send ``req`` through ``session``; the answer as an :class:`HttpResponse` (body: JSON bytes or text).

    Raises:
        ThalovantTimeoutError: no answer within ``timeout`` seconds (the worker thread is abandoned).
        ThalovantConnectionError: the session raised (its message is the caller's to scrub).
    """
    url = origin + req.target(base_path).partition("?")[0]
    kwargs: dict[str, Any] = {
        "json": json.loads(req.body) if req.body else None,
        "params": dict(req.query) or None,
        "headers": {_HEADER_NAMES.get(name, name): value for name, value in headers},
        "timeout": timeout,
    }
    call = partial(session.request, req.method, url, **kwargs)
    try:
        with anyio.fail_after(timeout):
            resp = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    except TimeoutError:
        raise ThalovantTimeoutError(f"no answer within {timeout:g} s") from None
    except Exception as exc:  # any session's own errors (requests.RequestException ...)
        raise ThalovantConnectionError(f"{type(exc).__name__}: {exc}") from exc
    return _response(resp)


def _response(resp: Any) -> HttpResponse:
    status = resp.status_code
    if isinstance(status, bool) or not isinstance(status, int):
        raise ThalovantConnectionError("the session's response has no integer status_code")
    try:
        body = json.dumps(resp.json()).encode()
    except Exception:  # not JSON: the text, as the control plane's parser reports it
        text = getattr(resp, "text", "")
        body = text.encode("utf-8", "replace") if isinstance(text, str) else b""
    raw_headers = getattr(resp, "headers", None)
    pairs = raw_headers.items() if isinstance(raw_headers, Mapping) else ()
    headers = tuple((str(k).lower(), str(v)) for k, v in pairs)
    return HttpResponse(status=status, headers=headers, body=body)
