"""``thalovant listen --binary DIR`` and ``thalovant send-file PATH``: binary frames on the command line.

``listen --binary DIR`` saves each binary frame the hub sends (TTS clips, files) as a new file in ``DIR``
and prints one line for it (kind, size, path; ``--json``: one JSON object a line). It stops after
``--max-events`` frames or at ``--timeout`` seconds, like ``listen``.

File names never come from the hub: a frame's ``file_name`` only lends a sanitised base name and its
extension (no directory part, no ``..``, no leading dot, at most 80 characters), behind a counter
(``0001-answer.wav``). Files are created exclusively: an existing file is never overwritten, the
counter moves on instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from thalovant.core import render
from thalovant.core.render import EXIT_OK, UsageError

if TYPE_CHECKING:
    from thalovant.cli_commands import Context
    from thalovant.core.bus.binary import ThalovantBinary

__all__ = ["binary_directory", "cmd_listen_any", "cmd_send_file", "save_binary", "stored_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 80
_MAX_TRIES = 10_000


def stored_name(binary: ThalovantBinary, number: int) -> str:
    """The file name a frame is saved under: ``<number>-<safe base name>``, or ``<number>-<kind>.bin``.

    >>> from thalovant.core.bus.binary import outgoing_binary
    >>> stored_name(outgoing_binary(b"x", "tts_audio", {"file_name": "../../etc/passwd"}), 3)
    '0003-passwd'
    >>> stored_name(outgoing_binary(b"x", "binary:9"), 12)
    '0012-binary-9.bin'
    """
    raw = (binary.file_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    safe = _UNSAFE.sub("_", raw).lstrip(".")[:_MAX_NAME]
    if not safe.strip("._-"):
        safe = _UNSAFE.sub("-", binary.kind) + ".bin"
    return f"{number:04d}-{safe}"


def save_binary(directory: Path, binary: ThalovantBinary, start: int) -> tuple[Path, int]:
    """Write ``binary.data`` to a new file in ``directory`` (never overwriting); its path and the next number.

    Raises:
        UsageError: no new file could be created (the directory is not writable, or thousands of names taken).
    """
    for number in range(start, start + _MAX_TRIES):
        path = directory / stored_name(binary, number)
        try:
            with open(path, "xb") as handle:  # exclusive: an existing file stays as it is
                handle.write(binary.data)
        except FileExistsError:
            continue
        except OSError as exc:
            raise UsageError(f"--binary: cannot write into the directory ({type(exc).__name__})") from None
        return path, number + 1
    raise UsageError("--binary: no free file name left in the directory")


def binary_directory(name: str) -> Path:
    """``--binary DIR`` as a directory (created if missing).

    Raises:
        UsageError: it cannot be created, or is not a directory.
    """
    directory = Path(name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--binary: cannot create the directory ({type(exc).__name__})") from None
    if not directory.is_dir():
        raise UsageError("--binary: not a directory")
    return directory


def _binary_line(binary: ThalovantBinary, path: Path, *, as_json: bool) -> str:
    if as_json:
        record = {"kind": binary.kind, "size": len(binary.data), "path": str(path), "metadata": dict(binary.metadata)}
        return render.json_text(record, indent=None)
    return f"{binary.kind} {len(binary.data)} bytes {path}"


async def cmd_listen_binary(ctx: Context) -> int:
    """Save the binary frames the hub sends into ``--binary DIR`` (see the module docstring)."""
    args = ctx.args
    directory = binary_directory(args.binary)
    label = "listening for binary frames"
    number = 1
    async with ctx.session() as client:
        frames = client.listen_binary(args.kind, timeout=args.timeout, max_events=args.max_events)
        with ctx.busy(label):
            async for binary in frames:
                path, number = save_binary(directory, binary, number)
                ctx.progress.set(None)
                ctx.out(render.scrub(_binary_line(binary, path, as_json=args.json), ctx.secrets))  # hub metadata
                ctx.progress.set(label)
    return EXIT_OK


async def cmd_listen_any(ctx: Context) -> int:
    """``listen``: bus events (``EVENT``), or binary frames (``--binary DIR``)."""
    from thalovant.cli_commands import cmd_listen

    args = ctx.args
    if args.max_events is not None and args.max_events < 1:
        raise UsageError("--max-events must be at least 1")
    if args.binary is None:  # the parser demands one of the two
        if args.kind is not None:
            raise UsageError("--kind goes with --binary")
        return await cmd_listen(ctx)
    return await cmd_listen_binary(ctx)


async def cmd_send_file(ctx: Context) -> int:
    """``send-file PATH``: send one file as a FILE frame named after its base name."""
    args = ctx.args
    async with ctx.session() as client:
        await client.send_file(args.path)  # checks the path (ThalovantArgumentError: exit 2)
    ctx.out(render.sent_text(as_json=args.json, type="file", file_name=Path(args.path).name))
    return EXIT_OK
