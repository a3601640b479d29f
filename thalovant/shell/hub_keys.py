"""The hub's pinned Noise key on disk (hub 5.x), next to the client's own key, and its typed errors.

A client pins the hub's Noise static public key on first contact (trust on first use) and from then
on accepts only that key (spec §7.8): a changed key stops the client with
:class:`~thalovant.ThalovantHubKeyChangedError` instead of reconnecting. One pin per (endpoint, access key):

==========================  =================================================================
``noise_key_file=``         where the pin lives
==========================  =================================================================
``None`` (the default)      ``$XDG_STATE_HOME/thalovant/hub-keys/<hash>.pub`` (``~/.local/state``)
a path ``P``                ``P.hub-keys/<hash>.pub`` (next to the client key)
``False``                   in memory, for this client object only
==========================  =================================================================

``<hash>`` is :func:`thalovant.core.handshake.pins.pin_name` of the endpoint and the access key, so the file
name shows neither. The file holds the key as 64 hex digits (a public key: not a secret), mode 0600 in a
0700 folder. The decisions are the core's (:mod:`thalovant.core.handshake.pins`); this module reads,
writes and forgets the file.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from returns.result import Success

from thalovant.core.client.hub_keys import KeyStop
from thalovant.core.errors import (
    ThalovantArgumentError,
    ThalovantClientKeyRejectedError,
    ThalovantHubKeyChangedError,
)
from thalovant.core.handshake.pins import parse_hub_key, pin_id, pin_name
from thalovant.shell.keys import ARGUMENT, NoiseKeyFile

__all__ = ["HubKeyStore", "hub_key_store", "key_error"]

log = logging.getLogger("thalovant")

_MAX_FILE = 256  # bytes read from a pin file at most (64 hex digits and a newline are expected)


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state"))


class HubKeyStore:
    """The pin of one (endpoint, access key): a file, or memory only (``path=None``).

    Args:
        endpoint: the hub's pin id (:func:`~thalovant.core.handshake.pins.pin_id`).
        path: the pin file; None keeps the pin in memory.
    """

    def __init__(self, endpoint: str, path: Path | None) -> None:
        self.endpoint = endpoint
        self.path = path
        self._memory: bytes | None = None

    def __repr__(self) -> str:
        return f"HubKeyStore(endpoint={self.endpoint!r}, path={str(self.path) if self.path else None!r})"

    def load(self) -> bytes | None:
        """The pinned key, or None when nothing is pinned.

        Raises:
            ThalovantArgumentError: (argument ``noise_key_file``) the pin file is unreadable or malformed
                (it is never dropped silently: delete it, or call ``forget_hub_key()``, to pin again).
        """
        if self.path is None:
            return self._memory
        try:
            text = _read_small(self.path)
        except OSError as exc:
            raise ThalovantArgumentError(ARGUMENT, f"cannot read the pinned hub key ({exc.strerror})") from None
        if text is None:
            return None
        parsed = parse_hub_key(text)
        if not isinstance(parsed, Success):
            why = f"the pinned hub key file {self.path} is malformed: forget_hub_key() (or delete it) to pin again"
            raise ThalovantArgumentError(ARGUMENT, why)
        key: bytes = parsed.unwrap()
        return key

    def save(self, key: bytes) -> None:
        """Pin ``key`` (the file: written whole, mode 0600, parent 0700).

        Raises:
            ThalovantArgumentError: (argument ``noise_key_file``) the pin file cannot be written.
        """
        if self.path is None:
            self._memory = key
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(key.hex() + "\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise ThalovantArgumentError(ARGUMENT, f"cannot write the pinned hub key ({exc.strerror})") from None

    def forget(self) -> bool:
        """Drop the pin; whether there was one. The next connection pins the hub's key again.

        Raises:
            ThalovantArgumentError: (argument ``noise_key_file``) the pin file cannot be removed.
        """
        if self.path is None:
            had, self._memory = self._memory is not None, None
            return had
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ThalovantArgumentError(ARGUMENT, f"cannot remove the pinned hub key ({exc.strerror})") from None
        return True


def _read_small(path: Path) -> str | None:
    """The start of a regular file (None: no such file)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ThalovantArgumentError(ARGUMENT, "the pinned hub key path is not a regular file")
        return os.read(fd, _MAX_FILE).decode("ascii", errors="replace")
    finally:
        os.close(fd)


def hub_key_store(*, endpoint: str, access_key: str, key_file: NoiseKeyFile) -> HubKeyStore:
    """The pin store of (``endpoint``, ``access_key``) for a client's ``noise_key_file`` (module docstring)."""
    where = pin_id(endpoint)
    if key_file is False:
        return HubKeyStore(where, None)
    folder = Path(str(key_file) + ".hub-keys") if key_file else _state_home() / "thalovant" / "hub-keys"
    return HubKeyStore(where, folder / f"{pin_name(endpoint, access_key)}.pub")


def key_error(stop: KeyStop) -> Exception:
    """The public exception for a connection that stopped over a Noise key (names no secret)."""
    if stop.kind == "hub-key-changed":
        pinned, presented = stop.shown(stop.pinned), stop.shown(stop.presented)
        return ThalovantHubKeyChangedError(
            f"the hub at {stop.endpoint} presented another Noise static key than the pinned one "
            f"(pinned {pinned}, presented {presented}); not reconnecting. If the hub was reinstalled or "
            "given a new key, accept it with client.forget_hub_key() (or 'thalovant identity forget-hub-key') "
            "and connect again; otherwise another machine is answering for the hub",
            endpoint=stop.endpoint,
            pinned=pinned,
            presented=presented,
        )
    client_key = stop.shown(stop.client_key)
    return ThalovantClientKeyRejectedError(
        f"the hub at {stop.endpoint} refused this client's Noise static key ({client_key}): it pinned another "
        "key for this access key. Use the original noise_key_file, or ask the hub operator to clear the pin "
        "('hivemind-core reset-noise-pin <client id>')",
        endpoint=stop.endpoint,
        client_key=client_key,
    )
