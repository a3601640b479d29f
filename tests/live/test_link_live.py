"""Link machines against the real hub 4.x harness (loopback only, marked ``hub``).

* HttpPoll driven through ``shell.http11.HttpConnection`` carries a full v1
  session (password and pre-shared key) to an answered utterance;
* HttpPoll sorts an unknown access key into ``LinkDown(auth=True)``;
* MqttMap driven through ``shell.mqtt.MqttConnection`` carries a bitstring
  session (password and pre-shared key) in the §8.3 order;
* WsLink's raw target works with a ``=``-padded token on hub 4.x, the
  percent-encoded one does not (pitfall P8), and an unknown key closes with
  no status before the greeting, which WsLink reports as an auth failure.

Skipped with the reason when the harness cannot be installed.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from tests.harness.hub import HUB4, HUB5, TestHub, token_for
from tests.harness.pytest_plugin import private_hub
from tests.harness.rawws import RawWebSocket, WsClosed
from thalovant.core.links.base import InboundFrame, LinkDown, LinkUp, OutboundFrame, Started, StopRequested
from thalovant.core.links.http_poll import (
    CancelRequest,
    HttpPoll,
    HttpPollConfig,
    RequestFailed,
    ResponseReceived,
    StartRequest,
)
from thalovant.core.links.ws import WsClosed as WsClosedInput
from thalovant.core.links.ws import WsLink, WsMessage, WsOpened
from thalovant.core.machine import Input, Output, Tick
from thalovant.core.session.machine import (
    Deliver,
    FrameReceived,
    LinkOpened,
    SendFrame,
    Session,
    SessionFailed,
    SessionReady,
    UserSend,
)
from thalovant.core.wire.message import BusMessage
from thalovant.errors import ThalovantConnectionError, ThalovantTimeoutError
from thalovant.shell.links.http import HttpConnection

pytestmark = [pytest.mark.hub, pytest.mark.slow]


@pytest.fixture(scope="module")
def hub4() -> Iterator[TestHub]:
    yield from private_hub(HUB4, "link-live")


@pytest.fixture(scope="module")
def hub5() -> Iterator[TestHub]:
    yield from private_hub(HUB5, "link-live")


async def drive_http(
    hub: TestHub, token: str, session: Session | None, limit: float = 20.0, binary_uploads: bool = False
) -> dict[str, Any]:
    """Run HttpPoll (and optionally a Session on top) until the turn ends, the link dies or ``limit`` passes."""
    config = HttpPollConfig(request_timeout=5.0, binary_uploads=binary_uploads)
    poll = HttpPoll(authorization=token, useragent=hub.user_agent, entropy=os.urandom, config=config)
    seen: dict[str, Any] = {"types": [], "frames": 0, "up": False, "down": None, "failed": None, "ready": None}
    requests: deque[StartRequest] = deque()
    inbox: deque[Input] = deque([Started()])
    t0 = anyio.current_time()

    def route(outs: list[Output]) -> None:
        for out in outs:
            if isinstance(out, StartRequest):
                requests.append(out)
            elif isinstance(out, CancelRequest):
                for r in list(requests):
                    if r.req_id == out.req_id:
                        requests.remove(r)
            elif isinstance(out, LinkUp):
                seen["up"] = True
                if session is not None:
                    feed_session(session.handle(LinkOpened(), now=anyio.current_time() - t0))
                    ask = BusMessage(type="recognizer_loop:utterance", data={"utterances": ["hello"]})
                    feed_session(session.handle(UserSend(message=ask, ref=1), now=anyio.current_time() - t0))
            elif isinstance(out, LinkDown):
                seen["down"] = out
            elif isinstance(out, InboundFrame):
                seen["frames"] += 1
                if session is not None:
                    feed_session(session.handle(FrameReceived(data=out.data), now=anyio.current_time() - t0))

    def feed_session(outs: list[Any]) -> None:
        for out in outs:
            if isinstance(out, SendFrame):
                inbox.append(OutboundFrame(data=out.data, refs=out.refs))
            elif isinstance(out, Deliver) and (bus := out.message.bus()) is not None:
                seen["types"].append(bus.type)
            elif isinstance(out, SessionReady):
                seen["ready"] = out
            elif isinstance(out, SessionFailed):
                seen["failed"] = out

    async with HttpConnection("127.0.0.1", hub.ports.http) as conn:  # type: ignore[union-attr]
        while anyio.current_time() - t0 < limit and seen["down"] is None:
            if "ovos.utterance.handled" in seen["types"] or (session is None and seen["frames"] >= 2):
                break
            if inbox:
                route(poll.handle(inbox.popleft(), now=anyio.current_time()))
            elif requests:
                req = requests.popleft()
                try:
                    resp = await conn.request(req.method, req.target, req.headers, req.body)
                    inp: Input = ResponseReceived(
                        req_id=req.req_id, status=resp.status, headers=resp.headers, body=resp.body
                    )
                except (ThalovantConnectionError, ThalovantTimeoutError) as exc:
                    inp = RequestFailed(req_id=req.req_id, kind=type(exc).__name__)
                route(poll.handle(inp, now=anyio.current_time()))
            else:
                deadline = poll.deadline
                await anyio.sleep(max(0.0, (deadline or anyio.current_time() + 0.05) - anyio.current_time()))
                route(poll.handle(Tick(), now=anyio.current_time()))
        route(poll.handle(StopRequested(), now=anyio.current_time()))
        for _ in range(5):  # let the /disconnect go out
            if not requests:
                break
            req = requests.popleft()
            resp = await conn.request(req.method, req.target, req.headers, req.body)
            route(poll.handle(ResponseReceived(req_id=req.req_id, status=resp.status, body=resp.body), now=0.0))
    seen["final_state"] = poll.state.value
    return seen


@pytest.mark.parametrize("kind", ["password", "psk"])
def test_http_poll_carries_a_full_session(hub4: TestHub, kind: str) -> None:
    ident = hub4.identity(kind)
    session = Session(
        session_id=f"link-live-{kind}-{time.monotonic_ns()}",
        site_id="loopback-test",
        useragent=hub4.user_agent,
        entropy=os.urandom,
        access_key=ident["access_key"],
        password=ident.get("password"),
        crypto_key=ident.get("crypto_key"),
    )
    seen = anyio.run(drive_http, hub4, hub4.token(kind), session)
    assert seen["failed"] is None, seen["failed"]
    assert seen["up"] and seen["ready"] is not None
    assert "ovos.utterance.handled" in seen["types"], seen
    assert seen["final_state"] == "closed"


def test_http_poll_carries_a_noise_session_on_hub5(hub5: TestHub) -> None:
    ident = hub5.identity("password")
    session = Session(
        session_id=f"link-live-v3-{time.monotonic_ns()}",
        site_id="loopback-test",
        useragent=hub5.user_agent,
        entropy=os.urandom,
        access_key=ident["access_key"],
        password=ident.get("password"),
    )
    seen = anyio.run(drive_http, hub5, hub5.token("password"), session, 20.0, True)  # binary=1 uploads
    assert seen["failed"] is None, seen["failed"]
    assert seen["ready"] is not None and seen["ready"].generation == 3
    assert "ovos.utterance.handled" in seen["types"], seen


def test_http_poll_greeting_arrives_with_a_padded_token(hub4: TestHub) -> None:
    seen = anyio.run(drive_http, hub4, hub4.token("padded"), None)
    assert hub4.token("padded").endswith("=")
    assert seen["up"] and seen["frames"] >= 2 and seen["down"] is not None  # stopped by us
    assert seen["down"] == LinkDown(reason="closed by the client", retryable=False)


def test_http_poll_unknown_key_is_an_auth_failure(hub4: TestHub) -> None:
    seen = anyio.run(drive_http, hub4, token_for(hub4.user_agent, "f" * 32), None)
    assert not seen["up"]
    down = seen["down"]
    assert isinstance(down, LinkDown) and down.auth and not down.retryable, down


def ws_greeting(hub: TestHub, link: WsLink) -> list[Output]:
    """Open a raw socket on ``link.target``; feed what happens into the link for up to 5 s."""
    outs: list[Output] = []
    ws = RawWebSocket(hub.ports.ws, link.target, timeout=5.0)  # type: ignore[arg-type]
    try:
        assert ws.upgrade_status == 101  # hub 4.x always upgrades before checking (§8.1)
        outs += link.handle(WsOpened(), now=0.0)
        for _ in range(2):
            try:
                outs += link.handle(WsMessage(data=ws.recv(5.0)), now=0.0)
            except WsClosed as closed:
                outs += link.handle(WsClosedInput(code=closed.code, reason=closed.reason), now=0.0)
                break
    finally:
        ws.close()
    return outs


def test_ws_raw_target_works_with_a_padded_token_and_percent_does_not(hub4: TestHub) -> None:
    token = hub4.token("padded")
    raw = ws_greeting(hub4, WsLink(authorization=token))
    assert sum(isinstance(o, InboundFrame) for o in raw) == 2  # HELLO + HANDSHAKE
    percent = ws_greeting(hub4, WsLink(authorization=token, auth_encoding="percent"))
    downs = [o for o in percent if isinstance(o, LinkDown)]
    assert not any(isinstance(o, InboundFrame) for o in percent) and len(downs) == 1
    assert downs[0].reason  # the hub drops the undecodable token before greeting


def test_ws_unknown_key_closes_without_status_before_greeting(hub4: TestHub) -> None:
    outs = ws_greeting(hub4, WsLink(authorization=token_for(hub4.user_agent, "e" * 32)))
    downs = [o for o in outs if isinstance(o, LinkDown)]
    assert len(downs) == 1 and downs[0].auth and not downs[0].retryable, downs


async def drive_mqtt(hub: TestHub, kind: str, limit: float = 20.0) -> dict[str, Any]:
    """MqttMap over shell.mqtt.MqttConnection carrying a v1 bitstring Session to an answered utterance."""
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
    from thalovant.core.links.mqtt_map import MqttMap
    from thalovant.shell.links.mqtt import MqttConnection

    ident = hub.identity(kind)
    creds = ident["mqtt"]
    link = MqttMap(access_key=ident["access_key"], topic_prefix=creds["topic_prefix"], entropy=os.urandom)
    session = Session(
        session_id=f"link-live-mqtt-{kind}-{time.monotonic_ns()}",
        useragent=hub.user_agent,
        entropy=os.urandom,
        access_key=ident["access_key"],
        password=ident.get("password"),
        crypto_key=ident.get("crypto_key"),
        wire="bitstring",
        trigger_hello=True,
    )
    seen: dict[str, Any] = {"types": [], "order": [], "failed": None, "down": None}
    todo: deque[Any] = deque(link.handle(Started(), now=0.0))
    t0 = anyio.current_time()

    def now() -> float:
        return anyio.current_time() - t0

    def session_outs(outs: list[Any]) -> None:
        for out in outs:
            if isinstance(out, SendFrame):
                todo.extend(link.handle(OutboundFrame(data=out.data, refs=out.refs), now=now()))
            elif isinstance(out, Deliver) and (bus := out.message.bus()) is not None:
                seen["types"].append(bus.type)
            elif isinstance(out, SessionFailed):
                seen["failed"] = out

    async with MqttConnection() as conn:
        will: SetWill | None = None
        while anyio.current_time() - t0 < limit and seen["down"] is None:
            if "ovos.utterance.handled" in seen["types"] and link.state.value == "up":
                todo.extend(link.handle(StopRequested(), now=now()))
            if not todo:
                with anyio.move_on_after(0.5):
                    topic, payload, qos = await conn.receive()
                    todo.extend(link.handle(MqttMessage(topic=topic, payload=payload, qos=qos), now=now()))
                continue
            out = todo.popleft()
            seen["order"].append(type(out).__name__)
            if isinstance(out, SetWill):
                will = out
            elif isinstance(out, ConnectMqtt):
                assert will is not None
                present = await conn.connect(
                    "127.0.0.1",
                    hub.ports.mqtt,  # type: ignore[arg-type]
                    client_id=out.client_id,
                    username=creds["username"],
                    password=creds["password"],
                    will=(will.topic, will.payload, will.qos, will.retain),
                    keepalive=out.keepalive,
                )
                todo.extend(link.handle(MqttConnected(session_present=present), now=now()))
            elif isinstance(out, Subscribe):
                granted = await conn.subscribe(out.topic, out.qos)
                todo.extend(link.handle(MqttSubscribed(granted_qos=granted), now=now()))
            elif isinstance(out, Publish):
                try:
                    await conn.publish(out.topic, out.payload, out.qos, out.retain)
                    todo.extend(link.handle(MqttPublished(pub_id=out.pub_id), now=now()))
                except (ThalovantConnectionError, ThalovantTimeoutError) as exc:
                    todo.extend(link.handle(MqttPublishFailed(pub_id=out.pub_id, reason=str(exc)), now=now()))
            elif isinstance(out, DisconnectMqtt):
                await conn.disconnect()
                todo.extend(link.handle(MqttDisconnected(rc=0), now=now()))
            elif isinstance(out, LinkUp):
                session_outs(session.handle(LinkOpened(), now=now()))
                ask = BusMessage(type="recognizer_loop:utterance", data={"utterances": ["hello"]})
                session_outs(session.handle(UserSend(message=ask, ref=1), now=now()))
            elif isinstance(out, InboundFrame):
                session_outs(session.handle(FrameReceived(data=out.data), now=now()))
            elif isinstance(out, LinkDown):
                seen["down"] = out
    return seen


@pytest.mark.parametrize("kind", ["password", "psk"])
def test_mqtt_map_carries_a_full_session(hub4: TestHub, kind: str) -> None:
    if not hub4.mqtt_available:
        pytest.skip(f"no MQTT broker: {hub4.mqtt_unavailable_reason}")
    seen = anyio.run(drive_mqtt, hub4, kind)
    assert seen["failed"] is None, seen["failed"]
    assert "ovos.utterance.handled" in seen["types"], seen
    order = seen["order"]
    assert order[:5] == ["SetWill", "ConnectMqtt", "Subscribe", "Publish", "LinkUp"]  # §8.3 rules 1-3
    assert seen["down"] == LinkDown(reason="closed by the client", retryable=False)


def test_ws_hub5_unknown_key_is_1008_auth_and_percent_target_greets(hub5: TestHub) -> None:
    outs = ws_greeting(hub5, WsLink(authorization=token_for(hub5.user_agent, "e" * 32), auth_encoding="percent"))
    downs = [o for o in outs if isinstance(o, LinkDown)]
    assert len(downs) == 1 and downs[0].auth and not downs[0].retryable and "1008" in downs[0].reason, downs
    greeted = ws_greeting(hub5, WsLink(authorization=hub5.token("padded"), auth_encoding="percent"))
    assert sum(isinstance(o, InboundFrame) for o in greeted) == 2, greeted


async def pump_http(poll: HttpPoll, conn: HttpConnection, outs: list[Output], limit: float) -> list[Output]:
    """Execute ``outs`` and the requests that follow until the poll reports LinkUp/LinkDown or ``limit`` passes."""
    seen: list[Output] = []
    requests: deque[StartRequest] = deque()
    end = anyio.current_time() + limit
    while anyio.current_time() < end:
        for out in outs:
            seen.append(out)
            if isinstance(out, StartRequest):
                requests.append(out)
            elif isinstance(out, CancelRequest):
                requests = deque(r for r in requests if r.req_id != out.req_id)
        if any(isinstance(o, LinkUp | LinkDown) for o in outs):
            return seen
        if requests:
            req = requests.popleft()
            try:
                resp = await conn.request(req.method, req.target, req.headers, req.body)
                inp: Input = ResponseReceived(
                    req_id=req.req_id, status=resp.status, headers=resp.headers, body=resp.body
                )
            except (ThalovantConnectionError, ThalovantTimeoutError) as exc:
                inp = RequestFailed(req_id=req.req_id, kind=type(exc).__name__)
            outs = poll.handle(inp, now=anyio.current_time())
        else:
            await anyio.sleep(max(0.0, (poll.deadline or anyio.current_time()) - anyio.current_time()))
            outs = poll.handle(Tick(), now=anyio.current_time())
    return seen


def test_reconnect_policy_rides_out_a_hub_restart_over_http(hub4: TestHub) -> None:
    """Kill hivemind-core under a live HttpPoll; Reconnect opens fresh links until the restarted hub answers."""
    from thalovant.core.client.reconnect import LinkLost, OpenLink, OpenRequested, Reconnect, ReconnectConfig
    from thalovant.core.client.reconnect import LinkUp as PolicyUp

    token = hub4.token("psk")
    config = HttpPollConfig(request_timeout=2.0, error_base=0.1, error_max=0.5, max_errors=3)
    policy = Reconnect(entropy=os.urandom, config=ReconnectConfig(base=0.2, cap=1.0, max_attempts=40))

    async def scenario() -> list[int]:
        attempts: list[int] = []
        async with HttpConnection("127.0.0.1", hub4.ports.http) as conn, anyio.create_task_group() as tg:  # type: ignore[arg-type]
            orders = policy.handle(OpenRequested(), now=anyio.current_time())
            killed = False
            while not policy.finished:
                opens = [o for o in orders if isinstance(o, OpenLink)]
                if not opens:
                    await anyio.sleep(max(0.0, (policy.deadline or anyio.current_time()) - anyio.current_time()))
                    orders = policy.handle(Tick(), now=anyio.current_time())
                    continue
                attempts.append(opens[0].attempt)
                poll = HttpPoll(authorization=token, useragent=hub4.user_agent, entropy=os.urandom, config=config)
                seen = await pump_http(poll, conn, poll.handle(Started(), now=anyio.current_time()), 15.0)
                up = any(isinstance(o, LinkUp) for o in seen)
                if up and killed:
                    policy.handle(PolicyUp(), now=anyio.current_time())
                    break
                if up:
                    policy.handle(PolicyUp(), now=anyio.current_time())
                    await anyio.to_thread.run_sync(hub4.kill_hub)
                    killed = True
                    tg.start_soon(anyio.to_thread.run_sync, hub4.start_hub)
                    seen = await pump_http(poll, conn, [], 15.0)  # polls now fail until the link gives up
                (down,) = [o for o in seen if isinstance(o, LinkDown)]
                assert down.retryable and not down.auth, down
                orders = policy.handle(LinkLost.from_link_down(down), now=anyio.current_time())
        return attempts

    attempts = anyio.run(scenario)
    print(f"link attempts across the hub restart: {attempts}")
    assert policy.state.value == "up" and not policy.finished
    assert attempts[0] == 1 and len(attempts) >= 2 and attempts == list(range(1, len(attempts) + 1))
