"""The 0.4.7 compatibility suite: tests written the way 0.4.7 users write theirs.

Old keywords, old shapes, old imports (``from thalovant import ...``), a hub double per test. The
hub here is the in-memory one of the offline shell tests (:class:`tests.shell.inmemory.MemoryHubNet`
in place of the dial seam): the clients, the runtime and the core run for real over WebSocket
frames. Each test failed on main before the 0.4.7 keywords and shapes came back (TypeError,
ImportError, AttributeError or a wrong value). Deprecated spellings warn once per process: a
fixture resets that memory so every test sees its warning.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.shell.inmemory import MemoryHubNet
from thalovant import HubDataPlaneEndpoints, HubProtocolSettings, ThalovantIdentity
from thalovant.core.deprecation import forget_warnings
from thalovant.shell.links import dial
from thalovant.testing import THROWAWAY_ACCESS_KEY, FakeHub

PASSWORD = "a-throwaway-password"
WAIT = 5.0
UA = "ThalovantPythonSDK/compat"


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    forget_warnings()
    yield
    forget_warnings()


@pytest.fixture(autouse=True)
def state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """0.4.7 code passes no ``noise_key_file``: keep the default key files out of the real home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


def make_identity() -> ThalovantIdentity:
    """An identity built the 0.4.7 way: the dataclass constructor with its keyword fields."""
    return ThalovantIdentity(
        access_key=THROWAWAY_ACCESS_KEY,
        password=PASSWORD,
        site_id="site",
        default_master="http://hub.invalid",
        default_port=5679,
        data_plane_endpoints=HubDataPlaneEndpoints(wss="ws://hub.invalid:5678"),
        protocols=HubProtocolSettings(wss=True),
    )


@pytest.fixture
def identity() -> ThalovantIdentity:
    return make_identity()


def install_hub(monkeypatch: pytest.MonkeyPatch, hub: FakeHub | None = None) -> MemoryHubNet:
    net = MemoryHubNet(hub or FakeHub(password=PASSWORD), protocol="wss", useragent=UA, access_key=THROWAWAY_ACCESS_KEY)
    monkeypatch.setattr(dial, "open_stream", net.open_stream)
    return net


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> MemoryHubNet:
    """The in-memory hub every client of the test dials (echo skill rules of ``thalovant.testing``)."""
    return install_hub(monkeypatch)
