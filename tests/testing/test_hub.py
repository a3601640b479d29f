"""thalovant.testing: the FakeHub, the fake transport, the virtual clock and the facade."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.paths import ROOT
from thalovant.core.client import correlate as corr
from thalovant.core.client.connection import ConnectionState, EventDelivered, LinkFact, LinkOrder
from thalovant.core.links.base import form_encode
from thalovant.core.links.http_wire import ResponseReceived, StartRequest
from thalovant.core.links.mqtt import Publish
from thalovant.core.machine import Output
from thalovant.core.session.machine import (
    Deliver,
    FrameReceived,
    LinkOpened,
    SendFrame,
    Session,
    SessionReady,
    UserSend,
)
from thalovant.core.wire.codec import decode_json
from thalovant.core.wire.message import BusMessage, MsgType
from thalovant.testing import (
    FakeHub,
    FakeTransport,
    InMemoryHubSession,
    VirtualClock,
    counting_entropy,
    echo_replies,
    pump,
    run_until,
)
from thalovant.testing.transport import form_decode

PASSWORD = "throwaway-password-for-tests"
CRYPTO_KEY = "0f1e2d3c4b5a6978"


def utterance(text: str, **context: Any) -> BusMessage:
    ctx = {"source": "FakeClient/1.0", "destination": "HiveMind", "request_id": "r-1", **context}
    return BusMessage(type="recognizer_loop:utterance", data={"utterances": [text], "lang": "en-us"}, context=ctx)


# ---- clock and entropy ---------------------------------------------------------------------------


def test_virtual_clock_moves_forward_only_and_refuses_deadlines_in_the_past() -> None:
    clock = VirtualClock(5.0)
    assert clock.advance_to(None) == 5.0
    assert clock.advance_to(7.5) == 7.5 and clock.now == 7.5
    with pytest.raises(AssertionError, match="in the past"):
        clock.advance_to(7.0)
    with pytest.raises(ValueError):
        clock.advance(-1.0)
    assert clock.advance(0.5) == 8.0


def test_counting_entropy_is_deterministic_distinct_and_sized() -> None:
    a, b, c = counting_entropy("x"), counting_entropy("x"), counting_entropy("y")
    draws = [a(n) for n in (1, 12, 32, 100)]
    assert [len(d) for d in draws] == [1, 12, 32, 100]
    assert draws == [b(n) for n in (1, 12, 32, 100)]
    assert c(32) != counting_entropy("x")(32)
    assert a(16) != a(16)


class _StuckMachine:
    """A broken machine: after a Tick its deadline is still in the past."""

    state = ConnectionState.IDLE

    def __init__(self) -> None:
        self.deadline: float | None = 1.0

    def handle(self, inp: Any, *, now: float) -> list[Output]:
        self.deadline = now - 0.5
        return []


def test_run_until_catches_a_deadline_left_in_the_past() -> None:
    transport = FakeTransport(FakeHub(password=PASSWORD), protocol="wss")
    with pytest.raises(AssertionError, match="past"):
        run_until(_StuckMachine(), transport, VirtualClock(), 10.0)  # type: ignore[arg-type]


# ---- the echo rules ------------------------------------------------------------------------------


def test_echo_reply_is_built_like_message_reply() -> None:
    request = utterance("  Hello There ", session={"session_id": "s"})
    speak, handled = echo_replies(request)
    assert speak.type == "speak" and speak.data["utterance"] == "echo: Hello There"
    assert speak.context["request_id"] == "r-1" and speak.context["session"] == {"session_id": "s"}
    assert speak.context["destination"] == "FakeClient/1.0" and speak.context["source"] == "HiveMind"
    assert handled.type == "ovos.utterance.handled"
    request.context["session"]["session_id"] = "mutated"
    assert speak.context["session"] == {"session_id": "s"}  # a deep copy


@pytest.mark.parametrize(
    ("text", "types"),
    [
        ("deny", ["hive.policy.denied", "ovos.utterance.handled"]),
        ("fail", ["complete_intent_failure", "ovos.utterance.handled"]),
        ("unmatched", ["ovos.intent.unmatched"]),
        ("silent", []),
        ("MULTI", ["speak", "speak", "ovos.utterance.handled"]),
    ],
)
def test_scripted_commands(text: str, types: list[str]) -> None:
    assert [m.type for m in echo_replies(utterance(text))] == types


# ---- the hub with a real client session ----------------------------------------------------------


def converse(hub: FakeHub, session: Session, frames: list[str | bytes], now: float = 0.0) -> list[Output]:
    outputs: list[Output] = []
    pending = list(frames)
    for _ in range(50):
        if not pending:
            break
        for out in session.handle(FrameReceived(data=pending.pop(0)), now=now):
            outputs.append(out)
            if isinstance(out, SendFrame):
                pending += hub.receive(out.data)
    return outputs


@pytest.mark.parametrize("hub_version", ["4", "5"])
@pytest.mark.parametrize(("password", "crypto_key"), [(PASSWORD, None), (None, CRYPTO_KEY)])
def test_hub_side_of_the_v1_handshake_and_the_echo(
    hub_version: str, password: str | None, crypto_key: str | None
) -> None:
    hub = FakeHub(password=password, crypto_key=crypto_key, hub_version=hub_version)
    session = Session(
        session_id="user-s", useragent="UA/1", entropy=counting_entropy("c"), password=password, crypto_key=crypto_key
    )
    session.handle(LinkOpened(), now=0.0)
    greeting = hub.open_connection()
    hello, offer = (decode_json(g).unwrap() for g in greeting)  # type: ignore[arg-type]
    assert hello.msg_type is MsgType.HELLO and offer.msg_type is MsgType.HANDSHAKE
    assert isinstance(offer.payload, dict) and offer.payload["handshake"] is (crypto_key is None)
    outs = converse(hub, session, greeting)
    assert any(isinstance(o, SessionReady) for o in outs) and hub.ready
    assert hub.handshakes == (1 if password else 0)
    assert hub.session is not None and hub.session["session_id"] == "user-s"
    request = utterance("hi", session={"session_id": "caller-s"})
    (frame,) = [o for o in session.handle(UserSend(message=request, ref=1), now=1.0) if isinstance(o, SendFrame)]
    answers = hub.receive(frame.data)
    delivered = [o.message.bus() for a in answers for o in session.handle(FrameReceived(data=a), now=1.0)]
    assert [b.type for b in delivered if b] == ["speak", "ovos.utterance.handled"]
    seen = hub.received[-1].context["session"]["session_id"]
    assert seen == ("caller-s" if hub_version == "5" else hub.session["session_id"])  # type: ignore[index]
    assert hub.request_counts["r-1"] == 1


def test_hub_drops_frames_it_cannot_read_and_frames_without_a_connection() -> None:
    hub = FakeHub(password=PASSWORD)
    assert hub.receive("{}") == [] and hub.last_error == "no connection"
    hub.open_connection()
    assert hub.receive("not json") == [] and hub.last_error == "not JSON"
    assert hub.receive('{"ciphertext": "00"}') == [] and "before a key" in hub.last_error
    assert hub.push("speak") == []  # no key yet: nothing can be sealed


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), max_size=6),
    generation=st.sampled_from([1, 3]),
    credentials=st.sampled_from(["password", "psk"]),
    shakes=st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "noise": st.fixed_dictionaries(
                        {"msg": st.one_of(st.binary(max_size=120).map(bytes.hex), st.text(max_size=8))},
                        optional={
                            "pattern": st.sampled_from(["XXpsk2", "KKpsk0", "NN", ""]),
                            "suite": st.sampled_from(["25519_AESGCM_SHA256", "25519_ChaChaPoly_SHA256", "x"]),
                        },
                    )
                }
            ),
            st.fixed_dictionaries({"envelope": st.text(max_size=60)}),
        ),
        max_size=3,
    ),
)
def test_garbage_into_the_hub_never_raises(
    frames: list[str | bytes], generation: int, credentials: str, shakes: list[dict[str, Any]]
) -> None:
    if generation == 3:
        hub = FakeHub(password=PASSWORD, generation=3, noise_psk=b"\x07" * 32)
    else:
        hub = FakeHub(password=PASSWORD if credentials == "password" else None, crypto_key=CRYPTO_KEY)
    hub.open_connection()
    for frame in frames:
        answers = hub.receive(frame)
        assert all(isinstance(a, str | bytes) for a in answers)
    for shake in shakes:
        assert isinstance(hub.receive(json.dumps({"msg_type": "handshake", "payload": shake})), list)


def test_corrupt_next_garbles_one_frame_and_the_client_fails_its_session() -> None:
    s = InMemoryHubSession(protocol="wss", password=PASSWORD)
    s.connect()
    s.hub.corrupt_next()
    out = s.push("speak", {"utterance": "garbled"})
    assert not any(isinstance(o, EventDelivered) for o in out)
    assert s.connection.state is ConnectionState.CONNECTING
    assert s.connect() is ConnectionState.READY
    s.push("speak", {"utterance": "clean"})
    assert [e.data["utterance"] for e in s.events()] == ["clean"]


def test_behaviours_replace_the_echo_rules() -> None:
    def weather(request: BusMessage) -> list[BusMessage]:
        ctx = dict(request.context)
        return [
            BusMessage(type="speak", data={"utterance": "sunny"}, context=ctx),
            BusMessage(type="ovos.utterance.handled", context=ctx),
        ]

    hub = FakeHub(password=PASSWORD, behaviours={"weather?": weather})
    s = InMemoryHubSession(protocol="wss", password=PASSWORD, hub=hub)
    s.connect()
    result = s.ask("Weather?")
    assert isinstance(result, corr.AskFinished) and result.reply.text == "sunny"


def test_v3_hub_pins_the_client_and_restart_forgets_it_and_big_messages_arrive_whole() -> None:
    s = InMemoryHubSession(protocol="wss", password=PASSWORD, generation=3)
    assert s.connect() is ConnectionState.READY
    assert s.hub.pinned_client is not None
    big = "x" * 150_000
    s.push("speak", {"utterance": big})  # sealed into several Noise frames, reassembled by the client
    assert [e.data["utterance"] for e in s.events()] == [big]
    s.hub.restart()
    assert s.hub.pinned_client is None and not s.hub.connected


def test_hub_repr_and_reprs_hold_no_secret() -> None:
    hub = FakeHub(password=PASSWORD, crypto_key=CRYPTO_KEY)
    transport = FakeTransport(hub, protocol="https", useragent="UA", access_key="secret-key")
    assert PASSWORD not in repr(hub) and CRYPTO_KEY not in repr(hub) and "secret-key" not in repr(transport)


def test_hub_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        FakeHub(generation=2)
    with pytest.raises(ValueError):
        FakeHub(password=PASSWORD, generation=3)  # no psk
    with pytest.raises(ValueError):
        InMemoryHubSession(protocol="wss")  # no credentials
    with pytest.raises(ValueError):
        InMemoryHubSession(protocol="wss", password=PASSWORD).trace()


# ---- the fake transport --------------------------------------------------------------------------


def http(transport: FakeTransport, req_id: int, method: str, path: str, body: bytes = b"") -> dict[str, Any]:
    from thalovant.core.wire.auth import authorization_token

    token = authorization_token("UA", "key")
    order = StartRequest(req_id=req_id, method=method, target=f"{path}?authorization={token}", headers=(), body=body)
    assert transport.execute(LinkOrder(epoch=1, order=order))
    fact = transport.facts.popleft()
    assert isinstance(fact, LinkFact) and isinstance(fact.fact, ResponseReceived) and fact.fact.req_id == req_id
    answer: dict[str, Any] = json.loads(fact.fact.body)
    answer["_status"] = fact.fact.status
    return answer


def test_http_endpoints_are_emulated_like_hub_4() -> None:
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    transport = FakeTransport(hub, protocol="https", useragent="UA", access_key="key")
    assert http(transport, 1, "GET", "/get_messages")["error"] == "Client is not connected"
    assert http(transport, 2, "POST", "/connect") == {"status": "Connected", "_status": 200}
    polled = http(transport, 3, "GET", "/get_messages")
    assert [decode_json(m).unwrap().msg_type for m in polled["messages"]] == [MsgType.HELLO, MsgType.HANDSHAKE]
    assert http(transport, 4, "GET", "/get_binary_messages") == {"b64_messages": [], "_status": 200}
    assert http(transport, 5, "POST", "/send_message", b"message=not-json")["status"] == "message sent"
    assert hub.frames_in == 1
    assert http(transport, 6, "POST", "/disconnect")["status"] == "Disconnected" and not hub.connected
    bad = StartRequest(req_id=7, method="POST", target="/connect?authorization=bm9wZQ==", headers=(), body=b"")
    transport.execute(LinkOrder(epoch=1, order=bad))
    refused = transport.facts.popleft().fact
    assert isinstance(refused, ResponseReceived) and refused.status == 500 and transport.rejected_auth == 1


def test_pump_returns_only_non_transport_outputs_and_the_facade_docs_example_works() -> None:
    s = InMemoryHubSession(protocol="mqtt", password=PASSWORD)
    assert s.connect() is ConnectionState.READY
    assert not any(isinstance(o, LinkOrder) for o in s.outputs)
    assert pump(s.connection, s.transport, now=s.clock.now) == []  # quiet
    result = s.ask("hello")
    assert isinstance(result, corr.AskFinished) and result.reply.text == "echo: hello"
    s.push("speak", {"utterance": "unprompted"})
    assert s.events()[-1].data == {"utterance": "unprompted"}
    assert isinstance(s.hub.received[0], BusMessage)
    delivered = [o for o in s.outputs if isinstance(o, EventDelivered)]
    assert len(delivered) == len(s.events()) == 3


def test_mqtt_offline_status_drops_the_hubs_logical_connection() -> None:
    s = InMemoryHubSession(protocol="mqtt", password=PASSWORD)
    s.connect()
    assert s.hub.connected
    s.disconnect()
    assert not s.hub.connected and not s.transport.mqtt_online
    offline = [o for o in s.transport.orders if isinstance(o, Publish) and o.payload == b"offline"]
    assert len(offline) == 2  # the reset before the session (rule 3) and the goodbye (rule 7)


def test_session_deliver_type_is_what_the_hub_sent() -> None:
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    session = Session(session_id="s", useragent="UA/1", entropy=counting_entropy("d"), crypto_key=CRYPTO_KEY)
    session.handle(LinkOpened(), now=0.0)
    converse(hub, session, hub.open_connection())
    (frame,) = hub.push("custom.event", {"k": [1, 2]}, {"c": True})
    (out,) = session.handle(FrameReceived(data=frame), now=1.0)
    assert isinstance(out, Deliver)
    assert out.message.bus() == BusMessage(type="custom.event", data={"k": [1, 2]}, context={"c": True})


# ---- purity --------------------------------------------------------------------------------------

TESTING = ROOT / "thalovant" / "testing"
IMPURE = {
    "anyio", "sniffio", "trio", "h11", "wsproto", "paho", "socket", "ssl", "select", "selectors", "asyncio",
    "threading", "concurrent", "multiprocessing", "subprocess", "time", "datetime", "os", "sys", "pathlib",
    "shutil", "tempfile", "random", "secrets", "uuid", "logging", "urllib", "http", "signal", "io",
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(TESTING.glob("*.py")), ids=lambda p: p.name)
def test_thalovant_testing_is_pure_like_the_core(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"))
    for node in ast.walk(tree):
        assert not isinstance(node, ast.AsyncFunctionDef | ast.Await), f"{path.name}: async"
        if isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] not in IMPURE for a in node.names), f"{path.name}: {ast.dump(node)}"
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in IMPURE, f"{path.name}: from {node.module}"
            assert not node.module.startswith(("thalovant.shell", "thalovant.cli")), node.module
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("open", "print", "input"), f"{path.name}: {node.func.id}()"
    assert len(path.read_text("utf-8").splitlines()) <= 500


@settings(max_examples=200, deadline=None)
@given(fields=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=60)), max_size=4, unique_by=lambda f: f[0]))
def test_form_decode_inverts_the_clients_form_encode(fields: list[tuple[str, str]]) -> None:
    fields = [(k, v) for k, v in fields if k]
    assert form_decode(form_encode(tuple(fields))) == dict(fields)


def test_the_documented_examples_run() -> None:
    import doctest

    import thalovant.testing
    import thalovant.testing.transport

    for module in (thalovant.testing, thalovant.testing.transport):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_v3_second_contact_uses_kk_when_the_client_pinned_the_hub() -> None:
    first = InMemoryHubSession(protocol="wss", password=PASSWORD, generation=3)
    assert first.connect() is ConnectionState.READY
    hub = first.hub
    assert hub.patterns == ["XXpsk2"] and hub.pinned_client is not None
    options = dict(first.config.v3_options)
    options["pinned_hub_key"] = hub.static_public
    second = InMemoryHubSession(
        protocol="https", password=PASSWORD, generation=3, hub=hub, v3_options=tuple(options.items())
    )
    assert second.connect() is ConnectionState.READY
    assert hub.patterns == ["XXpsk2", "KKpsk0"]
    assert isinstance(second.ask("hello"), corr.AskFinished)
