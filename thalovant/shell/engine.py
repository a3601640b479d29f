"""The running half of a client: one runtime, the status its machine reports, and the waits for answers.

``AsyncThalovantClient`` builds messages and raises exceptions; a :class:`ClientEngine`
does everything in between. It starts a :class:`~thalovant.shell.runtime.ConnectionRuntime`
for the client's :class:`~thalovant.core.client.connection.Connection` machine (recording it
when the client was given a trace), keeps what the machine's ``StatusChanged`` outputs say,
posts sends and asks, and waits for the machine's answers through
:class:`~thalovant.shell.results.Results`. It maps no answer to an exception: the client hands
what it returns to :func:`thalovant.shell.outcomes.raise_for`.

The seam of ``transport=`` (``thalovant.shell.seam``). By default the machine is the
``Connection`` over real links. Given an :class:`EngineBackend`, the engine lets it build the
machine and its runtime instead (the ``Connection`` against an in-memory hub, or a ``BusConnection``
over a 0.4.7 bus-level transport); both speak the Connection's user-facing inputs and outputs, so
nothing below changes: the same waits, results, listeners and status.

Deadlines. A send or an ask gets one absolute deadline, computed once here and handed to the
core with the request (for an ask, the same value in ``SendRequested`` and ``AskStarted``). The
core ends an ask by then wherever it is, and a send that is still queued; a send the transport
holds ends when the transport says so. The waits only carry a guard (``shell.results``). The
engine's one clock of its own is :meth:`ClientEngine.settle`, which bounds ``connect()``: the
core has no connect deadline.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any, Protocol

import anyio
import anyio.abc

from thalovant.core.client import connection as cx
from thalovant.core.client import correlate as corr
from thalovant.core.client.health import ThalovantHealth, health_snapshot
from thalovant.core.client.hub_keys import key_stop, kk_refused
from thalovant.core.client.info import PhaseTimes, ThalovantConnectionInfo, connection_info
from thalovant.core.client.plan import ClientPlan, MqttPlan
from thalovant.core.client.speech_audio import synth_message
from thalovant.core.errors import ThalovantConnectionError
from thalovant.core.machine import Entropy, Input, Output
from thalovant.core.trace import RecordingEntropy
from thalovant.core.wire.message import BusMessage, HiveMessage
from thalovant.shell.driver import StepRecorder
from thalovant.shell.links.epoch import Endpoint, Timeouts
from thalovant.shell.links.http import split_url
from thalovant.shell.listeners import ListenerRegistry
from thalovant.shell.outcomes import ConnectEnded, error_for
from thalovant.shell.recording import TraceSink
from thalovant.shell.results import Bell, Results, Slot, ask_settled
from thalovant.shell.runtime import ConnectionRuntime, Outcomes

__all__ = ["CLOSE_GRACE", "ClientEngine", "EngineBackend", "EngineRuntime", "endpoint_for"]

log = logging.getLogger("thalovant")

#: Seconds ``stop()`` waits for the machine to close its link politely.
CLOSE_GRACE = 2.0
#: Seconds the ``speak:synth`` of a synth ask may take to leave (``ask(..., synth=True)``).
SYNTH_SEND_SECONDS = 5.0


def endpoint_for(plan: ClientPlan, tls: Callable[[], ssl.SSLContext]) -> Endpoint:
    """Where the runtime dials for ``plan``; ``tls()`` makes the TLS context when the plan needs one.

    Raises:
        LocalProtocolError: the plan's URL is not a usable ``http(s)``/``ws(s)`` URL.
    """
    if isinstance(plan, MqttPlan):
        context = tls() if plan.tls else None
        return Endpoint(
            host=plan.host, port=plan.port, tls=context, mqtt_username=plan.username, mqtt_password=plan.password
        )
    parts = split_url(plan.url)
    return Endpoint(host=parts.host, port=parts.port, tls=tls() if parts.tls else None)


class EngineRuntime(Protocol):
    """What the engine needs of a runtime (:class:`~thalovant.shell.runtime.ConnectionRuntime` is one)."""

    @property
    def done(self) -> anyio.Event: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...

    async def post(self, inp: Input) -> bool: ...

    def post_nowait(self, inp: Input) -> bool: ...


class EngineBackend(Protocol):
    """The seam of ``transport=``: builds the machine and the runtime instead of the network stack.

    The default (no backend) is the :class:`~thalovant.core.client.connection.Connection` machine over
    real links. A backend's machine speaks the Connection's user-facing vocabulary (``Connect``,
    ``SendRequested`` ... in; ``StatusChanged``, ``SendDone``, the correlator's answers ... out), so the
    waits, listeners and exceptions of the client do not change (``thalovant.shell.seam``).
    """

    def runtime(
        self,
        config: cx.ConnectionConfig,
        *,
        entropy: Any,
        outcomes: Outcomes,
        recorder: StepRecorder | None,
        recording: RecordingEntropy | None,
    ) -> EngineRuntime:
        """A fresh machine for ``config`` (drawing from ``entropy``) in a runtime that reports to ``outcomes``."""


class ClientEngine:
    """Runs one client's machine (see the module docstring).

    Args:
        config: the machine's config (from the client's plan).
        endpoint: where the runtime dials (unused with a ``backend``).
        timeouts: the runtime's IO timeouts.
        listeners: the client's listeners (events go there; they fail when the client gives up).
        entropy: random bytes for the machine.
        trace: records the machine's steps, if given.
        backend: builds the machine and its runtime instead (``transport=``, :class:`EngineBackend`).
    """

    def __init__(
        self,
        *,
        config: cx.ConnectionConfig,
        endpoint: Endpoint | None,
        timeouts: Timeouts,
        listeners: ListenerRegistry,
        entropy: Entropy,
        trace: TraceSink | None = None,
        backend: EngineBackend | None = None,
    ) -> None:
        self.config = config
        self._endpoint = endpoint
        self._timeouts = timeouts
        self._listeners = listeners
        self._entropy = entropy
        self._trace = trace
        self._backend = backend
        self.results = Results(listeners, self._on_status)
        self.results.on_synth = self._synth
        self.status = cx.ConnectionState.IDLE
        self.detail = ""
        self.generation: int | None = None
        self.epoch = 0
        self.gave_up: cx.StatusChanged | None = None
        self.task_group: anyio.abc.TaskGroup | None = None
        self.runtime: EngineRuntime | None = None
        self._ready: anyio.Event | None = None  # created on the event loop by start()
        self._settled: anyio.Event | None = None
        self._stack: AsyncExitStack | None = None
        self._closed: anyio.Event | None = None  # set when stop() has finished (created by start())
        self.close_grace = CLOSE_GRACE  # stop()'s default limit on the polite goodbye
        self._machine: object = None  # the last runtime's machine, kept for info() after stop()
        self.hub_endpoint = ""  # the hub's pin id, for a key stop's error (thalovant.shell.client_keys)
        self.retries_kk = False  # connect() retries a refused KKpsk0 itself: that give-up ends no listener
        self._times: dict[str, float | None] = {"started_at": None, "connected_at": None, "connect_ms": None}
        self._t0 = 0.0
        self._phases: PhaseTimes | None = None  # the phase times of the link that last became ready
        #: Called with every status the machine reports, after the engine took it (mesh sends watch for refusals).
        self.status_watchers: list[Callable[[cx.StatusChanged], None]] = []

    @property
    def protocol(self) -> str:
        return self.config.protocol

    @property
    def machine(self) -> object:
        """The current (or last) runtime's machine: a ``Connection``, or a bus-level transport's stand-in."""
        return self._machine

    # ---- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the runtime and ask the machine to connect (no-op when running)."""
        if self.runtime is not None:
            return
        self._ready = anyio.Event()
        self._settled = anyio.Event()
        self._closed = anyio.Event()
        self.gave_up = None
        entropy: Any = self._entropy
        recorder = None
        if self._trace is not None:  # record the machine's steps (thalovant.shell.recording)
            entropy = RecordingEntropy(self._entropy)
            recorder = self._trace.begin(self.config)
        recording = entropy if recorder is not None else None
        if self._backend is not None:
            self.runtime = self._backend.runtime(
                self.config, entropy=entropy, outcomes=self.results, recorder=recorder, recording=recording
            )
        else:
            assert self._endpoint is not None, "a ClientEngine without a backend needs an endpoint"
            machine = cx.Connection(config=self.config, entropy=entropy)
            self.runtime = ConnectionRuntime(
                machine,
                endpoint=self._endpoint,
                outcomes=self.results,
                timeouts=self._timeouts,
                recorder=recorder,
                entropy=recording,
            )
        stack = AsyncExitStack()
        self.task_group = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        self._machine = getattr(self.runtime, "machine", None)
        self._times = {"started_at": time.time(), "connected_at": None, "connect_ms": None}  # wall clock, for info()
        self._t0 = anyio.current_time()
        self._phases = None
        self.task_group.start_soon(self.runtime.run)
        await self.runtime.post(cx.Connect())

    async def settle(self, timeout: float) -> ConnectEnded | None:
        """Wait until the machine is ready (None) or gave up, at most ``timeout`` seconds: why not ready."""
        assert self._settled is not None, "start() first"
        with anyio.move_on_after(timeout):
            await self._settled.wait()
        return None if self.status is cx.ConnectionState.READY else self.not_connected(timeout)

    def not_connected(self, timeout: float) -> ConnectEnded:
        """Why the machine is not ready (``timeout``: the seconds waited, for the message when it did not give up)."""
        gave_up, stop = self.gave_up, key_stop(self._machine, self.hub_endpoint) if self.gave_up else None
        return ConnectEnded(protocol=self.protocol, timeout=timeout, gave_up=gave_up, detail=self.detail, stop=stop)

    async def stop(self, reason: str, grace: float | None = None, *, keep_waits: bool = False) -> None:
        """Close the link and end every wait with ``reason`` (``keep_waits``: not the listeners' and pending
        sends', for a restart inside ``connect()``). Idempotent.

        A ready session is closed politely (the transport's goodbye), for at most ``grace`` seconds
        (default :attr:`close_grace`) whatever the hub does, the wait for room in the inbox included. A link
        that never became ready (still connecting, or reconnecting) is dropped at once: there is no session to
        say goodbye to, and ``connect()`` closes that way when it fails, so it raises at its own timeout.
        """
        runtime, stack = self.runtime, self._stack
        if runtime is None or stack is None:
            return
        self.runtime = self._stack = None
        if self.status is cx.ConnectionState.READY:
            limit = self.close_grace if grace is None else grace
            with anyio.CancelScope(shield=True), anyio.move_on_after(limit):
                if await runtime.post(cx.Disconnect()):
                    await runtime.done.wait()
        runtime.stop()
        assert self.task_group is not None
        self.task_group.cancel_scope.cancel()
        await stack.aclose()  # the task group must be exited outside any scope opened here
        self.task_group = None
        self.status = cx.ConnectionState.CLOSED
        if not keep_waits:
            self._listeners.fail_all(ThalovantConnectionError(reason))
            self.results.fail_pending(reason)
        if self._closed is not None:
            self._closed.set()

    async def wait_closed(self, timeout: float | None) -> bool:
        """Wait until :meth:`stop` has finished (at most ``timeout`` seconds; None: no limit); whether it has.

        An engine never started counts as closed.
        """
        closed = self._closed
        if closed is None or closed.is_set():
            return True
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            await closed.wait()
        return closed.is_set()

    def _on_status(self, status: cx.StatusChanged) -> None:
        self.status = status.state
        self.detail = status.detail
        self.epoch = status.epoch
        if status.generation is not None:
            self.generation = status.generation
        assert self._ready is not None and self._settled is not None
        if status.state is cx.ConnectionState.READY:
            now = anyio.current_time()
            self._times["connected_at"] = time.time()
            if self._times["connect_ms"] is None:
                self._times["connect_ms"] = round((now - self._t0) * 1000, 1)
            link_times = getattr(self.runtime, "link_times", None)  # a ConnectionRuntime's (not an in-memory one's)
            times = link_times(status.epoch) if link_times is not None else None
            self._phases = times.phases(now) if times is not None else None
            self._ready.set()
            self._settled.set()
            log.info("connected to the hub over %s (protocol v%s)", self.protocol, status.generation)
        elif status.state is cx.ConnectionState.GAVE_UP:
            self.gave_up = status
            self._settled.set()
            error = error_for(self.not_connected(self._timeouts.connect))
            if error is not None and not (self.retries_kk and kk_refused(self._machine)):
                self._listeners.fail_all(error)
        elif status.state is cx.ConnectionState.CONNECTING and self._ready.is_set():
            self._ready = anyio.Event()
            log.warning("link to the hub lost; reconnecting (%s)", status.detail)
        for watcher in tuple(self.status_watchers):
            watcher(status)

    def health(self) -> ThalovantHealth:
        return health_snapshot(
            state=self.status,
            detail=self.detail,
            running=self.runtime is not None,
            protocol=self.protocol,
            generation=self.generation,
            epoch=self.epoch,
            connection=self.info(),
        )

    def info(self) -> ThalovantConnectionInfo:
        """What the connection negotiated and its times (``connection_info()``)."""
        info = connection_info(self._machine, transport=self.protocol, phases=self._phases, **self._times)
        stale = self.runtime is None or info.phase == "unknown"  # closed, or a machine that is not a Connection
        return replace(info, phase=self.status.value) if stale else info

    # ---- requests -------------------------------------------------------------------------------

    async def _post(
        self, message: BusMessage | HiveMessage, deadline: float, ask: corr.AskStarted | None, bell: Bell | None
    ) -> Slot:
        runtime = self.runtime
        if runtime is None:
            raise ThalovantConnectionError("the client is not connected: use 'async with client' or connect()")
        ref, slot = self.results.expect_send(bell)
        await runtime.post(cx.SendRequested(ref=ref, message=message, deadline=deadline, ask=ask))
        return slot

    async def send(self, message: BusMessage | HiveMessage, wait: float) -> Output | None:
        """Send ``message`` (a bus message or a frame); the core's ``SendDone``/``SendError``, or None past the guard.

        Raises:
            ThalovantConnectionError: the engine is not running (the client is not connected).
        """
        deadline = anyio.current_time() + wait
        slot = await self._post(message, deadline, None, None)
        await Results.wait_send(slot, deadline)
        return slot.value

    async def ask(
        self,
        message: BusMessage,
        *,
        ask_id: str,
        session_id: str | None,
        wait: float,
        settle: float = 0.0,
        synth: bool = False,
    ) -> tuple[Output | None, Output | None]:
        """Send an ask's message and wait until the core settled it (``settle``, ``synth``: ``AskStarted``'s).

        Returns:
            What the core said of the send and of the ask (either None if the guard ran out first;
            the ask is then cancelled in the core).

        Raises:
            ThalovantConnectionError: the engine is not running (the client is not connected).
        """
        deadline = anyio.current_time() + wait  # the ask's one deadline: the core ends the ask there
        started = corr.AskStarted(
            ask_id=ask_id,
            request_id=ask_id,
            session_id=session_id,
            msg_type=message.type,
            deadline=deadline,
            settle=settle,
            synth=synth,
        )
        bell = Bell()
        ask_slot = self.results.expect_ask(ask_id, bell)
        send_slot = await self._post(message, deadline, started, bell)
        await Results.wait_ask(send_slot, ask_slot, bell, deadline)
        self.results.forget_ask(ask_id)
        if not ask_settled(send_slot, ask_slot) and ask_slot.value is None and self.runtime is not None:
            # the guard ran out before the core answered: let the core forget the ask
            self.runtime.post_nowait(cx.CancelAsk(ask_id=ask_id))
        return send_slot.value, ask_slot.value

    def _synth(self, wanted: corr.SynthWanted) -> None:
        """Send the ``speak:synth`` a synth ask wants (on the event loop thread; never waits: the ask does)."""
        runtime = self.runtime
        if runtime is None:
            return
        ref, _ = self.results.expect_send()  # the slot goes when the core answers the send
        deadline = anyio.current_time() + SYNTH_SEND_SECONDS
        try:
            posted = runtime.post_nowait(cx.SendRequested(ref=ref, message=synth_message(wanted), deadline=deadline))
        except anyio.WouldBlock:  # a full inbox: the ask ends at its deadline without this clip
            posted = False
            log.warning("could not ask the hub for speech audio: the client's inbox is full")
        if not posted:  # the core never heard of it, so it never answers: nothing may wait for it
            self.results.forget_send(ref)
