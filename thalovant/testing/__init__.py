"""Test without a hub: an in-memory hub, a fake transport and a virtual clock (all pure, no IO).

``thalovant.testing`` lets users (and thalovant's own tests) run the real client
machine, :class:`thalovant.core.client.connection.Connection`, against :class:`FakeHub`
in memory: no sockets, no threads, no real time. See :class:`InMemoryHubSession`
for the few-lines version:

>>> from thalovant.testing import InMemoryHubSession
>>> hub = InMemoryHubSession(protocol="wss", password="a-throwaway-password")
>>> hub.connect()
<ConnectionState.READY: 'ready'>
>>> hub.ask("hello").reply.text
'echo: hello'
>>> _ = hub.drop_link()  # the link died: the client reconnects by itself
>>> hub.connection.state
<ConnectionState.CONNECTING: 'connecting'>
>>> hub.connect(), hub.connection.epoch
(<ConnectionState.READY: 'ready'>, 2)

To run *your application* (the public clients, agents or the CLI) against the same hub, pass a
:class:`MemoryHub` as ``transport=``: ``ThalovantClient(identity, transport=MemoryHub())`` runs the
client's real core in-process, on the event loop's clock (``docs/guides/testing.md``).

The parts: :class:`FakeHub` (the hub's half of the protocol, v1 and v3, with the
harness echo rules), :class:`FakeTransport` and :func:`pump` (WebSocket, HTTP
polling and MQTT emulated in memory), :class:`VirtualClock` and
:func:`run_until` (virtual time), :class:`RecordingConnection` and
:func:`replay_connection` (cassettes of whole client sessions).
"""

from __future__ import annotations

from thalovant.testing.echo import Behaviour, counting_entropy, denial_for, echo_replies
from thalovant.testing.hub import FakeHub, HubFrame
from thalovant.testing.memory import MemoryHub
from thalovant.testing.replay import RecordingConnection, ReplayReport, connection_registry, replay_connection
from thalovant.testing.session import THROWAWAY_ACCESS_KEY, InMemoryHubSession, noise_psk_for
from thalovant.testing.transport import FakeTransport, VirtualClock, pump, run_until

__all__ = [
    "Behaviour",
    "FakeHub",
    "FakeTransport",
    "HubFrame",
    "InMemoryHubSession",
    "MemoryHub",
    "RecordingConnection",
    "ReplayReport",
    "THROWAWAY_ACCESS_KEY",
    "VirtualClock",
    "connection_registry",
    "counting_entropy",
    "denial_for",
    "echo_replies",
    "noise_psk_for",
    "pump",
    "replay_connection",
    "run_until",
]
