"""``core.client.plan``: identity + the client's options -> one typed plan per transport, every default once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from thalovant.core.client.plan import (
    DEFAULT_HTTP_POLL,
    DEFAULT_USERAGENT,
    MQTT_KEEPALIVE,
    ClientOptions,
    HttpPlan,
    MqttPlan,
    WsPlan,
    build_plan,
    choose_protocol,
)
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.errors import LocalProtocolError, ThalovantUnsupportedProtocolError
from thalovant.core.identity.model import Identity
from thalovant.core.identity.parse import parse_identity
from thalovant.core.identity.protocols import DEFAULT_PORTS
from thalovant.core.links.http_wire import HttpPollConfig
from thalovant.core.links.mqtt_topics import MqttLayout, TopicOverrides

ACCESS_KEY = "0123456789abcdef0123456789abcdef"


def zeros(n: int) -> bytes:
    return bytes(n)


def identity(**extra: Any) -> Identity:
    values: dict[str, Any] = {
        "access_key": ACCESS_KEY,
        "password": "a-throwaway-password",
        "default_master": "http://hub.test",
        "site_id": "den",
        "data_plane_endpoints": {"wss": "ws://hub.test:5678", "https": "https://hub.test:5679/hm/"},
        "protocols": {"wss": True, "https": True, "mqtt": True},
        "mqtt": {"endpoint": "mqtts://broker.test", "username": "u", "password": "p", "topic_prefix": "hive"},
    }
    values.update(extra)
    return parse_identity(values).unwrap()


def options(protocol: str = "wss", **changes: Any) -> ClientOptions:
    base = ClientOptions(
        protocol=choose_protocol(identity(), protocol),
        useragent=DEFAULT_USERAGENT,
        handshake_timeout=10.0,
        queue_timeout=5.0,
        max_queue=256,
        auto_reconnect=True,
        auth_encoding="raw",
        mqtt_layout="legacy",
        session_id="s-1",
    )
    return replace(base, **changes)


def test_choose_protocol_takes_the_first_enabled_one_or_https_and_normalises_spellings() -> None:
    ident = identity()
    assert choose_protocol(ident, None) == "wss"
    assert choose_protocol(ident, "ws") == "wss" and choose_protocol(ident, "http") == "https"
    assert choose_protocol(ident, "mqtts") == "mqtt"
    https_only = identity(protocols={"wss": False, "https": True, "mqtt": False})
    assert choose_protocol(https_only, None) == "https"
    with pytest.raises(ThalovantUnsupportedProtocolError):
        choose_protocol(https_only, "wss")
    with pytest.raises(ThalovantUnsupportedProtocolError):
        choose_protocol(ident, "carrier-pigeon")


def test_websocket_plan_carries_the_identity_and_options_typed() -> None:
    plan = build_plan(identity(), options(noise_static_key=b"k" * 32), entropy=zeros)
    assert isinstance(plan, WsPlan) and plan.protocol == "wss" and plan.url == "ws://hub.test:5678"
    cfg = plan.config
    assert (cfg.protocol, cfg.session_id, cfg.site_id, cfg.useragent) == ("wss", "s-1", "den", DEFAULT_USERAGENT)
    assert cfg.access_key == ACCESS_KEY and cfg.password == "a-throwaway-password"
    assert cfg.keepalive is None and cfg.http == HttpPollConfig() and cfg.reconnect == ReconnectConfig()
    assert cfg.v3_options == (("static_key", b"k" * 32),)
    assert "hub.test" not in repr(plan) and ACCESS_KEY not in repr(plan)


def test_http_plan_polls_with_the_default_tuning_under_the_endpoint_path() -> None:
    plan = build_plan(identity(), options("https"), entropy=zeros)
    assert isinstance(plan, HttpPlan) and plan.protocol == "https" and plan.link_words == "polling"
    assert plan.config.http is DEFAULT_HTTP_POLL and plan.config.http_base_path == "/hm"
    mine = HttpPollConfig(hot_growth=1.5)
    assert build_plan(identity(), options("https", http=mine), entropy=zeros).config.http is mine


def test_mqtt_plan_defaults_keepalive_and_tls_from_the_broker_endpoint() -> None:
    plan = build_plan(identity(), options("mqtt"), entropy=zeros)
    assert isinstance(plan, MqttPlan)
    assert (plan.host, plan.port, plan.tls, plan.username, plan.password) == (
        "broker.test",
        DEFAULT_PORTS["mqtts"],
        True,
        "u",
        "p",
    )
    cfg = plan.config
    assert cfg.protocol == "mqtt" and cfg.keepalive == MQTT_KEEPALIVE
    # the plan resolves the three topics (prefix "hive", no hub_id: the prefix is the base)
    assert cfg.mqtt_layout is MqttLayout.LEGACY and cfg.mqtt_topic_prefix == ""
    assert cfg.mqtt_overrides == TopicOverrides(
        c2s=f"hive/c2s/{ACCESS_KEY}", s2c=f"hive/s2c/{ACCESS_KEY}", status=f"hive/status/{ACCESS_KEY}"
    )
    assert "username" not in repr(plan) and "password" not in repr(plan)  # the broker login stays out
    chosen = build_plan(identity(), options("mqtt", keepalive=3.0, mqtt_layout="modern"), entropy=zeros)
    assert chosen.config.keepalive == 3.0 and chosen.config.mqtt_layout is MqttLayout.MODERN


def test_mqtt_topics_given_in_the_identity_become_overrides() -> None:
    mqtt = {
        "endpoint": "mqtt://broker.test:1999",
        "c2s_topic": "up",
        "s2c_topic": "down",
        "status_topic": "st",
        "tls": False,
    }
    plan = build_plan(identity(mqtt=mqtt), options("mqtt"), entropy=zeros)
    assert isinstance(plan, MqttPlan) and (plan.port, plan.tls) == (1999, False)
    assert plan.config.mqtt_overrides == TopicOverrides(c2s="up", s2c="down", status="st")


def test_reconnect_default_depends_on_auto_reconnect_and_an_explicit_policy_wins() -> None:
    once = build_plan(identity(), options(auto_reconnect=False), entropy=zeros).config.reconnect
    assert once == ReconnectConfig(max_attempts=1)
    mine = ReconnectConfig(base=1.0, cap=2.0)
    assert build_plan(identity(), options(reconnect=mine, auto_reconnect=False), entropy=zeros).config.reconnect is mine


def test_session_id_is_drawn_from_entropy_only_when_none_is_given() -> None:
    drawn = build_plan(identity(), options(session_id=None), entropy=zeros).config.session_id
    assert drawn == "thalovant-session-" + "00" * 16


def test_no_password_means_no_noise_key_and_bad_options_raise_local_errors() -> None:
    plan = build_plan(identity(password=None, crypto_key="0123456789abcdef"), options(), entropy=zeros)
    assert plan.config.v3_options == () and plan.config.password is None
    assert plan.config.crypto_key == "0123456789abcdef"
    with pytest.raises(LocalProtocolError):
        build_plan(identity(), options(keepalive=0.0), entropy=zeros)
    with pytest.raises(LocalProtocolError):
        build_plan(identity(), options("mqtt", queue_timeout=0.0), entropy=zeros)


@given(protocol=st.sampled_from(["ws", "wss", "websocket", "http", "https", "mqtt", "mqtts"]))
def test_the_plan_type_and_its_config_agree_on_the_protocol(protocol: str) -> None:
    plan = build_plan(identity(), options(protocol), entropy=zeros)
    expected = {"wss": WsPlan, "https": HttpPlan, "mqtt": MqttPlan}[plan.protocol]
    assert type(plan) is expected and plan.config.protocol == plan.protocol


_SEGMENT = st.text(alphabet="abcxyz019-_.~", min_size=1, max_size=8)


@given(segments=st.lists(_SEGMENT, max_size=4), slashes=st.integers(0, 3), port=st.integers(1, 65535))
def test_http_base_path_is_the_endpoint_path_without_trailing_slashes(
    segments: list[str], slashes: int, port: int
) -> None:
    path = "".join("/" + s for s in segments) + "/" * slashes
    endpoints = {"https": f"https://hub.test:{port}{path}"}
    ident = identity(data_plane_endpoints=endpoints, protocols={"https": True})
    plan = build_plan(ident, options("https"), entropy=zeros)
    assert plan.config.http_base_path == path.rstrip("/")
    assert plan.config.http_base_path == "" or plan.config.http_base_path.startswith("/")
