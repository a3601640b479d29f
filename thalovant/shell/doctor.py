"""Run the doctor: execute the planner's probes with real sockets, each within its own time bound.

The planner (:class:`thalovant.core.doctor.Doctor`) decides which check comes
next; this module only performs them:

* ``dns``: ``anyio.getaddrinfo`` (or an injected resolver, so tests stay offline);
* ``tcp``: ``anyio.connect_tcp`` to the first resolved address;
* ``tls``: a TLS handshake with :func:`~thalovant.shell.tls.make_ssl_context`
  (``ca_file`` / ``insecure``); disabled verification is reported as a warning;
* ``admission``: HTTP ``POST /connect`` (followed by ``POST /disconnect``),
  a WebSocket upgrade plus the hub's first frame, or an MQTT CONNACK;
* ``handshake`` and ``link``: the caller's callbacks (the client supplies them).

Every failure becomes a failed check with a hint; :func:`run_doctor` never
raises for network trouble. All texts are scrubbed of the identity's secrets
and of the ``authorization`` token before they reach the report.
"""

from __future__ import annotations

import os
import socket
import ssl
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

import anyio
from anyio.streams.tls import TLSAttribute

from thalovant.core.client.plan import DEFAULT_USERAGENT
from thalovant.core.doctor import (
    CHECK_ORDER,
    CheckStatus,
    Doctor,
    Done,
    ProbeFinished,
    ProbeKind,
    ProbeOutcome,
    ProbeParams,
    RunProbe,
    Start,
    ThalovantDoctorCheck,
    ThalovantDoctorReport,
    scrub_text,
    settings_from_identity,
)
from thalovant.core.doctor_report import scrub_report, secret_texts
from thalovant.core.errors import (
    ThalovantAuthenticationError,
    ThalovantError,
    ThalovantHandshakeError,
    ThalovantIdentityError,
    ThalovantTimeoutError,
)
from thalovant.core.wire.auth import authorization_token
from thalovant.shell.doctor_admission import AUTH_HINT, admission, host_port
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.tls import InsecureTLSWarning, make_ssl_context

__all__ = ["Probe", "Resolver", "ThalovantDoctorCheck", "ThalovantDoctorReport", "run_doctor"]

#: ``await resolver(host, port)`` returns the addresses to dial (raise ``OSError`` when none).
Resolver = Callable[[str, int], Awaitable[list[str]]]
#: A handshake / link check supplied by the client: returns a detail line, raises on failure.
Probe = Callable[[], Awaitable[str]]

_OK, _FAILED, _WARNING = CheckStatus.OK, CheckStatus.FAILED, CheckStatus.WARNING
_REFUSED_HINT = (
    "nothing listens on {where}: start the hub or fix the port (hub defaults: WebSocket 5678, HTTP 5679, "
    "MQTT 1883 / 8883 with TLS)"
)
_TIMEOUT_HINTS = {
    ProbeKind.DNS: "the DNS server does not answer; check this machine's network settings",
    ProbeKind.TCP: "a firewall may drop the packets, or the host / port is wrong",
    ProbeKind.TLS: "the server accepted TCP but sent no TLS answer: is this port really TLS?",
    ProbeKind.ADMISSION: "the server accepted the connection but did not answer like a hub: wrong port or "
    "protocol, or the hub is overloaded",
    ProbeKind.HANDSHAKE: "the hub admitted the client but did not finish the handshake: check password / crypto_key",
}


async def run_doctor(
    identity: ThalovantIdentity | Mapping[str, Any],
    *,
    protocol: str | None = None,
    timeout: float = 10.0,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    handshake_probe: Probe | None = None,
    link_probe: Probe | None = None,
    useragent: str | None = None,
    auth_encoding: Literal["raw", "percent"] = "raw",
    resolver: Resolver | None = None,
) -> ThalovantDoctorReport:
    """Check, step by step, why this identity can (or cannot) talk to its hub.

    Checks: identity, endpoint, dns, tcp, tls, admission, handshake, link. A
    failed check makes every later one ``skipped`` with a hint. Without
    ``handshake_probe`` / ``link_probe`` those two are skipped ("run through
    the client").

    Args:
        identity: the identity to check, or a mapping of identity-file fields (an invalid one fails the
            identity check, listing every problem).
        protocol: ``wss``, ``https`` or ``mqtt`` (any accepted spelling); default: the identity's first enabled one.
        timeout: seconds allowed for each probe.
        ca_file: PEM CA bundle to trust for TLS.
        insecure: skip certificate verification (the tls check then reports a warning).
        handshake_probe: connects and completes the handshake; returns a detail line, raises on failure.
            It runs in the caller's task without an extra cancel scope (a client's connect opens task
            groups that must outlive it), so it must bound itself (the client's ``connect_timeout``).
        link_probe: checks that the live link is up; returns a detail line, raises on failure. Same rule.
        useragent: the user agent sent in the ``authorization`` token (default: the client's).
        auth_encoding: how the WebSocket upgrade carries the token: ``"raw"`` (hub 4.x) or ``"percent"`` (hub 5.x),
            as for the client.
        resolver: replaces ``anyio.getaddrinfo`` (tests).

    Returns:
        The report. Never contains a secret. Network trouble never raises.
    """
    if useragent is None:
        useragent = DEFAULT_USERAGENT
    secrets = secret_texts(identity, useragent)
    problems: tuple[str, ...] = ()
    if isinstance(identity, Mapping):
        try:
            identity = ThalovantIdentity.from_mapping(identity)
        except ThalovantIdentityError as exc:
            problems = tuple(f"{path}: {msg}" if path else msg for path, msg in exc.problems)
    settings = settings_from_identity(
        identity,
        protocol=protocol,
        timeout=timeout,
        handshake_available=handshake_probe is not None,
        link_available=link_probe is not None,
    )
    if problems:
        settings = replace(settings, identity_problems=problems)
    secrets = sorted({*secrets, *secret_texts(identity, useragent)}, key=len, reverse=True)
    # the planner only asks for probes after the identity check passed, i.e. when this is an identity
    ident = cast(ThalovantIdentity, identity)
    runner = _Runner(
        ident, useragent, resolver or _getaddrinfo, ca_file, insecure, handshake_probe, link_probe, auth_encoding
    )
    doctor = Doctor()
    out = doctor.handle(Start(settings=settings), now=anyio.current_time())
    for _ in range(len(CHECK_ORDER) + 1):
        for order in out:
            if isinstance(order, Done):
                return scrub_report(order.report, secrets)
        probe = next((o for o in out if isinstance(o, RunProbe)), None)
        if probe is None:
            break
        outcome = await runner.run(probe.kind, probe.params)
        out = doctor.handle(ProbeFinished(probe_id=probe.probe_id, outcome=outcome), now=anyio.current_time())
    return scrub_report(  # unreachable unless the planner misbehaves; still never raise
        ThalovantDoctorReport({}, doctor.checks, settings.protocol), secrets
    )


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


@dataclass
class _Runner:
    identity: ThalovantIdentity
    useragent: str
    resolver: Resolver
    ca_file: str | os.PathLike[str] | None
    insecure: bool
    handshake_probe: Probe | None
    link_probe: Probe | None
    auth_encoding: Literal["raw", "percent"] = "raw"
    address: str | None = None

    async def run(self, kind: ProbeKind, p: ProbeParams) -> ProbeOutcome:
        steps: dict[ProbeKind, Callable[[ProbeParams], Awaitable[ProbeOutcome]]] = {
            ProbeKind.DNS: self.dns,
            ProbeKind.TCP: self.tcp,
            ProbeKind.TLS: self.tls,
            ProbeKind.ADMISSION: self.admission,
            ProbeKind.HANDSHAKE: self.handshake,
            ProbeKind.LINK: self.link,
        }
        step = steps.get(kind)
        if step is None:
            return ProbeOutcome(status=_FAILED, detail=f"no probe for {kind.value}")
        where = host_port(p.host, p.port)
        try:
            if kind in (ProbeKind.HANDSHAKE, ProbeKind.LINK):
                # The client's callbacks open long-lived task groups (the link's tasks) in this task, so they
                # cannot run inside a cancel scope of ours; they are bounded by the client's own timeouts.
                return await step(p)
            with anyio.fail_after(p.timeout + 0.5):
                return await step(p)
        except TimeoutError as exc:
            if kind in (ProbeKind.HANDSHAKE, ProbeKind.LINK):  # the client's own timeout: keep its words
                detail = scrub_text(str(exc) or "timed out")
                return ProbeOutcome(status=_FAILED, detail=detail, hint=_TIMEOUT_HINTS.get(kind, ""))
            hint = _TIMEOUT_HINTS.get(kind, "")
            return ProbeOutcome(status=_FAILED, detail=f"{where}: no answer within {p.timeout:g} s", hint=hint)
        except Exception as exc:  # every failure is a finding, never a crash
            if _refused(exc):
                detail = f"{where}: connection refused"
                return ProbeOutcome(status=_FAILED, detail=detail, hint=_REFUSED_HINT.format(where=where))
            return _failure(kind, where, exc)

    def tls_context(self) -> ssl.SSLContext:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureTLSWarning)  # reported as the tls check's warning instead
            return make_ssl_context(ca_file=self.ca_file, insecure=self.insecure)

    def token(self) -> str:
        return authorization_token(self.useragent, self.identity.access_key)

    async def dns(self, p: ProbeParams) -> ProbeOutcome:
        try:
            addresses = await self.resolver(p.host, p.port)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return ProbeOutcome(status=_FAILED, detail=f"cannot resolve {p.host!r}: {reason}")
        if not addresses:
            return ProbeOutcome(status=_FAILED, detail=f"{p.host!r} resolves to no address")
        self.address = addresses[0]
        return ProbeOutcome(status=_OK, detail=f"{p.host} -> {', '.join(addresses[:4])}")

    async def tcp(self, p: ProbeParams) -> ProbeOutcome:
        address = self.address or p.host
        stream = await anyio.connect_tcp(address, p.port)
        await stream.aclose()
        return ProbeOutcome(status=_OK, detail=f"connected to {host_port(address, p.port)}")

    async def tls(self, p: ProbeParams) -> ProbeOutcome:
        try:
            context = self.tls_context()
        except (OSError, ssl.SSLError) as exc:
            detail = f"cannot load the CA file: {getattr(exc, 'strerror', None) or type(exc).__name__}"
            return ProbeOutcome(status=_FAILED, detail=detail, hint="check the ca_file path and that it holds PEM")
        try:
            stream = await anyio.connect_tcp(
                self.address or p.host,
                p.port,
                tls=True,
                ssl_context=context,
                tls_hostname=p.host,
                tls_standard_compatible=False,
            )
        except ssl.SSLCertVerificationError as exc:
            detail = f"the certificate of {p.host} is not trusted ({exc.verify_message})"
            return ProbeOutcome(status=_FAILED, detail=detail)
        except ssl.SSLError as exc:
            detail = f"TLS handshake failed ({exc.reason or type(exc).__name__})"
            hint = "is this port really TLS? for a plain hub use http:// / ws:// / mqtt:// in the identity"
            return ProbeOutcome(status=_FAILED, detail=detail, hint=hint)
        version = stream.extra(TLSAttribute.tls_version, "TLS")
        await stream.aclose()
        if self.insecure:
            detail = f"{version} handshake done, but the certificate was NOT verified (insecure)"
            return ProbeOutcome(status=_WARNING, detail=detail, hint="pass ca_file= with the hub's CA instead")
        return ProbeOutcome(status=_OK, detail=f"{version}, certificate verified for {p.host}")

    async def admission(self, p: ProbeParams) -> ProbeOutcome:
        return await admission(self, p)

    async def handshake(self, p: ProbeParams) -> ProbeOutcome:
        assert self.handshake_probe is not None  # the planner only asks when one was given
        return ProbeOutcome(status=_OK, detail=str(await self.handshake_probe()))

    async def link(self, p: ProbeParams) -> ProbeOutcome:
        assert self.link_probe is not None
        return ProbeOutcome(status=_OK, detail=str(await self.link_probe()))


def _failure(kind: ProbeKind, where: str, exc: Exception) -> ProbeOutcome:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ThalovantTimeoutError):
        return ProbeOutcome(status=_FAILED, detail=f"{where}: {text}", hint="the hub is slow or this is the wrong port")
    if isinstance(exc, ThalovantAuthenticationError):
        hint = "check the MQTT username / password" if "MQTT" in text else AUTH_HINT
        if kind is ProbeKind.HANDSHAKE:
            hint = "the hub refused this client: check access_key and password with the hub admin"
        return ProbeOutcome(status=_FAILED, detail=text, hint=hint)
    if isinstance(exc, ThalovantHandshakeError):
        return ProbeOutcome(status=_FAILED, detail=text, hint="check that password / crypto_key match the hub")
    if isinstance(exc, ThalovantError):
        return ProbeOutcome(status=_FAILED, detail=text)
    if isinstance(exc, OSError):
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        return ProbeOutcome(status=_FAILED, detail=f"{where}: {cause.strerror or str(cause) or type(cause).__name__}")
    return ProbeOutcome(status=_FAILED, detail=f"{type(exc).__name__}: {text}")


def _refused(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it, e.g. anyio's "All connection attempts failed") is a refusal."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
