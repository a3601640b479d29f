"""The three ways to build a client or an agent from somewhere other than an identity object.

:class:`FromIdentity` gives a class built as ``cls(identity, **options)`` its ``from_identity_file``,
``from_env`` and ``from_config`` class methods; both clients and both agents take them from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self

from thalovant.shell.identity_io import ThalovantIdentity

__all__ = ["FromIdentity"]


class FromIdentity:
    """``from_identity_file`` / ``from_env`` / ``from_config`` for a class whose first argument is the identity."""

    def __init__(self, identity: ThalovantIdentity | Mapping[str, Any], **options: Any) -> None:
        raise NotImplementedError  # pragma: no cover - the concrete class's own

    @classmethod
    def from_identity_file(cls, path: str | os.PathLike[str], **options: Any) -> Self:
        """Load the identity file at ``path`` and build one (``options``: the class's own keywords)."""
        return cls(ThalovantIdentity.from_file(path), **options)

    @classmethod
    def from_env(cls, prefix: str = "THALOVANT_", **options: Any) -> Self:
        """Build one from the ``<prefix>*`` environment variables (default ``THALOVANT_*``)."""
        return cls(ThalovantIdentity.from_env(prefix), **options)

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, profile: str | None = None, **options: Any
    ) -> Self:
        """Build one from one profile of the YAML config file (``ThalovantIdentity.from_config``).

        Args:
            path: the config file (default ``$THALOVANT_CONFIG``, else ``~/.config/thalovant/config.yaml``).
            profile: the profile (default ``$THALOVANT_PROFILE``, then the file's choice).
            **options: the class's own keywords (a client's options; an agent passes them to its client).

        Raises:
            ThalovantIdentityError: the file cannot be read, the profile is missing, or it is invalid.
        """
        return cls(ThalovantIdentity.from_config(path, profile), **options)
