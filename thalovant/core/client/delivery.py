"""What a message the hub delivers becomes: a bus event for users, never carrying the access key.

Only BUS messages become events; anything else, or a bus message that does not read as one, is
ignored with a Note. MQTT on hub 4.x uses the access key as the user agent, so peer ids in
contexts carry it: it is scrubbed (:mod:`.redact`) before anything reaches users or logs.
"""

from __future__ import annotations

from returns.result import Success

from thalovant.core.bus.events import ThalovantEvent, normalize
from thalovant.core.client.redact import scrub_message
from thalovant.core.machine import Note, NoteLevel
from thalovant.core.wire.message import HiveMessage

__all__ = ["delivered_event"]


def delivered_event(message: HiveMessage, access_key: str) -> ThalovantEvent | Note:
    """The event ``message`` carries, or a Note saying why it was ignored."""
    bus = message.bus()
    if bus is None:
        return Note(level=NoteLevel.DEBUG, text=f"ignored {message.msg_type.value} frame")
    if access_key:
        bus = scrub_message(bus, access_key)
    result = normalize(bus)
    if not isinstance(result, Success):
        return Note(level=NoteLevel.DEBUG, text="ignored a malformed bus message")
    event: ThalovantEvent = result.unwrap()
    return event
