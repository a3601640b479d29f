"""MemoryHub: the in-memory hub behind the public clients (``transport=MemoryHub()``).

Theory of operation
-------------------
Pass a :class:`MemoryHub` as ``transport=`` to :class:`~thalovant.ThalovantClient`,
:class:`~thalovant.AsyncThalovantClient`, either agent, or :func:`thalovant.cli.main`: the client
then runs its real core (the :class:`~thalovant.core.client.connection.Connection` machine with the
handshake, the encryption, the correlator and the reconnect policy) against a
:class:`~thalovant.testing.hub.FakeHub` in the same process. Only the network is replaced: each
transport order the machine gives (open a WebSocket, send a frame, an HTTP request, an MQTT publish)
is answered in memory by a :class:`~thalovant.testing.transport.FakeTransport`, which emulates the
hub's WebSocket, HTTP polling and MQTT endpoints. The client's own protocol choice decides which one.

When a client starts it calls :meth:`MemoryHub.attach` with its connection config: the hub is built
then (unless one was given), knowing that client's password, pre-shared key and access key, so any
identity works. The shell binds a function with :meth:`MemoryHub.bind` that runs hub actions on the
client's event loop: :meth:`push`, :meth:`drop_link`, :meth:`close_link`, :meth:`restart` and
:meth:`corrupt_next` may be called from any thread (a test, a handler's worker thread) and take effect
before they return.

This module is pure (no IO, no threads, no clock): time is the client's event loop's, real or
virtual (trio's ``MockClock``). One client at a time; the hub, its counters and its pinned keys
survive from one client to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from returns.result import Success

from thalovant.core.bus.binary import ThalovantBinary, binary_message, binary_of, outgoing_binary
from thalovant.core.client.connection import ConnectionConfig
from thalovant.core.handshake.noise import derive_psk
from thalovant.core.wire.message import BusMessage
from thalovant.testing.echo import Behaviour
from thalovant.testing.hub import FakeHub
from thalovant.testing.transport import FakeTransport

__all__ = ["HubAction", "MemoryHub"]

#: Runs one hub action where the attached client lives (bound by the shell; None: call it here).
HubAction = Callable[[Callable[[], None]], None]

_NODE_ID = "fakehub:0.0.0.0"


class MemoryHub:
    """An in-memory hub for ``transport=`` (see the module docstring).

    Args:
        hub: a ready :class:`FakeHub` (e.g. one that knows another password, to test a refusal).
            Default: built when the first client attaches, with that client's credentials.
        generation: 1 (the legacy handshake of hub 4.x) or 3 (hub 5.x Noise; the client needs a password).
        behaviours: utterance text (lower case) -> scripted answer (see :class:`FakeHub`).
        denied_types: bus message types the hub refuses with ``hive.policy.denied`` (hub 5.x style).
        refused_kinds: frame kinds (``"query"``, ``"broadcast"``, ``"propagate"``, ``"escalate"``) the client has
            no grant for: the hub closes the link with 4003 ``"QUERY is not allowed for this client"`` (hub 5.x;
            over HTTP it just drops the client). The hub does not act on the refused frame.
        access_key: the key the hub accepts (default: the attaching client's; another one tests a refusal).

    Attributes:
        hub: the :class:`FakeHub` (None until a client attached, unless given).
        transport: the current client's :class:`FakeTransport` (None before the first attach).
        attached: how many clients attached so far.
    """

    def __init__(
        self,
        hub: FakeHub | None = None,
        *,
        generation: int = 1,
        behaviours: Mapping[str, Behaviour] | None = None,
        denied_types: Iterable[str] = (),
        refused_kinds: Iterable[str] = (),
        access_key: str | None = None,
    ) -> None:
        if generation not in (1, 3):
            raise ValueError("generation must be 1 or 3")
        self.hub = hub
        self._generation = generation
        self._behaviours = dict(behaviours or {})
        self._denied = tuple(denied_types)
        self._refused = frozenset(refused_kinds)
        self._access_key = access_key
        self.transport: FakeTransport | None = None
        self.attached = 0
        self._run: HubAction | None = None

    def __repr__(self) -> str:
        return f"<MemoryHub attached={self.attached} {self.hub!r}>"

    # ---- the client's side (called by the shell) ------------------------------------------------------

    def attach(self, config: ConnectionConfig) -> FakeTransport:
        """A client with ``config`` starts: the transport that answers its orders (builds the hub if needed).

        Raises:
            ValueError: ``generation=3`` and the client has no password (the Noise handshake needs one).
        """
        if self.hub is None:
            self.hub = self._build(config)
            self.hub.refused_kinds = self._refused
        known = self._access_key if self._access_key is not None else config.access_key
        self.transport = FakeTransport(self.hub, protocol=config.protocol, useragent=config.useragent, access_key=known)
        self.attached += 1
        return self.transport

    def _build(self, config: ConnectionConfig) -> FakeHub:
        password, crypto_key = config.password, config.crypto_key
        if self._generation == 3:
            if not password:
                raise ValueError("a generation 3 MemoryHub needs a client with a password")
            return FakeHub(
                password=password,
                generation=3,
                noise_psk=derive_psk(password, _NODE_ID),
                hub_version="5",
                node_id=_NODE_ID,
                behaviours=self._behaviours,
                denied_types=self._denied,
            )
        return FakeHub(
            password=password,
            crypto_key=crypto_key,
            hub_version="4",
            node_id=_NODE_ID,
            behaviours=self._behaviours,
            denied_types=self._denied,
        )

    def bind(self, run: HubAction | None) -> None:
        """Run later hub actions through ``run`` (the attached client's event loop); None unbinds."""
        self._run = run

    def _act(self, action: Callable[[], None]) -> None:
        run = self._run
        if run is None:
            action()
        else:
            run(action)

    # ---- the hub's side (any thread) ----------------------------------------------------------------

    def push(
        self, event_type: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        """The hub sends a bus event to the connected client (HTTP clients get it at their next poll).

        Nothing happens when no client is connected.
        """

        def action() -> None:
            if self.transport is not None:
                self.transport.push(event_type, dict(data or {}), dict(context or {}))

        self._act(action)

    def push_binary(
        self, data: bytes, kind: str | int = "tts_audio", metadata: Mapping[str, Any] | None = None
    ) -> None:
        """The hub sends one BINARY frame (a TTS clip by default) to the connected client; nothing if none is.

        Raises:
            ThalovantArgumentError: a bad ``kind`` or ``metadata`` (as for a client's ``send_binary``).
        """
        frame = binary_message(outgoing_binary(data, kind, metadata, max_bytes=1024**3))

        def action() -> None:
            if self.transport is not None:
                self.transport.push_frame(frame)

        self._act(action)

    def drop_link(self) -> None:
        """The network dies under the client's link (it reconnects when its policy allows).

        WebSocket and MQTT clients notice at once; an HTTP client when its next request is refused
        ("Client is not connected"), as with a real hub.
        """
        self._act(lambda: self.transport.drop_link() if self.transport is not None else None)

    def close_link(self, code: int = 1000, reason: str = "") -> None:
        """The hub closes the client's link with ``code`` (a WebSocket close code; MQTT sees rc 7)."""
        self._act(lambda: self.transport.close_link(code, reason) if self.transport is not None else None)

    def restart(self, *, new_key: bool = False, keep_pins: bool = False) -> None:
        """The hub process restarts: connections and pinned keys are forgotten, the link dies.

        Args:
            new_key: the hub comes back with a new Noise static key (a client that pinned the old one
                stops with ``ThalovantHubKeyChangedError``).
            keep_pins: the hub keeps the client keys it pinned (as hub 5.x does: they live in its database).
        """

        def action() -> None:
            if self.hub is not None:
                self.hub.restart(new_key=new_key, keep_pins=keep_pins)
            if self.transport is not None:
                self.transport.drop_link()

        self._act(action)

    def corrupt_next(self, count: int = 1) -> None:
        """Garble the next ``count`` frames the hub sends (the client cannot decrypt them)."""
        self._act(lambda: self.hub.corrupt_next(count) if self.hub is not None else None)

    def set_blackhole(self, on: bool) -> None:
        """While on, every transport order vanishes unanswered (a network that swallows everything)."""

        def action() -> None:
            if self.transport is not None:
                self.transport.blackhole = on

        self._act(action)

    # ---- what the hub saw ---------------------------------------------------------------------------

    @property
    def received(self) -> list[BusMessage]:
        """Every bus message the hub got, in order (after hub 4.x's session rewrite)."""
        return list(self.hub.received) if self.hub is not None else []

    @property
    def received_binary(self) -> list[ThalovantBinary]:
        """Every binary frame the hub got (``send_audio``, ``send_file`` ...), in order."""
        frames = self.hub.frames if self.hub is not None else []
        return [found.unwrap() for found in map(binary_of, frames) if isinstance(found, Success)]

    def received_types(self) -> list[str]:
        """The types of :attr:`received`, in order."""
        return [m.type for m in self.received]

    @property
    def connections(self) -> int:
        """Logical connections the hub opened so far (one per successful link, reconnects included)."""
        return self.hub.connections if self.hub is not None else 0
