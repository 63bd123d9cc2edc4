"""The book run (`engines.xva.book_xva`): the parts joined correctly, chunk-free, and what-if equal to a rerun.

- Chunking and subsets: the same netting set gets the same figures whatever it is valued with.
- Accounting: each row's total is CVA - DVA + FCA - FBA + MVA + KVA, the wrong-way add-on on top; book totals
  are the sums; MVA only where the bank posts initial margin.
- Capital: today's EAD of a netting set from the run equals SA-CCR (`saccr.saccr`) on the mapped netting set
  with today's value, for an unmargined and a margined set.
- Wrong-way risk: a counterparty whose intensity rises with EUR, facing a long EUR forward, has a positive
  add-on beyond 3 standard errors; with the opposite correlation the add-on is negative (right-way).
- What-if: adding, removing and amending a trade on the cached paths give exactly a rerun of the changed
  book; refusals name the field.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from pydantic import ValidationError

from engines.xva.book_xva import TradeChange, XvaRunOptions, XvaSession, book_totals, run_xva
from engines.xva.generator import sample_book
from engines.xva.market import sample_market
from engines.xva.saccr import saccr
from engines.xva.saccr_book import saccr_netting_set
from engines.xva.trades import CSA, Book, Counterparty, FxForward, InterestRateSwap, NettingSet, WrongWayRisk

GRID = "1W,1M:monthly,1Y:quarterly,5Y:semiannual,10Y:annual,20Y"
AS_OF = date(2025, 6, 30)
FIELDS = ("cva", "cva_unilateral", "dva", "fca", "fba", "mva", "kva", "total", "wrong_way", "ead", "epe", "k_cva")


@pytest.fixture(scope="module")
def market():
    return sample_market()


@pytest.fixture(scope="module")
def book(market):
    return sample_book(seed=5, counterparties=8, trades=90, market=market)


@pytest.fixture(scope="module")
def options():
    return XvaRunOptions(grid=GRID, paths=300, seed=11)


@pytest.fixture(scope="module")
def base(book, market, options):
    return run_xva(book, market, options)


def rows_by_id(result):
    return {r["id"]: r for r in result.rows()}


def assert_rows_equal(a, b, rtol=1e-9):
    for k in FIELDS:
        assert a[k] == pytest.approx(b[k], rel=rtol, abs=1e-6), k


def test_rows_do_not_depend_on_chunking_or_on_the_other_netting_sets(book, market, options, base):
    small = run_xva(book, market, options.model_copy(update={"max_chunk_sets": 1, "max_chunk_trades": 5}))
    one, other = rows_by_id(base), rows_by_id(small)
    assert set(one) == {n.netting_set_id for n in book.netting_sets}
    for ns in one:
        assert_rows_equal(one[ns], other[ns])
    chosen = [book.netting_sets[2].netting_set_id, book.netting_sets[0].netting_set_id]
    subset = rows_by_id(run_xva(book, market, options, netting_sets=chosen))
    assert list(subset) == sorted(chosen)  # rows come in book order
    for ns in chosen:
        assert_rows_equal(one[ns], subset[ns])


def test_totals_add_up_and_mva_needs_initial_margin_posted(book, base):
    rows = base.rows()
    for r in rows:
        assert r["total"] == pytest.approx(r["cva"] - r["dva"] + r["fca"] - r["fba"] + r["mva"] + r["kva"], rel=1e-12)
        assert r["total_with_wrong_way"] == pytest.approx(r["total"] + r["wrong_way"], rel=1e-12, abs=1e-9)
        assert r["cva"] <= r["cva_unilateral"] + 1e-9  # the bank's own default can only cut the CVA
        assert r["ead"] >= 0 and r["kva"] >= 0 and r["cva_stderr"] > 0
        posts_im = (book.netting_set(r["id"]).csa or CSA()).initial_margin_posted > 0
        assert (r["mva"] > 0) == posts_im, r["id"]
    totals = base.totals()
    for k in ("cva", "dva", "kva", "ead", "wrong_way"):
        assert totals[k] == pytest.approx(sum(r[k] for r in rows), rel=1e-12)
    assert totals["cva_stderr"] == pytest.approx(np.sqrt(sum(r["cva_stderr"] ** 2 for r in rows)))
    assert totals["ba_cva_capital"] > 0 and totals["ba_cva_rwa"] == pytest.approx(12.5 * totals["ba_cva_capital"])
    assert book_totals(rows)["ba_cva_capital"] == pytest.approx(totals["ba_cva_capital"])
    data = base.to_dict()
    assert data["run"]["seed"] == 11 and data["run"]["paths"] == 300 and data["run"]["trades"] == len(book.trades)


def swap(trade_id, ns, pay_fixed, notional=1e8, rate=0.04, years=7):
    return InterestRateSwap(
        trade_id=trade_id, netting_set_id=ns, currency="USD", notional=notional, start_date=AS_OF,
        maturity_date=date(2025 + years, 6, 30), fixed_rate=rate, pay_fixed=pay_fixed,
    )  # fmt: skip


def party(cid, wrong_way=None):
    curve = sample_market().own_credit.model_copy(update={"spreads": [0.02, 0.022, 0.024, 0.025, 0.026]})
    return Counterparty(counterparty_id=cid, credit_curve=curve, intensity_volatility=0.02, wrong_way=wrong_way)


@pytest.mark.parametrize("csa", [None, CSA(threshold_received=5e6, minimum_transfer_amount=1e6)])
def test_todays_ead_is_saccr_on_the_mapped_netting_set(market, csa):
    book = Book(
        counterparties=[party("C")],
        netting_sets=[NettingSet(netting_set_id="N", counterparty_id="C", csa=csa)],
        trades=[swap("A", "N", True, rate=0.02), swap("B", "N", False, notional=4e7, years=12)],
    )
    row = run_xva(book, market, XvaRunOptions(grid=GRID, paths=64, seed=3)).rows()[0]
    mapped = saccr_netting_set(book, "N", market)
    trades = list(mapped.trades)
    trades[0] = trades[0].model_copy(update={"mtm": row["value"]})  # SA-CCR needs only the set's total value
    if csa is not None:  # today's variation margin: the call on today's value above the threshold
        held = max(row["value"] - csa.threshold_received, 0.0)
        mapped = mapped.model_copy(update={"variation_margin_held": held})
    expected = saccr(mapped.model_copy(update={"trades": trades}))
    assert row["ead"] == pytest.approx(expected.ead, rel=1e-9)


@pytest.mark.parametrize("correlation", [0.8, -0.8])
def test_wrong_way_add_on_follows_the_sign_of_the_correlation(market, correlation):
    book = Book(
        counterparties=[party("C", WrongWayRisk(driver="FX.EUR", correlation=correlation))],
        netting_sets=[NettingSet(netting_set_id="N", counterparty_id="C")],
        trades=[
            FxForward(trade_id="F", netting_set_id="N", buy_currency="EUR", buy_amount=5e8, sell_currency="USD",
                      sell_amount=5.6e8, delivery_date=date(2030, 6, 30)),
        ],
    )  # fmt: skip
    row = run_xva(book, market, XvaRunOptions(grid=GRID, paths=2000, seed=8)).rows()[0]
    z = row["wrong_way"] / row["wrong_way_stderr"]
    assert z > 3 if correlation > 0 else z < -3


@pytest.fixture(scope="module")
def session(book, market, options):
    target = max(book.netting_sets, key=lambda n: sum(t.netting_set_id == n.netting_set_id for t in book.trades))
    return XvaSession.open(book, market, options, netting_sets=[target.netting_set_id])


def changed_book(book, trades):
    return Book(counterparties=book.counterparties, netting_sets=book.netting_sets, trades=trades)


def rerun(session, trades, ns):
    return run_xva(changed_book(session.book, trades), session.market, session.options, netting_sets=[ns]).rows()[0]


def test_what_if_add_remove_and_amend_equal_a_rerun(session):
    book = session.book
    ns = session.base.parts.ids[0]
    base_row = session.base.rows()[0]
    new = swap("NEW", ns, True, notional=3e8, years=9)
    added = session.what_if({"action": "add", "trade": new.model_dump(mode="json")})
    assert_rows_equal(added.before, base_row, rtol=1e-12)
    assert_rows_equal(added.after, rerun(session, [*book.trades, new], ns))
    assert added.difference["total"] == pytest.approx(added.after["total"] - added.before["total"])
    assert abs(added.difference["ead"]) > 0
    victim = next(t for t in book.trades if t.netting_set_id == ns)
    removed = session.what_if({"action": "remove", "trade_id": victim.trade_id})
    assert_rows_equal(removed.after, rerun(session, [t for t in book.trades if t is not victim], ns))
    first_swap = next(t for t in book.trades if t.netting_set_id == ns and isinstance(t, InterestRateSwap))
    amended = first_swap.model_copy(update={"notional": first_swap.notional * 2})
    changed = session.what_if(TradeChange(action="amend", trade=amended))
    expected = rerun(session, [amended if t is first_swap else t for t in book.trades], ns)
    assert_rows_equal(changed.after, expected)
    bare = session.what_if(new.model_dump(mode="json"))  # a bare trade is an addition
    assert bare.change.action == "add" and bare.after["total"] == pytest.approx(added.after["total"])


def test_what_if_refusals_name_the_field(session):
    book = session.book
    ns = session.base.parts.ids[0]
    existing = next(t for t in book.trades if t.netting_set_id == ns)
    with pytest.raises(ValueError, match=r"trade\.trade_id: .* already in the book"):
        session.what_if({"action": "add", "trade": existing.model_dump(mode="json")})
    with pytest.raises(ValueError, match="trade_id: no trade 'NOPE'"):
        session.what_if({"action": "remove", "trade_id": "NOPE"})
    other = next(n.netting_set_id for n in book.netting_sets if n.netting_set_id != ns)
    moved = existing.model_copy(update={"netting_set_id": other}).model_dump()
    with pytest.raises(ValueError, match=r"trade\.netting_set_id: an amendment stays in"):
        session.what_if({"action": "amend", "trade": moved})
    with pytest.raises(ValueError, match="was not valued in this session"):
        session.what_if({"action": "add", "trade": swap("X", other, True).model_dump(mode="json")})
    with pytest.raises(ValidationError, match="trade_id"):
        TradeChange.model_validate({"action": "remove"})
    with pytest.raises(ValidationError, match="needs the trade"):
        TradeChange.model_validate({"action": "amend"})


def test_stress_reprices_every_netting_set(base):
    report = base.stress()
    names = [s.name for s in report.scenarios]
    assert "counterparty credit +100bp" in names and "collateral 120%" in names
    assert report.changes("counterparty credit +100bp")["cva"] > 0
    assert report.changes("funding +50bp")["fca"] > 0
    zero = report.result("collateral 100%")
    assert np.all(zero.cva <= base.result.cva + 1e-9)
