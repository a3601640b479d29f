"""MQTT client adapter: paho-mqtt 2.x used as an IO engine under anyio.

Theory of operation
-------------------
paho is not sans-IO, so it is kept on a short leash (style brief §1.8, §2.4):

* paho's own network thread is **never** started. The blocking
  ``client.connect()`` (DNS, TCP, TLS, CONNECT queued) runs in an anyio worker
  thread, bounded by paho's ``connect_timeout``.
* Three tasks then run on the event-loop thread, inside the task group that
  ``async with MqttConnection()`` opened:

  - reader: ``wait_readable(sock)`` -> ``loop_read()``, repeated while a TLS
    socket still holds decrypted bytes (``sock.pending()``);
  - writer: sleeps on an event; woken when ``client.want_write()`` is true
    after any paho call made on the loop thread; then ``wait_writable(sock)``
    -> ``loop_write()`` until nothing is left;
  - misc: ``loop_misc()`` once a second (keep-alive PINGREQ, ping timeout).

* paho callbacks only record facts on ``self`` (append to a deque, store a
  value, set a flag). Some fire in the worker thread during ``connect()``.
  After every ``loop_*`` call the loop thread looks at what was recorded and
  wakes waiters. anyio primitives are touched only from the loop thread; a
  guard (on by default) raises ``RuntimeError`` if that rule is ever broken.
* Waiting: one "progress" event is swapped and set after every IO step.
  ``subscribe`` waits for its SUBACK, ``publish`` (QoS >= 1) for its PUBACK,
  ``receive`` for a message; each re-checks "connection lost" on every wake,
  so a dead link fails all waiters promptly with ``ThalovantConnectionError``.
* Backpressure: when ``max_pending`` received messages are waiting, the reader
  stops reading the socket until ``receive`` drains some.

The broker password lives only inside paho; it never appears in ``repr`` or in
an error message. Errors from paho, ssl or the OS become
``ThalovantConnectionError`` / ``ThalovantAuthenticationError`` /
``ThalovantTimeoutError``; an invalid topic or QoS (caller misuse) is a
``LocalProtocolError``.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from thalovant.errors import (
    LocalProtocolError,
    ThalovantAuthenticationError,
    ThalovantConnectionError,
    ThalovantError,
    ThalovantTimeoutError,
)

__all__ = ["MqttConnection", "Will"]

#: ``(topic, payload, qos, retain)`` of the last-will message.
Will = tuple[str, bytes, int, bool]

_MISC_INTERVAL = 1.0
_CALLBACKS = (
    "on_connect", "on_disconnect", "on_message", "on_subscribe", "on_socket_close",
    "on_socket_register_write", "on_socket_unregister_write",
)  # fmt: skip
_CLOSE_GRACE = 2.0
_AUTH_REFUSED = frozenset({4, 5, 134, 135})  # v3.1.1 codes 4/5 as paho maps them (0x86/0x87)
_RETRYABLE_REFUSALS = frozenset({3, 136, 137, 151, 159})  # server unavailable / busy / quota / rate


class MqttConnection:
    """One MQTT connection, driven by anyio. Use it as an async context manager.

    Example::

        async with MqttConnection() as mqtt:
            await mqtt.connect("127.0.0.1", 1883, client_id="thalovant-1a2b",
                               username=key, password=broker_pw,
                               will=("hivemind/hub/status/" + key, b"offline", 1, True))
            await mqtt.subscribe(s2c_topic, 1)
            await mqtt.publish(c2s_topic, frame, 1, False)
            topic, payload, qos = await mqtt.receive()
            await mqtt.disconnect()

    Leaving the ``async with`` block without :meth:`disconnect` drops the TCP
    connection without an MQTT DISCONNECT, so the broker publishes the will.

    Args:
        ack_timeout: seconds to wait for a SUBACK or a PUBACK.
        max_pending: received messages buffered before reading pauses.
        thread_guard: raise if an anyio primitive is touched off the loop thread.
    """

    def __init__(self, *, ack_timeout: float = 10.0, max_pending: int = 1000, thread_guard: bool = True) -> None:
        self._ack_timeout = ack_timeout
        self._max_pending = max_pending
        self._thread_guard = thread_guard
        self._loop_thread: int | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._client: paho.Client | None = None
        self._sock: Any = None
        self._peer = "unconnected"
        # Facts recorded by paho callbacks (plain attributes only).
        self._connack: tuple[int, str, bool] | None = None
        self._inbound: deque[tuple[str, bytes, int]] = deque()
        self._subacks: dict[int, list[int]] = {}
        self._disconnected_rc: str | None = None
        # Loop-thread state.
        self._lost: str | None = None
        self._retryable = True
        # anyio objects need a running event loop: they are created in __aenter__.
        self._loops: anyio.CancelScope
        self._progress: anyio.Event
        self._write_wanted: anyio.Event
        self._drained: anyio.Event

    def __repr__(self) -> str:
        state = "lost" if self._lost is not None else ("connected" if self._connack else "idle")
        return f"<MqttConnection {self._peer} {state}>"

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the end of the connection."""
        return self._connack is not None and self._connack[0] == 0 and self._lost is None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> MqttConnection:
        if self._tg is not None or self._client is not None:
            raise RuntimeError("an MqttConnection can be entered only once")
        self._loop_thread = threading.get_ident()
        self._loops = anyio.CancelScope()
        self._progress = anyio.Event()
        self._write_wanted = anyio.Event()
        self._drained = anyio.Event()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        try:
            with anyio.CancelScope(shield=True):
                await self.abort()
        finally:
            tg, self._tg = self._tg, None
            if tg is not None:
                # The loops never raise and are cancelled by now; the body's own exception (or
                # cancellation) must propagate as itself, not wrapped in an ExceptionGroup.
                await tg.__aexit__(None, None, None)
        return None

    async def connect(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        will: Will | None = None,
        keepalive: int = 60,
        timeout: float = 10.0,  # noqa: ASYNC109 - paho's connect runs in a thread; it needs its own bound
    ) -> bool:
        """Connect to the broker and wait for CONNACK.

        Args:
            host: broker host.
            port: broker port.
            client_id: MQTT client id (unique per process).
            username: broker user name, if any.
            password: broker password, if any. Secret: never shown.
            tls: SSL context for ``mqtts``, or None.
            will: last-will ``(topic, payload, qos, retain)``, or None.
            keepalive: MQTT keep-alive seconds.
            timeout: seconds for TCP/TLS connect plus CONNACK.

        Returns:
            The broker's ``session_present`` flag.

        Raises:
            ThalovantAuthenticationError: bad user name or password, or not authorised.
            ThalovantTimeoutError: no connection or no CONNACK within ``timeout``.
            ThalovantConnectionError: anything else.
        """
        if self._tg is None:
            raise RuntimeError("use 'async with MqttConnection() as mqtt:' before connect()")
        if self._client is not None:
            raise RuntimeError("MqttConnection.connect() may be called only once")
        self._peer = f"{host}:{port}"
        client = self._make_client(client_id, username, password, tls, will)
        client.connect_timeout = timeout
        self._client = client
        start = anyio.current_time()
        try:
            await anyio.to_thread.run_sync(client.connect, host, port, keepalive)
        except ThalovantError:
            raise
        except ssl.SSLError as exc:
            raise ThalovantConnectionError(f"MQTT TLS handshake with {self._peer} failed ({exc.reason})") from None
        except TimeoutError:
            raise ThalovantTimeoutError(f"MQTT connect to {self._peer} timed out") from None
        except OSError as exc:
            detail = exc.strerror or type(exc).__name__
            raise ThalovantConnectionError(f"MQTT connect to {self._peer} failed: {detail}") from None
        except ValueError as exc:
            raise LocalProtocolError(f"MQTT connect: {exc}") from None
        self._sock = client.socket()
        self._tg.start_soon(self._run_loops)
        self._kick_writer()
        try:
            with anyio.fail_after(max(timeout - (anyio.current_time() - start), 0.0)):
                while self._connack is None:
                    await self._wait_progress("connect")
        except TimeoutError:
            await self.abort()
            raise ThalovantTimeoutError(f"MQTT broker {self._peer} sent no CONNACK in time") from None
        try:
            return self._check_connack()
        except ThalovantError:
            await self._shutdown("refused by the broker", retryable=False)
            raise

    def _make_client(
        self,
        client_id: str,
        username: str | None,
        password: str | None,
        tls: ssl.SSLContext | None,
        will: Will | None,
    ) -> paho.Client:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        client.suppress_exceptions = True
        try:
            if username is not None:
                client.username_pw_set(username, password)
            if tls is not None:
                client.tls_set_context(tls)
            if will is not None:
                topic, payload, qos, retain = will
                client.will_set(topic, payload, qos, retain)
        except ValueError as exc:
            raise LocalProtocolError(f"MQTT options: {exc}") from None
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_message = self._cb_message
        client.on_subscribe = self._cb_subscribe
        client.on_socket_close = self._cb_socket_close
        client.on_socket_register_write = client.on_socket_unregister_write = self._cb_write_interest
        return client

    def _check_connack(self) -> bool:
        assert self._connack is not None
        code, name, session_present = self._connack
        if code == 0:
            return session_present
        self._lost = f"refused ({name})"
        if code in _AUTH_REFUSED:
            raise ThalovantAuthenticationError(f"MQTT broker {self._peer} refused the credentials ({name})")
        raise ThalovantConnectionError(
            f"MQTT broker {self._peer} refused the connection ({name})", retryable=code in _RETRYABLE_REFUSALS
        )

    # -- operations --------------------------------------------------------------------------------

    async def subscribe(self, topic: str, qos: int = 1) -> int:
        """Subscribe and wait for the SUBACK.

        Returns:
            The QoS the broker granted.

        Raises:
            ThalovantConnectionError: refused by the broker (``retryable`` False) or link lost.
            ThalovantTimeoutError: no SUBACK within ``ack_timeout``.
        """
        client = self._require()
        try:
            rc, mid = client.subscribe(topic, qos)
        except ValueError as exc:
            raise LocalProtocolError(f"MQTT subscribe: {exc}") from None
        self._check_rc(rc, "subscribe")
        self._kick_writer()
        mid_ = int(mid or 0)
        try:
            with anyio.fail_after(self._ack_timeout):
                while mid_ not in self._subacks:
                    await self._wait_progress("subscribe")
        except TimeoutError:
            raise ThalovantTimeoutError(f"MQTT broker {self._peer} sent no SUBACK in time") from None
        granted = self._subacks.pop(mid_)
        if not granted or granted[0] >= 128:
            raise ThalovantConnectionError(f"MQTT broker {self._peer} refused the subscription", retryable=False)
        return granted[0]

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Publish one message; for QoS >= 1 wait until the broker acknowledged it.

        Raises:
            ThalovantConnectionError: not connected, or the link was lost before the ack.
            ThalovantTimeoutError: no PUBACK/PUBCOMP within ``ack_timeout``.
        """
        client = self._require()
        try:
            info = client.publish(topic, payload, qos, retain)
        except ValueError as exc:
            raise LocalProtocolError(f"MQTT publish: {exc}") from None
        self._check_rc(info.rc, "publish")
        self._kick_writer()
        if qos == 0:
            return
        try:
            with anyio.fail_after(self._ack_timeout):
                while not info.is_published():
                    await self._wait_progress("publish")
        except TimeoutError:
            raise ThalovantTimeoutError(f"MQTT broker {self._peer} did not acknowledge a publish in time") from None

    async def receive(self) -> tuple[str, bytes, int]:
        """Wait for the next message.

        Returns:
            ``(topic, payload, qos)``. Messages already received are handed
            out even after the link is lost; then this raises.

        Raises:
            ThalovantConnectionError: the connection is lost or closed.
        """
        while not self._inbound:
            self._require_client()
            await self._wait_progress("receive")
        item = self._inbound.popleft()
        if len(self._inbound) <= self._max_pending // 2:
            self._guard()
            self._drained.set()
        return item

    async def disconnect(self) -> None:
        """Send DISCONNECT (the broker then drops the will) and close. Idempotent."""
        client = self._client
        sent = client is not None and self._lost is None
        if client is not None and sent:
            client.disconnect()
            self._kick_writer()
            with anyio.move_on_after(_CLOSE_GRACE, shield=True):
                while self._lost is None:
                    await self._progress.wait()
        await self._shutdown("closed by the client", retryable=False, override=sent)

    async def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT (the broker publishes the will)."""
        client = self._client
        if client is not None and self._lost is None and self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            with anyio.move_on_after(_CLOSE_GRACE, shield=True):
                while self._lost is None:
                    await self._progress.wait()
        await self._shutdown("aborted by the client", retryable=False)

    # -- loops (event-loop thread) -----------------------------------------------------------------

    async def _run_loops(self) -> None:
        with self._loops:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._guarded, self._read_loop)
                tg.start_soon(self._guarded, self._write_loop)
                tg.start_soon(self._guarded, self._misc_loop)

    async def _guarded(self, loop: Callable[[], Any]) -> None:
        try:
            await loop()
        except anyio.ClosedResourceError:
            self._mark_lost("socket closed")
        except Exception as exc:  # a loop must never take the caller's task group down
            self._mark_lost(f"IO failure ({type(exc).__name__})")

    async def _read_loop(self) -> None:
        client = self._require_client()
        sock = self._sock
        while self._lost is None:
            if len(self._inbound) >= self._max_pending:
                self._drained = anyio.Event()
                await self._drained.wait()
                continue
            await anyio.wait_readable(sock)
            rc = client.loop_read()
            while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and isinstance(sock, ssl.SSLSocket) and sock.pending():
                rc = client.loop_read()
            self._after_io(rc)

    async def _write_loop(self) -> None:
        client = self._require_client()
        sock = self._sock
        while self._lost is None:
            await self._write_wanted.wait()
            self._write_wanted = anyio.Event()
            while self._lost is None and client.want_write():
                await anyio.wait_writable(sock)
                self._after_io(client.loop_write())

    async def _misc_loop(self) -> None:
        client = self._require_client()
        while self._lost is None:
            await anyio.sleep(_MISC_INTERVAL)
            self._after_io(client.loop_misc())

    def _after_io(self, rc: MQTTErrorCode) -> None:
        """Turn what paho callbacks recorded into wake-ups (loop thread only)."""
        self._guard()
        if self._disconnected_rc is not None or rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS,):
            reason = self._disconnected_rc or paho.error_string(rc)
            self._mark_lost(f"connection lost ({reason})")
            return
        self._kick_writer()
        self._notify()

    def _mark_lost(self, reason: str) -> None:
        self._guard()
        if self._lost is None:
            self._lost = reason
        self._loops.cancel()
        self._write_wanted.set()
        self._drained.set()
        self._notify()

    async def _shutdown(self, reason: str, *, retryable: bool, override: bool = False) -> None:
        if self._lost is None or override:
            self._lost = reason
            self._retryable = retryable
        self._loops.cancel()
        self._notify()
        client, sock = self._client, self._sock
        self._sock = None
        if client is not None:  # paho may call back later (e.g. from __del__): detach us
            for name in _CALLBACKS:
                setattr(client, name, None)
        if sock is not None and sock.fileno() >= 0:
            anyio.notify_closing(sock)
            sock.close()
        await anyio.lowlevel.checkpoint()

    # -- wake-ups ----------------------------------------------------------------------------------

    def _guard(self) -> None:
        if self._thread_guard and self._loop_thread is not None and threading.get_ident() != self._loop_thread:
            raise RuntimeError("MqttConnection: anyio primitive touched off the event-loop thread")

    def _notify(self) -> None:
        self._guard()
        event, self._progress = self._progress, anyio.Event()
        event.set()

    def _kick_writer(self) -> None:
        self._guard()
        client = self._client
        if client is not None and client.want_write():
            self._write_wanted.set()

    async def _wait_progress(self, action: str) -> None:
        if self._lost is not None:
            raise ThalovantConnectionError(
                f"MQTT {action} failed: {self._lost} ({self._peer})", retryable=self._retryable
            )
        await self._progress.wait()

    def _require(self) -> paho.Client:
        if self._lost is not None:
            raise ThalovantConnectionError(f"MQTT connection {self._lost}", retryable=self._retryable)
        if not self.connected:
            raise ThalovantConnectionError("MQTT is not connected")
        return self._require_client()

    def _require_client(self) -> paho.Client:
        if self._client is None:
            raise ThalovantConnectionError("MQTT is not connected")
        return self._client

    def _check_rc(self, rc: MQTTErrorCode | int, action: str) -> None:
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ThalovantConnectionError(f"MQTT {action} failed: {paho.error_string(rc)}")

    # -- paho callbacks: record only; never await, never raise, never touch anyio off-thread -------

    def _cb_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connack = (int(getattr(reason, "value", reason)), str(reason), bool(flags.session_present))

    def _cb_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._disconnected_rc = str(reason)

    def _cb_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            topic = bytes(message._topic).decode("utf-8", "replace")
            self._inbound.append((topic, bytes(message.payload), int(message.qos)))
        except Exception:  # a callback must not raise into paho's loop_read
            pass

    def _cb_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        self._subacks[mid] = [int(getattr(r, "value", r)) for r in reasons]

    def _cb_socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        self._disconnected_rc = self._disconnected_rc or "socket closed"
        if threading.get_ident() == self._loop_thread:
            try:
                anyio.notify_closing(sock)  # wake a reader/writer parked on this socket
            except Exception:  # never raise into paho
                pass

    def _cb_write_interest(self, client: Any, userdata: Any, sock: Any) -> None:
        """Deliberately empty: its presence stops paho from writing inline; the writer task writes."""
