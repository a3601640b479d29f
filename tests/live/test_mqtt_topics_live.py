"""README-shaped MQTT identities on the real hub 4.0.0 (mosquitto, plugin 0.1.0a2): issue 12 item 4.

The control plane hands out an ACL-scoped ``topic_prefix`` that ends in the client's own key
(``<root>/<hub_id>/<key>``, the 0.4.7 README's shape), or a root prefix plus ``hub_id``. thalovant
0.4.7 derives ``<root>/<hub_id>/c2s|s2c|status/<key>`` from both; the hub listens there and the
harness's broker ACL (``tests/harness/config.py``, ``broker_acl``) lets each login use only those
topics. Each shape below connects, asks and gets the echo agent's answer. A client that talks on
the prefix as is (what thalovant did before) gets no session: the last test shows the hub and the
ACL tell the two apart.

Hub 5.x (the ``/in /out /status`` layout, ``mqtt_layout="modern"``): ``tests/live/test_v3_mqtt_live.py``.

Each case uses a client kind (an access key) of its own. Hub 4.x's MQTT plugin 0.1.0a2 answers a
client's ``offline`` by tearing the peer down and publishing an ``offline`` tombstone on that client's
status topic, which it then consumes itself: when a second client with the same key says HELLO
within that round trip (tens of ms), the tombstone tears the new session down ("the hub greeted
again"). That race is not about topics (it happens with any topics; tests/harness/NOTES.md); one key
per case keeps it out of this proof.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.harness.config import MQTT_BASE, MQTT_HUB_ID, MQTT_ROOT
from tests.live.live_support import tag
from thalovant.core.client.topics import mqtt_topics_for_identity
from thalovant.core.errors import ThalovantTimeoutError
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.sync.client import ThalovantClient

pytestmark = pytest.mark.timeout(120)

# shape name -> the mqtt block's topic fields ("{key}" is the client's access key)
SHAPES: dict[str, dict[str, str]] = {
    "prefix-root-hub-key": {"topic_prefix": f"{MQTT_BASE}/{{key}}"},  # the 0.4.7 README
    "prefix-root-plus-hub-id": {"topic_prefix": MQTT_ROOT, "hub_id": MQTT_HUB_ID},
    "prefix-with-key-and-hub-id": {"topic_prefix": f"{MQTT_BASE}/{{key}}", "hub_id": MQTT_HUB_ID},
    "hub-id-only": {"hub_id": MQTT_HUB_ID},
}


def shaped_identity(hub: Any, kind: str, fields: dict[str, str], tmp_path: Path) -> Path:
    """The harness identity of ``kind`` with its mqtt block's topic fields replaced by ``fields`` (mode 0600)."""
    values: dict[str, Any] = hub.identity(kind)
    key = values["access_key"]
    mqtt = {k: v for k, v in values["mqtt"].items() if k not in ("topic_prefix", "hub_id")}
    mqtt.update({name: value.format(key=key) for name, value in fields.items()})
    values["mqtt"] = mqtt
    path = tmp_path / f"{kind}-identity.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh)
    return path


# (shape, client kind): every case its own key (see the module docstring)
CASES = [
    ("prefix-root-hub-key", "psk"),
    ("prefix-root-hub-key", "password"),
    ("prefix-root-plus-hub-id", "psk2"),
    ("prefix-with-key-and-hub-id", "psk-only"),
    ("hub-id-only", "padded"),
]


@pytest.mark.parametrize(("shape", "kind"), CASES)
def test_readme_shaped_identity_asks_and_gets_the_echo_answer(
    real_hub_mqtt: Any, shape: str, kind: str, tmp_path: Path
) -> None:
    path = shaped_identity(real_hub_mqtt, kind, SHAPES[shape], tmp_path)
    identity = ThalovantIdentity.from_file(path)
    key = identity.access_key
    topics = mqtt_topics_for_identity(identity)
    assert tuple(topics) == (f"{MQTT_BASE}/c2s/{key}", f"{MQTT_BASE}/s2c/{key}", f"{MQTT_BASE}/status/{key}")
    marker = tag(f"topics-{shape}")
    with ThalovantClient(identity, protocol="mqtt", connect_timeout=20) as client:
        reply = client.ask(f"ask {marker}", timeout=10)
        assert reply.text == f"echo: ask {marker}" and reply.ok
        assert client.healthcheck().protocol == "mqtt"


def test_the_prefix_taken_as_is_gets_no_session(real_hub_mqtt: Any, tmp_path: Path) -> None:
    """The old derivation (``<prefix>/c2s/<key>`` with the README prefix), given as explicit topics: no session."""
    key = real_hub_mqtt.identity("wide")["access_key"]
    old = f"{MQTT_BASE}/{key}"
    fields = {"c2s_topic": f"{old}/c2s/{key}", "s2c_topic": f"{old}/s2c/{key}", "status_topic": f"{old}/status/{key}"}
    identity = ThalovantIdentity.from_file(shaped_identity(real_hub_mqtt, "wide", fields, tmp_path))
    client = ThalovantClient(identity, protocol="mqtt", connect_timeout=4)
    try:
        with pytest.raises(ThalovantTimeoutError, match="no ready session"):
            client.connect()
    finally:
        client.close()
