"""The ``thalovant`` command: talk to a HiveMind hub from a shell.

Global options (``-i/--identity``, ``--protocol``, ``--json``, ``--timeout``,
``-v``) may appear anywhere on the line. The identity comes from
``--identity``, else the file named by ``$THALOVANT_IDENTITY``, else the
``THALOVANT_*`` variables.

Exit codes: 0 success; 1 remote failure (ask refused, unanswered or timed
out, health not ok, doctor failed, connection failed, replay diverged); 2
usage or identity error; 130 interrupted. Errors go to stderr as one line
(``thalovant: ...``), with a traceback only under ``-v``. On a terminal,
long waits show a spinner on stderr; with ``--json`` or when stderr is not a
terminal, stdout carries only the result.

Imports stay lazy so ``thalovant --help`` and ``--version`` never load the
SDK's network stack.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.identity_io import ThalovantIdentity

EXIT_OK = 0
EXIT_REMOTE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

IDENTITY_ENV = "THALOVANT_IDENTITY"
_NESTED_FORBIDDEN = {"record", "replay", "identity", "version"}


class UsageError(Exception):
    """A command line the user must fix (exit 2)."""


class RemoteFailure(Exception):
    """The hub answered, but not with success (exit 1)."""


# ---- parser -------------------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser) -> None:
    """Options accepted before and after the command (defaults are filled in by :func:`_defaults`)."""
    s = argparse.SUPPRESS
    parser.add_argument("-i", "--identity", metavar="PATH", default=s, help=f"identity file (default: ${IDENTITY_ENV})")
    parser.add_argument("--protocol", choices=("wss", "ws", "https", "http", "mqtt"), default=s, help="transport")
    parser.add_argument("--json", action="store_true", default=s, help="machine-readable output")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", default=s, help="how long to wait")
    parser.add_argument("-v", "--verbose", action="count", default=s, help="log to stderr; tracebacks on errors")


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    for name, value in (("identity", None), ("protocol", None), ("json", False), ("timeout", None), ("verbose", 0)):
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (global options are accepted anywhere)."""
    from thalovant._version import __version__

    common = argparse.ArgumentParser(add_help=False)
    _global_options(common)
    parser = argparse.ArgumentParser(
        prog="thalovant",
        description="Talk to a HiveMind-protocol hub over WebSocket, HTTP polling or MQTT.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"thalovant {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    add("version", "print the version")
    add("doctor", "check the identity, the endpoint, the connection and the transport")
    add("health", "connect and report the connection's health")
    ask = add("ask", "send an utterance and print the answer")
    ask.add_argument("text")
    ask.add_argument("--lang", default="en-us")
    ask.add_argument("--session-id")
    utter = add("utter", "send an utterance without waiting for an answer")
    utter.add_argument("text")
    utter.add_argument("--lang", default="en-us")
    utter.add_argument("--session-id")
    listen = add("listen", "print matching events as they arrive")
    listen.add_argument("event", help="event type ('*' for all)")
    listen.add_argument("--max-events", type=int, metavar="N")
    listen.add_argument("--session-id")
    emit = add("emit", "send a raw bus event")
    emit.add_argument("event")
    emit.add_argument("--data", default="{}", metavar="JSON", help="a JSON object")
    emit.add_argument("--context", default="{}", metavar="JSON", help="a JSON object")
    identity = add("identity", "identity tools")
    isub = identity.add_subparsers(dest="identity_command", metavar="ACTION")
    isub.required = True
    check = isub.add_parser("check", help="validate an identity file and print it redacted", parents=[common])
    check.add_argument("file")
    record = add("record", "run a command and record the connection's steps to a trace file")
    record.add_argument("file", help="trace file to write (JSON lines; holds credentials: mode 0600)")
    record.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command to record")
    replay = add("replay", "replay a trace into a fresh machine; report identical or the first divergence")
    replay.add_argument("file")
    return parser


# ---- output helpers -----------------------------------------------------------------------------


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json(value: Any, *, indent: int | None = 2) -> str:
    import json

    return json.dumps(value, indent=indent, sort_keys=indent is not None, ensure_ascii=False, default=str)


class Progress:
    """A spinner line on stderr while something slow runs (terminals only; thread-based)."""

    FRAMES = "|/-\\"

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._label: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def set(self, label: str | None) -> None:
        """Show ``label`` (None: clear the line)."""
        if not self.enabled:
            return
        with self._lock:
            self._label = label
            if label is None:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
        if label is not None and self._thread is None:
            self._thread = threading.Thread(target=self._spin, name="thalovant-progress", daemon=True)
            self._thread.start()

    def _spin(self) -> None:
        frame = 0
        while not self._done.wait(0.1):
            with self._lock:
                if self._label is not None:
                    sys.stderr.write(f"\r{self.FRAMES[frame % len(self.FRAMES)]} {self._label}\u2026\x1b[K")
                    sys.stderr.flush()
            frame += 1

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self.set(None)
        self.enabled = False


# ---- identity and client ------------------------------------------------------------------------


def load_identity(args: argparse.Namespace) -> ThalovantIdentity:
    """``--identity``, else ``$THALOVANT_IDENTITY``, else the ``THALOVANT_*`` variables."""
    from thalovant.shell.identity_io import ThalovantIdentity

    path = args.identity or os.environ.get(IDENTITY_ENV)
    if path:
        return ThalovantIdentity.from_file(path)
    return ThalovantIdentity.from_env()


def identity_secrets(identity: ThalovantIdentity) -> tuple[str, ...]:
    """Every secret value of ``identity`` (and the access token forms) to scrub from output."""
    import base64
    import urllib.parse

    from thalovant.shell.client import DEFAULT_USERAGENT

    found = [identity.access_key, identity.password, identity.crypto_key]
    if identity.mqtt is not None:
        found.append(identity.mqtt.password)
    if identity.access_key:
        token = base64.b64encode(f"{DEFAULT_USERAGENT}:{identity.access_key}".encode()).decode("ascii")
        found += [token, urllib.parse.quote(token, safe="")]
    return tuple(s for s in found if isinstance(s, str) and len(s) >= 4)


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class Context:
    """What a command gets: parsed args, the identity, the progress line and client factory."""

    def __init__(self, args: argparse.Namespace, progress: Progress) -> None:
        self.args = args
        self.progress = progress
        self.trace: Any = None  # a recording.TraceWriter under `record`
        self._identity: ThalovantIdentity | None = None
        self.secrets: tuple[str, ...] = ()

    @property
    def identity(self) -> ThalovantIdentity:
        if self._identity is None:
            self._identity = load_identity(self.args)
            self.secrets = identity_secrets(self._identity)
        return self._identity

    def client(self, **kwargs: Any) -> AsyncThalovantClient:
        from thalovant.shell.client import AsyncThalovantClient

        if self.args.timeout is not None:
            kwargs.setdefault("connect_timeout", max(0.1, min(self.args.timeout, 30.0)))
        if self.trace is not None:
            kwargs["trace"] = self.trace
        return AsyncThalovantClient(self.identity, protocol=self.args.protocol, **kwargs)


# ---- commands -----------------------------------------------------------------------------------


async def _connected(ctx: Context, client: AsyncThalovantClient) -> None:
    ctx.progress.set("connecting")
    try:
        await client.connect()
    finally:
        ctx.progress.set(None)


async def cmd_health(ctx: Context) -> int:
    from thalovant.core.errors import ThalovantError
    from thalovant.core.health import ThalovantHealth

    client = ctx.client()
    try:
        await _connected(ctx, client)
        health = await client.healthcheck()
    except ThalovantError as exc:  # a failed connect is an unhealthy report, not a crash
        if _exit_code(exc) == EXIT_USAGE:
            raise
        health = ThalovantHealth(
            connected=False,
            handshake_complete=False,
            transport_alive=False,
            last_error=scrub(str(exc), ctx.secrets),
            protocol=client.protocol,
        )
    finally:
        await client.close()
    if ctx.args.json:
        _out(_json(health.as_dict()))
    else:
        lines = ["ok" if health.ok else "failed"]
        lines += [f"connected={health.connected}", f"handshake_complete={health.handshake_complete}"]
        lines += [f"transport_alive={health.transport_alive}", f"protocol={health.protocol}"]
        if health.generation is not None:
            lines.append(f"generation={health.generation}")
        if health.last_error:
            lines.append(f"last_error={health.last_error}")
        _out("\n".join(lines))
    return EXIT_OK if health.ok else EXIT_REMOTE


async def cmd_ask(ctx: Context) -> int:
    args = ctx.args
    async with _session(ctx) as client:
        ctx.progress.set("waiting for the answer")
        try:
            reply = await client.ask(args.text, lang=args.lang, session_id=args.session_id, timeout=args.timeout)
        finally:
            ctx.progress.set(None)
    if args.json:
        _out(_json(reply.as_dict()))
    elif reply.text:
        _out(reply.display_text or reply.text)
    if reply.ok:
        return EXIT_OK
    if reply.failure_event is not None:
        reason = f"the hub reported a failure ({reply.failure_event.type})"
    elif reply.unanswered:
        reason = "no skill answered the utterance"
    elif reply.cancelled:
        reason = "the hub cancelled the utterance"
    elif reply.timed_out:
        reason = "the answer did not finish in time"
    else:
        reason = "the hub did not confirm the answer"
    raise RemoteFailure(reason)


def _session(ctx: Context) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def session() -> Any:
        client = ctx.client()
        try:
            await _connected(ctx, client)
            yield client
        finally:
            await client.close()

    return session()


async def cmd_utter(ctx: Context) -> int:
    args = ctx.args
    async with _session(ctx) as client:
        rid = await client.send_utterance(args.text, lang=args.lang, session_id=args.session_id)
    _out(_json({"sent": True, "request_id": rid}, indent=None) if args.json else "sent")
    return EXIT_OK


def _json_object(text: str, option: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option} must be valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object")
    return value


async def cmd_emit(ctx: Context) -> int:
    args = ctx.args
    data = _json_object(args.data, "--data")
    context = _json_object(args.context, "--context")
    if not args.event.strip():
        raise UsageError("the event type must not be empty")
    async with _session(ctx) as client:
        await client.emit(args.event, data, context)
    _out(_json({"sent": True, "type": args.event}, indent=None) if args.json else "sent")
    return EXIT_OK


async def cmd_listen(ctx: Context) -> int:
    args = ctx.args
    if args.max_events is not None and args.max_events < 1:
        raise UsageError("--max-events must be at least 1")
    async with _session(ctx) as client:
        listener = client.listen(
            args.event, timeout=args.timeout, max_events=args.max_events, session_id=args.session_id
        )
        ctx.progress.set(f"listening for {args.event}")
        try:
            async for event in listener:
                ctx.progress.set(None)
                if args.json:
                    _out(_json(event.as_dict(), indent=None))
                else:
                    _out(event.text or _json(event.as_dict()["data"], indent=None))
                ctx.progress.set(f"listening for {args.event}")
        finally:
            ctx.progress.set(None)
    return EXIT_OK


async def cmd_doctor(ctx: Context) -> int:
    report = await _run_doctor(ctx)
    if ctx.args.json:
        _out(_json(report.as_dict()))
    else:
        _out(report.format())
    return EXIT_OK if report.ok else EXIT_REMOTE


async def _run_doctor(ctx: Context) -> Any:
    import importlib

    try:
        doctor: Any = importlib.import_module("thalovant.shell.doctor")
    except ImportError:
        doctor = None
    identity = ctx.identity
    timeout = ctx.args.timeout if ctx.args.timeout is not None else 10.0
    ctx.progress.set("running checks")
    try:
        if doctor is not None:
            return await doctor.run_doctor(identity, protocol=ctx.args.protocol, timeout=timeout)
        return await _basic_doctor(ctx, timeout)
    finally:
        ctx.progress.set(None)


class _Check:
    def __init__(self, name: str, ok: bool, detail: str) -> None:
        self.name, self.ok, self.detail = name, ok, detail


class _BasicReport:
    """Stand-in for ``thalovant.shell.doctor``'s report until that module lands."""

    def __init__(self, checks: list[_Check], identity: dict[str, Any]) -> None:
        self.checks = checks
        self.identity = identity

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def format(self) -> str:
        lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        return "\n".join([*lines, "doctor: ok" if self.ok else "doctor: failed"])

    def as_dict(self) -> dict[str, Any]:
        checks = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]
        return {"ok": self.ok, "checks": checks, "identity": self.identity}


async def _basic_doctor(ctx: Context, wait: float) -> _BasicReport:
    from thalovant.core.errors import ThalovantError

    identity = ctx.identity
    checks = [_Check("identity", True, f"site_id={identity.site_id}")]
    try:
        client = ctx.client(connect_timeout=wait)
    except ThalovantError as exc:
        checks.append(_Check("endpoint", False, scrub(str(exc), ctx.secrets)))
        return _BasicReport(checks, identity.as_dict())
    checks.append(_Check("endpoint", True, f"protocol={client.protocol}"))
    try:
        await client.connect()
        checks.append(_Check("connect", True, "connected and handshake completed"))
        health = await client.healthcheck()
        detail = f"transport alive (protocol v{health.generation})" if health.ok else str(health.as_dict())
        checks.append(_Check("transport", health.ok, detail))
    except ThalovantError as exc:
        checks.append(_Check("connect", False, scrub(str(exc), ctx.secrets)))
    finally:
        await client.close()
    return _BasicReport(checks, identity.as_dict())


def cmd_identity_check(ctx: Context) -> int:
    from thalovant.core.errors import ThalovantIdentityError
    from thalovant.shell.identity_io import ThalovantIdentity

    try:
        identity = ThalovantIdentity.from_file(ctx.args.file)
    except ThalovantIdentityError as exc:
        problems = [{"path": p, "message": m} for p, m in exc.problems]
        if ctx.args.json:
            _out(_json({"ok": False, "origin": exc.origin, "problems": problems}))
        else:
            sys.stderr.write(f"thalovant: invalid {exc.origin}: {len(problems)} problem(s)\n")
            for p in problems:
                sys.stderr.write(f"thalovant:   {p['path'] or '(file)'}: {p['message']}\n")
        return EXIT_USAGE
    summary = identity.as_dict()
    if ctx.args.json:
        _out(_json({"ok": True, "identity": summary}))
    else:
        _out(f"ok: protocols {', '.join(identity.enabled_protocols()) or '(none)'}")
        _out(_json(summary))
    return EXIT_OK


async def cmd_record(ctx: Context, parser: argparse.ArgumentParser) -> int:
    from thalovant.shell.recording import TraceWriter

    argv = list(ctx.args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UsageError("record needs a command after the file: thalovant record FILE -- ask TEXT")
    outer = {k: v for k, v in vars(ctx.args).items() if k in ("identity", "protocol", "json", "timeout", "verbose")}
    inner = parse(parser, argv, namespace=argparse.Namespace(**{k: v for k, v in outer.items() if v is not None}))
    if inner.command in _NESTED_FORBIDDEN:
        raise UsageError(f"record cannot run {inner.command!r}")
    writer = TraceWriter(ctx.args.file)
    inner_ctx = Context(inner, ctx.progress)
    inner_ctx.trace = writer
    try:
        code = await COMMANDS[inner.command](inner_ctx)
    finally:
        writer.close()
        ctx.secrets = inner_ctx.secrets
        if sys.stderr.isatty() and not inner.json:
            sys.stderr.write(f"recorded {writer.steps} step(s) to {writer.path} (it holds credentials)\n")
    return int(code)


def cmd_replay(ctx: Context) -> int:
    from thalovant.shell.recording import redact, replay_file

    try:
        report, secrets = replay_file(ctx.args.file)
    except OSError as exc:
        raise UsageError(f"cannot read {ctx.args.file}: {exc.strerror or exc}") from None
    result: dict[str, Any] = {"ok": report.ok, "identical": report.ok, "steps": report.steps}
    if report.divergence is not None:
        d = report.divergence
        result["divergence"] = {
            "seq": d.seq,
            "what": d.what,
            "expected": redact(d.expected, secrets),
            "got": redact(d.got, secrets),
        }
    if report.problem is not None:
        result["problem"] = {"code": report.problem.code, "detail": redact(report.problem.detail, secrets)}
    if ctx.args.json:
        _out(_json(result))
    elif report.ok:
        _out(f"identical: {report.steps} step(s) replayed")
    else:
        if "divergence" in result:
            d2 = result["divergence"]
            _out(f"diverged at step {d2['seq']} ({d2['what']}) after {report.steps} identical step(s)")
            _out(f"  expected: {d2['expected'][:2000]}")
            _out(f"  got:      {d2['got'][:2000]}")
        if "problem" in result:
            _out(f"unreadable trace after {report.steps} step(s): {result['problem']['detail']}")
    return EXIT_OK if report.ok else EXIT_REMOTE


def cmd_version(ctx: Context) -> int:
    from thalovant._version import __version__

    _out(_json({"version": __version__}, indent=None) if ctx.args.json else f"thalovant {__version__}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Context], Any]] = {
    "health": cmd_health,
    "ask": cmd_ask,
    "utter": cmd_utter,
    "emit": cmd_emit,
    "listen": cmd_listen,
    "doctor": cmd_doctor,
}


# ---- main ---------------------------------------------------------------------------------------


def parse(
    parser: argparse.ArgumentParser, argv: Sequence[str], namespace: argparse.Namespace | None = None
) -> argparse.Namespace:
    """Parse ``argv``; argparse's exits become :class:`SystemExit` as usual (2 on usage errors)."""
    return _defaults(parser.parse_args(list(argv), namespace=namespace))


def _setup_logging(verbose: int) -> None:
    if verbose <= 0:
        return
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _exit_code(exc: BaseException) -> int:
    from thalovant.core.errors import LocalProtocolError, ThalovantError, ThalovantIdentityError

    if isinstance(exc, UsageError | ThalovantIdentityError | LocalProtocolError):
        return EXIT_USAGE
    if isinstance(exc, RemoteFailure | ThalovantError | OSError):
        return EXIT_REMOTE
    return EXIT_REMOTE


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser, ctx: Context) -> int:
    if args.command == "version":
        return cmd_version(ctx)
    if args.command == "identity":
        return cmd_identity_check(ctx)
    if args.command == "replay":
        return cmd_replay(ctx)
    import anyio

    if args.command == "record":
        return int(anyio.run(cmd_record, ctx, parser))
    ctx.identity  # noqa: B018  (identity errors surface before any connect)
    return int(anyio.run(COMMANDS[args.command], ctx))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``thalovant`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parse(parser, sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help/--version
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    _setup_logging(args.verbose)
    progress = Progress(enabled=sys.stderr.isatty() and not args.json)
    ctx = Context(args, progress)
    try:
        return _run(args, parser, ctx)
    except KeyboardInterrupt:
        progress.close()
        sys.stderr.write("thalovant: interrupted\n")
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # a nested usage error under `record`
        progress.close()
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:
        progress.close()
        return _report(exc, ctx)
    finally:
        progress.close()


def _report(exc: BaseException, ctx: Context) -> int:
    secrets = ctx.secrets
    if ctx.args.verbose:
        import traceback

        sys.stderr.write(scrub("".join(traceback.format_exception(exc)), secrets))
    message = str(exc).replace("\n", " ").strip() or type(exc).__name__
    if not isinstance(exc, UsageError | RemoteFailure) and _exit_code(exc) == EXIT_REMOTE:
        from thalovant.core.errors import ThalovantError

        if not isinstance(exc, ThalovantError | OSError):
            message = f"internal error: {type(exc).__name__}: {message}"
    sys.stderr.write(f"thalovant: {scrub(message, secrets)}\n")
    sys.stderr.flush()
    return _exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
