"""What a recorded client session is: its machine name, its header and the classes it may name.

The shell's :class:`~thalovant.shell.recording.TraceWriter` and the in-memory
:class:`~thalovant.testing.RecordingConnection` write the same traces, and both replays read them
back through these functions.
"""

from __future__ import annotations

from returns.result import Failure

from thalovant._version import __version__
from thalovant.core.client import connection as cx
from thalovant.core.client.reconnect import Jitter, ReconnectConfig
from thalovant.core.errors import LocalProtocolError
from thalovant.core.links.http_wire import HttpPollConfig
from thalovant.core.links.liveness import LivenessConfig
from thalovant.core.links.mqtt_topics import MqttLayout, TopicOverrides
from thalovant.core.machine import Entropy
from thalovant.core.trace import TraceHeader, TypeRegistry, decode_value, default_registry, encode_value

__all__ = ["MACHINE_NAME", "build_connection", "connection_header", "connection_registry"]

#: The ``machine`` name in the header of a recorded client session.
MACHINE_NAME = "connection"


def connection_registry() -> TypeRegistry:
    """The classes a recorded client session may name: every machine message plus the config types."""
    config = [cx.ConnectionConfig, HttpPollConfig, ReconnectConfig, Jitter, MqttLayout, TopicOverrides, LivenessConfig]
    return default_registry().merged(TypeRegistry(config))


def connection_header(config: cx.ConnectionConfig, *, secrets: str) -> TraceHeader:
    """The header of a recorded session of a Connection built from ``config``.

    ``secrets`` says how the header holds the config's secrets (``"inline"`` for a live session).
    """
    return TraceHeader(
        machine=MACHINE_NAME, config={"connection": encode_value(config)}, thalovant=__version__, secrets=secrets
    )


def build_connection(header: TraceHeader, entropy: Entropy, registry: TypeRegistry | None = None) -> cx.Connection:
    """Rebuild the recorded session's machine from its header (for :func:`thalovant.core.replay.replay`).

    Raises:
        LocalProtocolError: the header is not a recorded client session.
    """
    if header.machine != MACHINE_NAME:
        raise LocalProtocolError(f"not a recorded client session (machine {header.machine!r})")
    config = decode_value(header.config.get("connection"), registry or connection_registry())
    if isinstance(config, Failure) or not isinstance(config.unwrap(), cx.ConnectionConfig):
        raise LocalProtocolError("the trace header holds no valid connection config")
    return cx.Connection(config=config.unwrap(), entropy=entropy)
