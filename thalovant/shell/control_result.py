"""The public ``BootstrapIdentityResult``: the core's pure result with a ready ``ThalovantIdentity``.

Everything but the identity is pure and lives in ``thalovant.core.control.result``.
The public identity class lives in the shell (its loaders do IO), so binding the
result to it, and turning an answer that makes no valid identity into an API
error, happens here.
"""

from __future__ import annotations

from typing import Any

from thalovant.core.control.result import BootstrapResult
from thalovant.core.errors import ThalovantAPIError, ThalovantIdentityError
from thalovant.shell.identity_io import ThalovantIdentity


def build_identity(mapping: dict[str, Any]) -> ThalovantIdentity:
    """``ThalovantIdentity.from_mapping``; an answer that makes no valid identity is an API error."""
    try:
        return ThalovantIdentity.from_mapping(mapping, origin="identity from the control plane")
    except ThalovantIdentityError as exc:  # its messages name fields, never values
        raise ThalovantAPIError(
            f"the API's answer does not make a valid identity: {exc}", code="invalid_identity"
        ) from exc


class BootstrapIdentityResult(BootstrapResult[ThalovantIdentity]):
    """What :meth:`AsyncThalovantControlPlane.create_client_identity` returns.

    Attributes:
        identity: a ready ``ThalovantIdentity`` (``.mqtt`` holds the broker credentials when
            the API sent them).
        hub: the hub record used.
        endpoint: the :class:`~thalovant.SelectedHubEndpoint` (``.protocol``, ``.endpoint``) chosen from the
            preferred protocols, or None.
        notes: human-readable remarks (e.g. MQTT enabled but no broker credentials).
    """

    __slots__ = ()


__all__ = ["BootstrapIdentityResult", "build_identity"]
