"""``connect(timeout=)``'s body, ``connection_info()`` and ``connect_with_info()`` of
:class:`~thalovant.shell.client.AsyncThalovantClient`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from thalovant.core.client.info import ThalovantConnectionInfo

if TYPE_CHECKING:
    from thalovant.shell.engine import ClientEngine

__all__ = ["ClientInfo"]


class ClientInfo:
    """Mixin: connecting within a deadline, and the connection's info (what it negotiated, how long it took)."""

    _engine: ClientEngine
    connect_timeout: float

    async def connect(self, timeout: float | None = None) -> None:  # pragma: no cover - the client's
        raise NotImplementedError

    async def close(self, timeout: float | None = None) -> None:  # pragma: no cover - the client's
        raise NotImplementedError

    def connection_info(self) -> ThalovantConnectionInfo:
        """What the connection negotiated (transport, generation, cipher, encoding, hub peer) and its times.

        Callable at any time: before ``connect()`` most fields are None; after ``close()`` it keeps the last
        session's values with ``phase="closed"``. The phase times (``dns_ms`` ... ``handshake_ms``) are those
        of the link that last became ready.
        """
        return self._engine.info()

    async def connect_with_info(self, timeout: float | None = None) -> ThalovantConnectionInfo:
        """``connect(timeout)``, then :meth:`connection_info` (raises as ``connect()`` does)."""
        await self.connect(timeout)
        return self.connection_info()
