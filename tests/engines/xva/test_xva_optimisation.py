"""XVA optimisation (`engines.xva.optimisation`) on a small hand-built book, every effect checked by a rerun.

- Compression: an offsetting pair of swaps is found; compressing a set that holds only the pair leaves no
  exposure; compressing a pair next to other trades gives the figures of `run_xva` on the compressed book.
- Novation: a one-swap set left empty at the bilateral counterparty (no CVA, no EAD) and the CCP's initial
  margin costs an MVA.
- CSA: a zero-threshold CSA added to an uncollateralised set cuts its CVA, equal to a rerun with that CSA.
- CVA hedge: a single-name CDS lowers the book's BA-CVA capital, as `bacva.ba_cva_full` says directly.
- Strategy: conflicting candidates (same netting set and kind, or the same trades) never both chosen; the
  strategy's figures equal a rerun of the book with every action taken (plus the CCP's costs); the benefit in
  bp is the benefit over the book's XVA and notional.
- Refusals: an unknown kind and a `top` below one raise ValueError naming the field.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from engines.xva.bacva import Counterparty as BaCvaCounterparty
from engines.xva.bacva import NettingSetExposure, SingleNameHedge, ba_cva_full, ba_cva_reduced
from engines.xva.book_xva import XvaRunOptions, XvaSession, run_xva
from engines.xva.market import rating_curve, sample_market
from engines.xva.optimisation import FIGURES, OptimisationOptions, gross_notional, optimise, select_strategy
from engines.xva.trades import CSA, Book, Counterparty, FxForward, InterestRateSwap, NettingSet

GRID = "1W,1M:monthly,1Y:quarterly,5Y:semiannual,10Y:annual,15Y"
AS_OF = date(2025, 6, 30)
ROW = (
    "cva",
    "dva",
    "fca",
    "fba",
    "mva",
    "kva",
    "wrong_way",
    "total_with_wrong_way",
    "ead",
    "k_ccr",
    "k_cva",
    "epe",
    "effective_maturity",
)


def swap(trade_id: str, ns: str, pay_fixed: bool, notional: float, rate: float, maturity: date) -> InterestRateSwap:
    return InterestRateSwap(
        trade_id=trade_id, netting_set_id=ns, currency="USD", notional=notional, start_date=AS_OF,
        maturity_date=maturity, fixed_rate=rate, pay_fixed=pay_fixed,
    )  # fmt: skip


def party(cid: str, rating: str, sector: str = "corporate") -> Counterparty:
    return Counterparty(
        counterparty_id=cid, sector=sector, rating=rating, credit_curve=rating_curve(rating), intensity_volatility=0.005
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def market():
    return sample_market()


@pytest.fixture(scope="module")
def book():
    fx = FxForward(
        trade_id="F2", netting_set_id="N2", buy_currency="EUR", buy_amount=4e7, sell_currency="USD",
        sell_amount=4.4e7, delivery_date=date(2027, 6, 30),
    )  # fmt: skip
    fx4 = FxForward(
        trade_id="F4", netting_set_id="N4", buy_currency="USD", buy_amount=5.6e7, sell_currency="EUR",
        sell_amount=5e7, delivery_date=date(2028, 6, 30),
    )  # fmt: skip
    return Book(
        counterparties=[party("C1", "BBB"), party("C2", "BB"), party("C3", "BB"), party("C4", "A", "bank")],
        netting_sets=[
            NettingSet(netting_set_id="N1", counterparty_id="C1"),
            NettingSet(netting_set_id="N2", counterparty_id="C2"),
            NettingSet(netting_set_id="N3", counterparty_id="C3"),
            NettingSet(
                netting_set_id="N4",
                counterparty_id="C4",
                csa=CSA(minimum_transfer_amount=2.5e5, margin_period_of_risk_days=10),
            ),
        ],
        trades=[
            swap("A1", "N1", True, 1e8, 0.030, date(2032, 6, 30)),
            swap("B1", "N1", False, 1e8, 0.045, date(2032, 7, 30)),
            swap("A2", "N2", True, 1e8, 0.035, date(2032, 6, 30)),
            swap("B2", "N2", False, 6e7, 0.038, date(2032, 8, 30)),
            fx,
            swap("S3", "N3", True, 2e8, 0.034, date(2035, 6, 30)),
            swap("S4", "N4", False, 5e7, 0.036, date(2030, 6, 30)),
            fx4,
        ],
    )


@pytest.fixture(scope="module")
def options():
    return XvaRunOptions(grid=GRID, paths=256, seed=4)


@pytest.fixture(scope="module")
def session(book, market, options):
    return XvaSession.open(book, market, options)


@pytest.fixture(scope="module")
def report(session):
    return optimise(session, top=50, options=OptimisationOptions(hedge_counterparties=3))


def rerun(session, book, ns):
    return run_xva(book, session.market, session.options, netting_sets=[ns]).rows()[0]


def changed(book, trades=None, netting_sets=None):
    return Book(
        counterparties=book.counterparties,
        netting_sets=netting_sets if netting_sets is not None else book.netting_sets,
        trades=trades if trades is not None else book.trades,
    )


def find(report, kind, action, ns):
    hits = [c for c in report.candidates if c.kind == kind and c.action == action and ns in c.netting_set_ids]
    assert hits, (kind, action, ns, [c.id for c in report.candidates], report.skipped)
    return hits[0]


def assert_rows_equal(after, expected, rtol=1e-9):
    for k in ROW:
        assert after[k] == pytest.approx(expected[k], rel=rtol, abs=1e-6), k


def test_candidates_carry_every_figure_and_are_ranked(report):
    assert report.candidates and [c.rank for c in report.candidates] == list(range(1, len(report.candidates) + 1))
    benefits = [c.benefit for c in report.candidates]
    assert benefits == sorted(benefits, reverse=True)
    kinds = {c.kind for c in report.candidates}
    assert kinds == {"compression", "novation", "csa_amendment", "cva_hedge"}
    for c in report.candidates:
        assert set(c.before) == set(FIGURES) == set(c.after)
        data = c.to_dict()
        assert data["change"]["funding"] == pytest.approx(
            data["change"]["fca"] - data["change"]["fba"] + data["change"]["mva"], abs=1e-6
        )
        if c.kind != "cva_hedge":
            assert c.benefit == pytest.approx(-data["change"]["total_with_wrong_way"], abs=1e-6)
    assert report.evaluations <= 4 * report.options.max_candidates + 10


def test_compressing_an_offsetting_pair_removes_its_exposure(report, session):
    c = find(report, "compression", "pair", "N1")
    assert set(c.trade_ids) == {"A1", "B1"}
    assert c.before["epe"] > 0 and c.before["cva"] > 0
    assert c.after["epe"] == pytest.approx(0.0, abs=1e-6) and c.after["cva"] == pytest.approx(0.0, abs=1e-6)
    assert c.after["ead"] == 0.0 and c.benefit > 0
    value = session.base.rows()[0]["value"]
    assert c.details["settlement_today"] == pytest.approx(value, rel=1e-9)  # the whole set settled today


def test_compression_equals_a_rerun_on_the_compressed_book(report, session, book):
    c = find(report, "compression", "pair", "N2")
    assert set(c.trade_ids) == {"A2", "B2"}
    trades = []
    for t in book.trades:
        if t.trade_id == "A2":
            trades.append(t.model_copy(update={"notional": 4e7}))
        elif t.trade_id != "B2":
            trades.append(t)
    expected = rerun(session, changed(book, trades), "N2")
    assert_rows_equal(c.rows_after["N2"], expected)
    assert c.after["epe"] < c.before["epe"]


def test_novating_a_one_swap_set_empties_it_and_costs_margin_at_the_ccp(report):
    c = find(report, "novation", "to_ccp", "N3")
    assert c.trade_ids == ("S3",)
    bilateral = c.details["bilateral_after"]
    assert bilateral["cva"] == 0.0 and bilateral["ead"] == 0.0 and bilateral["kva"] == 0.0
    ccp = c.details["ccp"]
    assert ccp["initial_margin_today"] > 0 and ccp["mva"] > 0 and ccp["kva"] > 0
    assert ccp["k_ccr"] == pytest.approx(0.08 * 0.02 * ccp["ead"])
    assert c.after["mva"] == pytest.approx(ccp["mva"]) and c.after["cva"] == 0.0
    assert c.after["total_with_wrong_way"] == pytest.approx(ccp["mva"] + ccp["kva"])


def test_adding_a_csa_cuts_cva_and_equals_a_rerun(report, session, book):
    c = find(report, "csa_amendment", "add_csa", "N3")
    assert c.after["cva"] < 0.5 * c.before["cva"]
    csa = CSA.model_validate(c.details["csa_after"])
    assert csa.threshold_received == 0 and csa.threshold_posted == 0
    sets = [n.model_copy(update={"csa": csa}) if n.netting_set_id == "N3" else n for n in book.netting_sets]
    assert_rows_equal(c.rows_after["N3"], rerun(session, changed(book, netting_sets=sets), "N3"))


def test_lower_mta_and_im_exchange_are_reruns_too(report, session, book):
    for action in ("lower_mta", "exchange_im"):
        c = find(report, "csa_amendment", action, "N4")
        csa = CSA.model_validate(c.details["csa_after"])
        sets = [n.model_copy(update={"csa": csa}) if n.netting_set_id == "N4" else n for n in book.netting_sets]
        assert_rows_equal(c.rows_after["N4"], rerun(session, changed(book, netting_sets=sets), "N4"))
    im = find(report, "csa_amendment", "exchange_im", "N4")
    assert im.after["mva"] > 0 and im.after["cva"] < im.before["cva"]


def test_a_single_name_hedge_lowers_ba_cva_capital_as_ba_cva_full_says(report, session):
    hedges = [c for c in report.candidates if c.action == "single_name_cds"]
    assert len(hedges) == 3
    parties = [
        BaCvaCounterparty(
            id=r["counterparty_id"], sector=r["ba_cva_sector"], credit_quality=r["ba_cva_quality"],
            netting_sets=[NettingSetExposure(id=r["id"], ead=r["ead"], maturity_years=r["effective_maturity"])],
        )
        for r in session.base.rows()
        if r["ead"] > 0
    ]  # fmt: skip
    reduced = ba_cva_reduced(parties).capital
    assert reduced == pytest.approx(session.base.totals()["ba_cva_capital"], rel=1e-12)
    for c in hedges:
        hedge = SingleNameHedge.model_validate(c.details["hedge"])
        assert c.before["ba_cva_capital"] == pytest.approx(reduced, rel=1e-12)
        assert c.after["ba_cva_capital"] == pytest.approx(ba_cva_full(parties, [hedge]).capital, rel=1e-12)
        assert c.after["ba_cva_capital"] < c.before["ba_cva_capital"]
        assert c.kva_saving > 0 and c.carry > 0
        assert c.benefit == pytest.approx(c.kva_saving - c.carry)
        assert c.after["cva"] == c.before["cva"]  # a hedge leaves the netting sets alone


def test_conflicting_candidates_are_not_both_in_the_strategy(report):
    strategy = report.strategy
    seen, trades = set(), set()
    for c in strategy.candidates:
        owners = c.counterparty_ids if c.kind == "cva_hedge" else c.netting_set_ids
        for o in owners:
            assert (c.kind, o) not in seen
            seen.add((c.kind, o))
        if c.kind in ("compression", "novation"):
            assert not trades & set(c.trade_ids)
            trades |= set(c.trade_ids)
    compression = find(report, "compression", "pair", "N2")
    novation = find(report, "novation", "to_ccp", "N2")
    big, small = replace(compression, benefit=2.0), replace(novation, benefit=1.0)
    chosen, excluded = select_strategy([small, big])
    assert chosen == [big] and "touches trades" in excluded[small.id]
    add = find(report, "csa_amendment", "add_csa", "N1")
    other = replace(add, id="other", benefit=add.benefit + 1.0)
    chosen, excluded = select_strategy([replace(add, benefit=1.0), other])
    assert [c.id for c in chosen] == ["other"] and "same csa_amendment target" in excluded[add.id]


def test_strategy_benefit_and_basis_points(report, session, book, market):
    s = report.strategy
    assert s.candidates and s.benefit > 0
    totals = session.base.totals()
    assert report.book["total_xva"] == pytest.approx(totals["total_with_wrong_way"])
    assert report.book["gross_notional"] == pytest.approx(gross_notional(book.trades, market))
    assert s.benefit_bp_of_xva == pytest.approx(s.benefit / totals["total_with_wrong_way"] * 1e4)
    assert s.benefit_bp_of_notional == pytest.approx(s.benefit / report.book["gross_notional"] * 1e4)
    assert s.before["total_with_wrong_way"] == pytest.approx(totals["total_with_wrong_way"])
    data = report.to_dict()
    assert len(data["candidates"]) == min(50, len(report.candidates))
    assert data["strategy"]["candidate_ids"] == [c.id for c in s.candidates]


def test_bad_inputs_name_the_field(session):
    with pytest.raises(ValueError, match=r"kinds\[0\]: 'bogus'"):
        optimise(session, kinds=["bogus"])
    with pytest.raises(ValueError, match="kinds: give at least one"):
        optimise(session, kinds=[])
    with pytest.raises(ValueError, match="top: at least 1"):
        optimise(session, top=0)
    with pytest.raises(ValueError, match="max_candidates"):
        optimise(session, max_candidates=0)


def test_kinds_and_top_limit_the_report(session):
    small = optimise(session, kinds=["csa_amendment"], top=1)
    assert {c.kind for c in small.candidates} == {"csa_amendment"}
    assert len(small.to_dict()["candidates"]) == 1


def test_strategy_equals_a_rerun_of_the_book_with_every_action(report, session, book):
    s = report.strategy
    kinds = {c.kind for c in s.candidates}
    assert {"compression", "novation", "csa_amendment"} <= kinds
    per_set = [ns for c in s.candidates if c.kind != "cva_hedge" for ns in c.netting_set_ids]
    assert len(per_set) > len(set(per_set))  # some set takes two actions: evaluated together
    trades = {t.trade_id: t for t in book.trades}
    csas = {n.netting_set_id: n.csa for n in book.netting_sets}
    for c in s.candidates:
        for ch in c.changes:
            for t in ch.removed:
                del trades[t.trade_id]
            trades.update({t.trade_id: t for t in ch.added})
        if c.kind == "csa_amendment":
            csas[c.netting_set_ids[0]] = CSA.model_validate(c.details["csa_after"])
    sets = [n.model_copy(update={"csa": csas[n.netting_set_id]}) for n in book.netting_sets]
    rows = run_xva(changed(book, list(trades.values()), sets), session.market, session.options).rows()
    ccp = s.ccp or {"mva": 0.0, "kva": 0.0, "ead": 0.0}
    for k in ("cva", "dva", "fca", "fba", "wrong_way", "epe", "k_cva"):
        assert s.after[k] == pytest.approx(sum(r[k] for r in rows), rel=1e-9, abs=1e-6), k
    assert s.after["mva"] - ccp["mva"] == pytest.approx(sum(r["mva"] for r in rows), rel=1e-9, abs=1e-6)
    assert s.after["ead"] - ccp["ead"] == pytest.approx(sum(r["ead"] for r in rows), rel=1e-9, abs=1e-6)
    rerun_total = sum(r["total_with_wrong_way"] for r in rows) + ccp["mva"] + ccp["kva"]
    assert s.after["total_with_wrong_way"] == pytest.approx(rerun_total, rel=1e-9)
    saved = s.before["total_with_wrong_way"] - rerun_total
    assert s.benefit == pytest.approx(saved + s.kva_saving - s.carry, rel=1e-9)
