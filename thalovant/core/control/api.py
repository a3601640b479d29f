"""Control-plane API: pure request building, response parsing and identity assembly.

Theory of operation
-------------------
The control plane is a plain JSON-over-HTTPS API (reference SDK §a.15, §d.11).
Nothing here talks to the network. The shell (``thalovant.shell.control_plane``)
asks this module for an :class:`ApiRequest`, sends it with the project's h11
client, and hands the status, headers and body back:

* ``build_*_request`` functions return :class:`ApiRequest` values. Paths are
  relative to the API base (``v1/hubs/<id>``); every path parameter is
  percent-encoded, so an id like ``../x`` cannot escape its segment.
* :func:`parse_object` turns a 2xx body into a JSON object or an
  :class:`ApiProblem`; :func:`problem_for_response` turns a non-2xx answer into
  an :class:`ApiProblem` whose ``detail`` is one line of at most 200
  characters, taken from known fields of the body (never the raw body) and
  scrubbed of every secret the request carried.
* :func:`generate_client_secrets` draws the three client secrets from an
  injected ``entropy`` callable (the shell passes ``secrets.token_bytes``).
* ``thalovant.core.control.identity`` assembles the identity mapping from the
  hub and the API's answer.

Bad data from the API never raises here: it becomes an :class:`ApiProblem`.
Caller misuse (an empty hub id, entropy that returns the wrong length) raises
``LocalProtocolError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.jsontree import DESCEND, DROP, JsonTooDeep, copy_tree, loads
from thalovant.core.machine import Entropy

#: Bytes of entropy behind ``apiKey`` and ``password``: 16 bytes -> 32 lowercase hex characters,
#: the same shape ``hivemind-core add-client`` generates (protocol §3.1). Hex never needs
#: URL-encoding and never contains ``:``, which hub 4.x forbids in an access key.
SECRET_BYTES = 16
#: Bytes behind ``cryptoKey``: 8 bytes -> 16 lowercase hex characters. The hub keeps only the
#: first 16 characters and uses them as an AES-128 key (protocol §4.4).
CRYPTO_KEY_BYTES = 8
#: Alphabet of every generated secret.
SECRET_ALPHABET = "0123456789abcdef"
#: Longest ``detail`` an :class:`ApiProblem` carries.
MAX_DETAIL = 200
REDACTED = "[redacted]"

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SPACES = re.compile(r"\s+")
#: What a bearer token may contain (printable ASCII, no spaces): anything else could not be sent in a header.
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
#: Key names (lower case, without ``_`` and ``-``) whose values are secrets.
_SECRET_KEYS = frozenset(
    {
        "apikey",
        "accesskey",
        "password",
        "cryptokey",
        "secret",
        "clientsecret",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "brokerpassword",
        "authorization",
        "otpcode",
        "recoverycode",
        "psk",
    }
)

_STATUS_HINTS: dict[int, str] = {
    400: "the API rejected the request as invalid",
    401: "the access token is missing, expired or wrong; call login() again",
    403: "this account is not allowed to do that",
    404: "not found; check the id",
    409: "conflict with existing state (the resource may already exist)",
    412: "a precondition failed; reload the resource and try again",
    422: "the API rejected a field of the request",
    429: "rate limited; wait before retrying",
}
_REDIRECT_HINT = "redirects are not followed; check base_url"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiRequest:
    """One control-plane HTTP request, ready for the shell to send.

    ``body`` may contain secrets; it is excluded from ``repr``.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = field(default=None, repr=False)
    authenticated: bool = True
    idempotency_key: str | None = None

    def target(self, base_path: str) -> str:
        """The request target: ``base_path`` joined with ``path``, plus the encoded query."""
        base = base_path if base_path.endswith("/") else base_path + "/"
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in self.query)
        return base + self.path + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiProblem:
    """Why a control-plane call failed. ``message`` and ``detail`` never hold a secret."""

    message: str
    status_code: int | None = None
    code: str | None = None
    detail: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSecrets:
    """The three secrets generated for a new client. ``repr`` shows none of them."""

    api_key: str = field(repr=False)
    password: str = field(repr=False)
    crypto_key: str = field(repr=False)

    def values(self) -> tuple[str, str, str]:
        return (self.api_key, self.password, self.crypto_key)


# --------------------------------------------------------------------------- encoding


def quote(text: str) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (so ``/`` too)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def _hex(entropy: Entropy, n: int) -> str:
    raw = entropy(n)
    if not isinstance(raw, bytes) or len(raw) != n:
        raise LocalProtocolError(f"entropy({n}) must return exactly {n} bytes")
    return raw.hex()


def generate_client_secrets(entropy: Entropy) -> ClientSecrets:
    """Draw ``apiKey`` and ``password`` (32 hex chars each) and ``cryptoKey`` (16 hex chars)."""
    return ClientSecrets(
        api_key=_hex(entropy, SECRET_BYTES),
        password=_hex(entropy, SECRET_BYTES),
        crypto_key=_hex(entropy, CRYPTO_KEY_BYTES),
    )


def new_idempotency_key(entropy: Entropy) -> str:
    """A random UUID (version 4 layout) for the ``Idempotency-Key`` header."""
    raw = bytearray(bytes.fromhex(_hex(entropy, 16)))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def derive_site_id(name: str, site_id: str | None, entropy: Entropy) -> str:
    """``site_id or name``, stripped, ``_`` and whitespace runs turned into ``-`` (§d.11)."""
    text = _SPACES.sub("-", (site_id or name or "").strip().replace("_", "-")).strip("-")
    return text or f"thalovant-client-{_hex(entropy, 4)}"


def _json_body(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _require_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LocalProtocolError(f"{what} must be a non-empty string")
    return value


# --------------------------------------------------------------------------- requests


def build_login_request(
    email: str,
    password: str,
    *,
    otp_code: str | None = None,
    recovery_code: str | None = None,
    scope: str | None = None,
) -> ApiRequest:
    """``POST v1/auth/token`` with the account's email and password (plus an MFA code)."""
    payload: dict[str, Any] = {"email": _require_text(email, "email"), "password": _require_text(password, "password")}
    for key, value in (("otp_code", otp_code), ("recovery_code", recovery_code), ("scope", scope)):
        if value is not None:
            payload[key] = _require_text(value, key)
    return ApiRequest(method="POST", path="v1/auth/token", body=_json_body(payload), authenticated=False)


def build_list_hubs_request(*, limit: int = 100, cursor: str | None = None, owner_id: str | None = None) -> ApiRequest:
    """``GET v1/hubs`` with paging parameters."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise LocalProtocolError("limit must be a positive integer")
    query = [("limit", str(limit))]
    if cursor is not None:
        query.append(("cursor", _require_text(cursor, "cursor")))
    if owner_id is not None:
        query.append(("owner_id", _require_text(owner_id, "owner_id")))
    return ApiRequest(method="GET", path="v1/hubs", query=tuple(query))


def build_get_hub_request(hub_id: str) -> ApiRequest:
    """``GET v1/hubs/<hub_id>``; the id is percent-encoded as one path segment."""
    return ApiRequest(method="GET", path="v1/hubs/" + quote(_require_text(hub_id, "hub_id")))


def build_client_body(
    *,
    hub_id: str,
    name: str,
    site_id: str,
    secrets: ClientSecrets,
    spec: Mapping[str, Any] | None = None,
    owner_id: str | None = None,
    active: bool = True,
) -> dict[str, Any]:
    """The ``POST v1/clients`` payload: caller's spec, then the generated secrets on top (§d.11)."""
    merged: dict[str, Any] = dict(spec or {})
    merged.setdefault("version", "1")
    merged.update(apiKey=secrets.api_key, password=secrets.password, cryptoKey=secrets.crypto_key, siteId=site_id)
    body: dict[str, Any] = {"hub_id": hub_id, "name": _require_text(name, "name"), "spec": merged, "active": active}
    if owner_id is not None:
        body["owner_id"] = owner_id
    return body


def build_create_client_request(body: Mapping[str, Any], idempotency_key: str) -> ApiRequest:
    """``POST v1/clients`` carrying ``body`` and an ``Idempotency-Key``."""
    return ApiRequest(
        method="POST",
        path="v1/clients",
        body=_json_body(body),
        idempotency_key=_require_text(idempotency_key, "idempotency_key"),
    )


# --------------------------------------------------------------------------- responses


def parse_object(body: bytes, *, status_code: int) -> Result[dict[str, Any], ApiProblem]:
    """A 2xx body as a JSON object, or a problem saying it was not one."""
    try:
        value = loads(body.decode("utf-8"))
    except JsonTooDeep as exc:
        return Failure(
            ApiProblem(
                message=f"Thalovant API answered HTTP {status_code} with {exc} ({len(body)} bytes)",
                status_code=status_code,
                code="invalid_response",
            )
        )
    except ValueError:  # UnicodeDecodeError included
        return Failure(
            ApiProblem(
                message=f"Thalovant API answered HTTP {status_code} with a body that is not JSON ({len(body)} bytes)",
                status_code=status_code,
                code="invalid_response",
            )
        )
    if not isinstance(value, dict):
        return Failure(
            ApiProblem(
                message=f"Thalovant API answered HTTP {status_code} with JSON that is not an object",
                status_code=status_code,
                code="invalid_response",
            )
        )
    return Success(value)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every known secret value and every URL ``user:pass@`` replaced."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _URL_USERINFO.sub(r"\g<scheme>" + REDACTED + "@", text)


def one_line(text: str, secrets: Sequence[str] = (), limit: int = MAX_DETAIL) -> str:
    """Scrubbed, control characters removed, whitespace collapsed, cut to ``limit`` characters."""
    flat = _SPACES.sub(" ", _CONTROL.sub(" ", scrub(text, secrets))).strip()
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def _first_text(*values: object) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _validation_summary(items: list[Any]) -> str | None:
    """FastAPI-style ``detail: [{loc, msg, input}]``: keep ``loc`` and ``msg``, drop ``input``."""
    parts = []
    for item in items[:5]:
        if isinstance(item, dict):
            loc = item.get("loc")
            where = ".".join(str(p) for p in loc) if isinstance(loc, list) else None
            msg = _first_text(item.get("msg"), item.get("message"))
            if msg:
                parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts) or None


def _detail_and_code(body: bytes) -> tuple[str | None, str | None]:
    try:
        value = loads(body.decode("utf-8"))
    except ValueError:  # not JSON, not UTF-8, or nested too deep (JsonTooDeep)
        return None, None
    if not isinstance(value, dict):
        return None, None
    error = value.get("error")
    err = error if isinstance(error, dict) else {}
    raw_detail = value.get("detail")
    detail = _validation_summary(raw_detail) if isinstance(raw_detail, list) else None
    detail = detail or _first_text(
        raw_detail, value.get("message"), err.get("message"), err.get("detail"), error, value.get("title")
    )
    code = _first_text(value.get("code"), value.get("error_code"), err.get("code"), err.get("type"))
    return detail, code


#: The longest ``Retry-After`` believed, in seconds (a day): a later date (year 9999) is a server's mistake.
MAX_RETRY_AFTER = 86400.0


def parse_retry_after(value: str | None, *, now_epoch: float) -> float | None:
    """``Retry-After`` as seconds from now, at most :data:`MAX_RETRY_AFTER`: delta-seconds or an IMF-fixdate.

    None if unusable.
    """
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"[0-9]{1,12}", text):
        return min(MAX_RETRY_AFTER, float(int(text)))
    match = re.fullmatch(r"[A-Za-z]{3}, ([0-9]{2}) ([A-Za-z]{3}) ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT", text)
    months = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    if match is None or match.group(2).lower() not in months:
        return None
    day, year = int(match.group(1)), int(match.group(3))
    hour, minute, second = int(match.group(4)), int(match.group(5)), int(match.group(6))
    month = months.index(match.group(2).lower()) + 1
    if not (1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    epoch = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return min(MAX_RETRY_AFTER, max(0.0, float(epoch) - now_epoch))


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def header_value(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The first header called ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    return next((v for k, v in headers if k.lower() == wanted), None)


def problem_for_response(
    *,
    method: str,
    path: str,
    status_code: int,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    secrets: Sequence[str] = (),
    now_epoch: float = 0.0,
) -> ApiProblem:
    """The problem for a non-2xx answer. ``path`` must not contain the query string."""
    raw_detail, raw_code = _detail_and_code(body)
    detail = one_line(raw_detail, secrets) if raw_detail else None
    code = one_line(raw_code, secrets, limit=80) if raw_code else None
    retry_after = parse_retry_after(header_value(headers, "retry-after"), now_epoch=now_epoch)
    hint = _STATUS_HINTS.get(status_code, "the API failed; try again later" if status_code >= 500 else "")
    if 300 <= status_code < 400:
        hint = _REDIRECT_HINT
    text = f"Thalovant API {method} {path} failed with HTTP {status_code}"
    if code:
        text += f" [{code}]"
    if detail:
        text += f": {detail}"
    if hint:
        text += f" ({hint}"
        text += f"; retry after {retry_after:g} s)" if retry_after is not None else ")"
    return ApiProblem(message=text, status_code=status_code, code=code, detail=detail, retry_after=retry_after)


def token_from_login(body: Mapping[str, Any]) -> Result[str, ApiProblem]:
    """The ``access_token`` a login answer must carry."""
    token = body.get("access_token")
    if isinstance(token, str) and _TOKEN.fullmatch(token):
        return Success(token)
    return Failure(ApiProblem(message="Thalovant API login answer has no access_token", code="invalid_response"))


# --------------------------------------------------------------------------- redaction


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret value (``apiKey``, ``broker_password``, ...)."""
    return key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS


def _drop_secret_key(key: Any) -> tuple[Any, Any]:
    return str(key), DROP if is_secret_key(str(key)) else DESCEND


def redact(value: Any, secrets: Sequence[str] = ()) -> Any:
    """A deep copy of ``value`` without secret-named keys, known secret values or URL credentials.

    Secret *references* (``apiKeyRef: {name, key}``) are kept: their key names differ. No recursion,
    so no nesting can overflow Python's stack.
    """

    def leaf(item: Any) -> Any:
        return scrub(item, secrets) if isinstance(item, str) else item

    return copy_tree(value, leaf, entry=_drop_secret_key, maps=(Mapping,), seqs=(list, tuple))
