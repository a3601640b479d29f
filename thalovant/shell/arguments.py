"""The client constructors' arguments, checked at the door: type, range and choice, one rule per name.

Theory of operation
-------------------
``AsyncThalovantClient.__init__`` (and so ``ThalovantClient``, which forwards its keywords) hands
its arguments to :func:`check_client_arguments` before it does anything else. Each name with a
rule in :data:`CLIENT_RULES` is checked; a bad value raises at once:

* :class:`~thalovant.errors.ThalovantArgumentTypeError` (also a ``TypeError``) for a value of the
  wrong type: ``connect_timeout="5"``, ``insecure="no"``, ``noise_key_file=True``;
* :class:`~thalovant.errors.ThalovantArgumentError` (a ``ValueError``) for a value out of range or
  not one of the choices: ``nan``, ``-1``, ``inf``, ``auth_encoding="bogus"``, a ``ca_file`` that
  is not a file, a ``noise_key_file`` that is a directory.

Without these checks such values were accepted and failed later, inside ``connect()``, as an
untyped ``RuntimeError`` from the event loop. The message names the argument and the rule, never
the value. Names without a rule are checked by their own consumers (``identity`` by
``ThalovantIdentity``, ``protocol`` by ``choose_protocol``). ``bool`` is never taken for a number.

Checking a file argument looks at the file system (``ca_file`` must be a regular file,
``noise_key_file`` must not be a directory), which is why this module is in the shell.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType

from thalovant.core.client.reconnect import ReconnectConfig
from thalovant.core.errors import LocalProtocolError, ThalovantArgumentError, ThalovantArgumentTypeError
from thalovant.core.identity.fields import text_problem
from thalovant.core.links.http_wire import HttpPollConfig
from thalovant.core.links.liveness import LivenessConfig
from thalovant.core.links.proxy import ProxyPolicy
from thalovant.shell.links.proxy import proxy_policy

__all__ = ["CLIENT_RULES", "MAX_QUEUE", "MAX_SECONDS", "check_client_arguments", "check_seconds"]

#: The longest wait any client argument may ask for: 30 days. Longer is a mistake, not a wish.
MAX_SECONDS = 30 * 24 * 3600.0

#: The most messages ``max_queue`` may hold while the link is down.
MAX_QUEUE = 100_000

_MAX_TEXT = 256

Rule = Callable[[str, object], None]


def _kind(value: object) -> str:
    return type(value).__name__


def check_seconds(name: str, value: object, *, zero: bool = False) -> float:
    """``value`` as seconds: an int or float (not a bool), finite, above 0 (or 0 with ``zero``), at most 30 days.

    Raises:
        ThalovantArgumentTypeError: not a number.
        ThalovantArgumentError: NaN, infinite, negative (or zero) or longer than :data:`MAX_SECONDS`.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ThalovantArgumentTypeError(name, f"must be a number of seconds (int or float), not {_kind(value)}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ThalovantArgumentError(name, "must be a finite number of seconds")
    if seconds < 0 or (seconds == 0 and not zero):
        raise ThalovantArgumentError(name, "must not be negative" if zero else "must be greater than 0")
    if seconds > MAX_SECONDS:
        raise ThalovantArgumentError(name, f"must be at most {MAX_SECONDS:.0f} s (30 days)")
    return seconds


def _seconds(name: str, value: object) -> None:
    check_seconds(name, value)


def _optional_seconds(name: str, value: object) -> None:
    if value is not None:
        check_seconds(name, value)


def _settle_seconds(name: str, value: object) -> None:
    check_seconds(name, value, zero=True)


def _count(low: int, high: int, *, optional: bool = False) -> Rule:
    def rule(name: str, value: object) -> None:
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise ThalovantArgumentTypeError(name, f"must be an integer, not {_kind(value)}")
        if not low <= value <= high:
            raise ThalovantArgumentError(name, f"must be between {low} and {high}")

    return rule


def _flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ThalovantArgumentTypeError(name, f"must be True or False, not {_kind(value)}")


def _optional_flag(name: str, value: object) -> None:
    if value is not None:
        _flag(name, value)


def _choice(*choices: str) -> Rule:
    shown = " or ".join(repr(c) for c in choices)

    def rule(name: str, value: object) -> None:
        if not isinstance(value, str):
            raise ThalovantArgumentTypeError(name, f"must be {shown}, not {_kind(value)}")
        if value not in choices:
            raise ThalovantArgumentError(name, f"must be {shown}")

    return rule


def _instance(cls: type, *, optional: bool = True) -> Rule:
    def rule(name: str, value: object) -> None:
        if value is None and optional:
            return
        if not isinstance(value, cls):
            raise ThalovantArgumentTypeError(name, f"must be a {cls.__name__} or None, not {_kind(value)}")

    return rule


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThalovantArgumentTypeError(name, f"must be a string, not {_kind(value)}")
    if not value.strip():
        raise ThalovantArgumentError(name, "must not be empty")
    if len(value) > _MAX_TEXT:
        raise ThalovantArgumentError(name, f"must have at most {_MAX_TEXT} characters")
    problem = text_problem(value)
    if problem is not None:
        raise ThalovantArgumentError(name, problem)
    return value


def _useragent(name: str, value: object) -> None:
    text = _text(name, value)
    if not (text.isascii() and text.isprintable()):
        raise ThalovantArgumentError(name, "must be printable ASCII (it is sent in an HTTP header)")
    if ":" in text:
        raise ThalovantArgumentError(name, "must not contain ':' (the hub splits the authorization token on it)")


def _session_id(name: str, value: object) -> None:
    if value is not None:
        _text(name, value)


def _path_text(name: str, value: object) -> str:
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike):
        raise ThalovantArgumentTypeError(name, f"must be a path (str or os.PathLike), not {_kind(value)}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise ThalovantArgumentTypeError(name, "must be a path of str, not of bytes")
    if not text or "\x00" in text:
        raise ThalovantArgumentError(name, "must be a non-empty path without NUL characters")
    return text


def _ca_file(name: str, value: object) -> None:
    if value is None:
        return
    if not os.path.isfile(_path_text(name, value)):
        raise ThalovantArgumentError(name, "must name an existing file of PEM certificates")


def _noise_key_file(name: str, value: object) -> None:
    if value is None or value is False:
        return
    if isinstance(value, bool):
        raise ThalovantArgumentTypeError(name, "must be a path, None (the default path) or False (in memory)")
    if os.path.isdir(_path_text(name, value)):
        raise ThalovantArgumentError(name, "is a directory; give the path of a key file")


def _trace(name: str, value: object) -> None:
    if value is not None and not callable(getattr(value, "begin", None)):
        raise ThalovantArgumentTypeError(name, f"must have a begin(config) method (a TraceSink), not {_kind(value)}")


def _proxy(name: str, value: object) -> None:
    if value is None or isinstance(value, bool | ProxyPolicy):
        return
    if not isinstance(value, str):
        raise ThalovantArgumentTypeError(name, f"must be True, None, False or an http:// proxy URL, not {_kind(value)}")
    try:
        proxy_policy(value)
    except LocalProtocolError as exc:  # its message names the argument, never the URL (it may hold credentials)
        raise ThalovantArgumentError(name, str(exc).removeprefix(f"{name} ").removeprefix(f"{name}: ")) from exc


def _checked_elsewhere(name: str, value: object) -> None:
    """``identity`` (``ThalovantIdentity``), ``protocol`` (``choose_protocol``), ``transport`` (its adapter)."""


#: One rule per constructor argument of ``AsyncThalovantClient`` (and the 0.4.7 keywords it takes).
CLIENT_RULES: Mapping[str, Rule] = MappingProxyType(
    {
        "identity": _checked_elsewhere,
        "protocol": _checked_elsewhere,
        "transport": _checked_elsewhere,
        "useragent": _useragent,
        "connect_timeout": _seconds,
        "handshake_timeout": _seconds,
        "send_timeout": _seconds,
        "reply_timeout": _seconds,
        "queue_timeout": _seconds,
        "keepalive": _optional_seconds,
        "reply_settle_seconds": _settle_seconds,
        "max_queue": _count(1, MAX_QUEUE),
        "reconnect_attempts": _count(0, 1_000_000, optional=True),
        "auto_reconnect": _flag,
        "insecure": _flag,
        "self_signed": _optional_flag,
        "reconnect": _instance(ReconnectConfig),
        "http": _instance(HttpPollConfig),
        "liveness": _instance(LivenessConfig, optional=True),
        "ca_file": _ca_file,
        "auth_encoding": _choice("raw", "percent"),
        "mqtt_layout": _choice("legacy", "modern"),
        "session_id": _session_id,
        "noise_key_file": _noise_key_file,
        "trace": _trace,
        "proxy": _proxy,
    }
)


def check_client_arguments(given: Mapping[str, object]) -> None:
    """Check every argument in ``given`` that has a rule in :data:`CLIENT_RULES` (``self`` and others are skipped).

    ``AsyncThalovantClient.__init__`` calls ``check_client_arguments(locals())`` first.

    Raises:
        ThalovantArgumentTypeError: an argument has the wrong type (also a ``TypeError``).
        ThalovantArgumentError: an argument is out of range or not one of its choices (a ``ValueError``).
    """
    for name, value in given.items():
        rule = CLIENT_RULES.get(name)
        if rule is not None:
            rule(name, value)
