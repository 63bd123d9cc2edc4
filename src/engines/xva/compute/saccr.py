"""Compute kinds of the XVA engine's regulatory capital: SA-CCR exposure at default and BA-CVA capital.

- `xva.saccr`: inputs `{"netting_sets": [...], "trade_detail": false}`; the result lists one SA-CCR result
  per netting set, in order, and their total EAD. Chunkable by netting sets: the splitter slices the list
  (each chunk remembers its first index) and the combiner concatenates the chunks in order.
- `xva.ba_cva`: inputs `{"counterparties": [...], "hedges": [...], "version": "reduced" | "full"}`; the
  BA-CVA capital and RWA. Not chunkable: the capital is not additive across counterparties.

Both are deterministic (the seed is ignored). Inputs are validated with the boundary models; an error
names the field as `netting_sets[i].<path>` or `counterparties[i].<path>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engines.registry import InvalidInputs, check_fields, parse_model, register
from engines.xva.bacva import BaCvaPortfolio, ba_cva_full, ba_cva_reduced
from engines.xva.saccr import saccr
from engines.xva.saccr_models import NettingSet

MAX_NETTING_SETS = 20_000


def _netting_sets(inputs: Mapping[str, Any]) -> list[NettingSet]:
    raw = inputs["netting_sets"]
    if not isinstance(raw, list) or not raw:
        raise InvalidInputs("netting_sets", "give a non-empty list of netting sets")
    if len(raw) > MAX_NETTING_SETS:
        raise InvalidInputs("netting_sets", f"at most {MAX_NETTING_SETS} netting sets per request, got {len(raw)}")
    first = inputs.get("first_index", 0)
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise InvalidInputs("first_index", f"must be a non-negative integer, got {first!r}")
    return [parse_model(NettingSet, ns, f"netting_sets[{first + i}]") for i, ns in enumerate(raw)]


def split_netting_sets(inputs: Mapping[str, Any], chunks: int) -> list[dict[str, Any]]:
    """Split a request into at most `chunks` consecutive slices of its netting sets."""
    sets = list(inputs.get("netting_sets") or [])
    per = -(-len(sets) // max(1, chunks)) or 1
    return [{**inputs, "netting_sets": sets[i : i + per], "first_index": i} for i in range(0, len(sets), per)]


def combine_saccr(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate the chunks' results in chunk order (chunks must follow each other without gap)."""
    out: list[dict[str, Any]] = []
    for i, r in enumerate(results):
        if r.get("first_index", 0) != len(out):
            raise ValueError(f"chunk {i} starts at netting set {r.get('first_index')}, expected {len(out)}")
        out += r["results"]
    return {"results": out, "total_ead": sum(r["ead"] for r in out), "first_index": 0}


@register("xva.saccr", combine=combine_saccr, split=split_netting_sets)
def saccr_kind(inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """SA-CCR exposure at default of netting sets (RC, PFE multiplier, add-ons by asset class and hedging set)."""
    check_fields(inputs, ("netting_sets",), ("trade_detail", "first_index"))
    detail = inputs.get("trade_detail", False)
    if not isinstance(detail, bool):
        raise InvalidInputs("trade_detail", f"must be true or false, got {detail!r}")
    results = [saccr(ns, trade_detail=detail).to_dict() for ns in _netting_sets(inputs)]
    first = inputs.get("first_index", 0)
    return {"results": results, "total_ead": sum(r["ead"] for r in results), "first_index": first}


@register("xva.ba_cva")
def ba_cva_kind(inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """BA-CVA capital and RWA, reduced or full (with single-name and index CDS hedges)."""
    check_fields(inputs, ("counterparties",), ("hedges", "version"))
    version = inputs.get("version", "reduced")
    if version not in ("reduced", "full"):
        raise InvalidInputs("version", f"must be 'reduced' or 'full', got {version!r}")
    if version == "reduced" and inputs.get("hedges"):
        raise InvalidInputs("hedges", "the reduced version recognises no hedges; set version to 'full'")
    data = {"counterparties": inputs["counterparties"], "hedges": inputs.get("hedges") or []}
    portfolio = parse_model(BaCvaPortfolio, data, "")
    if version == "reduced":
        result = ba_cva_reduced(portfolio.counterparties)
    else:
        result = ba_cva_full(portfolio.counterparties, portfolio.hedges)
    return result.model_dump(mode="json")
