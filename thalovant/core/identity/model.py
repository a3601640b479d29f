"""The client identity as a pure value: who we are to the hub, and where the hub is.

Theory of operation
-------------------
:class:`Identity` is what ``thalovant.core.identity.parse.parse_identity``
returns once every field of an identity mapping is valid (the field table,
aliases and validation rules are in that module). This module answers
questions about a valid identity -- which URL the HTTP transport talks to,
which protocols are enabled and usable -- and renders it without secrets.

The public ``thalovant.ThalovantIdentity`` (``thalovant.shell.identity_io``)
is this class plus its constructors, which raise
:class:`~thalovant.core.errors.ThalovantIdentityError` and, for files and the
environment, do IO. Instances of the two compare equal when their fields are
equal, and every core function accepts either.

Secrets (access key, password, crypto key, broker username and password,
URL userinfo, secret-named metadata keys) never appear in ``repr()``,
``str()``, ``as_dict()`` (without ``include_secrets``) or any error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from thalovant.core.errors import ThalovantUnsupportedProtocolError
from thalovant.core.identity.fields import (
    REDACTED,
    IdentityProblem,
    copy_json,
    identity_error,
    redact_json,
    text_problem,
    without_userinfo,
)
from thalovant.core.identity.mqtt import MqttBrokerCredentials
from thalovant.core.identity.protocols import (
    HubDataPlaneEndpoints,
    HubProtocol,
    HubProtocolSettings,
    compose_http_base,
    normalize_protocol,
)

__all__ = ["Identity"]

#: The text fields ``__post_init__`` checks, and whether each may be None.
_TEXT_FIELDS = (
    ("access_key", False),
    ("password", True),
    ("crypto_key", True),
    ("site_id", False),
    ("default_master", False),
    ("default_path", False),
)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False, eq=False)
class Identity:
    """A validated client identity, as a pure value. ``parse_identity`` builds it.

    The public ``thalovant.ThalovantIdentity`` (``thalovant.shell.identity_io``) subclasses this and
    adds the constructors (``from_mapping``, ``from_text``, ``from_file``, ``from_env`` ...); its
    docstring describes every field.
    """

    access_key: str
    password: str | None = None
    default_master: str
    site_id: str
    default_port: int | None = None
    default_path: str = ""
    crypto_key: str | None = None
    data_plane_endpoints: HubDataPlaneEndpoints = field(default_factory=HubDataPlaneEndpoints)
    protocols: HubProtocolSettings = field(default_factory=HubProtocolSettings)
    mqtt: MqttBrokerCredentials | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        """Refuse text no hub could be sent, even when the fields are given directly (not parsed).

        Raises:
            ThalovantIdentityError: naming each text field of the wrong type, with a lone surrogate or
                with a control character (never its value).
        """
        problems = []
        for name, optional in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is None and optional:
                continue
            problem = text_problem(value) if isinstance(value, str) else "must be a string"
            if problem is not None:
                problems.append(IdentityProblem(name, problem))
        if problems:
            raise identity_error(problems, "identity")

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclass_fields(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(tuple(value for value in self._key() if not isinstance(value, dict)))

    # ---- endpoints and protocols -----------------------------------------------------------------

    @property
    def runtime_crypto_key(self) -> str | None:
        """The pre-shared key as the hub uses it: the first 16 characters, or None."""
        return self.crypto_key[:16] if self.crypto_key else None

    def endpoint_base(self) -> str:
        """The HTTP(S) base URL of the hub (rules in ``thalovant.core.identity.protocols``)."""
        return compose_http_base(
            master=self.default_master,
            https_endpoint=self.data_plane_endpoints.https,
            port=self.default_port,
            path=self.default_path,
        )

    def endpoint_for(self, protocol: str) -> str | None:
        """The URL for a protocol, or None when the identity has none.

        ``"https"``/``"http"`` give :meth:`endpoint_base` (never None);
        ``"wss"``/``"ws"`` the wss data-plane endpoint; ``"mqtt"`` the mqtt
        data-plane endpoint, else the broker endpoint of ``mqtt``.

        Raises:
            ThalovantUnsupportedProtocolError: for an unknown protocol name.
        """
        name = normalize_protocol(protocol)
        if name == "https":
            return self.endpoint_base()
        if name == "wss":
            return self.data_plane_endpoints.wss
        if self.data_plane_endpoints.mqtt is not None:
            return self.data_plane_endpoints.mqtt
        return self.mqtt.endpoint if self.mqtt is not None else None

    def enabled_protocols(self) -> tuple[HubProtocol, ...]:
        """The enabled flags, in the order wss, https, mqtt."""
        return self.protocols.enabled_protocols()

    def supports_protocol(self, protocol: str) -> bool:
        """Whether ``protocol`` is enabled *and* usable (has an endpoint; MQTT also needs ``mqtt``).

        Raises:
            ThalovantUnsupportedProtocolError: for an unknown protocol name.
        """
        name = normalize_protocol(protocol)
        if not self.protocols.is_enabled(name) or self.endpoint_for(name) is None:
            return False
        return name != "mqtt" or self.mqtt is not None

    def require_protocol(self, protocol: str) -> str:
        """The endpoint for ``protocol``, or raise why it cannot be used.

        Raises:
            ThalovantUnsupportedProtocolError: unknown, disabled, or missing endpoint/credentials.
        """
        name = normalize_protocol(protocol)
        endpoint = self.endpoint_for(name)
        if name == "mqtt" and self.mqtt is None:  # first: the missing block is the fix to name (0.4.7 said MQTT)
            raise ThalovantUnsupportedProtocolError("MQTT needs broker credentials (the identity's mqtt block)")
        if not self.protocols.is_enabled(name):
            raise ThalovantUnsupportedProtocolError(f"{name} is disabled in this identity's protocols")
        if endpoint is None:
            raise ThalovantUnsupportedProtocolError(f"the identity has no {name} endpoint")
        return endpoint

    # ---- output ----------------------------------------------------------------------------------

    def as_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """A JSON-ready summary.

        Without secrets: site, master (no userinfo), port, path, endpoints (no
        userinfo), protocols, ``mqtt`` as ``{endpoint, tls}``, and metadata
        with secret-named keys replaced by ``"***"``. With secrets: every
        field, such that ``from_mapping(as_dict(include_secrets=True))``
        equals this identity.
        """
        out: dict[str, Any] = {}
        if include_secrets:
            out.update(access_key=self.access_key, password=self.password, crypto_key=self.crypto_key)
        out["site_id"] = self.site_id
        out["default_master"] = self.default_master if include_secrets else without_userinfo(self.default_master)
        if self.default_port is not None:
            out["default_port"] = self.default_port
        out["default_path"] = self.default_path
        endpoints = self.data_plane_endpoints.as_dict(redact_credentials=not include_secrets)
        if endpoints or include_secrets:
            out["data_plane_endpoints"] = endpoints
        out["protocols"] = self.protocols.as_dict()
        if self.mqtt is not None:
            out["mqtt"] = self.mqtt.as_dict(include_secrets=include_secrets)
        out["metadata"] = copy_json(self.metadata) if include_secrets else redact_json(self.metadata)
        return out

    def __repr__(self) -> str:  # the public name: users only ever see ThalovantIdentity instances
        def hidden(value: str | None) -> str:
            return "None" if value is None else REDACTED

        return (
            f"ThalovantIdentity(site_id={self.site_id!r}, default_master={without_userinfo(self.default_master)!r}, "
            f"default_port={self.default_port!r}, default_path={self.default_path!r}, "
            f"data_plane_endpoints={self.data_plane_endpoints.as_dict(redact_credentials=True)!r}, "
            f"protocols={self.enabled_protocols()!r}, mqtt={self.mqtt!r}, "
            f"metadata={redact_json(self.metadata)!r}, access_key={REDACTED}, "
            f"password={hidden(self.password)}, crypto_key={hidden(self.crypto_key)})"
        )

    __str__ = __repr__
