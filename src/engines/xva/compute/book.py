"""Compute kinds of the XVA book: the full run, its stresses and a what-if (`xva.run`, `xva.stress`, `xva.whatif`).

- `xva.run`: every adjustment and the capital of each netting set (`book_xva.run_xva`). Chunkable by netting
  set: the splitter gives chunk i of n the field ``part: [i, n]``; each worker loads the book and takes the
  i-th of n consecutive groups of netting sets balanced by trade count (`partition_netting_sets`, the same
  on every worker). Every worker simulates the same scenario set (same seed, paths, grid and market), so a
  netting set's figures do not depend on the chunk it falls in; the combiner concatenates the rows in book
  order and recomputes the book's totals and its BA-CVA capital (not additive across counterparties).
  Chunks must share ``options.seed`` (give it: a chunk without one uses its own request seed, and chunks of
  different seeds, paths, grids or spreads are refused at combination).
- `xva.stress`: the same run and the desk's stresses (credit +-100 bp, funding +-50 bp, collateral 0-120%),
  chunked the same way; each scenario's totals are sums over netting sets, so the combiner adds them.
- `xva.whatif`: one trade added, removed or amended (``change``, `book_xva.TradeChange`), on its netting
  set's paths; not chunkable.

Inputs: ``book`` — ``"sample"`` (the generated book; ``book_seed``, ``counterparties``, ``trades`` size it) or
the path of a book JSON file readable by the worker; ``market`` — ``"sample"`` (default) or a market JSON path;
``options`` — `book_xva.XvaRunOptions` fields (``options.seed`` defaults to the request's seed, else 1);
``netting_sets`` (optional) — ids to value. Errors name the field (``options.paths``, ``change.trade.notional``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engines.registry import InvalidInputs, check_fields, integer, parse_model, register

SAMPLE = "sample"
DEFAULT_BOOK_SEED = 7
DEFAULT_SEED = 1
COMMON = ("market", "options", "book_seed", "counterparties", "trades", "netting_sets")


def load(inputs: Mapping[str, Any]) -> tuple[Any, Any]:
    """The book and market the inputs name."""
    from engines.xva.files import BookFileError, load_book, load_market
    from engines.xva.market import sample_market

    market_ref = inputs.get("market", SAMPLE)
    if not isinstance(market_ref, str) or not market_ref.strip():
        raise InvalidInputs("market", f"'sample' or the path of a market JSON file, got {market_ref!r}")
    try:
        market = sample_market() if market_ref.strip().lower() == SAMPLE else load_market(market_ref)
    except BookFileError as exc:
        raise InvalidInputs("market", str(exc)) from None
    raw = inputs["book"]
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInputs("book", f"'sample' or the path of a book JSON file, got {raw!r}")
    if raw.strip().lower() == SAMPLE:
        from engines.xva.generator import sample_book

        seed = integer(inputs, "book_seed", minimum=0) if "book_seed" in inputs else DEFAULT_BOOK_SEED
        parties = integer(inputs, "counterparties", minimum=1, maximum=100_000) if "counterparties" in inputs else 1000
        trades = integer(inputs, "trades", minimum=1, maximum=1_000_000) if "trades" in inputs else 20_000
        return sample_book(seed, parties, trades, market), market
    try:
        return load_book(raw), market
    except BookFileError as exc:
        raise InvalidInputs("book", str(exc)) from None


def options_of(inputs: Mapping[str, Any], seed: int | None) -> Any:
    from engines.xva.book_xva import XvaRunOptions

    data = dict(inputs.get("options") or {})
    if "seed" not in data:
        data["seed"] = seed if seed is not None else DEFAULT_SEED
    return parse_model(XvaRunOptions, data, "options")


def partition_netting_sets(book: Any, parts: int) -> list[list[str]]:
    """The book's netting sets in `parts` consecutive groups of about equal trade counts (some may be empty)."""
    counts = book.trades_by_netting_set()
    ids = [n.netting_set_id for n in book.netting_sets]
    total = max(1, sum(len(counts[i]) for i in ids))
    groups: list[list[str]] = [[] for _ in range(parts)]
    done = 0
    for ns in ids:
        k = min(parts - 1, done * parts // total)
        groups[k].append(ns)
        done += len(counts[ns])
    return groups


def _chosen(inputs: Mapping[str, Any], book: Any) -> list[str] | None:
    known = {n.netting_set_id for n in book.netting_sets}
    chosen = None
    if "netting_sets" in inputs:
        raw = inputs["netting_sets"]
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
            raise InvalidInputs("netting_sets", "give a non-empty list of netting set ids")
        for i, ns in enumerate(raw):
            if ns not in known:
                raise InvalidInputs(f"netting_sets[{i}]", f"{ns!r} is not a netting set of the book")
        chosen = list(raw)
    if "part" in inputs:
        part = inputs["part"]
        whole = isinstance(part, list) and len(part) == 2 and all(type(x) is int for x in part)
        if not whole or not 0 <= part[0] < part[1]:
            raise InvalidInputs("part", f"[index, count] with 0 <= index < count, got {part!r}")
        group = partition_netting_sets(book, part[1])[part[0]]
        chosen = [ns for ns in group if chosen is None or ns in chosen]
    return chosen


def _run(inputs: Mapping[str, Any], seed: int | None) -> tuple[Any, Any]:
    from engines.xva.book_xva import run_xva

    options = options_of(inputs, seed)
    book, market = load(inputs)
    chosen = _chosen(inputs, book)
    if chosen is not None and not chosen:
        return None, options
    try:
        return run_xva(book, market, options, netting_sets=chosen), options
    except ValueError as exc:
        raise InvalidInputs("book", str(exc)) from None


def _empty(inputs: Mapping[str, Any], options: Any) -> dict[str, Any]:
    return {"book": inputs["book"], "part": inputs.get("part"), "run": options.model_dump(mode="json"),
            "netting_sets": [], "seconds": {}, "peak_memory_mb": 0.0}  # fmt: skip


def split_by_part(inputs: Mapping[str, Any], chunks: int) -> list[dict[str, Any]]:
    """Chunk i of n values the i-th of n groups of netting sets."""
    return [{**inputs, "part": [i, chunks]} for i in range(chunks)]


def _check_same_run(results: Sequence[Mapping[str, Any]]) -> None:
    keys = ("seed", "paths", "grid", "borrow_spread", "lend_spread")
    runs = {tuple(r["run"].get(k) for k in keys) for r in results}
    if len(runs) > 1:
        raise ValueError(f"options: the chunks ran with different {', '.join(keys)}: {sorted(map(str, runs))}")


def combine_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of every chunk in order; totals and BA-CVA recomputed over all of them."""
    from engines.xva.book_xva import book_totals

    _check_same_run(results)
    rows = [r for res in results for r in res["netting_sets"]]
    out = dict(next((r for r in results if r["netting_sets"]), results[0]))
    out.pop("part", None)
    out["netting_sets"] = rows
    out["run"] = {**out["run"], "netting_sets": len(rows), "trades": sum(r["trades"] for r in rows)}
    out["totals"] = book_totals(rows) if rows else {}
    out["seconds"] = {"workers_total": sum(r["seconds"].get("total", 0.0) for r in results)}
    out["peak_memory_mb"] = max(r["peak_memory_mb"] for r in results)
    out["chunks"] = len(results)
    return out


@register("xva.run", combine=combine_run, split=split_by_part)
def xva_run(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """XVA of a book: exposures, CVA/DVA/FVA/MVA/KVA, wrong-way add-on, SA-CCR and BA-CVA capital."""
    check_fields(inputs, ("book",), (*COMMON, "part"))
    result, options = _run(inputs, seed)
    if result is None:
        return _empty(inputs, options)
    return {"book": inputs["book"], "part": inputs.get("part"), **result.to_dict()}


def combine_stress(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The base as `combine_run`; each scenario's totals and changes added over the chunks."""
    base = combine_run([{**r, "netting_sets": r["netting_sets"]} for r in results])
    scenarios: dict[str, dict[str, Any]] = {}
    for res in results:
        for s in res.get("scenarios", []):
            name = s["scenario"]["name"]
            entry = scenarios.setdefault(name, {"scenario": s["scenario"], "totals": {}, "changes": {}})
            for part in ("totals", "changes"):
                for k, v in s[part].items():
                    entry[part][k] = entry[part].get(k, 0.0) + v
    return {**base, "scenarios": list(scenarios.values())}


@register("xva.stress", combine=combine_stress, split=split_by_part)
def xva_stress(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """XVA stresses of a book: credit spreads +-100 bp, funding spreads +-50 bp, collateral posted 0% to 120%."""
    check_fields(inputs, ("book",), (*COMMON, "part"))
    result, options = _run(inputs, seed)
    if result is None:
        return {**_empty(inputs, options), "scenarios": []}
    report = result.stress().to_dict()
    scenarios = [{k: v for k, v in s.items() if k != "netting_sets"} for s in report["scenarios"]]
    return {"book": inputs["book"], "part": inputs.get("part"), **result.to_dict(), "scenarios": scenarios}


@register("xva.whatif")
def xva_whatif(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """XVA and capital effect of adding, removing or amending one trade, on its netting set's paths."""
    from engines.xva.book_xva import TradeChange, XvaSession

    check_fields(inputs, ("book", "change"), ("market", "options", "book_seed", "counterparties", "trades"))
    options = options_of(inputs, seed)
    raw = inputs["change"]
    if isinstance(raw, Mapping) and "action" not in raw and "type" in raw:
        raw = {"action": "add", "trade": raw}
    change = parse_model(TradeChange, raw, "change")
    book, market = load(inputs)
    if change.trade is not None:
        ns, where = change.trade.netting_set_id, "change.trade.netting_set_id"
    else:
        owner = {t.trade_id: t.netting_set_id for t in book.trades}
        if change.trade_id not in owner:
            raise InvalidInputs("change.trade_id", f"no trade {change.trade_id!r} in the book")
        ns, where = owner[change.trade_id], "change.trade_id"
    if ns not in {n.netting_set_id for n in book.netting_sets}:
        raise InvalidInputs(where, f"{ns!r} is not a netting set of the book")
    try:
        session = XvaSession.open(book, market, options, netting_sets=[ns])
        result = session.what_if(change)
    except ValueError as exc:
        raise InvalidInputs("change", str(exc)) from None
    return {"book": inputs["book"], "run": options.model_dump(mode="json"), **result.to_dict()}
