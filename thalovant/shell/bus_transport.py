"""Runs a :class:`~thalovant.core.client.bus_connection.BusConnection` over a user's bus-level transport.

Theory of operation
-------------------
``AsyncThalovantClient(identity, transport=<0.4.7 transport>)`` keeps its engine, results, listeners
and exceptions; only the machine and the runtime change (``thalovant.shell.seam``). A
:class:`BusRuntime` is the :class:`~thalovant.shell.driver.Driver` of the BusConnection plus:

* one worker task that runs the machine's orders (``OpenBus``, ``EmitBus``, ``ProbeBus``,
  ``CloseBus``) one at a time, in order, each in a worker thread (the duck type's calls block), each
  bounded (``connect``: the connect timeout; ``emit_event`` and ``is_connected``: the send timeout;
  ``disconnect``: :data:`CLOSE_WAIT`); a call past its bound is abandoned in its thread;
* the handler book (:mod:`thalovant.shell.bus_handlers`): messages a transport hands to a bridge are
  queued without blocking and posted into the machine's inbox in arrival order by one task;
* before the worker reports that ``emit_event`` returned, it posts every message that arrived
  meanwhile, so a reply fired from inside ``emit_event`` reaches the correlator before ``BusEmitted``;
* delivery is synchronous for the thread that hands a message over, as it was in 0.4.7: a bridge
  called on a thread of the transport's own with a message of a type a listener or an ``on()``
  subscription takes waits, at most :data:`DELIVER_WAIT`, until the machine took the message
  (``BusTaken``) and every subscription that accepted *that message's* event ran its handler. It
  never waits on the loop's thread, inside the client's own calls to the transport (``emit_event``
  firing handlers), for :mod:`thalovant.transport`'s adapters (a network thread: nothing to keep in
  step with), nor while the client calls ``on_mycroft``/``remove_mycroft`` (:meth:`BusRuntime._holding`
  lets waiting threads go first: a transport may hold its lock while it delivers).

Which exceptions mean what (``emit_event``): a ``TimeoutError`` (the call ran past its bound too) means
the transport may have taken the message: it fails and is never sent again; a ``ConnectionError``,
``OSError`` or ``RuntimeError`` means it was refused before it left: the connection is re-opened and
the message sent again once; anything else fails that one send. From ``connect``: an authentication
error or a ``ValueError``/``TypeError`` is final; anything else is retried by the reconnect policy.
Error texts are cut to one line and the identity's secrets are replaced by ``***``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from thalovant.core.client import connection as cx
from thalovant.core.client import correlate as corr
from thalovant.core.client.bus_connection import BusConnection
from thalovant.core.client.bus_events import (
    BusClosed,
    BusConfig,
    BusEmitFailed,
    BusEmitted,
    BusFact,
    BusOpened,
    BusOpenFailed,
    BusProbed,
    BusReceived,
    BusTaken,
    CloseBus,
    EmitBus,
    OpenBus,
    ProbeBus,
)
from thalovant.core.doctor_report import scrub_text
from thalovant.core.errors import LocalProtocolError, ThalovantAuthenticationError
from thalovant.core.machine import Input, Note, NoteLevel, Output
from thalovant.core.trace import RecordingEntropy
from thalovant.core.wire.message import BusMessage
from thalovant.shell.bus_handlers import HandlerBook
from thalovant.shell.driver import Driver, StepRecorder
from thalovant.shell.links.epoch import Timeouts
from thalovant.shell.listeners import Listener
from thalovant.shell.runtime import Outcomes

__all__ = ["CLOSE_WAIT", "DELIVER_WAIT", "MAX_INBOUND", "BusBackend", "BusRuntime"]

log = logging.getLogger("thalovant")

#: Seconds ``disconnect()`` may take before the client stops waiting for it.
CLOSE_WAIT = 2.0
#: Seconds a transport's thread may wait for the client to deliver one message (see the module docstring).
DELIVER_WAIT = 5.0
#: Messages from the transport that may wait for the machine; past it the oldest are dropped (counted).
MAX_INBOUND = 10_000
_JOBS = 64  # the machine has at most one connect, one emit, one probe and one close out per attempt
_LOG_LEVEL = {NoteLevel.DEBUG: logging.DEBUG, NoteLevel.INFO: logging.INFO, NoteLevel.WARNING: logging.WARNING}
_Job = OpenBus | EmitBus | ProbeBus | CloseBus


class BusRuntime:
    """Drives a BusConnection over a bus-level transport (see the module docstring).

    Args:
        machine: the BusConnection.
        book: the handler book of the transport (``book.transport`` is the transport).
        outcomes: receives every user-facing output, on the event loop thread.
        timeouts: ``connect`` bounds ``connect()``; ``send`` bounds ``emit_event`` and ``is_connected``.
        secrets: texts never to show in an error (the identity's secrets).
    """

    def __init__(
        self,
        machine: BusConnection,
        book: HandlerBook,
        *,
        outcomes: Outcomes,
        timeouts: Timeouts,
        secrets: Sequence[str] = (),
    ) -> None:
        self.machine = machine
        self.book = book
        self.transport = book.transport
        self.outcomes = outcomes
        self.timeouts = timeouts
        self._secrets = sorted(set(secrets), key=len, reverse=True)
        self.driver = Driver(machine, stop_when=lambda: machine.finished)
        self.done = anyio.Event()
        send: MemoryObjectSendStream[_Job]
        receive: MemoryObjectReceiveStream[_Job]
        send, receive = anyio.create_memory_object_stream[_Job](_JOBS)
        self._jobs_in, self._jobs = send, receive
        self._inbound: deque[tuple[BusMessage, threading.Event | None]] = deque()
        self._lock = threading.Lock()  # guards _inbound and _wake_pending (transport threads append)
        self._wake_pending = False
        self._wake = anyio.Event()
        self._drain_lock = anyio.Lock()
        self._portal: BlockingPortal | None = None
        self._loop_thread: int | None = None
        self._open_epoch: int | None = None
        self._inside: set[int] = set()  # threads running one of our calls to the transport
        self._receipts: dict[int, threading.Event] = {}  # guarded by _lock (written on the loop only)
        self._next_receipt = 0
        self._waiting: set[threading.Event] = set()  # guarded by _lock: every transport thread that waits now
        self._registering = 0  # guarded by _lock: calls to on_mycroft/remove_mycroft running (see _holding)
        self._stopped = False  # guarded by _lock: set for good when the runtime ends
        self._tg: anyio.abc.TaskGroup | None = None
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<BusRuntime {self.machine!r} transport={type(self.transport).__name__}>"

    # ---- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until the machine finishes or :meth:`stop` is called; then remove every handler."""
        self._loop_thread = threading.get_ident()
        try:
            async with BlockingPortal() as portal, anyio.create_task_group() as tg:
                self._portal, self._tg = portal, tg
                tg.start_soon(self._work)
                tg.start_soon(self._pump_inbound)
                self.book.attach(self._receive, expecting=lambda: bool(self._receipts), hold=self._holding)
                try:
                    await self.driver.run(self._execute)
                finally:
                    self.book.detach()
                    self._portal, self._tg = None, None
                    tg.cancel_scope.cancel()
        finally:
            self._loop_thread = None
            self._release_all()
            self.done.set()

    def _release_all(self) -> None:
        """Nobody delivers any more: let every waiting transport thread go."""
        with self._lock:
            self._stopped = True
            self._inbound.clear()
            self._receipts.clear()
        self._let_go_all()

    def _let_go_all(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, set()
        for done in waiting:
            done.set()

    def _let_go(self, done: threading.Event) -> None:
        with self._lock:
            self._waiting.discard(done)
        done.set()

    @contextmanager
    def _holding(self) -> Iterator[None]:
        """Around ``on_mycroft``/``remove_mycroft``: waiting transport threads go first, new ones never wait
        (one may hold the transport's lock those calls take, waiting for the loop that makes them)."""
        with self._lock:
            self._registering += 1
        try:
            self._let_go_all()
            yield
        finally:
            with self._lock:
                self._registering -= 1

    def stop(self) -> None:
        self.driver.close()

    async def post(self, inp: Input) -> bool:
        self._before(inp)
        return self._after(inp, await self.driver.post(inp))

    def post_nowait(self, inp: Input) -> bool:
        self._before(inp)
        return self._after(inp, self.driver.post_nowait(inp))

    def _before(self, inp: Input) -> None:
        if isinstance(inp, cx.SendRequested) and inp.ask is not None:
            self.book.ask_started(inp.ask.ask_id)  # the names are registered before the message can leave

    def _after(self, inp: Input, posted: bool) -> bool:
        if not posted and isinstance(inp, cx.SendRequested) and inp.ask is not None:
            self.book.ask_ended(inp.ask.ask_id)  # the machine never saw it: it will never end there
        return posted

    async def _execute(self, out: Output) -> None:
        if isinstance(out, OpenBus | EmitBus | ProbeBus | CloseBus):
            self._jobs_in.send_nowait(out)  # bounded by the machine (see _JOBS); WouldBlock is a bug
        elif isinstance(out, corr.AskFinished | corr.AskFailed):
            self.book.ask_ended(out.ask_id)  # before the caller hears of it (a fake may check)
            self.outcomes(out)
        elif isinstance(out, BusTaken):
            self._taken(out.receipt)
        elif isinstance(out, Note):
            log.log(_LOG_LEVEL.get(out.level, logging.DEBUG), "%s", out.text)
        else:
            self.outcomes(out)

    # ---- messages from the transport (any thread) -------------------------------------------------

    def _receive(self, message: BusMessage) -> None:
        here = threading.get_ident()
        on_loop = here == self._loop_thread
        wait = not on_loop and here not in self._inside and self.book.waits and self.book.listened(message.type)
        done = threading.Event() if wait else None
        with self._lock:
            if self._stopped:
                return
            if self._registering:
                done = None
            elif done is not None:
                self._waiting.add(done)
            if len(self._inbound) >= MAX_INBOUND:
                _, lost = self._inbound.popleft()
                if lost is not None:
                    self._waiting.discard(lost)
                    lost.set()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("the transport delivers faster than the client reads: %d dropped", self.dropped)
            self._inbound.append((message, done))
            ring = not self._wake_pending
            self._wake_pending = True
        if ring and on_loop:
            self._wake.set()
        elif ring and not self._ring_from_thread():
            self._release_all()
            return
        if done is not None:
            done.wait(DELIVER_WAIT)
            self._let_go(done)

    def _ring_from_thread(self) -> bool:
        portal = self._portal
        if portal is None:
            return False
        try:
            portal.start_task_soon(self._ring)
        except RuntimeError:  # the client is stopping: nobody reads any more
            return False
        return True

    async def _ring(self) -> None:
        self._wake.set()

    async def _pump_inbound(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self._drain()

    async def _drain(self) -> None:
        """Post every queued message into the machine's inbox, oldest first."""
        async with self._drain_lock:
            while True:
                with self._lock:
                    if not self._inbound:
                        self._wake_pending = False
                        return
                    message, done = self._inbound.popleft()
                self._next_receipt += 1  # every message: BusTaken then ends what its publishing accepted
                receipt = self._next_receipt
                if done is not None and not done.is_set():
                    with self._lock:
                        self._receipts[receipt] = done
                if not await self.driver.post(BusFact(epoch=0, fact=BusReceived(message=message, receipt=receipt))):
                    self._release_all()

    def _taken(self, receipt: int) -> None:
        """The machine is done with message ``receipt``: release its thread once its subscriptions ran."""
        with self._lock:
            done = self._receipts.pop(receipt, None)
        taken, tg = self.book.take(), self._tg  # only this message's (see HandlerBook.took)
        if done is None:
            return
        if not taken or tg is None:
            self._let_go(done)
            return
        tg.start_soon(self._settle, taken, done)

    async def _settle(self, taken: list[tuple[Listener, int]], done: threading.Event) -> None:
        try:
            with anyio.move_on_after(DELIVER_WAIT):
                for listener, count in taken:
                    await listener.settle(count)
        finally:
            self._let_go(done)

    # ---- the transport's blocking calls ------------------------------------------------------------

    async def _work(self) -> None:
        async for job in self._jobs:
            fact = await self._run(job)
            await self.driver.post(BusFact(epoch=job.epoch, fact=fact))

    async def _call(self, fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        with anyio.fail_after(timeout):
            call = functools.partial(self._inside_call, fn, *args)
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)

    def _inside_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on a worker thread, marked so that handlers it fires there never wait."""
        me = threading.get_ident()
        self._inside.add(me)
        try:
            return fn(*args)
        finally:
            self._inside.discard(me)

    def _why(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return scrub_text(text)

    async def _run(self, job: _Job) -> Input:
        if isinstance(job, OpenBus):
            return await self._open(job)
        if isinstance(job, EmitBus):
            return await self._emit(job)
        if isinstance(job, ProbeBus):
            return await self._probe(job)
        if self._open_epoch == job.epoch:
            self._open_epoch = None
            try:
                await self._call(self.transport.disconnect, timeout=CLOSE_WAIT)
            except Exception as exc:
                log.debug("the transport's disconnect() failed: %s", self._why(exc))
        return BusClosed()

    async def _open(self, job: OpenBus) -> Input:
        try:
            await self._call(self.transport.connect, timeout=self.timeouts.connect)
        except ThalovantAuthenticationError as exc:
            return BusOpenFailed(reason=self._why(exc), retryable=False, auth=True)
        except (ValueError, TypeError) as exc:  # a configuration problem: trying again changes nothing
            return BusOpenFailed(reason=self._why(exc), retryable=False)
        except Exception as exc:
            return BusOpenFailed(reason=self._why(exc))
        self._open_epoch = job.epoch
        return BusOpened()

    async def _emit(self, job: EmitBus) -> Input:
        if job.epoch != self._open_epoch:
            return BusEmitFailed(ref=job.ref, reason="the transport is not connected")
        message = job.message.as_dict()
        try:
            await self._call(
                self.transport.emit_event,
                message["type"],
                message["data"],
                message["context"],
                timeout=self.timeouts.send,
            )
        except TimeoutError as exc:  # it may have left: never again
            await self._drain()
            return BusEmitFailed(ref=job.ref, reason=self._why(exc), taken=True)
        except (OSError, RuntimeError) as exc:  # refused before it left (ConnectionError is an OSError)
            await self._drain()
            return BusEmitFailed(ref=job.ref, reason=self._why(exc))
        except Exception as exc:
            await self._drain()
            return BusEmitFailed(ref=job.ref, reason=self._why(exc), link_down=False)
        await self._drain()  # replies fired inside emit_event go in first
        return BusEmitted(ref=job.ref)

    async def _probe(self, job: ProbeBus) -> Input:
        if job.epoch != self._open_epoch:
            return BusProbed(alive=False, reason="the transport is not connected")
        try:
            alive = bool(await self._call(self.transport.is_connected, timeout=self.timeouts.send))
            error = None if alive else await self._call(self.transport.last_error, timeout=self.timeouts.send)
        except Exception as exc:
            return BusProbed(alive=False, reason=self._why(exc))
        reason = self._why(error) if isinstance(error, BaseException) else ""
        return BusProbed(alive=alive, reason=reason or ("" if alive else "the transport is not connected"))


class BusBackend:
    """The engine backend for a bus-level transport (``transport=`` with 0.4.7's duck type).

    Args:
        book: the transport's handler book (shared with the client's :class:`WatchedListeners`).
        timeouts: see :class:`BusRuntime`.
        secrets: see :class:`BusRuntime`.
    """

    def __init__(self, book: HandlerBook, *, timeouts: Timeouts, secrets: Sequence[str] = ()) -> None:
        self.book = book
        self._timeouts = timeouts
        self._secrets = tuple(secrets)

    def __repr__(self) -> str:
        return f"<BusBackend {type(self.book.transport).__name__}>"

    def runtime(
        self,
        config: cx.ConnectionConfig,
        *,
        entropy: Any,
        outcomes: Outcomes,
        recorder: StepRecorder | None,
        recording: RecordingEntropy | None,
    ) -> BusRuntime:
        """A fresh BusConnection with ``config``'s queue and reconnect settings.

        Raises:
            LocalProtocolError: a trace was asked for (a trace records the core's Connection, which a
                bus-level transport replaces).
        """
        if recorder is not None:
            raise LocalProtocolError("trace= records the core connection; a bus-level transport= replaces it")
        bus = BusConfig(reconnect=config.reconnect, queue_timeout=config.queue_timeout, max_queue=config.max_queue)
        machine = BusConnection(config=bus, entropy=entropy)
        return BusRuntime(machine, self.book, outcomes=outcomes, timeouts=self._timeouts, secrets=self._secrets)
