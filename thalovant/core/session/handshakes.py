"""Which handshake a session runs: the v1 handshake at link-up, Noise (v3) when the hub offers it.

A :class:`~thalovant.core.session.machine.Session` serves one link and owns one handshake machine
at a time. :class:`HandshakePlan` holds what every handshake of that session is built from (the
credentials, the offer, the wire) and builds them: :meth:`HandshakePlan.legacy` at ``LinkOpened``
and :meth:`HandshakePlan.noise` when the v1 handshake hands over with ``NoiseOffered`` (spec §7).

Rule: the plan never shows a credential; its repr lists only the harmless fields.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from thalovant.core.handshake.v1 import Handshake, NoiseOffered
from thalovant.core.machine import Entropy
from thalovant.core.session.classify import Verdict

__all__ = ["HandshakePlan"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakePlan:
    """The credentials and options every handshake of one session is built from.

    Attributes:
        entropy: randomness for IVs, nonces and Noise keys.
        timeout: seconds from the start of a handshake to its end.
        password: hub password (password path / Noise PSK).
        crypto_key: legacy pre-shared key.
        access_key: the access key (the v3 handshake sends it; the v1 handshake needs it on MQTT).
        useragent: the client's user agent.
        prefer: ``"password"`` or ``"psk"`` when the hub offers both.
        binarize: ask the hub for binarized hub→client frames.
        encodings: wrapper encodings offered on the password path, best first.
        ciphers: ciphers offered on the password path, best first.
        bitstring: the wire is MQTT bitstrings (hub 4.x, spec §8.3).
        v3_options: extra keyword arguments for ``NoiseHandshake``.
    """

    entropy: Entropy = field(repr=False)
    timeout: float
    password: str | None = field(repr=False)
    crypto_key: str | None = field(repr=False)
    access_key: str = field(repr=False)
    useragent: str
    prefer: str
    binarize: bool
    encodings: tuple[str, ...]
    ciphers: tuple[str, ...]
    bitstring: bool
    v3_options: Mapping[str, Any] = field(repr=False)

    def legacy(self, *, started_at: float) -> Handshake:
        """The v1 handshake, started at ``started_at``.

        Raises:
            LocalProtocolError: no credentials, or an unknown encoding, cipher or preference.
        """
        return Handshake(
            entropy=self.entropy,
            started_at=started_at,
            timeout=self.timeout,
            password=self.password,
            crypto_key=self.crypto_key,
            access_key=self.access_key,
            useragent=self.useragent,
            binarize=self.binarize,
            prefer=self.prefer,
            encodings=self.encodings,
            ciphers=self.ciphers,
            bitstring=self.bitstring,
        )

    def noise(self, offered: NoiseOffered, *, started_at: float) -> Any:
        """The v3 ``NoiseHandshake`` taking over from the v1 one, or the :class:`.Verdict` why it cannot run."""
        if not self.password:
            return Verdict("no-credentials", "the hub requires protocol v3, which needs a password", False, True)
        factory = _noise_factory()
        if factory is None:
            return Verdict("v3-unsupported", "the hub speaks protocol v3 (Noise), not available here", False, False)
        return factory(
            password=self.password,
            access_key=self.access_key,
            useragent=self.useragent,
            entropy=self.entropy,
            started_at=started_at,
            timeout=self.timeout,
            offer=offered.offer,
            hello=offered.hello,
            binarize=self.binarize,
            **self.v3_options,
        )


def _noise_factory() -> Callable[..., Any] | None:
    """``NoiseHandshake``, looked up when a hub first offers v3 (None if that module is missing)."""
    try:
        module = importlib.import_module("thalovant.core.handshake.v3")
        factory: Callable[..., Any] = module.NoiseHandshake
    except (ImportError, AttributeError):
        return None
    return factory
