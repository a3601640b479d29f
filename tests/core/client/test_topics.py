"""``mqtt_topics_for_identity`` and the client plan: README-shaped identities talk on 0.4.7's topics."""

from __future__ import annotations

from typing import Any

import pytest

from thalovant import ThalovantIdentity
from thalovant.core.client.plan import DEFAULT_USERAGENT, ClientOptions, MqttPlan, build_plan
from thalovant.core.client.topics import mqtt_topics_for_identity
from thalovant.core.errors import ThalovantConnectionError
from thalovant.core.identity.parse import parse_identity
from thalovant.core.links.mqtt_topics import MqttLayout, MqttTopicSet, TopicOverrides

KEY = "client-access-key"
BROKER_PASSWORD = "broker-secret-pw"


def readme_identity(**mqtt: Any) -> dict[str, Any]:
    """The 0.4.7 README's identity file (its MQTT block; ``mqtt`` changes it)."""
    block = {
        "endpoint": "mqtts://broker.example.org:8883",
        "username": KEY,
        "password": BROKER_PASSWORD,
        "topic_prefix": "hivemind/hub/client-access-key",
        "tls": True,
    }
    block.update(mqtt)
    return {
        "access_key": KEY,
        "password": "hub-password",
        "crypto_key": "0123456789abcdef",
        "site_id": "kitchen",
        "default_master": "https://hub.example.org",
        "default_port": 5679,
        "data_plane_endpoints": {"https": "https://hub.example.org:5679", "mqtt": "mqtts://broker.example.org:8883"},
        "protocols": {"wss": {"enabled": False}, "http": {"enabled": True}, "mqtt": {"enabled": True}},
        "mqtt": {k: v for k, v in block.items() if v is not None},
    }


EXPECTED = MqttTopicSet(f"hivemind/hub/c2s/{KEY}", f"hivemind/hub/s2c/{KEY}", f"hivemind/hub/status/{KEY}")


def options(layout: str = "legacy") -> ClientOptions:
    return ClientOptions(
        protocol="mqtt",
        useragent=DEFAULT_USERAGENT,
        handshake_timeout=10.0,
        queue_timeout=5.0,
        max_queue=256,
        auto_reconnect=True,
        auth_encoding="raw",
        mqtt_layout=layout,  # type: ignore[arg-type]
        session_id="s-1",
    )


@pytest.mark.parametrize(
    "mqtt",
    [
        {},  # <root>/<hub_id>/<key>
        {"topic_prefix": "hivemind", "hub_id": "hub"},  # root prefix plus hub_id
        {"topicPrefix": None, "topic_prefix": None, "hubId": "hub"},  # hub_id only (camelCase alias)
        {"topic_prefix": "hivemind/hub/client-access-key", "hub_id": "hub"},  # both
        {"topic_prefix": "hivemind/hub/c2s/client-access-key"},  # a full topic as the prefix
        {"c2s_topic": EXPECTED.c2s, "s2c_topic": EXPECTED.s2c, "topic_prefix": "elsewhere"},  # explicit
    ],
    ids=["prefix-ends-in-key", "root-plus-hub-id", "hub-id-only", "both", "full-topic", "explicit"],
)
def test_readme_shaped_identities_give_the_reference_topics(mqtt: dict[str, Any]) -> None:
    values = readme_identity(**mqtt)
    public = ThalovantIdentity.from_mapping(values)
    assert mqtt_topics_for_identity(public) == EXPECTED
    assert mqtt_topics_for_identity(parse_identity(values).unwrap()) == EXPECTED
    plan = build_plan(public, options(), entropy=bytes)
    assert isinstance(plan, MqttPlan)
    assert plan.config.mqtt_overrides == TopicOverrides(c2s=EXPECTED.c2s, s2c=EXPECTED.s2c, status=EXPECTED.status)


def test_hash_topics_and_the_modern_layout_reach_the_plan() -> None:
    hashed = ThalovantIdentity.from_mapping(readme_identity(hash_topics="true"))
    sat = mqtt_topics_for_identity(hashed).c2s.rsplit("/", 1)[1]
    assert len(sat) == 16 and sat != KEY
    assert build_plan(hashed, options(), entropy=bytes).config.mqtt_overrides.c2s == f"hivemind/hub/c2s/{sat}"  # type: ignore[union-attr]
    v3 = ThalovantIdentity.from_mapping(readme_identity(topic_prefix=f"hivemind/{KEY}"))
    modern = MqttTopicSet(f"hivemind/{KEY}/in", f"hivemind/{KEY}/out", f"hivemind/{KEY}/status")
    assert mqtt_topics_for_identity(v3, layout="modern") == modern
    assert mqtt_topics_for_identity(v3, layout=MqttLayout.MODERN) == modern
    plan = build_plan(v3, options("modern"), entropy=bytes)
    assert plan.config.mqtt_layout is MqttLayout.MODERN and plan.config.mqtt_overrides == modern.as_overrides()


def test_underivable_topics_raise_the_0_4_7_error_naming_the_field_never_a_secret() -> None:
    bare = ThalovantIdentity.from_mapping(readme_identity(topic_prefix=None))
    with pytest.raises(ThalovantConnectionError) as info:
        mqtt_topics_for_identity(bare)
    assert "mqtt.topic_prefix" in str(info.value) and info.value.retryable is False
    with pytest.raises(ThalovantConnectionError, match=r"mqtt\.topic_prefix"):
        build_plan(bare, options(), entropy=bytes)
    half = ThalovantIdentity.from_mapping(readme_identity(c2s_topic="up", s2c_topic="down"))
    with pytest.raises(ThalovantConnectionError, match=r"mqtt\.status_topic") as info:
        mqtt_topics_for_identity(half)
    no_block = ThalovantIdentity.from_mapping({**readme_identity(), "mqtt": None})
    with pytest.raises(ThalovantConnectionError, match="mqtt"):
        mqtt_topics_for_identity(no_block)
    with pytest.raises(ThalovantConnectionError, match="layout"):
        mqtt_topics_for_identity(half, layout="sideways")  # type: ignore[arg-type]
    for secret in (KEY, BROKER_PASSWORD, "hub-password"):
        assert secret not in str(info.value)


def test_old_derivation_is_gone_the_prefix_is_no_longer_used_as_is() -> None:
    """The bug of issue 12: ``<prefix>/c2s/<key>`` with the README prefix never reached the hub."""
    topics = mqtt_topics_for_identity(ThalovantIdentity.from_mapping(readme_identity()))
    assert not topics.c2s.startswith("hivemind/hub/client-access-key/")
