"""How a session writes to the hub: who it speaks as, and the frames its messages go out as.

``wire="bitstring"`` (MQTT on hub 4.x, spec §8.3) encodes every client frame, cleartext or
sealed, as a bitstring; ``wire="text"`` sends JSON text and only BINARY messages as binary frames.
A v3 (Noise) handshake message is always JSON text.

Rule: a message is encoded once when the user hands it over, so that a queued message can never
fail later, while the session is handling network input.
"""

from __future__ import annotations

from dataclasses import dataclass

from thalovant.core.errors import LocalProtocolError
from thalovant.core.handshake.contract import SecureChannel
from thalovant.core.handshake.v1_crypto import Cipher, Encoding, LegacyChannel, usable_preshared_key
from thalovant.core.machine import Entropy, Output
from thalovant.core.session.events import SendFailed, SendFrame, Wire
from thalovant.core.wire.bitstring import encode_bitstring
from thalovant.core.wire.codec import bus_message, encode_json, hello_message
from thalovant.core.wire.frame import Frame
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType

__all__ = ["Outbound", "Retrigger"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbound:
    """Who a session speaks as (session and site id, user agent) and the wire it writes.

    Attributes:
        session_id: the OVOS session id sent in HELLO and filled into BUS sessions.
        site_id: the client's site, sent in HELLO and filled into BUS sessions.
        useragent: the client's user agent (filled into BUS contexts).
        wire: ``"text"`` or ``"bitstring"``.
    """

    session_id: str
    site_id: str | None
    useragent: str
    wire: Wire

    def hello(self) -> HiveMessage:
        """The client HELLO (spec §4.7)."""
        return hello_message(session_id=self.session_id, site_id=self.site_id)

    def message(self, raw: object) -> HiveMessage:
        """The HiveMessage a user send goes out as (a bus message gets the session's context).

        Raises:
            LocalProtocolError: ``raw`` is neither a BusMessage nor a HiveMessage, or cannot be encoded.
        """
        if isinstance(raw, BusMessage):
            message = bus_message(raw, session_id=self.session_id, site_id=self.site_id, useragent=self.useragent)
        elif isinstance(raw, HiveMessage):
            message = raw
        else:
            raise LocalProtocolError("UserSend.message must be a BusMessage or a HiveMessage")
        # Validate now, so that a queued message cannot fail later while handling network input.
        if self.wire == "bitstring" or message.msg_type is MsgType.BINARY:
            encode_bitstring(message)
        else:
            encode_json(message)
        return message

    def clear(self, message: HiveMessage, *, v3: bool = False) -> Frame:
        """A cleartext frame (greeting or handshake): a bitstring on that wire, except for v3, else JSON."""
        if self.wire == "bitstring" and not v3:
            return encode_bitstring(message)
        return encode_json(message)

    def trigger(self, *, crypto_key: str | None, entropy: Entropy) -> Frame:
        """The HELLO a client sends at link-up when the hub greets only after a first frame (MQTT).

        With a ``crypto_key`` on the bitstring wire it is sealed with that key: hub 4.x's MQTT plugin
        (0.1.0a2) decrypts every binary frame with it. Hub 5.x (plugin 0.2.x, Noise only) reads a
        binary frame before the Noise session as a cleartext bitstring, so its sessions pass
        ``crypto_key=None`` (a sealed trigger still opened the connection there, but the hub logged
        the random bytes as a malformed frame: "unassigned WIRE-1 message-type code 15" and the like).
        """
        hello = self.hello()
        key = usable_preshared_key(crypto_key) if crypto_key else None  # unusable: the handshake says so
        if self.wire == "bitstring" and key is not None:
            # A hub holding our crypto_key decrypts every binary frame with it (spec §8.3 step 4);
            # a hub without one drops this undecodable trigger, which still opens the connection.
            psk = LegacyChannel(
                key=key,
                cipher=Cipher.AES_GCM,
                encoding=Encoding.JSON_HEX,
                entropy=entropy,
            )
            return psk.seal(hello, binary=True)[0]
        return self.clear(hello)

    def seal(self, channel: SecureChannel, message: HiveMessage, refs: tuple[int, ...]) -> list[Output]:
        """``message`` sealed into its frame(s); the last frame completes ``refs``.

        A message the channel cannot seal fails its sends with ``SendFailed`` instead.
        """
        try:
            frames = channel.seal(message, binary=self.wire == "bitstring")
        except LocalProtocolError as exc:
            return [SendFailed(ref=ref, reason=str(exc)) for ref in refs]
        last = len(frames) - 1
        return [SendFrame(data=frame, refs=refs if i == last else ()) for i, frame in enumerate(frames)]


@dataclass(slots=True)
class Retrigger:
    """When a session sends its trigger HELLO again while the hub has not greeted (MQTT).

    A trigger published before the hub subscribed (hub 4.x announces ``online`` first) reaches
    nobody; the next goes ``gap`` seconds later, and each wait doubles.
    """

    at: float | None = None
    gap: float = 0.2

    def start(self, now: float) -> None:
        """The first trigger left at ``now``."""
        self.at = now + self.gap

    def due(self, now: float) -> bool:
        """Whether to send it again at ``now`` (and when the next one is due)."""
        if self.at is None or now < self.at:
            return False
        self.gap *= 2
        self.at = now + self.gap
        return True
