"""The client's Noise (hub 5.x) static key on disk.

Hub 5.x pins the static key of a client on first contact and refuses any other, so the key must
survive restarts: it is kept in a file of its own, created with mode 0600 (parent 0700) on first use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import Literal

from thalovant.core.errors import ThalovantArgumentError
from thalovant.core.machine import Entropy

__all__ = ["KEY_SIZE", "NoiseKeyFile", "default_noise_key_path", "load_or_create_key", "noise_static_key"]

log = logging.getLogger("thalovant")

#: Bytes in a Noise static (X25519) private key.
KEY_SIZE = 32

#: The client argument a key file problem is reported against.
ARGUMENT = "noise_key_file"

#: What ``noise_key_file=`` accepts: a path, ``None`` (the default path) or ``False`` (keep it in memory).
NoiseKeyFile = str | os.PathLike[str] | Literal[False] | None


def default_noise_key_path(access_key: str) -> Path:
    """``$XDG_STATE_HOME/thalovant/noise-keys/<hash of the access key>.key`` (``~/.local/state`` without it)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    name = hashlib.sha256(access_key.encode("utf-8")).hexdigest()[:24]
    return Path(state) / "thalovant" / "noise-keys" / f"{name}.key"


def load_or_create_key(path: Path, entropy: Entropy, size: int = KEY_SIZE) -> bytes:
    """Read a raw key file, or create it (mode 0600, parent 0700) with fresh random bytes.

    At most ``size + 1`` bytes are read, and only from a regular file.

    Raises:
        ThalovantArgumentError: (argument ``noise_key_file``) the path is not a regular file (a
            directory, a device), or the file cannot be read or created.
    """
    try:
        return _load_or_create(path, entropy, size)
    except (OSError, ValueError) as exc:  # ValueError: a path the OS cannot take (a NUL character)
        if isinstance(exc, ThalovantArgumentError):
            raise
        reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
        raise ThalovantArgumentError(ARGUMENT, f"cannot read or create the Noise key file ({reason})") from None


def _read_key(path: Path, size: int) -> bytes | None:
    """At most ``size + 1`` bytes of the key file, or None when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ThalovantArgumentError(ARGUMENT, "is not a regular file (a directory or a device?)")
        return os.read(fd, size + 1)
    finally:
        os.close(fd)


def _load_or_create(path: Path, entropy: Entropy, size: int) -> bytes:
    data = _read_key(path, size)
    if data is not None:
        if len(data) == size:
            return data
        shown = str(len(data)) if len(data) <= size else "more"
        log.warning("ignoring a malformed key file (%s bytes, expected %d); writing a new one", shown, size)
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
        ThalovantArgumentError: (argument ``noise_key_file``) the key file cannot be read or created.
    """
    if not password:
        return None
    if key_file is False:
        return entropy(KEY_SIZE)
    path = Path(key_file) if key_file else default_noise_key_path(access_key)
    return load_or_create_key(path, entropy)
