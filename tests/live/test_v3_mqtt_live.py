"""Protocol v3 (Noise) over MQTT on the real hub 5.x: topic shapes, isolation, tombstones (issues 12, 13).

Hub 5.x's MQTT plugin (hivemind-mqtt-protocol 0.2.5a2) listens on ``<root>/<key>/in`` and answers on
``<root>/<key>/out``; ``<root>/<key>/status`` carries ``online``/``offline``. There is no hub id level.
The client picks these topics with ``mqtt_layout="modern"``. The broker ACL (``tests/harness/config.py``,
``broker_acl(v3=True)``) lets each login use only its own three topics, so a client that derives any
other topic never gets a session: that is what tells the layouts apart below.

The shapes an identity may hold on hub 5.x: the ACL-scoped ``<root>/<key>`` the control plane hands out
(the harness identity), the root alone, the root with an ``/in`` level, or explicit topics.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.harness.config import MQTT_ROOT, client_topics
from tests.harness.rawmqtt import RawMqtt
from tests.live.live_support import need_protocol, tag
from thalovant.core.client.topics import mqtt_topics_for_identity
from thalovant.core.errors import ThalovantTimeoutError
from thalovant.shell.client import AsyncThalovantClient
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.sync.client import ThalovantClient

pytestmark = pytest.mark.timeout(120)

# shape name -> the mqtt block's topic fields ("{key}" is the client's access key)
SHAPES: dict[str, dict[str, str]] = {
    "prefix-root-key": {"topic_prefix": f"{MQTT_ROOT}/{{key}}"},  # what the control plane hands out
    "prefix-root": {"topic_prefix": MQTT_ROOT},
    "prefix-root-key-in": {"topic_prefix": f"{MQTT_ROOT}/{{key}}/in"},
    "explicit": {"c2s_topic": f"{MQTT_ROOT}/{{key}}/in", "s2c_topic": f"{MQTT_ROOT}/{{key}}/out"},
}

CASES = [
    ("prefix-root-key", "psk"),
    ("prefix-root", "password"),
    ("prefix-root-key-in", "padded"),
    ("explicit", "wide"),
]


@pytest.fixture
def hub5_mqtt(real_hub_v3: Any) -> Any:
    """``real_hub_v3``, skipping without mosquitto."""
    need_protocol(real_hub_v3, "mqtt")
    return real_hub_v3


def shaped_identity(hub: Any, kind: str, fields: dict[str, str], tmp_path: Path) -> Path:
    """The harness identity of ``kind`` with its mqtt block's topic fields replaced by ``fields`` (mode 0600)."""
    values: dict[str, Any] = hub.identity(kind)
    key = values["access_key"]
    mqtt = {k: v for k, v in values["mqtt"].items() if k != "topic_prefix"}
    mqtt.update({name: value.format(key=key) for name, value in fields.items()})
    values["mqtt"] = mqtt
    path = tmp_path / f"{kind}-identity.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh)
    return path


@pytest.mark.parametrize(("shape", "kind"), CASES)
def test_v3_layout_identity_shapes_ask_and_get_the_echo_answer(
    hub5_mqtt: Any, shape: str, kind: str, tmp_path: Path
) -> None:
    identity = ThalovantIdentity.from_file(shaped_identity(hub5_mqtt, kind, SHAPES[shape], tmp_path))
    assert tuple(mqtt_topics_for_identity(identity, layout="modern")) == client_topics(True, identity.access_key)
    marker = tag(f"v3-topics-{shape}")
    with ThalovantClient(identity, protocol="mqtt", mqtt_layout="modern", connect_timeout=20) as client:
        reply = client.ask(f"ask {marker}", timeout=10)
        assert reply.text == f"echo: ask {marker}" and reply.ok
        health = client.healthcheck()
        assert (health.protocol, health.generation) == ("mqtt", 3)


def test_the_hub4_layout_gets_no_session_on_hub5(hub5_mqtt: Any) -> None:
    """The default (hub 4.x) layout derives ``hivemind/c2s/<key>`` from the same identity: the hub never hears it."""
    identity = ThalovantIdentity.from_file(hub5_mqtt.identity_path("psk2"))
    assert mqtt_topics_for_identity(identity).c2s == f"{MQTT_ROOT}/c2s/{identity.access_key}"
    client = ThalovantClient(identity, protocol="mqtt", connect_timeout=4)
    try:
        with pytest.raises(ThalovantTimeoutError, match="no ready session"):
            client.connect()
    finally:
        client.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_v3_two_identities_see_only_their_own_replies(hub5_mqtt: Any) -> None:
    kwargs: dict[str, Any] = {"protocol": "mqtt", "mqtt_layout": "modern"}
    async with (
        AsyncThalovantClient.from_identity_file(hub5_mqtt.identity_path("psk"), **kwargs) as a,
        AsyncThalovantClient.from_identity_file(hub5_mqtt.identity_path("psk2"), **kwargs) as b,
    ):
        run = tag("v3-iso")
        heard: dict[str, list[str]] = {"a": [], "b": []}
        replies: dict[str, list[str]] = {"a": [], "b": []}

        async def watch(name: str, listener: Any) -> None:
            async for ev in listener:
                heard[name].append(ev.text)

        async def asks(name: str, client: AsyncThalovantClient) -> None:
            for n in range(5):
                replies[name].append((await client.ask(f"{run} {name} turn {n}", timeout=10)).text)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch, "a", a.listen("speak", timeout=30, predicate=lambda ev: run in ev.text))
            tg.start_soon(watch, "b", b.listen("speak", timeout=30, predicate=lambda ev: run in ev.text))
            async with anyio.create_task_group() as inner:
                inner.start_soon(asks, "a", a)
                inner.start_soon(asks, "b", b)
            await anyio.sleep(0.3)  # a reply routed to the wrong client would arrive by now
            tg.cancel_scope.cancel()
        for name in ("a", "b"):
            expected = [f"echo: {run} {name} turn {n}" for n in range(5)]
            assert replies[name] == expected
            assert heard[name] == expected, f"{name} heard {heard[name]}"


def test_v3_sequential_clients_of_one_key_are_all_answered(hub5_mqtt: Any) -> None:
    """Back-to-back clients of one key: each connects and is answered (no "the hub greeted again" reset).

    Hub 5.x's plugin tombstones a dropped client like hub 4.x's (the raw test below); the SDK's status
    discipline, on for this layout too, waits for the tombstone before it disconnects, so the next client's
    HELLO never meets it.
    """
    took = []
    for n in range(10):
        started = time.monotonic()
        with ThalovantClient.from_identity_file(
            hub5_mqtt.identity_path("admin"), protocol="mqtt", mqtt_layout="modern", connect_timeout=10
        ) as client:
            assert client.ask(f"sequential {n}", timeout=10).text == f"echo: sequential {n}"
            assert client.healthcheck().reconnects == 0
        took.append(time.monotonic() - started)
    print(f"\n[v3 mqtt sequential] 10 clients, connect+ask+close {min(took):.2f}-{max(took):.2f}s")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_v3_messages_over_one_noise_frame_cross_mqtt_both_ways(hub5_mqtt: Any) -> None:
    """100 kB each way: the hub and the client split it over several Noise transport messages (max 65535 bytes)."""
    body = "x" * 100_000
    async with AsyncThalovantClient.from_identity_file(
        hub5_mqtt.identity_path("psk"), protocol="mqtt", mqtt_layout="modern"
    ) as client:
        pushed = f"{tag('big')} {body}"
        listener = client.listen("speak", timeout=10, max_events=1, predicate=lambda ev: ev.text == pushed)
        assert await anyio.to_thread.run_sync(lambda: hub5_mqtt.push_event("speak", {"utterance": pushed}))
        assert [len(ev.text) async for ev in listener] == [len(pushed)]
        asked = f"{tag('big-ask')} {body}"
        assert (await client.ask(asked, timeout=15)).text == f"echo: {asked}"


def _hello(session_id: str) -> bytes:
    payload = {"session": {"session_id": session_id, "site_id": "loopback-test"}, "site_id": "loopback-test"}
    return json.dumps({"msg_type": "hello", "payload": payload, "metadata": {}, "route": [], "node": None}).encode()


def test_v3_broker_acl_and_hub_greeting_raw(hub5_mqtt: Any) -> None:
    """Raw MQTT, no SDK: a frame on ``<root>/<key>/in`` gets the v3 greeting on ``.../out``; others' topics are shut."""
    hub = hub5_mqtt
    me, other = hub.identity("wide"), hub.identity("padded")
    mine, theirs = me["access_key"], other["access_key"]
    my_in, my_out, my_status = client_topics(True, mine)
    their_in, their_out, their_status = client_topics(True, theirs)
    port = hub.ports.mqtt
    with (
        RawMqtt(port, client_id=f"t-{mine[:8]}", username=mine, password=me["mqtt"]["password"]) as cli,
        RawMqtt(port, client_id=f"t-{theirs[:8]}", username=theirs, password=other["mqtt"]["password"]) as peer,
    ):
        assert cli.connack_code == 0 and peer.connack_code == 0
        cli.subscribe(my_out)
        cli.subscribe(their_out)  # mosquitto grants it, but the ACL filters every delivery
        peer.subscribe(their_out)
        cli.publish(their_in, _hello("spoof"))  # another login's /in: dropped by the broker, the hub never greets
        with pytest.raises(TimeoutError):
            peer.receive(timeout=1.0)
        try:
            for client, into, out in ((cli, my_in, my_out), (peer, their_in, their_out)):
                client.publish(into, _hello("mqtt-v3-probe"))
                topic, payload = client.receive(timeout=10)
                assert (topic, json.loads(payload)["msg_type"]) == (out, "hello")
                topic, payload = client.receive(timeout=10)
                offer = json.loads(payload)
                assert (topic, offer["msg_type"]) == (out, "shake")
                assert offer["payload"]["max_protocol_version"] == 3
            with pytest.raises(TimeoutError):  # the greeting of "theirs" went out, and "mine" could not read it
                cli.receive(timeout=1.0)
        finally:  # leave no half-open logical connection behind for the SDK tests of these keys
            cli.publish(my_status, b"offline", retain=True)
            peer.publish(their_status, b"offline", retain=True)


def _drain(client: RawMqtt, seconds: float) -> list[tuple[str, bytes]]:
    """Everything ``client`` receives within ``seconds`` (bounded)."""
    seen, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            seen.append(client.receive(timeout=min(0.2, max(0.01, end - time.monotonic()))))
        except TimeoutError:
            continue
    return seen


def test_hub5_plugin_tombstones_a_dropped_client_and_kills_the_next_hello_with_it(hub5_mqtt: Any) -> None:
    """Why the SDK keeps the MQTT status discipline on the hub 5.x layout too (raw MQTT, no SDK).

    Plugin 0.2.5a2 answers an ``offline`` by dropping the key's connection; core's disconnect then calls the
    plugin's ``do_disconnect``, which publishes a retained ``offline`` (a tombstone) on the same status topic,
    and the plugin's own ``+/status`` subscription brings it back. A HELLO sent right after the ``offline`` (the
    next client of the key) is greeted, then torn down by that tombstone, which answers with another one.
    """
    ident = hub5_mqtt.identity("wide")
    key = ident["access_key"]
    c2s, s2c, status = client_topics(True, key)
    with RawMqtt(hub5_mqtt.ports.mqtt, client_id=f"t-{key[:8]}", username=key, password=ident["mqtt"]["password"]) as a:
        a.subscribe(s2c)
        a.subscribe(status)
        try:
            a.publish(status, b"offline", retain=True)
            _drain(a, 0.5)
            a.publish(c2s, _hello("first"))
            assert [json.loads(a.receive(timeout=10)[1])["msg_type"] for _ in range(2)] == ["hello", "shake"]
            a.publish(status, b"offline", retain=True)  # the closing client's offline ...
            a.publish(c2s, _hello("second"))  # ... and at once the next client's HELLO
            seen = [(topic.rsplit("/", 1)[1], payload) for topic, payload in _drain(a, 2.0)]
        finally:
            a.publish(status, b"offline", retain=True)
    greeted = [n for n, (kind, payload) in enumerate(seen) if kind == "out" and b'"hello"' in payload]
    assert greeted, f"the second HELLO was not greeted: {[kind for kind, _ in seen]}"
    offlines = [kind for kind, payload in seen if kind == "status" and payload == b"offline"]
    # ours, the tombstone for the first connection, and the one for the greeted second connection it killed
    assert len(offlines) >= 3, [kind for kind, _ in seen]
    assert any(kind == "status" for kind, _ in seen[greeted[0] + 1 :]), "no tombstone after the new greeting"
