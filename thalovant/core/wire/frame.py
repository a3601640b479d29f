"""What a link carries: a text or binary frame, and why an inbound one could not be opened."""

from __future__ import annotations

from dataclasses import dataclass

Frame = str | bytes  # a text frame or a binary frame, as the link carries it


@dataclass(frozen=True, slots=True)
class FrameProblem:
    """Why an inbound frame could not be opened or parsed. Never holds secrets."""

    code: str  # e.g. "bad-json", "too-deep", "bad-key", "auth-failed", "bad-bitstring", "downgrade"
    detail: str = ""
