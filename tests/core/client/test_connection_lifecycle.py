"""The Connection's life-cycle table, driven for real over the in-memory FakeHub.

The destinations are read from ``lifecycle.TRANSITIONS`` (the one place a life-cycle transition is
written). Each scenario names the rows it takes, in order; driving the machine must emit exactly the
table's destinations as ``StatusChanged``, take exactly those rows (no other move), and leave the
machine in the last destination. Together the scenarios take every row of the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from thalovant.core.client import reconnect as rc
from thalovant.core.client.connection import Connect, ConnectionState, Disconnect, StatusChanged
from thalovant.core.client.lifecycle import TERMINAL, TRANSITIONS, Lifecycle
from thalovant.core.machine import Output
from thalovant.core.session.events import SessionReady
from thalovant.testing import FakeHub, InMemoryHubSession

PASSWORD = "throwaway-password-for-tests"
S = ConnectionState
Row = tuple[ConnectionState, type]


def session(**kw: Any) -> InMemoryHubSession:
    return InMemoryHubSession(protocol="wss", password=PASSWORD, **kw)


def connect_lose_reconnect_close(s: InMemoryHubSession) -> Iterator[list[Output]]:
    yield s.feed(Connect())
    yield s.drop_link()
    s.connect()  # Connect while CONNECTING has no row: the reconnect policy brings it back
    yield s.outputs
    yield s.disconnect()


def wrong_password_gives_up_then_close(s: InMemoryHubSession) -> Iterator[list[Output]]:
    s.connect(timeout=120.0)
    yield s.outputs
    yield s.disconnect()


def close_while_connecting(s: InMemoryHubSession) -> Iterator[list[Output]]:
    s.transport.blackhole = True  # the upgrade is never answered
    yield s.feed(Connect())
    yield s.disconnect()


def close_before_connecting(s: InMemoryHubSession) -> Iterator[list[Output]]:
    yield s.disconnect()
    yield s.feed(Connect())  # CLOSED has no rows: nothing moves any more
    yield s.disconnect()


Scenario = Callable[[InMemoryHubSession], Iterator[list[Output]]]
SCENARIOS: dict[str, tuple[Callable[[], InMemoryHubSession], Scenario, list[Row]]] = {
    "connect-lose-reconnect-close": (
        session,
        connect_lose_reconnect_close,
        [
            (S.IDLE, Connect),
            (S.CONNECTING, SessionReady),
            (S.READY, rc.LinkLost),
            (S.CONNECTING, SessionReady),
            (S.READY, Disconnect),
        ],
    ),
    "wrong-password-gives-up": (
        lambda: session(hub=FakeHub(password="not-the-clients-password")),
        wrong_password_gives_up_then_close,
        [(S.IDLE, Connect), (S.CONNECTING, rc.GiveUp), (S.GAVE_UP, Disconnect)],
    ),
    "close-while-connecting": (session, close_while_connecting, [(S.IDLE, Connect), (S.CONNECTING, Disconnect)]),
    "close-before-connecting": (session, close_before_connecting, [(S.IDLE, Disconnect)]),
}


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[Row]:
    """Every row the machine takes (a move that changed the state), in order."""
    rows: list[Row] = []
    move = Lifecycle.move

    def recording_move(self: Lifecycle, trigger: type) -> bool:
        before = self.state
        moved = move(self, trigger)
        if moved:
            rows.append((before, trigger))
        return moved

    monkeypatch.setattr(Lifecycle, "move", recording_move)
    return rows


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_driving_the_machine_lands_in_the_tables_states(name: str, taken: list[Row]) -> None:
    build, scenario, rows = SCENARIOS[name]
    s = build()
    assert s.connection.state is S.IDLE
    for _ in scenario(s):  # after every step, the state is the last one announced
        announced = [o.state for o in s.outputs if isinstance(o, StatusChanged)]
        assert s.connection.state is (announced[-1] if announced else S.IDLE)
    statuses = [o.state for o in s.outputs if isinstance(o, StatusChanged)]
    assert taken == rows  # exactly the scenario's rows, in order, and no other move
    state = S.IDLE
    for (start, trigger), status in zip(rows, statuses, strict=True):
        assert start is state, f"{name}: the row {start.name} + {trigger.__name__} does not start where we are"
        state = TRANSITIONS[(start, trigger)]
        assert status is state  # each StatusChanged names the table's destination
    assert s.connection.state is state


def test_the_scenarios_take_every_row_of_the_table() -> None:
    assert {row for _, _, rows in SCENARIOS.values() for row in rows} == set(TRANSITIONS)


def test_the_table_is_closed_over_the_states() -> None:
    sources = {state for state, _ in TRANSITIONS}
    targets = set(TRANSITIONS.values())
    assert sources | targets == set(ConnectionState)
    assert S.CLOSED not in sources  # CLOSED is final
    # a terminal state can only be left by closing
    assert {trigger for state, trigger in TRANSITIONS if state in TERMINAL} == {Disconnect}
    assert all(TRANSITIONS[(state, Disconnect)] is S.CLOSED for state in sources)


def test_a_pair_without_a_row_leaves_the_state_as_it_is() -> None:
    life = Lifecycle()
    assert not life.move(SessionReady) and life.state is S.IDLE
    assert life.move(Connect) and life.state is S.CONNECTING
    assert not life.move(Connect) and not life.move(rc.LinkLost) and life.state is S.CONNECTING
    assert life.move(Disconnect) and life.state is S.CLOSED
    assert not any(life.move(trigger) for _, trigger in TRANSITIONS) and life.state is S.CLOSED
