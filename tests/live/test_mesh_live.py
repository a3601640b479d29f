"""Mesh frames (PROPAGATE / ESCALATE / BROADCAST), ``reply()`` and ``query()`` against the real hubs.

What each hub does (seen 2026-12-08, recorded in tests/harness/NOTES.md):

* hub 5.3: a wrapper whose ``target_site_id`` is the hub's site (``HUB_SITE_ID``) is injected into its bus;
  PROPAGATE and BROADCAST reach the other peers as wrappers (``on_hive``); a non-admin BROADCAST and a
  QUERY without the ``can_escalate`` grant are closed with 4003; QUERY is answered by the OVOS agent
  plugin (``answer_query``: it injects the utterance and streams the ``speak`` replies of the echo agent).
* hub 4.0.0: wrappers for its site are injected too and relayed unwrapped (the peer sees a bus event),
  but every PROPAGATE / ESCALATE from a client then aborts the link (1006); a non-admin BROADCAST is
  dropped silently; QUERY is ignored (the client refuses it up front).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Generator
from contextlib import closing
from typing import Any, cast

import pytest

from tests.harness.hub import HUB_SITE_ID
from tests.live.live_support import fast_reconnect, need_protocol, report_in_summary, tag
from thalovant import (
    ThalovantArgumentError,
    ThalovantClient,
    ThalovantConnectionError,
    ThalovantEvent,
    ThalovantHiveMessage,
    ThalovantHiveRefusedError,
    ThalovantQueryNotSupportedError,
    ThalovantQueryRefusedError,
)

pytestmark = pytest.mark.hub

PROTOCOLS = ("wss", "https", "mqtt")


def _hub(request: pytest.FixtureRequest, generation: int) -> Any:
    return request.getfixturevalue("real_hub" if generation == 4 else "real_hub_v3")


def _client(hub: Any, kind: str, protocol: str = "wss", **extra: Any) -> ThalovantClient:
    need_protocol(hub, protocol)
    kwargs: dict[str, Any] = fast_reconnect(**extra)
    if hub.v3:
        kwargs.update({"mqtt_layout": "modern"} if protocol == "mqtt" else {"auth_encoding": "percent"})
    return ThalovantClient.from_identity_file(hub.identity_path(kind), protocol=protocol, **kwargs)


def _utterance_seen(hub: Any, marker: str, limit: float = 10.0) -> dict[str, Any]:
    return dict(hub.wait_echo("recognizer_loop:utterance", timeout=limit, utterances=[marker]))


@pytest.mark.parametrize("protocol", ["wss", "https"])
@pytest.mark.parametrize("generation", [4, 5])
def test_propagate_and_escalate_reach_the_hub_bus(request: pytest.FixtureRequest, generation: int,
                                                  protocol: str) -> None:
    hub = _hub(request, generation)
    with _client(hub, "psk", protocol) as client:
        timings = []
        for kind in ("propagate", "escalate"):
            marker = tag(f"mesh-{kind}-{protocol}")
            started = time.monotonic()
            send = getattr(client, kind)
            args = ("recognizer_loop:utterance", {"utterances": [marker], "lang": "en-us"})
            if generation == 4:  # hub 4.0.0 handles the frame, then drops the link (1006 / HTTP 500)
                with pytest.raises(ThalovantConnectionError, match="hub"):
                    send(*args, target_site_id=HUB_SITE_ID)
            else:
                send(*args, target_site_id=HUB_SITE_ID)
            timings.append(f"{kind}: returned after {time.monotonic() - started:.3f} s")
            seen = _utterance_seen(hub, marker)
            assert seen["context"]["session"]["site_id"] == "loopback-test"  # the inner envelope's session
        assert client.ask(tag("after-mesh"), timeout=20).ok  # the client still works (hub 4.x: reconnected)
    report_in_summary(request, f"mesh-{generation}-{protocol}", f"mesh sends, hub {generation}.x {protocol}", timings)


@pytest.mark.parametrize("generation", [4, 5])
def test_mqtt_carries_no_target_site(request: pytest.FixtureRequest, generation: int) -> None:
    """MQTT frames are binarized (spec §6.1: no ``target_site_id``): a site-targeted send is refused up front."""
    hub = _hub(request, generation)
    with _client(hub, "psk", "mqtt") as client, pytest.raises(ThalovantArgumentError, match="target_site_id"):
        client.escalate("recognizer_loop:utterance", {"utterances": ["never sent"]}, target_site_id=HUB_SITE_ID)


def test_propagate_over_mqtt_reaches_a_peer_on_hub_5(real_hub_v3: Any) -> None:
    marker = tag("propagate-mqtt")
    got: list[ThalovantHiveMessage] = []
    arrived = threading.Event()

    def on_frame(hive: ThalovantHiveMessage) -> None:
        if hive.data.get("marker") == marker:
            got.append(hive)
            arrived.set()

    with _client(real_hub_v3, "psk2") as receiver, _client(real_hub_v3, "psk", "mqtt") as sender:
        with receiver.on_hive("propagate", on_frame):
            sender.propagate("thalovant.mesh.test", {"marker": marker})
            assert arrived.wait(10)
    assert got[0].kind == "propagate" and got[0].type == "thalovant.mesh.test" and len(got[0].route) == 2


def test_a_wrapper_for_another_site_is_not_injected(real_hub_v3: Any) -> None:
    marker = tag("mesh-elsewhere")
    with _client(real_hub_v3, "psk") as client:
        client.escalate("recognizer_loop:utterance", {"utterances": [marker]}, target_site_id="some-other-site")
        with pytest.raises(TimeoutError):
            _utterance_seen(real_hub_v3, marker, limit=1.0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("generation", [4, 5])
def test_admin_broadcast_reaches_a_second_client(request: pytest.FixtureRequest, generation: int,
                                                 protocol: str) -> None:
    hub = _hub(request, generation)
    marker = tag(f"broadcast-{protocol}")
    got: list[ThalovantHiveMessage] = []
    arrived = threading.Event()

    def on_frame(hive: ThalovantHiveMessage) -> None:
        if hive.data.get("marker") == marker:
            got.append(hive)
            arrived.set()

    with _client(hub, "psk2", protocol) as receiver, _client(hub, "admin") as admin:
        stream = cast(Generator[ThalovantEvent, None, None], receiver.listen("thalovant.mesh.test", timeout=10))
        events = closing(stream)
        with receiver.on_hive("broadcast", on_frame), events as listener:
            admin.broadcast("thalovant.mesh.test", {"marker": marker})
            if generation == 5:  # hub 5.x keeps the envelope (NODE-1 §3.3)
                assert arrived.wait(10)
                hive = got[0]
                assert hive.kind == "broadcast" and hive.type == "thalovant.mesh.test"
                assert hive.route and hive.route[0].source.split("::")[2] == "harness-admin"
                # the name the sender's loop check looks for is the one the hub wrote
                assert hive.route[0].source == admin.async_client._own_peer()
            else:  # hub 4.x unwraps it: the inner bus message arrives as an event
                event = next(e for e in listener if e.data.get("marker") == marker)
                assert event.type == "thalovant.mesh.test"
                assert not got


@pytest.mark.parametrize("generation", [4, 5])
def test_a_non_admin_broadcast(request: pytest.FixtureRequest, generation: int) -> None:
    hub = _hub(request, generation)
    marker = tag("nonadmin-broadcast")
    with _client(hub, "psk2") as receiver, _client(hub, "password") as sender:
        listener = receiver.listen("thalovant.mesh.test", timeout=1.5)
        if generation == 5:
            started = time.monotonic()
            with pytest.raises(ThalovantHiveRefusedError) as caught:
                sender.broadcast("thalovant.mesh.test", {"marker": marker})
            took = time.monotonic() - started
            assert (caught.value.code, caught.value.kind) == (4003, "broadcast")
            assert caught.value.reason == "BROADCAST is not allowed for this client"
            assert took < 0.5
            # only that frame was refused: the same client reconnects by itself and answers an ask
            again = tag("after-refusal")
            started = time.monotonic()
            assert sender.ask(again, timeout=10).text == f"echo: {again}"
            back = time.monotonic() - started
            report_in_summary(request, "mesh-refused", "non-admin broadcast, hub 5.x",
                              [f"refused in {took:.3f} s", f"reconnected and answered in {back:.3f} s"])  # fmt: skip
        else:  # hub 4.x drops it silently: the call returns and nobody receives it
            sender.broadcast("thalovant.mesh.test", {"marker": marker})
            assert sender.async_client.connected
        assert [e for e in listener if e.data.get("marker") == marker] == []


@pytest.mark.parametrize("generation", [4, 5])
def test_reply_answers_along_the_route(request: pytest.FixtureRequest, generation: int) -> None:
    """The echo agent's ``speak`` reaches us with ``source: hive`` (the hub's agent sets it) and our peer as
    ``destination``; ``reply()`` swaps them, and the hub bus sees our answer with the rest of the context."""
    hub = _hub(request, generation)
    marker = tag("reply")
    with _client(hub, "wide") as client:
        speak = next(e for e in client.ask(marker, timeout=10).events if e.type == "speak")
        client.reply(speak, "thalovant.test.emit", {"marker": marker})
        seen = hub.wait_echo("thalovant.test.emit", timeout=10, marker=marker)
    assert speak.context["source"] == "hive"
    # hub 4.x keeps our destination; hub 5.x stamps its own agent label on everything it injects
    assert seen["context"]["destination"] == ("hive" if generation == 4 else "hivemind"), seen["context"]
    assert seen["context"]["request_id"] == speak.context["request_id"]  # the rest of the context travels back


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_query_is_answered_on_hub_5(request: pytest.FixtureRequest, real_hub_v3: Any, protocol: str) -> None:
    marker = tag(f"query-{protocol}")
    with _client(real_hub_v3, "psk", protocol) as client:
        started = time.monotonic()
        result = client.query(marker, timeout=10)
        took = time.monotonic() - started
    assert result.text == f"echo: {marker}" and result.chunks == (f"echo: {marker}",)
    assert result.complete and not result.unanswered and not result.timed_out
    report_in_summary(request, f"query-{protocol}", f"query, hub 5.x {protocol}", [f"answered in {took:.3f} s"])


def test_a_query_nobody_answers_is_unanswered(request: pytest.FixtureRequest, real_hub_v3: Any) -> None:
    """The echo agent stays silent; the hub's agent gives up after 10 s of silence and says hive.query.timeout."""
    with _client(real_hub_v3, "psk") as client:
        started = time.monotonic()
        result = client.query("silent", timeout=20)
        took = time.monotonic() - started
    assert result.unanswered and not result.complete and not result.timed_out and result.chunks == ()
    assert 9.0 < took < 15.0
    report_in_summary(request, "query-silent", "unanswered query, hub 5.x", [f"hive.query.timeout after {took:.2f} s"])


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_a_query_without_the_grant_is_refused_and_the_client_lives_on(
    request: pytest.FixtureRequest, real_hub_v3: Any, protocol: str
) -> None:
    """Hub 5.x closes a WebSocket with 4003 and drops an HTTP client (409 afterwards): the call raises
    ``ThalovantQueryRefusedError``, then the same client reconnects by itself, answers an ask, and an ``on()``
    subscription made before the refusal still receives events."""
    marker = tag(f"after-refused-query-{protocol}")
    got: list[ThalovantEvent] = []
    arrived = threading.Event()

    def seen(event: ThalovantEvent) -> None:
        if marker in str(event.data.get("utterance", "")):
            got.append(event)
            arrived.set()

    with _client(real_hub_v3, "noescalate", protocol) as client:
        client.on("speak", seen)
        started = time.monotonic()
        with pytest.raises(ThalovantQueryRefusedError) as caught:
            client.query("anything", timeout=10)
        took = time.monotonic() - started
        reply = client.ask(marker, timeout=10)
        back = time.monotonic() - started - took
        assert arrived.wait(5)
    assert caught.value.kind == "query" and took < 2.0
    if protocol == "wss":
        assert (caught.value.code, caught.value.reason) == (4003, "QUERY is not allowed for this client")
    else:  # no close code over HTTP: the hub drops the client
        assert caught.value.code is None and caught.value.reason == "the hub dropped this client"
    assert reply.text == f"echo: {marker}" and got
    report_in_summary(request, f"query-refused-{protocol}", f"refused query, hub 5.x {protocol}",
                      [f"refused in {took:.3f} s", f"reconnected and answered in {back:.3f} s"])  # fmt: skip


def test_query_is_not_supported_on_hub_4(real_hub: Any) -> None:
    with _client(real_hub, "psk") as client, pytest.raises(ThalovantQueryNotSupportedError):
        client.query("anything", timeout=5)


def test_cli_query_on_hub_5(real_hub_v3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from thalovant.cli import main

    marker = tag("cli-query")
    assert main(["-i", str(real_hub_v3.identity_path("psk")), "--json", "query", marker]) == 0
    printed = capsys.readouterr()
    result = json.loads(printed.out)
    assert result["text"] == f"echo: {marker}" and result["complete"] and not result["unanswered"]
    assert real_hub_v3.identity("psk")["access_key"] not in printed.out + printed.err
