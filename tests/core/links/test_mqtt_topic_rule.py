"""The identity's MQTT topics as thalovant 0.4.7 derived them (reference-sdk.md §d.10): ``derive_topics``.

Unit tests for every README / reference / control-plane shaped identity, then properties of the rule.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from returns.result import Failure, Success

from thalovant.core.links.mqtt_map import MqttMap
from thalovant.core.links.mqtt_topics import (
    DEFAULT_ROOT,
    MqttLayout,
    MqttTopicSet,
    TopicOverrides,
    TopicSettings,
    derive_topics,
    mqtt_topics,
    satellite_id,
)

KEY = "client-access-key"
LEGACY, MODERN = MqttLayout.LEGACY, MqttLayout.MODERN


def topics(layout: MqttLayout = LEGACY, **fields: object) -> MqttTopicSet:
    fields.setdefault("access_key", KEY)
    result = derive_topics(TopicSettings(**fields), layout)  # type: ignore[arg-type]
    assert isinstance(result, Success), result
    return result.unwrap()


def problem_field(layout: MqttLayout = LEGACY, **fields: object) -> str:
    fields.setdefault("access_key", KEY)
    result = derive_topics(TopicSettings(**fields), layout)  # type: ignore[arg-type]
    assert isinstance(result, Failure), result
    return result.failure().field


def legacy(base: str, sat: str = KEY) -> MqttTopicSet:
    return MqttTopicSet(f"{base}/c2s/{sat}", f"{base}/s2c/{sat}", f"{base}/status/{sat}")


# ---- the shapes users have -------------------------------------------------------------------------------


def test_the_0_4_7_readme_prefix_ends_in_the_key_and_the_key_is_stripped() -> None:
    # README 0.4.7: "topic_prefix": "hivemind/hub/client-access-key"; reference test 6
    assert topics(topic_prefix="hivemind/hub/client-access-key") == legacy("hivemind/hub")
    assert topics(topic_prefix="hivemind/hub/client-access-key/") == legacy("hivemind/hub")  # trailing /


def test_a_root_prefix_gets_the_hub_id_appended() -> None:
    # reference test 7: prefix "hivemind" plus hub_id "hub"
    assert topics(topic_prefix="hivemind", hub_id="hub") == legacy("hivemind/hub")
    assert topics(topic_prefix="hivemind/hub/client-access-key", hub_id="hub") == legacy("hivemind/hub")
    assert topics(topic_prefix="hivemind/client-access-key", hub_id="hub") == legacy("hivemind/hub")
    assert topics(topic_prefix="site/hub/x", hub_id="hub") == legacy("site/hub/x")  # already a level: not appended


def test_the_prefix_may_end_in_the_broker_username_or_the_satellite_id() -> None:
    assert topics(topic_prefix="hivemind/hub/sat-7", username="sat-7") == legacy("hivemind/hub")
    hashed = hashlib.sha256(KEY.encode()).hexdigest()[:16]
    assert satellite_id(KEY, hash_topics=True) == hashed and satellite_id(KEY) == KEY
    assert topics(topic_prefix=f"hivemind/hub/{hashed}", hash_topics=True) == legacy("hivemind/hub", hashed)
    assert topics(topic_prefix="hivemind/hub/client-access-key", hash_topics=True) == legacy("hivemind/hub", hashed)
    # a last level that names nobody stays
    assert topics(topic_prefix="hivemind/hub/other", username="sat-7") == legacy("hivemind/hub/other")


def test_the_harness_and_control_plane_shapes() -> None:
    # what tests/harness writes, and what the control plane's client-level block carries
    assert topics(topic_prefix="hivemind/thalovant-test-hub") == legacy("hivemind/thalovant-test-hub")
    assert topics(topic_prefix="hivemind/hub-mqtt", username=KEY) == legacy("hivemind/hub-mqtt")
    # docs/identity.md: "topic_prefix": "hivemind", "hub_id": "hub-1"
    assert topics(topic_prefix="hivemind", hub_id="hub-1") == legacy("hivemind/hub-1")


def test_no_prefix_uses_the_default_root_and_nothing_at_all_is_a_problem_naming_the_field() -> None:
    assert topics(hub_id="hub") == legacy(f"{DEFAULT_ROOT}/hub")
    assert topics(topic_prefix=KEY, hub_id="hub") == legacy("hivemind/hub")  # nothing left of the prefix
    assert problem_field() == "mqtt.topic_prefix"
    assert problem_field(topic_prefix=KEY) == "mqtt.topic_prefix"
    assert problem_field(c2s_topic="a/c2s/k") == "mqtt.topic_prefix"  # one explicit topic alone is ignored


def test_explicit_topics_win_and_the_status_topic_is_derived_from_c2s() -> None:
    both = {"c2s_topic": "x/c2s/me", "s2c_topic": "x/s2c/me"}
    assert topics(topic_prefix="hivemind", hub_id="hub", **both) == MqttTopicSet("x/c2s/me", "x/s2c/me", "x/status/me")
    assert topics(status_topic="st/me", **both) == MqttTopicSet("x/c2s/me", "x/s2c/me", "st/me")
    # status_topic alone, or s2c alone, is ignored (0.4.7)
    assert topics(topic_prefix="hivemind", hub_id="hub", status_topic="st") == legacy("hivemind/hub")
    assert topics(topic_prefix="hivemind", hub_id="hub", s2c_topic="x/s2c/me") == legacy("hivemind/hub")
    # no c2s level to read as status: 0.4.7 used the c2s topic itself; we name the field instead
    assert problem_field(c2s_topic="up", s2c_topic="down") == "mqtt.status_topic"
    assert problem_field(c2s_topic="a/b+", s2c_topic="down", status_topic="s") == "mqtt.c2s_topic"


def test_a_prefix_with_a_direction_level_is_a_full_topic() -> None:
    expected = legacy("hivemind/hub")
    for direction in ("c2s", "s2c", "status"):
        assert topics(topic_prefix=f"hivemind/hub/{direction}/{KEY}", hub_id="ignored") == expected
    # first or last level is not a direction level ("/c2s/" in 0.4.7's words)
    assert topics(topic_prefix="c2s/hub") == legacy("c2s/hub")
    assert topics(topic_prefix="hivemind/c2s") == legacy("hivemind/c2s")


def test_the_modern_layout_in_out_status_under_the_key() -> None:
    modern = MqttTopicSet(f"hivemind/{KEY}/in", f"hivemind/{KEY}/out", f"hivemind/{KEY}/status")
    assert topics(MODERN, topic_prefix=f"hivemind/{KEY}") == modern  # what 0.9.7's control plane hands out
    assert topics(MODERN, topic_prefix="hivemind") == modern  # the plugin's root
    assert topics(MODERN) == modern  # the plugin's default root
    assert topics(MODERN, topic_prefix=f"hivemind/{KEY}/in", hub_id="not-used") == modern
    explicit = topics(MODERN, c2s_topic="a/me/in", s2c_topic="a/me/out")
    assert explicit == MqttTopicSet("a/me/in", "a/me/out", "a/me/status")
    assert problem_field(MODERN, c2s_topic="a/up", s2c_topic="a/down") == "mqtt.status_topic"


def test_bad_levels_are_problems_naming_the_field_never_the_value() -> None:
    for fields, where in [
        ({"access_key": "has/slash", "topic_prefix": "hivemind/hub"}, "access_key"),
        ({"access_key": "wild+", "topic_prefix": "hivemind/hub"}, "access_key"),
        ({"topic_prefix": "hivemind", "hub_id": "a/b"}, "mqtt.hub_id"),
        ({"topic_prefix": "hivemind", "hub_id": "h#b"}, "mqtt.hub_id"),
        ({"topic_prefix": "hive//mind"}, "mqtt.topic_prefix"),
        ({"topic_prefix": "$SYS/x"}, "mqtt.topic_prefix"),
    ]:
        result = derive_topics(TopicSettings(**{"access_key": KEY, **fields}))  # type: ignore[arg-type]
        assert isinstance(result, Failure) and result.failure().field == where, fields
        for value in fields.values():
            assert str(value) not in result.failure().detail


def test_the_topic_set_is_a_named_tuple_whose_repr_hides_the_key() -> None:
    derived = topics(topic_prefix="hivemind/hub/client-access-key")
    c2s, s2c, status = derived
    assert (c2s, s2c, status) == (derived.c2s, derived.s2c, derived.status) and MqttTopicSet._fields == (
        "c2s",
        "s2c",
        "status",
    )
    assert KEY not in repr(derived) and KEY not in str(derived) and KEY not in repr(TopicSettings(access_key=KEY))
    assert derived.as_overrides() == TopicOverrides(c2s=c2s, s2c=s2c, status=status)


def test_the_link_machine_takes_complete_overrides_without_a_prefix() -> None:
    derived = topics(topic_prefix="hivemind", hub_id="hub", hash_topics=True)
    link = MqttMap(access_key=KEY, topic_prefix="", entropy=bytes, overrides=derived.as_overrides())
    assert (link.topics.c2s, link.topics.s2c, link.topics.status) == derived
    assert isinstance(mqtt_topics(access_key=KEY, topic_prefix="", layout=LEGACY), Failure)  # unchanged otherwise


# ---- properties ------------------------------------------------------------------------------------------

_MARKER_WORDS = {"c2s", "s2c", "status", "in", "out"}
level = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12).filter(
    lambda s: s not in _MARKER_WORDS
)
levels = st.lists(level, min_size=1, max_size=4)
keys = st.text(alphabet="0123456789abcdef", min_size=16, max_size=34)
any_text = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["c2s", "a/c2s/b", "x/in", "hivemind", "#"]))


@given(root=levels, hub=level, key=keys, username=st.one_of(st.none(), level))
def test_readme_shapes_agree_whatever_the_names(root: list[str], hub: str, key: str, username: str | None) -> None:
    """``<root>/<hub_id>/<key>``, ``<root>`` + ``hub_id`` and ``<root>/<hub_id>/<username>`` give one topic set."""
    assume(hub not in root and key not in root and username not in root)
    base = "/".join([*root, hub])
    expected = legacy(base, key)
    r = "/".join(root)
    assert topics(access_key=key, topic_prefix=f"{base}/{key}") == expected
    assert topics(access_key=key, topic_prefix=r, hub_id=hub) == expected
    assert topics(access_key=key, topic_prefix=f"{base}/{key}", hub_id=hub, username=username) == expected
    if username is not None and username != hub:
        assert topics(access_key=key, topic_prefix=f"{base}/{username}", username=username) == expected


@given(root=levels, hub=st.one_of(st.none(), level), key=keys, hashed=st.booleans(), layout=st.sampled_from(MqttLayout))
def test_a_derived_topic_fed_back_as_the_prefix_gives_the_same_set(
    root: list[str], hub: str | None, key: str, hashed: bool, layout: MqttLayout
) -> None:
    """Rule 2 (and the modern ``/in`` level) inverts rule 3: the derivation is a fixed point."""
    first = topics(layout, access_key=key, topic_prefix="/".join(root), hub_id=hub, hash_topics=hashed)
    for topic in first:
        assert topics(layout, access_key=key, topic_prefix=topic, hub_id=hub, hash_topics=hashed) == first


@given(root=levels, hub=st.one_of(st.none(), level), key=keys, layout=st.sampled_from(MqttLayout))
def test_hashed_topics_never_hold_the_key(root: list[str], hub: str | None, key: str, layout: MqttLayout) -> None:
    assume(all(key not in part for part in [*root, hub or ""]))
    derived = topics(layout, access_key=key, topic_prefix="/".join([*root, key]), hub_id=hub, hash_topics=True)
    sat = satellite_id(key, hash_topics=True)
    assert all(key not in topic.split("/") and sat in topic.split("/") for topic in derived)


@given(
    key=st.text(max_size=20),
    username=any_text,
    prefix=any_text,
    hub=any_text,
    c2s=any_text,
    s2c=any_text,
    status=any_text,
    hashed=st.booleans(),
    layout=st.sampled_from(MqttLayout),
)
def test_any_fields_give_three_valid_distinct_topics_or_a_named_problem(
    key: str,
    username: str | None,
    prefix: str | None,
    hub: str | None,
    c2s: str | None,
    s2c: str | None,
    status: str | None,
    hashed: bool,
    layout: MqttLayout,
) -> None:
    settings = TopicSettings(
        access_key=key,
        username=username,
        topic_prefix=prefix,
        hub_id=hub,
        c2s_topic=c2s,
        s2c_topic=s2c,
        status_topic=status,
        hash_topics=hashed,
    )
    result = derive_topics(settings, layout)  # never raises
    if isinstance(result, Failure):
        fields = {"access_key", "mqtt.topic_prefix", "mqtt.hub_id", "mqtt.c2s_topic", "mqtt.s2c_topic"}
        assert result.failure().field in fields | {"mqtt.status_topic"}
        return
    derived = result.unwrap()
    link = mqtt_topics(access_key=key, topic_prefix="", layout=layout, overrides=derived.as_overrides())
    assert isinstance(link, Success)  # every derived topic passes the link's own validation
    if not (c2s and s2c):
        assert len(set(derived)) == 3


@pytest.mark.parametrize("layout", list(MqttLayout))
def test_no_explicit_topics_means_the_three_differ_in_one_level_only(layout: MqttLayout) -> None:
    derived = topics(layout, topic_prefix="hivemind/hub/client-access-key", hub_id="hub")
    split = [t.split("/") for t in derived]
    assert len({len(s) for s in split}) == 1
    assert sum(len({s[i] for s in split}) > 1 for i in range(len(split[0]))) == 1
