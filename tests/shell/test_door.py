"""Bad input is refused at the door with a typed error (issue 13 item 6, issue 12 item 5), offline.

* Every constructor argument of ``AsyncThalovantClient`` / ``ThalovantClient`` is checked at once:
  a ``ThalovantArgumentTypeError`` (also a ``TypeError``) or a ``ThalovantArgumentError`` (a
  ``ValueError``) naming the argument, never its value, and before any key file is touched.
  Before, ``connect_timeout="5"``, ``nan`` or ``auth_encoding="bogus"`` were accepted and failed
  inside ``connect()`` as ``RuntimeError: Attempted to exit a cancel scope...``.
* The identity constructors raise ``ThalovantIdentityError`` for paths and texts of the wrong kind.
* A ``crypto_key`` shorter than 16 characters loads with one warning, and fails naming the field
  only when the hub needs the pre-shared path.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import anyio
import pytest

import thalovant
from tests.shell.inmemory import MemoryHubNet
from tests.shell.test_offline_client import PASSWORD, UA, WAIT, hub_net
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.errors import ThalovantArgumentError, ThalovantArgumentTypeError, ThalovantIdentityError
from thalovant.core.render import EXIT_USAGE, exit_code
from thalovant.shell.arguments import CLIENT_RULES, MAX_SECONDS
from thalovant.shell.identity_io import ThalovantIdentityWarning
from thalovant.shell.links import dial
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub

SECRETISH = "S3cr3t-Value-XYZ"
IDENTITY = {
    "access_key": THROWAWAY_ACCESS_KEY,
    "password": PASSWORD,
    "default_master": "http://127.0.0.1:9",
    "site_id": "den",
}

# ---- every client argument ------------------------------------------------------------------------

TYPE_ERRORS: list[tuple[str, object]] = [
    ("connect_timeout", "5"),
    ("connect_timeout", True),
    ("connect_timeout", None),
    ("handshake_timeout", [1]),
    ("send_timeout", "10"),
    ("reply_timeout", b"1"),
    ("queue_timeout", object()),
    ("keepalive", "15"),
    ("max_queue", 2.5),
    ("max_queue", "256"),
    ("max_queue", True),
    ("auto_reconnect", "yes"),
    ("auto_reconnect", 1),
    ("insecure", "no"),
    ("self_signed", 0),
    ("reconnect", {"base": 1}),
    ("http", {"hot_growth": 1.2}),
    ("liveness", (10, 5)),
    ("auth_encoding", 1),
    ("mqtt_layout", None),
    ("useragent", 5),
    ("useragent", None),
    ("session_id", 5),
    ("ca_file", 5),
    ("ca_file", b"/etc/ssl/ca.pem"),
    ("noise_key_file", True),
    ("noise_key_file", 5),
    ("trace", "trace.jsonl"),
]

VALUE_ERRORS: list[tuple[str, object]] = [
    ("connect_timeout", math.nan),
    ("connect_timeout", math.inf),
    ("connect_timeout", -1),
    ("connect_timeout", 0),
    ("connect_timeout", MAX_SECONDS * 2),
    ("handshake_timeout", -math.inf),
    ("send_timeout", 0.0),
    ("reply_timeout", math.nan),
    ("queue_timeout", -0.5),
    ("keepalive", 0),
    ("keepalive", math.nan),
    ("max_queue", 0),
    ("max_queue", -3),
    ("max_queue", 10**9),
    ("auth_encoding", "bogus"),
    ("auth_encoding", "RAW"),
    ("mqtt_layout", "x"),
    ("useragent", ""),
    ("useragent", "   "),
    ("useragent", "Agent:1"),
    ("useragent", "Agent/\ud800"),
    ("useragent", "Agent/\x00"),
    ("useragent", "Agent/é"),
    ("useragent", "A" * 300),
    ("session_id", ""),
    ("session_id", "s\ud800"),
    ("session_id", "s\n1"),
    ("ca_file", ""),
    ("ca_file", "/nonexistent/ca.pem"),
    ("ca_file", "a\x00b"),
    ("noise_key_file", "a\x00b"),
]


def build(sync: bool, **kwargs: Any) -> Any:
    cls = thalovant.ThalovantClient if sync else thalovant.AsyncThalovantClient
    kwargs.setdefault("noise_key_file", False)
    return cls(IDENTITY, **kwargs)


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize(("name", "value"), TYPE_ERRORS, ids=lambda v: ascii(v)[:20])
def test_an_argument_of_the_wrong_type_is_a_typed_type_error(sync: bool, name: str, value: object) -> None:
    with pytest.raises(ThalovantArgumentTypeError) as info:
        build(sync, **{name: value})
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, thalovant.ThalovantError)
    assert info.value.argument == name and str(info.value).startswith(f"{name}: ")


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize(("name", "value"), VALUE_ERRORS, ids=lambda v: ascii(v)[:20])
def test_an_argument_out_of_range_is_a_typed_value_error(sync: bool, name: str, value: object) -> None:
    with pytest.raises(ThalovantArgumentError) as info:
        build(sync, **{name: value})
    assert isinstance(info.value, ValueError) and not isinstance(info.value, TypeError)
    assert info.value.argument == name and str(info.value).startswith(f"{name}: ")
    if isinstance(value, str) and len(value) > 3:
        assert value not in str(info.value)


def test_every_constructor_argument_has_a_rule() -> None:
    for cls in (thalovant.AsyncThalovantClient,):
        names = set(inspect.signature(cls.__init__).parameters) - {"self"}
        assert names <= set(CLIENT_RULES), sorted(names - set(CLIENT_RULES))


def test_good_arguments_still_build_a_client(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until connect")
    client = build(
        False,
        connect_timeout=1,
        handshake_timeout=2.5,
        send_timeout=MAX_SECONDS,
        keepalive=None,
        max_queue=1,
        auto_reconnect=False,
        insecure=False,
        self_signed=None,
        auth_encoding="percent",
        mqtt_layout="modern",
        useragent="MyApp/1.0 (unit test)",
        session_id="session-1",
        ca_file=ca,
        noise_key_file=str(tmp_path / "k.key"),
        reconnect=ReconnectConfig(),
    )
    assert client.connect_timeout == 1


def test_a_bad_argument_creates_no_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    with pytest.raises(ThalovantArgumentError):
        thalovant.AsyncThalovantClient(IDENTITY, connect_timeout=math.nan)
    assert not (tmp_path / "thalovant").exists()


@pytest.mark.parametrize("kind", ["directory", "device"])
def test_a_noise_key_file_that_is_not_a_file_is_typed(tmp_path: Path, kind: str) -> None:
    path = str(tmp_path) if kind == "directory" else os.devnull
    with pytest.raises(ThalovantArgumentError) as info:
        build(False, noise_key_file=path)
    assert info.value.argument == "noise_key_file"
    assert not isinstance(info.value, OSError)


def test_a_noise_key_file_that_cannot_be_created_is_typed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ThalovantArgumentError) as info:
        build(False, noise_key_file=blocker / "below-a-file.key")  # its parent is a file
    assert info.value.argument == "noise_key_file" and "cannot read or create" in str(info.value)


def test_the_cli_exits_2_for_an_argument_error() -> None:
    assert exit_code(ThalovantArgumentError("connect_timeout", "must be greater than 0")) == EXIT_USAGE
    assert exit_code(ThalovantArgumentTypeError("connect_timeout", "must be a number")) == EXIT_USAGE


# ---- identity constructors ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["a\x00b", 5, None, b"identity.json"], ids=ascii)
def test_from_file_and_from_config_refuse_bad_paths_typed(path: Any) -> None:
    for load in (thalovant.ThalovantIdentity.from_file, thalovant.ThalovantIdentity.from_config):
        if path is None and load is thalovant.ThalovantIdentity.from_config:
            continue  # None means the default config path there
        with pytest.raises(ThalovantIdentityError):
            load(path)


@pytest.mark.parametrize("text", [5, None, 3.5, ["{}"], {"access_key": "k"}], ids=ascii)
def test_from_text_refuses_what_is_not_text_typed(text: Any) -> None:
    with pytest.raises(ThalovantIdentityError, match="must be text"):
        thalovant.ThalovantIdentity.from_text(text)


def test_a_directory_as_identity_file_is_typed(tmp_path: Path) -> None:
    with pytest.raises(ThalovantIdentityError, match="not a regular file"):
        thalovant.ThalovantIdentity.from_file(tmp_path)


# ---- a short crypto_key (issue 12 item 5) ----------------------------------------------------------

SHORT = "sh0rt-" + "k3y"


def test_a_short_crypto_key_loads_with_one_warning_that_shows_no_value() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ident = thalovant.ThalovantIdentity.from_mapping({**IDENTITY, "crypto_key": SHORT})
    assert ident.crypto_key == SHORT
    [warning] = [w for w in caught if issubclass(w.category, ThalovantIdentityWarning)]
    assert "crypto_key" in str(warning.message) and SHORT not in str(warning.message)
    assert warning.filename == __file__  # points at the caller, not at thalovant
    assert SHORT not in repr(ident) and SHORT not in json.dumps(ident.as_dict())


def test_a_good_crypto_key_loads_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ThalovantIdentityWarning)
        thalovant.ThalovantIdentity.from_mapping({**IDENTITY, "crypto_key": "0123456789abcdef"})


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def short_key_client(**identity: Any) -> thalovant.AsyncThalovantClient:
    values = {**IDENTITY, "crypto_key": SHORT, **identity, "data_plane_endpoints": {"wss": "ws://hub.invalid:5678"}}
    values = {k: v for k, v in values.items() if v is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ThalovantIdentityWarning)
        ident = thalovant.ThalovantIdentity.from_mapping(values)
    return thalovant.AsyncThalovantClient(
        ident, protocol="wss", useragent=UA, noise_key_file=False, connect_timeout=WAIT, auto_reconnect=False
    )


@pytest.mark.anyio
async def test_a_short_crypto_key_fails_typed_naming_the_field_when_the_hub_wants_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = MemoryHubNet(
        FakeHub(crypto_key="0123456789abcdef"), protocol="wss", useragent=UA, access_key=THROWAWAY_ACCESS_KEY
    )
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    client = short_key_client(password=None)
    with anyio.fail_after(WAIT), pytest.raises(thalovant.ThalovantAuthenticationError) as info:
        await client.connect()
    assert "crypto_key" in str(info.value) and SHORT not in str(info.value) and SHORT not in repr(info.value)
    assert len(net.dials) == 1  # never retried


@pytest.mark.anyio
async def test_a_short_crypto_key_is_never_used_when_the_password_path_works(monkeypatch: pytest.MonkeyPatch) -> None:
    hub_net(monkeypatch, "wss")  # a password hub
    async with short_key_client() as client:
        reply = await client.ask("hello", timeout=WAIT)
        assert reply.text == "echo: hello"


@pytest.mark.parametrize(
    ("value", "error"),
    [("5", ThalovantArgumentTypeError), (math.nan, ThalovantArgumentError), (-1, ThalovantArgumentError),
     ([1], ThalovantArgumentTypeError)],
)
def test_per_call_waits_are_checked_before_anything_is_sent(value: object, error: type[Exception]) -> None:
    # before: ask(timeout="5") raised an untyped TypeError from deep in the engine, nan an untyped ValueError
    client = build(False)

    async def main() -> None:
        with pytest.raises(error, match=r"^timeout: "):
            await client.ask("hi", timeout=value)
        with pytest.raises(error, match=r"^timeout: "):
            await client.wait_for_event("speak", timeout=value)
        with pytest.raises(error, match=r"^timeout: "):
            client.listen("speak", timeout=value)
        with pytest.raises(ThalovantArgumentError, match=r"^timeout: "):  # listen and wait_for_event take 0
            await client.ask("hi", timeout=0)

    anyio.run(main)
