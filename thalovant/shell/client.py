"""``AsyncThalovantClient``: the one implementation of the client (anyio; asyncio or trio).

The client turns an identity into a :class:`~thalovant.core.client.connection.ConnectionConfig`,
runs the pure :class:`~thalovant.core.client.connection.Connection` machine in a
:class:`~thalovant.shell.runtime.ConnectionRuntime`, and turns the machine's
results into return values and exceptions. ``ThalovantClient`` (``shell/sync.py``)
is a blocking facade over this class and contains no protocol logic.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import anyio
import anyio.abc

from thalovant.core.bus.events import EventFilter, ThalovantEvent
from thalovant.core.bus.outbound import action_message, code_message, merge_context, new_request_id, new_session_id
from thalovant.core.bus.outbound import utterance_message as build_utterance
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client import connection as cx
from thalovant.core.client import correlate as corr
from thalovant.core.client.health import ThalovantHealth
from thalovant.core.client.plan import DEFAULT_USERAGENT
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.errors import (
    LocalProtocolError,
    ThalovantAuthenticationError,
    ThalovantConnectionError,
    ThalovantPolicyDenied,
    ThalovantTimeoutError,
)
from thalovant.core.identity.protocols import normalize_protocol
from thalovant.core.links.http_wire import HttpPollConfig
from thalovant.core.links.mqtt_topics import MqttLayout, TopicOverrides
from thalovant.core.machine import Output
from thalovant.core.trace import RecordingEntropy
from thalovant.core.wire.message import BusMessage
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.links.http import split_url
from thalovant.shell.listeners import EventHandler, EventPredicate, Listener, ListenerRegistry, Subscription
from thalovant.shell.runtime import ConnectionRuntime, Endpoint, Timeouts
from thalovant.shell.tls import make_ssl_context

if TYPE_CHECKING:
    from thalovant.core.doctor import ThalovantDoctorReport
    from thalovant.shell.conversation import AsyncThalovantConversation
    from thalovant.shell.recording import TraceSink


def _default_noise_key_path(identity: ThalovantIdentity) -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    name = hashlib.sha256(identity.access_key.encode("utf-8")).hexdigest()[:24]
    return Path(state) / "thalovant" / "noise-keys" / f"{name}.key"


def load_or_create_key(path: Path, entropy: Any, size: int = 32) -> bytes:
    """Read a raw key file, or create it (mode 0600, parent 0700) with fresh random bytes."""
    try:
        data = path.read_bytes()
        if len(data) == size:
            return data
        log.warning("ignoring a malformed key file (%d bytes, expected %d); writing a new one", len(data), size)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key: bytes = entropy(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


log = logging.getLogger("thalovant")

#: HTTP polling used when ``http`` is not given: the hot-window interval grows by 1.2 per empty poll, which
#: cut the hub's work for an ask followed by a quiet second from ~170 requests to ~27 with the same ask
#: latency (``benchmarks/NOTES.md``).
DEFAULT_HTTP_POLL = HttpPollConfig(hot_growth=1.2)
_DEFAULT_PORTS = {"ws": 80, "wss": 443, "http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883, "tcp": 1883, "ssl": 8883}


class _Slot:
    """A one-shot result, set on the event loop thread."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.value: Output | None = None

    def set(self, value: Output) -> None:
        if self.value is None:
            self.value = value
            self.event.set()


class AsyncThalovantClient:
    """Async client for a HiveMind hub over WebSocket, HTTP polling or MQTT.

    Use ``async with AsyncThalovantClient(identity) as client:``; ``connect()``
    and ``close()`` also work when called from the same task.

    Args:
        identity: a :class:`~thalovant.ThalovantIdentity` (or its mapping form).
        protocol: ``"wss"``/``"ws"``, ``"https"``/``"http"`` or ``"mqtt"``;
            default: the identity's first enabled protocol.
        useragent: sent to the hub (part of the peer id); must not contain ``:``.
        connect_timeout: seconds ``connect()`` waits for a ready session.
        handshake_timeout: seconds one link may spend on its handshake.
        send_timeout: seconds ``emit`` waits for the transport to take a message.
        reply_timeout: default ``ask`` timeout.
        queue_timeout: seconds a message may wait while the link is down.
        max_queue: messages held while the link is down.
        auto_reconnect: reconnect in the background after a link loss.
        reconnect: backoff policy (``ReconnectConfig``).
        ca_file: CA bundle for TLS (``wss``/``https``/``mqtts``); ``SSL_CERT_FILE`` is honoured.
        insecure: **development only**: do not verify TLS certificates (warns).
        self_signed: alias of ``insecure``.
        auth_encoding: ``"raw"`` (hub 4.x WebSocket, default) or ``"percent"`` (hub 5.x).
        session_id: the session id sent in HELLO (default: a fresh random one).
        mqtt_layout: ``"legacy"`` (hub 4.x plugin, default) or ``"modern"`` topics.
        noise_key_file: where this client's Noise (hub 5.x) static key is kept, created with mode
            0600 on first use. Hub 5.x pins the key of a client on first contact and refuses any
            other, so it must survive restarts. Default:
            ``$XDG_STATE_HOME/thalovant/noise-keys/<hash of the access key>.key``; ``False`` keeps
            a key in memory for this client object only.
        keepalive: idle seconds before a keep-alive PING frame (default: 15 s on MQTT, where a
            restarted hub notices a client only when it sends something; off elsewhere).
        http: HTTP polling timing (``HttpPollConfig``); default ``DEFAULT_HTTP_POLL``.
        trace: records the session's machine steps (e.g. ``thalovant.shell.recording.TraceWriter(path)``).

    Raises:
        ThalovantUnsupportedProtocolError: the protocol is unknown or not configured.
        ThalovantIdentityError: the identity is invalid.
    """

    def __init__(
        self,
        identity: ThalovantIdentity | Mapping[str, Any],
        *,
        protocol: str | None = None,
        useragent: str = DEFAULT_USERAGENT,
        connect_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        send_timeout: float = 10.0,
        reply_timeout: float = 12.0,
        queue_timeout: float = 5.0,
        max_queue: int = 256,
        auto_reconnect: bool = True,
        reconnect: ReconnectConfig | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        self_signed: bool | None = None,
        auth_encoding: Literal["raw", "percent"] = "raw",
        session_id: str | None = None,
        mqtt_layout: Literal["legacy", "modern"] = "legacy",
        http: HttpPollConfig | None = None,
        keepalive: float | None = None,
        noise_key_file: str | os.PathLike[str] | Literal[False] | None = None,
        trace: TraceSink | None = None,
    ) -> None:
        if not isinstance(identity, ThalovantIdentity):
            identity = ThalovantIdentity.from_mapping(identity)
        self.identity: ThalovantIdentity = identity
        enabled = identity.enabled_protocols()
        chosen = normalize_protocol(protocol) if protocol is not None else (enabled[0] if enabled else "https")
        identity.require_protocol(chosen)
        self.protocol: Literal["wss", "https", "mqtt"] = chosen
        self.useragent = useragent
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.reply_timeout = reply_timeout
        self._entropy = os.urandom
        self._trace = trace
        if reconnect is None:
            reconnect = ReconnectConfig() if auto_reconnect else ReconnectConfig(max_attempts=1)
        self._insecure = bool(insecure or self_signed)
        self._ca_file = ca_file
        self.session_id = session_id or new_session_id(self._entropy)
        self._keepalive = keepalive if keepalive is not None else (15.0 if self.protocol == "mqtt" else None)
        self._noise_key_file = noise_key_file
        self._auth_encoding: Literal["raw", "percent"] = auth_encoding
        self._config, self._endpoint = self._plan(
            handshake_timeout, queue_timeout, max_queue, reconnect, auth_encoding, mqtt_layout, http
        )
        self._timeouts = Timeouts(connect=connect_timeout, send=send_timeout, http_request=send_timeout)
        self._listeners = ListenerRegistry()
        self._refs = itertools.count(1)
        self._sends: dict[int, _Slot] = {}
        self._asks: dict[str, _Slot] = {}
        self._status = cx.ConnectionState.IDLE
        self._status_detail = ""
        self._generation: int | None = None
        self._epoch = 0
        self._ready: anyio.Event | None = None  # created on the event loop by connect()
        self._settled: anyio.Event | None = None
        self._stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._runtime: ConnectionRuntime | None = None
        self._gave_up: str | None = None
        self._gave_up_auth = False

    def __repr__(self) -> str:
        return (
            f"<AsyncThalovantClient protocol={self.protocol} state={self._status.value} site={self.identity.site_id!r}>"
        )

    # ---- construction helpers -------------------------------------------------------------------

    @classmethod
    def from_identity_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> Self:
        """Load an identity file and build a client (see the class for ``kwargs``)."""
        return cls(ThalovantIdentity.from_file(path), **kwargs)

    @classmethod
    def from_env(cls, prefix: str = "THALOVANT_", **kwargs: Any) -> Self:
        """Build a client from ``THALOVANT_*`` environment variables."""
        return cls(ThalovantIdentity.from_env(prefix), **kwargs)

    def _plan(
        self,
        handshake_timeout: float,
        queue_timeout: float,
        max_queue: int,
        reconnect: ReconnectConfig,
        auth_encoding: Literal["raw", "percent"],
        mqtt_layout: str,
        http: HttpPollConfig | None,
    ) -> tuple[cx.ConnectionConfig, Endpoint]:
        ident = self.identity
        base: dict[str, Any] = {
            "protocol": self.protocol,
            "useragent": self.useragent,
            "session_id": self.session_id,
            "site_id": ident.site_id,
            "access_key": ident.access_key,
            "password": ident.password,
            "crypto_key": ident.runtime_crypto_key,
            "handshake_timeout": handshake_timeout,
            "queue_timeout": queue_timeout,
            "max_queue": max_queue,
            "reconnect": reconnect,
            "auth_encoding": auth_encoding,
            "keepalive": self._keepalive,
            "v3_options": (("static_key", self._noise_static_key()),) if ident.password else (),
        }
        if self.protocol == "mqtt":
            creds = ident.mqtt
            assert creds is not None  # require_protocol checked it
            scheme = creds.endpoint.split("://", 1)[0].lower()
            tls = creds.tls or scheme in ("mqtts", "ssl")
            overrides = None
            if creds.c2s_topic or creds.s2c_topic or creds.status_topic:
                overrides = TopicOverrides(c2s=creds.c2s_topic, s2c=creds.s2c_topic, status=creds.status_topic)
            base.update(
                mqtt_topic_prefix=creds.topic_prefix or "",
                mqtt_overrides=overrides,
                mqtt_qos=creds.qos,
                mqtt_layout=MqttLayout.MODERN if mqtt_layout == "modern" else MqttLayout.LEGACY,
            )
            endpoint = Endpoint(
                host=creds.host,
                port=creds.port,
                tls=self._ssl() if tls else None,
                mqtt_username=creds.username,
                mqtt_password=creds.password,
            )
            return cx.ConnectionConfig(**base), endpoint
        url = ident.require_protocol(self.protocol)
        parts = split_url(url)
        secure = parts.scheme in ("https", "wss")
        endpoint = Endpoint(host=parts.host, port=parts.port, tls=self._ssl() if secure else None)
        if self.protocol == "https":
            path = parts.path.rstrip("/")
            base["http"] = http or DEFAULT_HTTP_POLL
            base["http_base_path"] = path if path.startswith("/") else ""
        return cx.ConnectionConfig(**base), endpoint

    def _noise_static_key(self) -> bytes:
        """The persistent Noise static key of this identity (created on first use)."""
        if self._noise_key_file is False:
            return self._entropy(32)
        path = Path(self._noise_key_file) if self._noise_key_file else _default_noise_key_path(self.identity)
        return load_or_create_key(path, self._entropy)

    def _ssl(self) -> Any:
        return make_ssl_context(ca_file=self._ca_file, insecure=self._insecure)

    # ---- life cycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._status is cx.ConnectionState.READY

    async def connect(self) -> None:
        """Connect and finish the handshake; no-op when already connected.

        Raises:
            ThalovantAuthenticationError: the hub refused the credentials.
            ThalovantTimeoutError: no ready session within ``connect_timeout``.
            ThalovantConnectionError: the hub cannot be reached.
        """
        if self._runtime is None:
            await self._start()
        assert self._ready is not None and self._settled is not None
        with anyio.move_on_after(self.connect_timeout):
            await self._settled.wait()
        if self._status is cx.ConnectionState.READY:
            return
        error = self._connect_error()
        await self.close()
        raise error

    def _connect_error(self) -> Exception:
        if self._gave_up is not None:
            if self._gave_up_auth:
                return ThalovantAuthenticationError(f"the hub refused the credentials: {self._gave_up}")
            return ThalovantConnectionError(
                f"could not connect to the hub ({self.protocol}): {self._gave_up}", retryable=False
            )
        detail = f" (last error: {self._status_detail})" if self._status_detail else ""
        return ThalovantTimeoutError(f"no ready session with the hub within {self.connect_timeout:g} s{detail}")

    async def _start(self) -> None:
        self._ready = anyio.Event()
        self._settled = anyio.Event()
        self._gave_up = None
        entropy: Any = self._entropy
        recorder = None
        if self._trace is not None:  # record the machine's steps (thalovant.shell.recording)
            entropy = RecordingEntropy(self._entropy)
            recorder = self._trace.begin(self._config)
        machine = cx.Connection(config=self._config, entropy=entropy)
        self._runtime = ConnectionRuntime(
            machine,
            endpoint=self._endpoint,
            outcomes=self._on_output,
            timeouts=self._timeouts,
            recorder=recorder,
            entropy=entropy if recorder is not None else None,
        )
        stack = AsyncExitStack()
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        self._tg.start_soon(self._runtime.run)
        await self._runtime.post(cx.Connect())

    async def close(self) -> None:
        """Close the connection (politely where the transport allows). Idempotent."""
        runtime, stack = self._runtime, self._stack
        if runtime is None or stack is None:
            return
        self._runtime = self._stack = None
        with anyio.CancelScope(shield=True):
            if await runtime.post(cx.Disconnect()):
                with anyio.move_on_after(2.0):
                    await runtime.done.wait()
        runtime.stop()
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await stack.aclose()  # the task group must be exited outside any scope opened here
        self._tg = None
        self._status = cx.ConnectionState.CLOSED
        self._listeners.fail_all(ThalovantConnectionError("the client was closed"))
        for slot in [*self._sends.values(), *self._asks.values()]:
            slot.set(cx.SendError(ref=0, reason="the client was closed", kind="closed"))

    disconnect = close

    # ---- outcomes from the runtime (event loop thread) -------------------------------------------

    def _on_output(self, output: Output) -> None:
        if isinstance(output, cx.EventDelivered):
            self._listeners.publish(output.event)
        elif isinstance(output, cx.SendDone | cx.SendError):
            slot = self._sends.pop(output.ref, None)
            if slot is not None:
                slot.set(output)
        elif isinstance(output, corr.AskFinished | corr.AskFailed):
            slot = self._asks.pop(output.ask_id, None)
            if slot is not None:
                slot.set(output)
        elif isinstance(output, cx.StatusChanged):
            self._on_status(output)
        elif isinstance(output, corr.UnattributedDenial):
            log.warning("the hub refused a message: %s", output.denial.message())

    def _on_status(self, status: cx.StatusChanged) -> None:
        self._status = status.state
        self._status_detail = status.detail
        self._epoch = status.epoch
        if status.generation is not None:
            self._generation = status.generation
        assert self._ready is not None and self._settled is not None
        if status.state is cx.ConnectionState.READY:
            self._ready.set()
            self._settled.set()
            log.info("connected to the hub over %s (protocol v%s)", self.protocol, status.generation)
        elif status.state is cx.ConnectionState.GAVE_UP:
            self._gave_up = status.detail
            self._gave_up_auth = status.auth
            self._settled.set()
            self._listeners.fail_all(self._connect_error())
        elif status.state is cx.ConnectionState.CONNECTING and self._ready.is_set():
            self._ready = anyio.Event()
            log.warning("link to the hub lost; reconnecting (%s)", status.detail)

    # ---- sending --------------------------------------------------------------------------------

    def _require_runtime(self) -> ConnectionRuntime:
        if self._runtime is None:
            raise ThalovantConnectionError("the client is not connected: use 'async with client' or connect()")
        return self._runtime

    async def _send(self, message: BusMessage, *, wait: float, ask: corr.AskStarted | None = None) -> _Slot:
        runtime = self._require_runtime()
        ref = next(self._refs)
        slot = _Slot()
        self._sends[ref] = slot
        deadline = anyio.current_time() + wait
        await runtime.post(cx.SendRequested(ref=ref, message=message, deadline=deadline, ask=ask))
        return slot

    def _base_context(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        metadata = self.identity.metadata
        return merge_context({"metadata": dict(metadata)} if metadata else None, context)

    async def emit(
        self, event: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        """Send a raw bus event (no correlation is added).

        Raises:
            ThalovantConnectionError: the message could not be delivered (link lost, closed).
            ThalovantTimeoutError: not handed to the hub within ``send_timeout``.
        """
        if not isinstance(event, str) or not event.strip():
            raise ValueError("event must be a non-empty string")
        message = BusMessage(type=event, data=dict(data or {}), context=self._base_context(context))
        slot = await self._send(message, wait=self.send_timeout)
        await self._await_send(slot, self.send_timeout)

    async def _await_send(self, slot: _Slot, wait: float) -> None:
        with anyio.move_on_after(wait + 1.0):
            await slot.event.wait()
        result = slot.value
        if isinstance(result, cx.SendDone):
            return
        if isinstance(result, cx.SendError):
            if result.kind == "timeout":
                raise ThalovantTimeoutError(f"message not delivered: {result.reason}")
            raise ThalovantConnectionError(f"message not delivered: {result.reason}", retryable=result.kind != "closed")
        raise ThalovantTimeoutError(f"the transport did not take the message within {wait:g} s")

    def _utterance(
        self,
        builder: Any,
        value: str,
        *,
        lang: str,
        context: Mapping[str, Any] | None,
        session_id: str | None,
        request_id: str | None,
        **extra: Any,
    ) -> tuple[BusMessage, str]:
        rid = request_id or new_request_id(self._entropy)
        message = builder(
            value,
            request_id=rid,
            lang=lang,
            session_id=session_id,
            site_id=self.identity.site_id,
            context=context,
            metadata=self.identity.metadata or None,
            **extra,
        )
        return message, rid

    async def _fire(self, builder: Any, value: str, **kwargs: Any) -> str:
        """Build one correlated utterance-like message, send it, wait until the transport took it."""
        message, rid = self._utterance(builder, value, **kwargs)
        await self._await_send(await self._send(message, wait=self.send_timeout), self.send_timeout)
        return rid

    async def send_utterance(
        self,
        text: str,
        *,
        lang: str = "en-us",
        context: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
    ) -> str:
        """Send an utterance without waiting for the answer. Returns its request id."""
        return await self._fire(
            build_utterance, text, lang=lang, context=context, session_id=session_id, request_id=request_id
        )

    async def send_action(
        self,
        payload: str,
        *,
        title: str | None = None,
        lang: str = "en-us",
        context: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
    ) -> str:
        """Send a button/quick-reply press (``input.kind == "action"``). Returns its request id."""
        return await self._fire(
            action_message,
            payload,
            lang=lang,
            context=context,
            session_id=session_id,
            request_id=request_id,
            title=title,
        )

    async def send_code(
        self,
        value: str,
        *,
        kind: str = "code",
        label: str | None = None,
        lang: str = "en-us",
        context: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
    ) -> str:
        """Send a scanned or typed code, to be taken verbatim (``input.exact``). Returns its request id."""
        return await self._fire(
            code_message,
            value,
            lang=lang,
            context=context,
            session_id=session_id,
            request_id=request_id,
            kind=kind,
            label=label,
        )

    async def ask(
        self,
        text: str,
        *,
        lang: str = "en-us",
        context: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> ThalovantReply:
        """Send an utterance and wait until the hub says the turn is handled.

        Returns:
            The reply. ``reply.unanswered`` is True when no skill matched;
            ``reply.timed_out`` when speech arrived but the end signal did not.

        Raises:
            ThalovantPolicyDenied: the hub refused the utterance.
            ThalovantTimeoutError: nothing at all came back within ``timeout``.
            ThalovantConnectionError: the link dropped while waiting (raised at once).
        """
        return await self._ask_message(
            build_utterance,
            text,
            lang=lang,
            context=context,
            session_id=session_id,
            request_id=request_id,
            timeout=timeout,
        )

    async def _ask_message(
        self,
        builder: Any,
        value: str,
        *,
        lang: str,
        context: Mapping[str, Any] | None,
        session_id: str | None,
        request_id: str | None,
        timeout: float | None,
        **extra: Any,
    ) -> ThalovantReply:
        wait = self.reply_timeout if timeout is None else timeout
        message, rid = self._utterance(
            builder, value, lang=lang, context=context, session_id=session_id, request_id=request_id, **extra
        )
        deadline = anyio.current_time() + wait
        started = corr.AskStarted(
            ask_id=rid, request_id=rid, session_id=session_id, msg_type=message.type, deadline=deadline
        )
        ask_slot = _Slot()
        self._asks[rid] = ask_slot
        send_slot = await self._send(message, wait=wait, ask=started)
        with anyio.move_on_after(wait + 1.0):
            await send_slot.event.wait()
            if isinstance(send_slot.value, cx.SendError) and send_slot.value.kind != "link_lost":
                self._asks.pop(rid, None)
                await self._await_send(send_slot, wait)  # raises the matching error
            await ask_slot.event.wait()
        return self._ask_result(rid, ask_slot, wait)

    def _ask_result(self, rid: str, slot: _Slot, wait: float) -> ThalovantReply:
        self._asks.pop(rid, None)
        result = slot.value
        if isinstance(result, corr.AskFinished):
            return result.reply
        if isinstance(result, corr.AskFailed):
            if result.kind == "policy_denied" and result.denial is not None:
                d = result.denial
                raise ThalovantPolicyDenied(d.message(), **d.exception_fields(), event=result.reply.failure_event)
            if result.kind == "timeout":
                raise ThalovantTimeoutError(f"the hub did not answer within {wait:g} s")
            if result.kind == "link_lost":
                raise ThalovantConnectionError(f"the link to the hub was lost during the ask: {result.reason}")
            raise ThalovantConnectionError(f"the ask ended without an answer: {result.reason or result.kind}")
        if isinstance(result, cx.SendError):
            raise ThalovantConnectionError(f"the ask was not delivered: {result.reason}")
        if self._runtime is not None:
            self._runtime.post_nowait(cx.CancelAsk(ask_id=rid))
        raise ThalovantTimeoutError(f"the hub did not answer within {wait:g} s")

    # ---- events ---------------------------------------------------------------------------------

    def listen(
        self,
        event: str | EventFilter = "*",
        *,
        timeout: float | None = None,
        max_events: int | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        predicate: EventPredicate | None = None,
        buffer: int = 1000,
    ) -> Listener:
        """Iterate over matching events (``async for event in client.listen("speak")``).

        Listeners survive reconnects. The iteration ends quietly at ``timeout``
        (seconds, in total) or after ``max_events``; it raises
        ``ThalovantConnectionError`` if the client gives up reconnecting.
        """
        flt = (
            event
            if isinstance(event, EventFilter)
            else EventFilter(types=(event,), session_id=session_id, request_id=request_id)
        )
        return self._listeners.add(
            Listener(self._listeners, flt, predicate=predicate, timeout=timeout, max_events=max_events, buffer=buffer)
        )

    async def wait_for_event(
        self,
        event: str | EventFilter,
        *,
        timeout: float | None = None,
        predicate: EventPredicate | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
    ) -> ThalovantEvent:
        """The next matching event.

        Raises:
            ThalovantTimeoutError: none arrived in time.
        """
        wait = self.reply_timeout if timeout is None else timeout
        async for found in self.listen(
            event, timeout=wait, max_events=1, predicate=predicate, session_id=session_id, request_id=request_id
        ):
            return found
        raise ThalovantTimeoutError(f"the hub did not emit {event!r} within {wait:g} s")

    def on(
        self,
        event: str | EventFilter,
        handler: EventHandler,
        *,
        predicate: EventPredicate | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        _call: Any = None,
    ) -> Subscription:
        """Call ``handler(event)`` for each matching event until the subscription is closed.

        The handler may be a plain function or a coroutine function; it may call
        the client itself. A handler that raises is logged and kept.
        """
        if self._tg is None:
            raise LocalProtocolError("on() needs a connected client (inside 'async with client')")
        listener = self.listen(event, predicate=predicate, session_id=session_id, request_id=request_id)
        name = event if isinstance(event, str) else ",".join(event.types)
        sub = Subscription(listener, handler, name, call=_call)
        self._tg.start_soon(sub.run)
        return sub

    def conversation(
        self, *, lang: str = "en-us", session_id: str | None = None, context: Mapping[str, Any] | None = None
    ) -> AsyncThalovantConversation:
        """A conversation: turns that share a session id (``async with client.conversation() as convo``)."""
        from thalovant.shell.conversation import AsyncThalovantConversation

        return AsyncThalovantConversation(self, session_id=session_id, lang=lang, context=context)

    # ---- health ---------------------------------------------------------------------------------

    async def doctor(self, *, timeout: float = 10.0) -> ThalovantDoctorReport:
        """Check, step by step, why this client can or cannot talk to its hub; never raises for network trouble.

        Checks identity, endpoint, DNS, TCP, TLS, admission, then the handshake and the live link
        through this client when it is connected, else through a short-lived probe client. A
        failed check skips the later ones with a hint. No secret appears in the report.
        Note: the admission check opens (and closes) its own hub connection; on HTTP and MQTT, where
        hub 4.x keeps one connection per access key, a connected client may have to reconnect.
        """
        from thalovant.shell.doctor import run_doctor

        probe = self if self.connected else self._probe(timeout)

        async def handshake() -> str:
            if probe is not self:
                await probe.connect()
            return f"handshake complete over {probe.protocol} (protocol v{probe._generation})"

        async def link() -> str:
            health = await probe.healthcheck()
            if not health.ok:
                raise ThalovantConnectionError(health.last_error or "the link is not alive")
            return f"{probe.protocol} link alive ({self._link_words()})"

        try:
            return await run_doctor(
                self.identity,
                protocol=self.protocol,
                timeout=timeout,
                ca_file=self._ca_file,
                insecure=self._insecure,
                handshake_probe=handshake,
                link_probe=link,
                useragent=self.useragent,
                auth_encoding=self._auth_encoding,
            )
        finally:
            if probe is not self:
                await probe.close()

    def _probe(self, timeout: float) -> AsyncThalovantClient:
        return AsyncThalovantClient(
            self.identity,
            protocol=self.protocol,
            useragent=self.useragent,
            connect_timeout=timeout,
            auto_reconnect=False,
            ca_file=self._ca_file,
            insecure=self._insecure,
            auth_encoding=self._auth_encoding,
            noise_key_file=self._noise_key_file,
        )

    def _link_words(self) -> str:
        return {"https": "polling", "wss": "WebSocket open", "mqtt": "MQTT connected"}[self.protocol]

    async def healthcheck(self) -> ThalovantHealth:
        """A snapshot of the connection (connects first when not connected)."""
        if self._runtime is None:
            await self.connect()
        ready = self._status is cx.ConnectionState.READY
        alive = self._runtime is not None and self._status not in (
            cx.ConnectionState.GAVE_UP,
            cx.ConnectionState.CLOSED,
        )
        return ThalovantHealth(
            connected=ready,
            handshake_complete=ready,
            transport_alive=alive,
            last_error=None if ready else (self._status_detail or None),
            protocol=self.protocol,
            generation=self._generation,
            reconnects=max(0, self._epoch - 1),
        )
