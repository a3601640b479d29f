"""InMemoryHubSession: a whole client-hub exchange in a few lines, with no hub and no network.

Theory of operation
-------------------
The facade wires the real client machine (:class:`~thalovant.core.client.connection.Connection`)
to a :class:`~thalovant.testing.hub.FakeHub` through a
:class:`~thalovant.testing.transport.FakeTransport`, on a
:class:`~thalovant.testing.transport.VirtualClock`. Every method feeds one
input, lets both sides settle (``pump``) and, where it waits for an answer,
ticks the client at its deadlines on virtual time (``run_until``), so a
10-second ask timeout takes microseconds. Every non-transport output ever
produced is kept in :attr:`InMemoryHubSession.outputs`.

With ``record=True`` the client is a :class:`~thalovant.testing.replay.RecordingConnection`
and :meth:`InMemoryHubSession.trace` returns a cassette that
:func:`~thalovant.testing.replay.replay_connection` replays.

The default identity is a throwaway one made up for tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.bus.outbound import utterance_message
from thalovant.core.client import connection as cx
from thalovant.core.client import correlate as corr
from thalovant.core.machine import Entropy, Input, Machine, Output
from thalovant.core.wire.message import BusMessage
from thalovant.testing.echo import counting_entropy
from thalovant.testing.hub import FakeHub
from thalovant.testing.replay import RecordingConnection
from thalovant.testing.transport import FakeTransport, VirtualClock, pump, run_until

__all__ = ["THROWAWAY_ACCESS_KEY", "InMemoryHubSession", "noise_psk_for"]

#: A made-up access key: never valid on any real hub.
THROWAWAY_ACCESS_KEY = "thalovant0testing0access0key0000"


def noise_psk_for(password: str) -> bytes:
    """A cheap stand-in for the Argon2id psk (spec §7.3) shared by the fake hub and the client."""
    return hashlib.sha256(b"thalovant.testing/noise-psk:" + password.encode("utf-8")).digest()


class InMemoryHubSession:
    """A Connection and a FakeHub, already wired together on virtual time.

    Args:
        protocol: "wss", "https" or "mqtt".
        password / crypto_key: the client's credentials (the hub gets the same unless ``hub`` is given).
        generation: 1 (legacy handshake) or 3 (Noise; needs a password).
        hub: a pre-built hub (e.g. with another password, to test a refusal).
        record: record every step (see :meth:`trace`).
        hub_access_key: the key the hub knows (default: the client's; another one tests a refusal).
        entropy: the client's entropy (deterministic by default).
        **config: more ``ConnectionConfig`` fields (``queue_timeout``, ``reconnect``, ...).

    Attributes:
        connection, hub, transport, clock: the parts. ``outputs``: every non-transport output.
    """

    def __init__(
        self,
        *,
        protocol: cx.Protocol = "wss",
        password: str | None = None,
        crypto_key: str | None = None,
        generation: int = 1,
        hub: FakeHub | None = None,
        record: bool = False,
        entropy: Entropy | None = None,
        useragent: str = "FakeClient/1.0",
        access_key: str = THROWAWAY_ACCESS_KEY,
        session_id: str = "fake-session",
        hub_access_key: str | None = None,
        **config: Any,
    ) -> None:
        if password is None and crypto_key is None:
            raise ValueError("give a password, a crypto_key or both")
        psk = noise_psk_for(password) if generation == 3 and password is not None else None
        if psk is not None:
            static = hashlib.sha256(b"thalovant.testing/client-static:" + session_id.encode()).digest()
            config.setdefault("v3_options", (("psk", psk), ("static_key", static)))
            config.setdefault("auth_encoding", "percent")
        if protocol == "mqtt":
            config.setdefault("mqtt_topic_prefix", "hivemind/fake-hub")
        self.config = cx.ConnectionConfig(
            protocol=protocol,
            useragent=useragent,
            session_id=session_id,
            access_key=access_key,
            password=password,
            crypto_key=crypto_key,
            **config,
        )
        self.hub = hub or FakeHub(
            password=password,
            crypto_key=crypto_key,
            generation=generation,
            noise_psk=psk,
            hub_version="5" if generation == 3 else "4",
        )
        known = access_key if hub_access_key is None else hub_access_key
        self.transport = FakeTransport(self.hub, protocol=protocol, useragent=useragent, access_key=known)
        self.clock = VirtualClock()
        source = entropy or counting_entropy(b"fake-client:" + session_id.encode())
        self.recording: RecordingConnection | None = None
        self.machine: Machine[Input]
        if record:
            self.recording = RecordingConnection(
                config=self.config, entropy=source, note="throwaway identity made up by thalovant.testing"
            )
            self.connection = self.recording.connection
            self.machine = self.recording
        else:
            self.connection = cx.Connection(config=self.config, entropy=source)
            self.machine = self.connection
        self.outputs: list[Output] = []
        self._next_ref = 0

    def __repr__(self) -> str:
        return f"<InMemoryHubSession {self.config.protocol} now={self.clock.now} {self.connection!r}>"

    # ---- driving -------------------------------------------------------------------------------

    def feed(self, inp: Input) -> list[Output]:
        """Feed one input at the current virtual time and settle; returns the new outputs."""
        got = pump(self.machine, self.transport, self.machine.handle(inp, now=self.clock.now), now=self.clock.now)
        self.outputs += got
        return got

    def settle(self) -> list[Output]:
        """Deliver whatever the transport holds (e.g. after :meth:`push` or :meth:`drop_link`)."""
        got = pump(self.machine, self.transport, now=self.clock.now)
        self.outputs += got
        return got

    def run(self, seconds: float, *, stop: Callable[[list[Output]], bool] | None = None) -> list[Output]:
        """Let ``seconds`` of virtual time pass (ticking at every deadline), or until ``stop(new outputs)``."""
        base = len(self.outputs)

        def check(new: list[Output]) -> bool:
            self.outputs[base:] = new  # so outcome() / ask_result() see outputs as they come
            return stop is not None and stop(new)

        got = run_until(self.machine, self.transport, self.clock, self.clock.now + seconds, stop=check)
        self.outputs[base:] = got
        return got

    def connect(self, *, timeout: float = 10.0) -> cx.ConnectionState:
        """Connect and wait (virtually) until READY, a terminal state or ``timeout``; returns the state."""
        self.feed(cx.Connect())
        terminal = (cx.ConnectionState.READY, cx.ConnectionState.GAVE_UP, cx.ConnectionState.CLOSED)
        if self.connection.state not in terminal:
            self.run(timeout, stop=lambda _: self.connection.state in terminal)
        return self.connection.state

    def disconnect(self) -> list[Output]:
        """Close the client."""
        return self.feed(cx.Disconnect())

    def new_ref(self) -> int:
        """A fresh send reference."""
        self._next_ref += 1
        return self._next_ref

    def send(self, message: BusMessage, *, timeout: float = 5.0, ask: corr.AskStarted | None = None) -> int:
        """Hand ``message`` to the client (no waiting); returns its ref (see :meth:`outcome`)."""
        ref = self.new_ref()
        self.feed(cx.SendRequested(ref=ref, message=message, deadline=self.clock.now + timeout, ask=ask))
        return ref

    def outcome(self, ref: int) -> cx.SendDone | cx.SendError | None:
        """How send ``ref`` ended so far (None: still pending)."""
        for o in self.outputs:
            if isinstance(o, cx.SendDone | cx.SendError) and o.ref == ref:
                return o
        return None

    def emit(
        self, event_type: str, data: Mapping[str, Any] | None = None, *, timeout: float = 5.0
    ) -> cx.SendDone | cx.SendError | None:
        """Send a bus message and wait (virtually) for its outcome."""
        ref = self.send(BusMessage(type=event_type, data=dict(data or {})), timeout=timeout)
        if self.outcome(ref) is None:
            self.run(timeout + 1.0, stop=lambda _: self.outcome(ref) is not None)
        return self.outcome(ref)

    def start_ask(self, text: str, *, timeout: float = 10.0, request_id: str | None = None) -> str:
        """Send an utterance as an ask (no waiting); returns the ask id (see :meth:`ask_result`)."""
        ref = self.new_ref()
        rid = request_id or f"req-{ref}"
        session = self.config.session_id
        message = utterance_message(text, request_id=rid, session_id=session)
        deadline = self.clock.now + timeout
        started = corr.AskStarted(ask_id=f"ask-{ref}", request_id=rid, session_id=session, deadline=deadline)
        self.feed(cx.SendRequested(ref=ref, message=message, deadline=deadline, ask=started))
        return started.ask_id

    def ask_result(self, ask_id: str) -> corr.AskFinished | corr.AskFailed | None:
        """How ask ``ask_id`` ended so far (None: still running)."""
        for o in self.outputs:
            if isinstance(o, corr.AskFinished | corr.AskFailed) and o.ask_id == ask_id:
                return o
        return None

    def ask(self, text: str, *, timeout: float = 10.0) -> corr.AskFinished | corr.AskFailed:
        """Ask and wait (virtually) until the ask ends; the correlator guarantees it does by its deadline."""
        ask_id = self.start_ask(text, timeout=timeout)
        if self.ask_result(ask_id) is None:
            self.run(timeout + 1.0, stop=lambda _: self.ask_result(ask_id) is not None)
        result = self.ask_result(ask_id)
        if result is None:
            raise AssertionError(f"ask {ask_id} did not end by its deadline")
        return result

    def events(self) -> list[ThalovantEvent]:
        """Every event delivered so far."""
        return [o.event for o in self.outputs if isinstance(o, cx.EventDelivered)]

    # ---- the hub's side --------------------------------------------------------------------------

    def push(self, event_type: str, data: Mapping[str, Any] | None = None) -> list[Output]:
        """The hub sends an event (HTTP clients get it at their next poll: call :meth:`run`)."""
        self.transport.push(event_type, dict(data or {}))
        return self.settle()

    def drop_link(self) -> list[Output]:
        """The network under the current link dies."""
        self.transport.drop_link()
        return self.settle()

    def close_link(self, code: int, reason: str = "") -> list[Output]:
        """The hub closes the current link with ``code``."""
        self.transport.close_link(code, reason)
        return self.settle()

    def trace(self) -> str:
        """The recorded cassette (JSON Lines). Needs ``record=True``."""
        if self.recording is None:
            raise ValueError("this session was not recorded (pass record=True)")
        return self.recording.text()
