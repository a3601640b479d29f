"""The connected commands of the ``thalovant`` CLI (each connects a client): health, info, ask, utter, emit,
listen, doctor.

:mod:`thalovant.cli` parses the command line and runs these with its ``Context`` (the parsed args, the
identity, the progress line, the client factory and ``ctx.out``); new connected commands go here.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING, Any, Protocol

from returns.result import Failure

from thalovant.core import render
from thalovant.core.errors import ThalovantError
from thalovant.core.render import EXIT_OK, EXIT_REMOTE, RemoteFailure, UsageError, exit_code, scrub

if TYPE_CHECKING:
    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.progress import Progress

__all__ = ["Context", "cmd_ask", "cmd_doctor", "cmd_emit", "cmd_health", "cmd_info", "cmd_listen", "cmd_utter"]


class Context(Protocol):
    """What a command gets from :class:`thalovant.cli.Context` (the CLI's one implementation)."""

    args: argparse.Namespace
    progress: Progress
    secrets: tuple[str, ...]

    @property
    def identity(self) -> Any: ...
    def client(self, **kwargs: Any) -> AsyncThalovantClient: ...
    def session(self) -> contextlib.AbstractAsyncContextManager[AsyncThalovantClient]: ...
    def busy(self, label: str) -> contextlib.AbstractContextManager[None]: ...
    def out(self, text: str) -> None: ...


async def cmd_health(ctx: Context) -> int:
    client = ctx.client()
    try:
        with ctx.busy("connecting"):
            await client.connect()
        health = await client.healthcheck()
    except ThalovantError as exc:  # a failed connect is an unhealthy report, not a crash
        if exit_code(exc) == render.EXIT_USAGE:
            raise
        health = render.unhealthy(scrub(str(exc), ctx.secrets), client.protocol)
    finally:
        await client.close()
    ctx.out(render.json_text(health.as_dict()) if ctx.args.json else render.health_text(health))
    return EXIT_OK if health.ok else EXIT_REMOTE


async def cmd_info(ctx: Context) -> int:
    async with ctx.session() as client:
        ctx.out(render.info_text(client.connection_info().as_dict(), as_json=ctx.args.json))
    return EXIT_OK


async def cmd_ask(ctx: Context) -> int:
    args = ctx.args
    async with ctx.session() as client:
        with ctx.busy("waiting for the answer"):
            reply = await client.ask(args.text, lang=args.lang, session_id=args.session_id, timeout=args.timeout)
    text = render.json_text(reply.as_dict()) if args.json else render.reply_text(reply)
    if text is not None:
        ctx.out(text)
    if reply.ok:
        return EXIT_OK
    raise RemoteFailure(render.ask_failure(reply))


async def cmd_utter(ctx: Context) -> int:
    args = ctx.args
    async with ctx.session() as client:
        rid = await client.send_utterance(args.text, lang=args.lang, session_id=args.session_id)
    ctx.out(render.sent_text(as_json=args.json, request_id=rid))
    return EXIT_OK


async def cmd_emit(ctx: Context) -> int:
    args = ctx.args
    parsed = render.emit_arguments(args.event, data=args.data, context=args.context)
    if isinstance(parsed, Failure):
        raise UsageError(parsed.failure())
    data, context = parsed.unwrap()
    async with ctx.session() as client:
        await client.emit(args.event, data, context)
    ctx.out(render.sent_text(as_json=args.json, type=args.event))
    return EXIT_OK


async def cmd_listen(ctx: Context) -> int:
    args = ctx.args
    if args.max_events is not None and args.max_events < 1:
        raise UsageError("--max-events must be at least 1")
    label = f"listening for {args.event}"
    async with ctx.session() as client:
        events = client.listen(args.event, timeout=args.timeout, max_events=args.max_events, session_id=args.session_id)
        with ctx.busy(label):
            async for event in events:
                ctx.progress.set(None)
                ctx.out(render.event_line(event, as_json=args.json))
                ctx.progress.set(label)
    return EXIT_OK


async def cmd_doctor(ctx: Context) -> int:
    from thalovant.shell.doctor import run_doctor

    args = ctx.args
    timeout = args.timeout if args.timeout is not None else 10.0
    with ctx.busy("running checks"):
        try:
            client = ctx.client()
        except ThalovantError:  # e.g. the protocol is not configured: the doctor says which check fails
            report = await run_doctor(
                ctx.identity, protocol=args.protocol, timeout=timeout, ca_file=args.ca_file, insecure=args.insecure
            )
        else:
            report = await client.doctor(timeout=timeout)
    ctx.out(render.json_text(report.as_dict()) if args.json else report.format())
    return EXIT_OK if report.ok else EXIT_REMOTE
