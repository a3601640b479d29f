"""Whole-client replay: a recorded Connection session over the FakeHub replays to identical outputs.

The cassettes ``tests/cassettes/connection_*.jsonl`` were recorded by :func:`record_scenario`
with a throwaway identity made up by ``thalovant.testing`` (the header says so). Regenerate them
after an intended behaviour change with ``python -m tests.core.client.test_connection_replay`` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.paths import TESTS
from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.outbound import utterance_message
from thalovant.core.bus.refusal import Denial
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client import correlate as corr
from thalovant.core.client.connection import (
    CancelAsk,
    Connect,
    ConnectionConfig,
    Disconnect,
    DropLink,
    EventDelivered,
    LinkFact,
    LinkOrder,
    OpenWebSocket,
    SendDone,
    SendError,
    SendRequested,
    StatusChanged,
)
from thalovant.core.client.connection import ConnectionState as S
from thalovant.core.client.reconnect import Jitter, ReconnectConfig
from thalovant.core.links.http_wire import CancelRequest, HttpPollConfig, RequestFailed, ResponseReceived, StartRequest
from thalovant.core.links.mqtt import (
    ConnectMqtt,
    DisconnectMqtt,
    MqttConnected,
    MqttDisconnected,
    MqttMessage,
    MqttPublished,
    MqttPublishFailed,
    MqttSubscribed,
    Publish,
    SetWill,
    Subscribe,
)
from thalovant.core.links.mqtt_topics import MqttLayout, TopicOverrides
from thalovant.core.links.ws import CloseWs, SendWs, WsClosed, WsMessage, WsOpened, WsRejected
from thalovant.core.machine import Note, NoteLevel, Tick
from thalovant.core.trace import decode_value, encode_value
from thalovant.core.wire.message import BusMessage
from thalovant.testing import InMemoryHubSession, connection_registry, replay_connection

CASSETTES = TESTS / "cassettes"
SCENARIOS = {
    "connection_wss_password": ("wss", 1, "password"),
    "connection_https_psk": ("https", 1, "psk"),
    "connection_mqtt_both": ("mqtt", 1, "both"),
    "connection_wss_v3": ("wss", 3, "password"),
}
PASSWORD = "throwaway-password-for-tests"
CRYPTO_KEY = "0f1e2d3c4b5a6978"


def record_scenario(protocol: Any, generation: int, creds: str) -> str:
    """One recorded session: connect, asks, emit, push, link loss mid-ask, queued send, reconnect, close."""
    s = InMemoryHubSession(
        protocol=protocol,
        generation=generation,
        password=PASSWORD if creds != "psk" else None,
        crypto_key=CRYPTO_KEY if creds != "password" else None,
        record=True,
        queue_timeout=20.0,
    )
    assert s.connect() is S.READY
    assert isinstance(s.ask("hello"), corr.AskFinished)
    assert isinstance(s.emit("thalovant.test.emit", {"n": 1}), SendDone)
    s.push("hub.announcement", {"text": "hi"})
    s.run(1.0)
    s.ask("multi")
    s.ask("deny")
    pending = s.start_ask("silent", timeout=30.0)
    s.drop_link()
    s.run(3.0, stop=lambda _: s.ask_result(pending) is not None)
    queued = s.send(BusMessage(type="queued.while.down", context={"request_id": "q1"}), timeout=20.0)
    assert s.connect() is S.READY
    s.run(1.0, stop=lambda _: s.outcome(queued) is not None)
    assert isinstance(s.outcome(queued), SendDone)
    waiting = s.start_ask("silent", timeout=5.0)
    s.feed(CancelAsk(ask_id=waiting))
    s.ask("fail")
    s.disconnect()
    s.run(2.0)
    return s.trace()


def cassette(name: str) -> str:
    return (CASSETTES / f"{name}.jsonl").read_text("utf-8")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_cassette_replays_to_identical_outputs_twice(name: str) -> None:
    text = cassette(name)
    header = json.loads(text.splitlines()[0])
    assert header["machine"] == "connection" and "throwaway" in header["secrets"]
    first, second = replay_connection(text), replay_connection(text.splitlines())
    assert first.ok, first
    assert first == second == replay_connection(CASSETTES / f"{name}.jsonl")
    assert first.steps == len(text.splitlines()) - 1 > 20


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recording_today_gives_the_committed_cassette(name: str) -> None:
    protocol, generation, creds = SCENARIOS[name]
    assert record_scenario(protocol, generation, creds) == cassette(name)


@pytest.mark.parametrize("seed", ["0", "4242"])
def test_replay_in_a_fresh_interpreter_with_another_hash_seed(seed: str) -> None:
    code = (
        "import sys, pathlib\n"
        "from thalovant.testing import replay_connection\n"
        "for p in sys.argv[1:]:\n"
        "    r = replay_connection(pathlib.Path(p).read_text('utf-8'))\n"
        "    print(p, r.ok, r.steps)\n"
        "    assert r.ok, r\n"
    )
    paths = [str(CASSETTES / f"{n}.jsonl") for n in sorted(SCENARIOS)]
    env = dict(os.environ, PYTHONHASHSEED=seed)
    done = subprocess.run(
        [sys.executable, "-c", code, *paths], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count(" True ") == len(paths)


def test_the_shells_replay_reads_these_cassettes_too(tmp_path: Path) -> None:
    from thalovant.shell.recording import replay_file

    path = tmp_path / "session.jsonl"
    path.write_text(cassette("connection_mqtt_both"), "utf-8")
    report, secrets = replay_file(path)
    assert report.ok and report.steps > 20
    assert PASSWORD in secrets and CRYPTO_KEY in secrets


def test_unreadable_sources_are_problems(tmp_path: Path) -> None:
    missing = replay_connection(tmp_path / "missing.jsonl")
    assert not missing.ok and missing.problem is not None and "cannot read" in missing.problem.detail
    as_path_string = replay_connection(str(CASSETTES / "connection_wss_v3.jsonl"))
    assert not as_path_string.ok and as_path_string.problem is not None
    assert "pathlib.Path" in as_path_string.problem.detail


def test_a_changed_output_is_reported_at_its_step() -> None:
    lines = cassette("connection_wss_password").splitlines()
    index = next(i for i, line in enumerate(lines) if "echo: hello" in line)
    lines[index] = lines[index].replace("echo: hello", "echo: HELLO", 1)
    report = replay_connection(lines)
    assert not report.ok and report.divergence is not None
    assert report.divergence.what == "out" and report.divergence.seq == index - 1
    assert report.steps == index


@pytest.mark.parametrize(
    "mangle",
    [
        lambda ls: [],
        lambda ls: ["not json", *ls[1:]],
        lambda ls: [ls[0].replace('"connection"', '"http_poll"', 1), *ls[1:]],
        lambda ls: [ls[0], '{"seq": 0}'],
        lambda ls: [ls[0], ls[1].replace("machine.Tick", "os.system").replace("connection.Connect", "os.system")],
        lambda ls: [ls[0], *ls[2:]],  # a step missing: the entropy or outputs no longer match
    ],
)
def test_broken_cassettes_are_reported_never_raised(mangle: Any) -> None:
    report = replay_connection(mangle(cassette("connection_https_psk").splitlines()))
    assert not report.ok
    assert report.problem is not None or report.divergence is not None


def _roundtrip(value: object) -> None:
    encoded = encode_value(value)
    decoded = decode_value(json.loads(json.dumps(encoded)), connection_registry())
    assert decoded.unwrap() is not None and type(decoded.unwrap()) is type(value)
    assert encode_value(decoded.unwrap()) == encoded


EVENT = ThalovantEvent(type="speak", data={"utterance": "echo: hi", "n": [1, 2]}, context={"request_id": "r"})
DENIAL = Denial(denied_type="speak", code="acl", reason="no", allowed=("a",), period=60.0, limit=3, used=4)
ASK = corr.AskStarted(ask_id="a", request_id="r", session_id="s", deadline=9.5)
MESSAGE = utterance_message("hi", request_id="r", session_id="s")
FACTS = [
    WsOpened(),
    WsRejected(status=403),
    WsMessage(data="text"),
    WsMessage(data=b"\x00\xff"),
    WsClosed(code=None),
    WsClosed(code=1008, reason="invalid api key"),
    ResponseReceived(req_id=3, status=200, headers=(("Set-Cookie", "x=y"),), body=b'{"messages": []}'),
    RequestFailed(req_id=4, kind="timeout", detail="slow"),
    MqttConnected(session_present=True),
    MqttSubscribed(granted_qos=128),
    MqttPublished(pub_id=7),
    MqttPublishFailed(pub_id=8, reason="gone"),
    MqttMessage(topic="t/s2c", payload=b"\x01", qos=1),
    MqttDisconnected(rc=7),
]
ORDERS = [
    OpenWebSocket(target="/?authorization=abc", headers=(("User-Agent", "UA"),)),
    SendWs(data=b"\x01", refs=(1, 2)),
    CloseWs(code=1000, reason="bye"),
    StartRequest(req_id=1, method="POST", target="/connect?authorization=x", headers=(("A", "b"),), body=b"m=1"),
    CancelRequest(req_id=1),
    SetWill(topic="t/status", payload=b"offline", qos=1, retain=True),
    ConnectMqtt(client_id="thalovant-00", keepalive=30, clean_session=False),
    Subscribe(topic="t/s2c", qos=1),
    Publish(pub_id=2, topic="t/c2s", payload=b"x", qos=1, retain=False),
    DisconnectMqtt(),
]
VALUES: list[object] = [
    Connect(),
    Disconnect(),
    Tick(),
    CancelAsk(ask_id="a"),
    SendRequested(ref=1, message=MESSAGE, deadline=3.25),
    SendRequested(ref=2, message=MESSAGE, deadline=3.25, ask=ASK),
    *[LinkFact(epoch=2, fact=f) for f in FACTS],
    *[LinkOrder(epoch=2, order=o) for o in ORDERS],
    DropLink(epoch=1),
    EventDelivered(event=EVENT),
    SendDone(ref=1),
    SendError(ref=1, reason="r", kind="link_lost", maybe_sent=True),
    StatusChanged(state=S.READY, detail="ready", generation=3, epoch=2, auth=False),
    corr.AskProgress(ask_id="a", event=EVENT),
    corr.AskFinished(ask_id="a", reply=ThalovantReply(text="hi", utterances=("hi",), events=(EVENT,), handled=True)),
    corr.AskFailed(ask_id="a", kind="policy_denied", reason="no", denial=DENIAL),
    corr.UnattributedDenial(denial=DENIAL, event=EVENT),
    Note(level=NoteLevel.WARNING, text="careful"),
    ConnectionConfig(
        protocol="mqtt",
        useragent="UA",
        session_id="s",
        access_key="k",
        mqtt_topic_prefix="hivemind/hub",
        mqtt_layout=MqttLayout.MODERN,
        mqtt_overrides=TopicOverrides(c2s="a/in"),
        http=HttpPollConfig(binary_uploads=True),
        reconnect=ReconnectConfig(jitter=Jitter.FULL, max_attempts=3),
        v3_options=(("psk", b"\x01" * 32), ("static_key", b"\x02" * 32)),
    ),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_every_connection_input_and_output_round_trips_through_the_trace_encoder(value: object) -> None:
    _roundtrip(value)


def test_the_cassettes_cover_the_connection_vocabulary() -> None:
    names = set()
    for name in SCENARIOS:
        for line in cassette(name).splitlines()[1:]:
            step = json.loads(line)
            names.add(step["in"]["$t"])
            names.update(o["$t"] for o in step["out"])
            if step["in"]["$t"] == "connection.LinkFact":
                names.add(step["in"]["fact"]["$t"])
    wanted = {
        "connection.Connect",
        "connection.Disconnect",
        "connection.SendRequested",
        "connection.CancelAsk",
        "connection.LinkFact",
        "machine.Tick",
        "connection.LinkOrder",
        "connection.EventDelivered",
        "connection.SendDone",
        "connection.StatusChanged",
        "correlate.AskProgress",
        "correlate.AskFinished",
        "correlate.AskFailed",
        "links.ws_link.WsMessage",
        "links.http_wire.ResponseReceived",
        "links.mqtt_map.MqttMessage",
    }
    assert wanted <= names, wanted - names


def main() -> None:
    """Regenerate the cassettes (review the diff before committing)."""
    CASSETTES.mkdir(exist_ok=True)
    for name, (protocol, generation, creds) in sorted(SCENARIOS.items()):
        (CASSETTES / f"{name}.jsonl").write_text(record_scenario(protocol, generation, creds), "utf-8")
        print("wrote", name)


if __name__ == "__main__":
    main()
