"""Compute kind of the margin engine's reverse stress test.

- `margin.reverse_stress`: the most plausible scenario that exhausts the book's liquidity resources
  (`reverse_stress.reverse_stress_of_book`): the factor moves, their Mahalanobis distance and probabilities,
  the breach day, the venues that break first and the position-by-position replay.

Inputs: ``book`` — ``"sample"`` or the path of a book directory readable by the worker; ``seed``
(optional) — the sample's generator seed (default: the request's seed, else 2026); ``search_seed``
(optional) — the search's seed (default: the request's seed, else 2026); ``iterations`` (generations,
default 1,000), ``population`` (default 128), ``horizon_days`` (default 10), ``lookback_days`` of the
covariance (default: all the history), ``vm_inflow_credit`` (0-1, default 0). Both seeds are in the
result.

Chunkable: each chunk runs an independent search with its own seed (a chunk's request seed, unless
``search_seed`` fixes it), and the combiner keeps the most plausible scenario found, listing every
chunk's distance beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engines.margin.compute.baseline import DEFAULT_SEED, load
from engines.margin.compute.liquidity import engine_call, fraction, source
from engines.registry import InvalidInputs, check_fields, integer, register

Progress = Callable[[int, int], None] | None


def reverse_stress_report(
    loaded: Any,
    *,
    iterations: int = 1_000,
    population: int = 128,
    seed: int = DEFAULT_SEED,
    horizon_days: int = 10,
    lookback_days: int | None = None,
    vm_inflow_credit: float = 0.0,
    progress: Progress = None,
) -> dict[str, Any]:
    """The reverse stress test of a loaded book as JSON-ready data (also what the CLI prints with --json)."""
    from engines.margin.reverse_stress import reverse_stress_of_book

    result = reverse_stress_of_book(
        loaded,
        horizon_days=horizon_days,
        lookback_days=lookback_days,
        iterations=iterations,
        population=population,
        seed=seed,
        vm_inflow_credit=vm_inflow_credit,
        progress=progress,
    )
    return {"as_of": loaded.book.as_of.isoformat(), **result.to_dict()}


def most_plausible(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The chunk whose scenario is nearest (smallest distance among those that found one), with every
    chunk's search seed and distance under ``chunks``."""
    found = [r for r in results if r.get("found")]
    best = min(found, key=lambda r: r["distance"]) if found else results[0]
    chunks = [{"search_seed": r["search"]["seed"], "distance": r["distance"] if r.get("found") else None}
              for r in results]  # fmt: skip
    return {**best, "chunks": chunks}


@register("margin.reverse_stress", combine=most_plausible)
def margin_reverse_stress(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """The most plausible scenario that exhausts the book's liquidity resources, and the venues that break first."""
    check_fields(inputs, ("book",), ("seed", "search_seed", "iterations", "population", "horizon_days",
                                     "lookback_days", "vm_inflow_credit"))  # fmt: skip
    if "search_seed" in inputs:
        search_seed = integer(inputs, "search_seed", minimum=0)
    else:
        search_seed = seed if seed is not None else DEFAULT_SEED
    iterations = integer(inputs, "iterations", minimum=1, maximum=100_000) if "iterations" in inputs else 1_000
    population = integer(inputs, "population", minimum=8, maximum=4_096) if "population" in inputs else 128
    horizon = integer(inputs, "horizon_days", minimum=1, maximum=60) if "horizon_days" in inputs else 10
    lookback = integer(inputs, "lookback_days", minimum=2) if "lookback_days" in inputs else None
    credit = fraction(inputs, "vm_inflow_credit", 0.0)
    loaded, used = load(inputs, seed)
    if lookback is not None and lookback > len(loaded.history.dates):
        raise InvalidInputs("lookback_days", f"the history has {len(loaded.history.dates)} days, got {lookback}")
    report = engine_call(lambda: reverse_stress_report(loaded, iterations=iterations, population=population,
                                                       seed=search_seed, horizon_days=horizon,
                                                       lookback_days=lookback, vm_inflow_credit=credit))  # fmt: skip
    return {**source(inputs, used), **report}
