"""The session's trigger HELLO (MQTT) is sent again while the hub stays silent; a second hub HELLO is a reset."""

from __future__ import annotations

from tests.core.session.test_session_pair import CRYPTO_KEY, PASSWORD, FakeHub, new_session, pump, sent
from thalovant.core.machine import Note, Tick
from thalovant.core.session.machine import FrameReceived, LinkOpened, SendFrame, SessionFailed, SessionState


def test_the_trigger_is_sent_again_while_no_greeting_comes_doubling_the_wait() -> None:
    s = new_session(password=PASSWORD, wire="bitstring", trigger_hello=True, handshake_timeout=5.0)
    (first,) = s.handle(LinkOpened(), now=0.0)
    assert isinstance(first, SendFrame) and s.deadline == 0.2
    assert s.handle(Tick(), now=0.1) == []  # early: nothing
    resent = []
    for at in (0.2, 0.6, 1.4, 3.0):
        deadline = s.deadline
        assert deadline is not None and abs(deadline - at) < 1e-9
        outs = s.handle(Tick(), now=deadline)
        assert isinstance(outs[0], Note) and sent(outs) and sent(outs)[0].data[0] == first.data[0]
        resent.append(at)
    assert s.deadline == 5.0  # the next trigger (6.2) would come after the handshake timeout
    outs = s.handle(Tick(), now=5.0)
    assert s.state is SessionState.FAILED and any(isinstance(o, SessionFailed) for o in outs)
    assert len(resent) == 4


def test_a_greeted_session_sends_no_more_triggers() -> None:
    hub = FakeHub(password=PASSWORD)
    s = new_session(password=PASSWORD, wire="bitstring", trigger_hello=True, handshake_timeout=5.0)
    (trigger,) = s.handle(LinkOpened(), now=0.0)
    hub.receive(trigger.data)
    hello, offer = hub.greeting()
    s.handle(FrameReceived(data=hello), now=0.1)
    assert s.deadline == 5.0  # only the handshake's own timeout is left
    assert sent(s.handle(Tick(), now=0.3)) == []
    pump(s, hub, [offer], now=0.3)
    assert s.state is SessionState.READY and s.deadline is None


def test_a_second_hub_hello_right_after_ready_is_a_reset() -> None:
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    s = new_session(crypto_key=CRYPTO_KEY)
    s.handle(LinkOpened(), now=0.0)
    hello, offer = hub.greeting()
    pump(s, hub, [hello, offer], now=1.0)
    assert s.state is SessionState.READY
    outs = s.handle(FrameReceived(data=hello), now=1.01)  # no grace: the hub greets only what it does not know
    failure = next(o for o in outs if isinstance(o, SessionFailed))
    assert failure.code == "hub-reset" and failure.retryable and s.state is SessionState.FAILED


def test_the_greetings_own_hello_after_its_offer_is_not_a_reset_but_the_next_one_is() -> None:
    hub = FakeHub(crypto_key=CRYPTO_KEY)
    s = new_session(crypto_key=CRYPTO_KEY)
    s.handle(LinkOpened(), now=0.0)
    hello, offer = hub.greeting()
    pump(s, hub, [offer, hello], now=1.0)
    assert s.state is SessionState.READY
    outs = s.handle(FrameReceived(data=hello), now=5.0)
    assert s.state is SessionState.FAILED and any(isinstance(o, SessionFailed) for o in outs)
