"""A WebSocket upgrade refused with 401 is reported as 401 (issue 13 item 6: it said "HTTP 403"), offline."""

from __future__ import annotations

import anyio
import pytest

import thalovant
from tests.shell.test_offline_client import WAIT, client_for, hub_net

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("status", [401, 403])
async def test_an_upgrade_refused_with_401_or_403_is_reported_as_it_was(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    net = hub_net(monkeypatch, "wss")
    net.reject_status = status
    with anyio.fail_after(WAIT), pytest.raises(thalovant.ThalovantAuthenticationError) as info:
        await client_for("wss").connect()
    other = 403 if status == 401 else 401
    assert f"HTTP {status}" in str(info.value) and f"HTTP {other}" not in str(info.value)
    assert len(net.dials) == 1  # never retried
