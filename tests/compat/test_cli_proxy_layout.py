"""CLI ``--proxy`` and ``--mqtt-layout``: global options like ``--host``/``--port`` (before or after the command).

``--proxy URL`` sends wss/https through that HTTP proxy, ``--proxy none`` never uses one, ``--proxy env``
(the default) reads ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``. ``--mqtt-layout modern`` picks hub 5.x's
``/in /out /status`` topics. ``--json`` output is the same with them. Before, both were argparse errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import thalovant.cli as cli
from tests.compat.test_cli_host_port import identity_file, local_hub  # noqa: F401 - the fixture
from tests.shell.inmemory import MemoryHubNet
from thalovant.core.links.mqtt_topics import MqttLayout
from thalovant.core.links.proxy import DIRECT, ProxyUrl
from thalovant.shell.progress import Progress

PROXY_PASSWORD = "proxy-password-never-shown"
HERE = ["--host", "http://127.0.0.1", "--port", "5678"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_proxy_url_routes_every_connection_through_it(
    where: str, tmp_path: Path, local_hub: MemoryHubNet, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    proxy = ["--proxy", f"http://alice:{PROXY_PASSWORD}@127.0.0.1:3128"]
    command = ["ask", "hello"]
    options = proxy + command if where == "before" else command + proxy
    argv = ["--identity", str(identity_file(tmp_path)), *HERE, *options]
    assert cli.main(argv) == 0  # the in-memory dial seam records the route; it does not tunnel
    captured = capsys.readouterr()
    assert captured.out == "echo: hello\n" and PROXY_PASSWORD not in captured.out + captured.err
    policy = local_hub.dials[0].proxy
    assert policy is not None
    route = policy.route("127.0.0.1", 5678, tls=False)
    assert isinstance(route, ProxyUrl) and (route.host, route.port) == ("127.0.0.1", 3128)


def test_proxy_none_goes_direct_and_the_default_reads_the_environment(
    tmp_path: Path, local_hub: MemoryHubNet  # noqa: F811
) -> None:
    path = str(identity_file(tmp_path))
    assert cli.main(["--identity", path, *HERE, "--proxy", "none", "health"]) == 0
    assert cli.main(["--identity", path, *HERE, "health"]) == 0
    assert [dial.proxy for dial in local_hub.dials] == [DIRECT, None]  # None: the environment, at each dial


def test_json_output_is_the_same_with_the_new_options(
    tmp_path: Path, local_hub: MemoryHubNet, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    path = str(identity_file(tmp_path))
    assert cli.main(["--identity", path, *HERE, "--json", "ask", "hello"]) == 0
    plain = json.loads(capsys.readouterr().out)
    extra = ["--proxy", "none", "--mqtt-layout", "modern"]
    assert cli.main(["--identity", path, *HERE, "--json", *extra, "ask", "hello"]) == 0
    with_options = json.loads(capsys.readouterr().out)
    assert set(with_options) == set(plain) and with_options["text"] == plain["text"] == "echo: hello"


@pytest.mark.parametrize("bad", [f"http://alice:{PROXY_PASSWORD}@127.0.0.1:notaport", "socks5://127.0.0.1:1080"])
def test_a_bad_proxy_is_a_usage_error_naming_the_option_never_the_value(
    bad: str, tmp_path: Path, local_hub: MemoryHubNet, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    assert cli.main(["--identity", str(identity_file(tmp_path)), "--proxy", bad, "health"]) == 2
    err = capsys.readouterr().err
    assert "--proxy" in err and PROXY_PASSWORD not in err and bad not in err and not local_hub.dials


def mqtt_identity(tmp_path: Path) -> Path:
    path = tmp_path / "_mqtt.json"
    values = {
        "access_key": "client-access-key",
        "password": "a-password",
        "site_id": "site",
        "default_master": "https://hub.example.invalid",
        "protocols": {"mqtt": {"enabled": True}},
        "mqtt": {"endpoint": "mqtt://127.0.0.1:1883", "topic_prefix": "hivemind", "hub_id": "hub"},
    }
    path.write_text(json.dumps(values), encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("given", "layout"), [([], MqttLayout.LEGACY), (["--mqtt-layout", "modern"], MqttLayout.MODERN)]
)
def test_mqtt_layout_reaches_the_client(given: list[str], layout: MqttLayout, tmp_path: Path) -> None:
    argv = ["--identity", str(mqtt_identity(tmp_path)), "--protocol", "mqtt", "health", *given]
    args = cli.parse(cli.build_parser(), argv)
    client = cli.Context(args, Progress(enabled=False)).client()
    assert client._plan.config.mqtt_layout is layout
