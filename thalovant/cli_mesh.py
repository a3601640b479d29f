"""The mesh commands of the ``thalovant`` CLI: ``thalovant query TEXT`` (a QUERY frame, hub 5.x).

:mod:`thalovant.cli` parses the command line and runs these with its ``Context``
(:class:`thalovant.cli_commands.Context`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from thalovant.core import render
from thalovant.core.render import EXIT_OK, RemoteFailure

if TYPE_CHECKING:
    from thalovant.cli_commands import Context

__all__ = ["cmd_query"]


async def cmd_query(ctx: Context) -> int:
    """Ask ``TEXT`` with a QUERY frame and print the answer (``--json``: the whole result).

    Exit 1 when nobody answered (the JSON is printed first), or when the hub refused or cannot answer QUERY.
    """
    args = ctx.args
    async with ctx.session() as client:
        with ctx.busy("waiting for the answer"):
            result = await client.query(args.text, lang=args.lang, timeout=args.timeout)
    if args.json:
        ctx.out(render.json_text(result.as_dict()))
    elif result.text:
        ctx.out(result.text)
    if result.unanswered:
        raise RemoteFailure("nobody answered the query" + (" in time" if result.timed_out else " (hive.query.timeout)"))
    return EXIT_OK
