"""What one epoch of a :class:`~thalovant.core.client.connection.Connection` is made of.

Each link attempt (an *epoch*) starts from nothing: a new :class:`Epoch` with a fresh session
(:func:`new_session`, set up for the transport's wire) and a fresh link machine
(:func:`new_link`). The connection routes between the two; facts from an older epoch's link
are ignored, so nothing of a dead link can leak into the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from thalovant.core.client.connection_events import ConnectionConfig
from thalovant.core.links.http_poll import HttpPoll
from thalovant.core.links.mqtt_map import MqttMap
from thalovant.core.links.mqtt_topics import MqttLayout
from thalovant.core.links.ws import WsLink
from thalovant.core.machine import Entropy, Output
from thalovant.core.session import events as session_io
from thalovant.core.session.machine import Session

__all__ = ["Epoch", "Link", "new_link", "new_session"]

#: The link machine of one epoch, by transport.
Link = WsLink | HttpPoll | MqttMap


@dataclass(slots=True)
class Epoch:
    """One link attempt of a connection and what it has seen so far.

    Attributes:
        number: counts from 1 (0: no attempt yet); transport facts and orders carry it.
        session: the session of this attempt (kept after the link is gone, for its generation).
        link: the link machine, until it is finished and dropped.
        ready: the session is ready: sends go straight to it.
        ready_generation: the protocol generation the session became ready with (reported once its
            HELLO is confirmed).
        hello_confirmed: the link confirmed the frame carrying the session's HELLO.
        lost: the loss of this link was already handled (a session failure, then the socket close).
        close_code: the WebSocket close code the link reported, if any.
        last_sent: when something was last handed to the ready session (for the keep-alive).
        hub_name: the hub 5.x node name an MQTT link of this connection learned (its presence topic),
            handed to every later link (:mod:`thalovant.core.links.mqtt_presence`).
        hub_key: the hub 5.x static key this connection pinned (given, or learned by a first XX), checked
            by every later handshake; ``allow_kk``: False right after a KKpsk0 handshake failed, so the
            next one runs XXpsk2 and tells a wrong password from a changed hub key (spec §7.8).
        failure: the code of the session's failure once the link closed (``"client-key-rejected"`` ...).
    """

    number: int = 0
    session: Session | None = None
    link: Link | None = None
    ready: bool = False
    ready_generation: int | None = None
    hello_confirmed: bool = False
    lost: bool = False
    close_code: int | None = None
    last_sent: float = 0.0
    hub_name: str | None = None
    hub_key: bytes | None = None
    allow_kk: bool = True
    failure: str | None = None

    @classmethod
    def start(
        cls,
        number: int,
        cfg: ConnectionConfig,
        token: str,
        entropy: Entropy,
        *,
        hub_name: str | None = None,
        hub_key: bytes | None = None,
        allow_kk: bool = True,
    ) -> Epoch:
        """Epoch ``number`` with a fresh session and link for ``cfg``'s transport (``token``: a secret)."""
        link = new_link(cfg, token, entropy, hub_name=hub_name)
        session = new_session(cfg, entropy, hub_key=hub_key, allow_kk=allow_kk)
        return cls(number=number, session=session, link=link, hub_name=hub_name, hub_key=hub_key, allow_kk=allow_kk)

    def successor(self, cfg: ConnectionConfig, token: str, entropy: Entropy) -> Epoch:
        """The next epoch, told what the links so far learned of the hub's presence and its Noise key."""
        handshake = self.session.handshake if self.session is not None else None
        learned = getattr(handshake, "hub_static", None) if getattr(handshake, "failure", 1) is None else None
        kk_failed = getattr(handshake, "pattern", None) == "KKpsk0" and not self.ready_generation
        hub_key = learned if isinstance(learned, bytes) else self.hub_key
        number = self.number + 1
        return Epoch.start(number, cfg, token, entropy, hub_name=self.hub_name, hub_key=hub_key, allow_kk=not kk_failed)

    def drop_link(self) -> None:
        """Forget the finished link, keeping what it learned of the hub's presence."""
        if isinstance(self.link, MqttMap):
            self.hub_name = self.link.hub_name or self.hub_name
        self.link = None

    def ping_at(self, keepalive: float | None) -> float | None:
        """When a keep-alive PING is due (never before the session is ready, or without ``keepalive``)."""
        return None if keepalive is None or not self.ready else self.last_sent + keepalive

    def session_verdict(
        self, reason: str, retryable: bool, auth: bool, now: float
    ) -> tuple[str, bool, bool, bool, list[Output]]:
        """Tell the session its link closed; its verdict refines ``(reason, retryable, auth)``.

        A silent close right after the handshake is only a *suspected* refusal, and only where a
        link can close silently (a WebSocket): a hub that dies at that moment looks the same.

        Returns:
            The refined triple (a link's own refusal says it best), whether a refusal is suspected,
            and the session's ``SendFailed``.
        """
        failed: list[Output] = []
        suspect = False
        if self.session is None or self.session.finished:
            return reason, retryable, auth, suspect, failed
        for so in self.session.handle(session_io.LinkClosed(code=self.close_code, reason=reason), now=now):
            if isinstance(so, session_io.SessionFailed):
                self.failure = so.code
            if isinstance(so, session_io.SessionFailed) and so.code == "refused-after-handshake":
                suspect = self.close_code is not None  # a WebSocket closed
                reason = so.detail if suspect else reason
            elif isinstance(so, session_io.SessionFailed):
                reason = reason if auth else (so.detail or reason)
                auth, retryable = auth or so.auth, retryable and so.retryable
            elif isinstance(so, session_io.SendFailed):
                failed.append(so)
        return reason, retryable, auth, suspect, failed


def new_session(
    cfg: ConnectionConfig, entropy: Entropy, *, hub_key: bytes | None = None, allow_kk: bool = True
) -> Session:
    """A session for ``cfg``'s transport: MQTT speaks bitstrings and must send the first HELLO;
    HTTP (hub 4.x) cannot carry binary frames. ``hub_key``: the hub key this connection pinned so far
    (it overrides the configured pin); ``allow_kk=False`` forces XXpsk2 (spec §7.8)."""
    v3 = dict(cfg.v3_options)
    if hub_key is not None:
        v3["pinned_hub_key"] = hub_key
    if not allow_kk:
        v3["allow_kk"] = False
    return Session(
        session_id=cfg.session_id,
        useragent=cfg.useragent,
        entropy=entropy,
        site_id=cfg.site_id,
        access_key=cfg.access_key,
        password=cfg.password,
        crypto_key=cfg.crypto_key,
        wire="bitstring" if cfg.protocol == "mqtt" else "text",
        binary_ok=cfg.protocol != "https",
        trigger_hello=cfg.protocol == "mqtt",
        seal_trigger=cfg.mqtt_layout is MqttLayout.LEGACY,  # hub 5.x (modern layout) cannot open a sealed one
        handshake_timeout=cfg.handshake_timeout,
        v3_options=v3,
    )


def new_link(cfg: ConnectionConfig, token: str, entropy: Entropy, *, hub_name: str | None = None) -> Link:
    """The link machine for ``cfg``'s transport; ``token`` is the ``authorization`` value (a secret);
    ``hub_name``: the hub 5.x node name an earlier MQTT link learned."""
    if cfg.protocol == "wss":
        return WsLink(
            authorization=token, auth_encoding=cfg.auth_encoding, useragent=cfg.useragent, liveness=cfg.liveness
        )
    if cfg.protocol == "https":
        http_cfg = cfg.http if not cfg.http_base_path else replace(cfg.http, base_path=cfg.http_base_path)
        # v1 sessions never produce binary frames over HTTP (binary_ok=False); v3 Noise frames are
        # always binary and only hub 5.x offers v3, which takes ``binary=1`` uploads.
        http_cfg = replace(http_cfg, binary_uploads=True)
        return HttpPoll(authorization=token, useragent=cfg.useragent, entropy=entropy, config=http_cfg)
    return MqttMap(  # the status discipline (see MqttMap): both plugins tombstone a dropped client (NOTES.md)
        watch_status=True,
        access_key=cfg.access_key,
        topic_prefix=cfg.mqtt_topic_prefix,
        entropy=entropy,
        layout=cfg.mqtt_layout,
        overrides=cfg.mqtt_overrides,
        qos=cfg.mqtt_qos,
        hub_name=hub_name,
    )
