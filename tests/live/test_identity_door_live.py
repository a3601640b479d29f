"""A crypto_key shorter than 16 characters on the real hub 4.0.0 (issue 12 item 5), every transport.

0.4.7 loads such an identity; so do we, with one warning. While the hub also offers the password
path, the short key is never used and the client works; when the hub needs the pre-shared path (a
pre-shared-key-only client, or MQTT, where a hub holding a crypto_key decrypts every binary frame
with it), ``connect()`` fails with a typed error naming ``crypto_key``, within its timeout and
without retrying, and never shows the key.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import pytest

from tests.live.live_support import PROTOCOLS, need_protocol, tag
from thalovant.core.errors import ThalovantAuthenticationError
from thalovant.shell.identity_io import ThalovantIdentity, ThalovantIdentityWarning
from thalovant.shell.sync.client import ThalovantClient

pytestmark = pytest.mark.hub

CONNECT = 8.0


def short_key_identity(hub: Any, kind: str) -> tuple[ThalovantIdentity, str]:
    values = dict(hub.identity(kind))
    short = values["crypto_key"][:8]
    values["crypto_key"] = short
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        identity = ThalovantIdentity.from_mapping(values)
    assert [w.category for w in caught] == [ThalovantIdentityWarning]
    return identity, short


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_a_short_crypto_key_is_not_used_while_the_password_path_works(real_hub: Any, protocol: str) -> None:
    identity, _ = short_key_identity(real_hub, "psk")
    marker = tag(f"short-{protocol}")
    with ThalovantClient(identity, protocol=protocol, connect_timeout=CONNECT) as client:
        assert client.ask(f"ask {marker}", timeout=10).text == f"echo: ask {marker}"


@pytest.mark.parametrize(("protocol", "kind"), [(p, "psk-only") for p in PROTOCOLS] + [("mqtt", "psk")])
def test_a_short_crypto_key_fails_typed_when_the_hub_needs_the_preshared_path(
    real_hub: Any, protocol: str, kind: str
) -> None:
    need_protocol(real_hub, protocol)
    identity, short = short_key_identity(real_hub, kind)
    client = ThalovantClient(identity, protocol=protocol, connect_timeout=CONNECT)
    started = time.monotonic()
    with pytest.raises(ThalovantAuthenticationError) as info:
        client.connect()
    took = time.monotonic() - started
    client.close()
    assert "crypto_key" in str(info.value) and short not in str(info.value) + repr(info.value)
    assert took < 3.0, f"not typed at once: {took:.2f} s"  # measured 0.14-0.34 s
