"""What ``create_client_identity`` returns, as a pure value generic in its identity type.

Theory of operation
-------------------
After ``POST v1/clients`` the control plane holds the identity mapping built by
``thalovant.core.control.identity``, the hub record, the API's client record
and the chosen endpoint. :class:`BootstrapResult` keeps them and renders them
safely; its ``identity`` is whatever identity object the caller built from the
mapping. The shell's public ``BootstrapIdentityResult``
(``thalovant.shell.control_result``) is this class with ``identity`` a ready
``ThalovantIdentity``.

Redaction rules: ``as_dict()`` (the default) and ``repr`` never contain the
access key, password, crypto key or broker password; secret *references*
(``apiKeyRef`` ...) stay visible. ``as_dict(include_secrets=True)`` keeps all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from thalovant.core.control import api as control
from thalovant.core.control.identity import redact_identity
from thalovant.core.errors import ThalovantUnsupportedProtocolError
from thalovant.core.identity.protocols import SelectedHubEndpoint, normalize_protocol

__all__ = ["BootstrapResult"]

IdentityT = TypeVar("IdentityT")


class BootstrapResult(Generic[IdentityT]):
    """A created client: ``identity`` (built by the caller from the mapping), ``hub`` (the hub
    record), ``endpoint`` (a :class:`~thalovant.SelectedHubEndpoint` with ``.protocol`` and
    ``.endpoint``, as in 0.4.7, or None) and ``notes`` (remarks for a human).
    """

    __slots__ = ("_mapping", "_raw_client", "endpoint", "hub", "identity", "notes")

    def __init__(
        self,
        *,
        identity: IdentityT,
        mapping: dict[str, Any],
        hub: dict[str, Any],
        client: dict[str, Any],
        endpoint: SelectedHubEndpoint | tuple[str, str] | None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.identity = identity
        self.hub = hub
        if isinstance(endpoint, tuple):
            endpoint = SelectedHubEndpoint(normalize_protocol(endpoint[0]), endpoint[1])
        self.endpoint: SelectedHubEndpoint | None = endpoint
        self.notes = notes
        self._mapping = mapping
        self._raw_client = client

    @property
    def selected_protocol(self) -> str | None:
        """Protocol of :attr:`endpoint`, or None."""
        return self.endpoint.protocol if self.endpoint else None

    @property
    def client(self) -> dict[str, Any]:
        """The API's client record with every secret removed (references kept)."""
        return dict(control.redact(self._raw_client, self._known_secrets()))

    def identity_mapping(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """The identity in identity-file format (write it with ``json.dump`` to get a file)."""
        return json.loads(json.dumps(self._mapping)) if include_secrets else redact_identity(self._mapping)

    def _known_secrets(self) -> list[str]:
        values = [str(self._mapping.get(k)) for k in ("access_key", "password", "crypto_key") if self._mapping.get(k)]
        mqtt = self._mapping.get("mqtt")
        if isinstance(mqtt, Mapping) and mqtt.get("password"):
            values.append(str(mqtt["password"]))
        return values

    def as_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """Summary. Safe to log by default: credentials dropped, secret references kept."""
        return {
            "identity": self.identity_mapping(include_secrets=include_secrets),
            "hub": self.hub if include_secrets else control.redact(self.hub, self._known_secrets()),
            "client": json.loads(json.dumps(self._raw_client)) if include_secrets else self.client,
            "selected_protocol": self.selected_protocol,
            "selected_endpoint": self.endpoint.endpoint if self.endpoint else None,
            "notes": list(self.notes),
        }

    def require_protocol(self, protocol: str = "https") -> str:
        """The endpoint URL for ``protocol``, checking the identity can use it.

        Raises:
            ThalovantUnsupportedProtocolError: unknown protocol, no endpoint, flag off, or MQTT
                without broker credentials.
        """
        if protocol not in ("https", "wss", "mqtt"):
            raise ThalovantUnsupportedProtocolError(f"unknown protocol {protocol!r}; use https, wss or mqtt")
        if protocol == "mqtt" and not isinstance(self._mapping.get("mqtt"), Mapping):
            raise ThalovantUnsupportedProtocolError("MQTT: the API returned no broker credentials for this client")
        url = self._mapping.get("data_plane_endpoints", {}).get(protocol)
        if not url:
            raise ThalovantUnsupportedProtocolError(f"{protocol.upper()}: the hub has no endpoint for it")
        return str(url)

    def __repr__(self) -> str:  # the public name: users only ever see BootstrapIdentityResult instances
        hub_id = self.hub.get("id")
        return f"BootstrapIdentityResult(hub_id={hub_id!r}, selected_protocol={self.selected_protocol!r})"
