"""Hub 5.x refusing one request (close 4003, spec §3.3/§9.5) over the in-memory hub: the Connection reconnects.

The credentials are fine, only that frame type is not granted: the link is lost, the client redials under the
normal reconnect policy, the refused frame (handed over) is never sent again, and a 4003 before READY (the hub
refusing the handshake itself) gives up instead of redialling forever.
"""

from __future__ import annotations

from typing import Any

from thalovant.core.bus.query import query_message
from thalovant.core.client.connection import ConnectionState, SendDone, SendError, SendRequested, StatusChanged
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.wire.message import HiveMessage
from thalovant.testing import InMemoryHubSession

PASSWORD = "throwaway-password-for-tests"
S = ConnectionState


def _session(**kw: Any) -> InMemoryHubSession:
    return InMemoryHubSession(protocol="wss", password=PASSWORD, generation=3, **kw)


def _statuses(s: InMemoryHubSession) -> list[StatusChanged]:
    return [o for o in s.outputs if isinstance(o, StatusChanged)]


def _query_frames(s: InMemoryHubSession) -> list[HiveMessage]:
    """Every QUERY the fake hub opened (refused ones included)."""
    seen: list[HiveMessage] = []
    opened = s.hub._open

    def recording(link: Any, frame: Any) -> HiveMessage | None:
        message = opened(link, frame)
        if message is not None and message.msg_type.value == "query":
            seen.append(message)
        return message

    s.hub._open = recording  # type: ignore[method-assign]
    return seen


def test_a_refused_query_reconnects_and_is_never_sent_again() -> None:
    s = _session(queue_timeout=30.0)
    assert s.connect() is S.READY
    s.hub.refused_kinds = frozenset({"query"})
    queries = _query_frames(s)
    frame = query_message("what time is it", query_id="q1", session_id="s1", lang="en-us", site_id=None,
                          useragent="test", context=None)  # fmt: skip
    ref = s.new_ref()
    s.feed(SendRequested(ref=ref, message=frame, deadline=s.clock.now + 5.0))
    lost = _statuses(s)[-1]
    assert lost.state is S.CONNECTING and "4003" in lost.detail and "QUERY is not allowed" in lost.detail
    assert not lost.auth
    assert s.connect() is S.READY  # the normal reconnect policy redials by itself
    assert S.GAVE_UP not in [st.state for st in _statuses(s)]
    assert s.hub.connections == 2
    later = s.emit("after.the.refusal")
    assert isinstance(later, SendDone)
    s.run(10.0)
    assert len(queries) == 1  # handed over once, never re-sent on the new link
    assert isinstance(s.outcome(ref), SendDone | SendError)


def test_a_4003_before_ready_gives_up_at_once() -> None:
    s = _session(reconnect=ReconnectConfig(max_attempts=None))
    s.hub.close_with = (4003, "HELLO is not allowed for this client")  # a hub refusing the handshake itself
    assert s.connect(timeout=120.0) is S.GAVE_UP
    last = _statuses(s)[-1]
    assert last.state is S.GAVE_UP and "4003" in last.detail and not last.auth
    assert s.transport.opened == 1  # no redial loop
    late = s.emit("after.giving.up")
    assert isinstance(late, SendError) and late.kind == "gave_up"


def test_a_hub_that_refuses_every_request_at_once_is_bounded_by_max_attempts() -> None:
    """A 4003 right after READY each time (a queued refused frame is not re-sent, so only a new one): the
    attempt count is not reset by a link that served nothing, so ``max_attempts`` ends it."""
    s = _session(reconnect=ReconnectConfig(max_attempts=3), queue_timeout=60.0)
    assert s.connect() is S.READY
    for _ in range(5):
        if s.connection.state is S.GAVE_UP:
            break
        s.close_link(4003, "QUERY is not allowed for this client")
        s.run(30.0, stop=lambda _: s.connection.state in (S.READY, S.GAVE_UP))
    assert s.connection.state is S.GAVE_UP
    assert s.transport.opened <= 4
    late = s.emit("x")
    assert isinstance(late, SendError) and late.kind == "gave_up"
