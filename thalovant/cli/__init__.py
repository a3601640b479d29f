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
from collections.abc import Sequence
from typing import Any

from thalovant.cli.base import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REMOTE,
    EXIT_USAGE,
    IDENTITY_ENV,
    Context,
    Progress,
    RemoteFailure,
    UsageError,
    exit_code,
    global_options,
    identity_secrets,
    load_identity,
    parse,
    scrub,
)
from thalovant.cli.commands import COMMANDS, cmd_identity_check, cmd_record, cmd_replay, cmd_version

__all__ = [
    "COMMANDS",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REMOTE",
    "EXIT_USAGE",
    "IDENTITY_ENV",
    "Context",
    "Progress",
    "RemoteFailure",
    "UsageError",
    "build_parser",
    "exit_code",
    "identity_secrets",
    "load_identity",
    "main",
    "parse",
    "scrub",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (global options are accepted anywhere)."""
    from thalovant._version import __version__

    common = argparse.ArgumentParser(add_help=False)
    global_options(common)
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


def _setup_logging(verbose: int, ctx: Context) -> Any:
    """Log to stderr under ``-v`` (INFO) / ``-vv`` (DEBUG), scrubbing the identity's secrets from every line."""
    if verbose <= 0:
        return None
    import logging

    class ScrubbingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return scrub(super().format(record), ctx.secrets)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    return handler


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


def _one_line_warnings(ctx: Context) -> Any:
    """Show Python warnings (e.g. an identity file others can read) as one scrubbed stderr line each."""
    import warnings

    def show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        text = str(message).replace("\n", " ")
        sys.stderr.write(f"thalovant: warning: {scrub(text, ctx.secrets)}\n")

    previous = warnings.showwarning
    warnings.showwarning = show
    return previous


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``thalovant`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parse(parser, sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help/--version
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    progress = Progress(enabled=sys.stderr.isatty() and not args.json)
    ctx = Context(args, progress)
    previous_showwarning = _one_line_warnings(ctx)
    log_handler = _setup_logging(args.verbose, ctx)
    try:
        return _run(args, parser, ctx)
    except KeyboardInterrupt:
        progress.close()
        sys.stderr.write("thalovant: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `thalovant listen speak | head -1`: the reader has what it wanted
        _silence_stdout()
        return EXIT_OK
    except SystemExit as exc:  # a nested usage error under `record`
        progress.close()
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:
        progress.close()
        return _report(exc, ctx)
    finally:
        progress.close()
        _restore(previous_showwarning, log_handler)


def _restore(showwarning: Any, log_handler: Any) -> None:
    """Undo main()'s process-wide settings (main may run more than once in one process)."""
    import warnings

    warnings.showwarning = showwarning
    if log_handler is not None:
        import logging

        logging.getLogger().removeHandler(log_handler)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests)
        pass


def _report(exc: BaseException, ctx: Context) -> int:
    secrets = ctx.secrets
    if ctx.args.verbose:
        import traceback

        sys.stderr.write(scrub("".join(traceback.format_exception(exc)), secrets))
    message = str(exc).replace("\n", " ").strip() or type(exc).__name__
    if not isinstance(exc, UsageError | RemoteFailure) and exit_code(exc) == EXIT_REMOTE:
        from thalovant.core.errors import ThalovantError

        if not isinstance(exc, ThalovantError | OSError):
            message = f"internal error: {type(exc).__name__}: {message}"
    sys.stderr.write(f"thalovant: {scrub(message, secrets)}\n")
    sys.stderr.flush()
    return exit_code(exc)
