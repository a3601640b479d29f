"""Property tests for the identity: totality, round trips, and that secrets never show."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from thalovant.core.errors import ThalovantError, ThalovantIdentityError
from thalovant.core.identity.env import ENV_SUFFIXES
from thalovant.core.identity.fields import SplitUrl, split_url
from thalovant.core.identity.parse import parse_identity, parse_identity_text
from thalovant.shell.identity_io import ThalovantIdentity

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Secrets are long and fenced by markers no other generated value contains, so a substring check means something.
SECRET = st.text(alphabet=string.ascii_letters + string.digits, min_size=20, max_size=30).map(lambda s: f"ZQ{s}QZ")

KNOWN_KEYS = [
    "access_key", "key", "api_key", "accessKey", "apiKey", "password", "crypto_key", "cryptoKey", "site_id",
    "siteId", "site", "default_master", "host", "hub_http_host", "master", "default_port", "port",
    "hub_http_port", "default_path", "defaultPath", "hub_http_path", "path", "uri_path", "data_plane_endpoints",
    "dataPlaneEndpoints", "endpoints", "https", "http", "wss", "ws", "mqtt", "mqtts", "protocols", "network",
    "spec", "metadata",
]  # fmt: skip
MQTT_KEYS = [
    "endpoint", "broker_url", "username", "password", "topic_prefix", "topicPrefix", "hub_id", "c2s_topic",
    "s2c_topic", "status_topic", "hash_topics", "qos", "tls",
]  # fmt: skip

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS + MQTT_KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)

hosts = st.sampled_from(["127.0.0.1", "hub.example", "localhost", "[::1]"]) | st.from_regex(
    r"[a-z]{1,8}(\.[a-z]{2,4})?", fullmatch=True
)
ports = st.none() | st.integers(1, 65535)
segments = st.lists(st.from_regex(r"[A-Za-z0-9._~-]{1,8}", fullmatch=True), max_size=3)
topic_levels = st.lists(st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True), min_size=1, max_size=3).map("/".join)


def url(scheme: str, host: str, port: int | None, path: list[str], userinfo: str | None = None) -> str:
    auth = f"{userinfo}@" if userinfo else ""
    netloc = auth + host + (f":{port}" if port is not None else "")
    return f"{scheme}://{netloc}" + "".join(f"/{p}" for p in path)


@st.composite
def endpoint(draw: st.DrawFn, schemes: tuple[str, ...], *, with_path: bool, secrets: list[str]) -> str:
    userinfo = None
    if draw(st.booleans()):
        userinfo = f"user:{draw(SECRET)}"
        secrets.append(userinfo.split(":", 1)[1])
    return url(draw(st.sampled_from(schemes)), draw(hosts), draw(ports), draw(segments) if with_path else [], userinfo)


@st.composite
def valid_identities(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A valid identity mapping and every secret value it holds."""
    secrets: list[str] = []
    access_key = draw(SECRET)
    secrets.append(access_key)
    values: dict[str, Any] = {
        "access_key": access_key,
        "site_id": draw(st.from_regex(r"[a-z0-9-]{1,10}", fullmatch=True)),
    }
    credential = draw(st.sampled_from(["password", "psk", "both"]))
    if credential in ("password", "both"):
        values["password"] = draw(SECRET)
        secrets.append(values["password"])
    if credential in ("psk", "both"):
        values["crypto_key"] = draw(SECRET)
        secrets.append(values["crypto_key"])
    master = draw(endpoint(("http", "https", "ws", "wss"), with_path=True, secrets=secrets))
    values["default_master"] = master.split("://", 1)[1] if draw(st.booleans()) else master  # bare host or URL
    port = draw(ports)
    if port is not None:
        values["default_port"] = port
    values["default_path"] = "/".join(draw(segments))
    endpoints: dict[str, str] = {}
    if draw(st.booleans()):
        endpoints["https"] = draw(endpoint(("http", "https"), with_path=True, secrets=secrets))
    if draw(st.booleans()):
        endpoints["wss"] = draw(endpoint(("ws", "wss"), with_path=True, secrets=secrets))
    if draw(st.booleans()):
        endpoints["mqtt"] = draw(endpoint(("mqtt", "mqtts", "tcp", "ssl"), with_path=False, secrets=secrets))
    if endpoints:
        values["data_plane_endpoints"] = endpoints
    if draw(st.booleans()):
        values["protocols"] = {
            name: {"enabled": draw(st.booleans())} for name in draw(st.sets(st.sampled_from(["wss", "http", "mqtt"])))
        }
    if draw(st.booleans()):
        mqtt: dict[str, Any] = {"endpoint": draw(endpoint(("mqtt", "tcp"), with_path=False, secrets=secrets))}
        if draw(st.booleans()):
            mqtt["username"] = draw(SECRET)
            mqtt["password"] = draw(SECRET)
            secrets += [mqtt["username"], mqtt["password"]]
        for name in ("topic_prefix", "c2s_topic", "s2c_topic", "status_topic"):
            if draw(st.booleans()):
                mqtt[name] = draw(topic_levels)
        if draw(st.booleans()):
            mqtt["hub_id"] = draw(st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True))
        mqtt["qos"] = draw(st.sampled_from([0, 1]))
        mqtt["tls"] = draw(st.booleans())
        mqtt["hash_topics"] = draw(st.booleans())
        values["mqtt"] = mqtt
    metadata: dict[str, Any] = {}
    secret_keys = st.sampled_from(["token", "api_key", "Password", "authHeader", "client_secret"])
    for secret_key in draw(st.lists(secret_keys, unique=True, max_size=3)):
        secret = draw(SECRET)
        secrets.append(secret)
        if draw(st.booleans()):
            metadata[secret_key] = secret
        else:
            metadata.setdefault("nested", {})[secret_key] = secret
    if draw(st.booleans()):
        metadata["room"] = draw(st.sampled_from(["lab", "kitchen", 3, None, [1, "x"]]))
    if metadata:
        values["metadata"] = metadata
    return values, secrets


def shown_texts(ident: ThalovantIdentity) -> list[str]:
    return [repr(ident), str(ident), f"{ident}", json.dumps(ident.as_dict()), repr(ident.mqtt), str([ident])]


# ---- totality -------------------------------------------------------------------------------------


@FAST
@given(json_values)
def test_any_json_value_gives_an_identity_or_identity_error(value: Any) -> None:
    try:
        ident = ThalovantIdentity.from_mapping(value)
    except ThalovantIdentityError as exc:
        assert exc.problems and all(isinstance(p, str) and isinstance(m, str) for p, m in exc.problems)
    else:
        assert ThalovantIdentity.from_mapping(ident.as_dict(include_secrets=True)) == ident


@FAST
@given(valid_identities(), st.sampled_from(KNOWN_KEYS + [f"mqtt.{k}" for k in MQTT_KEYS]), json_values)
def test_one_field_replaced_by_any_json_never_escapes(
    case: tuple[dict[str, Any], list[str]], key: str, value: Any
) -> None:
    values, _ = case
    if key.startswith("mqtt."):
        values["mqtt"] = {**(values.get("mqtt") or {"endpoint": "mqtt://b"}), key[5:]: value}
    else:
        values[key] = value
    result = parse_identity(values)
    assert isinstance(result, Success | Failure)
    if isinstance(result, Success):
        ident = result.unwrap()
        assert parse_identity(ident.as_dict(include_secrets=True)) == Success(ident)
        ident.endpoint_base()
        for protocol in ("wss", "https", "mqtt"):
            ident.endpoint_for(protocol)
            ident.supports_protocol(protocol)
    else:
        assert len(result.failure()) >= 1


@FAST
@given(st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
def test_any_bytes_as_identity_file(data: bytes) -> None:
    try:
        ThalovantIdentity.from_text(data)
    except ThalovantIdentityError as exc:
        assert str(exc).startswith("invalid identity file")


@FAST
@given(json_values)
def test_any_json_text_as_identity_file(value: Any) -> None:
    text = json.dumps(value)
    expected = parse_identity(value, origin="f")
    assert parse_identity_text(text, origin="f") == parse_identity_text(text.encode(), origin="f") == expected


env_values = st.text(max_size=20) | st.sampled_from(["true", "0", "443", "https://h", "mqtt://b", "{}", '{"a": 1}'])


@FAST
@given(st.dictionaries(st.sampled_from(ENV_SUFFIXES), env_values, max_size=12))
def test_any_environment_gives_an_identity_or_identity_error(variables: dict[str, str]) -> None:
    environ = {f"THALOVANT_{name}": value for name, value in variables.items()}
    try:
        ident = ThalovantIdentity.from_environ(environ)
    except ThalovantIdentityError as exc:
        assert "environment (THALOVANT_*)" in str(exc)
    else:
        assert ThalovantIdentity.from_mapping(ident.as_dict(include_secrets=True)) == ident


# ---- round trips ----------------------------------------------------------------------------------


@FAST
@given(valid_identities())
def test_valid_identities_round_trip_exactly(case: tuple[dict[str, Any], list[str]]) -> None:
    values, _ = case
    ident = ThalovantIdentity.from_mapping(values)
    dumped = ident.as_dict(include_secrets=True)
    assert ThalovantIdentity.from_mapping(dumped) == ident
    assert ThalovantIdentity.from_text(json.dumps(dumped).encode()) == ident
    assert ThalovantIdentity.from_mapping(dumped).as_dict(include_secrets=True) == dumped
    assert ThalovantIdentity.from_mapping(dumped).as_dict() == ident.as_dict()
    base_url = split_url(ident.endpoint_base())
    assert isinstance(base_url, SplitUrl) and base_url.scheme in ("http", "https")
    for protocol, schemes in (("wss", ("ws", "wss")), ("mqtt", ("mqtt", "mqtts", "tcp", "ssl"))):
        found = ident.endpoint_for(protocol)
        if found is not None:
            parsed = split_url(found)
            assert isinstance(parsed, SplitUrl) and parsed.scheme in schemes


def to_environ(ident: ThalovantIdentity) -> dict[str, str]:
    env = {"ACCESS_KEY": ident.access_key, "SITE_ID": ident.site_id, "HUB_HTTP_HOST": ident.default_master}
    if ident.password is not None:
        env["PASSWORD"] = ident.password
    if ident.crypto_key is not None:
        env["CRYPTO_KEY"] = ident.crypto_key
    if ident.default_port is not None:
        env["HUB_HTTP_PORT"] = str(ident.default_port)
    env["HUB_HTTP_PATH"] = ident.default_path
    for name, var in (("https", "HUB_HTTPS_HOST"), ("wss", "HUB_WSS_HOST"), ("mqtt", "HUB_MQTT_HOST")):
        value = getattr(ident.data_plane_endpoints, name)
        if value is not None:
            env[var] = value
    if ident.mqtt is not None:
        for name, value in ident.mqtt.as_dict(include_secrets=True).items():
            if value is not None:
                env[f"MQTT_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    for name, flag in (("WSS", ident.protocols.wss), ("HTTP", ident.protocols.http), ("MQTT", ident.protocols.mqtt)):
        env[f"PROTOCOL_{name}_ENABLED"] = "true" if flag else "false"
    if ident.metadata:
        env["METADATA"] = json.dumps(ident.metadata)
    return {f"THALOVANT_{k}": v for k, v in env.items()}


@FAST
@given(valid_identities())
def test_environment_can_express_every_identity(case: tuple[dict[str, Any], list[str]]) -> None:
    ident = ThalovantIdentity.from_mapping(case[0])
    assert ThalovantIdentity.from_environ(to_environ(ident)) == ident


@FAST
@given(
    st.sampled_from(["http", "https", "ws", "wss", "mqtt"]),
    hosts,
    ports,
    segments,
    st.none() | st.from_regex(r"[a-z]{1,5}=[a-z0-9]{0,5}", fullmatch=True),
)
def test_split_url_round_trips(scheme: str, host: str, port: int | None, path: list[str], query: str | None) -> None:
    text = url(scheme, host, port, path) + (f"?{query}" if query else "")
    split = split_url(text)
    assert isinstance(split, SplitUrl)
    assert (split.scheme, split.host, split.port, split.query) == (scheme, host, port, query or "")
    assert split_url(split.unsplit()) == split


# ---- secrets never show ---------------------------------------------------------------------------


@FAST
@given(valid_identities())
def test_no_secret_in_repr_str_or_redacted_dict(case: tuple[dict[str, Any], list[str]]) -> None:
    values, secrets = case
    ident = ThalovantIdentity.from_mapping(values)
    for text in shown_texts(ident):
        for secret in secrets:
            assert secret not in text
    with_secrets = json.dumps(ident.as_dict(include_secrets=True))
    assert all(secret in with_secrets for secret in secrets)  # the generator really planted them


BREAKERS: list[tuple[str, Any]] = [
    ("site_id", []),
    ("default_port", 0),
    ("default_master", "ftp://nowhere"),
    ("protocols", "sometimes"),
    ("metadata", "not an object"),
]


@FAST
@given(valid_identities(), st.lists(st.sampled_from(range(len(BREAKERS))), min_size=1, max_size=3), SECRET, SECRET)
def test_no_secret_in_any_error_message(
    case: tuple[dict[str, Any], list[str]], breakers: list[int], secret_a: str, secret_b: str
) -> None:
    values, secrets = case
    for index in breakers:
        key, bad = BREAKERS[index]
        values[key] = bad
    # secret-carrying values that are themselves invalid
    values["access_key"] = f"{secret_a}:{secret_b}"
    values["crypto_key"] = secret_a[:12]
    values["data_plane_endpoints"] = {"mqtt": f"https://user:{secret_b}@h", "wss": f"ws://u:{secret_a}@h:0"}
    values["mqtt"] = {"endpoint": f"mqtt://user:{secret_b}@h/x", "password": secret_a, "topic_prefix": f"{secret_b}/#"}
    try:
        ThalovantIdentity.from_mapping(values)
    except ThalovantError as exc:
        message = str(exc) + repr(exc) + repr(getattr(exc, "problems", ()))
        for secret in [*secrets, secret_a, secret_b, secret_a[:12]]:
            assert secret not in message
    else:
        raise AssertionError("an identity with a ':' in its access key was accepted")
