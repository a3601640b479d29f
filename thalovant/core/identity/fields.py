"""Field readers shared by the identity parsers: problems, coercion, URLs.

Theory of operation
-------------------
Identity parsing must report *every* problem at once, so no reader here
raises. Each reader takes the raw value, the dotted field path it came from
and a :class:`Problems` collector; it returns the cleaned value, or ``None``
after recording why the value was refused. The top-level parsers
(``thalovant.core.identity.parse``) turn the collected problems into a ``Result``;
the public constructors raise them as one :class:`ThalovantIdentityError`
(:func:`identity_error`).

Rule: a problem message names the field and what is wrong with it; it never
quotes the value, because the value may be (or contain) a secret.

URLs are split by a small regex rather than ``urllib`` (the core may not
import it). Only the shapes the identity needs are accepted:
``scheme://[userinfo@]host[:port][/path][?query]``; never a fragment.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core.errors import ThalovantIdentityError

#: The HiveMind HTTP listener's port, used when nothing else says otherwise.
DEFAULT_HUB_PORT = 5679


@dataclass(frozen=True, slots=True)
class IdentityProblem:
    """One thing wrong with an identity: the field path and a message.

    The message never contains the field's value.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class Problems:
    """An append-only list of :class:`IdentityProblem` filled by the readers."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[IdentityProblem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(IdentityProblem(path, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def as_tuple(self) -> tuple[IdentityProblem, ...]:
        return tuple(self.items)

    def raise_any(self, origin: str) -> None:
        """Raise every problem collected so far as one :class:`ThalovantIdentityError`; nothing if none."""
        if self.items:
            raise identity_error(self.items, origin)


def identity_error(problems: Iterable[IdentityProblem], origin: str) -> ThalovantIdentityError:
    """The one exception listing ``problems`` (paths and messages, never values)."""
    return ThalovantIdentityError([(p.path, p.message) for p in problems], origin=origin)


def decode_text(text: str | bytes, origin: str) -> Result[str, tuple[IdentityProblem, ...]]:
    """``text`` as str: bytes are decoded as UTF-8; a leading BOM is dropped either way."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return Failure((IdentityProblem("", f"{origin} is not valid UTF-8 (byte {exc.start})"),))
    return Success(text.removeprefix("\ufeff"))


def load_json(text: str, origin: str, *, malformed: str = "") -> Result[Any, tuple[IdentityProblem, ...]]:
    """The JSON value in ``text``; ``malformed`` is appended to the message for input too deep to read."""
    try:
        return Success(json.loads(text))
    except json.JSONDecodeError as exc:
        return Failure((IdentityProblem("", f"{origin} is not valid JSON (line {exc.lineno} column {exc.colno})"),))
    except (ValueError, RecursionError):
        return Failure((IdentityProblem("", f"{origin} is not valid JSON{malformed}"),))


#: C0 and C1 controls, the line and paragraph separators and the bidirectional overrides: none belongs
#: in a key, a name or a URL, and each can forge or hide text where the value is logged.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: A lone surrogate is not Unicode text: it cannot be encoded (``os.environ`` holds one for every
#: byte of a variable that is not UTF-8), so a token built from it would fail at connect time.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be part of an identity (a lone surrogate, a control character), or None."""
    if _SURROGATE.search(text):
        return "must be valid Unicode text (it contains a lone surrogate)"
    if _CONTROL.search(text):
        return "must not contain control characters"
    return None


def is_blank(value: object) -> bool:
    """``None`` and strings that are empty after stripping count as "not given"."""
    return value is None or (isinstance(value, str) and not value.strip())


def first_present(values: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    """The first ``(key, value)`` among ``keys`` whose value is not blank.

    The canonical key comes first in ``keys``, so it wins over its aliases.
    """
    for key in keys:
        value = values.get(key)
        if not is_blank(value):
            return key, value
    return None


def read_text(
    value: object,
    path: str,
    problems: Problems,
    *,
    allow_numbers: bool = False,
    allow_spaces: bool = True,
) -> str | None:
    """A stripped, non-empty string without control characters, or None (problem recorded)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.add(path, "must be a string")
        return None
    if not isinstance(value, str):
        if not allow_numbers or (isinstance(value, float) and not value.is_integer()) or abs(value) >= 10**18:
            problems.add(path, "must be a string" if not allow_numbers else "must be a string or a small integer")
            return None
        value = str(int(value))
    text = value.strip()
    if not text:
        problems.add(path, "must not be empty")
        return None
    problem = text_problem(text)
    if problem is not None:
        problems.add(path, problem)
        return None
    if not allow_spaces and _WHITESPACE.search(text):
        problems.add(path, "must not contain whitespace")
        return None
    return text


#: The pre-shared path's rule for ``crypto_key``: the hub and the client use ``crypto_key[:16]`` as the AES-128 key.
CRYPTO_KEY_RULE = "must have at least 16 characters, the first 16 ASCII (the hub uses crypto_key[:16])"


def crypto_key_problem(crypto_key: str | None) -> str | None:
    """Why the pre-shared path cannot use ``crypto_key`` (:data:`CRYPTO_KEY_RULE`), or None when it can.

    Such a key still loads (0.4.7 loads it); only a handshake that must take the pre-shared path fails.
    """
    if crypto_key is None or (len(crypto_key) >= 16 and crypto_key[:16].isascii()):
        return None
    return CRYPTO_KEY_RULE


_TRUE = frozenset({"1", "true", "yes", "on", "enabled", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "disabled", "n", "f"})


def read_bool(value: object, path: str, problems: Problems) -> bool | None:
    """A bool from a bool, 0/1, or a word such as "true"/"no"; None (problem recorded) otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    problems.add(path, "must be true or false")
    return None


def read_int(value: object, path: str, problems: Problems, *, low: int, high: int) -> int | None:
    """An int in ``[low, high]`` from an int or a string of digits; None (problem recorded) otherwise."""
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        text = value.strip()
        number = int(text) if len(text) <= 12 else high + 1
    if number is None:
        problems.add(path, "must be an integer")
        return None
    if not low <= number <= high:
        problems.add(path, f"must be between {low} and {high}")
        return None
    return number


def read_port(value: object, path: str, problems: Problems) -> int | None:
    """A TCP port, 1..65535 (0 is refused, not silently replaced)."""
    return read_int(value, path, problems, low=1, high=65535)


# ---- URLs -----------------------------------------------------------------------------------------

_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"
    r"(?P<authority>[^/?#]*)"
    r"(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?"
    r"(?P<fragment>#.*)?",
    re.DOTALL,
)
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+)")
_PATH = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=:@/-]*")


#: What :func:`split_url` says when the text after the host's ``:`` is not a number.
NOT_A_PORT = "has a port that is not a number"


@dataclass(frozen=True, slots=True)
class SplitUrl:
    """A URL in parts. ``userinfo`` is credentials and must never be shown."""

    scheme: str
    host: str
    port: int | None
    path: str = ""
    query: str = ""
    userinfo: str = ""

    def unsplit(self, *, with_userinfo: bool = True, port: int | None = None, path: str | None = None) -> str:
        """Rebuild the URL, optionally without credentials or with another port/path."""
        auth = f"{self.userinfo}@" if with_userinfo and self.userinfo else ""
        use_port = self.port if port is None else port
        netloc = f"{auth}{self.host}" + (f":{use_port}" if use_port is not None else "")
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{netloc}{self.path if path is None else path}{query}"

    def without_authorization(self) -> SplitUrl:
        """This URL without any ``authorization`` query parameter (the token the client adds itself)."""
        if not self.query:
            return self
        kept = [part for part in self.query.split("&") if not _is_authorization(part)]
        return replace(self, query="&".join(kept))

    @property
    def has_authorization(self) -> bool:
        """Whether the query carries an ``authorization`` parameter (a secret)."""
        return any(_is_authorization(part) for part in self.query.split("&"))


def _is_authorization(part: str) -> bool:
    return part.partition("=")[0].strip().lower() in ("authorization", "authorisation")


def split_url(text: str) -> SplitUrl | str:
    """Split ``text`` into a :class:`SplitUrl`, or return why it is not a usable URL.

    The reason never quotes ``text``. The scheme is lower-cased and a trailing
    ``/`` is removed from the path.
    """
    match = _URL.fullmatch(text)
    if match is None:
        return "must be a URL such as https://host:port/path"
    if match.group("fragment") is not None:
        return "must not contain a #fragment"
    authority = match.group("authority")
    userinfo, _, hostport = authority.rpartition("@")
    host, port_text = hostport, ""
    if hostport.startswith("["):
        close = hostport.find("]")
        host, rest = hostport[: close + 1], hostport[close + 1 :]
        if rest and not rest.startswith(":"):
            return "has a malformed host"
        port_text = rest[1:] if rest else ""
    elif ":" in hostport:
        host, _, port_text = hostport.rpartition(":")
    if not host or not _HOST.fullmatch(host):
        return "must name a host"
    port: int | None = None
    if port_text or hostport.endswith(":"):
        if not port_text:
            return "has a ':' after the host but no port number"
        if not (port_text.isascii() and port_text.isdigit()):
            return NOT_A_PORT
        if len(port_text) > 5 or not 1 <= int(port_text) <= 65535:
            return "has a port outside 1..65535"
        port = int(port_text)
    path = match.group("path")
    if not _PATH.fullmatch(path):
        return "has characters that are not allowed in a URL path"
    query = match.group("query") or ""
    if _CONTROL.search(query) or _WHITESPACE.search(query):
        return "has characters that are not allowed in a URL query"
    return SplitUrl(
        scheme=match.group("scheme").lower(),
        host=host,
        port=port,
        path=path.rstrip("/"),
        query=query,
        userinfo=userinfo,
    )


def without_userinfo(url: str) -> str:
    """``url`` without credentials, as it may be shown.

    Any ``user:password@`` is removed, also from a scheme-less ``user@host/path``, and so is an
    ``authorization`` query parameter. Text that is not a URL at all is returned unchanged.
    """
    split = split_url(url)
    if isinstance(split, SplitUrl):
        return split.without_authorization().unsplit(with_userinfo=False)
    if "://" not in url:
        bare = split_url(f"x://{url}")
        if isinstance(bare, SplitUrl) and bare.userinfo:
            return bare.unsplit(with_userinfo=False).removeprefix("x://")
    return url


def read_url(value: object, path: str, problems: Problems, *, schemes: tuple[str, ...]) -> SplitUrl | None:
    """A URL whose scheme is one of ``schemes``; None (problem recorded) otherwise.

    An ``authorization`` query parameter is dropped: the client builds that token itself from the
    access key (0.4.7 replaced it too), and a secret kept in the URL would be shown wherever it is.
    """
    text = read_text(value, path, problems, allow_spaces=False)
    if text is None:
        return None
    split = split_url(text)
    if isinstance(split, str):
        problems.add(path, split)
        return None
    split = split.without_authorization()
    if split.scheme not in schemes:
        problems.add(path, "scheme must be one of " + ", ".join(f"{s}://" for s in schemes))
        return None
    return split


def normalize_path(value: object, path: str, problems: Problems) -> str | None:
    """A URL path normalised to ``/a/b`` (``"/"`` becomes ``""``); None (problem recorded) if unusable."""
    if is_blank(value):
        return ""
    text = read_text(value, path, problems, allow_spaces=False)
    if text is None:
        return None
    if "?" in text or "#" in text or not _PATH.fullmatch(text):
        problems.add(path, "must be a plain URL path such as /hivemind/public")
        return None
    parts = [part for part in text.split("/") if part]
    return "/" + "/".join(parts) if parts else ""


def read_json_object(value: object, path: str, problems: Problems) -> dict[str, Any] | None:
    """A deep copy of a JSON object with string keys and finite numbers; None (problem recorded) otherwise."""
    if not isinstance(value, Mapping):
        problems.add(path, "must be a JSON object")
        return None
    copied = _copy_json(value, depth=0)
    if copied is None or not isinstance(copied, dict):
        problems.add(path, "must hold only JSON values (string keys, finite numbers, valid Unicode, at most 32 levels)")
        return None
    return copied


_MAX_INT_BITS = 4096  # far below the int -> str digit limit, so json.dumps can always write it


def copy_json(value: object) -> Any:
    """A deep copy of an already validated JSON value (lists, dicts, scalars)."""
    return _copy_json(value, depth=0)


def _copy_json(value: object, *, depth: int) -> Any:
    if depth > 32:
        return None
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):  # a lone surrogate cannot be encoded into a frame
        return None if _SURROGATE.search(value) else value
    if isinstance(value, int):
        return value if value.bit_length() <= _MAX_INT_BITS else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or _SURROGATE.search(key):
                return None
            copied = _copy_json(item, depth=depth + 1)
            if copied is None and item is not None:
                return None
            out[key] = copied
        return out
    if isinstance(value, list | tuple):
        items: list[Any] = []
        for item in value:
            copied = _copy_json(item, depth=depth + 1)
            if copied is None and item is not None:
                return None
            items.append(copied)
        return items
    return None


_SECRET_NAME = re.compile(r"token|secret|passw|pwd|key|auth|credential|cookie|signature|private", re.IGNORECASE)
REDACTED = "***"


def redact_json(value: Any) -> Any:
    """A copy of a JSON value with the value of every secret-looking key replaced by ``"***"``."""
    if isinstance(value, dict):
        return {
            key: (REDACTED if _SECRET_NAME.search(key) and value[key] is not None else redact_json(value[key]))
            for key in value
        }
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    return value
