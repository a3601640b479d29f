"""Session totality: hub garbage in every state gives only typed outputs; refs are accounted once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.session.test_session_pair import CRYPTO_KEY, PASSWORD, FakeHub, new_session, pump
from thalovant.core.machine import Input, Note, Tick
from thalovant.core.session.machine import (
    CloseLink,
    Deliver,
    FrameReceived,
    LinkClosed,
    LinkOpened,
    SendFailed,
    SendFrame,
    Session,
    SessionFailed,
    SessionReady,
    SessionState,
    UserClose,
    UserSend,
)
from thalovant.core.wire.message import BusMessage

FAST = settings(max_examples=120, deadline=None)
TYPED = (SendFrame, SessionReady, Deliver, SendFailed, SessionFailed, CloseLink, Note)


def idle() -> Session:
    return new_session(password=PASSWORD)


def handshaking() -> Session:
    s = new_session(password=PASSWORD)
    s.handle(LinkOpened(), now=0.0)
    return s


def waiting_envelope() -> Session:
    s = handshaking()
    hub = FakeHub(password=PASSWORD)
    for frame in hub.greeting():
        s.handle(FrameReceived(data=frame), now=0.1)
    return s


def ready() -> Session:
    s = new_session(crypto_key=CRYPTO_KEY)
    s.handle(LinkOpened(), now=0.0)
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    pump(s, hub, hub.greeting(), now=0.1)
    assert s.state is SessionState.READY
    return s


def ready_bitstring() -> Session:
    s = new_session(crypto_key=CRYPTO_KEY, wire="bitstring")
    s.handle(LinkOpened(), now=0.0)
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    pump(s, hub, hub.greeting(), now=0.1)
    return s


def closed() -> Session:
    s = handshaking()
    s.handle(UserClose(), now=0.1)
    return s


def failed() -> Session:
    s = handshaking()
    s.handle(Tick(), now=99.0)
    assert s.state is SessionState.FAILED
    return s


BUILDERS: list[Callable[[], Session]] = [idle, handshaking, waiting_envelope, ready, ready_bitstring, closed, failed]

json_leaf = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=40)
envelope_like = st.fixed_dictionaries(
    {"msg_type": st.sampled_from(["hello", "shake", "bus", "bin", "nope", 3])},
    optional={
        "payload": st.dictionaries(
            st.sampled_from(["envelope", "password", "preshared_key", "type", "noise"]), json_leaf
        ),
        "ciphertext": st.text(max_size=40),
        "nonce": st.text(max_size=40),
        "tag": st.text(max_size=40),
        "route": st.lists(json_leaf, max_size=2),
    },
)
frames = (
    st.binary(max_size=120)
    | st.text(max_size=120)
    | envelope_like.map(json.dumps)
    | envelope_like.map(lambda o: json.dumps(o).encode())
    | st.binary(max_size=60).map(lambda b: bytes([0x82, 0]) + b)
)


@FAST
@given(st.sampled_from(BUILDERS), st.lists(frames, min_size=1, max_size=4))
def test_garbage_frames_in_every_state_give_only_typed_outputs(build: Callable[[], Session], data: list) -> None:
    s = build()
    for i, frame in enumerate(data):
        outs = s.handle(FrameReceived(data=frame), now=1.0 + i)
        assert all(isinstance(o, TYPED) for o in outs)
        failures = [o for o in outs if isinstance(o, SessionFailed)]
        if failures:
            assert s.state is SessionState.FAILED
    assert isinstance(s.state, SessionState)


steps = st.one_of(
    frames.map(lambda f: FrameReceived(data=f)),
    st.just(Tick()),
    st.integers(0, 10**6).map(lambda r: UserSend(message=BusMessage(type="t", data={"r": r}), ref=r)),
    st.sampled_from([LinkClosed(code=1006), LinkClosed(code=None), UserClose()]),
)


@FAST
@given(st.sampled_from([idle, handshaking, waiting_envelope, ready]), st.lists(steps, max_size=8))
def test_every_user_send_is_accounted_at_most_once(build: Callable[[], Session], inputs: list[Input]) -> None:
    s = build()
    seen: Counter[int] = Counter()
    asked: list[int] = []
    for i, inp in enumerate(inputs):
        if isinstance(inp, UserSend):
            if s.state in (SessionState.CLOSED, SessionState.FAILED):
                continue  # misuse raises; covered elsewhere
            if inp.ref in asked:
                continue
            asked.append(inp.ref)
        outs = s.handle(inp, now=0.5 + i * 0.1)
        for out in outs:
            assert isinstance(out, TYPED)
            if isinstance(out, SendFrame):
                seen.update(out.refs)
            elif isinstance(out, SendFailed):
                seen[out.ref] += 1
    assert all(count == 1 for count in seen.values())
    assert set(seen) <= set(asked)
    if s.state in (SessionState.CLOSED, SessionState.FAILED, SessionState.READY):
        assert set(seen) == set(asked)  # nothing left waiting in the queue


@FAST
@given(st.lists(st.floats(0.0, 9.99), max_size=5))
def test_ticks_before_the_deadline_do_not_change_the_handshake(ticks: list[float]) -> None:
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    s = new_session(crypto_key=CRYPTO_KEY)
    s.handle(LinkOpened(), now=0.0)
    for t in sorted(ticks):
        assert s.handle(Tick(), now=t) == []
    outs = pump(s, hub, hub.greeting(), now=9.995)
    reference = new_session(crypto_key=CRYPTO_KEY)
    reference.handle(LinkOpened(), now=0.0)
    ref_outs = pump(reference, FakeHub(crypto_key=CRYPTO_KEY), FakeHub(crypto_key=CRYPTO_KEY).greeting(), now=9.995)
    assert outs == ref_outs
