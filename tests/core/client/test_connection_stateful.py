"""Stateful property test: a client Connection and a FakeHub through random interleavings.

Sends, asks, hub pushes, virtual time, link drops, hub closes and hub restarts, in any order. The
invariants are the Connection's rules: every send ends exactly once, every ask ends exactly once,
the hub never gets a message twice, a send reported done really reached the hub, and no deadline is
left in the past (``run_until`` asserts that after every Tick).
"""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from thalovant.core.client import correlate as corr
from thalovant.core.client.connection import CancelAsk, ConnectionState, SendDone, SendError
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.wire.message import BusMessage
from thalovant.testing import InMemoryHubSession

PASSWORD = "throwaway-password-for-tests"


class ConnectionVersusHub(RuleBasedStateMachine):
    s: InMemoryHubSession

    def __init__(self) -> None:
        super().__init__()
        self.sends: dict[int, str] = {}  # ref -> request id
        self.asks: list[str] = []
        self.stalled = False  # after a stall, "done" no longer implies "the hub has it" (WS: handed to the socket)

    @initialize(
        protocol=st.sampled_from(["wss", "https", "mqtt"]),
        credentials=st.sampled_from(["password", "psk", "both", "v3"]),
    )
    def start(self, protocol: str, credentials: str) -> None:
        generation = 3 if credentials == "v3" and protocol != "mqtt" else 1
        password = PASSWORD if credentials != "psk" else None
        crypto_key = "0f1e2d3c4b5a6978" if credentials in ("psk", "both") else None
        self.s = InMemoryHubSession(
            protocol=protocol,  # type: ignore[arg-type]
            password=password,
            crypto_key=crypto_key,
            generation=generation,
            max_queue=4,
            queue_timeout=3.0,
            reconnect=ReconnectConfig(base=0.2, cap=2.0, stable_after=1.0),
        )
        self.s.connect()

    # ---- the client's side -----------------------------------------------------------------------

    @rule(kind=st.sampled_from(["note.a", "note.b"]), timeout=st.floats(0.5, 6.0))
    def send(self, kind: str, timeout: float) -> None:
        rid = f"send-{len(self.sends) + len(self.asks)}"
        ref = self.s.send(BusMessage(type=kind, context={"request_id": rid}), timeout=timeout)
        self.sends[ref] = rid

    @rule(text=st.sampled_from(["hello", "silent", "multi", "deny", "fail"]), timeout=st.floats(0.5, 8.0))
    def ask(self, text: str, timeout: float) -> None:
        self.asks.append(self.s.start_ask(text, timeout=timeout))

    @precondition(lambda self: bool(self.asks))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        ask_id = data.draw(st.sampled_from(self.asks))
        if self.s.ask_result(ask_id) is None:
            self.s.feed(CancelAsk(ask_id=ask_id))

    @rule(seconds=st.floats(0.0, 5.0))
    def time_passes(self, seconds: float) -> None:
        self.s.run(seconds)

    # ---- the hub's side ------------------------------------------------------------------------------

    @rule(n=st.integers(0, 99))
    def push(self, n: int) -> None:
        self.s.push("hub.event", {"n": n})

    @rule()
    def drop_link(self) -> None:
        self.s.drop_link()

    @rule(code=st.sampled_from([1000, 1001, 1006, 1011, 1012]))
    def hub_closes(self, code: int) -> None:
        self.s.close_link(code)

    @rule()
    def hub_restarts(self) -> None:
        self.s.hub.restart()
        self.s.transport.drop_link()
        self.s.settle()

    @rule(seconds=st.floats(0.5, 15.0))
    def network_stalls(self, seconds: float) -> None:
        self.stalled = True
        self.s.transport.blackhole = True
        self.s.run(seconds)
        self.s.transport.blackhole = False
        self.s.drop_link()  # the stalled connection is dead; the client may not know yet

    # ---- invariants ----------------------------------------------------------------------------------

    def _send_outcomes(self) -> Counter[int]:
        return Counter(o.ref for o in self.s.outputs if isinstance(o, SendDone | SendError))

    def _ask_ends(self) -> Counter[str]:
        return Counter(o.ask_id for o in self.s.outputs if isinstance(o, corr.AskFinished | corr.AskFailed))

    @invariant()
    def nothing_twice(self) -> None:
        if not hasattr(self, "s"):
            return
        assert all(n == 1 for n in self._send_outcomes().values())
        assert all(n == 1 for n in self._ask_ends().values())
        assert all(n == 1 for n in self.s.hub.request_counts.values()), self.s.hub.request_counts
        for o in self.s.outputs:
            if isinstance(o, SendDone) and o.ref in self.sends and not self.stalled:
                assert self.s.hub.request_counts[self.sends[o.ref]] == 1  # "done" means the hub has it
        deadline = self.s.connection.deadline
        assert deadline is None or deadline >= self.s.clock.now

    def teardown(self) -> None:
        if not hasattr(self, "s"):
            return
        self.s.run(10.0)  # everything pending ends by its own deadline...
        self.s.disconnect()  # ...or here
        self.s.run(5.0)
        outcomes, ends = self._send_outcomes(), self._ask_ends()
        assert all(outcomes[ref] == 1 for ref in self.sends), "a send never ended"
        assert all(ends[ask_id] == 1 for ask_id in self.asks), "an ask never ended"
        assert self.s.connection.state is ConnectionState.CLOSED


ConnectionVersusHub.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestConnectionVersusHub = ConnectionVersusHub.TestCase
