"""The transport classes of thalovant 0.4.7, as thin adapters over thalovant's own links.

thalovant 0.4.7 had three transport classes wrapping another library. Code that builds them directly
still works: each class here takes 0.4.7's constructor and offers 0.4.7's eight methods (the duck
type :class:`Transport`), and talks to the hub through a private blocking
:class:`~thalovant.ThalovantClient` for its protocol (WebSocket over wsproto, HTTP polling over h11,
MQTT with paho), so the handshake, the encryption and the TLS checks are thalovant's own.

* ``connect()`` blocks until the session is ready; a transport whose connection died is closed and
  dialled again. The adapter does not reconnect by itself: whoever uses it does (a client given it as
  ``transport=`` does, with its reconnect policy), as in 0.4.7.
* Handlers registered with ``on_mycroft(name, fn)`` get every bus message of that type, one at a
  time, in a worker thread, as an object with ``msg_type``, ``data`` and ``context``; they stay
  registered across reconnects. A client given the adapter as ``transport=`` never makes that thread
  wait for its ``on()`` handlers (a reply they wait for may queue behind the event they handle).
* A patched ``thalovant.client.HiveMind*Transport`` (even a subclass of these) is not used for the
  adapter's own connection (``thalovant.shell.seam.own_links``).
* ``emit_event`` blocks until the transport took the message and raises
  :class:`~thalovant.ThalovantConnectionError` (or ``ThalovantTimeoutError``) otherwise; it never
  connects by itself.

Differences from 0.4.7, on purpose: TLS certificates are verified unless ``self_signed=True`` is
passed (0.4.7 defaulted to not verifying); ``compress``, ``binarize``, ``handshake_poll_interval``
and ``handshake_settle_seconds`` are accepted and ignored (the link decides); ``emit_event`` returns
None rather than a library-specific object.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from thalovant.core.bus.events import ThalovantEvent
from thalovant.core.client.health import ThalovantHealth
from thalovant.core.client.plan import DEFAULT_USERAGENT
from thalovant.core.client.topics import mqtt_topics_for_identity
from thalovant.core.errors import ThalovantConnectionError
from thalovant.core.identity.fields import split_url
from thalovant.core.links.mqtt_topics import MqttTopicSet
from thalovant.core.wire.auth import authorization_token
from thalovant.shell.bus_handlers import BusTransport
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.listeners import Subscription
from thalovant.shell.seam import own_links
from thalovant.shell.sync.client import ThalovantClient

__all__ = [
    "HiveMindHTTPTransport",
    "HiveMindMQTTTransport",
    "HiveMindWSSTransport",
    "MqttTopicSet",
    "Transport",
    "TransportMessage",
]

#: The duck type every ``transport=`` of 0.4.7 had (``thalovant.transport.Transport``).
Transport = BusTransport

Handler = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class TransportMessage:
    """What a handler registered with ``on_mycroft`` receives (0.4.7's raw message shape).

    Attributes:
        msg_type: the bus message type.
        data: its ``data`` object.
        context: its ``context`` object.
    """

    msg_type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)


class _HubTransport:
    """The shared body of the three classes (see the module docstring)."""

    _protocol = "https"
    #: A client given this transport never makes its threads wait for the client's ``on()`` handlers:
    #: they are the inner client's handler threads, and a reply the outer handler waits for would
    #: queue behind the very event it handles (``thalovant.shell.bus_handlers``).
    _hands_off_deliveries = True

    def __init__(
        self,
        identity: ThalovantIdentity | Mapping[str, Any],
        *,
        useragent: str = DEFAULT_USERAGENT,
        connect_timeout: float = 4.0,
        handshake_timeout: float = 6.0,
        send_timeout: float = 8.0,
        self_signed: bool | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(identity, ThalovantIdentity):
            identity = ThalovantIdentity.from_mapping(identity)
        self.identity = identity
        self.useragent = useragent
        with own_links():  # a patched thalovant.client.HiveMind*Transport (maybe this class) is not used here
            self._client = ThalovantClient(
                identity,
                protocol=self._protocol,
                useragent=useragent,
                connect_timeout=connect_timeout + handshake_timeout,
                handshake_timeout=handshake_timeout,
                send_timeout=send_timeout,
                insecure=bool(self_signed),
                auto_reconnect=False,
                **options,
            )
        self._lock = threading.Lock()
        self._handlers: dict[str, list[Handler]] = {}
        self._subscription: Subscription | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} connected={self.is_connected()} site={self.identity.site_id!r}>"

    def connect(self) -> None:
        """Connect and finish the handshake (a dead connection is closed and dialled again).

        Raises:
            ThalovantConnectionError: the hub cannot be reached (``ThalovantAuthenticationError``: refused).
            ThalovantTimeoutError: no ready session within ``connect_timeout + handshake_timeout``.
        """
        if self.is_connected():
            return
        self._client.close()
        try:
            self._client.connect()
            self._subscription = self._client.on("*", self._dispatch)
        except Exception as exc:
            self._error = exc
            self._client.close()
            raise
        self._error = None

    def disconnect(self) -> None:
        """Close the connection. Idempotent; registered handlers stay."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()
        self._client.close()

    def on_mycroft(self, name: str, fn: Handler) -> None:
        """Call ``fn(message)`` for every bus message of type ``name`` (a :class:`TransportMessage`)."""
        with self._lock:
            self._handlers.setdefault(name, []).append(fn)

    def remove_mycroft(self, name: str, fn: Handler) -> None:
        """Stop calling ``fn`` for ``name`` (no-op if it was not registered)."""
        with self._lock:
            handlers = self._handlers.get(name, [])
            if fn in handlers:
                handlers.remove(fn)
            if not handlers:
                self._handlers.pop(name, None)

    def emit_event(self, event_type: str, data: Mapping[str, Any] | None, context: Mapping[str, Any] | None) -> None:
        """Send the bus message ``event_type`` with ``data`` and ``context``, as given.

        Raises:
            ThalovantConnectionError: not connected, or the message could not be delivered.
            ThalovantTimeoutError: the link did not take it within ``send_timeout``.
        """
        if not self.is_connected():
            raise ThalovantConnectionError("the transport is not connected: call connect() first")
        try:
            self._client.emit(event_type, data, context)
        except Exception as exc:
            self._error = exc
            raise

    def healthcheck(self) -> ThalovantHealth:
        """A snapshot of the connection (never connects)."""
        if self.is_connected():
            return self._client.healthcheck()
        last = str(self._error) if self._error is not None else "not connected"
        return ThalovantHealth(
            connected=False, handshake_complete=False, transport_alive=False, last_error=last, protocol=self._protocol
        )

    def is_connected(self) -> bool:
        """Whether the session is ready."""
        return self._client.async_client.connected

    def last_error(self) -> BaseException | None:
        """The last connect or send failure (cleared by a successful ``connect()``)."""
        return self._error

    def _dispatch(self, event: ThalovantEvent) -> None:
        with self._lock:
            handlers = list(self._handlers.get(event.type, ()))
        message = TransportMessage(event.type, dict(event.data), dict(event.context))
        for handler in handlers:
            handler(message)


class HiveMindHTTPTransport(_HubTransport):
    """0.4.7's HTTP polling transport (see the module docstring).

    Args:
        identity: the client's identity (or its mapping form).
        useragent: sent to the hub (part of the peer id).
        connect_timeout: seconds to reach the hub; ``connect()`` waits this plus ``handshake_timeout``.
        handshake_timeout: seconds the handshake may take.
        handshake_poll_interval: accepted, ignored (the link polls as it sees fit).
        handshake_settle_seconds: accepted, ignored.
        send_timeout: seconds ``emit_event`` waits for the transport to take a message.
        self_signed: True skips TLS certificate checks (development only); default: checked.
        compress: accepted, ignored.
        binarize: accepted, ignored.
        options: more :class:`~thalovant.AsyncThalovantClient` options (e.g. ``ca_file``).
    """

    _protocol = "https"

    def __init__(
        self,
        identity: ThalovantIdentity | Mapping[str, Any],
        *,
        useragent: str = DEFAULT_USERAGENT,
        connect_timeout: float = 4.0,
        handshake_timeout: float = 6.0,
        handshake_poll_interval: float = 0.1,
        handshake_settle_seconds: float = 0.1,
        send_timeout: float = 8.0,
        self_signed: bool | None = None,
        compress: bool = False,
        binarize: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(
            identity,
            useragent=useragent,
            connect_timeout=connect_timeout,
            handshake_timeout=handshake_timeout,
            send_timeout=send_timeout,
            self_signed=self_signed,
            **options,
        )


class HiveMindWSSTransport(HiveMindHTTPTransport):
    """0.4.7's WebSocket transport: the same constructor as :class:`HiveMindHTTPTransport`.

    Raises:
        ThalovantUnsupportedProtocolError: the identity has no WebSocket endpoint.
    """

    _protocol = "wss"

    def _authorized_wss_url(self, *, key: str, useragent: str) -> str:
        """0.4.7's private helper: the identity's WebSocket endpoint with the hub token in its query.

        The path and the other query parameters are kept; an ``authorization`` already there is
        replaced by ``base64(useragent:key)``. The result holds a secret: never log or show it (the
        client itself never builds it this way; its link adds the token when it dials).

        Raises:
            ThalovantConnectionError: the identity has no usable ws:// or wss:// endpoint (not quoted).
        """
        endpoint = self.identity.endpoint_for("wss")
        parts = split_url(endpoint) if endpoint else "is missing"
        if isinstance(parts, str) or parts.scheme not in ("ws", "wss"):
            raise ThalovantConnectionError("the identity's WSS endpoint must be a ws:// or wss:// URL")
        kept = parts.without_authorization().query
        token = "authorization=" + authorization_token(useragent, key)
        return replace(parts, query=f"{kept}&{token}" if kept else token).unsplit()


class HiveMindMQTTTransport(_HubTransport):
    """0.4.7's MQTT transport (see the module docstring).

    Args:
        identity: the client's identity; it needs its ``mqtt`` block (broker and topics).
        useragent: sent to the hub.
        connect_timeout: seconds to reach the broker; ``connect()`` waits this plus ``handshake_timeout``.
        handshake_timeout: seconds the handshake may take.
        send_timeout: seconds ``emit_event`` waits for the broker to take a message.
        ignored: other 0.4.7 keywords, accepted and ignored.

    Attributes:
        session_id: ``thalovant-python-mqtt-<hex>``, the session this client announces.
        topics: its c2s, s2c and status topics (:func:`~thalovant.mqtt_topics_for_identity`).

    Raises:
        ThalovantUnsupportedProtocolError: the identity has no ``mqtt`` block.
    """

    _protocol = "mqtt"

    def __init__(
        self,
        identity: ThalovantIdentity | Mapping[str, Any],
        *,
        useragent: str = DEFAULT_USERAGENT,
        connect_timeout: float = 4.0,
        handshake_timeout: float = 6.0,
        send_timeout: float = 8.0,
        **ignored: Any,
    ) -> None:
        self.session_id = f"thalovant-python-mqtt-{secrets.token_hex(16)}"
        super().__init__(
            identity,
            useragent=useragent,
            connect_timeout=connect_timeout,
            handshake_timeout=handshake_timeout,
            send_timeout=send_timeout,
            session_id=self.session_id,
        )
        self.topics: MqttTopicSet = mqtt_topics_for_identity(self.identity)  # what the client's plan uses
