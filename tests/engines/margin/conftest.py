"""Books shared by the margin engine's tests.

- `sample_book`: the generated sample (30 managers, 5,000 positions, 50 CCPs, 150 dealers, ten years of
  synthetic daily returns), built once per session (`generator.sample()` caches it in the process too).
- `tiny_book`: a hand-built book of 16 positions, one or more of every instrument, at 2 CCPs and 2
  dealers, in USD, EUR and JPY, on 16 factors with 300 days of synthetic history: small enough to reason
  about by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from engines.margin.book import Book, Manager, RiskFactor, Strategy, book_arrays
from engines.margin.files import LoadedBook
from engines.margin.history import synthetic_history
from engines.margin.venues import (
    BilateralCounterparty,
    Ccp,
    CcpMarginModel,
    CreditFacility,
    CsaTerms,
    EligibleCollateral,
    LiquidityResources,
)

TINY_AS_OF = date(2026, 11, 20)


@pytest.fixture(scope="session")
def sample_book() -> LoadedBook:
    """The default generated sample book (seed 2026)."""
    from engines.margin.generator import sample

    return sample()


def _tiny_factors() -> list[RiskFactor]:
    def factor(fid: str, cls: str, ccy: str, level: float, depth: float = 5e9) -> RiskFactor:
        return RiskFactor(id=fid, asset_class=cls, currency=ccy, depth_usd=depth, level=level)

    return [
        factor("IR.USD.1Y", "rates", "USD", 0.037, 50e9),
        factor("IR.USD.2Y", "rates", "USD", 0.035, 50e9),
        factor("IR.USD.5Y", "rates", "USD", 0.036, 50e9),
        factor("IR.USD.10Y", "rates", "USD", 0.040, 50e9),
        factor("IR.EUR.2Y", "rates", "EUR", 0.0215, 30e9),
        factor("IR.EUR.10Y", "rates", "EUR", 0.0275, 30e9),
        factor("FX.EURUSD", "fx", "EUR", 1.10, 100e9),
        factor("FX.JPYUSD", "fx", "JPY", 0.0066, 50e9),
        factor("EQ.SPX", "equity", "USD", 6500.0, 40e9),
        factor("EQ.SX5E", "equity", "EUR", 5500.0, 10e9),
        factor("VOL.EQ.SPX", "equity", "USD", 0.17, 1e9),
        factor("VOL.EQ.SX5E", "equity", "EUR", 0.18, 1e9),
        factor("VOL.IR.USD", "rates", "USD", 0.0085, 1e9),
        factor("CR.CDX_IG.5Y", "credit", "USD", 0.0052, 5e9),
        factor("CR.ITRAXX_MAIN.5Y", "credit", "EUR", 0.0058, 5e9),
        factor("CM.WTI", "commodity", "USD", 64.0, 8e9),
    ]


def _tiny_positions() -> list[dict[str, Any]]:
    macro, credit = "M1-macro", "M2-credit"
    return [
        dict(id="F1", instrument="listed_future", strategy=macro, venue="CCP-A", currency="USD", underlying="EQ.SPX",
             contracts=10, multiplier=50, expiry="2026-12-18"),
        dict(id="F2", instrument="listed_future", strategy=macro, venue="CCP-A", currency="EUR", underlying="EQ.SX5E",
             contracts=-20, multiplier=10, expiry="2026-12-18"),
        dict(id="F3", instrument="listed_future", strategy=macro, venue="CCP-A", currency="USD", underlying="CM.WTI",
             contracts=5, multiplier=1000, expiry="2027-01-20"),
        dict(id="O1", instrument="listed_option", strategy=macro, venue="CCP-A", currency="USD", underlying="EQ.SPX",
             contracts=15, multiplier=100, option="call", strike=6600, expiry="2027-03-19", dividend_yield=0.013),
        dict(id="O2", instrument="listed_option", strategy=macro, venue="CCP-A", currency="EUR", underlying="EQ.SX5E",
             contracts=-30, multiplier=10, option="put", strike=5200, expiry="2027-06-18", dividend_yield=0.03),
        dict(id="S1", instrument="cleared_irs", strategy=macro, venue="CCP-B", currency="USD", notional=100e6,
             direction="pay_fixed", fixed_rate=0.036, maturity="2033-11-20"),
        dict(id="S2", instrument="cleared_irs", strategy=macro, venue="CCP-B", currency="EUR", notional=50e6,
             direction="receive_fixed", fixed_rate=0.025, maturity="2036-05-20"),
        dict(id="C1", instrument="cds_index", strategy=credit, venue="CCP-B", currency="USD",
             underlying="CR.CDX_IG.5Y", notional=25e6, protection="buy", coupon=0.01, maturity="2031-12-20"),
        dict(id="C2", instrument="cds_index", strategy=credit, venue="CCP-B", currency="EUR",
             underlying="CR.ITRAXX_MAIN.5Y", notional=20e6, protection="sell", coupon=0.01, maturity="2031-12-20"),
        dict(id="X1", instrument="fx_forward", strategy=macro, venue="DEALER-A", currency="USD", buy_currency="EUR",
             buy_amount=10e6, sell_currency="USD", sell_amount=11.05e6, maturity="2027-05-20"),
        dict(id="X2", instrument="fx_forward", strategy=macro, venue="DEALER-A", currency="EUR", buy_currency="JPY",
             buy_amount=1.5e9, sell_currency="EUR", sell_amount=9e6, maturity="2027-02-19"),
        dict(id="T1", instrument="equity_trs", strategy=macro, venue="DEALER-A", currency="EUR", underlying="EQ.SX5E",
             notional=15e6, direction="receive_equity", maturity="2027-06-18"),
        dict(id="U1", instrument="uncleared_irs", strategy=credit, venue="DEALER-B", currency="USD", notional=40e6,
             direction="receive_fixed", fixed_rate=0.041, maturity="2046-11-20", payments_per_year=2),
        dict(id="U2", instrument="uncleared_option", strategy=macro, venue="DEALER-B", currency="USD",
             underlying="IR.USD.10Y", quantity=50e6, option="call", strike=0.042, expiry="2028-11-20"),
        dict(id="U3", instrument="uncleared_option", strategy=macro, venue="DEALER-B", currency="USD",
             underlying="FX.EURUSD", quantity=-8e6, option="put", strike=1.08, expiry="2027-02-19", volatility=0.075),
        dict(id="U4", instrument="uncleared_option", strategy=macro, venue="DEALER-A", currency="EUR",
             underlying="EQ.SX5E", quantity=-2000, option="call", strike=6000, expiry="2027-11-19"),
    ]  # fmt: skip


def _tiny_book_data() -> dict[str, Any]:
    ccps = [
        Ccp(id="CCP-A", name="Equity clearing house", region="US", currency="USD",
            margin_model=CcpMarginModel(measure="es", confidence=0.99, mpor_days=2, lookback_days=250)),
        Ccp(id="CCP-B", name="Rates clearing house", region="EU", currency="EUR",
            margin_model=CcpMarginModel(measure="var", confidence=0.997, mpor_days=5, lookback_days=250,
                                        apc="ten_year_floor")),
    ]  # fmt: skip
    dealers = [
        BilateralCounterparty(id="DEALER-A", name="Dealer A", region="US"),
        BilateralCounterparty(
            id="DEALER-B",
            name="Dealer B",
            region="UK",
            csa=CsaTerms(
                threshold_usd=10e6,
                mpor_days=20,
                currency="GBP",
                eligible_collateral=(
                    EligibleCollateral(asset="cash-USD", haircut=0.0),
                    EligibleCollateral(asset="govt-UK", haircut=0.02),
                ),
            ),
        ),
    ]
    book = Book(
        as_of=TINY_AS_OF,
        managers=(Manager(id="M1", name="Macro team"), Manager(id="M2", name="Credit team")),
        strategies=(
            Strategy(id="M1-macro", manager="M1", name="Macro", style="macro", capital_usd=1e9, return_target=0.08),
            Strategy(id="M2-credit", manager="M2", name="Credit", style="credit", capital_usd=5e8, return_target=0.06),
        ),
        venues=(*ccps, *dealers),
        factors=tuple(_tiny_factors()),
        positions=(),
        resources=LiquidityResources(
            cash_usd={"USD": 50e6, "EUR": 20e6},
            operational_buffer_usd=5e6,
            facility=CreditFacility(limit_usd=30e6, max_draw_per_day_usd=10e6),
        ),
    )
    return {**book.model_dump(mode="json"), "positions": _tiny_positions()}


@pytest.fixture(scope="session")
def tiny_book() -> LoadedBook:
    """16 positions (every instrument) at 2 CCPs and 2 dealers, 16 factors, 300 days of synthetic history."""
    book = Book.model_validate(_tiny_book_data())
    history = synthetic_history(book.factors, end=TINY_AS_OF, days=300, seed=11)
    return LoadedBook(book=book, history=history, arrays=book_arrays(book, history))


@pytest.fixture
def tiny_book_data() -> Callable[[], dict[str, Any]]:
    """A function giving the tiny book as fresh plain data (JSON-like), for tests that break one field of it."""
    return _tiny_book_data
