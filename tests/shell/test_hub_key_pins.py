"""Hub 5.x key pinning through the public clients, against the in-memory hub (``MemoryHub(generation=3)``).

The client pins the hub's Noise static key on first contact (next to its own key), checks every later
handshake against it, stops with ``ThalovantHubKeyChangedError`` when the hub presents another key (no
reconnect loop), accepts a rotation only through ``forget_hub_key()``, and reports the hub refusing its
own key as ``ThalovantClientKeyRejectedError``.
"""

from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from thalovant import (
    AsyncThalovantClient,
    ThalovantArgumentError,
    ThalovantAuthenticationError,
    ThalovantClient,
    ThalovantClientKeyRejectedError,
    ThalovantHandshakeError,
    ThalovantHubKeyChangedError,
    ThalovantTimeoutError,
)
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.handshake.pins import fingerprint
from thalovant.testing import MemoryHub

WAIT = 5.0
FAST = ReconnectConfig(base=0.01, cap=0.05)
ACCESS_KEY = "pin-access-key-0123456789"
PASSWORD = "pin-password-0123456789-strong"


def identity() -> dict[str, Any]:
    return {
        "access_key": ACCESS_KEY,
        "password": PASSWORD,
        "default_master": "wss://hub.example.invalid:5678",
        "data_plane_endpoints": {"wss": "wss://hub.example.invalid:5678"},
        "site_id": "den",
        "protocols": {"wss": True},
    }


def pin_files(key_file: Path) -> list[Path]:
    folder = Path(str(key_file) + ".hub-keys")
    return sorted(folder.glob("*.pub")) if folder.exists() else []


def no_secret(text: str) -> None:
    assert PASSWORD not in text and ACCESS_KEY not in text


def wait_until(check: Any, limit: float = WAIT) -> None:
    end = time.monotonic() + limit
    while not check():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


def test_the_first_contact_pins_the_hub_key_next_to_the_client_key(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    key_file = tmp_path / "keys" / "client.key"
    with ThalovantClient(identity(), transport=hub, noise_key_file=key_file) as client:
        assert client.ask("hi").text == "echo: hi"
        assert hub.hub is not None
        assert client.hub_key_fingerprint == fingerprint(hub.hub.static_public)
    [pin] = pin_files(key_file)
    assert pin.read_text().strip() == hub.hub.static_public.hex()
    assert stat.S_IMODE(pin.stat().st_mode) == 0o600 and stat.S_IMODE(pin.parent.stat().st_mode) == 0o700
    assert ACCESS_KEY not in pin.name and "hub.example" not in pin.name
    with ThalovantClient(identity(), transport=hub, noise_key_file=key_file) as again:  # the pin holds: KK
        assert again.ask("again").text == "echo: again"
    assert hub.hub.patterns == ["XXpsk2", "KKpsk0"]


def test_a_restart_with_the_same_key_reconnects_as_before() -> None:
    hub = MemoryHub(generation=3)
    with ThalovantClient(identity(), transport=hub, reconnect=FAST) as client:
        client.ask("one")
        hub.restart()
        wait_until(lambda: hub.connections == 2 and client.async_client.connected)
        assert client.ask("two").text == "echo: two"
        hub.restart(keep_pins=True)  # the hub keeps our key: KKpsk0 with the pin
        wait_until(lambda: hub.connections == 3 and client.async_client.connected)
        assert client.ask("three").text == "echo: three"
    assert hub.hub is not None and hub.hub.patterns == ["XXpsk2", "XXpsk2", "KKpsk0"]


@pytest.mark.parametrize("keep_pins", [False, True], ids=["xx", "kk-then-xx"])
def test_a_new_hub_key_stops_a_running_client_and_connect_raises(tmp_path: Path, keep_pins: bool) -> None:
    hub = MemoryHub(generation=3)
    key_file = tmp_path / "client.key"
    with ThalovantClient(identity(), transport=hub, reconnect=FAST, noise_key_file=key_file) as client:
        client.ask("one")
        assert hub.hub is not None
        old = hub.hub.static_public
        hub.restart(new_key=True, keep_pins=keep_pins)
        wait_until(lambda: not client.healthcheck().transport_alive)
        health = client.healthcheck()
        assert health.last_error is not None and "changed" in health.last_error
        assert fingerprint(old) in health.last_error and health.connection is not None
        assert health.connection.phase == "gave-up"
        attempts = hub.connections
        time.sleep(0.2)
        assert hub.connections == attempts  # no reconnect loop
    with pytest.raises(ThalovantHubKeyChangedError) as info:
        ThalovantClient(identity(), transport=hub, noise_key_file=key_file).connect()
    error = info.value
    assert isinstance(error, ThalovantHandshakeError) and not error.retryable
    assert error.pinned == fingerprint(old) and error.presented == fingerprint(hub.hub.static_public)
    assert error.endpoint == "wss://hub.example.invalid:5678"
    assert error.pinned in str(error) and error.presented in str(error) and "forget_hub_key" in str(error)
    no_secret(str(error) + repr(error))


def test_forget_hub_key_accepts_a_rotation(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    key_file = tmp_path / "client.key"
    with ThalovantClient(identity(), transport=hub, noise_key_file=key_file) as client:
        client.ask("one")
    hub.restart(new_key=True)
    client = ThalovantClient(identity(), transport=hub, noise_key_file=key_file)
    with pytest.raises(ThalovantHubKeyChangedError):
        client.connect()
    assert client.forget_hub_key() is True
    assert client.hub_key_fingerprint is None
    with client:
        assert client.ask("two").text == "echo: two"
    assert hub.hub is not None
    assert client.hub_key_fingerprint == fingerprint(hub.hub.static_public)
    [pin] = pin_files(key_file)
    assert pin.read_text().strip() == hub.hub.static_public.hex()
    assert client.forget_hub_key() is True and client.forget_hub_key() is False


def test_a_malformed_pin_file_is_a_typed_error_never_a_silent_re_pin(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    key_file = tmp_path / "client.key"
    with ThalovantClient(identity(), transport=hub, noise_key_file=key_file):
        pass
    [pin] = pin_files(key_file)
    pin.write_text("not a key")
    with pytest.raises(Exception) as info:
        ThalovantClient(identity(), transport=hub, noise_key_file=key_file)
    assert getattr(info.value, "argument", None) == "noise_key_file" and "malformed" in str(info.value)


def test_the_hub_refusing_our_key_is_typed(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    with ThalovantClient(identity(), transport=hub, noise_key_file=tmp_path / "first.key") as client:
        client.ask("one")
    other = ThalovantClient(identity(), transport=hub, noise_key_file=tmp_path / "second.key")
    with pytest.raises(ThalovantClientKeyRejectedError) as info:
        other.connect()
    error = info.value
    assert isinstance(error, ThalovantAuthenticationError) and not error.retryable
    assert error.client_key.startswith("SHA256:") and "reset-noise-pin" in str(error)
    no_secret(str(error) + repr(error))


def test_the_hub_refusing_our_key_after_a_kk_attempt_is_typed(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    first = tmp_path / "first.key"
    with ThalovantClient(identity(), transport=hub, noise_key_file=first) as client:
        client.ask("one")
    second = tmp_path / "second.key"
    (Path(str(second) + ".hub-keys")).mkdir(mode=0o700)
    [pin] = pin_files(first)
    (Path(str(second) + ".hub-keys") / pin.name).write_text(pin.read_text())  # pinned hub, another client key
    with pytest.raises(ThalovantClientKeyRejectedError):
        ThalovantClient(identity(), transport=hub, noise_key_file=second, reconnect=FAST).connect()
    assert hub.hub is not None and hub.hub.patterns[-2:] == ["KKpsk0", "XXpsk2"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_the_async_client_stops_on_a_new_hub_key() -> None:
    hub = MemoryHub(generation=3)
    client = AsyncThalovantClient(identity(), transport=hub, reconnect=FAST)  # noise_key_file=False: in memory
    async with client:
        await client.ask("one")
        assert client.hub_key_fingerprint is not None
        hub.restart(new_key=True)
        for _ in range(500):  # at most 5 s
            if not (await client.healthcheck()).transport_alive:
                break
            await anyio.sleep(0.01)
        assert "changed" in str((await client.healthcheck()).last_error)
    with pytest.raises(ThalovantHubKeyChangedError):
        await client.connect()
    assert client.forget_hub_key() is True
    async with client:
        assert (await client.ask("two")).text == "echo: two"


def test_a_single_attempt_client_still_tells_a_changed_key_after_a_refused_kk(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    key_file = tmp_path / "client.key"
    with ThalovantClient(identity(), transport=hub, noise_key_file=key_file) as client:
        client.ask("one")
    hub.restart(new_key=True, keep_pins=True)  # the hub offers KKpsk0; ours uses the old key and is refused
    with pytest.raises(ThalovantHubKeyChangedError):
        ThalovantClient(identity(), transport=hub, noise_key_file=key_file, auto_reconnect=False).connect()
    assert hub.hub is not None and hub.hub.patterns[-2:] == ["KKpsk0", "XXpsk2"]


def test_a_wrong_password_after_a_refused_kk_is_an_authentication_error(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    key_file = tmp_path / "client.key"
    with ThalovantClient(identity(), transport=hub, noise_key_file=key_file) as client:
        client.ask("one")
    wrong = {**identity(), "password": "another-password-0123456789"}
    with pytest.raises(ThalovantAuthenticationError) as info:  # KKpsk0 refused, then XXpsk2 tells why
        ThalovantClient(wrong, transport=hub, noise_key_file=key_file, auto_reconnect=False).connect()
    assert not isinstance(info.value, ThalovantHubKeyChangedError | ThalovantClientKeyRejectedError)
    assert hub.hub is not None and hub.hub.patterns[-2:] == ["KKpsk0", "XXpsk2"]


def test_the_xx_retry_after_a_refused_kk_keeps_the_callers_timeout(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    key_file = tmp_path / "client.key"
    with ThalovantClient(identity(), transport=hub, noise_key_file=key_file) as client:
        client.ask("one")
    hub.restart(new_key=True, keep_pins=True)  # KKpsk0 is refused, so connect() retries with XXpsk2
    attach = hub.attach

    def silent_retry(config: Any) -> Any:  # the retry's link: a network that swallows everything
        transport = attach(config)
        transport.blackhole = hub.attached > 2
        return transport

    hub.attach = silent_retry  # type: ignore[method-assign]
    slow = ThalovantClient(
        identity(), transport=hub, noise_key_file=key_file, auto_reconnect=False, connect_timeout=30.0,
        handshake_timeout=30.0,
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(ThalovantTimeoutError):
        slow.connect(timeout=0.5)
    assert time.monotonic() - started < 0.5 + 0.2 + 0.3  # (0.3 s: the test's own overhead on a busy machine)
    assert hub.hub is not None and hub.hub.patterns[-1:] == ["KKpsk0"] and hub.attached == 3


@pytest.mark.parametrize("blocker", ["folder", "temporary-file"])
def test_a_pin_that_cannot_be_written_is_a_typed_error_and_leaves_nothing_open(tmp_path: Path, blocker: str) -> None:
    hub = MemoryHub(generation=3)
    key_file = tmp_path / "client.key"
    client = ThalovantClient(identity(), transport=hub, noise_key_file=key_file)
    pin = client._async._hub_keys.path
    assert pin is not None
    if blocker == "folder":  # the pin's folder cannot be made (so it cannot be read either)
        pin.parent.write_text("not a folder")
    else:  # readable (nothing pinned) but the pin cannot be written
        pin.with_name(pin.name + ".tmp").mkdir(parents=True)
    with pytest.raises(ThalovantArgumentError, match="noise_key_file") as info:
        client.connect()
    no_secret(str(info.value) + repr(info.value))
    assert client.wait_closed(timeout=WAIT)
    assert hub.hub is not None and not hub.hub.connected


@pytest.mark.anyio
async def test_the_xx_retry_keeps_the_listeners_made_before_connect(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    key_file = tmp_path / "client.key"
    with ThalovantClient(identity(), transport=hub, noise_key_file=key_file) as first:
        first.ask("one")  # both keys pinned: the next client offers KKpsk0
    client = AsyncThalovantClient(identity(), transport=hub, noise_key_file=key_file, auto_reconnect=False)
    frames = client.listen_binary(timeout=WAIT, max_events=2)
    events = client.listen("x.y", timeout=WAIT, max_events=2)
    hub.corrupt_next(1)  # the KKpsk0 reply is garbled: a glitch, so connect() retries once with XXpsk2
    await client.connect()
    try:
        assert hub.hub is not None and hub.hub.patterns[-2:] == ["KKpsk0", "XXpsk2"]
        for n in (1, 2):
            hub.push_binary(b"clip%d" % n, "file", {"file_name": f"c{n}"})
            hub.push("x.y", {"n": n})
        assert [f.data async for f in frames] == [b"clip1", b"clip2"]  # on main: ConnectionError after the first
        assert [e.data["n"] async for e in events] == [1, 2]
    finally:
        await client.close()


@pytest.mark.anyio
async def test_connect_on_a_connected_client_is_a_no_op_even_after_a_forgotten_pin(tmp_path: Path) -> None:
    hub = MemoryHub(generation=3)
    client = AsyncThalovantClient(identity(), transport=hub, noise_key_file=tmp_path / "client.key")
    async with client:
        await client.ask("one")
    assert client.forget_hub_key()  # the next session runs XXpsk2 where the hub knows our key (KKpsk0 offered)
    async with client:
        assert hub.hub is not None and hub.hub.patterns[-1] == "XXpsk2"
        started = anyio.current_time()
        await client.connect()  # no-op: no second wait for a refusal of our key (REFUSAL_WINDOW, 0.75 s)
        assert anyio.current_time() - started < 0.2
        assert (await client.ask("two")).text == "echo: two"
