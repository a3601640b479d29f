"""The engine under :class:`~thalovant.shell.links.mqtt.MqttConnection`: paho-mqtt driven by anyio.

Theory of operation
-------------------
paho is not sans-IO, so it is kept on a short leash (style brief §1.8, §2.4).
This module owns the IO half; the MQTT operations and their waits are in
:mod:`thalovant.shell.links.mqtt`.

* paho's own network thread is **never** started. Once ``client.connect()``
  returned (in a worker thread), three tasks run on the event-loop thread:

  - reader: ``wait_readable(sock)`` -> ``loop_read()``, repeated while a TLS
    socket still holds decrypted bytes (``sock.pending()``);
  - writer: sleeps on an event; woken when ``client.want_write()`` is true
    after any paho call made on the loop thread; then ``wait_writable(sock)``
    -> ``loop_write()`` until nothing is left;
  - misc: ``loop_misc()`` once a second (paho's keep-alive PINGREQ, ping timeout), and the
    liveness probe: MQTT 3.1.1's keep-alive only bounds the *broker's* wait (1.5 x keepalive)
    and paho gives up on a missing PINGRESP only after about 2 x keepalive. So the engine also
    runs the core's pure :class:`~thalovant.core.links.liveness.Liveness` timer: every byte
    from the broker is heard (a PINGRESP, an acknowledgement, a PUBLISH, and a large PUBLISH
    still on its way: the PINGRESP queues behind it); after ``liveness.idle``
    quiet seconds a PINGREQ goes out; with nothing heard ``liveness.timeout`` seconds later the
    connection is lost ("no answer from the broker"), ``liveness.bound`` seconds after the last
    byte at the latest (while the reader is paused for backpressure, silence is not held against
    the broker). The misc task wakes at the timer's deadline, not just once a second.

* paho callbacks only record facts on ``self`` (append to a deque, store a
  value, set a flag). Some fire in the worker thread during ``connect()``.
  After every ``loop_*`` call the loop thread looks at what was recorded and
  wakes waiters. anyio primitives are touched only from the loop thread; a
  guard (on by default) raises ``RuntimeError`` if that rule is ever broken.
* Waking: one "progress" event is swapped and set after every IO step;
  :meth:`PahoEngine._wait_progress` raises ``ThalovantConnectionError`` once
  the connection is lost, so a dead link fails every waiter promptly.
* Backpressure: when ``max_pending`` received messages are waiting, the reader
  stops reading the socket until they are drained.
* Size limit: paho would buffer whatever length a packet announces (up to
  256 MiB) before handling it. Its socket reads go through
  :class:`_BoundedClient`, which reads at most 64 KiB at a time and refuses a
  packet whose announced remaining length exceeds ``max_packet_size`` (8 MiB by
  default, like WebSocket messages) before reading any of its body: the
  connection is then lost with :class:`MqttPacketTooLarge`.
* Timings: in ``connect()``'s worker thread :class:`_BoundedClient` resolves the
  broker's name and connects (addresses in the resolver's order, as paho's
  ``socket.create_connection`` does), then wraps TLS, recording each phase in the
  :class:`~thalovant.shell.links.dial.LinkTimes` current for the connect (anyio
  copies the context into the thread).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from thalovant.core.links.liveness import Liveness, LivenessConfig
from thalovant.errors import LocalProtocolError, ThalovantConnectionError
from thalovant.shell.links.dial import current_times, is_ip_literal, ms

__all__ = ["DEFAULT_MAX_PACKET_SIZE", "MqttPacketTooLarge", "PahoEngine", "Will"]

#: ``(topic, payload, qos, retain)`` of the last-will message.
Will = tuple[str, bytes, int, bool]

#: Largest MQTT packet (its announced remaining length) accepted by default: 8 MiB.
DEFAULT_MAX_PACKET_SIZE = 8 * 1024 * 1024
_READ_CHUNK = 65536
_MISC_INTERVAL = 1.0
_CALLBACKS = (
    "on_connect", "on_disconnect", "on_message", "on_subscribe", "on_socket_close",
    "on_socket_register_write", "on_socket_unregister_write",
)  # fmt: skip


class MqttPacketTooLarge(ThalovantConnectionError):
    """The broker announced a packet larger than the connection's ``max_packet_size``; it was not read.

    Attributes:
        announced: the packet's announced remaining length, in bytes.
        limit: the connection's ``max_packet_size``.
    """

    def __init__(self, message: str, *, announced: int, limit: int) -> None:
        super().__init__(message)
        self.announced = announced
        self.limit = limit


class _Oversized(OSError):
    """Raised inside paho's read to end a packet that is too large (paho reports the connection lost)."""


class _BoundedClient(paho.Client):
    """paho's client with bounded socket reads (see the module docstring)."""

    max_packet_size = DEFAULT_MAX_PACKET_SIZE
    refused: int | None = None  # the announced length of the packet refused, once one was
    bytes_in = 0  # bytes read from the broker, complete packets or not (the liveness timer hears them)

    def _sock_recv(self, bufsize: int) -> bytes:
        packet = self._in_packet
        if packet["have_remaining"] and packet["remaining_length"] > self.max_packet_size:
            self.refused = int(packet["remaining_length"])
            raise _Oversized
        data: bytes = super()._sock_recv(min(bufsize, _READ_CHUNK))
        self.bytes_in += len(data)
        return data

    def _create_socket_connection(self) -> socket.socket:
        times = current_times()
        if times is None or self._get_proxy():
            return super()._create_socket_connection()
        times.dialed = True
        started, host = time.perf_counter(), self._host
        addresses = [host.strip("[]")]
        if not is_ip_literal(host):
            found = socket.getaddrinfo(host, self._port, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
            times.dns_ms = ms(time.perf_counter() - started)
        started, error = time.perf_counter(), OSError(f"no address to connect to for port {self._port}")
        source, wait = (self._bind_address, self._bind_port), self._connect_timeout
        for address in addresses:
            try:
                sock = socket.create_connection((address, self._port), timeout=wait, source_address=source)
            except OSError as exc:
                error = exc
                continue
            times.tcp_ms = ms(time.perf_counter() - started)
            return sock
        raise error

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        started = time.perf_counter()
        sock = super()._ssl_wrap_socket(tcp_sock)
        if (times := current_times()) is not None:
            times.tls_ms = ms(time.perf_counter() - started)
        return sock


class PahoEngine:
    """paho's IO loops, wake-ups and recording callbacks; the base of :class:`MqttConnection`.

    Args:
        ack_timeout: seconds to wait for a SUBACK or a PUBACK.
        max_pending: received messages buffered before reading pauses.
        max_packet_size: largest packet accepted (its announced remaining length, in bytes).
        thread_guard: raise if an anyio primitive is touched off the loop thread.
        liveness: when a quiet connection sends a PINGREQ and when it is given up (None: paho's keep-alive only).
    """

    def __init__(
        self,
        *,
        ack_timeout: float = 10.0,
        max_pending: int = 1000,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        thread_guard: bool = True,
        liveness: LivenessConfig | None = None,
    ) -> None:
        self._liveness_config = liveness
        self._live: Liveness | None = None
        self._bytes_heard = 0
        self._ack_timeout = ack_timeout
        self._max_pending = max_pending
        self._max_packet_size = max_packet_size
        self._thread_guard = thread_guard
        self._loop_thread: int | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._client: _BoundedClient | None = None
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

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the end of the connection."""
        return self._connack is not None and self._connack[0] == 0 and self._lost is None

    def _make_client(
        self,
        client_id: str,
        username: str | None,
        password: str | None,
        tls: ssl.SSLContext | None,
        will: Will | None,
    ) -> _BoundedClient:
        client = _BoundedClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        client.max_packet_size = self._max_packet_size
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
        cfg = self._liveness_config
        live = self._live = Liveness(cfg, now=anyio.current_time()) if cfg is not None else None
        misc_at = anyio.current_time() + _MISC_INTERVAL
        while self._lost is None:
            await anyio.sleep_until(misc_at if live is None else min(misc_at, live.deadline))
            now = anyio.current_time()
            if now >= misc_at:
                misc_at = now + _MISC_INTERVAL
                self._after_io(client.loop_misc())
            if live is None or self._lost is not None:
                continue
            if len(self._inbound) >= self._max_pending:
                live.heard(now)  # the reader paused by choice (backpressure): silence proves nothing
            verdict = live.check(now)
            if verdict == "probe":
                self._after_io(client._send_pingreq())
            elif verdict == "dead":
                assert cfg is not None
                self._mark_lost(
                    f"no answer from the broker within {cfg.timeout:g} s of a PINGREQ after {cfg.idle:g} s of silence"
                )

    def _after_io(self, rc: MQTTErrorCode) -> None:
        """Turn what paho callbacks recorded into wake-ups (loop thread only)."""
        self._guard()
        client = self._client
        if client is not None and client.bytes_in != self._bytes_heard:
            self._bytes_heard = client.bytes_in
            if self._live is not None:
                self._live.heard(anyio.current_time())
        if client is not None and client.refused is not None:
            self._mark_lost(f"packet too large (announced {client.refused} bytes, limit {self._max_packet_size})")
            return
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

    def _lost_error(self, text: str) -> ThalovantConnectionError:
        client = self._client
        if client is not None and client.refused is not None:
            return MqttPacketTooLarge(text, announced=client.refused, limit=self._max_packet_size)
        return ThalovantConnectionError(text, retryable=self._retryable)

    async def _wait_progress(self, action: str) -> None:
        if self._lost is not None:
            raise self._lost_error(f"MQTT {action} failed: {self._lost} ({self._peer})")
        await self._progress.wait()

    def _require(self) -> _BoundedClient:
        if self._lost is not None:
            raise self._lost_error(f"MQTT connection {self._lost}")
        if not self.connected:
            raise ThalovantConnectionError("MQTT is not connected")
        return self._require_client()

    def _require_client(self) -> _BoundedClient:
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
