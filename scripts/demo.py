"""`make demo`: start a real HiveMind hub on loopback, ask it a question over each transport, stop it.

The hub is the project's test hub (``tests/harness``): hivemind-core 4.0.0, ovos-messagebus, an
echo agent that answers ``echo: <text>`` and, when mosquitto is available, an MQTT broker. The
first run builds the hub's virtual environment from PyPI (a few minutes, cached afterwards under
``${XDG_CACHE_HOME:-~/.cache}/thalovant-test-hub``). The hub is always stopped at the end, also
on Ctrl-C and on errors; its processes also die with this one.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python scripts/demo.py` from anywhere: the harness lives in tests/
    sys.path.insert(0, str(ROOT))

from tests.harness.hub import HUB4, HarnessError, HarnessUnavailable, TestHub  # noqa: E402
from tests.harness.install import flavour_hash, harness_home  # noqa: E402

QUESTION = "what time is it on the moon"
TRANSPORTS = ("wss", "https", "mqtt")


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same cleanup path as Ctrl-C


def ask_over(hub: TestHub, protocol: str) -> bool:
    """Ask the question over one transport; print the reply and the latencies. True when it worked."""
    from thalovant import ThalovantClient, ThalovantError

    try:
        t0 = time.perf_counter()
        with ThalovantClient.from_identity_file(hub.identity_path("psk"), protocol=protocol) as client:
            connected = time.perf_counter()
            reply = client.ask(QUESTION, timeout=10)
            answered = time.perf_counter()
            health = client.healthcheck()
    except ThalovantError as exc:
        say(f"{protocol:>5}: FAILED: {type(exc).__name__}: {exc}")
        return False
    say(
        f"{protocol:>5}: {reply.text!r}  (connect+handshake {1000 * (connected - t0):.0f} ms, "
        f"ask {1000 * (answered - connected):.0f} ms, protocol v{health.generation}, handled={reply.handled})"
    )
    return reply.ok


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    venv = harness_home() / f"{HUB4.name}-{flavour_hash(HUB4)}" / "installed.json"
    if not venv.is_file():
        say("first run: installing the local hub (hivemind-core 4.0.0 and friends) into a cached venv;")
        say("this takes a few minutes and needs access to PyPI. Later runs start in seconds.")
    run_dir = harness_home() / f"run-demo-{os.getpid()}"
    hub = TestHub(HUB4, run_dir, bound_to_parent=True, log=lambda msg: say(f"hub: {msg}"))
    ok = False
    try:
        say("starting the local hub (mosquitto, OVOS message bus, echo agent, hivemind-core) on 127.0.0.1 ...")
        t0 = time.monotonic()
        hub.start()
        ports = hub.ports
        assert ports is not None
        say(
            f"hub up in {time.monotonic() - t0:.1f} s: ws :{ports.ws}, http :{ports.http}, "
            f"mqtt {f':{ports.mqtt}' if ports.mqtt else 'unavailable'}"
        )
        say(f"asking {QUESTION!r} with thalovant.ThalovantClient over each transport:")
        results = []
        for protocol in TRANSPORTS:
            if protocol == "mqtt" and not hub.mqtt_available:
                say(f" mqtt: skipped ({hub.mqtt_unavailable_reason}; install mosquitto to try it)")
                continue
            results.append(ask_over(hub, protocol))
        ok = bool(results) and all(results)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except (HarnessError, HarnessUnavailable) as exc:
        say(f"the local hub could not start: {exc}")
        return 1
    finally:
        say("stopping the hub ...")
        hub.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        say("hub stopped")
    say("done" if ok else "some transports failed (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
