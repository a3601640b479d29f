"""The Connection after a hub restart: every signal that the hub lost us, one link at a time, asks that wait.

Over the in-memory FakeHub on virtual time. The MQTT status messages a real broker would deliver are fed by
hand (``status``): the fake transport does not publish the hub's presence.
"""

from __future__ import annotations

from typing import Any

from thalovant.core.client import correlate as corr
from thalovant.core.client.connection import ConnectionState, LinkFact, SendError, StatusChanged
from thalovant.core.links.mqtt import MqttMessage, Publish
from thalovant.core.links.ws import WsClosed
from thalovant.core.machine import Output
from thalovant.testing import InMemoryHubSession
from thalovant.testing.session import THROWAWAY_ACCESS_KEY

S = ConnectionState
HUB = "hivemind/fake-hub/status/hub"
STATUS = f"hivemind/fake-hub/status/{THROWAWAY_ACCESS_KEY}"
CRYPTO_KEY = "0f1e2d3c4b5a6978"


def session(protocol: Any, **kw: Any) -> InMemoryHubSession:
    return InMemoryHubSession(protocol=protocol, crypto_key=CRYPTO_KEY, **kw)


def status(s: InMemoryHubSession, topic: str, payload: bytes) -> list[Output]:
    """The broker delivers a status message to the current link."""
    return s.feed(LinkFact(epoch=s.connection.epoch, fact=MqttMessage(topic=topic, payload=payload, qos=1)))


def states(outputs: list[Output]) -> list[tuple[ConnectionState, str]]:
    return [(o.state, o.detail) for o in outputs if isinstance(o, StatusChanged)]


def test_mqtt_the_hub_going_offline_ends_the_session_at_once_and_a_new_one_follows() -> None:
    s = session("mqtt")
    assert s.connect() is S.READY
    s.transport.blackhole = True  # the ask's publish is never acknowledged: it stays in flight
    pending = s.start_ask("lost with the hub", timeout=30.0)
    s.transport.blackhole = False
    outs = status(s, HUB, b"offline")  # the hub's last will: it died
    assert (S.CONNECTING, "reconnecting: the hub went offline (its status topic)") in states(outs)
    failed = s.ask_result(pending)
    assert isinstance(failed, corr.AskFailed) and failed.kind == "link_lost"  # at once, not at its timeout
    assert s.connection.state is S.CONNECTING and not s.connection.last_error.startswith("not retrying")
    s.run(1.0, stop=lambda _: s.connection.state is S.READY)  # a young outage: tried again within base
    assert s.connection.state is S.READY and s.connection.epoch == 2
    assert isinstance(s.ask("back"), corr.AskFinished)


def test_mqtt_an_offline_on_our_status_topic_after_the_greeting_means_the_hub_dropped_us() -> None:
    s = session("mqtt")
    assert s.connect() is S.READY
    assert states(status(s, STATUS, b"offline")) == [
        (S.CONNECTING, "reconnecting: the hub dropped this client (an offline on its status topic)")
    ]
    s.run(1.0, stop=lambda _: s.connection.state is S.READY)
    assert s.connection.state is S.READY and s.connection.epoch == 2


def test_mqtt_a_new_link_waits_until_the_old_one_said_goodbye() -> None:
    s = session("mqtt")
    assert s.connect() is S.READY
    s.transport.blackhole = True  # the old link's "offline" is never acknowledged: it closes at close_timeout (5 s)
    before = len(s.transport.orders)
    status(s, HUB, b"offline")
    start = s.clock.now
    s.run(4.5)
    assert s.connection.epoch == 1  # the OpenLink (due after <= 0.5 s) is held while the old link closes
    s.transport.blackhole = False
    s.run(1.0, stop=lambda _: s.connection.state is S.READY)
    assert s.connection.state is S.READY and s.connection.epoch == 2 and s.clock.now - start >= 5.0
    kinds = [type(o).__name__ for o in s.transport.orders[before:]]
    # goodbye (offline, then DISCONNECT) before the next hello (will, CONNECT)
    assert kinds[:4] == ["Publish", "DisconnectMqtt", "SetWill", "ConnectMqtt"], kinds
    assert isinstance(s.transport.orders[before], Publish) and s.transport.orders[before].payload == b"offline"


def test_https_an_ask_refused_as_not_connected_goes_back_and_is_answered_on_the_next_session() -> None:
    s = session("https")
    assert s.connect() is S.READY
    s.hub.close_connection()  # the hub restarted between two polls: it forgot us
    ask_id = s.start_ask("after the restart", timeout=10.0)
    s.run(5.0, stop=lambda _: s.ask_result(ask_id) is not None)
    result = s.ask_result(ask_id)
    assert isinstance(result, corr.AskFinished) and result.reply.text == "echo: after the restart"
    assert not [o for o in s.outputs if isinstance(o, SendError)]  # it was never lost, only delayed
    assert s.connection.epoch == 2 and s.hub.request_counts[result.reply.request_id] == 1


def test_an_ask_issued_while_away_is_answered_once_the_hub_is_back_within_its_own_timeout() -> None:
    s = session("wss", queue_timeout=2.0)
    assert s.connect() is S.READY
    s.transport.blackhole = True  # the hub is gone: the next dial hangs
    s.drop_link()
    ask_id = s.start_ask("while away", timeout=20.0)
    s.run(6.0)  # longer than queue_timeout: the ask still waits
    assert s.ask_result(ask_id) is None
    s.transport.blackhole = False
    s.feed(LinkFact(epoch=s.connection.epoch, fact=WsClosed(code=1006, reason="connect timed out")))
    s.run(5.0, stop=lambda _: s.ask_result(ask_id) is not None)
    assert isinstance(s.ask_result(ask_id), corr.AskFinished)


def test_wss_a_silent_drop_right_after_the_handshake_is_retried_before_it_is_called_a_refusal() -> None:
    s = session("wss")
    assert s.connect() is S.READY
    s.close_link(1006)  # the hub died right after our handshake (or refused our pre-shared key): once is no proof
    assert s.connection.state is S.CONNECTING
    s.run(1.0, stop=lambda _: s.connection.state is S.READY)
    assert s.connection.state is S.READY
    s.close_link(1006)  # the same again, on the very next session: a refusal
    s.run(1.0, stop=lambda _: s.connection.state is S.GAVE_UP)
    gave_up = [o for o in s.outputs if isinstance(o, StatusChanged) and o.state is S.GAVE_UP]
    assert gave_up and gave_up[-1].auth and "credentials refused" in gave_up[-1].detail
