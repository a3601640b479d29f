"""The pure proxy values: proxy URLs, NO_PROXY, the environment's precedence, and the CONNECT exchange."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.errors import (
    LocalProtocolError,
    ThalovantAuthenticationError,
    ThalovantProxyAuthenticationError,
    ThalovantProxyError,
)
from thalovant.core.links.base import percent_encode
from thalovant.core.links.proxy import (
    DIRECT,
    BadProxySetting,
    ProxyPolicy,
    ProxyUrl,
    parse_no_proxy,
    parse_proxy_url,
)
from thalovant.core.links.proxy_connect import (
    auth_schemes,
    connect_request,
    judge_answer,
    proxy_refused_credentials,
    tunnel_target,
)

SECRET = "s3cr3t-Pa55"

# ---- proxy URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port", "user", "password"),
    [
        ("http://proxy.corp:3128", "proxy.corp", 3128, None, None),
        ("http://proxy.corp:3128/", "proxy.corp", 3128, None, None),
        ("HTTP://Proxy.Corp", "Proxy.Corp", 80, None, None),
        ("proxy.corp:8080", "proxy.corp", 8080, None, None),
        ("  http://10.0.0.1:3128  ", "10.0.0.1", 3128, None, None),
        ("http://[::1]:3128", "::1", 3128, None, None),
        ("http://alice:pw@proxy:1", "proxy", 1, "alice", "pw"),
        ("http://alice@proxy:1", "proxy", 1, "alice", ""),
        ("http://a%40corp:p%3Aw%2F@proxy:1", "proxy", 1, "a@corp", "p:w/"),
        ("http://alice:p@ss@proxy:1", "proxy", 1, "alice", "p@ss"),
        ("http://j%C3%B6rg:x@proxy:1", "proxy", 1, "jörg", "x"),
    ],
)
def test_proxy_urls_parse(text: str, host: str, port: int, user: str | None, password: str | None) -> None:
    proxy = parse_proxy_url(text)
    assert (proxy.host, proxy.port, proxy.username) == (host, port, user)
    if password is not None:
        assert proxy.password == password


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("https://u:" + SECRET + "@proxy:443", "https://"),
        ("socks5://u:" + SECRET + "@proxy:1080", "only http://"),
        ("http://u:" + SECRET + "@:3128", "no host"),
        ("http://u:" + SECRET + "@proxy:0", "bad port"),
        ("http://u:" + SECRET + "@proxy:70000", "bad port"),
        ("http://u:" + SECRET + "@proxy:3x", "bad port"),
        ("http://u:" + SECRET + "@[nope]:1", "IPv6"),
        ("http://u:" + SECRET + "@pro xy:1", "host name"),
        ("   ", "empty"),
    ],
)
def test_bad_proxy_urls_name_the_field_never_the_value(text: str, says: str) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        parse_proxy_url(text, field_name="proxy")
    message = str(caught.value)
    assert message.startswith("proxy ") and says in message
    assert SECRET not in message and "proxy:" not in message.removeprefix("proxy ")


def test_credentials_leave_only_through_the_authorization_header() -> None:
    proxy = parse_proxy_url(f"http://alice:{SECRET}@proxy.corp:3128")
    assert SECRET not in repr(proxy) and SECRET not in str(proxy) and "alice" not in repr(proxy)
    assert str(proxy) == proxy.display == "http://proxy.corp:3128"
    assert repr(proxy) == "ProxyUrl('http://proxy.corp:3128', credentials=True)"
    assert proxy.authorization == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert SECRET not in repr(ProxyPolicy.fixed(proxy)) and parse_proxy_url("http://p:1").authorization is None


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(user=_TEXT, password=_TEXT, port=st.integers(1, 65535))
def test_percent_encoded_credentials_round_trip(user: str, password: str, port: int) -> None:
    proxy = parse_proxy_url(f"http://{percent_encode(user)}:{percent_encode(password)}@proxy.example:{port}")
    assert (proxy.username, proxy.password, proxy.port) == (user, password, port)
    assert repr(proxy) == f"ProxyUrl('http://proxy.example:{port}', credentials=True)"


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60), tail=st.text(st.characters(codec="ascii"), min_size=8, max_size=20))
def test_parsing_never_raises_anything_else_and_never_echoes(text: str, tail: str) -> None:
    password = "Pw!" + tail  # "!" can never be part of a host name, so it can only leak from the credentials
    candidate = text.replace("@", "") + ":" + password + "@" + text
    try:
        parsed = parse_proxy_url(candidate)
    except LocalProtocolError as exc:
        assert password not in str(exc) and "Pw!" not in str(exc)
    else:
        assert "Pw!" not in repr(parsed) and "Pw!" not in parsed.display


# ---- NO_PROXY ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "direct"),
    [
        ("*", "anything.example", 443, True),
        ("example.com", "example.com", 443, True),
        ("example.com", "hub.example.com", 443, True),
        (".example.com", "example.com", 443, True),
        (".example.com", "a.b.example.com", 443, True),
        ("*.example.com", "hub.example.com", 443, True),
        ("example.com", "notexample.com", 443, False),
        ("example.com", "example.com.evil.net", 443, False),
        ("EXAMPLE.com", "Hub.Example.COM.", 443, True),
        ("example.com:443", "hub.example.com", 443, True),
        ("example.com:443", "hub.example.com", 5678, False),
        ("127.0.0.1", "127.0.0.1", 1, True),
        ("127.0.0.1", "127.0.0.2", 1, False),
        ("127.0.0.0/8", "127.9.9.9", 1, True),
        ("10.0.0.0/8", "11.0.0.1", 1, False),
        ("10.0.0.0/8", "ten.example", 1, False),  # names are never resolved
        ("::1", "::1", 1, True),
        ("::1", "[::1]", 1, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 8081, False),
        ("fd00::/8", "fd12::5", 1, True),
        ("fd00::/8", "10.0.0.1", 1, False),
        ("localhost, .corp.example", "api.corp.example", 1, True),
        ("localhost .corp.example", "localhost", 1, True),
        ("", "example.com", 1, False),
        ("bad entry:xx, ,,[::1]x, *.example.com", "hub.example.com", 1, True),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, direct: bool) -> None:
    policy = ProxyPolicy(https=ProxyUrl("proxy", 3128), no_proxy=parse_no_proxy(no_proxy))
    assert (policy.route(host, port, tls=True) is None) is direct


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(domain=st.lists(_LABEL, min_size=1, max_size=3), below=st.lists(_LABEL, max_size=3), glue=_LABEL)
def test_a_domain_entry_matches_itself_and_below_only_on_label_boundaries(
    domain: list[str], below: list[str], glue: str
) -> None:
    name = ".".join([*domain, "test"])  # a name, never an IP address (those match IP entries only)
    rules = parse_no_proxy(name)
    assert rules and rules[0].matches(".".join([*below, name]), 443)
    lookalike = glue + name  # e.g. "notexample.com" for "example.com"
    assert not rules[0].matches(lookalike, 443)


@settings(max_examples=200, deadline=None)
@given(address=st.ip_addresses(), prefix=st.integers(0, 32))
def test_a_cidr_entry_matches_exactly_its_network(address: ipaddress.IPv4Address, prefix: int) -> None:
    if address.version != 4:
        prefix *= 4
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    (rule,) = parse_no_proxy(str(network))
    assert rule.matches(str(address), 1)
    outside = network.broadcast_address + 1 if int(network.broadcast_address) < 2**address.max_prefixlen - 1 else None
    if outside is not None:
        assert not rule.matches(str(outside), 1)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80), host=st.text(max_size=30), port=st.integers(0, 70000))
def test_no_proxy_never_raises(text: str, host: str, port: int) -> None:
    for rule in parse_no_proxy(text):
        assert rule.matches(host, port) in (True, False)


# ---- the environment --------------------------------------------------------------------------------


def test_tls_destinations_take_https_proxy_and_plain_ones_http_proxy() -> None:
    policy = ProxyPolicy.from_environ({"HTTPS_PROXY": "http://secure:1", "HTTP_PROXY": "http://plain:2"})
    assert policy.route("hub", 443, tls=True) == ProxyUrl("secure", 1)
    assert policy.route("hub", 80, tls=False) == ProxyUrl("plain", 2)
    only = ProxyPolicy.from_environ({"https_proxy": "http://secure:1"})
    assert only.route("hub", 80, tls=False) is None and only.active


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}, ProxyUrl("lower", 1)),
        ({"HTTPS_PROXY": "http://upper:2"}, ProxyUrl("upper", 2)),
        ({"https_proxy": "", "HTTPS_PROXY": "http://upper:2"}, None),  # an empty lower-case one switches it off
        ({"https_proxy": "   "}, None),
        ({}, None),
    ],
)
def test_lower_case_wins_even_when_empty(environ: dict[str, str], expected: ProxyUrl | None) -> None:
    assert ProxyPolicy.from_environ(environ).route("hub", 443, tls=True) == expected


def test_no_proxy_precedence_and_upper_case_http_proxy_under_cgi() -> None:
    environ = {"HTTPS_PROXY": "http://p:1", "no_proxy": "hub.corp", "NO_PROXY": "*"}
    assert ProxyPolicy.from_environ(environ).route("other", 443, tls=True) == ProxyUrl("p", 1)
    assert ProxyPolicy.from_environ(environ).route("hub.corp", 443, tls=True) is None
    cgi = {"HTTP_PROXY": "http://attacker:1", "REQUEST_METHOD": "GET"}
    assert ProxyPolicy.from_environ(cgi).route("hub", 80, tls=False) is None  # "httpoxy"
    cgi_lower = {"http_proxy": "http://mine:1", "REQUEST_METHOD": "GET"}
    assert ProxyPolicy.from_environ(cgi_lower).route("hub", 80, tls=False) == ProxyUrl("mine", 1)


def test_a_bad_environment_url_fails_only_the_connections_that_need_it() -> None:
    policy = ProxyPolicy.from_environ({"HTTPS_PROXY": f"socks5://u:{SECRET}@socks:1080", "NO_PROXY": "local.hub"})
    assert policy.route("local.hub", 443, tls=True) is None and policy.route("hub", 80, tls=False) is None
    bad = policy.route("hub", 443, tls=True)
    assert isinstance(bad, BadProxySetting) and bad.variable == "HTTPS_PROXY"
    error = bad.error()
    assert isinstance(error, ThalovantProxyError) and not error.retryable and error.proxy == "HTTPS_PROXY"
    assert "HTTPS_PROXY" in str(error) and SECRET not in str(error) and SECRET not in repr(policy)


def test_fixed_and_direct_policies() -> None:
    fixed = ProxyPolicy.fixed("http://p:1")
    assert fixed.route("127.0.0.1", 5678, tls=False) == fixed.route("hub", 443, tls=True) == ProxyUrl("p", 1)
    assert DIRECT.route("hub", 443, tls=True) is None and not DIRECT.active
    with pytest.raises(LocalProtocolError, match=r"^proxy uses https"):
        ProxyPolicy.fixed(f"https://u:{SECRET}@p:1")


# ---- the CONNECT exchange ---------------------------------------------------------------------------


def test_connect_request_asks_for_the_hub_and_authenticates_only_when_told() -> None:
    assert connect_request("hub.example", 443, ProxyUrl("p", 1)) == ("hub.example:443", [("Host", "hub.example:443")])
    target, headers = connect_request("::1", 5678, parse_proxy_url("http://alice:pw@p:1"))
    basic = "Basic " + base64.b64encode(b"alice:pw").decode()
    assert target == tunnel_target("::1", 5678) == "[::1]:5678"
    assert headers == [("Host", "[::1]:5678"), ("Proxy-Authorization", basic)]


def test_auth_schemes_keep_only_scheme_tokens() -> None:
    values = ['Basic realm="x", Negotiate', "NTLM TlRMTVNTUAACAAAA", "bad\x00scheme", 'Digest realm="a", nonce="b"']
    assert auth_schemes(values) == ("Basic", "Negotiate", "NTLM", "Digest")
    assert auth_schemes([]) == ()


@pytest.mark.parametrize(
    ("status", "kind", "retryable", "words"),
    [
        (200, None, None, ""),
        (204, None, None, ""),
        (407, ThalovantProxyAuthenticationError, False, "refused the proxy credentials (HTTP 407)"),
        (403, ThalovantProxyError, False, "refused the tunnel to hub:443 (HTTP 403 Nope)"),
        (405, ThalovantProxyError, False, "refused the tunnel"),
        (502, ThalovantProxyError, True, "could not reach hub:443 (HTTP 502 Nope)"),
        (503, ThalovantProxyError, True, "could not reach"),
        (504, ThalovantProxyError, True, "could not reach"),
        (500, ThalovantProxyError, True, "failed to open a tunnel"),
        (429, ThalovantProxyError, True, "failed to open a tunnel"),
        (301, ThalovantProxyError, False, "refused the tunnel"),
    ],
)
def test_answers_sort_into_typed_errors(status: int, kind: type | None, retryable: bool | None, words: str) -> None:
    proxy = parse_proxy_url(f"http://alice:{SECRET}@proxy.corp:3128")
    error = judge_answer(proxy, "hub", 443, status=status, reason="Nope")
    if kind is None:
        assert error is None
        return
    assert type(error) is kind and error is not None
    assert error.retryable is retryable and error.status_code == status and error.proxy == "http://proxy.corp:3128"
    assert words in str(error) and "the proxy http://proxy.corp:3128" in str(error)
    assert SECRET not in str(error) and "alice" not in str(error)


def test_a_407_is_an_authentication_error_that_names_the_proxy_not_the_hub() -> None:
    error = judge_answer(ProxyUrl("p", 1), "hub", 443, status=407, schemes=("Negotiate", "NTLM"))
    assert isinstance(error, ThalovantAuthenticationError) and isinstance(error, ThalovantProxyError)
    assert "requires credentials (HTTP 407)" in str(error) and "hub refused" not in str(error)
    assert "it offers Negotiate, NTLM; thalovant speaks Basic only" in str(error)
    assert "offers" not in str(judge_answer(ProxyUrl("p", 1), "hub", 443, status=407, schemes=("Basic",)))


@settings(max_examples=300, deadline=None)
@given(status=st.integers(100, 599), reason=st.text(max_size=300))
def test_every_status_has_one_verdict_and_a_short_printable_message(status: int, reason: str) -> None:
    error = judge_answer(parse_proxy_url(f"http://u:{SECRET}@p:1"), "hub", 443, status=status, reason=reason)
    assert (error is None) is (200 <= status < 300)
    if error is not None:
        assert error.status_code == status and SECRET not in str(error)
        assert str(error).isprintable() and len(str(error)) < 300


@pytest.mark.parametrize("user", [None, "alice"])
def test_a_407_told_as_text_is_recognised_even_cut_short(user: str | None) -> None:
    """The link machines carry a failed tunnel on as text (cut to 120 characters); connect() types it again."""
    proxy = parse_proxy_url(f"http://{user}:{SECRET}@proxy.corp:3128" if user else "http://proxy.corp:3128")
    error = judge_answer(proxy, "hub", 443, status=407)
    assert error is not None
    cut = str(error)[: str(error).index("(HTTP 407") + 9]  # what survives when the rest is cut off
    for detail in (str(error), "closed 1015: " + cut):
        again = proxy_refused_credentials(detail)
        assert isinstance(again, ThalovantProxyAuthenticationError)
        assert again.proxy == "http://proxy.corp:3128" and again.status_code == 407 and not again.retryable
    for other in (judge_answer(proxy, "hub", 443, status=403), judge_answer(proxy, "hub", 443, status=502)):
        assert proxy_refused_credentials(str(other)) is None
    assert proxy_refused_credentials("the hub refused the credentials (HTTP 403)") is None


@given(st.text(max_size=200))
def test_recognising_a_407_never_raises(text: str) -> None:
    found = proxy_refused_credentials(text)
    assert found is None or found.status_code == 407
