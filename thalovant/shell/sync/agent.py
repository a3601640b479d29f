"""``ThalovantAgent``: the blocking twin of ``AsyncThalovantAgent``.

The handler book is shared with the async agent (:class:`~thalovant.shell.agent.AgentBase`);
the client is a :class:`~thalovant.shell.sync.client.ThalovantClient`, whose portal runs
each handler in a worker thread (so a handler may call ``agent.client``). The run loop
waits on a :class:`~thalovant.shell.sync.portal.StopRequest`: :meth:`ThalovantAgent.stop`
from any thread, SIGINT/SIGTERM (main thread only) or Ctrl-C end it, and so does the
client giving up reconnecting (with that error).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from thalovant.core.bus.reply import ThalovantReply
from thalovant.shell.agent import STOP_SIGNALS, AgentBase, check_interval_of, gave_up
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.sync.client import ThalovantClient
from thalovant.shell.sync.conversation import ThalovantConversation
from thalovant.shell.sync.portal import StopRequest

__all__ = ["ThalovantAgent"]

log = logging.getLogger("thalovant")


class ThalovantAgent(AgentBase[ThalovantClient]):
    """A blocking agent over :class:`~thalovant.ThalovantClient`.

    Handlers are plain functions; each runs in a worker thread (one event at
    a time per handler), so it may call ``agent.client`` without deadlock.

    Args:
        identity: a :class:`~thalovant.ThalovantIdentity` (or its mapping form).
        **client_kwargs: passed to :class:`~thalovant.ThalovantClient`.
    """

    _client_class = ThalovantClient

    def __init__(self, identity: ThalovantIdentity | Mapping[str, Any], **client_kwargs: Any) -> None:
        super().__init__(identity, **client_kwargs)
        self._stop = StopRequest()

    def conversation(self, **kwargs: Any) -> ThalovantConversation:
        """See :meth:`ThalovantClient.conversation`."""
        return self.client.conversation(**kwargs)

    def ask(self, text: str, **kwargs: Any) -> ThalovantReply:
        """Send ``text`` and wait for the reply (see :meth:`ThalovantClient.ask`)."""
        return self.client.ask(text, **kwargs)

    def send_utterance(self, text: str, **kwargs: Any) -> str:
        """Send ``text`` without waiting (see :meth:`ThalovantClient.send_utterance`)."""
        return self.client.send_utterance(text, **kwargs)

    def run_forever(
        self, *, handle_signals: bool = True, check_interval: float | None = None, poll_interval: float | None = None
    ) -> None:
        """Connect, attach the handlers and block until :meth:`stop`, SIGINT/SIGTERM or Ctrl-C.

        Signal handlers are installed only when called from the main thread and
        are restored afterwards.

        Args:
            handle_signals: stop cleanly on SIGINT/SIGTERM (only in the main thread).
            check_interval: seconds between checks that the client has not given up (None: 1 s).
            poll_interval: the 0.4.7 name of ``check_interval`` (deprecated, warns once).

        Raises:
            ThalovantConnectionError: the first connect failed, or the client gave up reconnecting.
            LocalProtocolError: both intervals are given, or the interval is not positive.
        """
        interval = check_interval_of(check_interval, poll_interval)
        with self._lock:
            if self._running:
                raise RuntimeError("run_forever is already running")
            self._running = True
            self._stop.clear()
            self.stopped_by = None
        try:
            with self._stop.on_signals(STOP_SIGNALS, self._on_signal, enabled=handle_signals):
                try:
                    self.client.connect()
                    self._attach_pending()
                    while not self._stop.wait(interval):
                        health = self.client.healthcheck()
                        if not health.transport_alive:
                            raise gave_up(health.last_error)
                except KeyboardInterrupt:
                    self.stopped_by = int(signal.SIGINT)
        finally:
            with self._lock:
                self._running = self._live = False
            self.close()

    def _on_signal(self, signum: int) -> None:
        log.info("agent stopping on signal %d", signum)
        self.stopped_by = signum

    def stop(self) -> None:
        """End :meth:`run_forever`. Thread-safe (also from inside a handler)."""
        self._stop.set()

    def close(self) -> None:
        """Close the client and with it every subscription."""
        with self._lock:
            self.subscriptions = []  # closing the client ends them on its own loop
        self.client.close()

    def __enter__(self) -> Self:
        self.client.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
