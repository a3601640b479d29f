"""Binary frames on the test hub: push one to clients, and read what the hub's binary-data plugin got.

hivemind-core never sends BINARY by itself (a binary-data plugin such as a TTS or file service does),
and by default drops the BINARY frames clients send after one log line. The hub launcher
(``hub_launcher.py``, adjustments 3 and 4) adds both ends for tests:

* :func:`push_binary` makes the hub send ``HiveMessage(BINARY, ...)`` to its connected peers, through
  the same ``HiveMindClientConnection.send`` a plugin would use (sealed and framed by the hub's own code);
* :func:`binary_record` / :func:`wait_binary` read ``logs/binary-record.jsonl``, one line per frame the
  hub handed to its binary-data plugin: ``{"ts", "handler", "size", "sha256", "peer", <its metadata>}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from tests.harness.hub import PUSH_DONE_TYPE, PUSH_TYPE, TestHub

__all__ = ["binary_record", "push_binary", "wait_binary"]

#: The handler of the hub's binary-data plugin that gets each ``bin_type`` (spec §1.4).
HANDLERS = {
    1: "handle_microphone_input",
    2: "handle_numpy_image",
    3: "handle_receive_file",
    4: "handle_stt_transcribe_request",
    5: "handle_stt_handle_request",
    6: "handle_receive_tts",
}


def push_binary(
    hub: TestHub,
    data: bytes,
    bin_type: int = 6,
    metadata: Mapping[str, Any] | None = None,
    *,
    peers: list[str] | None = None,
    timeout: float = 5.0,
    wait_for_peer: float = 2.0,
) -> list[str]:
    """The hub sends one BINARY frame to every connected peer (or to ``peers``); returns the peers reached.

    As :meth:`TestHub.push_event`: while it reaches nobody (a client a moment away from being a peer) it is
    sent again for up to ``wait_for_peer`` seconds. The bytes travel base64-encoded on the hub's OVOS bus,
    so keep them well under its 10 MiB message cap.
    """
    spec = {"b64": base64.b64encode(data).decode("ascii"), "bin_type": bin_type, "metadata": dict(metadata or {})}
    give_up = time.monotonic() + wait_for_peer
    with hub.bus(timeout) as bus:
        while True:
            token = secrets.token_hex(8)
            bus.emit(PUSH_TYPE, {"type": "thalovant.harness.binary", "binary": spec, "peers": peers, "token": token})
            reached = list(bus.wait_for(PUSH_DONE_TYPE, timeout, token=token)["data"].get("peers") or [])
            if reached or time.monotonic() >= give_up:
                return reached
            time.sleep(0.02)


def binary_record(hub: TestHub) -> list[dict[str, Any]]:
    """Every binary frame the hub handed to its binary-data plugin so far, oldest first."""
    try:
        lines = (hub.run_dir / "logs" / "binary-record.jsonl").read_text().splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # mid-write
    return entries


def wait_binary(hub: TestHub, data: bytes, timeout: float = 10.0) -> dict[str, Any]:
    """Wait (bounded) until the hub's binary-data plugin got a frame carrying exactly ``data``; its record."""
    digest = hashlib.sha256(data).hexdigest()
    deadline = time.monotonic() + timeout
    while True:
        for entry in binary_record(hub):
            if entry.get("sha256") == digest:
                return entry
        if time.monotonic() > deadline:
            raise TimeoutError(f"the hub's binary-data plugin got no frame of {len(data)} bytes within {timeout} s")
        time.sleep(0.05)
