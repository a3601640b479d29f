"""The ``thalovant`` command: talk to a HiveMind hub from a shell (reference: ``docs/cli.md``).

Global options may appear anywhere on the line. The identity comes from ``--identity``, else the file named by
``$THALOVANT_IDENTITY``, else the ``THALOVANT_*`` variables; ``--host``/``--port`` move its endpoints. Exit codes
(:mod:`thalovant.core.render`): 0 success; 1 remote failure; 2 usage or identity error; 130 interrupted. Errors go to
stderr as one scrubbed line (a traceback only under ``-v``); a spinner only on a terminal, never with ``--json``.
This module parses arguments, calls the SDK and writes what :mod:`thalovant.core.render` formats. SDK imports stay
lazy, so ``--help`` and ``--version`` never load the network stack.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from returns.result import Failure

from thalovant.cli_binary import cmd_listen_any, cmd_send_file
from thalovant.cli_commands import cmd_ask, cmd_doctor, cmd_emit, cmd_health, cmd_info, cmd_utter
from thalovant.cli_mesh import cmd_query
from thalovant.core import render
from thalovant.core.errors import ThalovantError, ThalovantIdentityError
from thalovant.core.render import EXIT_OK, EXIT_REMOTE, UsageError, exit_code, identity_secrets, scrub
from thalovant.core.render import RemoteFailure as RemoteFailure  # re-exported: what a failed command raises
from thalovant.shell.progress import Progress

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from thalovant.shell.client import AsyncThalovantClient
    from thalovant.shell.identity_io import ThalovantIdentity

IDENTITY_ENV = "THALOVANT_IDENTITY"
NESTED_FORBIDDEN = {"record", "replay", "identity", "version"}
GLOBAL_DEFAULTS = dict(identity=None, protocol=None, json=False, timeout=None, verbose=0, ca_file=None, insecure=False)
GLOBAL_DEFAULTS.update(host=None, port=None, proxy=True, mqtt_layout=None)


def __getattr__(name: str) -> Any:  # ``ThalovantClient``: 0.4.7's test seam (a test may swap it; shell/cli_seam.py)
    if name == "ThalovantClient":
        from thalovant.shell.sync.client import ThalovantClient

        return ThalovantClient
    raise AttributeError(name)


def global_options(parser: argparse.ArgumentParser) -> None:
    """Options accepted before and after the command (defaults are filled in by :func:`parse`)."""
    s = argparse.SUPPRESS
    parser.add_argument("-i", "--identity", metavar="PATH", default=s, help=f"identity file (default: ${IDENTITY_ENV})")
    parser.add_argument("--protocol", choices=("wss", "ws", "https", "http", "mqtt"), default=s, help="transport")
    parser.add_argument("--json", action="store_true", default=s, help="machine-readable output")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", default=s, help="how long to wait")
    parser.add_argument("-v", "--verbose", action="count", default=s, help="log to stderr; tracebacks on errors")
    parser.add_argument("--ca-file", metavar="PATH", default=s, help="CA bundle for wss/https/mqtts")
    parser.add_argument("--insecure", action="store_true", default=s, help="do not verify TLS (development only)")
    parser.add_argument("--host", metavar="HOST|URL", default=s, help="connect here instead of the identity's endpoint")
    parser.add_argument("--port", type=int, metavar="PORT", default=s, help="connect to this port")
    parser.add_argument("--proxy", type=proxy_arg, metavar="URL|none|env", default=s, help="HTTP proxy for wss/https")
    parser.add_argument("--mqtt-layout", choices=("legacy", "modern"), default=s, help="MQTT topics (modern: hub 5.x)")


def proxy_arg(text: str) -> str | bool:
    """``--proxy``: an ``http://[user:password@]host[:port]`` URL, ``none`` (never a proxy) or ``env`` (default)."""
    word = text.strip().lower()
    if word in ("none", "off", "direct"):
        return False
    if word in ("env", "environment"):
        return True
    from thalovant.shell.links.proxy import proxy_policy

    try:
        proxy_policy(text)
    except ThalovantError as exc:  # names the option, never the URL (it may hold a password)
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse(
    parser: argparse.ArgumentParser, argv: Sequence[str], namespace: argparse.Namespace | None = None
) -> argparse.Namespace:
    """Parse ``argv``; argparse's exits become :class:`SystemExit` as usual (2 on usage errors)."""
    args = parser.parse_args(list(argv), namespace=namespace)
    for name, value in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


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
    add("info", "connect and print what the connection negotiated and how long it took")
    ask = add("ask", "send an utterance and print the answer")
    utter = add("utter", "send an utterance without waiting for an answer")
    for speak in (ask, utter):
        speak.add_argument("text")
        speak.add_argument("--lang", default="en-us")
        speak.add_argument("--session-id")
    query = add("query", "ask with a QUERY frame (hub 5.x) and print the streamed answer")
    query.add_argument("text")
    query.add_argument("--lang", default="en-us")
    listen = add("listen", "print matching events as they arrive (--binary DIR: save binary frames)")
    what = listen.add_mutually_exclusive_group(required=True)
    what.add_argument("event", nargs="?", help="event type ('*' for all)")
    what.add_argument("--binary", metavar="DIR", help="instead: save each binary frame (TTS clip, file) in DIR")
    listen.add_argument("--max-events", type=int, metavar="N")
    listen.add_argument("--session-id")
    listen.add_argument("--kind", help="with --binary: only this kind (tts_audio, file, raw_audio ...)")
    add("send-file", "send a file to the hub as one binary FILE frame").add_argument("path")
    emit = add("emit", "send a raw bus event")
    emit.add_argument("event")
    emit.add_argument("--data", default="{}", metavar="JSON", help="a JSON object")
    emit.add_argument("--context", default="{}", metavar="JSON", help="a JSON object")
    isub = add("identity", "identity tools").add_subparsers(dest="identity_command", metavar="ACTION")
    isub.required = True
    check = isub.add_parser("check", help="validate an identity file and print it redacted", parents=[common])
    check.add_argument("file")
    forget = isub.add_parser("forget-hub-key", help="forget the hub's pinned key (accept a rotation)", parents=[common])
    forget.add_argument("--noise-key-file", metavar="PATH", help="the client's noise_key_file (default: the default)")
    record = add("record", "run a command and record the connection's steps to a trace file")
    record.add_argument("file", help="trace file to write (JSON lines; holds credentials: mode 0600)")
    record.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command to record")
    add("replay", "replay a trace into a fresh machine; report identical or the first divergence").add_argument("file")
    return parser


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def load_identity(args: argparse.Namespace) -> ThalovantIdentity:
    """``--identity``, else ``$THALOVANT_IDENTITY``, else ``THALOVANT_*`` variables; ``--host``/``--port`` applied."""
    from thalovant.shell.identity_io import ThalovantIdentity

    path = args.identity or os.environ.get(IDENTITY_ENV)
    identity = ThalovantIdentity.from_file(path) if path else ThalovantIdentity.from_env()
    if args.host is None and args.port is None:
        return identity
    moved = render.endpoint_overrides(identity.as_dict(include_secrets=True), host=args.host, port=args.port)
    if isinstance(moved, Failure):
        raise UsageError(moved.failure())
    return ThalovantIdentity.from_mapping(moved.unwrap(), origin="identity with --host/--port")


class Context:
    """What a command gets: parsed args, the identity, the progress line and client factory."""

    def __init__(self, args: argparse.Namespace, progress: Progress, transport: object | None = None) -> None:
        self.args, self.progress = args, progress
        self.transport = transport  # main(transport=...): the clients talk through it (tests)
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

        if (swapped := globals().get("ThalovantClient")) not in (None, __getattr__("ThalovantClient")):
            from thalovant.shell.cli_seam import PatchedClient  # a test swapped thalovant.cli.ThalovantClient

            return PatchedClient(swapped, self.identity)  # type: ignore[return-value]
        if self.args.timeout is not None:
            kwargs.setdefault("connect_timeout", max(0.1, min(self.args.timeout, 30.0)))
        if self.trace is not None:
            kwargs["trace"] = self.trace
        kwargs.update(ca_file=self.args.ca_file or None, insecure=bool(self.args.insecure), proxy=self.args.proxy)
        if self.args.mqtt_layout is not None:
            kwargs["mqtt_layout"] = self.args.mqtt_layout
        return AsyncThalovantClient(self.identity, protocol=self.args.protocol, transport=self.transport, **kwargs)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncThalovantClient]:
        """A connected client (the spinner says "connecting" meanwhile), closed on the way out."""
        client = self.client()
        try:
            with self.busy("connecting"):
                await client.connect()
            yield client
        finally:
            await client.close()

    def out(self, text: str) -> None:
        """Print one result to stdout (the commands print nothing else there)."""
        out(text)

    @contextlib.contextmanager
    def busy(self, label: str) -> Iterator[None]:
        """``with ctx.busy(label):`` shows ``label`` on the spinner line while the block runs."""
        self.progress.set(label)
        try:
            yield
        finally:
            self.progress.set(None)


def cmd_identity_check(ctx: Context) -> int:
    from thalovant.shell.identity_io import ThalovantIdentity

    if ctx.args.identity_command == "forget-hub-key":
        from thalovant.cli_hub_keys import cmd_forget_hub_key

        return cmd_forget_hub_key(ctx)

    try:
        identity = ThalovantIdentity.from_file(ctx.args.file)
    except ThalovantIdentityError as exc:
        if ctx.args.json:
            out(render.json_text(render.identity_invalid(exc.origin, exc.problems)))
        else:
            sys.stderr.write(render.identity_problems_text(exc.origin, exc.problems))
        return render.EXIT_USAGE
    out(render.identity_valid_text(identity.enabled_protocols(), identity.as_dict(), as_json=ctx.args.json))
    return EXIT_OK


async def cmd_record(ctx: Context, parser: argparse.ArgumentParser) -> int:
    from thalovant.shell.recording import TraceWriter

    argv = list(ctx.args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UsageError("record needs a command after the file: thalovant record FILE -- ask TEXT")
    outer = {k: v for k, v in vars(ctx.args).items() if k in GLOBAL_DEFAULTS and v is not None}
    inner = parse(parser, argv, namespace=argparse.Namespace(**outer))
    if inner.command in NESTED_FORBIDDEN:
        raise UsageError(f"record cannot run {inner.command!r}")
    writer = TraceWriter(ctx.args.file)
    inner_ctx = Context(inner, ctx.progress, ctx.transport)
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
    from thalovant.shell.recording import replay_file

    try:
        report, secrets = replay_file(ctx.args.file)
    except OSError as exc:
        raise UsageError(f"cannot read {ctx.args.file}: {exc.strerror or exc}") from None
    result = render.replay_result(report, secrets)
    text = render.json_text(result) if ctx.args.json else render.replay_text(result)
    if text:
        out(text)
    return EXIT_OK if report.ok else EXIT_REMOTE


def cmd_version(ctx: Context) -> int:
    from thalovant._version import __version__

    out(render.version_text(__version__, as_json=ctx.args.json))
    return EXIT_OK


COMMANDS: dict[str, Callable[[Context], Any]] = {
    "health": cmd_health,
    "info": cmd_info,
    "ask": cmd_ask,
    "utter": cmd_utter,
    "emit": cmd_emit,
    "listen": cmd_listen_any,
    "send-file": cmd_send_file,
    "doctor": cmd_doctor,
    "query": cmd_query,
}


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser, ctx: Context) -> int:
    local = {"version": cmd_version, "identity": cmd_identity_check, "replay": cmd_replay}
    if args.command in local:
        return local[args.command](ctx)
    import anyio

    if args.command == "record":
        return int(anyio.run(cmd_record, ctx, parser))
    ctx.identity  # noqa: B018  (identity errors surface before any connect)
    return int(anyio.run(COMMANDS[args.command], ctx))


def _divert_output(ctx: Context, verbose: int) -> Callable[[], None]:
    """Scrubbed stderr lines for warnings, and for logging under -v (INFO) / -vv (DEBUG); returns the undo."""
    import logging
    import warnings

    def show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        text = str(message).replace("\n", " ")
        sys.stderr.write(f"thalovant: warning: {scrub(text, ctx.secrets)}\n")

    class ScrubbingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return scrub(super().format(record), ctx.secrets)

    previous, root = warnings.showwarning, logging.getLogger()
    warnings.showwarning = show
    handler = logging.StreamHandler(sys.stderr) if verbose > 0 else None
    if handler is not None:
        handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)

    def undo() -> None:
        warnings.showwarning = previous
        if handler is not None:
            root.removeHandler(handler)

    return undo


def main(argv: Sequence[str] | None = None, *, transport: object | None = None) -> int:
    """Run the ``thalovant`` command; returns the exit code (``transport``: see ``AsyncThalovantClient``)."""
    parser = build_parser()
    try:
        args = parse(parser, sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help/--version
        return int(exc.code or 0) if not isinstance(exc.code, str) else render.EXIT_USAGE
    progress = Progress(enabled=sys.stderr.isatty() and not args.json)
    ctx = Context(args, progress, transport)
    undo = _divert_output(ctx, args.verbose)
    try:
        return _run(args, parser, ctx)
    except KeyboardInterrupt:
        progress.close()
        sys.stderr.write("thalovant: interrupted\n")
        return render.EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `thalovant listen speak | head -1`: the reader has what it wanted
        with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is not a real file (tests)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except SystemExit as exc:  # a nested usage error under `record`
        return int(exc.code) if isinstance(exc.code, int) else render.EXIT_USAGE
    except Exception as exc:
        progress.close()
        if args.verbose:
            import traceback

            sys.stderr.write(scrub("".join(traceback.format_exception(exc)), ctx.secrets))
        sys.stderr.write(f"thalovant: {scrub(render.error_text(exc), ctx.secrets)}\n")
        sys.stderr.flush()
        return exit_code(exc)
    finally:
        progress.close()
        undo()


if __name__ == "__main__":
    raise SystemExit(main())
