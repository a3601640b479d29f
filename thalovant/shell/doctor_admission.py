"""The doctor's ``admission`` probe: does the hub let this client in, on each transport?

* HTTP: ``POST /connect`` with the ``authorization`` token (then ``POST /disconnect`` to tidy up);
  the answer's status and JSON body say whether the access key was accepted;
* WebSocket: the upgrade with the token, then the hub's first frame (a hub greets at once; a close
  right after the upgrade means the key was refused);
* MQTT: a CONNACK for the broker login.

Failures the transport raises (refused, timed out, TLS) are left to the caller, which turns every
exception into a failed check (:mod:`thalovant.shell.doctor`); here only the answers are judged.
"""

from __future__ import annotations

import os
import ssl
from typing import Any, Literal, Protocol

import anyio
import anyio.abc

from thalovant.core import jsontree
from thalovant.core.doctor import CheckStatus, ProbeOutcome, ProbeParams, scrub_text
from thalovant.core.errors import ThalovantError
from thalovant.core.links.base import percent_encode
from thalovant.core.links.ws import ws_target
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.links.http import HttpConnection, HttpTimeouts
from thalovant.shell.links.mqtt import MqttConnection
from thalovant.shell.links.ws import WsClosed, WsConnection, WsUpgradeRejected

__all__ = ["AUTH_HINT", "Dialer", "admission", "host_port", "judge_connect"]

_OK, _FAILED, _WARNING = CheckStatus.OK, CheckStatus.FAILED, CheckStatus.WARNING
AUTH_HINT = "the hub does not accept this access key: ask the hub admin to check the client entry"
_GREETING_WAIT = 3.0


class Dialer(Protocol):
    """What an admission probe needs from the probe runner: where to dial, TLS, and the credentials."""

    identity: ThalovantIdentity
    useragent: str
    auth_encoding: Literal["raw", "percent"]
    address: str | None  # the address the dns probe resolved, if it ran

    def tls_context(self) -> ssl.SSLContext:
        """The TLS context (``ca_file`` / ``insecure``)."""
        ...

    def token(self) -> str:
        """The ``authorization`` token."""
        ...


async def admission(d: Dialer, p: ProbeParams) -> ProbeOutcome:
    """The admission probe for ``p.protocol``; raises what the transport raises."""
    if p.protocol == "wss":
        return await _ws(d, p)
    if p.protocol == "mqtt":
        return await _mqtt(d, p)
    return await _http(d, p)


async def _http(d: Dialer, p: ProbeParams) -> ProbeOutcome:
    context = d.tls_context() if p.tls else None
    address = d.address or p.host

    async def dial() -> anyio.abc.ByteStream:
        if context is None:
            return await anyio.connect_tcp(address, p.port)
        return await anyio.connect_tcp(
            address, p.port, tls=True, ssl_context=context, tls_hostname=p.host, tls_standard_compatible=False
        )

    base = p.path.rstrip("/")
    query = "?authorization=" + percent_encode(d.token())
    async with HttpConnection(
        p.host, p.port, tls=p.tls, ssl_context=context, timeouts=HttpTimeouts.uniform(p.timeout), connector=dial
    ) as conn:
        answer = await conn.request("POST", f"{base}/connect{query}")
        verdict = judge_connect(answer.status, answer.body, f"POST {base}/connect")
        if verdict.status is _OK:
            with anyio.move_on_after(min(p.timeout, 2.0)):
                try:
                    await conn.request("POST", f"{base}/disconnect{query}")
                except ThalovantError:
                    pass  # only tidying up; the admission answer is what counts
    return verdict


async def _ws(d: Dialer, p: ProbeParams) -> ProbeOutcome:
    context = d.tls_context() if p.tls else None
    try:
        ws = await WsConnection.connect(
            d.address or p.host,
            p.port,
            ws_target(d.token(), d.auth_encoding),
            tls=context,
            server_hostname=p.host,
            timeout=p.timeout,
            extra_headers=[("User-Agent", d.useragent)],
        )
    except WsUpgradeRejected as exc:
        hint = "this port is not the hub's WebSocket listener (default 5678)" if exc.status_code == 404 else ""
        return ProbeOutcome(status=_FAILED, detail=f"the upgrade was refused with HTTP {exc.status_code}", hint=hint)
    try:
        first: object = None
        with anyio.move_on_after(min(p.timeout, _GREETING_WAIT)):
            first = await ws.receive()
    finally:
        await ws.abort()
    if isinstance(first, WsClosed):
        detail = f"the hub closed the link right after the upgrade (code {first.code}: {first.reason or 'no reason'})"
        return ProbeOutcome(status=_FAILED, detail=detail, hint=AUTH_HINT)
    if first is None:
        detail = f"upgrade accepted (101), but the hub sent nothing within {min(p.timeout, _GREETING_WAIT):g} s"
        return ProbeOutcome(status=_WARNING, detail=detail, hint="a HiveMind hub greets at once; is this the hub?")
    return ProbeOutcome(status=_OK, detail="upgrade accepted (101) and the hub sent its greeting")


async def _mqtt(d: Dialer, p: ProbeParams) -> ProbeOutcome:
    creds = d.identity.mqtt
    context = d.tls_context() if p.tls else None
    async with MqttConnection(ack_timeout=p.timeout) as mqtt:
        await mqtt.connect(
            p.host,
            p.port,
            client_id=f"thalovant-doctor-{os.urandom(4).hex()}",
            username=creds.username if creds else None,
            password=creds.password if creds else None,
            tls=context,
            timeout=p.timeout,
        )
        await mqtt.disconnect()
    return ProbeOutcome(status=_OK, detail=f"the broker at {host_port(p.host, p.port)} accepted the login (CONNACK)")


def judge_connect(status: int, body: bytes, what: str) -> ProbeOutcome:
    """Judge the hub's answer to ``POST /connect``: 200 with a JSON body and no error admits the client."""
    try:
        data: Any = jsontree.loads(body.decode("utf-8"))
    except ValueError:  # not UTF-8, not JSON, or nested too deep (jsontree.JsonTooDeep)
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if status == 200 and isinstance(data, dict) and error is None:
        return ProbeOutcome(status=_OK, detail=f"{what} answered 200 ({scrub_text(data.get('status', 'ok'))})")
    if status == 404:
        hint = "check the port and default_path: the hub's HTTP listener (default port 5679) answers POST /connect"
        return ProbeOutcome(status=_FAILED, detail=f"{what} answered 404: not a HiveMind HTTP hub here", hint=hint)
    reason = f"HTTP {status}" + (f": {scrub_text(error)}" if error is not None else "")
    if status in (400, 401, 403) or (status == 500 and error == "Connection failed"):
        return ProbeOutcome(status=_FAILED, detail=f"the hub refused the access key ({reason})", hint=AUTH_HINT)
    if data is None:
        hint = "this server does not answer like a HiveMind hub; check the port and default_path"
        return ProbeOutcome(status=_FAILED, detail=f"{what} answered {reason} without a JSON body", hint=hint)
    return ProbeOutcome(status=_FAILED, detail=f"{what} answered {reason}")


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
