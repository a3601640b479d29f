"""Deterministic replay traces ("cassettes"): record a machine's life, replay it exactly.

Theory of operation
-------------------
A core machine is a pure function of (inputs, their ``now``, entropy draws).
The shell driver is the one place where inputs enter a machine, so it can
write every step to a JSON Lines file; replaying that file against a fresh
machine must give byte-identical outputs and deadlines. This is the
user-facing feature "deterministic replay tests": ``thalovant --record
bug.jsonl`` produces a cassette, and ``replay`` turns it into a regression
test (or pinpoints the first step where behaviour changed).

Format, version 1 (one JSON object per line, UTF-8)::

    {"v": 1, "machine": "http_poll", "config": {...}, "thalovant": "0.1.0", "secrets": "..."}
    {"seq": 0, "now": 0.0, "in": <value>, "entropy": ["a1b2", ...], "out": [<value>, ...],
     "deadline": 10.0}
    ...

* Line 1 is the header. ``machine`` and ``config`` are enough for the
  caller's ``build_machine`` to rebuild the machine; ``secrets`` says where
  any credentials in the trace come from (cassettes are replayable only if
  they carry them, so record with throwaway identities only).
* Every later line is a step: ``seq`` counts from 0; ``now`` is a JSON float
  (Python's ``repr`` round-trips it exactly); ``entropy`` lists the hex of
  each draw the machine made during this step, in order; ``deadline`` is the
  machine's deadline after the step (``null`` for none).

Values (inputs, outputs and anything inside them) use a tagged JSON form:

* ``null``, booleans, integers, floats and strings are themselves;
* tuples and lists are arrays (decoded as tuples: messages are immutable);
* ``bytes`` are ``{"$b": "<standard base64>"}``;
* an Enum member is ``{"$e": "<type name>", "v": <its value>}``;
* a dataclass is ``{"$t": "<type name>", "<field>": <value>, ...}``;
* a dict is ``{"$d": [[<key>, <value>], ...]}``.

A type name is the class's module relative to ``thalovant.core`` plus its
qualified name, e.g. ``links.http_poll.StartRequest`` or ``machine.Tick``.
Decoding looks names up in a :class:`TypeRegistry` (explicit, or
:func:`default_registry`: the message classes already imported); a trace can
never make the decoder import or build anything outside that registry.

Replaying a trace is :func:`thalovant.core.replay.replay`.

Entropy: a machine must draw entropy only inside ``handle`` (never in its
constructor), so every draw belongs to a step. :class:`RecordingEntropy`
wraps the real source and remembers each draw; :class:`Tape` replays
recorded draws and raises :class:`TapeMismatch` when the machine asks for a
different count or size (a silent divergence would be worse than a loud one).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from thalovant.core.errors import LocalProtocolError
from thalovant.core.machine import Entropy, Input, Output
from thalovant.core.trace_types import TypeRegistry, default_registry, type_name

__all__ = [
    "TRACE_VERSION",
    "RecordingEntropy",
    "Recorder",
    "Tape",
    "TapeMismatch",
    "TraceHeader",
    "TraceProblem",
    "TraceStep",
    "TypeRegistry",
    "decode_value",
    "default_registry",
    "encode_value",
    "load_header",
    "load_step",
    "type_name",
]

TRACE_VERSION = 1
JSON = Any  # a JSON-compatible Python value


class TapeMismatch(LocalProtocolError):
    """A replayed machine asked for entropy the recording does not have."""


@dataclass(frozen=True, slots=True)
class TraceProblem:
    """Why a trace line (or value inside it) could not be read."""

    code: str  # "bad-json", "bad-header", "bad-step", "unknown-type", "bad-value", "version"
    detail: str = ""


# ---- values -------------------------------------------------------------------------------------


def encode_value(value: object) -> JSON:
    """Encode an input, output or any value inside one into tagged JSON (see module docs).

    Raises:
        LocalProtocolError: the value has a type traces cannot hold.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, enum.Enum):
        return {"$e": type_name(type(value)), "v": encode_value(value.value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        obj: dict[str, JSON] = {"$t": type_name(type(value))}
        for f in dataclasses.fields(value):
            obj[f.name] = encode_value(getattr(value, f.name))
        return obj
    if isinstance(value, tuple | list):
        return [encode_value(v) for v in value]
    if isinstance(value, dict):
        return {"$d": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    raise LocalProtocolError(f"trace: cannot encode a {type(value).__name__}")


class _Bad(Exception):
    """Private: a value could not be decoded (caught once, in decode_value)."""

    def __init__(self, problem: TraceProblem) -> None:
        super().__init__(problem.code)
        self.problem = problem


def decode_value(obj: JSON, registry: TypeRegistry) -> Result[Any, TraceProblem]:
    """Decode tagged JSON back into values; unknown types and bad shapes are problems."""
    try:
        return Success(_decode(obj, registry, 0))
    except _Bad as bad:
        return Failure(bad.problem)


def _decode(obj: JSON, registry: TypeRegistry, depth: int) -> Any:
    if depth > 64:
        raise _Bad(TraceProblem("bad-value", "nested too deeply"))
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list):
        return tuple(_decode(v, registry, depth + 1) for v in obj)
    if not isinstance(obj, dict):
        raise _Bad(TraceProblem("bad-value", type(obj).__name__))
    if set(obj) == {"$b"} and isinstance(obj["$b"], str):
        try:
            return base64.b64decode(obj["$b"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Bad(TraceProblem("bad-value", "bad base64")) from exc
    if set(obj) == {"$d"} and isinstance(obj["$d"], list):
        pairs = [_decode(p, registry, depth + 1) for p in obj["$d"]]
        if not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
            raise _Bad(TraceProblem("bad-value", "bad dict"))
        try:
            return dict(pairs)
        except TypeError as exc:
            raise _Bad(TraceProblem("bad-value", "unhashable dict key")) from exc
    if set(obj) == {"$e", "v"} and isinstance(obj["$e"], str):
        cls = registry.get(obj["$e"])
        if cls is None or not issubclass(cls, enum.Enum):
            raise _Bad(TraceProblem("unknown-type", obj["$e"]))
        try:
            return cls(_decode(obj["v"], registry, depth + 1))
        except (ValueError, TypeError) as exc:
            raise _Bad(TraceProblem("bad-value", f"{obj['$e']} has no such member")) from exc
    if isinstance(obj.get("$t"), str):
        cls = registry.get(obj["$t"])
        if cls is None or not dataclasses.is_dataclass(cls):
            raise _Bad(TraceProblem("unknown-type", obj["$t"]))
        kwargs = {k: _decode(v, registry, depth + 1) for k, v in obj.items() if k != "$t"}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError, LocalProtocolError) as exc:
            raise _Bad(TraceProblem("bad-value", f"{obj['$t']}: {type(exc).__name__}")) from exc
    raise _Bad(TraceProblem("bad-value", "object without a known tag"))


# ---- lines --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """The first line of a trace."""

    machine: str
    config: Mapping[str, JSON] = field(default_factory=dict)
    thalovant: str = ""
    secrets: str = "none"
    v: int = TRACE_VERSION

    def to_line(self) -> str:
        obj = {"v": self.v, "machine": self.machine, "config": dict(self.config), "thalovant": self.thalovant}
        obj["secrets"] = self.secrets
        return _dumps(obj)


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step: the input at ``now``, the draws it made, the outputs and the deadline after it.

    ``inp`` and ``out`` stay in their JSON form, so comparing a replay with the
    recording compares exactly what was written.
    """

    seq: int
    now: float
    inp: JSON
    entropy: tuple[str, ...]
    out: tuple[JSON, ...]
    deadline: float | None

    def to_line(self) -> str:
        return _dumps(
            {
                "seq": self.seq,
                "now": self.now,
                "in": self.inp,
                "entropy": list(self.entropy),
                "out": list(self.out),
                "deadline": self.deadline,
            }
        )


def _dumps(obj: JSON) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _loads(line: str) -> Result[dict[str, Any], TraceProblem]:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return Failure(TraceProblem("bad-json", type(exc).__name__))
    if not isinstance(obj, dict):
        return Failure(TraceProblem("bad-json", "not an object"))
    return Success(obj)


def load_header(line: str) -> Result[TraceHeader, TraceProblem]:
    """Parse the header line; a different ``v`` is a ``version`` problem."""
    parsed = _loads(line)
    if isinstance(parsed, Failure):
        return parsed
    obj = parsed.unwrap()
    if obj.get("v") != TRACE_VERSION:
        return Failure(TraceProblem("version", f"unsupported trace version {obj.get('v')!r}"))
    machine, config, version = obj.get("machine"), obj.get("config", {}), obj.get("thalovant", "")
    if not isinstance(machine, str) or not isinstance(config, dict) or not isinstance(version, str):
        return Failure(TraceProblem("bad-header", "machine, config or thalovant has the wrong type"))
    return Success(TraceHeader(machine, config, version, str(obj.get("secrets", "none"))))


def _as_float(x: object) -> float | None:
    """``x`` as a float if it is a JSON number that fits one, else None."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    try:
        return float(x)
    except OverflowError:
        return None


def load_step(line: str) -> Result[TraceStep, TraceProblem]:
    """Parse one step line (values stay in JSON form)."""
    parsed = _loads(line)
    if isinstance(parsed, Failure):
        return parsed
    obj = parsed.unwrap()
    seq, draws, out = obj.get("seq"), obj.get("entropy"), obj.get("out")
    now, deadline = _as_float(obj.get("now")), _as_float(obj.get("deadline"))
    if (
        not isinstance(seq, int)
        or isinstance(seq, bool)
        or now is None
        or "in" not in obj
        or not isinstance(draws, list)
        or not all(isinstance(d, str) and _is_hex(d) for d in draws)
        or not isinstance(out, list)
        or (deadline is None and obj.get("deadline") is not None)
    ):
        return Failure(TraceProblem("bad-step", "missing or mistyped field"))
    return Success(TraceStep(seq=seq, now=now, inp=obj["in"], entropy=tuple(draws), out=tuple(out), deadline=deadline))


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


# ---- entropy ------------------------------------------------------------------------------------


class RecordingEntropy:
    """Wraps an entropy source and remembers every draw (as hex) until :meth:`take`."""

    def __init__(self, entropy: Entropy) -> None:
        self._source = entropy
        self._draws: list[str] = []

    def __call__(self, n: int) -> bytes:
        data = self._source(n)
        self._draws.append(data.hex())
        return data

    def take(self) -> tuple[str, ...]:
        """The draws since the last call, oldest first."""
        draws, self._draws = tuple(self._draws), []
        return draws


class Tape:
    """Replays recorded draws in order; any other request raises :class:`TapeMismatch`."""

    def __init__(self, draws: Iterable[str] = ()) -> None:
        self._draws: list[bytes] = [bytes.fromhex(d) for d in draws]
        self._pos = 0

    def feed(self, draws: Iterable[str]) -> None:
        """Append more recorded draws (hex)."""
        self._draws.extend(bytes.fromhex(d) for d in draws)

    @property
    def remaining(self) -> int:
        """How many recorded draws are not used yet."""
        return len(self._draws) - self._pos

    def __call__(self, n: int) -> bytes:
        if self._pos >= len(self._draws):
            raise TapeMismatch(f"entropy tape: draw #{self._pos} of {n} bytes was not recorded")
        data = self._draws[self._pos]
        if len(data) != n:
            raise TapeMismatch(f"entropy tape: draw #{self._pos} wants {n} bytes, recorded {len(data)}")
        self._pos += 1
        return data


# ---- recording ----------------------------------------------------------------------------------


class Recorder:
    """Builds trace lines; the shell writes them (this class does no IO).

    Args:
        header: the trace header.
        entropy: the machine's recording entropy wrapper, whose draws each
            step collects; None if the machine takes no entropy.
        on_line: called with every line as it is made, the header first (the shell's
            file writer); the lines are kept in :attr:`lines` as well.
    """

    def __init__(
        self,
        header: TraceHeader,
        *,
        entropy: RecordingEntropy | None = None,
        on_line: Callable[[str], object] | None = None,
    ) -> None:
        self._entropy = entropy
        self._seq = 0
        self._on_line = on_line
        self.lines: list[str] = [header.to_line()]
        if on_line is not None:
            on_line(self.lines[0])

    def record_step(
        self,
        now: float,
        inp: Input,
        outputs: Iterable[Output],
        deadline: float | None,
        entropy: Iterable[str] | None = None,
    ) -> str:
        """Encode one step, append it to :attr:`lines` and return the line (no newline).

        ``entropy`` overrides the draws taken from the wrapper given at construction.
        """
        draws = tuple(entropy) if entropy is not None else (self._entropy.take() if self._entropy else ())
        step = TraceStep(
            seq=self._seq,
            now=float(now),
            inp=encode_value(inp),
            entropy=draws,
            out=tuple(encode_value(o) for o in outputs),
            deadline=deadline,
        )
        self._seq += 1
        line = step.to_line()
        self.lines.append(line)
        if self._on_line is not None:
            self._on_line(line)
        return line
