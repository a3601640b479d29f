"""Table tests for the identity: fields, aliases, validation, endpoints, env, files, redaction."""

from __future__ import annotations

import json
from typing import Any

import pytest
from returns.result import Failure, Success

from tests.paths import TESTS
from thalovant.core.errors import ThalovantIdentityError, ThalovantUnsupportedProtocolError
from thalovant.core.identity.env import ENV_SUFFIXES, identity_from_environ
from thalovant.core.identity.fields import IdentityProblem, split_url, without_userinfo
from thalovant.core.identity.model import Identity
from thalovant.core.identity.mqtt import MqttBrokerCredentials
from thalovant.core.identity.parse import parse_identity, parse_identity_text
from thalovant.core.identity.protocols import (
    HubDataPlaneEndpoints,
    HubProtocolSettings,
    SelectedHubEndpoint,
    normalize_protocol,
    select_data_plane_endpoint,
)
from thalovant.shell.identity_io import ThalovantIdentity

FIXTURES = TESTS / "fixtures" / "identity"
KEY = "0123456789abcdef0123456789abcdef"
PW = "b3f1c2d4e5a6978812ab34cd56ef7890"
PSK = "6b1f0c2a9d3e4f57"


def base(**extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"access_key": KEY, "password": PW, "site_id": "s1", "default_master": "http://127.0.0.1"}
    values.update(extra)
    return {k: v for k, v in values.items() if v is not ...}


def problems_of(values: object) -> list[tuple[str, str]]:
    result = parse_identity(values)
    assert isinstance(result, Failure), result
    return [(p.path, p.message) for p in result.failure()]


def paths_of(values: object) -> list[str]:
    return [path for path, _ in problems_of(values)]


# ---- required fields and credentials -------------------------------------------------------------


def test_full_fixture_parses_every_field() -> None:
    ident = ThalovantIdentity.from_text((FIXTURES / "full.json").read_bytes())
    assert ident.access_key == KEY
    assert ident.password == PW
    assert ident.crypto_key == PSK
    assert ident.site_id == "loopback-test"
    assert ident.default_master == "http://127.0.0.1"  # trailing slash removed
    assert ident.default_port == 5679  # "5679" became an int
    assert ident.default_path == ""
    assert ident.data_plane_endpoints == HubDataPlaneEndpoints(
        https="http://127.0.0.1:5679", wss="ws://127.0.0.1:5678", mqtt="mqtt://127.0.0.1:1883"
    )
    assert ident.protocols == HubProtocolSettings(wss=True, http=True, mqtt=True)
    assert ident.mqtt == MqttBrokerCredentials(
        endpoint="mqtt://127.0.0.1:1883",
        username=KEY,
        password="broker-pw-7d1e0c9b",
        topic_prefix="hivemind/thalovant-test-hub",
        tls=False,
    )
    assert ident.metadata == {"team": "qa", "api_token": "tok-5e2b"}
    assert ident.enabled_protocols() == ("wss", "https", "mqtt")


@pytest.mark.parametrize(
    ("password", "crypto_key"),
    [(PW, None), (None, PSK), (PW, PSK)],
    ids=["password-only", "psk-only", "both"],
)
def test_password_psk_or_both_are_accepted(password: str | None, crypto_key: str | None) -> None:
    ident = ThalovantIdentity.from_mapping(base(password=password if password else ..., crypto_key=crypto_key))
    assert (ident.password, ident.crypto_key) == (password, crypto_key)


def test_neither_password_nor_crypto_key_is_refused() -> None:
    assert problems_of(base(password=...)) == [("password", "missing: give password, crypto_key or both")]


@pytest.mark.parametrize("field", ["access_key", "site_id", "default_master"])
def test_required_fields(field: str) -> None:
    assert paths_of(base(**{field: ...})) == [field]
    assert paths_of(base(**{field: "   "})) == [field]  # blank counts as missing
    assert paths_of(base(**{field: None})) == [field]


def test_missing_access_key_message_names_the_aliases() -> None:
    with pytest.raises(ThalovantIdentityError, match=r"access_key: missing required field \(or key, api_key"):
        ThalovantIdentity.from_mapping(base(access_key=...))


def test_every_problem_is_reported_at_once() -> None:
    values = {
        "access_key": "a:b",
        "crypto_key": "short\x00",
        "default_port": 0,
        "default_master": "ftp://h",
        "data_plane_endpoints": {"wss": "http://h"},
        "protocols": {"mqtt": "perhaps"},
        "mqtt": {"endpoint": "mqtt://b:1883", "topic_prefix": "a/#", "qos": 2},
        "metadata": [1, 2],
    }
    with pytest.raises(ThalovantIdentityError) as info:
        ThalovantIdentity.from_mapping(values)
    assert [path for path, _ in info.value.problems] == [
        "access_key",
        "crypto_key",
        "site_id",
        "default_port",
        "default_master",
        "data_plane_endpoints.wss",
        "protocols.mqtt",
        "mqtt.topic_prefix",
        "mqtt.qos",
        "metadata",
    ]
    assert "(10 problems)" in str(info.value)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("a:b", "must not contain ':'"),
        ("a b", "must not contain whitespace"),
        ("a\x00b", "must not contain control characters"),
        (12345, "must be a string"),
        (["k"], "must be a string"),
    ],
)
def test_access_key_rules(key: object, message: str) -> None:
    [(path, msg)] = problems_of(base(access_key=key))
    assert path == "access_key" and message in msg


# A crypto_key shorter than 16 characters loads (issue 12 item 5): tests/core/identity/test_identity_door.py.


def test_runtime_crypto_key_is_the_first_16_characters() -> None:
    ident = ThalovantIdentity.from_mapping(base(crypto_key="  " + PSK + "tail-ignored  "))
    assert ident.crypto_key == PSK + "tail-ignored"
    assert ident.runtime_crypto_key == PSK
    assert ThalovantIdentity.from_mapping(base()).runtime_crypto_key is None


# ---- aliases and precedence -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "attribute", "raw", "expected"),
    [
        ("key", "access_key", KEY, KEY),
        ("api_key", "access_key", KEY, KEY),
        ("accessKey", "access_key", KEY, KEY),
        ("apiKey", "access_key", KEY, KEY),
        ("cryptoKey", "crypto_key", PSK, PSK),
        ("siteId", "site_id", "kitchen", "kitchen"),
        ("site", "site_id", 7, "7"),
        ("host", "default_master", "http://h/", "http://h"),
        ("hub_http_host", "default_master", "https://h", "https://h"),
        ("master", "default_master", "h.example", "h.example"),
        ("port", "default_port", "443", 443),
        ("hub_http_port", "default_port", 8080, 8080),
        ("defaultPath", "default_path", "a/b/", "/a/b"),
        ("hub_http_path", "default_path", "/a", "/a"),
        ("path", "default_path", "/", ""),
        ("uri_path", "default_path", "//x//y//", "/x/y"),
    ],
)
def test_aliases(alias: str, attribute: str, raw: object, expected: object) -> None:
    canonical = {"key": "access_key", "cryptoKey": "crypto_key"}.get(alias, attribute)
    values = base(**{canonical: ...}) if canonical in base() else base()
    values[alias] = raw
    assert getattr(ThalovantIdentity.from_mapping(values), attribute) == expected


def test_alias_fixture() -> None:
    ident = ThalovantIdentity.from_text((FIXTURES / "aliases.json").read_text())
    assert (ident.access_key, ident.crypto_key, ident.site_id, ident.password) == (KEY, PSK, "42", None)
    assert ident.endpoint_base() == "https://hub.example.com:443/base/hivemind/public"


def test_canonical_key_wins_then_first_alias() -> None:
    ident = ThalovantIdentity.from_mapping(base(key="second", api_key="third"))
    assert ident.access_key == KEY
    ident = ThalovantIdentity.from_mapping(base(access_key=None, key="second", api_key="third"))
    assert ident.access_key == "second"
    ident = ThalovantIdentity.from_mapping(base(access_key="", key=" ", api_key="third"))
    assert ident.access_key == "third"


def test_unknown_keys_are_ignored() -> None:
    assert ThalovantIdentity.from_mapping(base(colour="blue")) == ThalovantIdentity.from_mapping(base())


# ---- ports, paths, master -------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(1, 1), ("65535", 65535), (" 443 ", 443), (443.0, 443), (None, None)])
def test_valid_ports(raw: object, expected: int | None) -> None:
    assert ThalovantIdentity.from_mapping(base(default_port=raw)).default_port == expected


@pytest.mark.parametrize("raw", [0, "0", 65536, -1, True, "abc", 1.5, "99999999999999999999", [1]])
def test_invalid_ports_are_problems_not_defaults(raw: object) -> None:
    assert paths_of(base(default_port=raw)) == ["default_port"]


@pytest.mark.parametrize("raw", ["/a?b", "/a#b", "/a b", {"p": 1}])
def test_invalid_paths(raw: object) -> None:
    assert paths_of(base(default_path=raw)) == ["default_path"]


@pytest.mark.parametrize(
    "master", ["ftp://h", "http://", "http://h?x=1", "http://h#f", "http://h:0", "http://h:70000", "a b", "/"]
)
def test_invalid_masters(master: str) -> None:
    assert paths_of(base(default_master=master)) == ["default_master"]


# ---- endpoints ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # 0.4.7 §f #38: wss master -> https, base path + default_path, explicit port
        (
            {"default_master": "wss://h/base", "default_path": "/hivemind/public", "default_port": 443},
            "https://h:443/base/hivemind/public",
        ),
        # 0.4.7 §f #39: explicit https endpoint + explicit port; default_path not added
        (
            {
                "data_plane_endpoints": {"https": "https://api.example.com/hivemind/public"},
                "default_port": 443,
                "default_path": "/ignored",
            },
            "https://api.example.com:443/hivemind/public",
        ),
        # fix §g.30: no default port glued onto an https URL without one
        ({"data_plane_endpoints": {"https": "https://api.example.com/hub"}}, "https://api.example.com/hub"),
        ({"default_master": "https://h.example"}, "https://h.example"),
        ({"default_master": "wss://h.example/x"}, "https://h.example/x"),
        # http URLs without a port get the HiveMind port 5679
        ({"default_master": "http://127.0.0.1"}, "http://127.0.0.1:5679"),
        ({"default_master": "ws://127.0.0.1", "default_path": "p"}, "http://127.0.0.1:5679/p"),
        ({"data_plane_endpoints": {"https": "http://127.0.0.1"}}, "http://127.0.0.1:5679"),
        # a port in the URL always wins
        ({"default_master": "https://h:8443", "default_port": 5679}, "https://h:8443"),
        ({"data_plane_endpoints": {"https": "http://127.0.0.1:5679"}, "default_port": 80}, "http://127.0.0.1:5679"),
        # bare hosts: https on 443, else http
        ({"default_master": "hub.example"}, "http://hub.example:5679"),
        ({"default_master": "hub.example", "default_port": 443}, "https://hub.example:443"),
        ({"default_master": "hub.example:443/x"}, "https://hub.example:443/x"),
        ({"default_master": "[::1]:5679"}, "http://[::1]:5679"),
        # userinfo is kept in the base (it is the caller's), but never shown (see redaction tests)
        ({"default_master": "https://u:pw@h"}, "https://u:pw@h"),
    ],
)
def test_endpoint_base(values: dict[str, Any], expected: str) -> None:
    ident = ThalovantIdentity.from_mapping({**base(), **values})
    assert ident.endpoint_base() == expected
    assert ident.endpoint_for("https") == expected
    assert ident.endpoint_for("HTTP") == expected


@pytest.mark.parametrize(
    ("key", "url", "problem"),
    [
        ("https", "ws://h", "scheme must be one of https://, http://"),
        ("https", "https://h/x?y=1", "must not contain a ?query"),
        ("wss", "http://h", "scheme must be one of wss://, ws://"),
        ("mqtt", "https://h", "scheme must be one of mqtt://, mqtts://, tcp://, ssl://"),
        ("mqtt", "mqtt://h:1883/path", "no path or query"),
        ("wss", "wss://h#frag", "#fragment"),
        ("wss", "wss://:443", "must name a host"),
        ("wss", "wss://h:0", "port outside"),
        ("wss", "not a url", "must not contain whitespace"),
        ("wss", "hostonly", "must be a URL"),
        ("wss", 5, "must be a string"),
    ],
)
def test_endpoint_validation(key: str, url: object, problem: str) -> None:
    [(path, message)] = problems_of(base(data_plane_endpoints={key: url}))
    assert path == f"data_plane_endpoints.{key}"
    assert problem in message


@pytest.mark.parametrize(
    ("values", "https", "wss", "mqtt"),
    [
        ({"dataPlaneEndpoints": {"http": "https://a/", "ws": "WSS://b/x?q=1"}}, "https://a", "wss://b/x?q=1", None),
        ({"endpoints": {"mqtts": "mqtts://m"}}, None, None, "mqtts://m"),
        ({"https": "https://a", "ws": "ws://b", "mqtts": "ssl://m:8883"}, "https://a", "ws://b", "ssl://m:8883"),
        ({"mqtt": "tcp://m"}, None, None, "tcp://m"),  # a top-level *string* mqtt is an endpoint
    ],
)
def test_endpoint_sources_and_aliases(values: dict[str, Any], https: str, wss: str, mqtt: str) -> None:
    ident = ThalovantIdentity.from_mapping(base(**values))
    assert ident.data_plane_endpoints == HubDataPlaneEndpoints(https=https, wss=wss, mqtt=mqtt)


def test_top_level_mqtt_credentials_are_not_an_endpoint() -> None:
    """0.4.7 §g.5 turned str(credentials dict) into the mqtt endpoint, broker password included."""
    ident = ThalovantIdentity.from_mapping(base(mqtt={"endpoint": "mqtt://b", "username": "u", "password": "pw-77"}))
    assert ident.data_plane_endpoints.mqtt is None
    assert ident.endpoint_for("mqtt") == "mqtt://b"
    assert "pw-77" not in json.dumps(ident.as_dict())


def test_endpoint_for_spellings_and_unknown() -> None:
    ident = ThalovantIdentity.from_text((FIXTURES / "full.json").read_bytes())
    assert (
        ident.endpoint_for("wss")
        == ident.endpoint_for("ws")
        == ident.endpoint_for("WebSocket")
        == "ws://127.0.0.1:5678"
    )
    assert ident.endpoint_for("mqtt") == ident.endpoint_for("mqtts") == "mqtt://127.0.0.1:1883"
    with pytest.raises(ThalovantUnsupportedProtocolError, match="unknown protocol 'carrier-pigeon'"):
        ident.endpoint_for("carrier-pigeon")
    assert ThalovantIdentity.from_mapping(base()).endpoint_for("wss") is None
    assert ThalovantIdentity.from_mapping(base()).endpoint_for("mqtt") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wss", "wss"),
        ("WS", "wss"),
        (" websocket ", "wss"),
        ("https", "https"),
        ("Http", "https"),
        ("mqtt", "mqtt"),
        ("MQTTS", "mqtt"),
    ],
)
def test_normalize_protocol(name: str, expected: str) -> None:
    assert normalize_protocol(name) == expected


@pytest.mark.parametrize("name", ["", "tcp", "grpc", 3, None])
def test_normalize_protocol_refuses_unknown(name: object) -> None:
    with pytest.raises(ThalovantUnsupportedProtocolError):
        normalize_protocol(name)


# ---- protocol flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocols", "expected"),
    [
        ({"wss": True, "http": False, "mqtt": False}, ("wss",)),
        ({"websocket": "yes", "https": "on"}, ("wss", "https")),
        ({"wss": {"enabled": "off"}, "http": {"enabled": 1}}, ("https",)),
        ({"ws": 0, "http": "FALSE"}, ()),
        ({"wss": {"enabled": None}}, ("https",)),  # unspecified -> default
    ],
)
def test_protocol_flag_forms(protocols: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert ThalovantIdentity.from_mapping(base(protocols=protocols)).enabled_protocols() == expected


def test_protocol_flag_sources_in_order() -> None:
    spec = {"spec": {"protocols": {"mqtt": True, "http": False}}}
    assert ThalovantIdentity.from_mapping(base(**spec)).protocols == HubProtocolSettings(
        wss=False, http=False, mqtt=True
    )
    network = {"network": {"wss": True}}
    assert ThalovantIdentity.from_mapping(base(**network, **spec)).protocols.wss is True
    assert ThalovantIdentity.from_mapping(base(protocols={"http": False}, **network)).protocols.http is False


@pytest.mark.parametrize(
    ("protocols", "path"),
    [({"wss": "maybe"}, "protocols.wss"), ("all", "protocols"), ({"http": {"enabled": 2}}, "protocols.http.enabled")],
)
def test_invalid_protocol_flags(protocols: object, path: str) -> None:
    assert paths_of(base(protocols=protocols)) == [path]


def test_protocol_defaults_follow_what_is_usable() -> None:
    """Fix §g.31: without flags, 0.4.7 claimed wss-only while dialling https."""
    assert ThalovantIdentity.from_mapping(base()).enabled_protocols() == ("https",)
    with_wss = ThalovantIdentity.from_mapping(base(data_plane_endpoints={"wss": "wss://h"}))
    assert with_wss.enabled_protocols() == ("wss", "https")
    with_mqtt = ThalovantIdentity.from_mapping(base(mqtt={"endpoint": "mqtts://b"}))
    assert with_mqtt.enabled_protocols() == ("https", "mqtt")


def test_supports_protocol_needs_flag_and_endpoint() -> None:
    ident = ThalovantIdentity.from_mapping(
        base(protocols={"wss": True, "http": False, "mqtt": True}, data_plane_endpoints={"mqtt": "mqtt://b"})
    )
    assert ident.supports_protocol("wss") is False  # enabled but no endpoint
    assert ident.supports_protocol("https") is False  # disabled
    assert ident.supports_protocol("mqtt") is False  # endpoint but no broker credentials
    with pytest.raises(ThalovantUnsupportedProtocolError, match="MQTT needs broker credentials"):
        ident.require_protocol("mqtt")
    with pytest.raises(ThalovantUnsupportedProtocolError, match="https is disabled"):
        ident.require_protocol("http")
    with pytest.raises(ThalovantUnsupportedProtocolError, match="no wss endpoint"):
        ident.require_protocol("ws")
    full = ThalovantIdentity.from_text((FIXTURES / "full.json").read_bytes())
    assert [full.supports_protocol(p) for p in ("wss", "https", "mqtt")] == [True, True, True]
    assert full.require_protocol("mqtt") == "mqtt://127.0.0.1:1883"


def test_protocol_settings_helpers() -> None:
    settings = HubProtocolSettings.from_mapping({"network": {"https": True}})
    assert settings == HubProtocolSettings(wss=True, http=True, mqtt=False)  # 0.4.7 defaults for the rest
    assert settings.https is True and settings.is_enabled("http") and not settings.is_enabled("mqtts")
    assert settings.as_dict() == {"wss": {"enabled": True}, "http": {"enabled": True}, "mqtt": {"enabled": False}}
    with pytest.raises(ThalovantIdentityError, match=r"protocols\.wss: must be true or false"):
        HubProtocolSettings.from_mapping({"protocols": {"wss": "sometimes"}})


def test_select_data_plane_endpoint_and_from_hub() -> None:
    endpoints = HubDataPlaneEndpoints(https="https://a", wss="wss://a")
    protocols = HubProtocolSettings(wss=True, http=True, mqtt=True)
    assert select_data_plane_endpoint(endpoints, protocols, ("mqtt", "wss", "https")) == SelectedHubEndpoint(
        "wss", "wss://a"
    )
    assert select_data_plane_endpoint(endpoints, protocols) == SelectedHubEndpoint("https", "https://a")
    assert select_data_plane_endpoint(endpoints, HubProtocolSettings(wss=False), ("wss", "mqtt")) is None
    hub = {"domain": "jokes.example.io", "spec": {"protocols": {"wss": True, "http": True}}}
    assert HubDataPlaneEndpoints.from_hub(hub) == HubDataPlaneEndpoints(
        https="https://jokes.example.io", wss="wss://jokes.example.io"
    )
    assert HubDataPlaneEndpoints.from_mapping({"endpoints": {"ws": "ws://x:1"}}).endpoint_for("wss") == "ws://x:1"
    with pytest.raises(ThalovantIdentityError, match=r"data_plane_endpoints\.https"):
        HubDataPlaneEndpoints.from_mapping({"data_plane_endpoints": {"https": "gopher://x"}})


# ---- MQTT -----------------------------------------------------------------------------------------


def mqtt_of(block: dict[str, Any], **extra: Any) -> MqttBrokerCredentials:
    creds = ThalovantIdentity.from_mapping(base(mqtt=block, **extra)).mqtt
    assert creds is not None
    return creds


def test_mqtt_aliases() -> None:
    creds = mqtt_of(
        {
            "brokerUrl": "mqtts://b.example",
            "brokerUsername": "user",
            "brokerPassword": "secret",
            "topicPrefix": "hivemind/",
            "hubId": "hub",
            "c2sTopic": "a/c2s",
            "s2cTopic": "a/s2c",
            "statusTopic": "a/status",
            "hashTopics": "yes",
            "qos": "0",
        }
    )
    assert creds == MqttBrokerCredentials(
        endpoint="mqtts://b.example",
        username="user",
        password="secret",
        topic_prefix="hivemind",
        hub_id="hub",
        c2s_topic="a/c2s",
        s2c_topic="a/s2c",
        status_topic="a/status",
        hash_topics=True,
        qos=0,
        tls=True,
    )
    assert (creds.host, creds.port) == ("b.example", 8883)
    assert mqtt_of({"broker_url": "tcp://[::1]:1884", "broker_username": "u"}).port == 1884
    assert mqtt_of({"endpoint": "mqtt://b"}).port == 1883


@pytest.mark.parametrize(
    ("endpoint", "tls", "expected"),
    [
        ("mqtt://b", None, False),
        ("tcp://b", None, False),
        ("mqtts://b", None, True),
        ("ssl://b", None, True),
        ("mqtt://b", "true", True),
        ("mqtts://b", True, True),
    ],
)
def test_mqtt_tls_default_follows_scheme(endpoint: str, tls: object, expected: bool) -> None:
    assert mqtt_of({"endpoint": endpoint, "tls": tls}).tls is expected


@pytest.mark.parametrize(
    ("block", "path", "message"),
    [
        ({"endpoint": "mqtts://b", "tls": False}, "mqtt.tls", "must not be false"),
        ({"endpoint": "mqtt://b", "qos": 2}, "mqtt.qos", "between 0 and 1"),
        ({"endpoint": "mqtt://b", "qos": "one"}, "mqtt.qos", "must be an integer"),
        ({"endpoint": "mqtt://b", "topic_prefix": "hive/+/x"}, "mqtt.topic_prefix", "wildcards"),
        ({"endpoint": "mqtt://b", "topic_prefix": "hive/#"}, "mqtt.topic_prefix", "wildcards"),
        ({"endpoint": "mqtt://b", "topic_prefix": "hi\x00ve"}, "mqtt.topic_prefix", "control characters"),
        ({"endpoint": "mqtt://b", "topic_prefix": "hi\nve"}, "mqtt.topic_prefix", "control characters"),
        ({"endpoint": "mqtt://b", "topic_prefix": "$SYS/x"}, "mqtt.topic_prefix", "must not start with '$'"),
        ({"endpoint": "mqtt://b", "topic_prefix": "a//b"}, "mqtt.topic_prefix", "empty topic levels"),
        ({"endpoint": "mqtt://b", "hub_id": "a/b"}, "mqtt.hub_id", "single topic level"),
        ({"endpoint": "mqtt://b", "c2s_topic": "x/+"}, "mqtt.c2s_topic", "wildcards"),
        ({"endpoint": "mqtt://b", "hashTopics": "sometimes"}, "mqtt.hashTopics", "true or false"),
        ({"endpoint": "mqtt://b", "password": "pw"}, "mqtt.username", "required when mqtt.password"),
        ({"username": "u", "password": "pw"}, "mqtt.endpoint", "missing"),
        ({"endpoint": "https://b"}, "mqtt.endpoint", "scheme must be one of"),
        ({"endpoint": "mqtt://b/x"}, "mqtt.endpoint", "no path or query"),
    ],
)
def test_mqtt_validation(block: dict[str, Any], path: str, message: str) -> None:
    [(got_path, got_message)] = problems_of(base(mqtt=block))
    assert got_path == path and message in got_message


def test_mqtt_block_must_be_an_object_and_empty_block_is_none() -> None:
    assert paths_of(base(mqtt=[1])) == ["mqtt"]
    assert ThalovantIdentity.from_mapping(base(mqtt={})).mqtt is None
    assert MqttBrokerCredentials.from_mapping({}) is None
    assert MqttBrokerCredentials.from_mapping({"endpoint": "mqtt://b"}) == MqttBrokerCredentials(
        endpoint="mqtt://b", tls=False
    )
    with pytest.raises(ThalovantIdentityError, match=r"mqtt\.endpoint"):
        MqttBrokerCredentials.from_mapping({"username": "u"})


def test_mqtt_endpoint_falls_back_to_data_plane_endpoint() -> None:
    creds = mqtt_of({"username": "u", "password": "p"}, data_plane_endpoints={"mqtt": "mqtts://b:8884"})
    assert (creds.endpoint, creds.tls, creds.port) == ("mqtts://b:8884", True, 8884)


def test_access_key_must_be_a_topic_level_with_mqtt() -> None:
    values = base(access_key="ab/cd", mqtt={"endpoint": "mqtt://b"})
    assert paths_of(values) == ["access_key"]
    assert ThalovantIdentity.from_mapping(base(access_key="ab/cd")).access_key == "ab/cd"


# ---- metadata -------------------------------------------------------------------------------------


def test_metadata_is_copied_and_validated() -> None:
    source = {"a": {"b": [1, 2]}}
    ident = ThalovantIdentity.from_mapping(base(metadata=source))
    source["a"]["b"].append(3)
    assert ident.metadata == {"a": {"b": [1, 2]}}
    assert paths_of(base(metadata="x")) == ["metadata"]
    assert paths_of(base(metadata={"n": float("nan")})) == ["metadata"]
    assert paths_of(base(metadata={1: "int key"})) == ["metadata"]
    assert paths_of(base(metadata={"huge": 10**5000})) == ["metadata"]
    assert paths_of(base(site_id=10**5000)) == ["site_id"]
    deep: dict[str, Any] = {}
    for _ in range(40):
        deep = {"d": deep}
    assert paths_of(base(metadata=deep)) == ["metadata"]
    assert ThalovantIdentity.from_mapping(base(metadata=None)).metadata == {}


# ---- redaction, repr, round trip ------------------------------------------------------------------


def test_redacted_as_dict_is_exact_and_has_no_secret() -> None:
    ident = ThalovantIdentity.from_text((FIXTURES / "full.json").read_bytes())
    assert ident.as_dict() == {
        "site_id": "loopback-test",
        "default_master": "http://127.0.0.1",
        "default_port": 5679,
        "default_path": "",
        "data_plane_endpoints": {
            "https": "http://127.0.0.1:5679",
            "wss": "ws://127.0.0.1:5678",
            "mqtt": "mqtt://127.0.0.1:1883",
        },
        "protocols": {"wss": {"enabled": True}, "http": {"enabled": True}, "mqtt": {"enabled": True}},
        "mqtt": {"endpoint": "mqtt://127.0.0.1:1883", "tls": False},
        "metadata": {"team": "qa", "api_token": "***"},
    }


def test_bare_master_userinfo_is_hidden() -> None:
    ident = ThalovantIdentity.from_mapping(base(default_master="alice:masterpw@hub.example"))
    assert ident.endpoint_base() == "http://alice:masterpw@hub.example:5679"
    assert ident.as_dict()["default_master"] == "hub.example"
    assert "masterpw" not in repr(ident)


def test_userinfo_is_stripped_everywhere_when_redacted() -> None:
    ident = ThalovantIdentity.from_mapping(
        base(
            default_master="https://alice:masterpw@h",
            data_plane_endpoints={"https": "https://bob:httpspw@h", "wss": "wss://c:wsspw@h/x?y=1"},
            mqtt={"endpoint": "mqtts://d:mqttpw@b:8883", "username": "u", "password": "brokerpw"},
        )
    )
    shown = json.dumps(ident.as_dict()) + repr(ident) + str(ident) + repr(ident.mqtt)
    for secret in ("masterpw", "httpspw", "wsspw", "mqttpw", "brokerpw", "alice", KEY, PW):
        assert secret not in shown
    assert ident.as_dict()["data_plane_endpoints"]["wss"] == "wss://h/x?y=1"
    assert ident.as_dict()["mqtt"] == {"endpoint": "mqtts://b:8883", "tls": True}


def test_repr_hides_every_secret() -> None:
    ident = ThalovantIdentity.from_text((FIXTURES / "full.json").read_bytes())
    for text in (repr(ident), str(ident), f"{ident!r}", repr(ident.mqtt), str([ident])):
        for secret in (KEY, PW, PSK, "broker-pw-7d1e0c9b", "tok-5e2b"):
            assert secret not in text
    assert "site_id='loopback-test'" in repr(ident)


def test_round_trip_with_secrets_keeps_protocols() -> None:
    """Fix §g.32: 0.4.7 dropped protocols from as_dict(include_secrets=True)."""
    ident = ThalovantIdentity.from_mapping(base(protocols={"wss": False, "http": False, "mqtt": False}))
    assert ident.enabled_protocols() == ()
    again = ThalovantIdentity.from_mapping(ident.as_dict(include_secrets=True))
    assert again == ident and again.enabled_protocols() == ()
    full = ThalovantIdentity.from_text((FIXTURES / "full.json").read_bytes())
    dumped = full.as_dict(include_secrets=True)
    assert dumped["access_key"] == KEY and dumped["mqtt"]["password"] == "broker-pw-7d1e0c9b"
    assert ThalovantIdentity.from_text(json.dumps(dumped)) == full


def test_core_and_public_instances_compare_equal() -> None:
    core = parse_identity(base())
    assert isinstance(core, Success)
    public = ThalovantIdentity.from_mapping(base())
    assert type(public) is ThalovantIdentity and isinstance(public, Identity)
    assert core.unwrap() == public and hash(core.unwrap()) == hash(public)
    assert public != ThalovantIdentity.from_mapping(base(site_id="other"))


def test_with_overrides_really_overrides() -> None:
    ident = ThalovantIdentity.from_mapping(base(data_plane_endpoints={"https": "https://api.example/x"}))
    moved = ident.with_overrides(host="http://127.0.0.1")
    assert moved.endpoint_base() == "http://127.0.0.1:5679"
    assert type(moved) is ThalovantIdentity
    assert ident.with_overrides(port=8443).endpoint_base() == "https://api.example:8443/x"
    with pytest.raises(ThalovantIdentityError, match="default_port"):
        ident.with_overrides(port=0)


# ---- text and files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated.json", "is not valid JSON (line"),
        ("not-utf8.json", "is not valid UTF-8"),
        ("list.json", "must be a JSON object"),
    ],
)
def test_bad_identity_text(name: str, message: str) -> None:
    with pytest.raises(ThalovantIdentityError, match=message.replace("(", r"\(")):
        ThalovantIdentity.from_text((FIXTURES / name).read_bytes())


def test_text_accepts_a_bom_and_str() -> None:
    raw = (FIXTURES / "password-only.json").read_bytes()
    assert ThalovantIdentity.from_text(b"\xef\xbb\xbf" + raw) == ThalovantIdentity.from_text(raw.decode())
    assert isinstance(parse_identity_text("[" * 100_000), Failure)
    first = parse_identity_text("{}").failure()[0]
    assert isinstance(first, IdentityProblem) and first.path == "access_key"
    assert str(first).startswith("access_key: missing required field")


# ---- environment ----------------------------------------------------------------------------------

ENV = {
    "THALOVANT_ACCESS_KEY": KEY,
    "THALOVANT_PASSWORD": PW,
    "THALOVANT_SITE_ID": "env-site",
    "THALOVANT_HUB_HTTP_HOST": "https://hub.example",
}


@pytest.mark.parametrize(
    ("variables", "attribute", "expected"),
    [
        ({"THALOVANT_CRYPTO_KEY": PSK}, "crypto_key", PSK),
        ({"THALOVANT_HUB_HTTP_PORT": "8443"}, "default_port", 8443),
        ({"THALOVANT_DEFAULT_PORT": "8080"}, "default_port", 8080),
        ({"THALOVANT_HUB_HTTP_PORT": "1", "THALOVANT_DEFAULT_PORT": "2"}, "default_port", 1),
        ({"THALOVANT_HUB_HTTP_PATH": "public"}, "default_path", "/public"),
        ({"THALOVANT_DEFAULT_PATH": "/d"}, "default_path", "/d"),
        ({"THALOVANT_HUB_HTTP_HOST": "", "THALOVANT_DEFAULT_MASTER": "http://m"}, "default_master", "http://m"),
        ({"THALOVANT_DEFAULT_MASTER": "http://m"}, "default_master", "https://hub.example"),
        ({"THALOVANT_METADATA": '{"room": "lab"}'}, "metadata", {"room": "lab"}),
    ],
)
def test_env_variables(variables: dict[str, str], attribute: str, expected: object) -> None:
    assert getattr(ThalovantIdentity.from_environ({**ENV, **variables}), attribute) == expected


def test_env_http_path_applies_with_http_host() -> None:
    """Fix §g.29: 0.4.7 ignored THALOVANT_HUB_HTTP_PATH when THALOVANT_HUB_HTTP_HOST was set."""
    ident = ThalovantIdentity.from_environ({**ENV, "THALOVANT_HUB_HTTP_PATH": "/public"})
    assert ident.endpoint_base() == "https://hub.example/public"  # and no :5679 on https (§g.30)
    assert ident.data_plane_endpoints.https is None
    with_port = ThalovantIdentity.from_environ({**ENV, "THALOVANT_HUB_HTTP_PORT": "5679"})
    assert with_port.endpoint_base() == "https://hub.example:5679"


def test_env_endpoints_mqtt_and_flags() -> None:
    env = {
        **ENV,
        "THALOVANT_HUB_HTTPS_HOST": "https://api.example/x",
        "THALOVANT_HUB_WEBSOCKET_HOST": "wss://ws.example",
        "THALOVANT_HUB_MQTT_HOST": "mqtts://broker.example",
        "THALOVANT_MQTT_USERNAME": "mu",
        "THALOVANT_MQTT_PASSWORD": "mp",
        "THALOVANT_MQTT_TOPIC_PREFIX": "hivemind",
        "THALOVANT_MQTT_HUB_ID": "hub",
        "THALOVANT_MQTT_C2S_TOPIC": "t/c2s",
        "THALOVANT_MQTT_S2C_TOPIC": "t/s2c",
        "THALOVANT_MQTT_STATUS_TOPIC": "t/status",
        "THALOVANT_MQTT_HASH_TOPICS": "false",
        "THALOVANT_MQTT_QOS": "0",
        "THALOVANT_PROTOCOL_WSS_ENABLED": "no",
        "THALOVANT_PROTOCOL_HTTPS_ENABLED": "yes",
    }
    ident = ThalovantIdentity.from_environ(env)
    assert ident.data_plane_endpoints == HubDataPlaneEndpoints(
        https="https://api.example/x", wss="wss://ws.example", mqtt="mqtts://broker.example"
    )
    assert ident.endpoint_base() == "https://api.example/x"
    assert ident.mqtt == MqttBrokerCredentials(
        endpoint="mqtts://broker.example",
        username="mu",
        password="mp",
        topic_prefix="hivemind",
        hub_id="hub",
        c2s_topic="t/c2s",
        s2c_topic="t/s2c",
        status_topic="t/status",
        hash_topics=False,
        qos=0,
        tls=True,
    )
    assert ident.enabled_protocols() == ("https", "mqtt")  # wss off by flag, mqtt on by credentials
    env2 = {
        **env,
        "THALOVANT_HUB_WSS_HOST": "wss://first",
        "THALOVANT_MQTT_ENDPOINT": "mqtt://explicit",
        "THALOVANT_PROTOCOL_MQTT_ENABLED": "0",
        "THALOVANT_MQTT_TLS": "true",
    }
    ident2 = ThalovantIdentity.from_environ(env2)
    assert ident2.data_plane_endpoints.wss == "wss://first"
    assert ident2.mqtt is not None and (ident2.mqtt.endpoint, ident2.mqtt.tls) == ("mqtt://explicit", True)
    assert ident2.enabled_protocols() == ("https",)


def test_env_mqtt_host_alone_is_only_an_endpoint() -> None:
    ident = ThalovantIdentity.from_environ({**ENV, "THALOVANT_HUB_MQTT_HOST": "mqtt://b"})
    assert ident.mqtt is None and ident.endpoint_for("mqtt") == "mqtt://b"
    assert not ident.supports_protocol("mqtt")


def test_env_problems_name_fields_and_the_origin() -> None:
    with pytest.raises(ThalovantIdentityError) as info:
        ThalovantIdentity.from_environ({"THALOVANT_PASSWORD": PW, "THALOVANT_METADATA": "{not json"})
    assert [p for p, _ in info.value.problems] == ["access_key", "site_id", "default_master", "metadata"]
    assert "environment (THALOVANT_*)" in str(info.value) and PW not in str(info.value)


def test_env_mapping_lists_every_documented_variable() -> None:
    readme_twelve = {
        "ACCESS_KEY",
        "PASSWORD",
        "CRYPTO_KEY",
        "SITE_ID",
        "HUB_HTTP_HOST",
        "HUB_WSS_HOST",
        "HUB_MQTT_HOST",
        "MQTT_USERNAME",
        "MQTT_PASSWORD",
        "MQTT_TOPIC_PREFIX",
        "HUB_HTTP_PORT",
        "HUB_HTTP_PATH",
    }
    assert readme_twelve <= set(ENV_SUFFIXES)
    assert identity_from_environ({"X_SITE_ID": "  ", "X_PASSWORD": "p"}, prefix="X_") == {"password": "p"}


# ---- URL helper -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://u:p@h:1/x?q", "https://h:1/x?q"),
        ("mqtt://h", "mqtt://h"),
        ("not a url", "not a url"),
        ("wss://u@[::1]:9/", "wss://[::1]:9"),
        ("u:pw@hub.example:443/x", "hub.example:443/x"),
        ("hub.example/x", "hub.example/x"),
    ],
)
def test_without_userinfo(url: str, redacted: str) -> None:
    assert without_userinfo(url) == redacted


def test_split_url_reports_without_quoting() -> None:
    reason = split_url("https://secret-value@:99999")
    assert isinstance(reason, str) and "secret-value" not in reason
