"""Hub key pinning on the real hub 5.x: a hub restarted with a new Noise static key stops the client
with ``ThalovantHubKeyChangedError`` (typed, no secret shown); ``forget_hub_key()`` accepts the rotation;
a restart with the same key reconnects as before; the hub refusing our own key is
``ThalovantClientKeyRejectedError``.

The hub is shared by the whole session, so these tests leave it as they found it: the hub's original key
is put back (and the hub restarted) whatever happens, and the clients use the client key every other test
uses (the hub pinned it for the access key) with hub pins kept in ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.live import live_support
from tests.live.live_support import fast_reconnect, tag, wait_until
from thalovant import (
    ThalovantAuthenticationError,
    ThalovantClient,
    ThalovantClientKeyRejectedError,
    ThalovantHubKeyChangedError,
)
from thalovant.core.handshake.noise import public_key
from thalovant.core.handshake.pins import fingerprint
from thalovant.shell.keys import default_noise_key_path, load_or_create_key

KIND = "password"


def control(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A hub life-cycle call on the harness's long-lived thread (the hub process is bound to it)."""
    return live_support._HUB_THREAD.submit(fn, *args, **kwargs).result()


def shared_client_key(hub: Any, tmp_path: Path) -> Path:
    """A copy of the client key every test of this identity uses (the hub pinned it), in ``tmp_path``."""
    source = default_noise_key_path(hub.identity(KIND)["access_key"])
    load_or_create_key(source, os.urandom)
    copy = tmp_path / "client.key"
    shutil.copyfile(source, copy)
    copy.chmod(0o600)
    return copy


def client(hub: Any, key_file: Path, protocol: str = "wss", **extra: Any) -> ThalovantClient:
    return ThalovantClient.from_identity_file(
        hub.identity_path(KIND), protocol=protocol, noise_key_file=key_file, **fast_reconnect(**extra)
    )


def secrets_of(hub: Any) -> list[str]:
    ident = hub.identity(KIND)
    return [s for s in (ident["access_key"], ident.get("password"), ident.get("crypto_key"), hub.token(KIND)) if s]


def hub_public(hub: Any) -> bytes:
    return public_key(bytes.fromhex(hub.noise_key_path().read_text().strip()))


@pytest.mark.parametrize("protocol", ["wss", "https"])
def test_a_rotated_hub_key_stops_the_client_and_forgetting_the_pin_accepts_it(
    real_hub_v3: Any, tmp_path: Path, protocol: str
) -> None:
    hub = real_hub_v3
    key_file = shared_client_key(hub, tmp_path)
    with client(hub, key_file, protocol) as first:
        assert first.ask(f"pin {tag('first')}").ok
        original = hub.noise_key_path().read_text()
        old = hub_public(hub)
        assert first.hub_key_fingerprint == fingerprint(old)
        try:
            control(hub.restart_hub, noise_key="")  # the hub comes back with a new static key
            assert wait_until(lambda: not first.healthcheck().transport_alive, 30)
            health = first.healthcheck()
            assert health.last_error is not None and "changed" in health.last_error
            assert fingerprint(old) in health.last_error
            new = hub_public(hub)
            assert new != old

            again = client(hub, key_file, protocol)
            t0 = time.monotonic()
            with pytest.raises(ThalovantHubKeyChangedError) as info:
                again.connect()
            took = time.monotonic() - t0
            error = info.value
            assert (error.pinned, error.presented) == (fingerprint(old), fingerprint(new))
            port = hub.ports.ws if protocol == "wss" else hub.ports.http
            assert error.endpoint == f"{'ws' if protocol == 'wss' else 'http'}://127.0.0.1:{port}"
            assert not error.retryable
            shown = f"{error!s} {error!r} {error.args!r}"
            assert not [s for s in secrets_of(hub) if s in shown]
            print(f"\nMEASURE hub-key-changed ({protocol}): connect() raised in {took * 1000:.0f} ms: {error}")

            single = ThalovantClient.from_identity_file(
                hub.identity_path(KIND), protocol=protocol, noise_key_file=key_file, auto_reconnect=False
            )
            with pytest.raises(ThalovantHubKeyChangedError):  # one attempt: the refused KKpsk0 is retried with XX
                single.connect()

            assert again.forget_hub_key() is True
            with again:
                assert again.ask(f"rotated {tag('accept')}").ok
            assert again.hub_key_fingerprint == fingerprint(new)
        finally:
            control(hub.restart_hub, noise_key=original)  # leave the session's hub as it was
    with pytest.raises(ThalovantHubKeyChangedError):  # our pin is now the rotated key: the original is a change
        client(hub, key_file, protocol).connect()


def test_a_restart_with_the_same_key_reconnects(real_hub_v3: Any, tmp_path: Path) -> None:
    hub = real_hub_v3
    key_file = shared_client_key(hub, tmp_path)
    with client(hub, key_file) as c:
        assert c.ask(f"same {tag('before')}").ok
        pinned = c.hub_key_fingerprint
        control(hub.restart_hub)
        assert wait_until(lambda: c.async_client.connected and c.healthcheck().reconnects >= 1, 30)
        assert c.ask(f"same {tag('after')}").ok
        assert c.hub_key_fingerprint == pinned == fingerprint(hub_public(hub))


def test_the_hub_refusing_our_client_key_is_typed(real_hub_v3: Any, tmp_path: Path) -> None:
    hub = real_hub_v3
    with client(hub, shared_client_key(hub, tmp_path)) as c:  # the hub has pinned the shared client key
        assert c.ask(f"own {tag('key')}").ok
    stranger = client(hub, tmp_path / "fresh.key")
    with pytest.raises(ThalovantClientKeyRejectedError) as info:
        stranger.connect()
    error = info.value
    assert isinstance(error, ThalovantAuthenticationError) and not error.retryable
    shown = f"{error!s} {error!r}"
    assert not [s for s in secrets_of(hub) if s in shown] and "reset-noise-pin" in shown
    print(f"\nMEASURE client-key-rejected: {error}")
