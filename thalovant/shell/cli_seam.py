"""0.4.7's CLI test seam: tests that replace ``thalovant.cli.ThalovantClient`` keep working.

thalovant 0.4.7's CLI built its client as ``ThalovantClient(identity)`` (one positional argument) and
called its blocking methods (``ask``, ``emit``, ``send_utterance``, ``healthcheck``...) inside
``with client:``. Its users' tests swap a fake in for ``thalovant.cli.ThalovantClient``. Our CLI is
asynchronous, so a swapped-in class is driven through :class:`PatchedClient`: it enters the fake's
``with`` on ``connect()``, leaves it on ``close()``, and runs every other method the CLI calls in a
worker thread (a fake may block). Nothing else of the CLI changes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import anyio.to_thread

__all__ = ["PatchedClient"]


class PatchedClient:
    """The async face the CLI needs, over a blocking client built as ``factory(identity)``."""

    def __init__(self, factory: Callable[[Any], Any], identity: Any) -> None:
        self.inner = factory(identity)
        self.protocol: str = str(getattr(self.inner, "protocol", "https"))

    def __repr__(self) -> str:
        return f"<PatchedClient {type(self.inner).__name__}>"

    async def connect(self) -> None:
        enter = getattr(self.inner, "__enter__", None)
        if enter is not None:
            await anyio.to_thread.run_sync(enter)

    async def close(self) -> None:
        leave = getattr(self.inner, "__exit__", None)
        if leave is not None:
            await anyio.to_thread.run_sync(leave, None, None, None)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await anyio.to_thread.run_sync(functools.partial(method, *args, **kwargs))

        return call
