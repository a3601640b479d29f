"""Which status topic carries the hub's own presence, for :class:`~.mqtt_map.MqttMap` (spec §8.3).

Theory of operation
-------------------
The hub's presence (retained ``online`` when it connects to the broker, ``offline`` as its last
will) is the only signal that reaches an MQTT client when the hub dies or restarts while the
broker stays up. Where it lives depends on the plugin:

* hub 4.x (plugin 0.1.0a2, ``MqttLayout.LEGACY``): ``<prefix>/<hub_id>/status/hub``, next to the
  client's own status topic (:func:`.mqtt.hub_status_topic`).
* hub 5.x (plugin 0.2.x, ``MqttLayout.MODERN``): ``<prefix>/<node name>/status``, where the node
  name is the hub's identity name (``unnamed-node`` unless its operator named it). Nothing the
  client holds or hears names it: the HELLO carries the node's public key, not its name.

On the modern layout the link therefore subscribes to the status level's wildcard
``<prefix>/+/status`` instead of its own status topic. The broker delivers the client's own status
and every other status topic its ACL lets the client read (a scoped ACL: only the hub's). The
link *learns* the hub's topic when the hub first speaks to it: the hub is online then, so if
exactly one other status topic says ``online``, it is the hub's. None or several (an open ACL
shows every client's status) -> nothing is learned and the link behaves as without a presence
(its keep-alive finds a restarted hub). At most :data:`MAX_FOREIGN` other topics are tracked;
more makes the answer "several". The learned name is handed to the next link of the same
connection (``MqttMap(hub_name=...)``), so a link opened while the hub is down knows that the
``offline`` it reads is the hub's and waits for its ``online``.

A broker that refuses the wildcard subscription gets the exact status topic instead
(:meth:`HubPresence.refused`). Other status topics hold other clients' access keys: they never
appear in a note, a repr or an exception.
"""

from __future__ import annotations

from typing import Literal

from thalovant.core.links.mqtt import MqttLayout, MqttTopics, hub_status_topic

__all__ = ["MAX_FOREIGN", "HubPresence", "Route"]

#: How many other status topics one link tracks while it learns the hub's.
MAX_FOREIGN = 8

#: Which status topic a message came on: the client's own, the hub's presence, or another one.
Route = Literal["status", "hub", "other"]

_ONLINE, _OFFLINE = b"online", b"offline"
_STATUS = "status"


class HubPresence:
    """The status subscriptions of one MQTT link and which topic is the hub's presence.

    Args:
        topics: the link's topics.
        layout: which plugin generation's topics they are.
        hub_name: the hub's node name learned by an earlier link (modern layout only), or None.
    """

    def __init__(self, topics: MqttTopics, *, layout: MqttLayout, hub_name: str | None = None) -> None:
        self.own = topics.status
        self.wildcard: str | None = None
        self.hub_topic: str | None = None
        self._root: str | None = None
        self._others: dict[str, bytes] = {}  # other status topic -> its last online/offline
        self._crowded = False
        if layout is MqttLayout.LEGACY:
            self.hub_topic = hub_status_topic(topics)
            return
        root, _, tail = topics.status.rpartition("/")
        root, _, own_level = root.rpartition("/")
        if tail != _STATUS or not root or not own_level:
            return  # explicit topics of another shape: no presence
        self._root, self.wildcard = root, f"{root}/+/{_STATUS}"
        if hub_name and _is_level(hub_name) and hub_name != own_level:
            self.hub_topic = f"{root}/{hub_name}/{_STATUS}"

    def __repr__(self) -> str:
        return f"<HubPresence known={self.hub_topic is not None} wildcard={self.wildcard is not None}>"

    @property
    def hub_name(self) -> str | None:
        """The hub's node name on the modern layout once known (to hand to the next link)."""
        if self._root is None or self.hub_topic is None:
            return None
        return self.hub_topic[len(self._root) + 1 : -len(_STATUS) - 1]

    def subscriptions(self) -> list[str]:
        """The status topics to subscribe to, in order (before the s2c topic)."""
        if self.wildcard is not None:
            return [self.wildcard]
        return [t for t in (self.hub_topic, self.own) if t is not None]

    def refused(self) -> str | None:
        """The broker refused the wildcard: the topic to subscribe to instead (the own status), else None."""
        if self.wildcard is None:
            return None
        self.wildcard = None
        self._others.clear()
        return self.own

    def route(self, topic: str) -> Route | None:
        """Which status topic ``topic`` is, or None when it is none of ours."""
        if topic == self.own:
            return "status"
        if topic == self.hub_topic:
            return "hub"
        if self._root is not None and self.wildcard is not None and _level_under(topic, self._root) is not None:
            return "other"
        return None

    def note_other(self, topic: str, value: bytes) -> None:
        """Remember what another status topic said (only ``online``/``offline``; bounded)."""
        if self.hub_topic is not None or value not in (_ONLINE, _OFFLINE):
            return
        if topic not in self._others and len(self._others) >= MAX_FOREIGN:
            self._crowded = True
            return
        self._others[topic] = value

    def learn(self) -> bytes | None:
        """The hub just spoke to the link: pin the one other topic that says ``online``.

        Returns:
            ``b"online"`` (the hub's status) when a topic was pinned, else None.
        """
        if self.hub_topic is not None or self._crowded:
            return None
        online = [t for t, v in self._others.items() if v == _ONLINE]
        if len(online) != 1:
            return None
        self.hub_topic = online[0]
        self._others.clear()
        return _ONLINE


def _is_level(text: str) -> bool:
    """One plain topic level: no separator, wildcard, control character or ``$`` start."""
    return bool(text) and not text.startswith("$") and all(c.isprintable() and c not in "/+#" for c in text)


def _level_under(topic: str, root: str) -> str | None:
    """The level of ``<root>/<level>/status``, or None when ``topic`` has another shape."""
    head, sep, rest = topic.partition(root + "/")
    if head or not sep:
        return None
    level, slash, tail = rest.partition("/")
    return level if slash and tail == _STATUS and _is_level(level) else None
