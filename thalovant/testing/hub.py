"""FakeHub: an in-memory, sans-IO HiveMind hub for tests and for embedding the core without a hub.

Theory of operation
-------------------
``FakeHub`` plays the hub's half of the wire protocol for one client at a time. It never does IO and never
reads a clock: frames go in through :meth:`FakeHub.receive` and the frames the hub would answer come back as
a list (``str`` for a text frame, ``bytes`` for a binary one). A transport adapter
(:mod:`thalovant.testing.transport`) moves those frames between the hub and a client machine, emulating
WebSocket, HTTP polling or MQTT.

One logical connection::

    open_connection()  -> greeting: HELLO + HANDSHAKE offer (v1 or v3 Noise)
    client HANDSHAKE   -> v1: envelope answer (password path)
                          v3: Noise XXpsk2 message 2, then message 3 pins the client
    client HELLO       -> the client's session is remembered (hub 4.x rewrites
                          ``context.session`` of every later bus message with it)
    client BUS         -> counted by request id; utterances answered by the echo rules
    close_connection() -> the keys and the session are forgotten

Answers come from :mod:`thalovant.testing.echo` (the harness echo skill's rules: ``echo: <text>``, ``deny``,
``fail``, ``unmatched``, ``silent``, ``multi``); ``behaviours`` can replace or add rules, and ``denied_types``
makes the hub refuse message types with ``hive.policy.denied`` (hub 5.x style).

Failure injection: :meth:`corrupt_next` garbles the next frame the hub sends; :meth:`restart` forgets
everything (the transport decides how the client notices). Secrets never appear in ``repr``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from returns.result import Failure, Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake import v1_crypto as v1
from thalovant.core.handshake.noise import build_prologue, protocol_name, public_key
from thalovant.core.handshake.noise_handshaker import NoiseHandshaker
from thalovant.core.handshake.v1_crypto import Cipher, Encoding
from thalovant.core.handshake.v3_channel import NoiseChannel
from thalovant.core.machine import Entropy
from thalovant.core.wire.bitstring import decode_bitstring, encode_bitstring
from thalovant.core.wire.codec import decode_json, encode_json
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType
from thalovant.testing.echo import UTTERANCE, Behaviour, counting_entropy, denial_for, echo_replies
from thalovant.testing.hub_query import query_answers
from thalovant.testing.synth import SYNTH_TYPE, speech_frames

__all__ = ["HUB_CIPHERS", "HUB_ENCODINGS", "FakeHub", "HubFrame"]

HubFrame = str | bytes

HUB_ENCODINGS = ("JSON-B64", "JSON-URLSAFE-B64", "JSON-B91", "JSON-Z85B", "JSON-Z85P", "JSON-B32", "JSON-HEX")
HUB_CIPHERS = ("CHACHA20-POLY1305", "AES-GCM")
_NOISE_SUITES = ("25519_ChaChaPoly_SHA256", "25519_AESGCM_SHA256")


@dataclass
class _Link:
    """The hub's state for the one logical connection it has."""

    key: bytes | None = None
    cipher: Cipher = Cipher.AES_GCM
    encoding: Encoding = Encoding.JSON_HEX
    session: dict[str, Any] | None = None
    greeted: bool = False
    noise: NoiseHandshaker | None = None
    channel: NoiseChannel | None = None
    offer: dict[str, Any] | None = None
    hello: dict[str, Any] | None = None
    failed: str = ""


class FakeHub:
    """The hub's half of the protocol, in memory (see the module docstring).

    Args:
        password: the hub-side password of the client (v1 password path; v3 needs ``noise_psk``).
        crypto_key: the pre-shared key (v1 pre-shared path).
        generation: 1 (legacy v1 handshake) or 3 (Noise XXpsk2).
        noise_psk: the 32-byte Noise pre-shared key the client uses (generation 3).
        hub_version: "4" rewrites ``context.session`` with the client's HELLO session (hub 4.x);
            "5" keeps the client's context.
        peer: the client's peer id as the hub names it.
        entropy: the hub's own randomness (nonces, IVs, Noise ephemerals).
        behaviours: utterance text (lower case) -> scripted answer, tried before the echo rules.
        node_id: the hub's node id in its HELLO.
        denied_types: bus message types the hub refuses with ``hive.policy.denied`` (hub 5.x style: the
            denial carries no request id; the refused message is not counted as received).

    Attributes:
        received: every bus message the hub got, in order (after its session rewrite).
        request_counts: how many times each request id reached the hub.
        frames_in / frames_out: frames received and sent (the garbled ones included).
        connections / handshakes: logical connections opened, handshakes answered.
    """

    def __init__(
        self,
        *,
        password: str | None = None,
        crypto_key: str | None = None,
        generation: int = 1,
        noise_psk: bytes | None = None,
        hub_version: str = "4",
        peer: str = "FakeClient/1.0::1::fake-site::default",
        entropy: Entropy | None = None,
        behaviours: Mapping[str, Behaviour] | None = None,
        node_id: str = "fakehub:0.0.0.0",
        denied_types: Iterable[str] = (),
    ) -> None:
        if generation not in (1, 3):
            raise ValueError("generation must be 1 or 3")
        if generation == 3 and (noise_psk is None or len(noise_psk) != 32):
            raise ValueError("generation 3 needs a 32-byte noise_psk")
        self._password, self._crypto_key, self._noise_psk = password, crypto_key, noise_psk
        self.generation, self.hub_version, self.peer, self.node_id = generation, hub_version, peer, node_id
        self._entropy = entropy or counting_entropy(b"fake-hub")
        self._static = hashlib.sha256(b"fake-hub-static" + node_id.encode()).digest()
        self.behaviours: dict[str, Behaviour] = dict(behaviours or {})
        self.denied_types = frozenset(denied_types)
        self.denied: list[BusMessage] = []
        self._link: _Link | None = None
        self._corrupt = 0
        self.pinned_client: bytes | None = None
        self.received: list[BusMessage] = []
        self.frames: list[HiveMessage] = []  # every non-bus frame the client sent (BINARY ...), in order
        self.request_counts: Counter[str] = Counter()
        self.frames_in = 0
        self.frames_out = 0
        self.connections = 0
        self.handshakes = 0
        self.hellos: list[dict[str, Any]] = []
        self.patterns: list[str] = []  # the Noise pattern of each v3 handshake

    def __repr__(self) -> str:
        return (
            f"<FakeHub generation={self.generation} hub_version={self.hub_version} connected={self.connected} "
            f"received={len(self.received)}>"
        )

    # ---- connection life cycle -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A logical connection exists."""
        return self._link is not None

    @property
    def ready(self) -> bool:
        """The connection's channel is keyed (handshake done or pre-shared key in use)."""
        link = self._link
        return link is not None and (link.channel is not None or (link.key is not None and link.session is not None))

    @property
    def static_public(self) -> bytes:
        """The hub's X25519 public key (what a v3 client pins after its first contact)."""
        return public_key(self._static)

    @property
    def session(self) -> dict[str, Any] | None:
        """The session the client announced in its HELLO (None before)."""
        return self._link.session if self._link is not None else None

    def open_connection(self, *, greet: bool = True) -> list[HubFrame]:
        """A client connected: start a fresh logical connection and return the greeting.

        Args:
            greet: send the greeting now (WebSocket, HTTP); MQTT hubs greet after the client's HELLO.
        """
        self.connections += 1
        self._link = _Link(key=v1.preshared_key(self._crypto_key) if self._crypto_key else None)
        return self._greeting() if greet else []

    def close_connection(self) -> None:
        """The client's connection ended: forget its keys and session."""
        self._link = None

    def restart(self, *, new_key: bool = False, keep_pins: bool = False) -> None:
        """The hub process restarted: connections (and pins, unless ``keep_pins``) forgotten; ``new_key``: rotate."""
        self._link = None
        self.pinned_client = self.pinned_client if keep_pins else None
        self._static = hashlib.sha256(b"rotated" + self._static).digest() if new_key else self._static

    def corrupt_next(self, count: int = 1) -> None:
        """Garble the next ``count`` frames the hub sends (decryption on the client fails)."""
        self._corrupt += count

    def _greeting(self) -> list[HubFrame]:
        link = self._link
        assert link is not None
        link.greeted = True
        hello = {"pubkey": "-----BEGIN PUBLIC KEY-----\nFAKE\n-----END PUBLIC KEY-----", "peer": self.peer}
        hello["node_id"] = self.node_id
        common = {"binarize": False, "encodings": list(HUB_ENCODINGS), "ciphers": list(HUB_CIPHERS)}
        offer: dict[str, Any]
        if self.generation == 3:
            patterns = ["KKpsk0", "XXpsk2"] if self.pinned_client else ["XXpsk2"]  # KK once it knows the client
            offer = {
                "max_protocol_version": 3,
                **common,
                "noise": {"patterns": patterns, "suites": list(_NOISE_SUITES)},
            }
        else:
            has_psk = self._crypto_key is not None
            offer = {
                "handshake": not has_psk,
                "min_protocol_version": 0 if has_psk else 1,
                "max_protocol_version": 1,
                "preshared_key": has_psk,
                "password": self._password is not None,
                "crypto_required": True,
                **common,
            }
        link.hello, link.offer = hello, offer
        return [
            encode_json(HiveMessage(msg_type=MsgType.HELLO, payload=hello)),
            encode_json(HiveMessage(msg_type=MsgType.HANDSHAKE, payload=offer)),
        ]

    # ---- frames from the client ------------------------------------------------------------------

    def receive(self, frame: HubFrame) -> list[HubFrame]:
        """One frame from the client; returns the hub's answers (empty when it has none).

        Frames the hub cannot read are counted and dropped (``last_error`` says why), like a hub that
        ignores garbage; frames before a connection exists are dropped too.
        """
        self.frames_in += 1
        link = self._link
        if link is None:
            self.last_error = "no connection"
            return []
        message = self._open(link, frame)
        if message is None:
            return []
        if message.msg_type is MsgType.HANDSHAKE and isinstance(message.payload, dict):
            return self._on_shake(link, message.payload)
        if message.msg_type is MsgType.HELLO and isinstance(message.payload, dict):
            return self._on_hello(link, message.payload)
        if message.msg_type.value in self.refused_kinds:  # hub 5.x: a frame type this client has no grant for
            self.close_with = (4003, f"{message.msg_type.value.upper()} is not allowed for this client")
            return []
        if message.msg_type is MsgType.QUERY and not self.hub_version.startswith("4"):  # hub 4.x ignores QUERY
            found = query_answers(message, self.behaviours, echo_replies, responder=self.node_id, peer=self.peer,
                                  session=link.session)  # fmt: skip
            return [frame for answer in found for frame in self.seal(answer)]
        bus = message.bus()
        if bus is None:
            self.frames.append(message)
            return []
        return self._on_bus(link, bus)

    last_error: str = ""
    close_with: tuple[int, str] | None = None  # the hub closes the link (code, reason): the transport acts on it
    refused_kinds: frozenset[str] = frozenset()  # frame kinds ("query", "broadcast") refused with close 4003

    def _open(self, link: _Link, frame: HubFrame) -> HiveMessage | None:
        if link.channel is not None:
            opened = link.channel.open(frame)
            if isinstance(opened, Failure):
                self.last_error = "noise frame did not open"
                return None
            return opened.unwrap()
        if isinstance(frame, str):
            try:
                obj = json.loads(frame)
            except ValueError:
                self.last_error = "not JSON"
                return None
            if isinstance(obj, dict) and "ciphertext" in obj:
                if link.key is None:
                    self.last_error = "encrypted frame before a key"
                    return None
                text = v1.open_wrapper(obj, key=link.key, cipher=link.cipher, encoding=link.encoding)
                if isinstance(text, Failure):
                    self.last_error = "wrapper did not open"
                    return None
                return self._decoded(decode_json(text.unwrap()))
            return self._decoded(decode_json(frame))
        if link.key is not None:
            plain = v1.open_binary(frame, key=link.key, cipher=link.cipher)
            if isinstance(plain, Success):
                return self._decoded(decode_bitstring(plain.unwrap()))
        return self._decoded(decode_bitstring(frame))

    def _decoded(self, result: Any) -> HiveMessage | None:
        if isinstance(result, Success) and isinstance(result.unwrap(), HiveMessage):
            message: HiveMessage = result.unwrap()
            return message
        self.last_error = "undecodable frame"
        return None

    def _on_shake(self, link: _Link, payload: dict[str, Any]) -> list[HubFrame]:
        noise = payload.get("noise")
        if self.generation == 3 and isinstance(noise, dict):
            try:
                return self._on_noise(link, noise)
            except (LocalProtocolError, ValueError, TypeError) as exc:  # a client's garbage never crashes the hub
                link.failed = f"noise: {type(exc).__name__}"
                return []
        envelope = payload.get("envelope")
        if self._password is None or not isinstance(envelope, str) or len(envelope) < 16:
            link.failed = "bad handshake"
            return []
        encoding = next((e for e in payload.get("encodings", ["JSON-HEX"]) if e in HUB_ENCODINGS), "JSON-HEX")
        cipher = next((c for c in payload.get("ciphers", ["AES-GCM"]) if c in HUB_CIPHERS), "AES-GCM")
        try:
            iv_client = bytes.fromhex(envelope[:16])
        except ValueError:
            link.failed = "bad envelope"
            return []
        iv_hub = self._entropy(8)
        self.handshakes += 1
        reply = {"envelope": v1.client_envelope(self._password, iv_hub), "encoding": encoding, "cipher": cipher}
        frame = encode_json(HiveMessage(msg_type=MsgType.HANDSHAKE, payload=reply))
        link.key = v1.derive_password_key(self._password, iv_client, iv_hub)
        link.cipher, link.encoding = Cipher(cipher), Encoding(encoding)
        return [self._out(frame)]

    def _on_noise(self, link: _Link, noise: dict[str, Any]) -> list[HubFrame]:
        try:
            msg = bytes.fromhex(str(noise.get("msg", "")))
        except ValueError:
            return []
        if link.noise is None:
            pattern, suite = str(noise.get("pattern")), str(noise.get("suite"))
            self.patterns.append(pattern)
            prologue = build_prologue(link.hello, link.offer, protocol_name(pattern, suite))
            assert self._noise_psk is not None
            link.noise = NoiseHandshaker(
                pattern=pattern,
                suite=suite,
                psk=self._noise_psk,
                prologue=prologue,
                static_private=self._static,
                entropy=self._entropy,
                initiator=False,
                remote_static=self.pinned_client if pattern == "KKpsk0" else None,
            )
            if not isinstance(link.noise.read_message(msg), Success):  # KKpsk0: wrong password or keys
                self.close_with = (1008, "handshake failure: noise message 1 rejected")
                return []
            self.handshakes += 1
            msg2 = link.noise.write_message(json.dumps({"encoding": "JSON-HEX"}).encode())
            self._maybe_finish(link)  # KKpsk0 ends with message 2
            reply = HiveMessage(msg_type=MsgType.HANDSHAKE, payload={"noise": {"msg": msg2.hex()}})
            return [self._out(encode_json(reply))]
        if not isinstance(link.noise.read_message(msg), Success):
            link.failed = "noise message 3 rejected (wrong psk?)"
            return []
        self._maybe_finish(link)
        return []

    def _maybe_finish(self, link: _Link) -> None:
        noise = link.noise
        if noise is None or not noise.finished or link.channel is not None:
            return
        if self.pinned_client not in (None, noise.remote_static):  # hub 5.x refuses a client key it did not pin
            self.close_with = (1008, "client Noise static key contradicts the pinned key")
            return
        send, receive = noise.split()
        self.pinned_client = noise.remote_static
        link.channel = NoiseChannel(
            send=send,
            receive=receive,
            pattern=noise.pattern,
            suite=noise.suite,
            local_static=public_key(self._static),
            remote_static=noise.remote_static or b"",
        )

    def _on_hello(self, link: _Link, payload: dict[str, Any]) -> list[HubFrame]:
        session = payload.get("session")
        link.session = dict(session) if isinstance(session, dict) else {"session_id": "default"}
        self.hellos.append(dict(payload))
        if not link.greeted:  # MQTT: the client's cleartext HELLO opens the conversation
            return self._greeting()
        return []

    def _on_bus(self, link: _Link, bus: BusMessage) -> list[HubFrame]:
        if bus.type in self.denied_types:
            self.denied.append(bus)
            return self.seal(denial_for(bus.type, sorted({UTTERANCE} - self.denied_types)))
        context = copy.deepcopy(bus.context)
        if self.hub_version.startswith("4") and link.session is not None:
            context["session"] = copy.deepcopy(link.session)
        request = BusMessage(type=bus.type, data=copy.deepcopy(bus.data), context=context)
        self.received.append(request)
        rid = context.get("request_id")
        if isinstance(rid, str):
            self.request_counts[rid] += 1
        if bus.type == SYNTH_TYPE:  # a hub with a TTS binary plugin renders speech (thalovant.testing.synth)
            return [self._out(frame) for frame in speech_frames(request, link, self._entropy)]
        if bus.type != UTTERANCE:
            return []
        utterances = bus.data.get("utterances") or [""]
        text = utterances[0].strip().lower() if isinstance(utterances, list) and isinstance(utterances[0], str) else ""
        return [frame for answer in self.behaviours.get(text, echo_replies)(request) for frame in self.seal(answer)]

    # ---- frames to the client --------------------------------------------------------------------

    def seal(self, bus: BusMessage | HiveMessage) -> list[HubFrame]:
        """The frames carrying ``bus`` (or a whole frame, e.g. BINARY) to the client (empty when it cannot yet)."""
        link = self._link
        if link is None:
            return []
        message = bus if isinstance(bus, HiveMessage) else HiveMessage(msg_type=MsgType.BUS, payload=bus.as_dict())
        message = replace(message, source_peer=self.peer) if message.msg_type is MsgType.BUS else message
        if link.channel is not None:
            return [self._out(f) for f in link.channel.seal(message)]
        if link.key is None:
            return []
        nonce = self._entropy(link.cipher.nonce_len)
        if message.msg_type is MsgType.BINARY:  # always a binary frame (spec §6.4)
            return [self._out(v1.seal_binary(encode_bitstring(message), key=link.key, cipher=link.cipher, nonce=nonce))]
        text = v1.seal_wrapper(
            encode_json(message), key=link.key, cipher=link.cipher, encoding=link.encoding, nonce=nonce
        )
        return [self._out(text)]

    def push(
        self, event_type: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None
    ) -> list[HubFrame]:
        """Frames for any bus event the hub wants to send (e.g. a ``speak`` nobody asked for)."""
        return self.seal(BusMessage(type=event_type, data=dict(data or {}), context=dict(context or {})))

    def _out(self, frame: HubFrame) -> HubFrame:
        self.frames_out += 1
        if self._corrupt <= 0:
            return frame
        self._corrupt -= 1
        if isinstance(frame, bytes):
            return bytes(b ^ 0x5A for b in frame)
        try:
            obj = json.loads(frame)
        except ValueError:
            return frame[::-1]
        if isinstance(obj, dict) and isinstance(obj.get("ciphertext"), str):
            text = obj["ciphertext"]
            obj["ciphertext"] = text[::-1]
            return json.dumps(obj)
        return '{"msg_type": 42}'
