"""``shell.outcomes.raise_for`` (the one mapping from the core's answers to public exceptions) and the waits of
``shell.results`` (they wait for the core's answer; their guard only ever ends a wait the core left open)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from thalovant.core.bus.refusal import parse_denial
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client import connection as cx
from thalovant.core.client import correlate as corr
from thalovant.core.errors import (
    ThalovantAuthenticationError,
    ThalovantConnectionError,
    ThalovantPolicyDenied,
    ThalovantTimeoutError,
)
from thalovant.core.machine import Output
from thalovant.shell.outcomes import AskEnded, ConnectEnded, Outcome, SendEnded, error_for, raise_for
from thalovant.shell.results import GUARD_SLACK, SEND_SLACK, Bell, Results, Slot, ask_settled

pytestmark = pytest.mark.anyio

REPLY = ThalovantReply(session_id="s", request_id="r")


def send_error(kind: Any, reason: str = "why") -> cx.SendError:
    return cx.SendError(ref=1, reason=reason, kind=kind)


def ask_failed(kind: Any, reason: str = "why", **extra: Any) -> corr.AskFailed:
    return corr.AskFailed(ask_id="r", kind=kind, reason=reason, reply=REPLY, **extra)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_successes_raise_nothing() -> None:
    raise_for(SendEnded(result=cx.SendDone(ref=1), wait=1.0))
    raise_for(AskEnded(result=corr.AskFinished(ask_id="r", reply=REPLY), wait=1.0))


@pytest.mark.parametrize(
    ("outcome", "kind", "message"),
    [
        (SendEnded(result=send_error("timeout"), wait=2), ThalovantTimeoutError, "message not delivered: why"),
        (SendEnded(result=send_error("queue_full"), wait=2), ThalovantConnectionError, "message not delivered: why"),
        (SendEnded(result=None, wait=2), ThalovantTimeoutError, "the transport did not take the message within 2 s"),
        (
            AskEnded(result=ask_failed("timeout"), wait=1.5),
            ThalovantTimeoutError,
            "the hub did not answer within 1.5 s",
        ),
        (AskEnded(result=None, wait=3), ThalovantTimeoutError, "the hub did not answer within 3 s"),
        (
            AskEnded(result=ask_failed("link_lost", "gone"), wait=3),
            ThalovantConnectionError,
            "the link to the hub was lost during the ask: gone",
        ),
        (
            AskEnded(result=ask_failed("cancelled", ""), wait=3),
            ThalovantConnectionError,
            "the ask ended without an answer: cancelled",
        ),
        (
            AskEnded(result=send_error("closed", "the client was closed"), wait=3),
            ThalovantConnectionError,
            "the ask was not delivered: the client was closed",
        ),
        (
            ConnectEnded(protocol="wss", timeout=4, gave_up=None, detail="refused"),
            ThalovantTimeoutError,
            "no ready session with the hub within 4 s (last error: refused)",
        ),
        (
            ConnectEnded(
                protocol="mqtt", timeout=4, gave_up=cx.StatusChanged(state=cx.ConnectionState.GAVE_UP, detail="x")
            ),
            ThalovantConnectionError,
            "could not connect to the hub (mqtt): x",
        ),
        (
            ConnectEnded(
                protocol="wss",
                timeout=4,
                gave_up=cx.StatusChanged(state=cx.ConnectionState.GAVE_UP, detail="no", auth=True),
            ),
            ThalovantAuthenticationError,
            "the hub refused the credentials: no",
        ),
    ],
)
def test_each_outcome_maps_to_one_exception_and_message(outcome: Outcome, kind: type, message: str) -> None:
    with pytest.raises(kind) as caught:
        raise_for(outcome)
    assert type(caught.value) is kind and str(caught.value) == message
    assert str(error_for(outcome)) == message


def test_retryable_follows_the_send_error_kind() -> None:
    closed = error_for(SendEnded(result=send_error("closed"), wait=1))
    lost = error_for(SendEnded(result=send_error("link_lost"), wait=1))
    gave_up = error_for(
        ConnectEnded(protocol="wss", timeout=1, gave_up=cx.StatusChanged(state=cx.ConnectionState.GAVE_UP))
    )
    assert isinstance(closed, ThalovantConnectionError) and not closed.retryable
    assert isinstance(lost, ThalovantConnectionError) and lost.retryable
    assert isinstance(gave_up, ThalovantConnectionError) and not gave_up.retryable


def test_a_policy_denial_carries_the_denial_fields() -> None:
    denial = parse_denial({"denied_type": "recognizer_loop:utterance", "code": "rate_limited", "reason": "slow down"})
    assert denial is not None
    with pytest.raises(ThalovantPolicyDenied) as caught:
        raise_for(AskEnded(result=ask_failed("policy_denied", denial=denial), wait=1))
    assert caught.value.code == "rate_limited" and caught.value.denied_type == "recognizer_loop:utterance"


def settled_after(*values: Output) -> bool:
    send, ask = Slot(), Slot()
    for value in values:
        (ask if isinstance(value, corr.AskFinished | corr.AskFailed) else send).set(value)
    return ask_settled(send, ask)


def test_an_ask_is_settled_by_the_core_not_by_a_clock() -> None:
    finished = corr.AskFinished(ask_id="r", reply=REPLY)
    assert not settled_after()
    assert not settled_after(cx.SendDone(ref=1))  # sent, the hub has not answered yet
    assert not settled_after(send_error("link_lost"))  # the link's loss ends the ask too: wait for that
    assert not settled_after(finished)  # answered before the transport confirmed the send: wait for it
    assert settled_after(cx.SendDone(ref=1), finished)
    assert settled_after(send_error("refused"))  # a send failing for its own reason ends the wait at once
    assert settled_after(ask_failed("timeout"))  # the core's deadline passed, even with the send still out


async def test_the_guard_ends_a_wait_only_after_the_callers_deadline() -> None:
    bell = Bell()
    send, ask = Slot(bell), Slot(bell)
    started = anyio.current_time()
    await Results.wait_ask(send, ask, bell, started + 0.05)
    assert anyio.current_time() - started >= 0.05 + GUARD_SLACK
    assert send.value is None and ask.value is None


async def test_a_send_wait_ends_at_its_deadline_though_the_transport_still_holds_the_send() -> None:
    # the transport times a write from its own start, behind earlier writes (MQTT PUBACKs, HTTP POSTs):
    # the caller's send_timeout must hold anyway (found by tests/live/test_network_faults.py: 3.0 s for 2 s)
    started = anyio.current_time()
    await Results.wait_send(Slot(), started + 0.05)
    assert 0.05 <= anyio.current_time() - started <= 0.05 + SEND_SLACK + 0.1 <= 0.05 + 0.2


async def test_an_ask_wait_wakes_on_each_answer() -> None:
    bell = Bell()
    send, ask = Slot(bell), Slot(bell)
    with anyio.fail_after(1.0):  # far before the guard (10 s): the answers end the wait
        async with anyio.create_task_group() as tg:
            tg.start_soon(Results.wait_ask, send, ask, bell, anyio.current_time() + 10.0)
            await anyio.sleep(0.01)
            send.set(cx.SendDone(ref=1))
            await anyio.sleep(0.01)
            ask.set(corr.AskFinished(ask_id="r", reply=REPLY))
    assert isinstance(ask.value, corr.AskFinished)
