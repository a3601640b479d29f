"""The client's Noise (hub 5.x) static key on disk.

Hub 5.x pins the static key of a client on first contact and refuses any other, so the key must
survive restarts: it is kept in a file of its own, created with mode 0600 (parent 0700) on first use.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Literal

from thalovant.core.machine import Entropy

__all__ = ["KEY_SIZE", "NoiseKeyFile", "default_noise_key_path", "load_or_create_key", "noise_static_key"]

log = logging.getLogger("thalovant")

#: Bytes in a Noise static (X25519) private key.
KEY_SIZE = 32

#: What ``noise_key_file=`` accepts: a path, ``None`` (the default path) or ``False`` (keep it in memory).
NoiseKeyFile = str | os.PathLike[str] | Literal[False] | None


def default_noise_key_path(access_key: str) -> Path:
    """``$XDG_STATE_HOME/thalovant/noise-keys/<hash of the access key>.key`` (``~/.local/state`` without it)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    name = hashlib.sha256(access_key.encode("utf-8")).hexdigest()[:24]
    return Path(state) / "thalovant" / "noise-keys" / f"{name}.key"


def load_or_create_key(path: Path, entropy: Entropy, size: int = KEY_SIZE) -> bytes:
    """Read a raw key file, or create it (mode 0600, parent 0700) with fresh random bytes.

    Raises:
        OSError: the file cannot be read or created.
    """
    try:
        data = path.read_bytes()
        if len(data) == size:
            return data
        log.warning("ignoring a malformed key file (%d bytes, expected %d); writing a new one", len(data), size)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key: bytes = entropy(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def noise_static_key(
    *, password: str | None, access_key: str, key_file: NoiseKeyFile, entropy: Entropy
) -> bytes | None:
    """The client's persistent Noise static key, or None when the identity has no password (no Noise).

    ``key_file=False`` draws a key for this client object only.

    Raises:
        OSError: the key file cannot be read or created.
    """
    if not password:
        return None
    if key_file is False:
        return entropy(KEY_SIZE)
    path = Path(key_file) if key_file else default_noise_key_path(access_key)
    return load_or_create_key(path, entropy)
