"""Configuration files and credentials of one test hub run directory.

Everything here is regenerated on each ``TestHub.start()``: fresh random credentials, mosquitto's
password file and ACL, the OVOS bus config, hivemind-core's ``server.json``, the client database
(written by the hub's own ``ClientDatabase`` inside the hub venv) and one thalovant identity file
per client kind.  Secret-bearing files are mode 0600 inside a 0700 directory.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.harness.install import HarnessError

if TYPE_CHECKING:
    from tests.harness.hub import ClientSpec, TestHub

# The hub's MQTT topic layouts. Hub 4.x (plugin 0.1.0a2): <MQTT_ROOT>/<MQTT_HUB_ID>/c2s|s2c|status/<access key>.
# Hub 5.x (plugin 0.2.5a2): <MQTT_ROOT>/<access key>/in|out|status (no hub id; the hub's own presence is
# <MQTT_ROOT>/<node name>/status).
MQTT_ROOT = "hivemind"
HUB_SITE_ID = "thalovant-hub-site"  # as tests.harness.hub.HUB_SITE_ID
MQTT_HUB_ID = "thalovant-test-hub"
MQTT_BASE = f"{MQTT_ROOT}/{MQTT_HUB_ID}"
# hub 5.x's node name: its identity file names none, so NodeIdentity says "unnamed-node", and the plugin's
# presence (retained online, last will offline) is <MQTT_ROOT>/<node name>/status.
HUB5_NODE_NAME = "unnamed-node"

# hub 4.x's implicit default ACL; hub 5.x defaults to "deny everything", so we state it explicitly there.
DEFAULT_ALLOWED_TYPES = [
    "recognizer_loop:utterance",
    "recognizer_loop:record_begin",
    "recognizer_loop:record_end",
    "recognizer_loop:audio_output_start",
    "recognizer_loop:audio_output_end",
    "recognizer_loop:b64_transcribe",
    "speak:b64_audio",
    "ovos.common_play.SEI.get.response",
]

_ADD_CLIENTS = """
import inspect, json, sys
from hivemind_core.database import ClientDatabase
accepted = set(inspect.signature(ClientDatabase.add_client).parameters)
with ClientDatabase() as db:
    for c in json.load(sys.stdin):
        kwargs = {k: v for k, v in c.items() if k in accepted}
        if not db.add_client(**kwargs):
            sys.exit(f"add_client failed for {c['name']}")
        if c.get("grants_off"):
            user = db.get_client_by_api_key(c["key"])
            for flag in c["grants_off"]:
                setattr(user, flag, False)
            db.update_item(user)
"""


@dataclass(frozen=True)
class Client:
    """Credentials of one hub client (never printed)."""

    spec: ClientSpec
    access_key: str
    password: str | None
    crypto_key: str | None
    broker_password: str

    def __repr__(self) -> str:
        return f"Client({self.spec.kind}, name={self.spec.name})"


def make_clients(hub: TestHub, kinds: tuple[ClientSpec, ...]) -> list[Client]:
    from tests.harness.hub import padded_key, portable_key

    clients = []
    for spec in kinds:
        if hub.v3 and not spec.hub5:
            continue
        key = padded_key(hub.user_agent) if spec.padded else portable_key(hub.user_agent)
        clients.append(Client(
            spec=spec,
            access_key=key,
            password=secrets.token_hex(16) if spec.password else None,
            crypto_key=secrets.token_hex(8) if spec.crypto_key else None,
            broker_password=secrets.token_hex(16),
        ))
    return clients


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_all(hub: TestHub, clients: list[Client]) -> None:
    ports = hub.ports
    assert ports is not None
    run = hub.run_dir
    hub_broker_password = secrets.token_hex(16)
    if hub.mqtt_available:
        _write_mosquitto(hub, clients, hub_broker_password)
    bus_conf = {"websocket": {"host": "127.0.0.1", "port": ports.bus, "route": "/core", "ssl": False,
                              "shared_connection": True, "max_msg_size": 25}}
    (run / "config" / "mycroft" / "mycroft.conf").write_text(json.dumps(bus_conf))
    network: dict[str, Any] = {
        "hivemind-websocket-plugin": {"host": "127.0.0.1", "port": ports.ws, "ssl": False},
        "hivemind-http-plugin": {"host": "127.0.0.1", "port": ports.http, "ssl": False},
    }
    if hub.mqtt_available:
        network["hivemind-mqtt-plugin"] = {
            "broker_host": "127.0.0.1", "broker_port": ports.mqtt, "broker_username": "hivemind-hub",
            "broker_password": hub_broker_password, "topic_prefix": MQTT_ROOT, "qos": 1, "idle_timeout": 300,
        }
        if not hub.v3:  # plugin 0.2.x has no hub id level
            network["hivemind-mqtt-plugin"]["hub_id"] = MQTT_HUB_ID
    server = {
        "binarize": False,
        "allowed_encodings": ["JSON-B64", "JSON-URLSAFE-B64", "JSON-B91", "JSON-Z85B", "JSON-Z85P", "JSON-B32",
                              "JSON-HEX"],
        "allowed_ciphers": ["CHACHA20-POLY1305", "AES-GCM"],
        "agent_protocol": {"module": "hivemind-ovos-agent-plugin",
                           "hivemind-ovos-agent-plugin": {"host": "127.0.0.1", "port": ports.bus}},
        "binary_protocol": hub.flavour.binary_protocol or {"module": None},
        "network_protocol": network,
        "database": {"module": "hivemind-json-db-plugin",
                     "hivemind-json-db-plugin": {"name": "clients", "subfolder": "hivemind-core"}},
    }
    if hub.v3:
        # 5.x extras that would reach beyond loopback (mDNS/UPnP presence, an upstream master) stay off
        server["presence"] = {"enabled": False, "zeroconf": False, "upnp": False}
        server["upstream"] = {"enabled": False}
        server["rendezvous"] = {"enabled": False}
    _write_secret(run / "config" / "hivemind-core" / "server.json", json.dumps(server, indent=1))
    # the hub's node identity names its site, so mesh wrappers can target it (the hub adds its keys on start)
    (run / "config" / "hivemind").mkdir(parents=True, exist_ok=True)
    _write_secret(run / "config" / "hivemind" / "_identity.json", json.dumps({"site_id": HUB_SITE_ID}))
    _add_clients(hub, clients)
    for client in clients:
        _write_secret(hub.identity_path(client.spec.kind), json.dumps(_identity(hub, client), indent=1))


def _identity(hub: TestHub, client: Client) -> dict[str, Any]:
    ports = hub.ports
    assert ports is not None
    endpoints = {"https": f"http://127.0.0.1:{ports.http}", "wss": f"ws://127.0.0.1:{ports.ws}"}
    identity: dict[str, Any] = {
        "access_key": client.access_key,
        "password": client.password,
        "crypto_key": client.crypto_key,
        "site_id": "loopback-test",
        "default_master": "http://127.0.0.1",
        "default_port": ports.http,
        "default_path": "",
        "data_plane_endpoints": endpoints,
        "protocols": {"wss": {"enabled": True}, "http": {"enabled": True}, "mqtt": {"enabled": hub.mqtt_available}},
    }
    if hub.mqtt_available:
        endpoints["mqtt"] = f"mqtt://127.0.0.1:{ports.mqtt}"
        identity["mqtt"] = {"endpoint": endpoints["mqtt"], "username": client.access_key,
                            "password": client.broker_password, "topic_prefix": mqtt_prefix(hub.v3, client.access_key),
                            "tls": False}
    return identity


def _write_mosquitto(hub: TestHub, clients: list[Client], hub_password: str) -> None:
    from tests.harness.install import find_mosquitto

    found = find_mosquitto()
    ports = hub.ports
    assert found is not None and ports is not None
    folder = hub.run_dir / "mosquitto"
    folder.chmod(0o700)
    conf = [
        "per_listener_settings false",
        f"listener {ports.mqtt} 127.0.0.1",
        "allow_anonymous false",
        f"password_file {folder / 'passwd'}",
        f"acl_file {folder / 'acl'}",
        "persistence false",
        # as root mosquitto would switch to user "mosquitto" and then fail to read our 0600 files
        f"user {getpass.getuser()}",
        f"log_dest file {hub.run_dir / 'logs' / 'mosquitto.log'}",
        "log_type error", "log_type warning", "log_type notice", "log_type information",
        "connection_messages true",
    ]
    (folder / "mosquitto.conf").write_text("\n".join(conf) + "\n")
    users = [("hivemind-hub", hub_password)] + [(c.access_key, c.broker_password) for c in clients]
    _write_secret(folder / "passwd", "".join(f"{user}:{password}\n" for user, password in users))
    proc = subprocess.run([found[1], "-U", str(folder / "passwd")], capture_output=True, text=True, timeout=60,
                          check=False)
    if proc.returncode != 0:
        raise HarnessError(f"mosquitto_passwd -U failed: {proc.stderr.strip()}")
    _write_secret(folder / "acl", "\n".join(broker_acl(clients, v3=hub.v3)) + "\n")


def mqtt_prefix(v3: bool, access_key: str) -> str:
    """The identity's ``mqtt.topic_prefix``: hub 4.x ``<root>/<hub id>``; hub 5.x ``<root>/<key>``, the
    ACL-scoped prefix ending in the client's key that the control plane hands out (``mqtt_layout="modern"``
    makes it ``<root>/<key>/in|out|status``)."""
    return f"{MQTT_ROOT}/{access_key}" if v3 else MQTT_BASE


def client_topics(v3: bool, access_key: str) -> tuple[str, str, str]:
    """The (client -> hub, hub -> client, status) topics the hub's plugin uses for one access key."""
    if v3:
        return (f"{MQTT_ROOT}/{access_key}/in", f"{MQTT_ROOT}/{access_key}/out", f"{MQTT_ROOT}/{access_key}/status")
    return (f"{MQTT_BASE}/c2s/{access_key}", f"{MQTT_BASE}/s2c/{access_key}", f"{MQTT_BASE}/status/{access_key}")


def broker_acl(clients: list[Client], *, v3: bool = False) -> list[str]:
    """mosquitto's ACL, scoped as the control plane scopes a client: its broker login may write its own
    c2s topic, read its own s2c topic, use its own status topic and read the hub's presence
    (``status/hub``: its retained online/offline and last will, the signal of a hub restart), and
    nothing else (not another client's topics). Whatever ``topic_prefix`` an identity holds, only the
    topics the hub listens on get through, so a client that derives other topics never gets a session.
    ``v3``: the hub 5.x plugin's ``<root>/<key>/in|out|status`` topics instead of hub 4.x's, and its
    presence ``<root>/<node name>/status`` (the client subscribes ``<root>/+/status`` and learns it).
    """
    acl = ["user hivemind-hub", f"topic readwrite {MQTT_ROOT}/#"]
    for client in clients:  # the broker username is the access key; the topic level is the access key
        c2s, s2c, status = client_topics(v3, client.access_key)
        acl += ["", f"user {client.access_key}", f"topic write {c2s}", f"topic read {s2c}", f"topic readwrite {status}"]
        acl.append(f"topic read {MQTT_ROOT}/{HUB5_NODE_NAME}/status" if v3 else f"topic read {MQTT_BASE}/status/hub")
    return acl


def _add_clients(hub: TestHub, clients: list[Client]) -> None:
    rows = []
    for client in clients:
        row: dict[str, Any] = {"name": client.spec.name, "key": client.access_key, "admin": client.spec.admin,
                               "password": client.password, "crypto_key": client.crypto_key}
        extra = list(client.spec.extra_types) + list(hub.flavour.extra_types)
        if hub.v3 or extra:
            row["allowed_types"] = DEFAULT_ALLOWED_TYPES + extra
        if client.spec.grants_off:
            row["grants_off"] = list(client.spec.grants_off)
        rows.append(row)
    proc = subprocess.run([hub._python(), "-c", _ADD_CLIENTS], input=json.dumps(rows), capture_output=True,
                          text=True, env=hub._env(), cwd=hub.run_dir, timeout=120, check=False)
    if proc.returncode != 0:
        raise HarnessError(f"adding hub clients failed:\n{proc.stderr.strip()[-1500:]}")
