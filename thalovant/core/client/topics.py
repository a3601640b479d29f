"""The MQTT topics of an identity, as thalovant 0.4.7 named them: :func:`mqtt_topics_for_identity`.

The rule itself is :func:`thalovant.core.links.mqtt_topics.derive_topics` (its module docstring has the
theory of operation, ``reference-sdk.md`` §d.10). This module reads the fields out of an identity,
runs the rule and turns a problem into the error 0.4.7 raised, ``ThalovantConnectionError``, naming
the identity field at fault and never a value. :func:`thalovant.core.client.plan.build_plan` uses the
same function, so the client talks on exactly the topics this returns.
"""

from __future__ import annotations

from typing import Literal, Protocol

from returns.result import Failure

from thalovant.core.errors import ThalovantConnectionError
from thalovant.core.identity.mqtt import MqttBrokerCredentials
from thalovant.core.links.mqtt_topics import MqttLayout, MqttTopicSet, TopicSettings, derive_topics

__all__ = ["MqttTopicSet", "TopicIdentity", "mqtt_topics_for_identity", "topic_settings"]

LayoutName = Literal["legacy", "modern"]


class TopicIdentity(Protocol):
    """What the topics are read from (``thalovant.ThalovantIdentity`` is one)."""

    @property
    def access_key(self) -> str: ...

    @property
    def mqtt(self) -> MqttBrokerCredentials | None: ...


def topic_settings(identity: TopicIdentity) -> TopicSettings:
    """The identity's topic fields as plain values.

    Raises:
        ThalovantConnectionError: the identity has no ``mqtt`` block.
    """
    creds = identity.mqtt
    if creds is None:
        raise ThalovantConnectionError(
            "cannot name the MQTT topics: mqtt: the identity has no mqtt block", retryable=False
        )
    return TopicSettings(
        access_key=identity.access_key,
        username=creds.username,
        topic_prefix=creds.topic_prefix,
        hub_id=creds.hub_id,
        c2s_topic=creds.c2s_topic,
        s2c_topic=creds.s2c_topic,
        status_topic=creds.status_topic,
        hash_topics=creds.hash_topics,
    )


def mqtt_topics_for_identity(
    identity: TopicIdentity, *, layout: MqttLayout | LayoutName = MqttLayout.LEGACY
) -> MqttTopicSet:
    """The three MQTT topics the client uses with ``identity``, as thalovant 0.4.7 derived them.

    A ``topic_prefix`` ending in the client's own key (``hivemind/hub-1/<key>``, what the control
    plane hands out) and a root prefix plus ``hub_id`` (``hivemind`` + ``hub-1``) both give
    ``hivemind/hub-1/c2s/<key>``, ``.../s2c/<key>`` and ``.../status/<key>``. Explicit ``c2s_topic``
    and ``s2c_topic`` win; ``hash_topics`` puts ``sha256(key)[:16]`` in place of the key.

    Args:
        identity: a ``ThalovantIdentity`` (anything with ``access_key`` and ``mqtt``).
        layout: ``"legacy"`` (hub 4.x plugin: ``.../c2s|s2c|status/<key>``, the default) or
            ``"modern"`` (hub 5.x plugin: ``<prefix>/<key>/in|out|status``).

    Returns:
        ``MqttTopicSet(c2s, s2c, status)``, a named tuple whose ``repr`` hides the topics.

    Raises:
        ThalovantConnectionError: no topics can be derived (no ``mqtt`` block; no prefix, ``hub_id``
            or explicit topics; a topic that is not valid), naming the field (``retryable`` False).
    """
    chosen = layout if isinstance(layout, MqttLayout) else _LAYOUTS.get(layout)
    if chosen is None:
        raise ThalovantConnectionError(
            "cannot name the MQTT topics: layout must be 'legacy' or 'modern'", retryable=False
        )
    derived = derive_topics(topic_settings(identity), chosen)
    if isinstance(derived, Failure):
        problem = derived.failure()
        where = f"{problem.field}: " if problem.field else ""
        raise ThalovantConnectionError(f"cannot name the MQTT topics: {where}{problem.detail}", retryable=False)
    return derived.unwrap()


_LAYOUTS: dict[str, MqttLayout] = {"legacy": MqttLayout.LEGACY, "modern": MqttLayout.MODERN}
