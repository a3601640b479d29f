"""A local control-plane API on 127.0.0.1 for tests.

Implements the documented endpoints below a base path (``/api``):

* ``POST /api/v1/auth/token``   ``{email, password[, otp_code][, recovery_code]}`` -> ``{access_token}``
* ``GET  /api/v1/hubs``         bearer; ``?limit=&cursor=`` -> ``{items, next_cursor}``
* ``GET  /api/v1/hubs/<id>``    bearer; the id is URL-decoded
* ``POST /api/v1/clients``      bearer + ``Idempotency-Key``; ``spec`` must carry apiKey/password/cryptoKey

How a hub answers ``POST /v1/clients`` is set by its ``answer`` field:
``"refs"`` returns Vault-style references instead of secrets, ``"initial_identify"``
returns an ``initial_identify`` block with per-client MQTT broker credentials,
``"echo422"`` answers a FastAPI-style 422 that echoes the submitted spec (secrets included).

``script(method, path, Reply(...))`` overrides the next answers for a path: any status,
headers, body, a delay, a truncated body or an oversized body. Everything runs in one
background thread pool; :meth:`FakeControlServer.stop` closes it.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

BASE = "/api"


@dataclass
class Reply:
    """A scripted answer. ``times`` = how many requests it serves (then normal routing resumes)."""

    status: int = 200
    body: bytes | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_to: int | None = None  # send a Content-Length of the full body, then only this many bytes
    close: bool = False
    times: int = 1


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


HUBS: dict[str, dict[str, Any]] = {
    "hub-1": {
        "id": "hub-1", "name": "Jokes", "domain": "jokes.example.test",
        "spec": {"protocols": {"wss": {"enabled": True}, "http": {"enabled": True}, "mqtt": {"enabled": False}}},
        "answer": "refs",
    },
    "hub-mqtt": {
        "id": "hub-mqtt", "name": "Broker hub",
        "data_plane_endpoints": {
            "https": "https://mqtt-hub.example.test", "wss": "wss://mqtt-hub.example.test",
            "mqtt": "mqtts://broker.example.test:8883",
        },
        "spec": {"protocols": {"wss": True, "http": "yes", "mqtt": {"enabled": True}}},
        "answer": "initial_identify",
    },
    "hub-norefs-mqtt": {
        "id": "hub-norefs-mqtt", "name": "MQTT without creds",
        "data_plane_endpoints": {"mqtt": "mqtt://127.0.0.1:1883", "wss": "ws://127.0.0.1:5678"},
        "protocols": {"mqtt": True, "wss": True},
        "answer": "refs",
    },
    "hub-422": {"id": "hub-422", "name": "Strict", "domain": "strict.example.test", "answer": "echo422"},
    "hub-bare": {"id": "hub-bare", "name": "No endpoints", "protocols": {"wss": False}, "answer": "refs"},
    "we ird/id": {"id": "we ird/id", "name": "Odd id", "domain": "odd.example.test", "answer": "refs"},
}


class FakeControlServer:
    """The fake API. Use ``with FakeControlServer() as srv:`` and ``srv.url``."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.users: dict[str, tuple[str, str | None]] = {
            "dev@example.test": ("correct horse battery", None),
            "mfa@example.test": ("mfa password 123", "424242"),
        }
        self.hubs = json.loads(json.dumps(HUBS))
        self.tokens: set[str] = set()
        self.issued_secrets: list[str] = []  # every secret this server generated (tokens, broker passwords)
        self.requests: list[Recorded] = []
        self.clients: list[dict[str, Any]] = []
        self.idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self._scripts: dict[tuple[str, str], list[Reply]] = {}
        self._lock = threading.Lock()
        self._ssl = ssl_context
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.connections = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeControlServer:
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        if self._ssl is not None:
            httpd.socket = self._ssl.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{BASE}"

    # ------------------------------------------------------------------ scripting
    def script(self, method: str, path: str, reply: Reply) -> None:
        """Answer ``method path`` (path below the base, e.g. ``/v1/hubs``) with ``reply``."""
        with self._lock:
            self._scripts.setdefault((method, path), []).append(reply)

    def next_script(self, method: str, path: str) -> Reply | None:
        with self._lock:
            queue = self._scripts.get((method, path))
            if not queue:
                return None
            reply = queue[0]
            reply.times -= 1
            if reply.times <= 0:
                queue.pop(0)
            return reply

    def new_secret(self) -> str:
        value = secrets.token_urlsafe(24)
        self.issued_secrets.append(value)
        return value

    # ------------------------------------------------------------------ routing
    def route(self, rec: Recorded) -> tuple[int, dict[str, Any], dict[str, str]]:
        path = rec.path
        if rec.method == "POST" and path == "/v1/auth/token":
            return self._login(rec)
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return 401, {"code": "not_authenticated", "detail": "Not authenticated"}, {}
        if rec.method == "GET" and path == "/v1/hubs":
            limit = int(rec.query.get("limit", ["100"])[0])
            items = list(self.hubs.values())[:limit]
            return 200, {"items": items, "next_cursor": None}, {}
        if rec.method == "GET" and path.startswith("/v1/hubs/"):
            hub_id = unquote(path[len("/v1/hubs/"):])
            hub = self.hubs.get(hub_id)
            if hub is None:
                return 404, {"detail": f"Hub {hub_id} not found", "code": "hub_not_found"}, {}
            return 200, hub, {}
        if rec.method == "POST" and path == "/v1/clients":
            return self._create_client(rec)
        return 404, {"detail": "Not Found"}, {}

    def _login(self, rec: Recorded) -> tuple[int, dict[str, Any], dict[str, str]]:
        data = json.loads(rec.body or b"{}")
        user = self.users.get(data.get("email", ""))
        if user is None or data.get("password") != user[0]:
            return 401, {"code": "invalid_credentials", "detail": "Invalid email or password"}, {}
        if user[1] is not None and data.get("otp_code") != user[1]:
            return 401, {"code": "mfa_required", "detail": "A one-time code is required"}, {}
        token = self.new_secret()
        self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": 3600}, {}

    def _create_client(self, rec: Recorded) -> tuple[int, dict[str, Any], dict[str, str]]:
        key = rec.headers.get("idempotency-key")
        if not key:
            return 400, {"detail": "Idempotency-Key header required"}, {}
        if key in self.idempotent:
            status, previous = self.idempotent[key]
            return status, previous, {"idempotent-replayed": "true"}
        body = json.loads(rec.body)
        spec = body["spec"]
        hub = self.hubs.get(body["hub_id"])
        if hub is None:
            return 404, {"detail": "Hub not found"}, {}
        if hub["answer"] == "echo422":
            return 422, {"detail": [{"loc": ["body", "spec", "apiKey"], "msg": "value is not allowed here",
                                     "input": spec}]}, {}
        assert all(isinstance(spec.get(k), str) for k in ("apiKey", "password", "cryptoKey", "siteId")), spec
        if any(c["name"] == body["name"] and c["hub_id"] == hub["id"] for c in self.clients):
            return 409, {"code": "client_exists", "detail": f"A client named {body['name']} already exists"}, {}
        client_id = f"client-{len(self.clients) + 1}"
        stored = {"id": client_id, "hub_id": hub["id"], "name": body["name"], "spec": dict(spec)}
        self.clients.append(stored)
        answer: dict[str, Any] = {
            "id": client_id, "hub_id": hub["id"], "name": body["name"], "active": body["active"],
            "spec": {
                "version": spec["version"], "siteId": spec["siteId"],
                "apiKeyRef": {"name": f"vault/clients/{client_id}", "key": "apiKey"},
                "passwordRef": {"name": f"vault/clients/{client_id}", "key": "password"},
                "cryptoKeyRef": {"name": f"vault/clients/{client_id}", "key": "cryptoKey"},
            },
        }
        if hub["answer"] == "initial_identify":
            broker_password = self.new_secret()
            answer["initial_identify"] = {
                "access_key": spec["apiKey"], "password": {"ref": "vault/clients/x", "key": "password"},
                "crypto_key": spec["cryptoKey"], "site_id": spec["siteId"],
                "default_master": "https://mqtt-hub.example.test", "default_port": 443, "default_path": "",
                "mqtt": {"broker_url": "mqtts://broker.example.test:8883", "username": spec["apiKey"],
                         "broker_password": broker_password, "topic_prefix": f"hivemind/{hub['id']}"},
            }
        self.idempotent[key] = (201, answer)
        return 201, answer, {}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeControlServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def setup(self) -> None:
        super().setup()
        self.owner.connections += 1

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = parts.path[len(BASE):] if parts.path.startswith(BASE) else parts.path
        rec = Recorded(self.command, path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}, body)
        self.owner.requests.append(rec)
        scripted = self.owner.next_script(self.command, path)
        if scripted is not None:
            self._send_reply(scripted)
            return
        status, answer, extra = self.owner.route(rec)
        self._send_reply(Reply(status=status, body=answer, headers=extra))

    def _send_reply(self, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response_only(reply.status)
        headers = {"content-type": "application/json", "content-length": str(len(raw)), **reply.headers}
        for k, v in headers.items():
            self.send_header(k, v)
        if reply.close or reply.truncate_to is not None:
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(raw if reply.truncate_to is None else raw[: reply.truncate_to])
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle


@contextmanager
def running(**kwargs: Any) -> Iterator[FakeControlServer]:
    with FakeControlServer(**kwargs) as srv:
        yield srv
