"""The registry of compute kinds: named engine functions that engine workers run on request.

A kind is a stable name (``mc.european_option``) bound to a function of a JSON-like input dict
and a seed, returning a JSON-like result dict, plus a combiner that folds the results of the
chunks of one request into one answer. Workers look kinds up by name, so what travels in a
``ComputeRequested`` event is data, never an import path.

Engine modules register their kinds on import with the `register` decorator; the registry
imports the modules listed in `ENGINE_MODULES` the first time it is consulted, so a caller of
`run` need not know which module provides a kind. Errors name the input field at fault.

This package imports nothing of the platform (no bus, no agents): engines are a library.
"""

from __future__ import annotations

import importlib
import math
import re
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

EngineFunction = Callable[[Mapping[str, Any], "int | None"], dict[str, Any]]
"""An engine function: (inputs, seed) -> result, both JSON-like."""

Combiner = Callable[[list[dict[str, Any]]], dict[str, Any]]
"""Folds the results of a request's chunks, in chunk order, into one result."""

Splitter = Callable[[Mapping[str, Any], int], list[dict[str, Any]]]
"""Splits one request's inputs into at most n chunks' inputs (a kind without one repeats its inputs per chunk,
each chunk drawing with its own seed)."""

ENGINE_MODULES: tuple[str, ...] = (
    "engines.common.black_scholes",
    "engines.common.montecarlo",
    "engines.structured.kinds",
    "engines.margin.compute",
    "engines.xva.compute",
)
"""Modules that register kinds when imported; add a desk's engine module here."""


class EngineError(Exception):
    """Base of the errors the registry raises about a request (as opposed to a bug in an engine)."""


class UnknownKind(EngineError, LookupError):
    """No engine is registered under the requested kind."""

    def __init__(self, kind: str, known: Collection[str]) -> None:
        self.kind = kind
        super().__init__(f"unknown compute kind {kind!r}; known kinds: {', '.join(sorted(known)) or 'none'}")


_NAMED_FIELD = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): ")


def split_named_field(message: str) -> tuple[str | None, str]:
    """(field, reason) of a validation message; the field is None unless the message starts by naming it.

    Checks that span several fields (a pydantic model validator) cannot point pydantic at one field, so
    they name it at the start of their message (``knock_in.barrier: 0.9 is above ...``); pydantic's
    ``Value error, `` and ``Assertion failed, `` prefixes are dropped.
    """
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    named = _NAMED_FIELD.match(message)
    if named is None:
        return None, message
    return named.group(1), message[named.end() :]


class InvalidInputs(EngineError, ValueError):
    """An input that an engine cannot accept; `field` names it and `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class ComputeKind:
    """A registered kind: its engine function and the combiner of its chunks."""

    name: str
    function: EngineFunction
    combiner: Combiner
    chunkable: bool
    summary: str
    splitter: Splitter | None = None

    def split(self, inputs: Mapping[str, Any], chunks: int) -> list[dict[str, Any]]:
        """The inputs of each chunk: the kind's own split, or the same inputs `chunks` times."""
        if chunks < 1:
            raise ValueError(f"chunks: at least 1, got {chunks}")
        if not self.chunkable or chunks == 1:
            return [dict(inputs)]
        if self.splitter is not None:
            return self.splitter(inputs, chunks)
        return [dict(inputs) for _ in range(chunks)]


_kinds: dict[str, ComputeKind] = {}
_load_lock = threading.Lock()
_loaded = False


def register(
    kind: str, *, combine: Combiner | None = None, split: Splitter | None = None
) -> Callable[[EngineFunction], EngineFunction]:
    """Decorator registering `fn(inputs, seed) -> result` under `kind`.

    `combine` folds chunk results; without it the kind is not chunkable and its combiner
    accepts exactly one result. Registering a different function under a taken name is an
    error (re-importing the same module is not).
    """
    if not kind or kind != kind.strip() or any(c.isspace() for c in kind):
        raise ValueError(f"kind {kind!r}: a non-empty name without spaces is required")

    def decorate(fn: EngineFunction) -> EngineFunction:
        existing = _kinds.get(kind)
        if existing is not None and _qualified(existing.function) != _qualified(fn):
            raise ValueError(f"kind {kind!r} is already registered by {_qualified(existing.function)}")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _kinds[kind] = ComputeKind(kind, fn, combine or _single_result(kind), combine is not None, summary, split)
        return fn

    return decorate


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _single_result(kind: str) -> Combiner:
    def combine_one(results: list[dict[str, Any]]) -> dict[str, Any]:
        if len(results) != 1:
            raise ValueError(f"kind {kind!r} is not chunkable: expected 1 result, got {len(results)}")
        return results[0]

    return combine_one


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if not _loaded:
            for module in ENGINE_MODULES:
                importlib.import_module(module)
            _loaded = True


def get(kind: str) -> ComputeKind:
    """The registered kind named `kind`; `UnknownKind` if there is none."""
    _ensure_loaded()
    try:
        return _kinds[kind]
    except KeyError:
        raise UnknownKind(kind, _kinds) from None


def kinds() -> list[str]:
    """Names of all registered kinds, sorted."""
    _ensure_loaded()
    return sorted(_kinds)


def run(kind: str, inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Run the engine of `kind` on `inputs` with `seed`.

    Raises `UnknownKind`, or `InvalidInputs` naming the field at fault; any other exception
    is the engine's own failure.
    """
    entry = get(kind)
    if not isinstance(inputs, Mapping):
        raise InvalidInputs("inputs", f"must be a mapping of field names to values, not {type(inputs).__name__}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidInputs("seed", f"must be a non-negative integer, got {seed!r}")
    return entry.function(inputs, seed)


def combine(kind: str, results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Fold the results of a request's chunks (in chunk order) into one result."""
    entry = get(kind)
    if not results:
        raise ValueError(f"kind {kind!r}: no chunk results to combine")
    return entry.combiner([dict(r) for r in results])


# ---- input checks shared by engine functions; each raises InvalidInputs naming the field ----


def check_fields(inputs: Mapping[str, Any], required: Collection[str], optional: Collection[str] = ()) -> None:
    """Refuse missing required fields and unknown ones (a misspelt field must not be ignored)."""
    missing = [f for f in required if f not in inputs]
    if missing:
        raise InvalidInputs(
            missing[0], "is required" + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "")
        )
    allowed = set(required) | set(optional)
    unknown = sorted(str(f) for f in inputs if f not in allowed)
    if unknown:
        raise InvalidInputs(unknown[0], f"is not an input of this kind; expected fields: {', '.join(sorted(allowed))}")


def number(inputs: Mapping[str, Any], field: str, *, positive: bool = False) -> float:
    """`inputs[field]` as a finite float (strictly positive if `positive`)."""
    value = inputs[field]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputs(field, f"must be a number, got {type(value).__name__} {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise InvalidInputs(field, f"must be finite, got {value!r}")
    if positive and result <= 0:
        raise InvalidInputs(field, f"must be positive, got {value!r}")
    return result


def integer(inputs: Mapping[str, Any], field: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """`inputs[field]` as an int (an integral float such as 2e5 is accepted) within bounds."""
    value = inputs[field]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputs(field, f"must be an integer, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise InvalidInputs(field, f"must be an integer, got {value!r}")
    result = int(value)
    if minimum is not None and result < minimum:
        raise InvalidInputs(field, f"must be at least {minimum}, got {result}")
    if maximum is not None and result > maximum:
        raise InvalidInputs(field, f"must be at most {maximum}, got {result}")
    return result


def choice(inputs: Mapping[str, Any], field: str, options: Sequence[str]) -> str:
    """`inputs[field]`, which must be one of `options`."""
    value = inputs[field]
    if value not in options:
        raise InvalidInputs(field, f"must be one of {', '.join(repr(o) for o in options)}, got {value!r}")
    return str(value)


def parse_model(model: type[BaseModel], data: Any, field: str) -> Any:
    """Validate `data` as `model`; the first error becomes InvalidInputs naming `field.<location>` (list items as
    `field[i]`, the tag of a discriminated union left out), with "is required" / "is not a known field"."""
    if not isinstance(data, Mapping):
        raise InvalidInputs(field or "inputs", f"must be an object of fields, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc, node = "", data
        for part in err["loc"]:
            if isinstance(node, dict) and isinstance(part, str) and part not in node and node.get("type") == part:
                continue  # the tag of a discriminated union is not a field of the input
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
            node = _child(node, part)
        named, msg = split_named_field(str(err["msg"]))
        if named is not None:
            loc = f"{loc}.{named}" if loc else named
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known field"
        if not field or not loc:
            where = loc or field or "inputs"
        else:
            where = f"{field}{loc}" if loc.startswith("[") else f"{field}.{loc}"
        raise InvalidInputs(where, msg) from None


def _child(node: Any, part: int | str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
        return node[part]
    return None
