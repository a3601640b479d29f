"""Keeping the access key out of what the hub sends back.

MQTT on hub 4.x uses the access key as the user agent, so peer ids in the contexts the hub sends
carry it. The connection scrubs every delivered bus message before anything reaches users or logs,
with an explicit stack, so no nesting a hub sends can overflow Python's.
"""

from __future__ import annotations

from typing import Any

from thalovant.core.jsontree import copy_tree
from thalovant.core.wire.message import BusMessage

__all__ = ["scrub", "scrub_message"]

SHOWN_AS = "<access-key>"


def scrub(value: Any, secret: str) -> Any:
    """``value`` with every occurrence of ``secret`` in strings replaced by ``<access-key>`` (no recursion).

    >>> scrub({"peer": "k3y::1", "n": [1, "k3y"]}, "k3y")
    {'peer': '<access-key>::1', 'n': [1, '<access-key>']}
    """

    def leaf(item: Any) -> Any:
        return item.replace(secret, SHOWN_AS) if isinstance(item, str) and secret in item else item

    return copy_tree(value, leaf)


def scrub_message(bus: BusMessage, secret: str) -> BusMessage:
    """``bus`` with ``secret`` scrubbed from its data and context."""
    return BusMessage(type=bus.type, data=scrub(bus.data, secret), context=scrub(bus.context, secret))
