"""``AsyncThalovantClient``: the one implementation of the client (anyio; asyncio or trio).

The client plans its connection from an identity (:mod:`thalovant.core.client.plan`), runs the pure
:class:`~thalovant.core.client.connection.Connection` machine in a :class:`~thalovant.shell.runtime.ConnectionRuntime`,
waits for the machine's answers (:mod:`thalovant.shell.results`) and turns them into return values or exceptions
(:func:`thalovant.shell.outcomes.raise_for`). The core owns every protocol deadline; the client's own clock only
bounds ``connect()``. ``ThalovantClient`` (``shell/sync/client.py``) is a blocking facade over this class and
contains no protocol logic.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, Literal, Self

from thalovant.core.bus.hints import request_context
from thalovant.core.bus.outbound import action_message, code_message
from thalovant.core.bus.outbound import utterance_message as build_utterance
from thalovant.core.bus.reply import ThalovantReply
from thalovant.core.client import connection as cx
from thalovant.core.client import correlate as corr
from thalovant.core.client.health import ThalovantHealth
from thalovant.core.client.plan import (
    DEFAULT_HTTP_POLL,
    DEFAULT_USERAGENT,
    ClientOptions,
    build_plan,
    choose_protocol,
)
from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.doctor import ThalovantDoctorReport
from thalovant.core.links.http_wire import HttpPollConfig
from thalovant.core.links.liveness import LivenessConfig
from thalovant.core.wire.message import BusMessage
from thalovant.shell.arguments import check_seconds
from thalovant.shell.client_binary import ClientBinary
from thalovant.shell.client_doctor import doctor_through
from thalovant.shell.client_events import ClientEvents
from thalovant.shell.client_info import ClientInfo
from thalovant.shell.client_keys import ClientKeys
from thalovant.shell.client_mesh import ClientMesh
from thalovant.shell.client_options import reconnect_policy, settle_seconds
from thalovant.shell.composer import Composer, checked_identity
from thalovant.shell.conversation import AsyncThalovantConversation
from thalovant.shell.engine import endpoint_for
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.keys import NoiseKeyFile, noise_static_key
from thalovant.shell.links.epoch import Endpoint
from thalovant.shell.links.proxy import ProxyOption, proxy_policy
from thalovant.shell.outcomes import AskEnded, SendEnded, raise_for
from thalovant.shell.recording import TraceSink
from thalovant.shell.seam import engine_for, patched_transport, planning_inputs, transport_doctor
from thalovant.shell.tls import make_ssl_context

__all__ = ["DEFAULT_HTTP_POLL", "AsyncThalovantClient"]


class AsyncThalovantClient(ClientEvents, ClientInfo, ClientKeys, ClientBinary, ClientMesh):
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
        reconnect_attempts: 0.4.7's retry count: give up after this many more failed links in a row
            (deprecated, warns once: use ``reconnect=ReconnectConfig(max_attempts=...)``).
        reply_settle_seconds: once the hub ends a turn, keep collecting speech until this many seconds
            after the turn's first speech (default 0: the ask ends at once).
        ca_file: CA bundle for TLS (``wss``/``https``/``mqtts``); ``SSL_CERT_FILE`` is honoured.
        insecure: **development only**: do not verify TLS certificates (warns).
        self_signed: alias of ``insecure``.
        auth_encoding: ``"raw"`` (hub 4.x WebSocket, default) or ``"percent"`` (hub 5.x).
        session_id: the session id sent in HELLO (default: a fresh random one).
        mqtt_layout: ``"legacy"`` (hub 4.x plugin, default) or ``"modern"`` topics.
        noise_key_file: where this client's Noise (hub 5.x) static key is kept, created with mode 0600 on first
            use. Hub 5.x pins the key of a client on first contact and refuses any other, so it must survive
            restarts. Default: ``$XDG_STATE_HOME/thalovant/noise-keys/<hash of the access key>.key``; ``False``
            keeps a key in memory for this client object only. The hub's own key is pinned next to it on first
            contact (``hub-keys/``; in memory with ``False``): see ``forget_hub_key()``.
        keepalive: idle seconds before a keep-alive PING frame (default: 15 s on MQTT, where a
            restarted hub notices a client only when it sends something; off elsewhere).
        http: HTTP polling timing (``HttpPollConfig``); default ``DEFAULT_HTTP_POLL``.
        liveness: when a quiet WebSocket or MQTT link is probed and given up (``LivenessConfig(idle, timeout)``,
            default 10 s and 5 s): a stalled or half-open path becomes a link loss within ``idle + timeout``.
        trace: records the session's machine steps (e.g. ``thalovant.shell.recording.TraceWriter(path)``).
        proxy: HTTP proxy of the WebSocket and HTTP links: ``True`` (default) reads ``HTTPS_PROXY``/``HTTP_PROXY``/
            ``NO_PROXY``; ``None`` or ``False`` connect directly; ``"http://[user:password@]host[:port]"`` is used
            for every connection. MQTT never uses one. See the HTTP proxies guide.
        transport: talk through this, not the network: a ``thalovant.testing.MemoryHub`` or an object with 0.4.7's
            transport methods (``docs/guides/testing.md``); the identity then needs no endpoint for the protocol.

    Raises:
        ThalovantArgumentError: an argument has the wrong type or value (``thalovant.shell.arguments``).
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
        reconnect_attempts: int | None = None,
        reply_settle_seconds: float = 0.0,
        ca_file: str | None = None,
        insecure: bool = False,
        self_signed: bool | None = None,
        auth_encoding: Literal["raw", "percent"] = "raw",
        session_id: str | None = None,
        mqtt_layout: Literal["legacy", "modern"] = "legacy",
        http: HttpPollConfig | None = None,
        keepalive: float | None = None,
        liveness: LivenessConfig | None = None,
        noise_key_file: NoiseKeyFile = None,
        trace: TraceSink | None = None,
        proxy: ProxyOption = True,
        transport: object | None = None,
    ) -> None:
        identity = checked_identity(locals())  # every argument checked (typed errors) before anything happens
        self.identity: ThalovantIdentity = identity
        self.useragent = useragent
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.reply_timeout = reply_timeout
        self.reply_settle_seconds = settle_seconds(reply_settle_seconds)
        self.auto_reconnect = auto_reconnect
        self.reconnect_attempts = reconnect_attempts
        reconnect = reconnect_policy(
            reconnect=reconnect, reconnect_attempts=reconnect_attempts, auto_reconnect=auto_reconnect
        )
        self._entropy = os.urandom
        self._insecure = bool(insecure or self_signed)
        self._ca_file = ca_file
        self._noise_key_file = noise_key_file
        self._auth_encoding: Literal["raw", "percent"] = auth_encoding
        planned, key_file = planning_inputs(identity, transport, noise_key_file)  # a transport skips endpoint checks
        chosen = choose_protocol(planned, protocol)  # before the key file: a bad protocol creates no file
        waits = (connect_timeout, handshake_timeout, send_timeout)
        if transport is None and (patched := patched_transport(identity, chosen, useragent, waits)) is not None:
            transport = patched  # 0.4.7 code patched thalovant.client.HiveMind*Transport (thalovant.shell.seam)
            planned, key_file = planning_inputs(identity, transport, noise_key_file)
        self._transport = transport
        self._proxies = proxy_policy(proxy)
        key = noise_static_key(
            password=identity.password, access_key=identity.access_key, key_file=key_file, entropy=self._entropy
        )
        options = ClientOptions(
            protocol=chosen,
            useragent=useragent,
            handshake_timeout=handshake_timeout,
            queue_timeout=queue_timeout,
            max_queue=max_queue,
            auto_reconnect=auto_reconnect,
            auth_encoding=auth_encoding,
            mqtt_layout=mqtt_layout,
            session_id=session_id,
            reconnect=reconnect,
            http=http,
            keepalive=keepalive,
            liveness=liveness,
            noise_static_key=key,
        )
        self._plan = self._pinned_plan(build_plan(planned, options, entropy=self._entropy), key_file)
        self.protocol: Literal["wss", "https", "mqtt"] = self._plan.protocol
        self.session_id = self._plan.config.session_id
        self._composer = Composer(site_id=identity.site_id, metadata=identity.metadata, entropy=self._entropy)
        self._listeners, self._engine = engine_for(  # the network, or transport= (thalovant.shell.seam)
            transport, self._plan, self._endpoint, identity, self._entropy, trace, (connect_timeout, send_timeout)
        )
        self._engine.hub_endpoint = self._hub_keys.endpoint

    def _endpoint(self) -> Endpoint:
        """Where the client dials when it has no ``transport=``."""
        return replace(endpoint_for(self._plan, self._ssl), proxy=self._proxies)

    def __repr__(self) -> str:
        state, site = self._engine.status.value, self.identity.site_id
        return f"<AsyncThalovantClient protocol={self.protocol} state={state} site={site!r}>"

    # ---- construction helpers -------------------------------------------------------------------

    def _ssl(self) -> ssl.SSLContext:
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
        """Whether the session is ready: the link is open and its handshake is done."""
        return self._engine.status is cx.ConnectionState.READY

    async def connect(self, timeout: float | None = None) -> None:
        """Connect and finish the handshake within ``timeout`` seconds (None: ``connect_timeout``); no-op when
        connected. A connect that runs out of time leaves nothing open (docs/guides/connection.md).

        Raises:
            ThalovantAuthenticationError: the hub refused the credentials (``ThalovantClientKeyRejectedError``:
                hub 5.x pinned another Noise key for this client).
            ThalovantHubKeyChangedError: hub 5.x presented another key than the pinned one (``forget_hub_key``).
            ThalovantTimeoutError: no ready session within the timeout.
            ThalovantConnectionError: the hub cannot be reached.
            ThalovantArgumentError: ``timeout`` is not a positive number of seconds.
        """
        wait = self.connect_timeout if timeout is None else check_seconds("timeout", timeout)
        failed = await self._settled_within(wait)  # start, settle, then hub 5.x key pins (client_keys.py)
        if failed is not None:  # a connect that fails or runs out of time closes all it opened, even late
            await self.close()
            raise_for(failed)

    async def close(self, timeout: float | None = None) -> None:
        """Close the connection (politely where the transport allows). Idempotent; never raises on a slow hub.

        ``timeout``: seconds the polite goodbye may take (default 2 s); past it the link is dropped, so
        ``close()`` returns within ``timeout`` (+0.2 s) whatever the hub does. ``0`` drops it at once.

        Raises:
            ThalovantArgumentError: ``timeout`` is not a non-negative number of seconds.
        """
        grace = None if timeout is None else check_seconds("timeout", timeout, zero=True)
        await self._engine.stop("the client was closed", grace)

    async def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until a ``close()`` (from any task) has finished; True once closed, False if ``timeout`` ran out.

        A client never connected counts as closed. ``timeout``: seconds (None: no limit).

        Raises:
            ThalovantArgumentError: ``timeout`` is not a non-negative number of seconds.
        """
        wait = None if timeout is None else check_seconds("timeout", timeout, zero=True)
        return await self._engine.wait_closed(wait)

    disconnect = close

    # ---- sending --------------------------------------------------------------------------------

    async def emit(
        self, event: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        """Send the raw bus event ``event`` with ``data`` (None: ``{}``) and ``context`` (no correlation added).

        Raises:
            ThalovantConnectionError: the message could not be delivered (link lost, closed).
            ThalovantTimeoutError: not handed to the hub within ``send_timeout``.
        """
        await self._deliver(self._composer.event(event, data, context))

    async def _first_use(self) -> None:
        """A client never connected connects on its first send or ask, as 0.4.7's did (a closed one stays closed)."""
        if self._engine.status is cx.ConnectionState.IDLE and self._engine.runtime is None:
            await self.connect()

    async def _deliver(self, message: BusMessage) -> None:
        """Send ``message`` and wait until the core says the transport took it (or why not)."""
        await self._first_use()
        sent = await self._engine.send(message, self.send_timeout)
        raise_for(SendEnded(result=sent, wait=self.send_timeout))

    async def _fire(self, turn: tuple[BusMessage, str]) -> str:
        """Send a turn's message and wait until the transport took it; returns its request id."""
        message, rid = turn
        await self._deliver(message)
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
        """Send ``text`` (an utterance) without waiting for the answer. Returns its request id.

        ``lang``: its language tag; ``context``: merged into the message's context; ``session_id``: set as
        ``context.session.session_id`` (None: not set); ``request_id``: default a fresh one.
        """
        turn = self._composer.turn(build_utterance, text, lang, context, session_id, request_id)
        return await self._fire(turn)

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
        """Send the press of a button/quick reply ``payload`` labelled ``title`` (``input.kind == "action"``).

        Returns its request id. ``lang``, ``context``, ``session_id``, ``request_id``: see :meth:`send_utterance`.
        """
        turn = self._composer.turn(action_message, payload, lang, context, session_id, request_id, title=title)
        return await self._fire(turn)

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
        """Send a scanned or typed code ``value`` (of ``kind``, labelled ``label``), taken verbatim (``input.exact``).

        Returns its request id. ``lang``, ``context``, ``session_id``, ``request_id``: see :meth:`send_utterance`.
        """
        turn = self._composer.turn(code_message, value, lang, context, session_id, request_id, kind=kind, label=label)
        return await self._fire(turn)

    async def ask(
        self,
        text: str,
        *,
        lang: str = "en-us",
        context: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
        stt_lang: str | None = None,
        pipeline: Sequence[str] | None = None,
        location: Mapping[str, Any] | None = None,
        raise_unanswered: bool = False,
        synth: bool = False,
    ) -> ThalovantReply:
        """Send an utterance and wait until the hub says the turn is handled.

        ``text``, ``lang``, ``context``, ``session_id``, ``request_id``: see :meth:`send_utterance`.
        ``stt_lang``, ``pipeline``, ``location``: request hints merged into the context
        (:func:`thalovant.request_context`; checked before anything is sent). ``raise_unanswered``:
        raise :class:`thalovant.ThalovantUnansweredError` instead of returning an unanswered reply.
        ``synth``: have the hub render the speech (``speak:synth``) into ``reply.audio``, waiting within ``timeout``.

        Returns:
            The reply. ``reply.unanswered``: no skill matched; ``reply.timed_out``: speech arrived but the end
            signal did not. With ``reply_settle_seconds``, speech up to that long after the first one is included.

        Raises:
            ThalovantPolicyDenied: the hub refused the utterance.
            ThalovantTimeoutError: nothing at all came back within ``timeout`` seconds (None: ``reply_timeout``).
            ThalovantConnectionError: the link dropped while waiting (raised at once).
            ThalovantArgumentError, ThalovantArgumentTypeError: ``timeout`` is not a number of seconds.
        """
        wait = self.reply_timeout if timeout is None else check_seconds("timeout", timeout)
        context = request_context(context, stt_lang=stt_lang, pipeline=pipeline, location=location)
        message, rid = self._composer.turn(build_utterance, text, lang, context, session_id, request_id)
        hold: dict[str, Any] = {"settle": self.reply_settle_seconds, "synth": bool(synth)}
        await self._first_use()
        sent, ended = await self._engine.ask(message, ask_id=rid, session_id=session_id, wait=wait, **hold)
        if isinstance(sent, cx.SendError) and sent.kind != "link_lost":
            raise_for(SendEnded(result=sent, wait=wait))
        raise_for(AskEnded(result=ended, wait=wait))
        assert isinstance(ended, corr.AskFinished)  # raise_for lets only a success through
        return ended.reply.raise_for_unanswered(text.strip()) if raise_unanswered else ended.reply

    # ---- events: listen, wait_for_event, on (shell/client_events.py) --------------------------------

    def conversation(
        self, *, lang: str = "en-us", session_id: str | None = None, context: Mapping[str, Any] | None = None
    ) -> AsyncThalovantConversation:
        """A conversation: turns that share a session id (``async with client.conversation() as convo``).

        ``lang`` and ``context`` apply to each of its turns; ``session_id`` defaults to a fresh one.
        """
        return AsyncThalovantConversation(self, session_id=session_id, lang=lang, context=context)

    # ---- health ---------------------------------------------------------------------------------

    async def doctor(self, *, timeout: float = 10.0) -> ThalovantDoctorReport:
        """Check, step by step, why this client can or cannot talk to its hub; never raises for network trouble.

        Checks identity, endpoint, DNS, TCP, TLS, admission, then the handshake and the live link through this
        client when it is connected, else through a short-lived probe client. Each check may take ``timeout``
        seconds. A failed check skips the later ones with a hint. No secret appears in the report.
        Note: the admission check opens (and closes) its own hub connection; on HTTP and MQTT, where
        hub 4.x keeps one connection per access key, a connected client may have to reconnect.
        """
        if self._transport is not None:
            return await transport_doctor(self, self._transport, timeout)
        return await doctor_through(
            self,
            lambda: self._probe(timeout),
            identity=self.identity,
            link_words=self._plan.link_words,
            timeout=timeout,
            ca_file=self._ca_file,
            insecure=self._insecure,
            useragent=self.useragent,
            auth_encoding=self._auth_encoding,
        )

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

    async def healthcheck(self) -> ThalovantHealth:
        """A snapshot of the connection (connects first when not connected)."""
        if self._engine.runtime is None:
            await self.connect()
        return self._engine.health()
