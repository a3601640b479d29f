"""The session's transition table, driven for real.

The destinations are read from ``session.machine.TABLE`` (the one place a transition is written):
for each row, a session is put in the row's state, fed a plain input of the row's type, and must
end in the row's ``to`` (or, for a misuse row, raise and stay). Every ``exits`` state a row
declares is reached by a scenario below, and each scenario ends in one of its row's declared ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.core.session.test_session_pair import CRYPTO_KEY, FakeHub, new_session, pump, ready_psk_session
from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Input, Tick
from thalovant.core.session.machine import (
    TABLE,
    FrameReceived,
    LinkClosed,
    LinkOpened,
    Session,
    SessionState,
    UserClose,
    UserSend,
)
from thalovant.core.wire.codec import encode_json
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

S = SessionState
# a cleartext BUS frame: dropped with a Note in every live state (the state stays)
HARMLESS = encode_json(HiveMessage(msg_type=MsgType.BUS, payload={"type": "x", "data": {}, "context": {}}))


def in_state(state: SessionState) -> Session:
    if state is S.READY:
        return ready_psk_session(FakeHub(crypto_key=CRYPTO_KEY))
    s = new_session(crypto_key=CRYPTO_KEY)
    if state is S.IDLE:
        return s
    s.handle(LinkOpened(), now=0.0)
    if state is S.CLOSED:
        s.handle(UserClose(), now=0.0)
    elif state is S.FAILED:
        s.handle(LinkClosed(code=1006), now=0.0)
    return s


PLAIN: dict[type, Callable[[], Input]] = {
    LinkOpened: LinkOpened,
    FrameReceived: lambda: FrameReceived(data=HARMLESS),
    LinkClosed: lambda: LinkClosed(code=1006),
    UserSend: lambda: UserSend(message=BusMessage(type="q"), ref=1),
    UserClose: UserClose,
    Tick: Tick,
}
MISUSE = {(state, LinkOpened) for state in S if state is not S.IDLE} | {(S.CLOSED, UserSend), (S.FAILED, UserSend)}


def test_every_state_lists_every_input() -> None:
    assert set(TABLE) == {(state, kind) for state in S for kind in PLAIN}


@pytest.mark.parametrize(("state", "kind"), sorted(TABLE, key=lambda k: (k[0].value, k[1].__name__)))
def test_a_plain_input_lands_in_the_rows_state(state: SessionState, kind: type) -> None:
    s = in_state(state)
    assert s.state is state
    if (state, kind) in MISUSE:
        with pytest.raises(LocalProtocolError):
            s.handle(PLAIN[kind](), now=0.5)
        assert s.state is state is TABLE[(state, kind)].to
        return
    s.handle(PLAIN[kind](), now=0.5)
    assert s.state is TABLE[(state, kind)].to
    assert s.finished is (s.state in (S.CLOSED, S.FAILED))


def _handshake_done() -> tuple[Session, Input]:
    s = new_session(crypto_key=CRYPTO_KEY)
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    s.handle(LinkOpened(), now=0.0)
    hello, offer = hub.greeting()
    pump(s, hub, [hello], now=0.1)
    return s, FrameReceived(data=offer)  # the offer completes the pre-shared path


def _garbage(state: SessionState) -> Callable[[], tuple[Session, Input]]:
    return lambda: (in_state(state), FrameReceived(data="not json"))


def _timeout() -> tuple[Session, Input]:
    s = in_state(S.HANDSHAKING)
    assert s.deadline is not None
    return s, Tick()


def _bad_seal() -> tuple[Session, Input]:
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    s = ready_psk_session(hub)
    frame = json.loads(hub.say("x"))
    frame["tag"] = "00" * 16
    return s, FrameReceived(data=json.dumps(frame))


# (row, declared exit) -> a session in the row's state and the input that takes that exit
EXITS: dict[tuple[tuple[SessionState, type], SessionState], Callable[[], tuple[Session, Input]]] = {
    ((S.HANDSHAKING, FrameReceived), S.READY): _handshake_done,
    ((S.HANDSHAKING, FrameReceived), S.FAILED): _garbage(S.HANDSHAKING),
    ((S.HANDSHAKING, Tick), S.FAILED): _timeout,
    ((S.READY, FrameReceived), S.FAILED): _bad_seal,
}


def test_every_declared_exit_has_a_scenario() -> None:
    declared = {(key, end) for key, row in TABLE.items() for end in row.exits}
    assert declared == set(EXITS)


@pytest.mark.parametrize("case", sorted(EXITS, key=lambda c: (c[0][0].value, c[0][1].__name__, c[1].value)))
def test_each_exit_is_reached_and_declared(case: tuple[tuple[SessionState, type], SessionState]) -> None:
    (state, kind), end = case
    s, inp = EXITS[case]()
    assert s.state is state and isinstance(inp, kind)
    s.handle(inp, now=10_000.0 if kind is Tick else 0.5)
    assert s.state is end and end in TABLE[(state, kind)].ends
