"""0.4.7's CLI test seam: tests that replace ``thalovant.cli.ThalovantClient`` keep working.

thalovant 0.4.7's CLI built its client as ``ThalovantClient(identity)`` (one positional argument) and
called its blocking methods (``ask``, ``emit``, ``send_utterance``, ``healthcheck``...) inside
``with client:``. Its users' tests swap a fake in for ``thalovant.cli.ThalovantClient``. Our CLI is
asynchronous, so a swapped-in class is driven through :class:`PatchedClient`: it enters the fake's
``with`` on ``connect()``, leaves it on ``close()``, and runs every other method the CLI calls in a
worker thread (a fake may block). Nothing else of the CLI changes.

``thalovant info`` asks for ``connection_info()``, which 0.4.7's clients did not have: a fake that has one
answers it (when it returns a :class:`~thalovant.ThalovantConnectionInfo`); otherwise the seam answers a
minimal info of its own: the transport and the phase it knows (``idle``, ``ready`` once the fake was entered,
``closed`` after), every negotiated value and time None.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from thalovant.core.client.info import ThalovantConnectionInfo

__all__ = ["PatchedClient"]


class PatchedClient:
    """The async face the CLI needs, over a blocking client built as ``factory(identity)``."""

    def __init__(self, factory: Callable[[Any], Any], identity: Any) -> None:
        self.inner = factory(identity)
        self.protocol: str = str(getattr(self.inner, "protocol", "https"))
        self._phase = "idle"

    def __repr__(self) -> str:
        return f"<PatchedClient {type(self.inner).__name__}>"

    async def connect(self) -> None:
        enter = getattr(self.inner, "__enter__", None)
        if enter is not None:
            await anyio.to_thread.run_sync(enter)
        self._phase = "ready"

    async def close(self) -> None:
        leave = getattr(self.inner, "__exit__", None)
        if leave is not None:
            await anyio.to_thread.run_sync(leave, None, None, None)
        self._phase = "closed"

    def connection_info(self) -> ThalovantConnectionInfo:
        """The fake's own ``connection_info()`` if it has one that answers an info, else a minimal info."""
        own = getattr(self.inner, "connection_info", None)
        info = own() if callable(own) else None
        if isinstance(info, ThalovantConnectionInfo):
            return info
        return ThalovantConnectionInfo(transport=self.protocol, phase=self._phase)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await anyio.to_thread.run_sync(functools.partial(method, *args, **kwargs))

        return call
