"""trace: tagged JSON values, lines, entropy tapes and the recorder."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import types
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Input, Note, NoteLevel, Output, Tick
from thalovant.core.replay import replay
from thalovant.core.trace import (
    Recorder,
    RecordingEntropy,
    Tape,
    TapeMismatch,
    TraceHeader,
    TraceProblem,
    TypeRegistry,
    decode_value,
    encode_value,
    load_header,
    load_step,
    type_name,
)

#: Every module of this engineer's machines; each message class in them must round-trip.
MODULES = [
    "thalovant.core.machine",
    "thalovant.core.links.base",
    "thalovant.core.links.http_poll",
    "thalovant.core.links.http_wire",
    "thalovant.core.links.ws",
    "thalovant.core.links.mqtt",
    "thalovant.core.client.reconnect",
]


def message_classes() -> list[type]:
    found: list[type] = []
    for name in MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == name
                and issubclass(value, Input | Output)
            ):
                found.append(value)
    return found


def enum_classes() -> list[type]:
    found: list[type] = []
    for name in MODULES:
        module = importlib.import_module(name)
        found += [
            v
            for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, enum.Enum) and v.__module__ == name
        ]
    return found


REGISTRY = TypeRegistry([*message_classes(), *enum_classes()])

plain_float = st.floats(allow_nan=False, allow_infinity=False, width=64)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    if hint is float:
        return plain_float
    if hint is int:
        return st.integers(min_value=-(2**53), max_value=2**53)
    if hint is str:
        return st.text(max_size=20)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([strategy_for(a) for a in typing.get_args(hint)])
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
        return st.tuples(*(strategy_for(a) for a in args))
    return st.from_type(hint)


def instances(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


def json_round_trip(value: object) -> Any:
    return decode_value(json.loads(json.dumps(encode_value(value), allow_nan=False)), REGISTRY)


def test_all_machine_modules_contribute_messages() -> None:
    names = {type_name(c) for c in message_classes()}
    assert {"machine.Tick", "links.OutboundFrame", "links.http_wire.StartRequest"} <= names
    assert any(n.startswith("links.ws_link.") for n in names)
    assert any(n.startswith("links.mqtt_map.") for n in names)
    assert any(n.startswith("reconnect.") for n in names)


@pytest.mark.parametrize("cls", message_classes(), ids=type_name)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_message_class_round_trips_through_json(cls: type, data: st.DataObject) -> None:
    value = data.draw(instances(cls))
    assert json_round_trip(value) == Success(value)


def test_tagged_forms_are_as_documented() -> None:
    note = Note(level=NoteLevel.INFO, text="hi")
    assert encode_value(note) == {"$t": "machine.Note", "level": {"$e": "machine.NoteLevel", "v": "info"}, "text": "hi"}
    assert encode_value(b"\x00\xff") == {"$b": "AP8="}
    assert encode_value({"k": (1, 2)}) == {"$d": [["k", [1, 2]]]}
    assert json_round_trip({"k": (1, b"x")}) == Success({"k": (1, b"x")})


def test_unencodable_values_and_duplicate_names_are_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        encode_value(object())
    with pytest.raises(LocalProtocolError):
        TypeRegistry([int])

    @dataclasses.dataclass(frozen=True)
    class Tick:  # same qualified name as nothing registered, but clashes with itself below
        pass

    other = type("Tick", (), {"__module__": Tick.__module__, "__qualname__": Tick.__qualname__})
    with pytest.raises(LocalProtocolError):
        TypeRegistry([Tick, dataclasses.dataclass(frozen=True)(other)])


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ({"$t": "os.system"}, "unknown-type"),
        ({"$t": "machine.Tick", "nope": 1}, "bad-value"),
        ({"$e": "machine.NoteLevel", "v": "loud"}, "bad-value"),
        ({"$b": "!!"}, "bad-value"),
        ({"$d": [[{"$d": []}, 1]]}, "bad-value"),
        ({"plain": "object"}, "bad-value"),
    ],
)
def test_bad_values_are_problems(obj: Any, code: str) -> None:
    result = decode_value(obj, REGISTRY)
    assert isinstance(result, Failure) and result.failure().code == code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | plain_float | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3)
    | st.dictionaries(st.sampled_from(["$t", "$e", "$b", "$d", "v", "level", "text", "x"]), c, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(obj=json_values)
def test_garbage_values_never_raise(obj: Any) -> None:
    result = decode_value(obj, REGISTRY)
    assert isinstance(result, Success | Failure)


@settings(max_examples=200, deadline=None)
@given(line=st.one_of(st.text(max_size=80), json_values.map(json.dumps)))
def test_garbage_lines_never_raise(line: str) -> None:
    for result in (load_step(line), load_header(line)):
        assert isinstance(result, Success | Failure)
        if isinstance(result, Failure):
            assert isinstance(result.failure(), TraceProblem)


def test_numbers_too_big_for_a_float_are_problems() -> None:
    line = json.dumps({"seq": 0, "now": 10**400, "in": None, "entropy": [], "out": [], "deadline": None})
    assert load_step(line).failure().code == "bad-step"  # type: ignore[union-attr]
    line = json.dumps({"seq": 0, "now": 1, "in": None, "entropy": ["zz"], "out": [], "deadline": None})
    assert load_step(line).failure().code == "bad-step"  # type: ignore[union-attr]


def test_header_version_is_checked() -> None:
    header = TraceHeader("http_poll", {"a": 1}, "0.1.0", "throwaway")
    assert load_header(header.to_line()) == Success(header)
    assert load_header('{"v": 2, "machine": "x"}').failure().code == "version"  # type: ignore[union-attr]


def test_tape_replays_and_fails_loudly() -> None:
    tape = Tape(["00ff", "01"])
    assert tape(2) == b"\x00\xff"
    with pytest.raises(TapeMismatch, match="wants 4 bytes, recorded 1"):
        tape(4)
    assert tape(1) == b"\x01"
    with pytest.raises(TapeMismatch, match="not recorded"):
        tape(1)
    assert issubclass(TapeMismatch, LocalProtocolError)


def test_recording_entropy_and_recorder_lines() -> None:
    source = iter([b"\x01\x02", b"\xaa"])
    rec_entropy = RecordingEntropy(lambda n: next(source))
    recorder = Recorder(TraceHeader("toy", {}, "0.1.0"), entropy=rec_entropy)
    rec_entropy(2)
    rec_entropy(1)
    line = recorder.record_step(1.5, Tick(), [Note(level=NoteLevel.DEBUG, text="x")], 2.0)
    step = load_step(line).unwrap()
    assert (step.seq, step.now, step.entropy, step.deadline) == (0, 1.5, ("0102", "aa"), 2.0)
    assert step.inp == {"$t": "machine.Tick"}
    second = load_step(recorder.record_step(2.0, Tick(), [], None)).unwrap()
    assert (second.seq, second.entropy, second.deadline) == (1, (), None)
    assert len(recorder.lines) == 3 and json.loads(recorder.lines[0])["v"] == 1


def test_replay_of_an_empty_or_broken_trace_is_a_problem_not_an_exception() -> None:
    def build(header: TraceHeader, entropy: Any) -> Any:
        raise AssertionError("not reached")

    assert replay([], build, registry=REGISTRY).problem == TraceProblem("bad-header", "empty trace")
    assert replay(["{nope"], build, registry=REGISTRY).problem.code == "bad-json"  # type: ignore[union-attr]


# ---- record -> replay is the identity, for every machine of this package ---------------------------

from thalovant.core.client.reconnect import TRACE_TYPES as RECONNECT_TYPES  # noqa: E402
from thalovant.core.client.reconnect import LinkLost, LinkUp, OpenRequested, Reconnect, UserClose  # noqa: E402
from thalovant.core.links import mqtt_map  # noqa: E402
from thalovant.core.links import ws as ws_link  # noqa: E402
from thalovant.core.links.base import OutboundFrame, Started, StopRequested  # noqa: E402
from thalovant.core.links.http_poll import TRACE_TYPES as HTTP_TYPES  # noqa: E402
from thalovant.core.links.http_poll import HttpPoll, RequestFailed, ResponseReceived  # noqa: E402


def _counter_entropy() -> Any:
    state = [0]

    def draw(n: int) -> bytes:
        state[0] += 1
        return bytes((state[0] * 37 + i) % 256 for i in range(n))

    return draw


BUILDERS: dict[str, tuple[Any, tuple[type, ...]]] = {
    "http_poll": (lambda e: HttpPoll(authorization="dTprZXk=", useragent="t", entropy=e), HTTP_TYPES),
    "ws_link": (lambda e: ws_link.WsLink(authorization="dTprZXk="), ws_link.TRACE_TYPES),
    "mqtt_map": (lambda e: mqtt_map.MqttMap(access_key="k", topic_prefix="hm/hub", entropy=e), mqtt_map.TRACE_TYPES),
    "reconnect": (lambda e: Reconnect(entropy=e), RECONNECT_TYPES),
}

small_frames = st.one_of(st.text(max_size=6), st.binary(max_size=6))
INPUTS: dict[str, st.SearchStrategy[Any]] = {
    "http_poll": st.one_of(
        st.builds(Started),
        st.builds(StopRequested),
        st.builds(Tick),
        st.builds(OutboundFrame, data=small_frames, refs=st.tuples(st.integers(0, 99))),
        st.builds(
            ResponseReceived,
            req_id=st.integers(1, 8),
            status=st.sampled_from([200, 409, 500]),
            body=st.sampled_from(
                [b'{"status": "ok"}', b'{"messages": ["x"]}', b'{"b64_messages": ["AA=="]}', b'{"error": "x"}', b"junk"]
            ),
        ),
        st.builds(RequestFailed, req_id=st.integers(1, 8), kind=st.just("reset")),
    ),
    "ws_link": st.one_of(
        st.builds(ws_link.WsOpened),
        st.builds(ws_link.WsMessage, data=small_frames),
        st.builds(ws_link.WsClosed, code=st.sampled_from([None, 1000, 1006, 1008, 4003]), reason=st.text(max_size=5)),
        st.builds(OutboundFrame, data=small_frames, refs=st.tuples(st.integers(0, 99))),
        st.builds(StopRequested),
        st.builds(Tick),
    ),
    "mqtt_map": st.one_of(
        st.builds(Started),
        st.builds(mqtt_map.MqttConnected, session_present=st.booleans()),
        st.builds(mqtt_map.MqttSubscribed, granted_qos=st.sampled_from([0, 1, 128])),
        st.builds(mqtt_map.MqttPublished, pub_id=st.integers(1, 6)),
        st.builds(mqtt_map.MqttMessage, topic=st.just("hm/hub/s2c/k"), payload=st.binary(max_size=6)),
        st.builds(mqtt_map.MqttDisconnected, rc=st.sampled_from([0, 5, 7])),
        st.builds(OutboundFrame, data=small_frames, refs=st.tuples(st.integers(0, 99))),
        st.builds(StopRequested),
        st.builds(Tick),
    ),
    "reconnect": st.one_of(
        st.builds(OpenRequested),
        st.builds(LinkUp),
        st.builds(LinkLost, reason=st.text(max_size=5), retryable=st.booleans(), auth=st.booleans()),
        st.builds(UserClose),
        st.builds(Tick),
    ),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_recorded_run_replays_exactly(name: str, data: st.DataObject) -> None:
    build, types_ = BUILDERS[name]
    entropy = RecordingEntropy(_counter_entropy())
    machine = build(entropy)
    recorder = Recorder(TraceHeader(name, {}, "test"), entropy=entropy)
    steps = data.draw(st.lists(st.tuples(INPUTS[name], st.floats(0, 3)), max_size=20))
    now = 0.0
    for inp, dt in steps:
        now += dt
        try:
            outs = machine.handle(inp, now=now)
        except LocalProtocolError:
            entropy.take()
            continue  # misuse is not recorded (the driver never feeds it twice)
        recorder.record_step(now, inp, outs, machine.deadline)
    report = replay(recorder.lines, lambda header, e: build(e), registry=TypeRegistry(types_))
    assert report.ok, report
    assert report.steps == len(recorder.lines) - 1
