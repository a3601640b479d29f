"""The bus-level fake a 0.4.7 user writes (the eight-method duck type of ``transport=``), once for the suite.

:class:`BusFake` keeps handlers by name and fires them from :meth:`BusFake.push` on the caller's
thread, as 0.4.7 users' fakes do; subclasses add what their test is about (``emit_event`` answers,
a lock, a constructor with 0.4.7's signature). :func:`bus_identity` is the identity 0.4.7's own
tests build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thalovant import ThalovantIdentity

Handler = Callable[[Any], None]


@dataclass
class FakeMessage:
    """What a 0.4.7 transport hands a handler: ``.data``, ``.context``, optional ``.msg_type``."""

    data: dict[str, Any]
    context: dict[str, Any] | None = None
    msg_type: str | None = None


class BusFake:
    """Handlers by name, fired by :meth:`push`; ``emit_event`` records and does nothing else."""

    def __init__(self) -> None:
        self.connected = False
        self.emitted: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.handlers: dict[str, list[Handler]] = {}

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def on_mycroft(self, name: str, fn: Handler) -> None:
        self.handlers.setdefault(name, []).append(fn)

    def remove_mycroft(self, name: str, fn: Handler) -> None:
        self.handlers[name] = [entry for entry in self.handlers.get(name, []) if entry is not fn]

    def emit_event(self, event_type: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        self.emitted.append((event_type, data, context))

    def push(self, name: str, data: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> None:
        for handler in list(self.handlers.get(name, [])):
            handler(FakeMessage(data or {}, context=context or {}, msg_type=name))

    def healthcheck(self) -> None:
        return None

    def is_connected(self) -> bool:
        return self.connected

    def last_error(self) -> BaseException | None:
        return None


def bus_identity(**extra: Any) -> ThalovantIdentity:
    """The identity 0.4.7's own tests build (never dialled: the fake is the transport)."""
    fields: dict[str, Any] = {
        "access_key": "key",
        "password": "password",
        "crypto_key": "crypto",
        "site_id": "site",
        "default_master": "http://hub.local",
        "default_port": 5679,
    }
    fields.update(extra)
    return ThalovantIdentity(**fields)
