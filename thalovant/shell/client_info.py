"""``connection_info()`` and ``connect_with_info()`` of :class:`~thalovant.shell.client.AsyncThalovantClient`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from thalovant.core.client.info import ThalovantConnectionInfo

if TYPE_CHECKING:
    from thalovant.shell.engine import ClientEngine

__all__ = ["ClientInfo"]


class ClientInfo:
    """Mixin: the connection's info (what it negotiated, how long it took) from the client's engine."""

    _engine: ClientEngine

    async def connect(self) -> None:  # pragma: no cover - the client's
        raise NotImplementedError

    def connection_info(self) -> ThalovantConnectionInfo:
        """What the connection negotiated (transport, generation, cipher, encoding, hub peer) and its times.

        Callable at any time: before ``connect()`` most fields are None; after ``close()`` it keeps the last
        session's values with ``phase="closed"``.
        """
        return self._engine.info()

    async def connect_with_info(self) -> ThalovantConnectionInfo:
        """``connect()``, then :meth:`connection_info` (raises as ``connect()`` does)."""
        await self.connect()
        return self.connection_info()
