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
from thalovant.shell.listeners import BUFFER_BYTES
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


async def _flood(events: int, distinct: int, pad: int) -> tuple[TcpWsHub, dict[str, float]]:
    """Flood a child client with ``events`` events (``distinct`` sealed frames sent in turn, each utterance padded
    to ``pad`` characters), ask it to close, and return the hub and the child's report."""
    flooded = anyio.Event()

    async def flood(tcp: TcpWsHub) -> None:
        context = {"destination": "client", "source": "skill"}
        sealed = [
            tcp.hub.push("speak", {"utterance": f"flood {n} ".ljust(pad, "x")}, context) for n in range(distinct)
        ]
        n = 0
        with anyio.move_on_after(600):
            while True:
                await tcp.send_frames(sealed[n % distinct])
                n += 1
                if n == events:
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
    report: dict[str, float] = json.loads(lines[-1])
    print(f"flood of {tcp.sent} events: {report}")
    return tcp, report


async def test_an_event_flood_is_pushed_back_and_close_ends_within_its_grace() -> None:
    _, report = await _flood(EVENTS, DISTINCT, pad=0)
    assert report["rss_mb"] < MAX_RSS_MB
    assert report["close_s"] < MAX_CLOSE_S
    assert report["kept"] == 1000 and report["dropped"] > 0


async def test_a_flood_of_large_events_is_bounded_in_bytes_not_only_in_count() -> None:
    """256 KiB events: 1000 unread of them were 256 MiB in the listener alone, and 256 waiting frames
    64 MiB in the inbox. Both are bounded in bytes now (16 MiB each, the newest event always fits)."""
    pad = 256 * 1024
    _, report = await _flood(2_000, 600, pad=pad)  # 600 distinct frames: more than the repeat window (512)
    assert report["rss_mb"] < MAX_RSS_MB
    assert report["close_s"] < MAX_CLOSE_S
    assert report["kept_bytes"] <= BUFFER_BYTES and report["kept"] < 1000 and report["dropped"] > 0
