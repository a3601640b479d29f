"""HTTP proxies as values: the proxy URL, ``NO_PROXY``, and which proxy a connection takes.

Theory of operation
-------------------
Corporate networks let traffic out through an HTTP proxy. A WebSocket or HTTP link reaches the
hub through one by asking it for a tunnel (``CONNECT host:port``, RFC 9110 §9.3.6); TLS, when the
link uses it, then runs inside the tunnel, so the proxy sees the hub's name and port and nothing
else. The exchange itself is :mod:`thalovant.core.links.proxy_connect`; the IO is
:mod:`thalovant.shell.links.proxy`. This module decides *where* to connect:

* :func:`parse_proxy_url` reads ``http://[user:password@]host[:port]`` (a bare ``host:port``
  means ``http://``; the port defaults to 80). Only ``http://`` proxies are supported: TLS to
  the proxy itself (``https://``) and SOCKS are refused with an error naming the setting.
  :class:`ProxyUrl` keeps the user and password out of ``repr``, ``str`` and every message:
  they only ever leave as the ``Proxy-Authorization: Basic`` header.
* :class:`ProxyPolicy` says which proxy each destination takes: ``DIRECT`` (none), a fixed proxy
  for everything (the client's ``proxy=`` argument), or the environment
  (:meth:`ProxyPolicy.from_environ`): ``https_proxy`` for ``wss``/``https``, ``http_proxy`` for
  ``ws``/``http``, minus the destinations ``no_proxy`` lists. A lower-case variable wins over its
  upper-case twin, even when empty (an empty value means "no proxy"); the upper-case
  ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set (a CGI request could have set it:
  "httpoxy"). An unusable URL in the environment is not an error until a connection needs it:
  :meth:`ProxyPolicy.route` then returns a :class:`BadProxySetting` naming the variable.
* ``NO_PROXY`` (:func:`parse_no_proxy`) is a comma- or space-separated list: ``*`` (every
  destination), a domain (``example.com``, ``.example.com`` and ``*.example.com`` all match the
  domain and every name below it), an IP address, a CIDR block (``10.0.0.0/8``, ``fd00::/8``),
  each optionally with ``:port``. Names are compared case-insensitively and never resolved, so an
  IP or CIDR entry matches only destinations written as IP addresses. Entries that are none of
  these are ignored, as curl does.

Everything here is pure; nothing raises except :func:`parse_proxy_url` on an explicit argument.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from thalovant.core.errors import LocalProtocolError, ThalovantProxyError

__all__ = [
    "DIRECT",
    "BadProxySetting",
    "NoProxyRule",
    "ProxyPolicy",
    "ProxyUrl",
    "Route",
    "host_for_authority",
    "parse_no_proxy",
    "parse_proxy_url",
]

_DEFAULT_PORT = 80
_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})")
_PORT = re.compile(r"[0-9]{1,5}")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def host_for_authority(host: str) -> str:
    """``host`` as it is written before ``:port``: an IPv6 address in brackets.

    >>> host_for_authority("::1"), host_for_authority("hub.example")
    ('[::1]', 'hub.example')
    """
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True, slots=True)
class ProxyUrl:
    """An HTTP proxy: where it listens and, optionally, the credentials it asks for.

    ``repr`` and ``str`` show ``http://host:port`` only; the credentials leave solely through
    :attr:`authorization`.

    Attributes:
        host: the proxy's host name or IP address (IPv6 without brackets).
        port: the proxy's TCP port.
        username: the user for ``Proxy-Authorization: Basic`` (percent-decoded), or None.
        password: the password (percent-decoded), or None.
    """

    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"ProxyUrl({self.display!r}, credentials={self.username is not None})"

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        """``http://host:port``: the proxy as messages and logs may name it."""
        return f"http://{host_for_authority(self.host)}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` header value (``Basic ...``), or None without credentials. Secret."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def _unquote(text: str) -> str:
    """Percent-decode ``text`` (``%40`` -> ``@``); the bytes are read as UTF-8."""
    out, pos = bytearray(), 0
    for m in _PERCENT.finditer(text):
        out += text[pos : m.start()].encode("utf-8", "replace")
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += text[pos:].encode("utf-8", "replace")
    return out.decode("utf-8", "replace")


def _problem(text: str) -> str | ProxyUrl:
    """The proxy in ``text``, or what is wrong with it (never quoting ``text``: it may hold a password)."""
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
    scheme = scheme.lower()
    if scheme != "http":
        if scheme == "https":
            return "uses https://: TLS to the proxy is not supported; use an http:// proxy URL"
        return "uses an unsupported scheme: only http:// proxies are supported (no SOCKS)"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        hostport = authority
    if hostport.startswith("["):
        inside, _, after = hostport[1:].partition("]")
        host, port_text = inside, after.removeprefix(":")
        if not after.startswith(":") and after:
            return "is not http://[user:password@]host[:port]"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "has an invalid IPv6 address in brackets"
    else:
        host, _, port_text = hostport.partition(":")
        if not _NAME.fullmatch(host):
            return "has no valid host name" if host else "has no host"
    if port_text and (not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536):
        return "has a bad port (1-65535)"
    port = int(port_text) if port_text else _DEFAULT_PORT
    if not at:
        return ProxyUrl(host, port)
    user, _, password = userinfo.partition(":")
    if any(not c.isprintable() for c in userinfo):
        return "has unprintable characters in its credentials"
    return ProxyUrl(host, port, username=_unquote(user), password=_unquote(password))


def parse_proxy_url(text: str, *, field_name: str = "proxy") -> ProxyUrl:
    """Read a proxy URL (``http://[user:password@]host[:port]``; ``host:port`` alone means ``http://``).

    Args:
        text: the URL. Secret when it carries credentials: it is never repeated in an error.
        field_name: the setting it came from, for the error message (``proxy``, ``HTTPS_PROXY``).

    Raises:
        LocalProtocolError: not a usable ``http://`` proxy URL; the message names ``field_name``.
    """
    found = _problem(text) if text.strip() else "is empty"
    if isinstance(found, str):
        raise LocalProtocolError(f"{field_name} {found}")
    return found


# ---- NO_PROXY ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoProxyRule:
    """One ``NO_PROXY`` entry. ``network`` for IP and CIDR entries, ``domain`` otherwise; ``port`` when given."""

    domain: str | None = None
    network: _IpNetwork | None = None
    port: int | None = None
    everything: bool = False

    def matches(self, host: str, port: int) -> bool:
        """Whether a connection to ``host:port`` goes direct because of this entry."""
        if self.port is not None and self.port != port:
            return False
        if self.everything:
            return True
        address = _address(host)
        if self.network is not None:
            return address is not None and address.version == self.network.version and address in self.network
        if self.domain is None or address is not None:
            return False
        name = _bare(host)
        return name == self.domain or name.endswith("." + self.domain)


def _bare(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _address(host: str) -> _IpAddress | None:
    try:
        return ipaddress.ip_address(_bare(host).split("%", 1)[0])
    except ValueError:
        return None


def _rule(entry: str) -> NoProxyRule | None:
    if entry == "*":
        return NoProxyRule(everything=True)
    port: int | None = None
    host = entry
    if entry.startswith("["):
        host, _, after = entry[1:].partition("]")
        if after:
            if not (after.startswith(":") and _PORT.fullmatch(after[1:])):
                return None
            port = int(after[1:])
    elif entry.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
        host, _, port_text = entry.partition(":")
        if not _PORT.fullmatch(port_text):
            return None
        port = int(port_text)
    try:
        return NoProxyRule(network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass
    name = _bare(host).removeprefix("*").lstrip(".")
    if not name or not _NAME.fullmatch(name):
        return None
    return NoProxyRule(domain=name, port=port)


def parse_no_proxy(text: str) -> tuple[NoProxyRule, ...]:
    """The rules of a ``NO_PROXY`` value (comma or space separated); unusable entries are skipped.

    >>> [r.matches("api.corp.example", 443) for r in parse_no_proxy("localhost, .corp.example")]
    [False, True]
    """
    entries = (e.strip() for e in re.split(r"[,\s]+", text or ""))
    return tuple(rule for rule in (_rule(e) for e in entries if e) if rule is not None)


# ---- which proxy a connection takes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadProxySetting:
    """An environment variable holds a URL that cannot be used as a proxy (the connection fails)."""

    variable: str
    why: str

    def error(self) -> ThalovantProxyError:
        """The non-retryable error a connection that needs this setting fails with."""
        return ThalovantProxyError(
            f"the proxy setting {self.variable} {self.why}", proxy=self.variable, retryable=False
        )


#: Where one connection goes: direct (None), through a proxy, or nowhere because its setting is bad.
Route = ProxyUrl | BadProxySetting | None


@dataclass(frozen=True, slots=True)
class ProxyPolicy:
    """Which proxy each destination takes (see the module docstring).

    Attributes:
        https: the proxy for ``wss``/``https`` destinations (or the bad setting), None for direct.
        http: the proxy for ``ws``/``http`` destinations (or the bad setting), None for direct.
        no_proxy: destinations that always go direct.
    """

    https: ProxyUrl | BadProxySetting | None = None
    http: ProxyUrl | BadProxySetting | None = None
    no_proxy: tuple[NoProxyRule, ...] = ()

    @classmethod
    def fixed(cls, url: str | ProxyUrl) -> ProxyPolicy:
        """Every destination through ``url`` (the client's ``proxy=`` argument; ``NO_PROXY`` is not read).

        Raises:
            LocalProtocolError: ``url`` is not a usable ``http://`` proxy URL (the message names ``proxy``).
        """
        proxy = url if isinstance(url, ProxyUrl) else parse_proxy_url(url)
        return cls(https=proxy, http=proxy)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProxyPolicy:
        """The policy the ``https_proxy``/``http_proxy``/``no_proxy`` variables (either case) describe."""
        cgi = "REQUEST_METHOD" in environ

        def pick(name: str) -> ProxyUrl | BadProxySetting | None:
            lower, upper = name.lower(), name.upper()
            variable = lower if lower in environ else upper
            if variable == "HTTP_PROXY" and cgi:
                return None
            text = environ.get(variable, "").strip()
            if not text:
                return None
            found = _problem(text)
            return BadProxySetting(variable, found) if isinstance(found, str) else found

        no_proxy = environ["no_proxy"] if "no_proxy" in environ else environ.get("NO_PROXY", "")
        return cls(https=pick("https_proxy"), http=pick("http_proxy"), no_proxy=parse_no_proxy(no_proxy))

    @property
    def active(self) -> bool:
        """Whether any destination may go through a proxy."""
        return self.https is not None or self.http is not None

    def route(self, host: str, port: int, *, tls: bool) -> Route:
        """Where a connection to ``host:port`` goes; ``tls`` for ``wss``/``https`` destinations."""
        chosen = self.https if tls else self.http
        if chosen is None or any(rule.matches(host, port) for rule in self.no_proxy):
            return None
        return chosen


#: No proxy for any destination (the client's ``proxy=None`` or ``proxy=False``).
DIRECT = ProxyPolicy()
