"""Hub key pinning (hub 5.x, spec §7.2, §7.8): the pure decisions, and how keys are shown.

A client pins the hub's Noise static public key the first time it connects (trust on first use)
and from then on accepts only that key. This module decides, for a presented key, whether to pin
it, keep the pin or stop (:func:`decide`); it names a pin (:func:`pin_id`, :func:`pin_name`),
shows a key (:func:`fingerprint`) and reads a key a user typed (:func:`parse_hub_key`).
Reading and writing pins is the shell's job (``thalovant.shell.hub_keys``).

Rule: a pin is never replaced here. A changed key is a hard stop (``MISMATCH``); only an explicit
user action (forgetting the pin, or naming the new key) changes it.

>>> decide(None, b"k" * 32) is PinDecision.PIN
True
>>> decide(b"k" * 32, b"j" * 32) is PinDecision.MISMATCH
True
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from typing import Final

from returns.result import Failure, Result, Success

__all__ = ["KEY_LEN", "PinDecision", "decide", "fingerprint", "parse_hub_key", "pin_id", "pin_name"]

#: Bytes in a Noise (X25519) public key.
KEY_LEN: Final = 32

_DEFAULT_PORTS: Final = {"ws": 80, "wss": 443, "http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883}


class PinDecision(enum.Enum):
    """What to do with the key a hub presented."""

    PIN = "pin"  # no pin yet: trust on first use, pin it
    KEEP = "keep"  # the pinned key: go on
    MISMATCH = "mismatch"  # another key: stop (never re-pin silently)


def decide(pinned: bytes | None, presented: bytes) -> PinDecision:
    """The decision for ``presented`` given the ``pinned`` key (None: nothing pinned yet)."""
    if pinned is None:
        return PinDecision.PIN
    return PinDecision.KEEP if presented == pinned else PinDecision.MISMATCH


def fingerprint(key: bytes) -> str:
    """How a public key is shown: ``SHA256:`` and the unpadded base64 of its SHA-256 (as OpenSSH does).

    >>> fingerprint(bytes(32))
    'SHA256:Zmh6rfhivXdsj8GLjp+OIAiXFIVu4jOzkCpZHQ1fKSU'
    """
    digest = hashlib.sha256(key).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def pin_id(endpoint: str) -> str:
    """The pin id of a hub endpoint: ``<scheme>://<host>:<port>`` plus its path (no query, no user info).

    The query is dropped (it may carry the authorization token), and so is any user info.

    >>> pin_id("WSS://Hub.Example:5678/?authorization=secret")
    'wss://hub.example:5678'
    >>> pin_id("https://hub.example/hivemind/")
    'https://hub.example:443/hivemind'
    """
    scheme, _, rest = endpoint.strip().partition("://")
    scheme = scheme.lower()
    authority, slash, path = rest.partition("/")
    authority = authority.partition("?")[0].rpartition("@")[2].lower()
    path = (slash + path).partition("?")[0].partition("#")[0].rstrip("/")
    host, colon, port = authority.rpartition(":")
    if not colon or not port.isdigit() or host.endswith(":"):  # no port (or a bare IPv6 address)
        host, port = authority, str(_DEFAULT_PORTS.get(scheme, 0))
    return f"{scheme}://{host}:{port}{path}"


def pin_name(endpoint: str, access_key: str) -> str:
    """A file-name-safe name for the pin of (endpoint, access key): a hash, so neither shows.

    >>> len(pin_name("wss://127.0.0.1:5678", "key"))
    24
    """
    material = f"{pin_id(endpoint)}\n{access_key}".encode()
    return hashlib.sha256(material).hexdigest()[:24]


def parse_hub_key(text: str) -> Result[bytes, str]:
    """A hub public key the user typed: 64 hex digits (``:`` and spaces allowed between them).

    >>> parse_hub_key("00" * 32).unwrap() == bytes(32)
    True
    >>> parse_hub_key("xyz")
    <Failure: must be the hub's 32-byte public key as 64 hex digits>
    """
    cleaned = "".join(text.replace(":", " ").split())
    try:
        key = binascii.unhexlify(cleaned)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_LEN:
        return Failure(f"must be the hub's {KEY_LEN}-byte public key as {2 * KEY_LEN} hex digits")
    return Success(key)
