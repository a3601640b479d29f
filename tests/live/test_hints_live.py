"""Request hints reach the hub bus (the echo agent records the injected message), on hub 4.x and 5.x.

Also: ``raise_unanswered=True`` turns the echo skill's ``fail`` into ``ThalovantUnansweredError``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.live.live_support import report_in_summary
from thalovant import ThalovantClient, ThalovantUnansweredError, build_location

pytestmark = pytest.mark.hub

WHERE = build_location(latitude=38.7, longitude=-9.1, city="Lisbon", country_code="PT", timezone="Europe/Lisbon")


def _agent_saw(hub: Any, request_id: str, limit: float = 10.0) -> dict[str, Any]:
    """The utterance message the echo agent recorded for ``request_id`` (bounded wait)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for entry in hub.echo_log(msg_type="recognizer_loop:utterance"):
            if (entry.get("context") or {}).get("request_id") == request_id:
                return dict(entry)
        time.sleep(0.05)
    raise AssertionError(f"the echo agent never saw request {request_id}")


@pytest.mark.parametrize("generation", [4, 5])
def test_hints_arrive_in_the_hub_bus_message(request: pytest.FixtureRequest, generation: int) -> None:
    hub = request.getfixturevalue("real_hub" if generation == 4 else "real_hub_v3")
    kwargs: dict[str, Any] = {"auth_encoding": "percent"} if generation == 5 else {}
    with ThalovantClient.from_identity_file(hub.identity_path("psk"), protocol="wss", **kwargs) as client:
        reply = client.ask("hints", stt_lang="pt-PT", pipeline=["converse", "adapt_high"], location=WHERE, timeout=10)
        assert reply.text == "echo: hints" and reply.handled
        context = _agent_saw(hub, reply.request_id)["context"]
        with client.conversation() as convo, pytest.raises(ThalovantUnansweredError) as caught:
            convo.ask("fail", raise_unanswered=True, timeout=10)
    assert caught.value.said == "fail" and caught.value.reply.unanswered
    assert context["stt_lang"] == "pt-PT"
    assert context["pipeline"] == ["converse", "adapt_high"]
    assert context["location"] == WHERE
    session = context.get("session") or {}
    seen = {key: session.get(key) for key in ("stt_lang", "pipeline", "location_preferences")}
    report_in_summary(request, f"hints-{generation}", f"request hints, hub {generation}.x", [f"session: {seen}"])
    if generation == 5:  # the session travels per message on hub 5.x (spec §9.1)
        assert seen == {"stt_lang": "pt-PT", "pipeline": ["converse", "adapt_high"], "location_preferences": WHERE}
    else:  # hub 4.x rebuilds the session as an OVOS Session: it keeps `pipeline` only (seen 2026-12-07)
        assert seen == {"stt_lang": None, "pipeline": ["converse", "adapt_high"], "location_preferences": None}
