"""The structured-products engine as compute kinds that engine workers run on request.

- `structured.price`: price notes with Greeks and distributions. Chunkable by paths: each chunk
  prices a block-aligned range of paths of the same seeded sequence and returns sufficient
  statistics, so the combined answer equals the unchunked one.
- `structured.lab`: the variations of a base note (≥ 75 by default), priced as above.
- `structured.stress`: the stress grid. Chunkable by products: each chunk stresses a slice of
  the specs on all scenarios (the tail measures need every path of a product in one place).
- `structured.priips`: the PRIIPs KID indicators of one note.

The seed comes from `options.seed` when the inputs give one (so that chunks share one path
sequence), otherwise from the request's seed; the seed used is in every result. Inputs are
validated with the boundary models; an error names the field as `<input>.<path>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engines.registry import InvalidInputs, check_fields, parse_model, register
from engines.structured.kid import KidOptions, kid_indicators
from engines.structured.lab import LabGrid, variations
from engines.structured.market import MarketData
from engines.structured.pricing import PricingOptions, ProductStats, price_stats, result_from_stats
from engines.structured.sampling import BLOCK_PATHS
from engines.structured.simulation import check_market_covers
from engines.structured.spec import AutocallSpec
from engines.structured.stress import ScenarioSpec, StressOptions, default_scenarios, stress_test

MAX_SPECS = 2_000


def _specs(inputs: Mapping[str, Any]) -> list[AutocallSpec]:
    raw = inputs.get("specs")
    if not isinstance(raw, list) or not raw:
        raise InvalidInputs("specs", "give a non-empty list of autocallable specs")
    if len(raw) > MAX_SPECS:
        raise InvalidInputs("specs", f"at most {MAX_SPECS} specs per request, got {len(raw)}")
    return [parse_model(AutocallSpec, s, f"specs[{i}]") for i, s in enumerate(raw)]


def _options(inputs: Mapping[str, Any], seed: int | None) -> PricingOptions:
    data = dict(inputs.get("options") or {})
    if "seed" not in data:
        if seed is None:
            raise InvalidInputs("options.seed", "no seed in the options and none with the request")
        data["seed"] = seed
    return parse_model(PricingOptions, data, "options")


def _market(inputs: Mapping[str, Any], specs: list[AutocallSpec]) -> MarketData:
    market = parse_model(MarketData, inputs.get("market"), "market")
    check_market_covers(specs, market)
    return market


def _path_range(inputs: Mapping[str, Any], options: PricingOptions) -> tuple[int, int]:
    first = inputs.get("first_path", 0)
    paths = inputs.get("paths", options.paths)
    if not isinstance(first, int) or first < 0 or first % BLOCK_PATHS:
        raise InvalidInputs("first_path", f"must be a non-negative multiple of {BLOCK_PATHS}, got {first!r}")
    if not isinstance(paths, int) or paths < 2 or first + paths > options.paths:
        raise InvalidInputs(
            "paths", f"must be at least 2 and end within options.paths ({options.paths}), got {paths!r}"
        )
    return first, paths


def _priced(specs: list[AutocallSpec], inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    options = _options(inputs, seed)
    market = _market(inputs, specs)
    first, paths = _path_range(inputs, options)
    if options.antithetic and paths % 2:
        where = "paths" if "paths" in inputs else "options.paths"
        raise InvalidInputs(where, f"antithetic sampling needs an even number of paths, got {paths}")
    try:
        stats = price_stats(specs, market, options, first_path=first, paths=paths)
    except (ValueError, KeyError) as exc:
        raise InvalidInputs("inputs", str(exc)) from exc
    return _price_result(stats, options, [[options.seed, first, paths]])


def _price_result(stats: list[ProductStats], options: PricingOptions, ranges: list[list[int]]) -> dict[str, Any]:
    return {
        "options": options.model_dump(),
        "stats": [s.to_dict() for s in stats],
        "results": [result_from_stats(s, options).to_dict() for s in stats],
        "seed": options.seed,
        "path_ranges": ranges,
    }


def combine_price(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Add the chunks' statistics product by product and recompute the figures.

    Chunks must price disjoint path ranges (or use different seeds): the same paths twice would
    halve the standard error without adding information, so overlapping ranges are refused.
    """
    ranges: list[list[int]] = []
    for i, r in enumerate(results):
        for seed, first, n in r.get("path_ranges", []):
            for s2, f2, n2 in ranges:
                if seed == s2 and first < f2 + n2 and f2 < first + n:
                    raise ValueError(f"chunk {i} repeats paths [{first}, {first + n}) of seed {seed}: cannot combine")
            ranges.append([seed, first, n])
    options = PricingOptions.model_validate({**results[0]["options"], "seed": results[0]["seed"]})
    total = [ProductStats.from_dict(s) for s in results[0]["stats"]]
    for i, r in enumerate(results[1:], start=1):
        same = {k: v for k, v in r["options"].items() if k != "seed"}
        first = {k: v for k, v in results[0]["options"].items() if k != "seed"}
        if same != first or len(r["stats"]) != len(total):
            raise ValueError(f"chunk {i} priced other products or options than chunk 0: cannot combine")
        total = [a + ProductStats.from_dict(b) for a, b in zip(total, r["stats"], strict=True)]
    return _price_result(total, options, ranges)


def path_chunks(inputs: Mapping[str, Any], chunks: int) -> list[dict[str, Any]]:
    """Split a price or lab request into at most `chunks` block-aligned path ranges."""
    paths = int((inputs.get("options") or {}).get("paths", PricingOptions().paths))
    blocks = -(-paths // BLOCK_PATHS)
    per = -(-blocks // max(1, chunks))
    out = []
    for start_block in range(0, blocks, per):
        first = start_block * BLOCK_PATHS
        n = min(paths, (start_block + per) * BLOCK_PATHS) - first
        out.append({**inputs, "first_path": first, "paths": n})
    return out


def spec_chunks(inputs: Mapping[str, Any], chunks: int) -> list[dict[str, Any]]:
    """Split a stress request into at most `chunks` slices of its specs."""
    specs = list(inputs.get("specs") or [])
    per = -(-len(specs) // max(1, chunks))
    return [{**inputs, "specs": specs[i : i + per]} for i in range(0, len(specs), per)]


@register("structured.price", combine=combine_price, split=path_chunks)
def price_kind(inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """Price autocallable notes (price, standard error, fair coupon, probabilities, IRR, Greeks)."""
    check_fields(inputs, ("specs", "market"), ("options", "first_path", "paths"))
    return _priced(_specs(inputs), inputs, seed)


def combine_lab(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine the chunks' statistics as for `structured.price`, keeping the variations' specs."""
    for i, r in enumerate(results[1:], start=1):
        if r.get("specs") != results[0].get("specs"):
            raise ValueError(f"chunk {i} priced other variations than chunk 0: cannot combine")
    return {**combine_price(results), "specs": results[0].get("specs")}


@register("structured.lab", combine=combine_lab, split=path_chunks)
def lab_kind(inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """Generate the variations of a base note over the lab grid and price them all."""
    check_fields(inputs, ("base", "market"), ("grid", "options", "first_path", "paths"))
    base = parse_model(AutocallSpec, inputs["base"], "base")
    grid = parse_model(LabGrid, inputs.get("grid") or {}, "grid")
    try:
        specs = variations(base, grid)
    except ValueError as exc:
        raise InvalidInputs("grid", str(exc)) from exc
    result = _priced(specs, inputs, seed)
    result["specs"] = [s.model_dump() for s in specs]
    return result


def combine_stress(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate the chunks' product results (all chunks ran the same scenarios)."""
    first = results[0]
    out = {**first, "results": []}
    for i, r in enumerate(results):
        if r["scenarios"] != first["scenarios"] or r["options"] != first["options"]:
            raise ValueError(f"chunk {i} ran other scenarios or options than chunk 0: cannot combine")
        out["results"] += r["results"]
    return out


@register("structured.stress", combine=combine_stress, split=spec_chunks)
def stress_kind(inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """Revalue notes on the stress grid (≥ 320 scenarios by default) and report the issuer's risk."""
    check_fields(inputs, ("specs", "market"), ("options", "scenarios", "stress"))
    specs = _specs(inputs)
    options = _options(inputs, seed)
    market = _market(inputs, specs)
    raw = inputs.get("scenarios")
    if raw is None:
        scenarios = default_scenarios()
    else:
        scenarios = [parse_model(ScenarioSpec, s, f"scenarios[{i}]") for i, s in enumerate(raw)]
    stress = parse_model(StressOptions, inputs.get("stress") or {}, "stress")
    try:
        report = stress_test(specs, market, options, scenarios, stress)
    except (ValueError, KeyError) as exc:
        raise InvalidInputs("inputs", str(exc)) from exc
    return {**report.to_dict(), "options": options.model_dump(), "seed": options.seed}


@register("structured.priips")
def priips_kind(inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """PRIIPs category 3 KID indicators of a note: MRM, CRM, SRI and performance scenarios."""
    check_fields(inputs, ("spec", "market"), ("options", "kid"))
    spec = parse_model(AutocallSpec, inputs["spec"], "spec")
    options = _options(inputs, seed)
    market = _market(inputs, [spec])
    kid = parse_model(KidOptions, inputs.get("kid") or {}, "kid")
    try:
        return {**kid_indicators(spec, market, options, kid), "seed": options.seed}
    except (ValueError, KeyError) as exc:
        raise InvalidInputs("inputs", str(exc)) from exc
