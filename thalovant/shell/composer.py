"""How a client's options and messages are composed: checked arguments, correlated turns, raw bus events.

:func:`checked_identity` is the client constructor's door: every argument is checked
(:mod:`thalovant.shell.arguments`) and the identity becomes a ``ThalovantIdentity``.

Every turn (``ask``, ``send_utterance``, ``send_action``, ``send_code``) carries a request id
(the caller's, or a fresh one) plus the identity's site id and metadata; a raw event
(``emit``) carries the metadata in its context. The builders are the core's
(:mod:`thalovant.core.bus.outbound`); this class only feeds them, and draws request ids from
the client's entropy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from thalovant.core.bus.outbound import merge_context, new_request_id
from thalovant.core.errors import LocalProtocolError, ThalovantArgumentError, ThalovantArgumentTypeError
from thalovant.core.machine import Entropy
from thalovant.core.wire.codec import encode_json
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType
from thalovant.shell.arguments import check_client_arguments
from thalovant.shell.identity_io import ThalovantIdentity

__all__ = ["Composer", "TurnBuilder", "checked_identity"]


def checked_identity(arguments: Mapping[str, Any]) -> ThalovantIdentity:
    """The client's identity as a ``ThalovantIdentity``, once every constructor argument passed its check.

    ``AsyncThalovantClient.__init__`` calls ``checked_identity(locals())`` first, so a bad argument
    raises at once (rules in :mod:`thalovant.shell.arguments`) and no key file is touched.

    Raises:
        ThalovantArgumentTypeError: an argument has the wrong type (also a ``TypeError``).
        ThalovantArgumentError: an argument is out of range or not one of its choices.
        ThalovantIdentityError: the identity mapping is invalid.
    """
    check_client_arguments(arguments)
    identity = arguments["identity"]
    return identity if isinstance(identity, ThalovantIdentity) else ThalovantIdentity.from_mapping(identity)

#: A turn builder of ``core.bus.outbound`` (``utterance_message``, ``action_message``, ``code_message``).
TurnBuilder = Callable[..., BusMessage]


class Composer:
    """Builds one client's messages.

    Args:
        site_id: the identity's site id.
        metadata: the identity's metadata (merged into every message's context).
        entropy: random bytes for request ids.
    """

    def __init__(self, *, site_id: str, metadata: Mapping[str, Any], entropy: Entropy) -> None:
        self._site_id = site_id
        self._metadata = metadata
        self._entropy = entropy

    def turn(
        self,
        builder: TurnBuilder,
        value: str,
        lang: str,
        context: Mapping[str, Any] | None,
        session_id: str | None,
        request_id: str | None,
        **extra: Any,
    ) -> tuple[BusMessage, str]:
        """One turn's message and its request id (``extra``: the builder's own fields, e.g. ``title``).

        Raises:
            ValueError: the builder refused ``value`` (e.g. an empty utterance).
        """
        rid = request_id or new_request_id(self._entropy)
        message = builder(
            value,
            request_id=rid,
            lang=lang,
            session_id=session_id,
            site_id=self._site_id,
            context=context,
            metadata=self._metadata or None,
            **extra,
        )
        return message, rid

    def event(self, event: str, data: Mapping[str, Any] | None, context: Mapping[str, Any] | None) -> BusMessage:
        """A raw bus event (no correlation is added).

        Raises:
            ValueError: ``event`` is not a non-empty string.
            ThalovantArgumentError: ``data`` or ``context`` is not a JSON object (a mapping JSON can carry).
        """
        if not isinstance(event, str) or not event.strip():
            raise ValueError("event must be a non-empty string")
        base = {"metadata": dict(self._metadata)} if self._metadata else None
        return BusMessage(
            type=event, data=json_object("data", data), context=merge_context(base, json_object("context", context))
        )


def json_object(name: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    """``value`` as a dict a frame can carry (None: ``{}``); the machine would refuse it later, killing the loop.

    Raises:
        ThalovantArgumentError: not a mapping, or not JSON-serialisable (the message names ``name``, not the value).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ThalovantArgumentTypeError(name, f"must be a mapping or None, not {type(value).__name__}")
    copied = dict(value)
    try:
        encode_json(HiveMessage(msg_type=MsgType.BUS, payload=copied))
    except LocalProtocolError:
        raise ThalovantArgumentError(name, "must be JSON-serialisable (str keys; str, number, bool, None, "
                                     "list and mapping values)") from None  # fmt: skip
    return copied
