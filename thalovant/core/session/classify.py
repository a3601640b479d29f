"""How a session reads what the hub did: which kind a frame is, and what a link close means.

Both are pure decisions over the frame or the close plus a few facts about the session, so the
machine (:mod:`thalovant.core.session.machine`) only acts on the verdict.

Frame kinds (spec §2): a text frame (or MQTT bytes that parse as a JSON object) with
``ciphertext`` is *sealed*; any other JSON object is a *clear* envelope; other bytes are sealed
once a channel exists, else a plain bitstring. Before keys exist, bytes that are no plain
bitstring are taken as sealed under an older key (HTTP re-connect, spec §8.2) so the session
drops them instead of failing.

Closes: a refusal is not retried (``retryable=False``), and a refusal of the credentials says so
(``auth=True``), so the reconnect policy gives up with a clear reason. Hub 5.x closing with 4003 after
READY refused one frame (a QUERY without ``can_escalate``, a non-admin BROADCAST, spec §3.3) and
nothing else: ``request-refused`` is retryable, so the client reconnects (that frame was handed over
and is never sent again); a 4003 before READY refused the handshake itself and is not retried.
Hub 5.x refusing this client's Noise static key (it pinned another one, spec §7.8) is
``client-key-rejected``; hub 5.x failing a Noise handshake (``handshake failure: ...``) is retryable:
after a KKpsk0 failure the next link runs XXpsk2, which tells a wrong password from a changed hub key
(:mod:`thalovant.core.client.epoch`).
"""

from __future__ import annotations

from typing import NamedTuple

from returns.pipeline import is_successful
from returns.result import Success

from thalovant.core.session.events import LinkClosed
from thalovant.core.wire.bitstring import decode_bitstring
from thalovant.core.wire.codec import message_from_dict, parse_json_object
from thalovant.core.wire.frame import Frame, FrameProblem
from thalovant.core.wire.message import HiveMessage

__all__ = ["Verdict", "classify_close", "classify_frame", "shown_peer"]


def classify_frame(data: str | bytes, *, keyed: bool, handshaking: bool) -> HiveMessage | Frame | FrameProblem:
    """What an inbound frame is: clear (the message), sealed (the frame to open) or bad (the problem).

    Args:
        data: the frame as the link delivered it.
        keyed: a secure channel exists.
        handshaking: the session is handshaking (keys may be stale, spec §8.2).
    """
    if isinstance(data, str) or data[:1] == b"{":
        parsed = parse_json_object(data)
        if isinstance(parsed, Success):
            obj = parsed.unwrap()
            if "ciphertext" in obj:
                return data if isinstance(data, str) else bytes(data).decode("utf-8")
            built = message_from_dict(obj)
            if is_successful(built):
                return built.unwrap()
            return built.failure()
        if isinstance(data, str):
            return parsed.failure()
    if keyed:
        return bytes(data)
    plain = decode_bitstring(bytes(data))
    if is_successful(plain):
        return plain.unwrap()
    if handshaking:
        # Before keys exist, bytes that are no plain bitstring are most likely a frame sealed
        # under an older key (HTTP re-connect, spec §8.2): drop rather than fail.
        return bytes(data)
    return plain.failure()


class Verdict(NamedTuple):
    """Why a session fails: the fields of its ``SessionFailed``."""

    code: str
    detail: str
    retryable: bool
    auth: bool


def classify_close(
    inp: LinkClosed, *, ready: bool, greeted: bool, silent_start: bool, path: str | None, generation: int | None
) -> Verdict:
    """Why the link closed, from its close code and reason and the session's progress.

    Args:
        inp: the close.
        ready: the session was READY.
        greeted: the hub sent its greeting on this link.
        silent_start: the session became READY a moment ago and the hub has sent nothing since.
        path: the v1 handshake's path (``"password"`` or ``"psk"``), if one was chosen.
        generation: the channel's protocol generation, if keys exist.
    """
    said = f"close {inp.code if inp.code is not None else 'without status'}"
    reason = inp.reason.lower()
    if inp.reason:
        said += f" ({inp.reason[:120]})"
    if inp.code == 1008 and "static key" in reason:  # hub 5.x pinned another Noise key for this access key
        detail = f"the hub refused this client's Noise static key (it pinned another one for this access key): {said}"
        return Verdict("client-key-rejected", detail, False, True)
    if inp.code == 1008 and "handshake failure" in reason:  # hub 5.x: a KKpsk0 message 1 it cannot read
        return Verdict("handshake-refused", f"the hub refused the Noise handshake: {said}", True, False)
    if inp.code == 4003 and ready:  # hub 5.x: one frame type this client may not send; the link was fine
        return Verdict("request-refused", f"the hub refused one request of this type: {said}", True, False)
    if inp.code == 4003:  # before READY the hub refused the handshake itself: a redial would repeat it
        return Verdict("refused", f"the hub refused this client's handshake: {said}", False, False)
    if inp.code == 1008 and ("key" in reason or "authoriz" in reason):
        return Verdict("refused", f"the hub refused the credentials: {said}", False, True)
    if inp.code == 1008 and ("v3" in reason or "noise" in reason):
        return Verdict("v3-required", f"the hub requires protocol v3: {said}", False, False)
    if not ready:
        if not greeted and inp.code in (1005, 1008):
            detail = f"the hub closed before greeting ({said}): unknown access key?"
            return Verdict("refused", detail, False, True)
        return Verdict("link-closed", f"link closed during the handshake: {said}", True, False)
    if silent_start and (path == "psk" or (generation == 3 and inp.code in (1000, 1005, 1008))):
        detail = f"the hub dropped the link right after the handshake ({said}): credentials refused?"
        return Verdict("refused-after-handshake", detail, False, True)
    return Verdict("link-closed", f"link closed: {said}", True, False)


def shown_peer(peer: str | None, *, session_id: str, access_key: str) -> str | None:
    """The hub's name for this client as the session reports it (``SessionReady.hub_peer``).

    >>> shown_peer("UA::default", session_id="s1", access_key="")
    'UA::s1'
    >>> shown_peer("k3y::s1", session_id="s1", access_key="k3y")
    '<access-key>::s1'
    """
    if peer is not None and peer.endswith("::default"):
        peer = peer[: -len("default")] + session_id  # the hub renames us after HELLO
    if peer is not None and access_key and access_key in peer:
        # MQTT 0.1.0a2 uses the access key as the user agent: never let it into an output.
        peer = peer.replace(access_key, "<access-key>")
    return peer
