"""Shared pieces of the ``thalovant`` command: exit codes, errors, output, identity, the command context.

Only light standard-library modules are imported at module level (``--help`` stays fast).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.identity_io import ThalovantIdentity

EXIT_OK = 0
EXIT_REMOTE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

IDENTITY_ENV = "THALOVANT_IDENTITY"
NESTED_FORBIDDEN = {"record", "replay", "identity", "version"}
GLOBAL_DEFAULTS = (
    ("identity", None),
    ("protocol", None),
    ("json", False),
    ("timeout", None),
    ("verbose", 0),
    ("ca_file", None),
    ("insecure", False),
)


class UsageError(Exception):
    """A command line the user must fix (exit 2)."""


class RemoteFailure(Exception):
    """The hub answered, but not with success (exit 1)."""


def global_options(parser: argparse.ArgumentParser) -> None:
    """Options accepted before and after the command (defaults are filled in by :func:`_defaults`)."""
    s = argparse.SUPPRESS
    parser.add_argument("-i", "--identity", metavar="PATH", default=s, help=f"identity file (default: ${IDENTITY_ENV})")
    parser.add_argument("--protocol", choices=("wss", "ws", "https", "http", "mqtt"), default=s, help="transport")
    parser.add_argument("--json", action="store_true", default=s, help="machine-readable output")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", default=s, help="how long to wait")
    parser.add_argument("-v", "--verbose", action="count", default=s, help="log to stderr; tracebacks on errors")
    parser.add_argument("--ca-file", metavar="PATH", default=s, help="CA bundle for wss/https/mqtts")
    parser.add_argument("--insecure", action="store_true", default=s, help="do not verify TLS (development only)")


def fill_defaults(args: argparse.Namespace) -> argparse.Namespace:
    for name, value in GLOBAL_DEFAULTS:
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


def parse(
    parser: argparse.ArgumentParser, argv: Sequence[str], namespace: argparse.Namespace | None = None
) -> argparse.Namespace:
    """Parse ``argv``; argparse's exits become :class:`SystemExit` as usual (2 on usage errors)."""
    return fill_defaults(parser.parse_args(list(argv), namespace=namespace))


def exit_code(exc: BaseException) -> int:
    from thalovant.core.errors import LocalProtocolError, ThalovantError, ThalovantIdentityError

    if isinstance(exc, UsageError | ThalovantIdentityError | LocalProtocolError):
        return EXIT_USAGE
    if isinstance(exc, RemoteFailure | ThalovantError | OSError):
        return EXIT_REMOTE
    return EXIT_REMOTE


# ---- output helpers -----------------------------------------------------------------------------


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def dumps(value: Any, *, indent: int | None = 2) -> str:
    import json

    return json.dumps(value, indent=indent, sort_keys=indent is not None, ensure_ascii=False, default=str)


class Progress:
    """A spinner line on stderr while something slow runs (terminals only; thread-based)."""

    FRAMES = "|/-\\"

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._label: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def set(self, label: str | None) -> None:
        """Show ``label`` (None: clear the line)."""
        if not self.enabled:
            return
        with self._lock:
            self._label = label
            if label is None:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
        if label is not None and self._thread is None:
            self._thread = threading.Thread(target=self._spin, name="thalovant-progress", daemon=True)
            self._thread.start()

    def _spin(self) -> None:
        frame = 0
        while not self._done.wait(0.1):
            with self._lock:
                if self._label is not None:
                    sys.stderr.write(f"\r{self.FRAMES[frame % len(self.FRAMES)]} {self._label}\u2026\x1b[K")
                    sys.stderr.flush()
            frame += 1

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self.set(None)
        self.enabled = False


# ---- identity and client ------------------------------------------------------------------------


def load_identity(args: argparse.Namespace) -> ThalovantIdentity:
    """``--identity``, else ``$THALOVANT_IDENTITY``, else the ``THALOVANT_*`` variables."""
    from thalovant.shell.identity_io import ThalovantIdentity

    path = args.identity or os.environ.get(IDENTITY_ENV)
    if path:
        return ThalovantIdentity.from_file(path)
    return ThalovantIdentity.from_env()


def identity_secrets(identity: ThalovantIdentity) -> tuple[str, ...]:
    """Every secret value of ``identity`` (and the access token forms) to scrub from output."""
    import base64
    import urllib.parse

    from thalovant.core.client.plan import DEFAULT_USERAGENT

    found = [identity.access_key, identity.password, identity.crypto_key]
    if identity.mqtt is not None:
        found.append(identity.mqtt.password)
    if identity.access_key:
        token = base64.b64encode(f"{DEFAULT_USERAGENT}:{identity.access_key}".encode()).decode("ascii")
        found += [token, urllib.parse.quote(token, safe="")]
    return tuple(s for s in found if isinstance(s, str) and len(s) >= 4)


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class Context:
    """What a command gets: parsed args, the identity, the progress line and client factory."""

    def __init__(self, args: argparse.Namespace, progress: Progress) -> None:
        self.args = args
        self.progress = progress
        self.trace: Any = None  # a recording.TraceWriter under `record`
        self._identity: ThalovantIdentity | None = None
        self.secrets: tuple[str, ...] = ()

    @property
    def identity(self) -> ThalovantIdentity:
        if self._identity is None:
            self._identity = load_identity(self.args)
            self.secrets = identity_secrets(self._identity)
        return self._identity

    def client(self, **kwargs: Any) -> AsyncThalovantClient:
        from thalovant.shell.client import AsyncThalovantClient

        if self.args.timeout is not None:
            kwargs.setdefault("connect_timeout", max(0.1, min(self.args.timeout, 30.0)))
        if self.trace is not None:
            kwargs["trace"] = self.trace
        if self.args.ca_file:
            kwargs["ca_file"] = self.args.ca_file
        if self.args.insecure:
            kwargs["insecure"] = True
        return AsyncThalovantClient(self.identity, protocol=self.args.protocol, **kwargs)
