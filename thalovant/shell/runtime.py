"""Runtime: runs one ``core.connection.Connection`` and carries out its orders.

The runtime owns one :class:`~thalovant.shell.driver.Driver` (the only place
inputs enter the machine, so the only place a trace is recorded), one anyio
task group and the link epochs. Its own work is dispatch:

* a ``LinkOrder(epoch, order)`` goes to that epoch's driver for the order's
  transport (:class:`~thalovant.shell.links.ws_driver.WsDriver`,
  :class:`~thalovant.shell.links.http_driver.HttpDriver`,
  :class:`~thalovant.shell.links.mqtt_driver.MqttDriver`), created on the
  epoch's first order of that transport; the driver reports back through the
  epoch (:class:`~thalovant.shell.links.epoch.LinkEpoch`), which tags every
  fact with the epoch number;
* ``DropLink(epoch)`` cancels every task of that epoch; opening epoch ``n``
  drops every epoch older than ``n - 1``;
* ``Note`` is logged; everything else (events, send results, ask results,
  status) is handed to the :data:`Outcomes` sink given by the client.

Back-pressure. The driver's inbox is bounded (:class:`~thalovant.shell.driver.Driver`'s
``inbox_size``). What a link *reads* from the hub enters through
:meth:`ConnectionRuntime.deliver`, which waits for room: a reader that finds the
inbox full stops reading its socket, the kernel's buffers fill and TCP pushes
back on the hub, so a flooding hub costs no memory here. The few facts a driver
reports from the runtime's own task (the end of an order it carried out, at most
one per order) must not wait, since that task is the one that empties the inbox:
:meth:`ConnectionRuntime.fact` queues them, in order, behind a full inbox in a
backlog that one task drains; the backlog is bounded by the orders the machine
gave. The inbox is bounded in bytes too (:data:`INBOX_BYTES`): a read whose payload
(a WebSocket message, an MQTT publish, an HTTP body) would take the payloads waiting
in the inbox over the budget waits for the machine to take some, unless the inbox
holds none (one message of the transport's maximum size always fits). No retry,
timing or protocol decision is made here: those live in the core.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

from thalovant.core.client import connection as cx
from thalovant.core.machine import Input, Note, NoteLevel, Output
from thalovant.shell.driver import Driver, StepRecorder
from thalovant.shell.links.dial import LinkTimes
from thalovant.shell.links.epoch import Endpoint, LinkDriver, Timeouts
from thalovant.shell.links.http_driver import HttpDriver
from thalovant.shell.links.mqtt_driver import MqttDriver
from thalovant.shell.links.ws_driver import WsDriver

__all__ = ["ConnectionRuntime", "Endpoint", "Outcomes", "Timeouts"]

log = logging.getLogger("thalovant")

_LOG_LEVEL = {NoteLevel.DEBUG: logging.DEBUG, NoteLevel.INFO: logging.INFO, NoteLevel.WARNING: logging.WARNING}

#: The transport drivers, tried in order for each link order (each lists the orders it takes).
_DRIVERS: tuple[type[WsDriver] | type[HttpDriver] | type[MqttDriver], ...] = (WsDriver, HttpDriver, MqttDriver)

#: Where the runtime hands what users care about (the client's dispatcher).
Outcomes = Callable[[Output], None]

#: Payload bytes the inbox may hold before a link's next read waits (one payload always fits).
INBOX_BYTES = 16 * 1024 * 1024


def payload_size(item: Input) -> int:
    """The bytes a transport fact carries from the hub (0 for anything else)."""
    fact = item.fact if isinstance(item, cx.LinkFact) else None
    for name in ("data", "payload", "body"):
        value = getattr(fact, name, None)
        if isinstance(value, str | bytes | bytearray | memoryview):
            return len(value)
    return 0


class _Epoch:
    """One link epoch: its tasks and its drivers (a :class:`~thalovant.shell.links.epoch.LinkEpoch`)."""

    def __init__(self, runtime: ConnectionRuntime, number: int, tg: anyio.abc.TaskGroup) -> None:
        self.number = number
        self.endpoint = runtime.endpoint
        self.timeouts = runtime.timeouts
        self.drivers: dict[type, LinkDriver] = {}
        self.scopes: set[anyio.CancelScope] = set()
        self.dropped = False
        self.times = LinkTimes()
        self._runtime = runtime
        self._tg = tg

    def __repr__(self) -> str:
        return f"<epoch {self.number} tasks={len(self.scopes)} dropped={self.dropped}>"

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        scope = anyio.CancelScope()
        if self.dropped:
            return
        self.scopes.add(scope)

        async def runner() -> None:
            try:
                with scope:
                    await fn(*args)
            finally:
                self.scopes.discard(scope)

        self._tg.start_soon(runner)

    def fact(self, fact: Input) -> None:
        self._runtime.fact(cx.LinkFact(epoch=self.number, fact=fact))

    async def deliver(self, fact: Input) -> None:
        await self._runtime.deliver(cx.LinkFact(epoch=self.number, fact=fact))

    def drop(self) -> None:
        self.dropped = True
        for scope in list(self.scopes):
            scope.cancel()


class ConnectionRuntime:
    """Drive a Connection machine over real transports.

    Args:
        machine: the pure composite client machine.
        endpoint: host/port/TLS of the transport (and broker credentials for MQTT).
        outcomes: receives every user-facing output, on the event loop thread.
        timeouts: IO timeouts.
        recorder: optional trace recorder (see ``thalovant.core.trace``).
        entropy: the recording entropy wrapper the machine draws from, when recording.
    """

    def __init__(
        self,
        machine: cx.Connection,
        *,
        endpoint: Endpoint,
        outcomes: Outcomes,
        timeouts: Timeouts | None = None,
        recorder: StepRecorder | None = None,
        entropy: Any = None,
        clock: Callable[[], float] = anyio.current_time,
    ) -> None:
        self.machine = machine
        self.endpoint = endpoint
        self.outcomes = outcomes
        self.timeouts = timeouts or Timeouts()
        self.driver = Driver(
            machine,
            recorder=recorder,
            entropy=entropy,
            clock=clock,
            stop_when=lambda: machine.finished,
            taken=self._taken,
        )
        self.inbox_bytes = 0  # payload bytes posted and not yet taken by the machine
        self._room = anyio.Event()
        self._stopping = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._epochs: dict[int, _Epoch] = {}
        self._backlog: deque[cx.LinkFact] = deque()
        self.done = anyio.Event()

    def __repr__(self) -> str:
        return f"<ConnectionRuntime {self.machine!r}>"

    # ---- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until the machine finishes or :meth:`stop` is called."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                await self.driver.run(self._execute)
            finally:
                for number in list(self._epochs):
                    self._drop(number)
                tg.cancel_scope.cancel()
                self.done.set()
        self._tg = None

    def stop(self) -> None:
        self.driver.close()
        self._stopping = True
        self._room.set()

    async def post(self, inp: Input) -> bool:
        return await self.driver.post(inp)

    def post_nowait(self, inp: Input) -> bool:
        return self.driver.post_nowait(inp)

    def fact(self, item: cx.LinkFact) -> None:
        """Post a transport fact without waiting (behind a full inbox it joins the backlog, in order).

        For facts reported on the runtime's own task; dropped when the driver already stopped.
        """
        if not self._backlog:
            try:
                if self.driver.post_nowait(item):
                    self.inbox_bytes += payload_size(item)
                return
            except anyio.WouldBlock:
                pass
        if self._tg is None:
            return
        self._backlog.append(item)
        if len(self._backlog) == 1:
            self._tg.start_soon(self._drain)

    async def deliver(self, item: cx.LinkFact) -> None:
        """Post a transport fact a link read, waiting while the inbox is full, in items or in bytes (the
        back-pressure)."""
        size = payload_size(item)
        while self.inbox_bytes and self.inbox_bytes + size > INBOX_BYTES and not self._stopping:
            if self._room.is_set():
                self._room = anyio.Event()
            await self._room.wait()
        await self._post_counted(item, size)

    async def _post_counted(self, item: cx.LinkFact, size: int) -> bool:
        self.inbox_bytes += size
        posted = False
        try:
            posted = await self.driver.post(item)
        finally:
            if not posted:
                self._release(size)
        return posted

    def _taken(self, item: Input) -> None:
        """The machine took ``item`` from the inbox: its payload no longer counts."""
        size = payload_size(item)
        if size:
            self._release(size)

    def _release(self, size: int) -> None:
        self.inbox_bytes -= size
        self._room.set()

    async def _drain(self) -> None:
        """Post the backlog in order; one task at a time (started by :meth:`fact` on the first item)."""
        while self._backlog:
            item = self._backlog[0]
            if not await self._post_counted(item, payload_size(item)):
                self._backlog.clear()  # the driver stopped: nothing will read them
                return
            self._backlog.popleft()

    # ---- dispatching orders ---------------------------------------------------------------------

    async def _execute(self, out: Output) -> None:
        if isinstance(out, cx.LinkOrder):
            await self._link_order(out.epoch, out.order)
        elif isinstance(out, cx.DropLink):
            self._drop(out.epoch)
        elif isinstance(out, Note):
            log.log(_LOG_LEVEL.get(out.level, logging.DEBUG), "%s", out.text)
        else:
            self.outcomes(out)

    def _epoch(self, number: int) -> _Epoch:
        epoch = self._epochs.get(number)
        if epoch is None:
            assert self._tg is not None
            epoch = self._epochs[number] = _Epoch(self, number, self._tg)
            for old in [n for n in self._epochs if n < number - 1]:
                self._drop(old)
        return epoch

    def link_times(self, number: int) -> LinkTimes | None:
        """How long the opening of link epoch ``number`` took, phase by phase (None: no such epoch now)."""
        epoch = self._epochs.get(number)
        return None if epoch is None else epoch.times

    def _drop(self, number: int) -> None:
        epoch = self._epochs.pop(number, None)
        if epoch is not None:
            epoch.drop()

    async def _link_order(self, number: int, order: Output) -> None:
        epoch = self._epoch(number)
        kind = next((k for k in _DRIVERS if isinstance(order, k.ORDERS)), None)
        if kind is None:
            log.debug("runtime: ignored order %s", type(order).__name__)
            return
        driver = epoch.drivers.get(kind)
        if driver is None:
            driver = epoch.drivers[kind] = kind(epoch)
        await driver.execute(order)
