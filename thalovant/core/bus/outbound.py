"""Client context and the outbound utterance messages (ask, send_action, send_code).

Theory of operation
-------------------
Pure functions that build new dicts; an input mapping is never mutated.

* :func:`build_client_context` adds user, auth, device and routing facts to a
  context (reference SDK §a.12): it fills gaps and never overrides what the
  caller already put there, except that ``metadata`` is merged.
* :func:`merge_context` overlays one context on another; the nested
  ``session`` dict is merged too.
* :func:`utterance_message`, :func:`action_message` and :func:`code_message`
  build the ``recognizer_loop:utterance`` :class:`BusMessage` that ``ask``,
  ``send_utterance``, ``send_action`` and ``send_code`` send.

Input metadata (choice for §d.3): ``send_action`` and ``send_code`` put the
same ``input`` dict in **both** ``data.input`` and ``context.input``, so a
skill can tell a button press or a scanned code from speech whichever of the
two it reads::

    action: {"kind": "action", "title": <str|None>, "payload": <str>}
    code:   {"kind": <"code"|"qr"|…>, "label": <str|None>, "value": <str>, "exact": True}

Plain speech carries no ``input`` key.

Correlation (spec §9.2): the request id goes to ``context.request_id``,
``context.thalovant_request_id`` and ``context.session.request_id``;
``request_id`` is the one that survives the hub round trip. The session dict
carries the *user's* session id when one was given; when none was given the
shell fills in the connection's own id (hub 4.x disconnects on a missing or
``"default"`` id, spec §1.3).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from thalovant.core.bus.events import EVENT_RECOGNIZER_LOOP_UTTERANCE
from thalovant.core.machine import Entropy
from thalovant.core.wire.message import BusMessage

REQUEST_ID_PREFIX = "thalovant-request-"
SESSION_ID_PREFIX = "thalovant-session-"


def new_request_id(entropy: Entropy) -> str:
    """A fresh request id, ``thalovant-request-<32 hex>``.

    >>> new_request_id(lambda n: bytes(range(n)))
    'thalovant-request-000102030405060708090a0b0c0d0e0f'
    """
    return REQUEST_ID_PREFIX + entropy(16).hex()


def new_session_id(entropy: Entropy) -> str:
    """A fresh conversation session id, ``thalovant-session-<32 hex>``."""
    return SESSION_ID_PREFIX + entropy(16).hex()


def _copy(context: Mapping[str, Any] | None) -> dict[str, Any]:
    return copy.deepcopy(dict(context)) if context else {}


def _sub(ctx: dict[str, Any], key: str) -> dict[str, Any]:
    """``ctx[key]`` as a fresh dict owned by ``ctx`` (a non-dict value is replaced)."""
    current = ctx.get(key)
    fresh = dict(current) if isinstance(current, Mapping) else {}
    ctx[key] = fresh
    return fresh


def _set_absent(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and target.get(key) is None:
        target[key] = value


def build_client_context(
    context: Mapping[str, Any] | None = None,
    *,
    user_id: str | None = None,
    user_name: str | None = None,
    auth_token: str | None = None,
    auth_provider: str | None = None,
    auth_claims: Mapping[str, Any] | None = None,
    roles: Sequence[str] | None = None,
    platform: str | None = None,
    source: str | None = None,
    destination: str | None = None,
    channel: str | None = None,
    device_id: str | None = None,
    locale: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    session_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A new context with the client's user, auth, device and routing facts added.

    Nothing the caller already set is overridden: ``user``, ``auth`` and
    ``device`` dicts are filled in key by key, top-level keys are set only if
    absent, and ``metadata`` is shallow-merged: the ``metadata`` argument's
    values on top of the context's existing ``metadata``.
    ``extra`` keyword arguments are set only if absent, like the plain keys.

    Args:
        context: the starting context (not mutated).
        user_id: the end user's id (``user.id`` and ``user_id``).
        user_name: the end user's name (``user.name`` and ``user_name``).
        auth_token: a token for skills (``auth.token`` and ``auth_token``); it is
            sent to the hub on purpose, and redacted from every ``repr``/``as_dict``.
        auth_provider: who issued the token (``auth.provider``).
        auth_claims: token claims (``auth.claims``).
        roles: the user's roles (``user.roles`` and ``roles``).
        platform: the client platform (``platform``, ``device.platform``).
        source: the message source.
        destination: the message destination.
        channel: the channel (chat, voice, …).
        device_id: the device id (``device.id``).
        locale: the user's locale.
        metadata: extra metadata, merged over the context's ``metadata``.
        session_id: the session id (``session.session_id`` and ``session_id``).
        **extra: other top-level keys, set only if absent.

    Returns:
        The new context dict.

    >>> ctx = build_client_context({"channel": "web"}, user_id="u1", channel="voice")
    >>> ctx["user"], ctx["user_id"], ctx["channel"]
    ({'id': 'u1'}, 'u1', 'web')
    """
    ctx = _copy(context)
    role_list = list(roles) if roles is not None else None
    if user_id is not None or user_name is not None or role_list is not None:
        user = _sub(ctx, "user")
        _set_absent(user, "id", user_id)
        _set_absent(user, "name", user_name)
        _set_absent(user, "roles", role_list)
    _set_absent(ctx, "user_id", user_id)
    _set_absent(ctx, "user_name", user_name)
    _set_absent(ctx, "roles", role_list)
    if auth_token is not None or auth_provider is not None or auth_claims is not None:
        auth = _sub(ctx, "auth")
        _set_absent(auth, "token", auth_token)
        _set_absent(auth, "provider", auth_provider)
        _set_absent(auth, "claims", dict(auth_claims) if auth_claims is not None else None)
    _set_absent(ctx, "auth_token", auth_token)
    for key, value in (
        ("platform", platform),
        ("source", source),
        ("destination", destination),
        ("channel", channel),
        ("locale", locale),
    ):
        _set_absent(ctx, key, value)
    if device_id is not None or platform is not None:
        device = _sub(ctx, "device")
        _set_absent(device, "id", device_id)
        _set_absent(device, "platform", platform)
    if metadata:
        current = ctx.get("metadata")
        ctx["metadata"] = {**(current if isinstance(current, Mapping) else {}), **copy.deepcopy(dict(metadata))}
    if session_id is not None:
        _set_absent(_sub(ctx, "session"), "session_id", session_id)
        _set_absent(ctx, "session_id", session_id)
    for key, value in extra.items():
        _set_absent(ctx, key, value)
    return ctx


def merge_context(base: Mapping[str, Any] | None, overlay: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` overlaid with ``overlay``: a shallow overlay, but ``session`` is merged key by key.

    >>> merge_context({"a": 1, "session": {"x": 1, "y": 1}}, {"b": 2, "session": {"y": 2}})
    {'a': 1, 'session': {'x': 1, 'y': 2}, 'b': 2}
    """
    merged = _copy(base)
    for key, value in _copy(overlay).items():
        current = merged.get(key)
        if key == "session" and isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = {**current, **value}
        else:
            merged[key] = value
    return merged


def correlated_context(
    context: Mapping[str, Any] | None,
    *,
    request_id: str,
    lang: str,
    session_id: str | None = None,
    site_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new context carrying the correlation facts of one outbound message (§d.2).

    ``session``: the caller's session dict copied, then ``session_id`` set when
    given, ``site_id`` and ``lang`` set if absent, ``request_id`` set.
    ``request_id`` and ``thalovant_request_id`` are set at the top level.
    ``metadata`` (the identity's) is merged under the caller's metadata.
    """
    if not request_id:
        raise ValueError("request_id must not be empty")
    ctx = _copy(context)
    if metadata:
        current = ctx.get("metadata")
        ctx["metadata"] = {**copy.deepcopy(dict(metadata)), **(current if isinstance(current, Mapping) else {})}
    session = _sub(ctx, "session")
    if session_id is not None:
        session["session_id"] = session_id
    _set_absent(session, "site_id", site_id)
    _set_absent(session, "lang", lang)
    session["request_id"] = request_id
    ctx["request_id"] = request_id
    ctx["thalovant_request_id"] = request_id
    return ctx


def _clean_prompt(text: str, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return text.strip()


def utterance_message(
    text: str,
    *,
    request_id: str,
    lang: str = "en-us",
    session_id: str | None = None,
    site_id: str | None = None,
    context: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    input_meta: Mapping[str, Any] | None = None,
) -> BusMessage:
    """The ``recognizer_loop:utterance`` message of ``ask`` / ``send_utterance``.

    Args:
        text: what the user said; stripped.
        request_id: the correlation id of this turn.
        lang: the language tag (``data.lang`` and, if absent, ``session.lang``).
        session_id: the user's conversation session id, or None.
        site_id: the identity's site id (``session.site_id`` if absent).
        context: the caller's context (not mutated).
        metadata: the identity's metadata, merged under the caller's.
        input_meta: an ``input`` dict for non-speech input (``data.input`` and
            ``context.input``); see the module docstring.

    Returns:
        The bus message.

    Raises:
        ValueError: empty text or request id.
    """
    utterance = _clean_prompt(text, "text")
    ctx = correlated_context(
        context, request_id=request_id, lang=lang, session_id=session_id, site_id=site_id, metadata=metadata
    )
    data: dict[str, Any] = {"utterances": [utterance], "lang": lang}
    if input_meta is not None:
        data["input"] = dict(input_meta)
        ctx["input"] = dict(input_meta)
    return BusMessage(type=EVENT_RECOGNIZER_LOOP_UTTERANCE, data=data, context=ctx)


def action_message(payload: str, *, title: str | None = None, request_id: str, **kwargs: Any) -> BusMessage:
    """The message of ``send_action``: a button/quick-reply press.

    ``utterances == [payload]``; ``input == {"kind": "action", "title": title, "payload": payload}``
    in data and context. Other keyword arguments are those of :func:`utterance_message`.

    Raises:
        ValueError: empty payload.
    """
    value = _clean_prompt(payload, "payload")
    meta = {"kind": "action", "title": title, "payload": value}
    return utterance_message(value, request_id=request_id, input_meta=meta, **kwargs)


def code_message(
    value: str, *, kind: str = "code", label: str | None = None, request_id: str, **kwargs: Any
) -> BusMessage:
    """The message of ``send_code``: a scanned or typed code that must be taken verbatim.

    ``utterances == [value]``; ``input == {"kind": kind, "label": label, "value": value, "exact": True}``
    in data and context.

    Raises:
        ValueError: empty value or kind.
    """
    code = _clean_prompt(value, "value")
    _clean_prompt(kind, "kind")
    meta = {"kind": kind, "label": label, "value": code, "exact": True}
    return utterance_message(code, request_id=request_id, input_meta=meta, **kwargs)


__all__ = [
    "REQUEST_ID_PREFIX",
    "SESSION_ID_PREFIX",
    "action_message",
    "build_client_context",
    "code_message",
    "correlated_context",
    "merge_context",
    "new_request_id",
    "new_session_id",
    "utterance_message",
]
