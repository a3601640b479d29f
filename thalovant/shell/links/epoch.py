"""What a transport driver sees of the runtime: the endpoint, the IO timeouts, and its link epoch.

The runtime (:mod:`thalovant.shell.runtime`) gives every link epoch one
driver per transport it uses (:mod:`~thalovant.shell.links.ws_driver`,
:mod:`~thalovant.shell.links.http_driver`, :mod:`~thalovant.shell.links.mqtt_driver`).
A driver carries out the machine's transport orders for that epoch and reports
what happened as transport facts. It reaches the runtime only through the
:class:`LinkEpoch` protocol below, so the drivers know nothing of the runtime
or of clients:

* ``spawn(fn, *args)`` runs ``fn`` in a task that is cancelled when the epoch
  is dropped (a task spawned after the drop never starts);
* ``deliver(inp)`` hands one transport fact to the machine, tagged with the
  epoch, and waits while the machine's inbox is full: reader tasks report
  what they read with it, so a hub that sends faster than the machine handles
  is pushed back by TCP (the reader stops reading);
* ``fact(inp)`` does the same without waiting, for facts reported on the
  runtime's own task (``execute``), which must never wait for the inbox it
  empties; it never raises;
* ``times`` is where the driver records the link's opening, phase by phase
  (:class:`~thalovant.shell.links.dial.LinkTimes`; the dial fills it while it is
  current, the driver marks the hub's admission).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from thalovant.core.links.liveness import DEFAULT_LIVENESS, LivenessConfig
from thalovant.core.links.proxy import ProxyPolicy
from thalovant.core.machine import Input, Output
from thalovant.shell.links.dial import LinkTimes

__all__ = ["Endpoint", "LinkDriver", "LinkEpoch", "Timeouts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where the transport connects (from the identity). Holds the broker password: no repr.

    ``proxy`` is the WebSocket/HTTP links' proxy policy (None: the environment at each dial; MQTT never uses one).
    """

    host: str
    port: int
    tls: ssl.SSLContext | None = field(default=None, repr=False)
    server_hostname: str | None = None
    mqtt_username: str | None = field(default=None, repr=False)
    mqtt_password: str | None = field(default=None, repr=False)
    proxy: ProxyPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """The IO bounds of the drivers; ``liveness`` is the MQTT connection's (the WebSocket's is in its machine)."""

    connect: float = 10.0
    send: float = 10.0
    http_request: float = 10.0
    liveness: LivenessConfig | None = DEFAULT_LIVENESS


class LinkEpoch(Protocol):
    """One link epoch, as the runtime lends it to its drivers."""

    @property
    def number(self) -> int: ...

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def timeouts(self) -> Timeouts: ...

    @property
    def times(self) -> LinkTimes:
        """Where the drivers record how long this link's opening took (:mod:`~thalovant.shell.links.dial`)."""

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``fn(*args)`` in a task of this epoch (cancelled when the epoch is dropped)."""

    def fact(self, fact: Input) -> None:
        """Report a transport fact of this epoch without waiting (dropped once the runtime stopped)."""

    async def deliver(self, fact: Input) -> None:
        """Report a transport fact of this epoch, waiting while the machine's inbox is full."""


class LinkDriver(Protocol):
    """One transport's work for one epoch: carries out the orders listed in ``ORDERS``."""

    ORDERS: ClassVar[tuple[type[Output], ...]]

    async def execute(self, order: Output) -> None:
        """Carry out one order, on the runtime's driver task (slow work goes to ``epoch.spawn``)."""
