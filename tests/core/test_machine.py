"""The machine contract: ``finished`` in the protocol, and the table runner (``Row``, ``TableMachine``)."""

from __future__ import annotations

import enum

import pytest

from thalovant.core.client.reconnect import Reconnect, UserClose
from thalovant.core.links.base import StopRequested
from thalovant.core.links.http_poll import HttpPoll
from thalovant.core.links.mqtt_map import MqttMap
from thalovant.core.links.ws import WsLink
from thalovant.core.machine import Input, Machine, Output, Row, Table, TableMachine, Tick


def _machines() -> list[Machine[Input]]:
    zero = lambda n: bytes(n)  # noqa: E731
    return [
        HttpPoll(authorization="dTprZXk=", useragent="t", entropy=zero),
        WsLink(authorization="dTprZXk="),
        MqttMap(access_key="k", topic_prefix="hm/hub", entropy=zero),
        Reconnect(entropy=zero),
    ]


@pytest.mark.parametrize("machine", _machines(), ids=lambda m: type(m).__name__)
def test_every_table_machine_has_finished_and_it_follows_the_terminal_state(machine: Machine[Input]) -> None:
    assert machine.finished is False
    stop = UserClose() if isinstance(machine, Reconnect) else StopRequested()
    machine.handle(stop, now=0.0)  # from the first state straight to CLOSED
    assert machine.finished is True
    assert machine.state.name == "CLOSED"


class _Light(enum.Enum):
    OFF = "off"
    ON = "on"
    BROKEN = "broken"


class _Lamp(TableMachine[_Light]):
    """A toy machine: Tick switches it on, unless it is told to break."""

    _TERMINAL = frozenset({_Light.BROKEN})

    def __init__(self, *, fragile: bool = False) -> None:
        self._state = _Light.OFF
        self._fragile = fragile
        self.seen: list[_Light] = []

    def handle(self, inp: Input, *, now: float) -> list[Output]:
        return self._fire(LAMP[(self._state, type(inp))], inp, now)

    def _on_tick(self, inp: Tick, now: float) -> list[Output]:
        self.seen.append(self._state)  # handlers see the state the step started in
        if self._fragile:
            self._exit(_Light.BROKEN)
        return []


LAMP: Table[_Light, _Lamp] = {(_Light.OFF, Tick): Row(_Light.ON, _Lamp._on_tick, frozenset({_Light.BROKEN}))}


def test_a_row_moves_to_its_state_and_a_handler_may_take_a_declared_exit() -> None:
    lamp = _Lamp()
    assert lamp.handle(Tick(), now=0.0) == [] and lamp.state is _Light.ON and not lamp.finished
    assert lamp.seen == [_Light.OFF]
    fragile = _Lamp(fragile=True)
    fragile.handle(Tick(), now=0.0)
    assert fragile.state is _Light.BROKEN and fragile.finished
    assert LAMP[(_Light.OFF, Tick)].ends == {_Light.ON, _Light.BROKEN}
