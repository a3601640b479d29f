"""The public ``thalovant.ThalovantIdentity``: the core's identity value plus every constructor.

The core holds the pure value (``thalovant.core.identity.model.Identity``) and
its parsers (``thalovant.core.identity.parse``, which see only text and
mappings). :class:`ThalovantIdentity` subclasses that value and adds the
constructors, which raise :class:`ThalovantIdentityError`: the pure ones
(:meth:`~ThalovantIdentity.from_mapping`, ``from_text``, ``from_environ``,
``with_overrides``) and the ones that need IO (``from_file``, ``from_env``,
``from_config``: this module reads bytes and ``os.environ`` and checks file
permissions). Instances compare equal to core values with the same fields,
and every core function accepts them.
"""

from __future__ import annotations

import os
import stat
import sys
import warnings
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Any, Self

from returns.result import Result, Success

from thalovant.core.errors import ThalovantIdentityError
from thalovant.core.identity.env import identity_from_environ
from thalovant.core.identity.fields import IdentityProblem, crypto_key_problem, identity_error, text_problem
from thalovant.core.identity.model import Identity
from thalovant.core.identity.parse import override_values, parse_identity, parse_identity_text
from thalovant.core.identity.profiles import parse_config_text, select_profile

#: Identity files larger than this are refused (a real one is well under 4 KiB).
MAX_IDENTITY_FILE_BYTES = 1024 * 1024


class ThalovantSecurityWarning(UserWarning):
    """A secret is stored less safely than it should be (e.g. a world-readable identity file)."""


class ThalovantIdentityWarning(UserWarning):
    """The identity loads, but part of it cannot work (e.g. a ``crypto_key`` shorter than 16 characters)."""


def _outside_this_module() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this module."""
    level = 1
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        level, frame = level + 1, frame.f_back
    return level


def _is_projected_secret(path: Path) -> bool:
    """Kubernetes mounts secrets as symlinks into a ``..data`` directory, always mode 0644 or so."""
    try:
        return "..data" in path.resolve().parts or "..data" in os.readlink(path)
    except (OSError, ValueError):
        return False


def check_file_permissions(path: Path, mode: int, *, kind: str = "identity file") -> None:
    """Warn with :class:`ThalovantSecurityWarning` when group or others may read ``path``.

    Skipped on Windows and for Kubernetes projected secrets.
    """
    if os.name == "nt" or not mode & (stat.S_IRWXG | stat.S_IRWXO) or _is_projected_secret(path):
        return
    warnings.warn(
        f"{kind} {path} holds secrets but is accessible by other users "
        f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}",
        ThalovantSecurityWarning,
        stacklevel=4,
    )


class ThalovantIdentity(Identity):
    """A validated client identity; fields and rules in ``thalovant.core.identity.parse``.

    Build one with :meth:`from_file`, :meth:`from_env`, :meth:`from_mapping` (or
    ``from_text``, ``from_environ``, ``from_config``).

    Attributes:
        access_key: the hub's client access key (secret).
        password: the handshake password (secret), or None for pre-shared-key-only clients.
        default_master: hub address: ``http(s)://`` or ``ws(s)://`` URL, or a bare host.
        site_id: the site this client speaks for.
        default_port: the explicit port, or None when none was given (see ``endpoint_base``).
        default_path: URL path prefix, ``""`` or ``/a/b``.
        crypto_key: the legacy pre-shared AES key (secret), or None.
        data_plane_endpoints: per-protocol URLs (:class:`~thalovant.HubDataPlaneEndpoints`).
        protocols: per-protocol enable flags (:class:`~thalovant.HubProtocolSettings`).
        mqtt: MQTT broker credentials (:class:`~thalovant.MqttBrokerCredentials`), or None.
        metadata: merged into ``context["metadata"]`` of every message sent.
    """

    __slots__ = ()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, origin: str = "identity") -> Self:
        """Validate a mapping (the JSON object of an identity file).

        Args:
            values: the identity's fields (names, aliases and rules in ``thalovant.core.identity.parse``).
            origin: where the values came from, as error messages name it.

        Raises:
            ThalovantIdentityError: listing every problem found (``.problems``).
        """
        return cls._built(parse_identity(values, origin=origin), origin)

    @classmethod
    def from_text(cls, text: str | bytes, *, origin: str = "identity file") -> Self:
        """Validate the contents of an identity file (UTF-8 JSON object).

        Args:
            text: the file's contents, as text or as UTF-8 bytes.
            origin: where the text came from, as error messages name it.

        Raises:
            ThalovantIdentityError: for text that is neither ``str`` nor ``bytes``, bad UTF-8, bad JSON,
                a non-object or invalid fields.
        """
        if not isinstance(text, str | bytes | bytearray):
            raise ThalovantIdentityError(f"must be text (str) or UTF-8 bytes, not {type(text).__name__}", origin=origin)
        return cls._built(parse_identity_text(text, origin=origin), origin)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, prefix: str = "THALOVANT_") -> Self:
        """Validate an identity given as environment variables (table in ``thalovant.core.identity.env``).

        Args:
            environ: the variables to read (e.g. ``os.environ``).
            prefix: the prefix of the variable names.

        Raises:
            ThalovantIdentityError: listing every problem found.
        """
        origin = f"environment ({prefix}*)"
        return cls._built(parse_identity(identity_from_environ(environ, prefix=prefix), origin=origin), origin)

    @classmethod
    def _built(cls, parsed: Result[Identity, tuple[IdentityProblem, ...]], origin: str) -> Self:
        """The parsed value as an instance of ``cls``, or every problem raised at once."""
        if not isinstance(parsed, Success):
            raise identity_error(parsed.failure(), origin)
        value: Identity = parsed.unwrap()
        unusable = crypto_key_problem(value.crypto_key)
        if unusable is not None:  # 0.4.7 loads such a key; only the pre-shared handshake path fails
            warnings.warn(
                f"{origin}: crypto_key {unusable}; the pre-shared-key handshake will fail if the hub asks for it",
                ThalovantIdentityWarning,
                stacklevel=_outside_this_module(),
            )
        return cls(**{f.name: getattr(value, f.name) for f in fields(value)})

    def with_overrides(self, *, host: str | None = None, port: int | None = None) -> Self:
        """A copy with the CLI's ``--host`` / ``--port`` applied, re-validated.

        ``host`` replaces ``default_master`` and drops the ``https`` data-plane
        endpoint, so the override really takes effect (0.4.7 ignored it).
        ``port`` sets ``default_port`` and also replaces the port of a kept
        ``https`` endpoint.

        Raises:
            ThalovantIdentityError: if the result is invalid.
        """
        return type(self).from_mapping(override_values(self, host=host, port=port), origin="identity with overrides")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Self:
        """Load an identity file (UTF-8 JSON object; ``~`` is expanded).

        Warns with :class:`ThalovantSecurityWarning` when other users can read it.

        Args:
            path: the file; a regular file of at most ``MAX_IDENTITY_FILE_BYTES``.

        Raises:
            ThalovantIdentityError: the file cannot be read or is invalid (every problem is listed).
        """
        origin, data = _read_identity_bytes(path)
        return cls.from_text(data, origin=origin)

    @classmethod
    def from_env(cls, prefix: str = "THALOVANT_", environ: Mapping[str, str] | None = None) -> Self:
        """Build an identity from ``<prefix>*`` variables (``os.environ`` when ``environ`` is None).

        Raises:
            ThalovantIdentityError: listing every problem found.
        """
        return cls.from_environ(os.environ if environ is None else environ, prefix=prefix)

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> Self:
        """Load one profile of a config file (format in ``thalovant.core.identity.profiles``).

        Args:
            path: the file; default :func:`default_config_path`.
            profile: the profile name; default ``$THALOVANT_PROFILE``, then the file's choice.
            environ: the variables to consult (``os.environ`` when None).

        Raises:
            ThalovantIdentityError: the file cannot be read, the profile is missing, or it is invalid.
        """
        env = os.environ if environ is None else environ
        origin, data = _read_identity_bytes(default_config_path(env) if path is None else path, kind="config file")
        chosen = profile or env.get("THALOVANT_PROFILE") or None
        selected = parse_config_text(data, origin=origin).bind(lambda config: select_profile(config, chosen))
        if not isinstance(selected, Success):
            raise identity_error(selected.failure(), origin)
        return cls.from_mapping(selected.unwrap(), origin=f"profile in {origin}")


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the config file lives.

    ``$THALOVANT_CONFIG``, else ``$XDG_CONFIG_HOME/thalovant/config.yaml`` (an absolute
    ``XDG_CONFIG_HOME`` only, per the XDG spec), else ``~/.config/thalovant/config.yaml``.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("THALOVANT_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path("~/.config").expanduser()
    return root / "thalovant" / "config.yaml"


def _read_identity_bytes(path: str | os.PathLike[str], *, kind: str = "identity file") -> tuple[str, bytes]:
    """``(origin, contents)`` of the file at ``path``; ``origin`` names the file as messages show it."""
    try:
        name = os.fspath(path)
    except TypeError:
        wrong = type(path).__name__
        raise ThalovantIdentityError(f"the path must be a str or os.PathLike, not {wrong}", origin=kind) from None
    if not isinstance(name, str):  # bytes paths are not supported (the path is shown in messages)
        raise ThalovantIdentityError("the path must be a str or os.PathLike of str", origin=kind)
    if "\x00" in name:
        raise ThalovantIdentityError("the path contains a NUL character", origin=kind)
    file = Path(name).expanduser()
    shown = str(file) if text_problem(str(file)) is None else ascii(str(file))  # no raw control characters
    origin = f"{kind} {shown}"
    try:
        if not stat.S_ISREG(file.stat().st_mode):
            raise ThalovantIdentityError("not a regular file", origin=origin)
        with file.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ThalovantIdentityError("not a regular file", origin=origin)
            data = handle.read(MAX_IDENTITY_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ThalovantIdentityError(f"unable to read {kind} ({reason})", origin=origin) from None
    if len(data) > MAX_IDENTITY_FILE_BYTES:
        raise ThalovantIdentityError(f"larger than {MAX_IDENTITY_FILE_BYTES} bytes", origin=origin)
    check_file_permissions(file, mode, kind=kind)
    return origin, data


def load_identity_file(path: str | os.PathLike[str]) -> ThalovantIdentity:
    """Same as ``ThalovantIdentity.from_file(path)``."""
    return ThalovantIdentity.from_file(path)


def identity_from_env(prefix: str = "THALOVANT_", environ: Mapping[str, str] | None = None) -> ThalovantIdentity:
    """Same as ``ThalovantIdentity.from_env(prefix, environ)``."""
    return ThalovantIdentity.from_env(prefix, environ)


__all__ = [
    "MAX_IDENTITY_FILE_BYTES",
    "ThalovantIdentity",
    "ThalovantIdentityWarning",
    "ThalovantSecurityWarning",
    "check_file_permissions",
    "default_config_path",
    "identity_from_env",
    "identity_from_environ",
    "load_identity_file",
]
