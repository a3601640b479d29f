"""Virtual time for asyncio: an event loop whose clock jumps to the next timer whenever it is idle.

trio has this built in (``trio.testing.MockClock(autojump_threshold=0)``); :class:`VirtualTimeLoop`
is the same for asyncio, for tests that run a client against ``thalovant.testing.MemoryHub``::

    anyio.run(main, backend="asyncio", backend_options={"loop_factory": VirtualTimeLoop})

Theory of operation: ``loop.time()`` returns a virtual clock that starts at 0. When the loop has
nothing ready to run it asks its selector to wait until the next timer; :class:`_JumpingSelector`
polls instead (a zero wait) and, when nothing is ready, moves the virtual clock to that timer. With
no timer at all it waits for real, for IO or another thread's wake-up.

Only for code that runs entirely on the loop: while a worker thread runs, the loop sees itself idle
and jumps, so a wait for that thread times out early. The blocking clients and bus-level
transports use threads: run those on the real clock.
"""

from __future__ import annotations

import asyncio
import selectors

__all__ = ["VirtualTimeLoop"]


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that never sleeps while a timer is due: it advances the loop's virtual clock instead."""

    loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or self.loop is None:
            return list(super().select(timeout))
        ready = list(super().select(0))
        if not ready and timeout > 0:
            self.loop.advance(timeout)
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time (see the module docstring).

    Attributes:
        jumped: how many virtual seconds were skipped so far.
    """

    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual = 0.0
        self.jumped = 0.0

    def time(self) -> float:
        """The virtual clock (seconds since the loop was made)."""
        return self._virtual

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError("time never goes back")
        self._virtual += seconds
        self.jumped += seconds

    def __repr__(self) -> str:
        return f"<VirtualTimeLoop time={self._virtual:.3f} jumped={self.jumped:.3f}>"
