"""The client half of the event-flood test, run as a child process so its memory is its own.

``python -m tests.shell.flood_client PORT PASSWORD`` connects over WebSocket to 127.0.0.1:PORT,
opens one listener for ``speak`` that is never read (the drop-oldest policy at work), prints
``ready``, waits for a line on stdin, closes the client and prints one JSON line: the seconds
``close()`` took, the peak RSS in MiB (``VmHWM``: ``ru_maxrss`` would include the peak of the
pytest process that forked this one), and what the listener kept and dropped.
"""

from __future__ import annotations

import json
import resource
import sys

import anyio
import anyio.to_thread

import thalovant
from tests.shell.hostile import identity_for
from thalovant.testing import THROWAWAY_ACCESS_KEY


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: Linux's ``VmHWM`` (``ru_maxrss`` keeps the forking parent's peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(port: int, password: str) -> None:
    identity = identity_for("wss", port, password=password, access_key=THROWAWAY_ACCESS_KEY)
    client = thalovant.AsyncThalovantClient(identity, protocol="wss", noise_key_file=False, connect_timeout=10)
    await client.connect()
    listener = client.listen("speak", buffer=1000)
    print("ready", flush=True)
    await anyio.to_thread.run_sync(sys.stdin.readline)
    started = anyio.current_time()
    await client.close()
    close_s = anyio.current_time() - started
    rss_mb = peak_rss_mb()
    print(json.dumps({"close_s": close_s, "rss_mb": rss_mb, "dropped": listener.dropped, "kept": listener.buffered,
                      "kept_bytes": listener.buffered_bytes}))


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]), sys.argv[2])
