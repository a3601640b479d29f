"""What the ``thalovant`` command prints, and the exit code it returns: pure functions.

Theory of operation
-------------------
``thalovant/cli.py`` parses the command line, calls the client and writes
what the functions here return; it formats nothing itself. Each function
takes a result value (a health report, a reply, an event, a replay report,
an identity problem list) and returns the text for stdout or stderr, or the
JSON-ready ``dict`` for ``--json``. ``json_text`` with ``indent=None`` gives
one JSON line (JSONL, as ``listen --json`` streams them).

``scrub`` and ``identity_secrets`` keep an identity's secrets (and the
``authorization`` token forms built from the access key) out of every line
the command writes: results, errors, log lines and warnings.

Exit codes: 0 success; 1 remote failure (:class:`RemoteFailure`, any
:class:`ThalovantError` or ``OSError``); 2 usage, identity or argument error
(:class:`UsageError`, ``ThalovantIdentityError``, ``ThalovantArgumentError``, ``LocalProtocolError``);
130 interrupted (decided by the command, which sees the interrupt).

The result types are imported for annotations only, so ``thalovant --help``
loads none of them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from returns.result import Failure, Result, Success

from thalovant.core.client.health import ThalovantHealth
from thalovant.core.client.plan import DEFAULT_USERAGENT
from thalovant.core.errors import LocalProtocolError, ThalovantArgumentError, ThalovantError, ThalovantIdentityError
from thalovant.core.identity.fields import split_url
from thalovant.core.links.base import percent_encode

if TYPE_CHECKING:
    from thalovant.core.bus.events import ThalovantEvent
    from thalovant.core.bus.reply import ThalovantReply
    from thalovant.core.identity.model import Identity
    from thalovant.core.replay import ReplayReport

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REMOTE",
    "EXIT_USAGE",
    "SPINNER_CLEAR",
    "RemoteFailure",
    "UsageError",
    "ask_failure",
    "emit_arguments",
    "endpoint_overrides",
    "error_text",
    "event_line",
    "exit_code",
    "health_text",
    "identity_invalid",
    "identity_problems_text",
    "identity_secrets",
    "identity_valid_text",
    "json_object",
    "json_text",
    "replay_result",
    "replay_text",
    "reply_text",
    "scrub",
    "sent_text",
    "spinner_line",
    "unhealthy",
    "version_text",
]

EXIT_OK = 0
EXIT_REMOTE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_SHOWN_JSON = 2000  # characters of a replay divergence shown in the text output
_SPINNER = "|/-\\"
#: Clears the spinner's stderr line.
SPINNER_CLEAR = "\r\x1b[K"


class UsageError(Exception):
    """A command line the user must fix (exit 2)."""


class RemoteFailure(Exception):
    """The hub answered, but not with success (exit 1)."""


def exit_code(exc: BaseException) -> int:
    """2 for what the user must fix (usage, identity, local misuse); 1 for everything else."""
    if isinstance(exc, UsageError | ThalovantIdentityError | ThalovantArgumentError | LocalProtocolError):
        return EXIT_USAGE
    return EXIT_REMOTE


def error_text(exc: BaseException) -> str:
    """The one-line message for ``exc`` (not scrubbed yet); an unexpected exception says it is internal."""
    message = str(exc).replace("\n", " ").strip() or type(exc).__name__
    if not isinstance(exc, UsageError | RemoteFailure | ThalovantError | OSError):
        message = f"internal error: {type(exc).__name__}: {message}"
    return message


# ---- secrets ------------------------------------------------------------------------------------


def identity_secrets(identity: Identity) -> tuple[str, ...]:
    """Every secret value of ``identity`` (and the access token forms) to scrub from output."""
    found = [identity.access_key, identity.password, identity.crypto_key]
    if identity.mqtt is not None:
        found.append(identity.mqtt.password)
    if identity.access_key:
        token = base64.b64encode(f"{DEFAULT_USERAGENT}:{identity.access_key}".encode()).decode("ascii")
        found += [token, percent_encode(token)]
    return tuple(s for s in found if isinstance(s, str) and len(s) >= 4)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***`` (longest first, so a secret's parts never leak)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# ---- JSON in and out ----------------------------------------------------------------------------


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """``value`` as JSON: indented with sorted keys, or (``indent=None``) one line in the value's key order."""
    return json.dumps(value, indent=indent, sort_keys=indent is not None, ensure_ascii=False, default=str)


def json_object(text: str, option: str) -> Result[dict[str, Any], str]:
    """Parse the value of ``option`` (``--data``, ``--context``): a JSON object, or the problem in words."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Failure(f"{option} must be valid JSON ({exc.msg} at position {exc.pos})")
    if not isinstance(value, dict):
        return Failure(f"{option} must be a JSON object")
    return Success(value)


def emit_arguments(event: str, *, data: str, context: str) -> Result[tuple[dict[str, Any], dict[str, Any]], str]:
    """Check ``emit``'s arguments: ``--data`` and ``--context`` JSON objects and a non-empty event type."""
    return json_object(data, "--data").bind(
        lambda payload: json_object(context, "--context").bind(
            lambda ctx: Success((payload, ctx)) if event.strip() else Failure("the event type must not be empty")
        )
    )


_SCHEMES = {"https": ("http", "https"), "wss": ("ws", "wss")}  # (plain, TLS) for each protocol


def endpoint_overrides(
    values: Mapping[str, Any], *, host: str | None, port: int | None
) -> Result[dict[str, Any], str]:
    """The identity mapping ``values`` (secrets included) with ``--host`` / ``--port`` applied.

    ``--host`` (a host name, or a URL such as ``http://127.0.0.1``) becomes ``default_master`` and
    replaces the host of every endpoint the identity has (https, wss, the MQTT broker), each keeping
    its own path; a URL's scheme also says plain (``http``/``ws``) or TLS for the https and wss
    endpoints. ``--port`` (else the port of a ``--host`` URL) becomes ``default_port`` and the port of
    every endpoint. The failure text names the option, never a value.
    """
    out = dict(values)
    given = None if host is None else split_url(host.strip() if "://" in host else f"none://{host.strip()}")
    if isinstance(given, str):
        return Failure("--host must be a host name or a URL such as https://hub.example.com")
    if port is not None and not 1 <= port <= 65535:
        return Failure("--port must be between 1 and 65535")
    new_port = port if port is not None or given is None else given.port
    if given is not None:
        master = split_url(str(values.get("default_master", "")))
        scheme = given.scheme if given.scheme != "none" else getattr(master, "scheme", "https")
        out["default_master"] = f"{scheme}://{given.host}" + (f":{given.port}" if given.port else "") + given.path
    if new_port is not None:
        out["default_port"] = new_port

    def moved(url: Any, protocol: str) -> Any:
        split = split_url(url) if isinstance(url, str) else None
        if split is None or isinstance(split, str):
            return url
        scheme, name = split.scheme, split.host
        if given is not None:
            name = given.host
            if given.scheme != "none" and protocol in _SCHEMES:
                scheme = _SCHEMES[protocol][given.scheme not in ("http", "ws")]
        return replace(split, scheme=scheme, host=name).unsplit(port=new_port)

    endpoints = dict(values.get("data_plane_endpoints") or {})
    out["data_plane_endpoints"] = {k: moved(v, k) for k, v in endpoints.items()}
    if isinstance(values.get("mqtt"), Mapping):
        out["mqtt"] = {**values["mqtt"], "endpoint": moved(values["mqtt"].get("endpoint"), "mqtt")}
    return Success(out)


def spinner_line(frame: int, label: str) -> str:
    """Frame ``frame`` of the spinner with ``label`` (drawn over the current stderr line)."""
    return f"\r{_SPINNER[frame % len(_SPINNER)]} {label}\u2026\x1b[K"


# ---- results ------------------------------------------------------------------------------------


def version_text(version: str, *, as_json: bool) -> str:
    return json_text({"version": version}, indent=None) if as_json else f"thalovant {version}"


def sent_text(*, as_json: bool, **fields: Any) -> str:
    """What ``utter`` and ``emit`` print: ``sent``, or one JSON line ``{"sent": true, ...fields}``."""
    return json_text({"sent": True, **fields}, indent=None) if as_json else "sent"


def unhealthy(error: str, protocol: str | None) -> ThalovantHealth:
    """The health report of a client that could not connect (``error`` already scrubbed)."""
    return ThalovantHealth(
        connected=False, handshake_complete=False, transport_alive=False, last_error=error, protocol=protocol
    )


#: The phase times of a connection info, printed by :func:`info_text` even when unknown (as ``-``).
PHASE_FIELDS = ("dns_ms", "tcp_ms", "tls_ms", "admission_ms", "handshake_ms")


def info_text(info: Mapping[str, Any], *, as_json: bool = False) -> str:
    """A connection info (``ThalovantConnectionInfo.as_dict()``): JSON, or one ``name=value`` line per known field
    and one per phase time (``-``: not applicable or not measured)."""
    if as_json:
        return json_text(dict(info))
    return "\n".join(
        f"{name}={'-' if value is None else value}"
        for name, value in info.items()
        if value is not None or name in PHASE_FIELDS
    )


def health_text(health: ThalovantHealth) -> str:
    """``ok`` or ``failed``, then one ``name=value`` line per field that is known."""
    lines = ["ok" if health.ok else "failed"]
    lines += [f"connected={health.connected}", f"handshake_complete={health.handshake_complete}"]
    lines += [f"transport_alive={health.transport_alive}", f"protocol={health.protocol}"]
    if health.generation is not None:
        lines.append(f"generation={health.generation}")
    if health.last_error:
        lines.append(f"last_error={health.last_error}")
    return "\n".join(lines)


def reply_text(reply: ThalovantReply) -> str | None:
    """The answer to print (SSML removed), or None when the hub said nothing."""
    return (reply.display_text or reply.text) if reply.text else None


def ask_failure(reply: ThalovantReply) -> str:
    """Why an ask that is not ``ok`` failed, in words."""
    if reply.failure_event is not None:
        return f"the hub reported a failure ({reply.failure_event.type})"
    if reply.unanswered:
        return "no skill answered the utterance"
    if reply.cancelled:
        return "the hub cancelled the utterance"
    if reply.timed_out:
        return "the answer did not finish in time"
    return "the hub did not confirm the answer"


def event_line(event: ThalovantEvent, *, as_json: bool) -> str:
    """One ``listen`` line: the event as one JSON line, else its text, else its data as one JSON line."""
    if as_json:
        return json_text(event.as_dict(), indent=None)
    return event.text or json_text(event.as_dict()["data"], indent=None)


def identity_invalid(origin: str, problems: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The ``--json`` result of ``identity check`` for an invalid file: every ``(path, message)`` problem."""
    return {"ok": False, "origin": origin, "problems": [{"path": p, "message": m} for p, m in problems]}


def identity_problems_text(origin: str, problems: Sequence[tuple[str, str]]) -> str:
    """The stderr text for an invalid identity file: a count, then one line per problem."""
    lines = [f"thalovant: invalid {origin}: {len(problems)} problem(s)"]
    lines += [f"thalovant:   {path or '(file)'}: {message}" for path, message in problems]
    return "".join(line + "\n" for line in lines)


def identity_valid_text(protocols: Sequence[str], summary: dict[str, Any], *, as_json: bool) -> str:
    """``identity check`` of a valid file: ``ok: protocols ...`` and the redacted summary, or the JSON result."""
    if as_json:
        return json_text({"ok": True, "identity": summary})
    return f"ok: protocols {', '.join(protocols) or '(none)'}\n{json_text(summary)}"


def replay_result(report: ReplayReport, secrets: Sequence[str]) -> dict[str, Any]:
    """The ``--json`` result of ``replay``: ok, identical, steps, and the divergence or problem, redacted."""

    def redact(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
        return scrub(text, secrets)

    result: dict[str, Any] = {"ok": report.ok, "identical": report.ok, "steps": report.steps}
    if report.divergence is not None:
        d = report.divergence
        result["divergence"] = {"seq": d.seq, "what": d.what, "expected": redact(d.expected), "got": redact(d.got)}
    if report.problem is not None:
        result["problem"] = {"code": report.problem.code, "detail": redact(report.problem.detail)}
    return result


def replay_text(result: dict[str, Any]) -> str:
    """The text form of :func:`replay_result`."""
    steps = result["steps"]
    if result["ok"]:
        return f"identical: {steps} step(s) replayed"
    lines = []
    if "divergence" in result:
        d = result["divergence"]
        lines.append(f"diverged at step {d['seq']} ({d['what']}) after {steps} identical step(s)")
        lines.append(f"  expected: {d['expected'][:_SHOWN_JSON]}")
        lines.append(f"  got:      {d['got'][:_SHOWN_JSON]}")
    if "problem" in result:
        lines.append(f"unreadable trace after {steps} step(s): {result['problem']['detail']}")
    return "\n".join(lines)
