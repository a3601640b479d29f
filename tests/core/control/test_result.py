"""The pure control-plane result: redaction, protocol checks and repr, whatever the identity type."""

from __future__ import annotations

from typing import Any

import pytest

from thalovant.core.control.result import BootstrapResult
from thalovant.core.errors import ThalovantUnsupportedProtocolError

SECRET_VALUES = ("k" * 32, "p" * 32, "c" * 16, "broker-pw-1")
MAPPING: dict[str, Any] = {
    "access_key": SECRET_VALUES[0],
    "password": SECRET_VALUES[1],
    "crypto_key": SECRET_VALUES[2],
    "site_id": "garage",
    "default_master": "https://hub.test",
    "data_plane_endpoints": {"https": "https://hub.test", "wss": "wss://hub.test"},
    "mqtt": {"endpoint": "mqtts://b.test:8883", "username": "u", "password": SECRET_VALUES[3]},
}


def result(mapping: dict[str, Any] = MAPPING) -> BootstrapResult[str]:
    client = {"id": "c1", "api_key": SECRET_VALUES[0], "apiKeyRef": {"name": "vault", "key": "k1"}}
    hub = {"id": "hub-1", "note": f"pw {SECRET_VALUES[1]}"}
    return BootstrapResult(
        identity="any identity object", mapping=mapping, hub=hub, client=client, endpoint=("wss", "wss://hub.test")
    )


def test_default_views_hold_no_secret_but_keep_references() -> None:
    made = result()
    shown = repr(made.as_dict()) + repr(made) + repr(made.client) + repr(made.identity_mapping())
    assert not [value for value in SECRET_VALUES if value in shown]
    assert made.client["apiKeyRef"] == {"name": "vault", "key": "k1"}
    assert repr(made) == "BootstrapIdentityResult(hub_id='hub-1', selected_protocol='wss')"
    assert made.identity == "any identity object" and made.selected_protocol == "wss"


def test_with_secrets_everything_is_kept_as_a_copy() -> None:
    made = result()
    full = made.as_dict(include_secrets=True)
    assert full["identity"] == MAPPING and full["identity"] is not MAPPING
    assert full["selected_endpoint"] == "wss://hub.test" and full["notes"] == []


def test_require_protocol() -> None:
    assert result().require_protocol() == "https://hub.test"
    assert result().require_protocol("wss") == "wss://hub.test"
    with pytest.raises(ThalovantUnsupportedProtocolError, match="no endpoint"):
        result().require_protocol("mqtt")
    with pytest.raises(ThalovantUnsupportedProtocolError, match="no broker credentials"):
        result({k: v for k, v in MAPPING.items() if k != "mqtt"}).require_protocol("mqtt")
    with pytest.raises(ThalovantUnsupportedProtocolError, match="unknown protocol"):
        result().require_protocol("ftp")
