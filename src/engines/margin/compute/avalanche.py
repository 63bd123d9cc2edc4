"""Compute kinds of the margin-call avalanche (`avalanche`) and of credit facility sizing (`facility`).

- `margin.avalanche`: the avalanche simulation of a book. Chunkable by paths: the splitter gives each chunk a
  range of paths (``first_path``, ``paths``) of the same run, the counter-based random numbers make each path
  the same whichever chunk simulates it, and the combiner concatenates the chunks' per-path outputs and merges
  their tail candidates, so the combined answer is exactly the unchunked one. Chunks must share
  ``settings.seed`` (give it in the inputs: a chunk without one draws with its own request seed, and chunks of
  different seeds are refused at combination).
- `margin.facility_sizing`: the smallest facility limit meeting `confidence` (99%) over the stress, with the
  facility's notice and daily cap (``daily_cap``: "proportional" to the limit, the default, or "fixed") and
  without them (`facility.size_facility`). Not chunkable (the bisection needs every path's status at each
  trial limit).

Inputs: ``book`` — ``"sample"`` (the generated sample book) or the path of a book directory readable by the
worker; ``book_seed`` (optional) — the sample's generator seed (default 2026); ``settings`` (optional) —
`avalanche.AvalancheSettings` fields (``settings.seed`` defaults to the request's seed, else 2026). The
avalanche also takes ``first_path`` and ``paths`` (the chunk's range, default all); the sizing takes
``confidence``, ``daily_cap`` and ``tolerance_usd``. The starting IM per venue is the book's baseline margin
(`baseline.baseline_margin`). Errors name the field (``settings.vol_multiplier``, ``paths``, ``book``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engines.registry import (
    InvalidInputs,
    check_fields,
    choice,
    integer,
    number,
    parse_model,
    register,
)

SAMPLE = "sample"
DEFAULT_SEED = 2026
COMMON = ("book_seed", "settings")


def load(inputs: Mapping[str, Any]) -> tuple[Any, int | None]:
    """The loaded book the inputs name, and the sample's generator seed (None for a directory)."""
    raw = inputs["book"]
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInputs("book", f"'sample' or the path of a book directory, got {raw!r}")
    if raw.strip().lower() == SAMPLE:
        used = integer(inputs, "book_seed", minimum=0) if "book_seed" in inputs else DEFAULT_SEED
        from engines.margin.generator import sample

        return sample(used), used
    from engines.margin.files import BookFileError, load_book

    try:
        return load_book(raw), None
    except BookFileError as exc:
        raise InvalidInputs("book", str(exc)) from None
    except OSError as exc:
        raise InvalidInputs("book", f"{raw}: {exc.strerror or exc}") from None


def settings_of(inputs: Mapping[str, Any], seed: int | None) -> Any:
    """The avalanche settings of the inputs; `settings.seed` from the request's seed when not given."""
    from engines.margin.avalanche import AvalancheSettings

    data = dict(inputs.get("settings") or {})
    if "seed" not in data:
        data["seed"] = seed if seed is not None else DEFAULT_SEED
    return parse_model(AvalancheSettings, data, "settings")


def avalanche_report(
    loaded: Any, settings: Any, *, first_path: int = 0, paths: int | None = None, per_path: bool = True,
    progress: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """The avalanche of a loaded book as JSON-ready data: the summary, and with `per_path` the per-path arrays that
    `combine_avalanche` needs (what `risklab margin avalanche --json` prints, without them)."""
    from engines.margin.avalanche import prepare_book, simulate_avalanche

    model = prepare_book(loaded, settings)
    result = simulate_avalanche(None, None, None, None, model=model, first_path=first_path, paths=paths,
                                progress=progress)  # fmt: skip
    n = len(result.path_ids)
    return {"as_of": loaded.book.as_of.isoformat(), "path_range": [first_path, n], **result.to_dict(per_path=per_path)}


def facility_report(
    loaded: Any, settings: Any, *, confidence: float = 0.99, daily_cap: str = "proportional",
    tolerance_usd: float = 1e6, progress: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Facility sizing of a loaded book as JSON-ready data."""
    from engines.margin.facility import size_facility_of_book

    sizing = size_facility_of_book(loaded, settings, confidence=confidence, daily_cap=daily_cap,  # type: ignore[arg-type]
                                   tolerance_usd=tolerance_usd, progress=progress)  # fmt: skip
    return {"as_of": loaded.book.as_of.isoformat(), **sizing.to_dict()}


def path_chunks(inputs: Mapping[str, Any], chunks: int) -> list[dict[str, Any]]:
    """Split an avalanche request's path range into at most `chunks` consecutive ranges."""
    from engines.margin.avalanche import AvalancheSettings

    raw = inputs.get("settings") or {}
    total = raw.get("paths", AvalancheSettings.model_fields["paths"].default) if isinstance(raw, Mapping) else None
    first = inputs.get("first_path", 0)
    if not isinstance(total, int) or not isinstance(first, int):
        return [dict(inputs)]
    n = inputs.get("paths", total - first)
    if not isinstance(n, int) or n < 1:
        return [dict(inputs)]
    count = max(1, min(chunks, n))
    bounds = [first + n * i // count for i in range(count + 1)]
    return [{**inputs, "first_path": bounds[i], "paths": bounds[i + 1] - bounds[i]} for i in range(count)]


def combine_avalanche(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate the chunks' paths and merge their tail candidates: the statistics of the whole run."""
    from engines.margin.avalanche import AvalancheResult, combine

    parts = [AvalancheResult.from_dict(r) for r in results]
    seeds = {p.settings.seed for p in parts}
    if len(seeds) > 1:
        raise ValueError(f"settings.seed: the chunks drew with different seeds {sorted(seeds)}; give settings.seed")
    combined = combine(parts)
    first = min(int(r["path_range"][0]) for r in results)
    out = {k: v for k, v in results[0].items() if k not in ("summary", "per_path", "path_range")}
    return {**out, "path_range": [first, len(combined.path_ids)], **combined.to_dict(per_path=True)}


@register("margin.avalanche", combine=combine_avalanche, split=path_chunks)
def margin_avalanche(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Margin-call avalanche: hourly calls, cash waterfall and forced liquidation with feedback, by Monte Carlo."""
    check_fields(inputs, ("book",), (*COMMON, "first_path", "paths"))
    settings = settings_of(inputs, seed)
    first = integer(inputs, "first_path", minimum=0, maximum=settings.paths - 1) if "first_path" in inputs else 0
    rest = settings.paths - first
    paths = integer(inputs, "paths", minimum=1, maximum=rest) if "paths" in inputs else rest
    loaded, used = load(inputs)
    try:
        report = avalanche_report(loaded, settings, first_path=first, paths=paths)
    except ValueError as exc:
        raise InvalidInputs("book", str(exc)) from None
    return {"book": inputs["book"], "book_seed": used, **report}


@register("margin.facility_sizing")
def margin_facility_sizing(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """Credit facility sizing at a confidence over the avalanche stress, with and without drawdown delays."""
    check_fields(inputs, ("book",), (*COMMON, "confidence", "daily_cap", "tolerance_usd"))
    settings = settings_of(inputs, seed)
    confidence = number(inputs, "confidence") if "confidence" in inputs else 0.99
    if not 0.0 < confidence < 1.0:
        raise InvalidInputs("confidence", f"must lie strictly between 0 and 1, got {confidence}")
    tolerance = number(inputs, "tolerance_usd", positive=True) if "tolerance_usd" in inputs else 1e6
    cap = choice(inputs, "daily_cap", ("proportional", "fixed")) if "daily_cap" in inputs else "proportional"
    loaded, used = load(inputs)
    try:
        report = facility_report(loaded, settings, confidence=confidence, daily_cap=cap, tolerance_usd=tolerance)
    except ValueError as exc:
        raise InvalidInputs("book", str(exc)) from None
    return {"book": inputs["book"], "book_seed": used, **report}
