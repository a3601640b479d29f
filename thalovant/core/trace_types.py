"""How classes are named in trace files, and the registry of classes a trace decoder may build.

Names are module-qualified (relative to ``thalovant.core``), so two classes with one short name never
clash; modules that moved keep the name they had when the trace format was fixed.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Iterable

from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Input, Output

__all__ = ["TypeRegistry", "default_registry", "type_name"]

_PREFIX = "thalovant.core."

# Trace files name types by the module they lived in when the format was fixed; moving a module
# must not change the files, so the modules that moved keep their first name here.
_TRACE_MODULE_NAMES: dict[str, str] = {
    "wire.message": "message",
    "wire.codec": "codec",
    "wire.bitstring": "bitstring",
    "wire.frame": "channel",
    "handshake.contract": "channel",
    "handshake.v1_crypto": "crypto",
    "handshake.v1": "handshake_v1",
    "handshake.v3": "handshake_v3",
    "handshake.noise": "noise",
    "handshake.v3_channel": "noise_channel",
    "session.machine": "session",
    "session.events": "session_io",
    "links.base": "links",
    "links.ws": "links.ws_link",
    "links.mqtt": "links.mqtt_map",
    "client.connection": "connection",
    "client.connection_events": "connection_io",
    "client.reconnect": "reconnect",
    "client.correlate": "correlate",
    "client.correlate_events": "correlate",
    "client.health": "health",
    "identity.model": "identity",
    "identity.fields": "identity_values",
    "identity.protocols": "identity_protocols",
    "identity.mqtt": "identity_mqtt",
    "identity.env": "identity_env",
    "identity.profiles": "identity_config",
    "bus.events": "events",
    "bus.reply": "events_reply",
    "bus.refusal": "refusal",
    "bus.outbound": "context",
    "bus.display": "display",
    "control.api": "control",
    "control.identity": "control_identity",
}


def type_name(cls: type) -> str:
    """The stable name a class has in traces (its module relative to ``thalovant.core``, by first name)."""
    module = cls.__module__.removeprefix(_PREFIX)
    return f"{_TRACE_MODULE_NAMES.get(module, module)}.{cls.__qualname__}"


class TypeRegistry:
    """The dataclasses and enums a decoder may build, by :func:`type_name`.

    Args:
        types: dataclass and Enum classes. A name used twice raises ``LocalProtocolError``.
    """

    def __init__(self, types: Iterable[type]) -> None:
        self._by_name: dict[str, type] = {}
        for cls in types:
            if not (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum)):
                raise LocalProtocolError(f"TypeRegistry: {cls!r} is neither a dataclass nor an Enum")
            name = type_name(cls)
            if self._by_name.get(name, cls) is not cls:
                raise LocalProtocolError(f"TypeRegistry: two classes are named {name}")
            self._by_name[name] = cls

    def __contains__(self, cls: object) -> bool:
        return isinstance(cls, type) and self._by_name.get(type_name(cls)) is cls

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> type | None:
        """The class registered under ``name``, if any."""
        return self._by_name.get(name)

    def merged(self, other: TypeRegistry) -> TypeRegistry:
        """A registry holding both sets of classes."""
        return TypeRegistry([*self._by_name.values(), *other._by_name.values()])


def default_registry() -> TypeRegistry:
    """Every ``Input``/``Output`` class imported so far, plus the Enums and dataclasses their fields name.

    Import the machine's module before calling this. Type names are module-qualified, so classes
    with the same short name in different modules never clash.
    """
    found: dict[type, None] = {}
    todo: list[type] = [Input, Output]
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found[cls] = None
        todo.extend(cls.__subclasses__())
        if dataclasses.is_dataclass(cls):
            todo.extend(_field_types(cls))
    by_name: dict[str, type] = {}
    for cls in found:
        if not (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum)):
            continue
        # ``@dataclass(slots=True)`` replaces the class it decorates; the replaced one may linger in
        # ``__subclasses__()`` until collected. Keep the slotted replacement.
        name = type_name(cls)
        if name not in by_name or "__slots__" in cls.__dict__:
            by_name[name] = cls
    return TypeRegistry(by_name.values())


def _field_types(cls: type) -> list[type]:
    """Enum and dataclass types named in ``cls``'s field annotations (unresolvable hints are skipped)."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError, AttributeError):
        return []
    out: list[type] = []
    stack: list[object] = list(hints.values())
    while stack:
        hint = stack.pop()
        stack.extend(typing.get_args(hint))
        if isinstance(hint, type) and (issubclass(hint, enum.Enum) or dataclasses.is_dataclass(hint)):
            out.append(hint)
    return out
