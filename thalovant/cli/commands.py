"""The ``thalovant`` subcommands (each takes the :class:`~thalovant.cli.base.Context`; returns the exit code)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from thalovant.cli.base import (
    EXIT_OK,
    EXIT_REMOTE,
    EXIT_USAGE,
    GLOBAL_DEFAULTS,
    NESTED_FORBIDDEN,
    Context,
    RemoteFailure,
    UsageError,
    dumps,
    exit_code,
    out,
    parse,
    scrub,
)

if TYPE_CHECKING:
    from thalovant.shell.client import AsyncThalovantClient

# ---- commands -----------------------------------------------------------------------------------


async def _connected(ctx: Context, client: AsyncThalovantClient) -> None:
    ctx.progress.set("connecting")
    try:
        await client.connect()
    finally:
        ctx.progress.set(None)


async def cmd_health(ctx: Context) -> int:
    from thalovant.core.client.health import ThalovantHealth
    from thalovant.core.errors import ThalovantError

    client = ctx.client()
    try:
        await _connected(ctx, client)
        health = await client.healthcheck()
    except ThalovantError as exc:  # a failed connect is an unhealthy report, not a crash
        if exit_code(exc) == EXIT_USAGE:
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
        out(dumps(health.as_dict()))
    else:
        lines = ["ok" if health.ok else "failed"]
        lines += [f"connected={health.connected}", f"handshake_complete={health.handshake_complete}"]
        lines += [f"transport_alive={health.transport_alive}", f"protocol={health.protocol}"]
        if health.generation is not None:
            lines.append(f"generation={health.generation}")
        if health.last_error:
            lines.append(f"last_error={health.last_error}")
        out("\n".join(lines))
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
        out(dumps(reply.as_dict()))
    elif reply.text:
        out(reply.display_text or reply.text)
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
    out(dumps({"sent": True, "request_id": rid}, indent=None) if args.json else "sent")
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
    out(dumps({"sent": True, "type": args.event}, indent=None) if args.json else "sent")
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
                    out(dumps(event.as_dict(), indent=None))
                else:
                    out(event.text or dumps(event.as_dict()["data"], indent=None))
                ctx.progress.set(f"listening for {args.event}")
        finally:
            ctx.progress.set(None)
    return EXIT_OK


async def cmd_doctor(ctx: Context) -> int:
    report = await _run_doctor(ctx)
    if ctx.args.json:
        out(dumps(report.as_dict()))
    else:
        out(report.format())
    return EXIT_OK if report.ok else EXIT_REMOTE


async def _run_doctor(ctx: Context) -> Any:
    from thalovant.core.errors import ThalovantError
    from thalovant.shell.doctor import run_doctor

    timeout = ctx.args.timeout if ctx.args.timeout is not None else 10.0
    ctx.progress.set("running checks")
    try:
        try:
            client = ctx.client()
        except ThalovantError:  # e.g. the protocol is not configured: the doctor says which check fails
            return await run_doctor(
                ctx.identity,
                protocol=ctx.args.protocol,
                timeout=timeout,
                ca_file=ctx.args.ca_file,
                insecure=ctx.args.insecure,
            )
        return await client.doctor(timeout=timeout)
    finally:
        ctx.progress.set(None)


def cmd_identity_check(ctx: Context) -> int:
    from thalovant.core.errors import ThalovantIdentityError
    from thalovant.shell.identity_io import ThalovantIdentity

    try:
        identity = ThalovantIdentity.from_file(ctx.args.file)
    except ThalovantIdentityError as exc:
        problems = [{"path": p, "message": m} for p, m in exc.problems]
        if ctx.args.json:
            out(dumps({"ok": False, "origin": exc.origin, "problems": problems}))
        else:
            sys.stderr.write(f"thalovant: invalid {exc.origin}: {len(problems)} problem(s)\n")
            for p in problems:
                sys.stderr.write(f"thalovant:   {p['path'] or '(file)'}: {p['message']}\n")
        return EXIT_USAGE
    summary = identity.as_dict()
    if ctx.args.json:
        out(dumps({"ok": True, "identity": summary}))
    else:
        out(f"ok: protocols {', '.join(identity.enabled_protocols()) or '(none)'}")
        out(dumps(summary))
    return EXIT_OK


async def cmd_record(ctx: Context, parser: argparse.ArgumentParser) -> int:
    from thalovant.shell.recording import TraceWriter

    argv = list(ctx.args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UsageError("record needs a command after the file: thalovant record FILE -- ask TEXT")
    names = {name for name, _ in GLOBAL_DEFAULTS}
    outer = {k: v for k, v in vars(ctx.args).items() if k in names}
    inner = parse(parser, argv, namespace=argparse.Namespace(**{k: v for k, v in outer.items() if v is not None}))
    if inner.command in NESTED_FORBIDDEN:
        raise UsageError(f"record cannot run {inner.command!r}")
    writer = TraceWriter(ctx.args.file)
    inner_ctx = Context(inner, ctx.progress)
    inner_ctx.trace = writer
    inner_ctx.identity  # noqa: B018  (load it now: its secrets are scrubbed from logs and errors)
    ctx.secrets = inner_ctx.secrets
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
        out(dumps(result))
    elif report.ok:
        out(f"identical: {report.steps} step(s) replayed")
    else:
        if "divergence" in result:
            d2 = result["divergence"]
            out(f"diverged at step {d2['seq']} ({d2['what']}) after {report.steps} identical step(s)")
            out(f"  expected: {d2['expected'][:2000]}")
            out(f"  got:      {d2['got'][:2000]}")
        if "problem" in result:
            out(f"unreadable trace after {report.steps} step(s): {result['problem']['detail']}")
    return EXIT_OK if report.ok else EXIT_REMOTE


def cmd_version(ctx: Context) -> int:
    from thalovant._version import __version__

    out(dumps({"version": __version__}, indent=None) if ctx.args.json else f"thalovant {__version__}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Context], Any]] = {
    "health": cmd_health,
    "ask": cmd_ask,
    "utter": cmd_utter,
    "emit": cmd_emit,
    "listen": cmd_listen,
    "doctor": cmd_doctor,
}
