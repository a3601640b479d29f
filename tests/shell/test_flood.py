"""A hub that floods the client with valid, encrypted, unsolicited events cannot grow its memory.

The hub is a :class:`~thalovant.testing.FakeHub` behind a real WebSocket on 127.0.0.1
(:class:`tests.shell.hostile.TcpWsHub`); the client runs in a child process
(:mod:`tests.shell.flood_client`) so that its peak RSS is its own. The hub sends ``speak``
events as fast as TCP takes them; once 100k are out it asks the child to close, and keeps
flooding (it never answers the close frame). The bounds are issue 13's: peak RSS < 150 MB and
``close()`` < 3 s. Without back-pressure the client buffered the flood (720 MB at 100k) and
``close()`` took 15-21 s.
"""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
import pytest

from tests.paths import ROOT
from tests.shell.hostile import TcpWsHub, loopback_server
from thalovant.testing import FakeHub

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PASSWORD = "a-throwaway-password"
EVENTS = 100_000
MAX_RSS_MB = 150
MAX_CLOSE_S = 3.0
#: Sealed once and sent in turn: more than the client's duplicate window (1024 recent events), so
#: every event is delivered, and the hub spends its time sending, not encrypting.
DISTINCT = 2048


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_an_event_flood_is_pushed_back_and_close_ends_within_its_grace() -> None:
    flooded = anyio.Event()

    async def flood(tcp: TcpWsHub) -> None:
        context = {"destination": "client", "source": "skill"}
        sealed = [tcp.hub.push("speak", {"utterance": f"flood {n}"}, context) for n in range(DISTINCT)]
        n = 0
        with anyio.move_on_after(600):
            while True:
                await tcp.send_frames(sealed[n % DISTINCT])
                n += 1
                if n == EVENTS:
                    flooded.set()

    tcp = TcpWsHub(FakeHub(password=PASSWORD), after_hello=flood)
    async with loopback_server(tcp.serve) as port:
        async with await anyio.open_process(
            [sys.executable, "-m", "tests.shell.flood_client", str(port), PASSWORD],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        ) as child:
            assert child.stdin is not None and child.stdout is not None
            out = b""
            with anyio.fail_after(600):
                await flooded.wait()
                await child.stdin.send(b"close\n")
                async for chunk in child.stdout:
                    out += chunk
            await child.wait()
    lines = out.decode().splitlines()
    assert lines[0] == "ready" and child.returncode == 0
    report = json.loads(lines[-1])
    print(f"flood of {tcp.sent} events: {report}")
    assert report["rss_mb"] < MAX_RSS_MB
    assert report["close_s"] < MAX_CLOSE_S
    assert report["kept"] == 1000 and report["dropped"] > 0
