"""The XVA book's compute kinds in-process: `xva.run` split into parts and combined is the unsplit run,
`xva.stress` adds the scenarios over parts, `xva.whatif` answers one change, and refusals name the field."""

from __future__ import annotations

import pytest

from engines import registry
from engines.registry import InvalidInputs
from engines.xva.compute.book import partition_netting_sets
from engines.xva.generator import sample_book

SMALL = {
    "book": "sample",
    "counterparties": 6,
    "trades": 60,
    "options": {"seed": 3, "paths": 96, "grid": "1M:monthly,2Y:quarterly,10Y:annual,20Y"},
}


def test_partition_is_consecutive_balanced_and_complete():
    book = sample_book(7, 30, 400)
    groups = partition_netting_sets(book, 4)
    assert [ns for g in groups for ns in g] == [n.netting_set_id for n in book.netting_sets]
    counts = book.trades_by_netting_set()
    loads = [sum(len(counts[ns]) for ns in g) for g in groups]
    assert max(loads) - min(loads) <= max(len(v) for v in counts.values())


def test_run_in_parts_combines_to_the_whole_and_stress_totals_add_up():
    whole = registry.run("xva.run", SMALL)
    parts = [registry.run("xva.run", c) for c in registry.get("xva.run").split(SMALL, 3)]
    combined = registry.combine("xva.run", parts)
    assert [r["id"] for r in combined["netting_sets"]] == [r["id"] for r in whole["netting_sets"]]
    for key, value in whole["totals"].items():
        assert combined["totals"][key] == pytest.approx(value, rel=1e-9, abs=1e-6), key
    assert combined["run"]["seed"] == 3 and combined["chunks"] == 3
    stress_parts = [registry.run("xva.stress", c) for c in registry.get("xva.stress").split(SMALL, 2)]
    stress = registry.combine("xva.stress", stress_parts)
    one = registry.run("xva.stress", SMALL)
    names = [s["scenario"]["name"] for s in one["scenarios"]]
    assert [s["scenario"]["name"] for s in stress["scenarios"]] == names
    for mine, theirs in zip(stress["scenarios"], one["scenarios"], strict=True):
        for key in ("cva", "fca", "total"):
            assert mine["totals"][key] == pytest.approx(theirs["totals"][key], rel=1e-9), (mine["scenario"], key)


def test_parts_with_different_seeds_are_refused():
    a = registry.run("xva.run", {**SMALL, "part": [0, 2]})
    b = registry.run("xva.run", {**SMALL, "options": {**SMALL["options"], "seed": 4}, "part": [1, 2]})
    with pytest.raises(ValueError, match="options: the chunks ran with different seed"):
        registry.combine("xva.run", [a, b])


def test_whatif_kind_answers_one_change():
    book = sample_book(7, 6, 60)
    trade = next(t for t in book.trades if t.type == "irs")
    change = {"action": "amend", "trade": {**trade.model_dump(mode="json"), "notional": trade.notional * 3}}
    out = registry.run("xva.whatif", {**SMALL, "change": change})
    assert out["netting_set_id"] == trade.netting_set_id
    assert out["difference"]["ead"] != 0 and out["run"]["seed"] == 3
    assert out["after"]["total"] == pytest.approx(out["before"]["total"] + out["difference"]["total"])


@pytest.mark.parametrize(
    ("kind", "inputs", "field"),
    [
        ("xva.run", {**SMALL, "options": {"paths": 1}}, "options.paths"),
        ("xva.run", {**SMALL, "options": {"wrong": 1}}, "options.wrong"),
        ("xva.run", {**SMALL, "part": [3, 2]}, "part"),
        ("xva.run", {**SMALL, "netting_sets": ["NOPE"]}, "netting_sets[0]"),
        ("xva.run", {**SMALL, "book": "/no/such/book.json"}, "book"),
        ("xva.run", {**SMALL, "market": 3}, "market"),
        ("xva.run", {**SMALL, "colour": "red"}, "colour"),
        ("xva.whatif", {**SMALL, "change": {"action": "remove"}}, "change"),
        ("xva.whatif", {**SMALL, "change": {"action": "remove", "trade_id": "NOPE"}}, "change.trade_id"),
        ("xva.whatif", {**SMALL, "change": {"type": "irs", "trade_id": "X"}}, "change.trade"),
    ],
)
def test_refusals_name_the_field(kind, inputs, field):
    with pytest.raises(InvalidInputs) as info:
        registry.run(kind, inputs)
    assert info.value.field.startswith(field), (info.value.field, info.value.reason)
