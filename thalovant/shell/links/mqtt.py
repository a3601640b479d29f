"""MQTT client adapter: paho-mqtt 2.x used as an IO engine under anyio.

Theory of operation
-------------------
paho is not sans-IO, so it is kept on a short leash (style brief §1.8, §2.4).
The IO half (the reader, writer and misc loops on the event-loop thread, the
wake-ups and paho's recording callbacks) is :class:`~thalovant.shell.links.mqtt_engine.PahoEngine`;
this module holds the operations built on it:

* ``connect``: paho's own network thread is **never** started. The blocking
  ``client.connect()`` (DNS, TCP, TLS, CONNECT queued) runs in an anyio worker
  thread, bounded by paho's ``connect_timeout``; then the loops start inside
  the task group that ``async with MqttConnection()`` opened, and the CONNACK
  is awaited. A connect cancelled while the thread runs does not wait for it:
  the thread is abandoned and closes the socket it opened when it ends
  (``_Ownership``), so a timed-out connect keeps its deadline and leaks nothing.
* Waiting: one "progress" event is swapped and set after every IO step.
  ``subscribe`` waits for its SUBACK, ``publish`` (QoS >= 1) for its PUBACK,
  ``receive`` for a message; each re-checks "connection lost" on every wake,
  so a dead link fails all waiters promptly with ``ThalovantConnectionError``.
* Backpressure: when ``max_pending`` received messages are waiting, the reader
  stops reading the socket until ``receive`` drains some.
* Size limit: a packet announcing more than ``max_packet_size`` bytes (8 MiB by
  default) is refused before its body is read (``MqttPacketTooLarge``).

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
from types import TracebackType

import anyio
import paho.mqtt.client as paho

from thalovant.errors import (
    LocalProtocolError,
    ThalovantAuthenticationError,
    ThalovantConnectionError,
    ThalovantError,
    ThalovantTimeoutError,
)
from thalovant.shell.links.dial import current_times
from thalovant.shell.links.mqtt_engine import MqttPacketTooLarge, PahoEngine, Will

__all__ = ["MqttConnection", "MqttPacketTooLarge", "MqttTlsVerificationError", "Will"]

_CLOSE_GRACE = 2.0
_AUTH_REFUSED = frozenset({4, 5, 134, 135})  # v3.1.1 codes 4/5 as paho maps them (0x86/0x87)
_RETRYABLE_REFUSALS = frozenset({3, 136, 137, 151, 159})  # server unavailable / busy / quota / rate


class MqttTlsVerificationError(ThalovantConnectionError):
    """The broker's TLS certificate did not verify (untrusted, self-signed, wrong name): retrying cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class _Ownership:
    """Who closes the socket of paho's connect thread: the connect, or the thread if the connect gave up first.

    The token of a connect that was cancelled while paho's blocking connect ran: the thread is abandoned (a
    cancelled ``connect()`` returns at once, its deadline holds) and closes what it opened when it ends late.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.abandoned = False
        self.finished = False

    def run(self, client: paho.Client, host: str, port: int, keepalive: int) -> None:
        """In the worker thread: paho's connect; closes its socket if the connect was abandoned meanwhile."""
        try:
            client.connect(host, port, keepalive)
        finally:
            with self.lock:
                self.finished = True
                orphaned = self.abandoned
            if orphaned:
                _close_socket(client)

    def abandon(self, client: paho.Client) -> None:
        """On the loop: the connect gave up; close the socket now if the thread is done, else it will."""
        with self.lock:
            self.abandoned = True
            finished = self.finished
        if finished:
            _close_socket(client)


def _close_socket(client: paho.Client) -> None:
    sock = client.socket()
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


async def _paho_connect(client: paho.Client, host: str, port: int, keepalive: int) -> None:
    """paho's blocking connect (DNS, TCP, TLS, CONNECT queued) in a worker thread, owned (:class:`_Ownership`).

    A connect that fails or is cancelled leaves no socket behind (the broker sees the client go): one cancelled
    while the thread runs returns at once and the thread closes its socket when it ends (paho's
    ``connect_timeout`` bounds it).
    """
    owner = _Ownership()
    try:
        await anyio.to_thread.run_sync(owner.run, client, host, port, keepalive, abandon_on_cancel=True)
    except BaseException:
        owner.abandon(client)
        raise
    if (times := current_times()) is not None:
        times.opened(anyio.current_time())


class MqttConnection(PahoEngine):
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
        max_packet_size: largest packet accepted; a larger one is refused before its body is read and
            the connection is lost with :class:`~thalovant.shell.links.mqtt_engine.MqttPacketTooLarge`.
        thread_guard: raise if an anyio primitive is touched off the loop thread.
    """

    def __repr__(self) -> str:
        state = "lost" if self._lost is not None else ("connected" if self._connack else "idle")
        return f"<MqttConnection {self._peer} {state}>"

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
        timeout: float = 10.0,  # paho's connect runs in a thread; it needs its own bound
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
            MqttTlsVerificationError: the broker's certificate did not verify (not retryable).
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
            await _paho_connect(client, host, port, keepalive)
        except ThalovantError:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise MqttTlsVerificationError(
                f"MQTT TLS handshake with {self._peer} failed: certificate verification failed "
                f"({exc.verify_message}); pass ca_file= with the broker's CA"
            ) from None
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
            MqttPacketTooLarge: it was lost because the broker sent a packet over ``max_packet_size``.
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
        """Drop the TCP connection without DISCONNECT (the broker publishes the will). Never waits on the peer.

        It is what leaving the ``async with`` block does, often from a cancelled task whose IO loops are
        cancelled with it: nothing could read the broker's reaction, so nothing waits for one.
        """
        if self._client is not None and self._lost is None and self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        await self._shutdown("aborted by the client", retryable=False)
