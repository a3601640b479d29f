"""An optional extra of the test hub: hub 4.0.0 that renders speech (``speak:synth`` -> a TTS_AUDIO frame).

The ``hub4tts`` flavour is hub 4.0.0's venv plus ``hivemind-audio-binary-protocol`` 2.1.5 (the reference
binary-data plugin) and the OVOS espeak-ng TTS plugin; espeak-ng itself comes from Debian
(:func:`ensure_espeak`, apt-get when root, like mosquitto). Every client may send ``speak:synth`` (hub
4.x's default ACL does not list it). The plugin also builds an STT engine (the server plugin, never
called) and a VAD (OPM's built-in ``dummy``) when it starts. Both are cached like the other flavours.

Use :func:`tts_hub` in a module-scoped fixture: it skips with the reason when the extra cannot be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.harness.hub import TestHub
from tests.harness.install import HERE, Flavour, HarnessUnavailable, harness_home

__all__ = ["HUB4_TTS", "SYNTH_TYPE", "ensure_espeak", "tts_hub"]

SYNTH_TYPE = "speak:synth"
_PLUGIN = "hivemind-audio-binary-protocol-plugin"

HUB4_TTS = Flavour(
    name="hub4tts",
    requirements=HERE / "hub4-tts-requirements.txt",
    constraints=HERE / "hub4-tts-constraints.txt",
    import_check=(
        "import hivemind_core, hivemind_websocket_protocol, hivemind_http_protocol, hivemind_mqtt_protocol, "
        "hivemind_ovos_agent_plugin, ovos_messagebus, hivemind_audio_binary_protocol.protocol, "
        "ovos_tts_plugin_espeakng, ovos_stt_plugin_server"
    ),
    binary_protocol={
        "module": _PLUGIN,
        _PLUGIN: {
            "tts": {"module": "ovos-tts-plugin-espeakng", "ovos-tts-plugin-espeakng": {"lang": "en-us"}},
            "stt": {"module": "ovos-stt-plugin-server", "ovos-stt-plugin-server": {}},
            "vad": {"module": "dummy"},
            "wakeword": "hey_mycroft",
            "hotwords": {},
        },
    },
    extra_types=(SYNTH_TYPE,),
)


def ensure_espeak() -> str:
    """The path of ``espeak-ng`` (Debian's package, installed with apt-get when root and missing).

    Raises:
        HarnessUnavailable: with the reason it cannot be had on this machine.
    """
    found = shutil.which("espeak-ng")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise HarnessUnavailable("espeak-ng is not installed (sudo apt-get install -y espeak-ng)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300, check=False)
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", "espeak-ng"], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired as exc:
        raise HarnessUnavailable("apt-get install espeak-ng timed out") from exc
    found = shutil.which("espeak-ng")
    if not found:
        raise HarnessUnavailable(f"apt-get install espeak-ng failed: {proc.stderr.strip()[-400:]}")
    return found


@contextmanager
def tts_hub(tag: str) -> Iterator[TestHub]:
    """A ``hub4tts`` hub of the caller's own (own run directory and ports); skips with the reason when the
    extra cannot be installed here (no espeak-ng, no package index)."""
    import pytest

    run_dir = harness_home() / "runs" / f"{os.getpid()}-hub4tts-{tag}"
    hub = TestHub(HUB4_TTS, run_dir, bound_to_parent=True)
    try:
        ensure_espeak()
        hub.start()
    except HarnessUnavailable as exc:
        hub.stop()
        pytest.skip(f"real hub with TTS unavailable: {exc}")
    try:
        yield hub
    finally:
        hub.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
