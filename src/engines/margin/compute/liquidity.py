"""Compute kinds of the margin engine's liquidity and portfolio tools.

- `margin.liquidity`: the 30-day margin and cash-flow ladder by currency and venue, expected and stressed
  (`liquidity.book_ladder`), with the concentration and margin-efficiency summary beside it.
- `margin.concentration`: shares of initial margin (and of gross notional) by manager, asset class, CCP
  and bilateral counterparty against the 15/30/25/10% limits, and margin efficiency by strategy and
  manager (`concentration.book_concentration`, `efficiency.book_efficiency`).
- `margin.optimise`: strategy scale factors within ±25% that cut total stressed margin at the return
  target (`optimiser.optimise_book`).
- `margin.venue_whatif`: the IM change per venue and in total when positions move to another venue
  (`portfolio.move_book_positions`).

Inputs shared by all: ``book`` — ``"sample"`` or the path of a book directory readable by the worker;
``seed`` (optional) — the sample's generator seed (default: the request's seed, else 2026; recorded in
the result). Each kind's own inputs are listed in its function's docstring. All are deterministic and
not chunkable (seconds of work on one book). Errors name the field (``limits.manager``, ``to_venue``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engines.margin.compute.baseline import load
from engines.registry import InvalidInputs, check_fields, integer, number, register, split_named_field

Progress = Callable[[int, int], None] | None
DIMENSIONS = ("manager", "asset_class", "venue", "counterparty")


def engine_call(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run an engine call, turning a ValueError that names a field into InvalidInputs."""
    try:
        return run()
    except InvalidInputs:
        raise
    except ValueError as exc:
        field, reason = split_named_field(str(exc))
        raise InvalidInputs(field or "inputs", reason) from None


def source(inputs: Mapping[str, Any], used: int | None) -> dict[str, Any]:
    return {"book": inputs["book"], "seed": used}


def fraction(inputs: Mapping[str, Any], field: str, default: float, *, low: float = 0.0, high: float = 1.0) -> float:
    if field not in inputs:
        return default
    value = number(inputs, field)
    if not low <= value <= high:
        raise InvalidInputs(field, f"must lie in [{low:g}, {high:g}], got {value!r}")
    return value


# ---- reports (also what the CLI prints with --json) ---------------------------------------------------------


def liquidity_report(
    loaded: Any,
    *,
    days: int = 30,
    confidence: float = 0.99,
    vol_multiplier: float = 2.0,
    vm_inflow_credit: float = 0.0,
    top: int | None = 20,
    progress: Progress = None,
) -> dict[str, Any]:
    """Ladder, concentration and efficiency of a loaded book as JSON-ready data."""
    from engines.margin.baseline import baseline_margin
    from engines.margin.concentration import book_concentration
    from engines.margin.efficiency import book_efficiency
    from engines.margin.liquidity import book_ladder

    def step(done: int) -> None:
        if progress is not None:
            progress(done, 6)

    step(0)
    base = baseline_margin(loaded)
    step(1)
    ladder = book_ladder(
        loaded,
        baseline=base,
        days=days,
        confidence=confidence,
        vol_multiplier=vol_multiplier,
        vm_inflow_credit=vm_inflow_credit,
        progress=lambda done, total: step(1 + 4 * done // total),
    )
    concentration = book_concentration(loaded, baseline=base)
    efficiency = book_efficiency(loaded, baseline=base)
    step(6)
    return {
        "as_of": loaded.book.as_of.isoformat(),
        "ladder": ladder.to_dict(top_venues=top),
        "concentration": concentration.to_dict(top=top),
        "efficiency": efficiency.to_dict(top=top),
    }


def concentration_report(
    loaded: Any, *, limits: dict[str, float] | None = None, top: int | None = None, progress: Progress = None
) -> dict[str, Any]:
    """Concentration and efficiency of a loaded book as JSON-ready data."""
    from engines.margin.baseline import baseline_margin
    from engines.margin.concentration import book_concentration
    from engines.margin.efficiency import book_efficiency

    base = baseline_margin(loaded, progress=progress)
    return {
        "as_of": loaded.book.as_of.isoformat(),
        "concentration": book_concentration(loaded, baseline=base, limits=limits).to_dict(top=top),
        "efficiency": book_efficiency(loaded, baseline=base).to_dict(top=top),
    }


def optimise_report(
    loaded: Any,
    *,
    vol_multiplier: float = 2.0,
    confidence: float = 0.99,
    return_target_usd: float | None = None,
    max_change: float = 0.25,
    check_with_model: bool = True,
    progress: Progress = None,
) -> dict[str, Any]:
    """The optimiser's answer for a loaded book as JSON-ready data."""
    from engines.margin.optimiser import optimise_book

    result = optimise_book(
        loaded,
        vol_multiplier=vol_multiplier,
        confidence=confidence,
        return_target_usd=return_target_usd,
        max_change=max_change,
        check_with_model=check_with_model,
        progress=progress,
    )
    return {"as_of": loaded.book.as_of.isoformat(), "vol_multiplier": vol_multiplier, **result.to_dict()}


def venue_whatif_report(
    loaded: Any,
    to_venue: str,
    *,
    ids: list[str] | None = None,
    manager: str | None = None,
    asset_class: str | None = None,
    from_venue: str | None = None,
    vol_multiplier: float = 1.0,
) -> dict[str, Any]:
    """The venue what-if on a loaded book as JSON-ready data."""
    from engines.margin.portfolio import move_book_positions

    move = move_book_positions(loaded, to_venue, ids=ids, manager=manager, asset_class=asset_class,
                               from_venue=from_venue, vol_multiplier=vol_multiplier)  # fmt: skip
    return {"as_of": loaded.book.as_of.isoformat(), "vol_multiplier": vol_multiplier, **move.to_dict()}


# ---- kinds ----------------------------------------------------------------------------------------------------


def _top(inputs: Mapping[str, Any], default: int | None) -> int | None:
    return integer(inputs, "top", minimum=1) if "top" in inputs else default


@register("margin.liquidity")
def margin_liquidity(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """30-day margin and cash-flow ladder by currency and venue, with concentration and efficiency.

    Inputs: ``days`` (1-60, default 30), ``confidence`` (default 0.99), ``vol_multiplier`` of the
    stressed IM path (default 2), ``vm_inflow_credit`` (0-1, default 0), ``top`` (venues and groups listed,
    default 20).
    """
    check_fields(inputs, ("book",), ("seed", "days", "confidence", "vol_multiplier", "vm_inflow_credit", "top"))
    days = integer(inputs, "days", minimum=1, maximum=60) if "days" in inputs else 30
    confidence = fraction(inputs, "confidence", 0.99, low=0.5, high=0.9999)
    multiplier = fraction(inputs, "vol_multiplier", 2.0, low=1.0, high=100.0)
    credit = fraction(inputs, "vm_inflow_credit", 0.0)
    top = _top(inputs, 20)
    loaded, used = load(inputs, seed)
    report = engine_call(lambda: liquidity_report(loaded, days=days, confidence=confidence, vol_multiplier=multiplier,
                                                  vm_inflow_credit=credit, top=top))  # fmt: skip
    return {**source(inputs, used), **report}


@register("margin.concentration")
def margin_concentration(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Concentration by manager, asset class, venue and counterparty against limits, and margin efficiency.

    Inputs: ``limits`` (optional, e.g. {"manager": 0.15}: shares in (0, 1] by dimension), ``top``
    (groups listed per dimension, default all).
    """
    check_fields(inputs, ("book",), ("seed", "limits", "top"))
    raw = inputs.get("limits") or {}
    if not isinstance(raw, Mapping):
        raise InvalidInputs("limits", f"an object of shares by dimension ({', '.join(DIMENSIONS)}), got {raw!r}")
    limits = {}
    for key, value in raw.items():
        if key not in DIMENSIONS:
            raise InvalidInputs(f"limits.{key}", f"not a concentration dimension; use {', '.join(DIMENSIONS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise InvalidInputs(f"limits.{key}", f"a share in (0, 1], got {value!r}")
        limits[str(key)] = float(value)
    top = _top(inputs, None)
    loaded, used = load(inputs, seed)
    return {**source(inputs, used), **engine_call(lambda: concentration_report(loaded, limits=limits, top=top))}


@register("margin.optimise")
def margin_optimise(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Strategy scale factors within ±max_change that minimise total stressed margin at the return target.

    Inputs: ``vol_multiplier`` of the stressed scenarios (default 2), ``confidence`` (default 0.99),
    ``return_target_usd`` (default: today's expected return), ``max_change`` (default 0.25),
    ``check_with_model`` (default true: run the venues' own stressed models before and after).
    """
    check_fields(inputs, ("book",), ("seed", "vol_multiplier", "confidence", "return_target_usd", "max_change",
                                     "check_with_model"))  # fmt: skip
    multiplier = fraction(inputs, "vol_multiplier", 2.0, low=0.1, high=100.0)
    confidence = fraction(inputs, "confidence", 0.99, low=0.5, high=0.9999)
    target = number(inputs, "return_target_usd") if "return_target_usd" in inputs else None
    max_change = fraction(inputs, "max_change", 0.25, high=0.99)
    check = inputs.get("check_with_model", True)
    if not isinstance(check, bool):
        raise InvalidInputs("check_with_model", f"must be true or false, got {check!r}")
    loaded, used = load(inputs, seed)
    report = engine_call(lambda: optimise_report(loaded, vol_multiplier=multiplier, confidence=confidence,
                                                 return_target_usd=target, max_change=max_change,
                                                 check_with_model=check))  # fmt: skip
    return {**source(inputs, used), **report}


def _text(inputs: Mapping[str, Any], field: str) -> str | None:
    if field not in inputs:
        return None
    value = inputs[field]
    if not isinstance(value, str) or not value:
        raise InvalidInputs(field, f"must be a non-empty string, got {value!r}")
    return value


@register("margin.venue_whatif")
def margin_venue_whatif(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """IM change per venue and in total when positions move to another venue (the netting benefit).

    Inputs: ``to_venue`` (required); which positions: any of ``ids`` (list of position ids), ``manager``,
    ``asset_class``, ``from_venue`` (all given must match); ``vol_multiplier`` (default 1: today's margin).
    """
    check_fields(inputs, ("book", "to_venue"), ("seed", "ids", "manager", "asset_class", "from_venue",
                                                "vol_multiplier"))  # fmt: skip
    to_venue = _text(inputs, "to_venue") or ""
    ids = inputs.get("ids")
    if ids is not None and (not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids)):
        raise InvalidInputs("ids", f"a non-empty list of position ids, got {ids!r}")
    manager, asset_class, from_venue = (_text(inputs, f) for f in ("manager", "asset_class", "from_venue"))
    multiplier = fraction(inputs, "vol_multiplier", 1.0, low=0.1, high=100.0)
    loaded, used = load(inputs, seed)
    report = engine_call(lambda: venue_whatif_report(loaded, to_venue, ids=ids, manager=manager,
                                                     asset_class=asset_class, from_venue=from_venue,
                                                     vol_multiplier=multiplier))  # fmt: skip
    return {**source(inputs, used), **report}
