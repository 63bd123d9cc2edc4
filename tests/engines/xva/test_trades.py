"""Trades, schedules and day counts against QuantLib, the book's cross-checks, and the book files (JSON, CSV,
Parquet) with errors that name the file, the row and the field."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import numpy as np
import pytest
import QuantLib as ql
from pydantic import ValidationError

from engines.xva.files import BookFileError, load_book, load_trades, write_book, write_trades
from engines.xva.generator import sample_book
from engines.xva.market import sample_market
from engines.xva.trades import (
    CSA,
    Book,
    EquityOption,
    InterestRateSwap,
    check_against_market,
    months_of,
    schedule,
    schedules,
    year_fraction,
)


def ql_date(d: date) -> ql.Date:
    return ql.Date(d.day, d.month, d.year)


def py_date(d: ql.Date) -> date:
    return date(d.year(), d.month(), d.dayOfMonth())


def random_pairs(n: int, seed: int = 3) -> tuple[list[date], list[date]]:
    rng = np.random.default_rng(seed)
    base = date(2020, 1, 1)
    starts = [base + timedelta(days=int(d)) for d in rng.integers(0, 3000, n)]
    # include month ends, Februaries and the 31st on purpose
    starts[:6] = [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2023, 8, 31),
        date(2025, 5, 30),
        date(2021, 12, 31),
        date(2022, 2, 28),
    ]
    ends = [s + timedelta(days=int(d)) for s, d in zip(starts, rng.integers(20, 11000, n), strict=True)]
    ends[:6] = [
        date(2026, 8, 31),
        date(2030, 2, 28),
        date(2033, 3, 31),
        date(2035, 5, 31),
        date(2031, 12, 31),
        date(2027, 8, 30),
    ]
    return starts, ends


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("ACT/360", ql.Actual360()), ("ACT/365F", ql.Actual365Fixed()), ("30/360", ql.Thirty360(ql.Thirty360.BondBasis))],
)
def test_day_counts_match_quantlib(ours, theirs):
    starts, ends = random_pairs(400)
    got = year_fraction(np.array(starts, "datetime64[D]"), np.array(ends, "datetime64[D]"), ours)
    want = [theirs.yearFraction(ql_date(s), ql_date(e)) for s, e in zip(starts, ends, strict=True)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_schedules_match_quantlib_backward_unadjusted():
    starts, ends = random_pairs(300, seed=11)
    tenors = ["1M", "3M", "6M", "1Y"] * 75
    s = schedules(
        np.array(starts, "datetime64[D]"), np.array(ends, "datetime64[D]"), np.array([months_of(t) for t in tenors])
    )
    for i, (a, b, tenor) in enumerate(zip(starts, ends, tenors, strict=True)):
        q = ql.Schedule(
            ql_date(a),
            ql_date(b),
            ql.Period(tenor),
            ql.NullCalendar(),
            ql.Unadjusted,
            ql.Unadjusted,
            ql.DateGeneration.Backward,
            False,
        )
        want = [py_date(d) for d in q]
        got = [d.item() for d in s.start[s.offset[i] : s.offset[i + 1]]] + [s.end[s.offset[i + 1] - 1].item()]
        assert got == want, f"schedule {i}: {a} → {b} every {tenor}"


def test_single_schedule_rolls_from_maturity_with_a_short_first_stub():
    starts, ends = schedule(date(2024, 1, 10), date(2025, 4, 30), "6M")
    assert starts == [date(2024, 1, 10), date(2024, 4, 30), date(2024, 10, 30)]
    assert ends == [date(2024, 4, 30), date(2024, 10, 30), date(2025, 4, 30)]


def _tiny_book() -> dict:
    return sample_book(seed=1, counterparties=5, trades=20).model_dump(mode="json")


def test_book_cross_references_name_the_path():
    d = _tiny_book()
    d["trades"][7]["netting_set_id"] = "NS99999"
    with pytest.raises(ValidationError, match=r"trades\[7\]\.netting_set_id: 'NS99999' is not a netting set"):
        Book.model_validate(d)
    d = _tiny_book()
    d["trades"][9]["trade_id"] = d["trades"][2]["trade_id"]
    with pytest.raises(ValidationError, match=r"trades\[9\]\.trade_id: '.*' is used twice"):
        Book.model_validate(d)
    d = _tiny_book()
    d["netting_sets"][0]["counterparty_id"] = "nobody"
    with pytest.raises(ValidationError, match=r"netting_sets\[0\]\.counterparty_id: 'nobody' is not a counterparty"):
        Book.model_validate(d)


def test_trade_field_checks():
    with pytest.raises(ValidationError, match="maturity_date: 2025-01-01 is not after start_date"):
        InterestRateSwap(
            trade_id="T1",
            netting_set_id="N1",
            currency="USD",
            notional=1e6,
            start_date=date(2025, 6, 1),
            maturity_date=date(2025, 1, 1),
            fixed_rate=0.04,
            pay_fixed=True,
        )
    with pytest.raises(ValidationError, match="fixed_frequency"):
        InterestRateSwap.model_validate(
            {
                "trade_id": "T1",
                "netting_set_id": "N1",
                "currency": "USD",
                "notional": 1e6,
                "start_date": "2025-01-01",
                "maturity_date": "2030-01-01",
                "fixed_rate": 0.04,
                "pay_fixed": True,
                "fixed_frequency": "5W",
            }
        )
    assert CSA(margin_period_of_risk_days=10).mpor_years == pytest.approx(14 / 365)


def test_check_against_market_names_the_trade():
    market = sample_market()
    book = sample_book(seed=1, counterparties=5, trades=20)
    check_against_market(book, market)
    d = book.model_dump(mode="json")
    i = next(k for k, t in enumerate(book.trades) if not isinstance(t, EquityOption))
    d["trades"][i] = {
        "type": "equity_option",
        "trade_id": "X1",
        "netting_set_id": d["netting_sets"][0]["netting_set_id"],
        "underlying": "DAX",
        "quantity": 10,
        "strike": 100,
        "expiry_date": "2026-01-01",
        "call": True,
    }
    with pytest.raises(ValueError, match=rf"trades\[{i}\]\.underlying: 'DAX' is not an equity"):
        check_against_market(Book.model_validate(d), market)
    d["trades"][i].update(underlying="SPX", expiry_date="2025-06-30")
    with pytest.raises(ValueError, match=rf"trades\[{i}\]: its last date 2025-06-30 is not after the valuation date"):
        check_against_market(Book.model_validate(d), market)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_book_round_trips_through_json_and_trade_tables(tmp_path, suffix):
    book = sample_book(seed=5, counterparties=30, trades=300)
    write_book(book, tmp_path / "inline.json")
    assert load_book(tmp_path / "inline.json") == book
    write_book(book, tmp_path / "book.json", trades_file=f"trades{suffix}")
    assert json.loads((tmp_path / "book.json").read_text())["trades_file"] == f"trades{suffix}"
    assert load_book(tmp_path / "book.json") == book
    write_trades(book.trades, tmp_path / f"again{suffix}")
    assert load_trades(tmp_path / f"again{suffix}") == book.trades


def test_bad_trade_row_names_file_row_trade_and_field(tmp_path):
    book = sample_book(seed=5, counterparties=10, trades=40)
    write_book(book, tmp_path / "book.json", trades_file="trades.csv")
    rows = list(csv.DictReader((tmp_path / "trades.csv").open()))
    k = next(i for i, r in enumerate(rows) if r["type"] == "irs")
    rows[k]["fixed_rate"] = "four percent"
    with (tmp_path / "trades.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(BookFileError) as err:
        load_book(tmp_path / "book.json")
    assert err.value.file.endswith("trades.csv")
    assert err.value.location == f"row {k + 1} (trade_id {rows[k]['trade_id']}), field fixed_rate"
    assert "valid number" in err.value.reason


def test_bad_book_json_names_the_path(tmp_path):
    d = _tiny_book()
    d["netting_sets"][1]["csa"] = {"threshold_received": -5}
    (tmp_path / "b.json").write_text(json.dumps(d))
    with pytest.raises(BookFileError, match=r"b\.json: netting_sets\[1\]\.csa\.threshold_received: Input should be"):
        load_book(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(BookFileError, match=r"c\.json: line 1 column 2: not valid JSON"):
        load_book(tmp_path / "c.json")
    with pytest.raises(BookFileError, match="no such file"):
        load_book(tmp_path / "missing.json")
