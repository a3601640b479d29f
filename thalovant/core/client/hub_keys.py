"""Hub 5.x key pinning, as seen from a :class:`~thalovant.core.client.connection.Connection`.

Pure: these functions read the connection machine's current link (its session and Noise handshake,
read-only, as :mod:`thalovant.core.client.info` does) and say what the shell needs:

* :func:`learned_hub_key`: the hub's static key the ready session authenticated (the shell pins it
  on first use, ``thalovant.shell.hub_keys``);
* :func:`key_stop`: why the connection stopped for good over a key, if it did: the hub presented
  another static key than the pinned one (``hub-key-changed``), or the hub refused this client's static
  key (``client-key-rejected``: hub 5.x pinned another one for this access key).

The decisions themselves (pin, keep, mismatch) are :mod:`thalovant.core.handshake.pins`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from thalovant.core.client.connection import Connection, ConnectionConfig
from thalovant.core.handshake.pins import fingerprint

__all__ = [
    "REFUSAL_WINDOW",
    "KeyStop",
    "key_stop",
    "kk_refused",
    "learned_hub_key",
    "refusal_possible",
    "repinned",
    "without_kk",
]

#: Seconds after an XXpsk2 handshake in which hub 5.x closing the link means "not your key" (spec §7.8).
REFUSAL_WINDOW = 0.75

StopKind = Literal["hub-key-changed", "client-key-rejected"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyStop:
    """Why a connection stopped over a Noise key (public keys only: nothing here is a secret).

    Attributes:
        kind: ``"hub-key-changed"`` or ``"client-key-rejected"``.
        endpoint: the hub's pin id (``wss://host:port``), as the shell named it.
        pinned: the hub key pinned for this endpoint (hub-key-changed), if known.
        presented: the hub key the hub presented, if known.
        client_key: this client's static public key.
    """

    kind: StopKind
    endpoint: str
    pinned: bytes | None = None
    presented: bytes | None = None
    client_key: bytes | None = None

    def shown(self, key: bytes | None) -> str:
        """``key``'s fingerprint, or ``"unknown"``."""
        return fingerprint(key) if key is not None else "unknown"


def _handshake(machine: object) -> object | None:
    if not isinstance(machine, Connection):
        return None
    session = machine._ep.session  # read-only: the current link's session (None before the first link)
    return session.handshake if session is not None else None


def learned_hub_key(machine: object) -> bytes | None:
    """The hub static key the current link's Noise handshake authenticated (None: none, or not v3)."""
    handshake = _handshake(machine)
    key = getattr(handshake, "hub_static", None)
    if getattr(handshake, "failure", "") is not None or not isinstance(key, bytes):
        return None
    return key


def refusal_possible(machine: object) -> bool:
    """The ready session ran XXpsk2 although the hub offered KKpsk0: the hub pinned a client key for this
    access key, and refuses ours right after the handshake if it is another one (spec §7.8)."""
    return _xx_where_hub_knows_a_key(_handshake(machine))


def _xx_where_hub_knows_a_key(handshake: object | None) -> bool:
    return (
        getattr(handshake, "failure", "") is None
        and getattr(handshake, "pattern", None) == "XXpsk2"
        and getattr(handshake, "hub_knows_a_client_key", False) is True
    )


def kk_refused(machine: object) -> bool:
    """The connection gave up on a ``KKpsk0`` handshake that never finished (a single-attempt policy: the
    ``XXpsk2`` retry of spec §7.8, which tells a wrong password from a changed hub key, never ran)."""
    handshake = _handshake(machine)
    if handshake is None or getattr(handshake, "pattern", None) != "KKpsk0":
        return False
    assert isinstance(machine, Connection)
    ep = machine._ep  # over WebSocket the hub closes 1008 "handshake failure"; over HTTP it just drops us
    return not ep.ready_generation and ep.failure != "client-key-rejected" and machine.state.value == "gave-up"


def key_stop(machine: object, endpoint: str) -> KeyStop | None:
    """Why ``machine`` stopped over a Noise key (None: it did not; ``endpoint``: the pin id to name)."""
    handshake = _handshake(machine)
    if handshake is None:
        return None
    assert isinstance(machine, Connection)
    client_key = getattr(handshake, "static_public", None)
    client_key = client_key if isinstance(client_key, bytes) else None
    presented = getattr(handshake, "hub_static", None)
    presented = presented if isinstance(presented, bytes) else None
    if getattr(handshake, "failure", None) == "hub-key-changed":
        pinned = getattr(handshake, "pinned_hub_key", None)
        pinned = pinned if isinstance(pinned, bytes) else None
        return KeyStop(
            kind="hub-key-changed", endpoint=endpoint, pinned=pinned, presented=presented, client_key=client_key
        )
    failure = machine._ep.failure
    # hub 5.x often closes with "invalid message" (our HELLO reached a connection it had just refused) rather
    # than with its reason: a close right after an XX the hub did not need (it offered KK) is that refusal
    suspected = failure == "refused-after-handshake" and _xx_where_hub_knows_a_key(handshake)
    if failure == "client-key-rejected" or suspected:
        return KeyStop(kind="client-key-rejected", endpoint=endpoint, presented=presented, client_key=client_key)
    return None


def repinned(config: ConnectionConfig, pin: bytes | None) -> ConnectionConfig:
    """``config`` whose Noise handshakes check the hub's key against ``pin`` (None: trust on first use).

    A config without Noise options (no password, so no Noise) is returned unchanged.
    """
    options = [(name, value) for name, value in config.v3_options if name != "pinned_hub_key"]
    if not options:
        return config
    pinned = [("pinned_hub_key", pin)] if pin is not None else []
    return replace(config, v3_options=(*options, *pinned))


def without_kk(config: ConnectionConfig) -> ConnectionConfig:
    """``config`` whose Noise handshakes run ``XXpsk2`` even with a pin (the pin is still checked)."""
    options = [(name, value) for name, value in config.v3_options if name != "allow_kk"]
    return replace(config, v3_options=(*options, ("allow_kk", False))) if options else config
