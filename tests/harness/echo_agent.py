"""Echo agent for the test hub: an OVOS bus client that plays the part of a voice assistant.

Runs inside the hub's virtualenv (it needs ovos-bus-client); ``tests/harness/hub.py`` starts it.

Answers to ``recognizer_loop:utterance`` (first of ``data.utterances``, compared case-insensitively):

=============  =====================================================================================
utterance      answer (every answer is ``Message.reply``: context copied, destination = the peer)
=============  =====================================================================================
anything else  ``speak {"utterance": "echo: <text>"}`` then ``ovos.utterance.handled``
``deny``       ``hive.policy.denied {"reason", "code": "policy_denied"}`` then ``ovos.utterance.handled``
``fail``       ``complete_intent_failure`` then ``ovos.utterance.handled``
``unmatched``  ``ovos.intent.unmatched`` only
``multi``      two ``speak`` ("echo: multi (1/2)", "echo: multi (2/2)") then ``ovos.utterance.handled``
``silent``     nothing at all
``rich``       ``speak`` carrying ``rich_media_data`` (table, image attachment, quick replies, image)
               then ``ovos.utterance.handled``
=============  =====================================================================================

Reply semantics matter: hivemind-core's OVOS agent forwards a bus message only to the peers named
in ``context.destination``; ``reply()`` puts the sender's ``source`` (the peer id) there.

Recording: every bus message this client sees is appended to ``--record`` as one JSON object per
line: ``{"ts", "type", "data", "context", "own"}``; ``own`` is true for the agent's own answers.

Control: ``thalovant.harness.emit {"type", "data", "context", "peer"}`` on the bus makes the agent
emit that message with ``context.destination = peer`` (or unchanged context without ``peer``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import deque
from typing import Any

from ovos_bus_client import MessageBusClient
from ovos_bus_client.message import Message

EMIT_TYPE = "thalovant.harness.emit"

RICH_MEDIA = {
    "table": {"columns": ["name", "value"], "rows": [["alpha", "1"], ["beta", "2"]]},
    "attachments": [{"type": "image", "title": "cat", "payload": {"src": "https://example.invalid/cat.png"}}],
    "quick_replies": [{"title": "Yes", "payload": "yes"}, {"title": "No", "payload": "no"}],
    "images": ["https://example.invalid/dog.png"],
}


def _key(msg_type: str, data: Any, context: Any) -> str:
    # the bus client adds a "session" to the context on emit, so it is left out of the comparison
    bare = {k: v for k, v in (context or {}).items() if k != "session"} if isinstance(context, dict) else context
    return json.dumps([msg_type, data, bare], sort_keys=True, default=str)


class EchoAgent:
    """Bus client answering utterances and recording traffic."""

    def __init__(self, bus: MessageBusClient, record_path: str | None) -> None:
        self.bus = bus
        self.record_path = record_path
        self._lock = threading.Lock()
        self._own: deque[str] = deque(maxlen=256)

    def emit(self, message: Message) -> None:
        with self._lock:
            self._own.append(_key(message.msg_type, message.data, message.context))
        self.bus.emit(message)

    def record(self, raw: str) -> None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"type": None, "data": raw, "context": {}}
        msg_type = parsed.get("type")
        data = parsed.get("data") or {}
        context = parsed.get("context") or {}
        key = _key(msg_type, data, context)
        with self._lock:
            own = key in self._own
            if own:
                self._own.remove(key)
            if self.record_path:
                line = {"ts": time.time(), "type": msg_type, "data": data, "context": context, "own": own}
                with open(self.record_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(line, sort_keys=True, default=str) + "\n")

    def on_utterance(self, message: Message) -> None:
        utterances = message.data.get("utterances") or []
        if isinstance(utterances, str):
            utterances = [utterances]
        text = str(utterances[0] if utterances else message.data.get("utterance") or "").strip()
        lang = message.data.get("lang") or message.context.get("lang") or "en-us"
        command = text.lower()
        meta = {"skill": "thalovant.echo"}
        if command == "silent":
            return
        if command == "unmatched":
            self.emit(message.reply("ovos.intent.unmatched", {"utterance": text, "lang": lang}))
            return
        if command == "deny":
            self.emit(message.reply("hive.policy.denied", {
                "reason": "denied by the echo agent (utterance 'deny')", "code": "policy_denied", "utterance": text,
            }))
        elif command == "fail":
            self.emit(message.reply("complete_intent_failure", {"utterance": text, "lang": lang}))
        elif command == "multi":
            for part in (1, 2):
                self.emit(message.reply("speak", {"utterance": f"echo: {text} ({part}/2)", "lang": lang, "meta": meta}))
        elif command == "rich":
            self.emit(message.reply("speak", {
                "utterance": f"echo: {text}", "lang": lang, "meta": meta, "rich_media_data": RICH_MEDIA,
            }))
        else:
            self.emit(message.reply("speak", {"utterance": f"echo: {text}", "lang": lang, "meta": meta}))
        self.emit(message.reply("ovos.utterance.handled", {"name": "thalovant.echo"}))

    def on_emit_request(self, message: Message) -> None:
        context = dict(message.data.get("context") or {})
        peer = message.data.get("peer")
        if peer:
            context["destination"] = peer
        self.emit(Message(message.data.get("type") or "speak", message.data.get("data") or {}, context))


def main() -> int:
    parser = argparse.ArgumentParser(description="thalovant test hub echo agent")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record")
    parser.add_argument("--ready-file", required=True)
    args = parser.parse_args()

    bus = MessageBusClient(host=args.host, port=args.port, route="/core")
    agent = EchoAgent(bus, args.record)
    bus.on("message", agent.record)
    bus.on("recognizer_loop:utterance", agent.on_utterance)
    bus.on(EMIT_TYPE, agent.on_emit_request)
    bus.run_in_thread()
    if not bus.connected_event.wait(30):
        print(f"echo agent: no bus at {args.host}:{args.port}", flush=True)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open(args.ready_file, "w", encoding="utf-8") as fh:
        fh.write("ready\n")
    print(f"echo agent connected to {args.host}:{args.port}", flush=True)
    stop.wait()
    bus.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
