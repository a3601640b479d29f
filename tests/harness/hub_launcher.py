"""Entry point of the hivemind-core test hub process (runs inside the hub's own virtualenv).

Not imported by the project: ``tests/harness/hub.py`` starts it as ``<hub venv>/bin/python hub_launcher.py``.
It runs the real ``hivemind_core.__main__.main()`` after three adjustments:

1. Start-up race (always applied).  The websocket and HTTP network plugins each install a fresh
   ``AnyThreadEventLoopPolicy`` from their own thread, nearly at the same moment.  A fresh policy
   forgets loops already handed out, so one plugin may listen on a loop that its thread never runs
   (the port accepts TCP but never answers).  We install one policy up front and make repeated
   installs of the same policy kind a no-op.
2. Disconnect guards (on unless ``HARNESS_GUARDS=0``).  Replies are forwarded to clients from the
   OVOS-bus thread while network threads add/remove clients; a write to a just-closed socket or a
   dict mutated during iteration escapes into ovos-bus-client, which then drops the hub's bus link
   for seconds.  We make a failed per-client send drop only that frame, iterate over snapshots of
   the client table, and keep handler errors away from the bus client.
3. Test push hook (always applied).  A ``thalovant.harness.push`` message on the OVOS bus makes
   the hub send ``HiveMessage(BUS, payload)`` straight to every connected peer, or to the peers
   listed in ``data["peers"]``, exactly like the inner message of an admin BROADCAST.  The hub then
   answers ``thalovant.harness.push.done`` with the peers it delivered to.  With ``data["binary"] =
   {"b64", "bin_type", "metadata"}`` it sends ``HiveMessage(BINARY, ...)`` instead: the way a hub-side
   binary-data plugin (TTS, file server) answers a client; hivemind-core itself never sends BINARY.
4. Binary probe (always applied).  The hub hands a client's BINARY frame, after its checks (hub 5.x:
   the policy chain; FILE names stripped to a base name), to its binary-data plugin, which by default
   logs a line and drops it.  Each handler of that plugin also appends one JSON line (handler, size,
   sha256, metadata, peer) to ``logs/binary-record.jsonl`` in the run directory.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from tornado.platform.asyncio import AnyThreadEventLoopPolicy

PUSH_TYPE = "thalovant.harness.push"
PUSH_DONE_TYPE = "thalovant.harness.push.done"


def _fix_event_loop_policy() -> None:
    asyncio.set_event_loop_policy(AnyThreadEventLoopPolicy())
    install = asyncio.set_event_loop_policy

    def install_unless_same_kind(policy: Any) -> None:
        current = asyncio.get_event_loop_policy()
        if isinstance(policy, AnyThreadEventLoopPolicy) and isinstance(current, AnyThreadEventLoopPolicy):
            return
        install(policy)

    asyncio.set_event_loop_policy = install_unless_same_kind


def _install_guards() -> None:
    import functools

    import hivemind_ovos_agent_plugin as agent_mod
    from hivemind_core.protocol import HiveMindClientConnection
    from ovos_utils.log import LOG

    plain_send = HiveMindClientConnection.send

    def tolerant_send(self: Any, message: Any) -> Any:
        try:
            return plain_send(self, message)
        except Exception as exc:
            LOG.warning(f"[harness] frame to {self.peer} dropped: {type(exc).__name__}: {exc}")
            return None

    HiveMindClientConnection.send = tolerant_send

    def snapshot(self: Any) -> dict[str, Any]:
        return dict(self.hm_protocol.clients) if self.hm_protocol else {}

    agent_mod.OVOSAgentProtocol.clients = property(snapshot)

    def contained(handler: Any) -> Any:
        @functools.wraps(handler)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return handler(self, *args, **kwargs)
            except Exception:
                LOG.exception(f"[harness] agent handler {handler.__name__} failed")
                return None

        return run

    cls = agent_mod.OVOSAgentProtocol
    cls.handle_internal_mycroft = contained(cls.handle_internal_mycroft)
    cls.handle_send = contained(cls.handle_send)


def _send_copies(client: Any, message: Any, copies: int) -> None:
    """Send ``message`` once, writing its sealed frame ``copies`` times: what hub 4.x's unsynchronised
    writers do now and then (two threads flush one tornado write buffer; NOTES.md, "frames sent twice")."""
    if copies == 1:
        client.send(message)
        return
    plain = client.send_msg

    def repeated(payload: Any, is_bin: bool = False) -> None:
        for _ in range(copies):
            plain(payload, is_bin)

    client.send_msg = repeated
    try:
        client.send(message)
    finally:
        client.send_msg = plain


def _binary_frame(spec: Any) -> Any:
    """The BINARY HiveMessage a push asks for (``{"b64", "bin_type", "metadata"}``), or None."""
    if not spec:
        return None
    import base64

    from hivemind_bus_client.message import HiveMessage, HiveMessageType, HiveMindBinaryPayloadType

    return HiveMessage(
        HiveMessageType.BINARY,
        payload=base64.b64decode(spec["b64"]),
        bin_type=HiveMindBinaryPayloadType(int(spec.get("bin_type") or 0)),
        metadata=dict(spec.get("metadata") or {}),
    )


_PROBED = {  # handler -> the names of its arguments after bin_data (both hub generations)
    "handle_microphone_input": ("sample_rate", "sample_width"),
    "handle_stt_transcribe_request": ("sample_rate", "sample_width", "lang"),
    "handle_stt_handle_request": ("sample_rate", "sample_width", "lang"),
    "handle_receive_tts": ("utterance", "lang", "file_name"),
    "handle_receive_file": ("file_name",),
    "handle_numpy_image": ("camera_id",),
}


def _install_binary_probe() -> None:
    import functools
    import hashlib
    import json
    import threading
    import time
    from pathlib import Path

    from hivemind_plugin_manager.protocols import BinaryDataHandlerProtocol
    from ovos_utils.log import LOG

    record = Path(os.environ["XDG_CONFIG_HOME"]).parent / "logs" / "binary-record.jsonl"
    lock = threading.Lock()

    def probe(name: str, fields: tuple[str, ...], plain: Any) -> Any:
        @functools.wraps(plain)
        def handler(self: Any, bin_data: bytes, *args: Any) -> Any:
            try:
                entry = {
                    "ts": time.time(),
                    "handler": name,
                    "size": len(bin_data),
                    "sha256": hashlib.sha256(bin_data).hexdigest(),
                    "peer": getattr(args[-1], "peer", None),
                    **{k: v for k, v in zip(fields, args[:-1], strict=False)},
                }
                with lock, open(record, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, default=str) + "\n")
            except Exception:
                LOG.exception("[harness] binary probe failed")
            return plain(self, bin_data, *args)

        return handler

    for name, fields in _PROBED.items():
        setattr(BinaryDataHandlerProtocol, name, probe(name, fields, getattr(BinaryDataHandlerProtocol, name)))


def _install_push_hook() -> None:
    import hivemind_ovos_agent_plugin as agent_mod
    from hivemind_bus_client.message import HiveMessage, HiveMessageType
    from ovos_bus_client.message import Message
    from ovos_utils.log import LOG

    cls = agent_mod.OVOSAgentProtocol
    plain_register = cls.register_bus_handlers

    def register(self: Any) -> None:
        plain_register(self)

        def on_push(message: Any) -> None:
            try:
                data = message.data or {}
                wanted = data.get("peers")
                clients = dict(self.hm_protocol.clients) if self.hm_protocol else {}
                inner = Message(data.get("type") or "speak", data.get("data") or {}, data.get("context") or {})
                frame = _binary_frame(data.get("binary")) or HiveMessage(HiveMessageType.BUS, payload=inner)
                delivered = []
                copies = max(1, min(int(data.get("copies") or 1), 5))
                for peer, client in clients.items():
                    if wanted and peer not in wanted:
                        continue
                    _send_copies(client, frame, copies)
                    delivered.append(peer)
                LOG.info(f"[harness] pushed {frame.msg_type}/{inner.msg_type} to {delivered}")
                self.bus.emit(Message(PUSH_DONE_TYPE, {"token": data.get("token"), "peers": delivered}))
            except Exception:
                LOG.exception("[harness] push failed")

        self.bus.on(PUSH_TYPE, on_push)

    cls.register_bus_handlers = register


def main() -> None:
    _fix_event_loop_policy()
    if os.environ.get("HARNESS_GUARDS", "1") != "0":
        _install_guards()
    _install_push_hook()
    _install_binary_probe()
    from hivemind_core.__main__ import main as hub_main

    sys.argv[0] = "hivemind-core"
    hub_main()


if __name__ == "__main__":
    main()
