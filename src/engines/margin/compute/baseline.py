"""Compute kinds of the margin engine's baseline, stressed and model-change margin.

- `margin.baseline`: IM per venue (CCP models and SIMM) and today's VM, with breakdowns per venue,
  counterparty, manager, strategy, currency and asset class (`baseline.baseline_margin`).
- `margin.stress`: baseline and stressed IM under vol multipliers and the correlation breakdown
  (`stressed.stressed_margin`).
- `margin.model_change`: the impact of a CCP model change set per venue, manager and date
  (`model_change.model_change_impact`).

Inputs shared by the three: ``book`` — ``"sample"`` (the generated sample book) or the path of a book
directory readable by the worker; ``seed`` (optional) — the sample's generator seed (default: the
request's seed, else 2026; recorded in the result); ``options`` (optional) — `ccp.CcpOptions` fields.
`margin.baseline` takes ``top`` (venues listed, default all); `margin.stress` takes ``multipliers``
(default [2, 5, 10]), ``correlation_breakdown`` (default true) and ``bilateral`` ("scaled" or
"unchanged"); `margin.model_change` takes ``change_set`` (a `ModelChangeSet` object) and ``dates``
(ISO dates, default: the change set's own). Not chunkable: each answer is seconds of work on one book.
Errors name the field (``options.horizon``, ``change_set.phase_in.end``, ``book``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from engines.registry import InvalidInputs, check_fields, choice, integer, parse_model, register, split_named_field

SAMPLE = "sample"
DEFAULT_SEED = 2026
COMMON = ("seed", "options")
MAX_MULTIPLIERS = 10


def load(inputs: Mapping[str, Any], seed: int | None) -> tuple[Any, int | None]:
    """The loaded book the inputs name, and the sample seed used (None for a directory)."""
    raw = inputs["book"]
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInputs("book", f"'sample' or the path of a book directory, got {raw!r}")
    if raw.strip().lower() == SAMPLE:
        used = integer(inputs, "seed", minimum=0) if "seed" in inputs else (seed if seed is not None else DEFAULT_SEED)
        from engines.margin.generator import sample

        return sample(used), used
    from engines.margin.files import BookFileError, load_book

    try:
        return load_book(raw), None
    except BookFileError as exc:
        raise InvalidInputs("book", str(exc)) from None


def ccp_options(inputs: Mapping[str, Any]) -> Any:
    from engines.margin.ccp import CcpOptions

    return parse_model(CcpOptions, inputs.get("options") or {}, "options")


def _source(inputs: Mapping[str, Any], used: int | None) -> dict[str, Any]:
    return {"book": inputs["book"], "seed": used}


def baseline_report(
    loaded: Any, *, options: Any = None, top: int | None = None, progress: Any = None
) -> dict[str, Any]:
    """`baseline_margin` of a loaded book as JSON-ready data (also what `risklab margin baseline --json` prints)."""
    from engines.margin.baseline import baseline_margin

    result = baseline_margin(loaded, options=options, progress=progress)
    return {"as_of": loaded.book.as_of.isoformat(), **result.to_dict(top=top)}


def stress_report(
    loaded: Any,
    *,
    multipliers: list[float],
    correlation_breakdown: bool = True,
    bilateral: str = "scaled",
    options: Any = None,
    progress: Any = None,
) -> dict[str, Any]:
    """`stressed_margin` of a loaded book as JSON-ready data."""
    from engines.margin.stressed import stressed_margin

    result = stressed_margin(loaded, multipliers=multipliers, correlation_breakdown=correlation_breakdown,
                             bilateral=bilateral, options=options, progress=progress)  # type: ignore[arg-type]  # fmt: skip
    return {"as_of": loaded.book.as_of.isoformat(), **result.to_dict()}


def model_change_report(
    loaded: Any, change: Any, dates: list[dt.date] | None = None, *, options: Any = None, progress: Any = None
) -> dict[str, Any]:
    """`model_change_impact` of a loaded book as JSON-ready data."""
    from engines.margin.model_change import model_change_impact

    impact = model_change_impact(loaded, change, dates, options=options, progress=progress)
    return {"as_of": loaded.book.as_of.isoformat(), **impact.to_dict()}


@register("margin.baseline")
def margin_baseline(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Baseline IM per venue (CCP models, SIMM) and today's VM with breakdowns, of a book."""
    check_fields(inputs, ("book",), (*COMMON, "top"))
    options = ccp_options(inputs)
    top = integer(inputs, "top", minimum=1) if "top" in inputs else None
    loaded, used = load(inputs, seed)
    return {**_source(inputs, used), **_engine(lambda: baseline_report(loaded, options=options, top=top))}


@register("margin.stress")
def margin_stress(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Baseline and stressed IM under vol multipliers and correlation breakdown, per venue, manager, currency."""
    check_fields(inputs, ("book",), (*COMMON, "multipliers", "correlation_breakdown", "bilateral"))
    options = ccp_options(inputs)
    multipliers = parse_multipliers(inputs.get("multipliers", [2, 5, 10]), "multipliers")
    breakdown = inputs.get("correlation_breakdown", True)
    if not isinstance(breakdown, bool):
        raise InvalidInputs("correlation_breakdown", f"must be true or false, got {breakdown!r}")
    bilateral = choice(inputs, "bilateral", ("scaled", "unchanged")) if "bilateral" in inputs else "scaled"
    loaded, used = load(inputs, seed)
    report = _engine(lambda: stress_report(loaded, multipliers=multipliers, correlation_breakdown=breakdown,
                                           bilateral=bilateral, options=options))  # fmt: skip
    return {**_source(inputs, used), **report}


@register("margin.model_change")
def margin_model_change(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Impact of a CCP model change set (effective date, phase-in) per venue, manager and date."""
    from engines.margin.model_change import ModelChangeSet

    check_fields(inputs, ("book", "change_set"), (*COMMON, "dates"))
    options = ccp_options(inputs)
    change = parse_model(ModelChangeSet, inputs["change_set"], "change_set")
    dates = parse_dates(inputs["dates"], "dates") if "dates" in inputs else None
    loaded, used = load(inputs, seed)
    return {**_source(inputs, used), **_engine(lambda: model_change_report(loaded, change, dates, options=options))}


def _engine(run: Any) -> dict[str, Any]:
    """Run an engine call, turning a ValueError that names a field into InvalidInputs."""
    try:
        return run()
    except InvalidInputs:
        raise
    except ValueError as exc:
        field, reason = split_named_field(str(exc))
        raise InvalidInputs(field or "inputs", reason) from None


def parse_multipliers(raw: Any, field: str) -> list[float]:
    """A non-empty list of positive vol multipliers (at most `MAX_MULTIPLIERS`)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInputs(field, f"a non-empty list of positive numbers, got {raw!r}")
    if len(raw) > MAX_MULTIPLIERS:
        raise InvalidInputs(field, f"at most {MAX_MULTIPLIERS} multipliers, got {len(raw)}")
    out = []
    for i, m in enumerate(raw):
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0 < m <= 1000:
            raise InvalidInputs(f"{field}[{i}]", f"a positive number (at most 1000), got {m!r}")
        out.append(float(m))
    return out


def parse_dates(raw: Any, field: str) -> list[dt.date]:
    """A non-empty list of ISO dates."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInputs(field, f"a non-empty list of ISO dates, got {raw!r}")
    out = []
    for i, d in enumerate(raw):
        try:
            out.append(dt.date.fromisoformat(d))
        except (TypeError, ValueError):
            raise InvalidInputs(f"{field}[{i}]", f"an ISO date such as 2026-12-01, got {d!r}") from None
    return out
