"""The Connection over a WebSocket whose path dies silently: liveness turns it into a link loss, on virtual time.

The in-memory transport answers every PING at once (a perfect network); ``blackhole`` makes it a dead path
(nothing in, nothing out, no close): exactly what a stall or a half-open connection looks like to the client.
"""

from __future__ import annotations

from thalovant.core.client import correlate as corr
from thalovant.core.client.connection import ConnectionState, LinkFact, SendError, StatusChanged
from thalovant.core.links.liveness import DEFAULT_LIVENESS
from thalovant.core.links.ws import PingWs, WsPonged
from thalovant.testing import InMemoryHubSession

S = ConnectionState
CRYPTO_KEY = "0f1e2d3c4b5a6978"


def test_a_healthy_idle_link_is_pinged_and_stays_up() -> None:
    s = InMemoryHubSession(protocol="wss", crypto_key=CRYPTO_KEY)
    assert s.connect() is S.READY
    s.run(5 * DEFAULT_LIVENESS.bound)
    assert s.connection.state is S.READY and s.connection.epoch == 1
    assert sum(isinstance(o, PingWs) for o in s.transport.orders) >= 5


def test_a_dead_path_is_a_link_loss_within_the_bound_then_the_client_redials() -> None:
    s = InMemoryHubSession(protocol="wss", crypto_key=CRYPTO_KEY)
    assert s.connect() is S.READY
    s.transport.blackhole = True
    pending = s.start_ask("lost on the way", timeout=60.0)
    start = s.clock.now
    s.run(DEFAULT_LIVENESS.bound + 1, stop=lambda _: s.connection.state is not S.READY)
    assert s.connection.state is S.CONNECTING
    assert s.clock.now - start <= DEFAULT_LIVENESS.bound
    assert "ping" in s.connection.last_error
    failed = s.ask_result(pending)
    assert isinstance(failed, corr.AskFailed) and failed.kind == "link_lost"  # typed, at once, never re-sent
    s.transport.blackhole = False
    s.run(5.0, stop=lambda _: s.connection.state is S.READY)
    assert s.connection.state is S.READY and s.connection.epoch == 2
    assert isinstance(s.ask("back"), corr.AskFinished)
    assert not [o for o in s.outputs if isinstance(o, SendError) and o.ref != pending]


def test_a_pong_for_an_old_link_never_keeps_the_new_one_alive() -> None:
    s = InMemoryHubSession(protocol="wss", crypto_key=CRYPTO_KEY)
    assert s.connect() is S.READY
    s.feed(LinkFact(epoch=s.connection.epoch, fact=WsPonged()))  # harmless on its own link
    s.transport.drop_link()
    s.run(5.0, stop=lambda _: s.connection.state is S.READY and s.connection.epoch == 2)
    assert s.connection.epoch == 2
    s.transport.blackhole = True
    start = s.clock.now
    for _ in range(40):  # the old link's pongs keep coming; the new link hears nothing
        assert s.feed(LinkFact(epoch=1, fact=WsPonged())) == []
        s.run(0.5, stop=lambda _: s.connection.state is not S.READY)
        if s.connection.state is not S.READY:
            break
    assert s.connection.state is S.CONNECTING and s.clock.now - start <= DEFAULT_LIVENESS.bound + 0.5
    assert any(isinstance(o, StatusChanged) and "ping" in o.detail for o in s.outputs)
