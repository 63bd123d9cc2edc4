"""The XVA book's netting sets as SA-CCR inputs, and the regulatory weights of its counterparties.

SA-CCR (`engines.xva.saccr`) describes a trade by its asset class, primary risk factor, adjusted notional,
direction and dates; this module reads them off the engine's trades (amounts in USD at today's spot):

| trade          | class         | hedging set / factor        | notional                | long when         |
|----------------|---------------|-----------------------------|-------------------------|-------------------|
| irs            | interest_rate | its currency                | notional                | paying fixed      |
| swaption       | interest_rate | currency; option on the rate | notional               | (option)          |
| xccy           | fx            | the pair of its legs        | first currency's leg    | receiving it      |
| fx_forward     | fx            | the pair                    | first currency's amount | buying it         |
| fx_option      | fx            | the pair; option on forward | first currency's amount | (option)          |
| equity_forward | equity        | the name                    | quantity x spot         | buying            |
| equity_option  | equity        | the name; option on forward | quantity x spot         | (option)          |
| cds            | credit        | the reference name          | notional                | buying protection |

A pair's first currency is the one that is not USD (else the alphabetically first): ``EUR/USD``, ``EUR/JPY``.
Long in an interest rate swap is receiving floating (CRE52.39), so paying fixed. A cross-currency swap is
taken by its FX component, the exchange of notionals (the interest rate legs' own add-ons are left out: their
basis and rate risk are second order to the notional exchange for the capital). Options carry the Black
inputs of their supervisory delta (CRE52.40): the forward swap rate (annual fixed leg on today's curve), the
FX forward or the equity forward, the strike, the exercise date, and a shift of 1% above any negative rate.
A CDS reference's credit quality is read from its 5-year spread. Start and end dates are the trades' own.

The CSA becomes SA-CCR's margin terms: threshold and MTA of the counterparty, independent amounts and initial
margin held or posted as NICA, the MPOR in business days (at least 10, CRE52.50).

Risk weights: the counterparty credit risk weight follows the standardised approach's rating buckets (CRE20:
sovereigns 0/20/50/100/150%; banks and other corporates 20/50/100/150% for AA and above, A, BBB to BB, below);
the BA-CVA weight is MAR50.16's for the counterparty's sector (bank, fund and insurer: financials; sovereign:
sovereign; corporate: other sector) and credit quality (BBB- or better: investment grade).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np

from engines.xva.market import Market
from engines.xva.saccr_models import NettingSet as SaccrNettingSet
from engines.xva.saccr_models import OptionTerms, SaccrTrade
from engines.xva.trades import (
    CSA,
    Book,
    CreditDefaultSwap,
    CrossCurrencySwap,
    EquityForward,
    EquityOption,
    FxForward,
    FxOption,
    InterestRateSwap,
    Swaption,
)

__all__ = [
    "ba_cva_quality",
    "ba_cva_sector",
    "ccr_risk_weight",
    "credit_quality_of_spread",
    "is_investment_grade",
    "saccr_netting_set",
    "saccr_trade",
]

BASE = "USD"
MIN_MPOR_BUSINESS_DAYS = 10
NEGATIVE_RATE_SHIFT = 0.01
SPREAD_QUALITY: tuple[tuple[float, str], ...] = (
    (0.0025, "AA"),
    (0.0050, "A"),
    (0.0100, "BBB"),
    (0.0250, "BB"),
    (0.0600, "B"),
)
"""Upper 5Y spread of each single-name credit quality; wider is CCC."""
INVESTMENT_GRADE = ("AAA", "AA", "A", "BBB")


def _years(as_of: date, d: date) -> float:
    return max((d - as_of).days / 365.0, 0.0)


def _fx(market: Market, ccy: str) -> float:
    return market.fx_spot(ccy)


def _pair(a: str, b: str) -> tuple[str, str]:
    """The pair's (first, second) currency: the non-USD one first, else alphabetical."""
    if b == BASE:
        return a, b
    if a == BASE:
        return b, a
    return (a, b) if a < b else (b, a)


def _discount(market: Market, ccy: str, t: float) -> float:
    return float(market.currencies[ccy].discount.discount(t))  # type: ignore[index]


def _forward_swap_rate(market: Market, ccy: str, start: float, end: float) -> float:
    """Par rate of an annual fixed leg from `start` to `end` on today's curve (the swaption's underlying P)."""
    n = max(1, round(end - start))
    pay = [start + (end - start) * (i + 1) / n for i in range(n)]
    tau = (end - start) / n
    annuity = sum(tau * _discount(market, ccy, t) for t in pay)
    return (_discount(market, ccy, start) - _discount(market, ccy, end)) / annuity


def _shift(*rates: float) -> float:
    low = min(rates)
    return 0.0 if low > 0 else NEGATIVE_RATE_SHIFT - low


def credit_quality_of_spread(spread_5y: float) -> str:
    """A single-name credit quality (AA..CCC) for a 5-year CDS spread in decimals."""
    for upper, quality in SPREAD_QUALITY:
        if spread_5y <= upper:
            return quality
    return "CCC"


def _spread_5y(market: Market, name: str) -> float:
    curve = market.credit_curve(name)
    return float(np.interp(5.0, curve.tenors, curve.spreads))


def saccr_trade(trade: object, market: Market) -> SaccrTrade:
    """One engine trade as an SA-CCR trade (amounts in USD; see the module table)."""
    as_of = market.as_of
    if isinstance(trade, InterestRateSwap):
        return SaccrTrade(
            id=trade.trade_id,
            asset_class="interest_rate",
            currency=trade.currency,
            notional=trade.notional * _fx(market, trade.currency),
            direction="long" if trade.pay_fixed else "short",
            maturity_years=max(_years(as_of, trade.maturity_date), 1e-6),
            start_years=_years(as_of, trade.start_date),
            end_years=max(_years(as_of, trade.maturity_date), 1e-6),
        )
    if isinstance(trade, Swaption):
        expiry = max(_years(as_of, trade.expiry_date), 1e-6)
        end = max(_years(as_of, trade.maturity_date), expiry + 1e-6)
        forward = _forward_swap_rate(market, trade.currency, expiry, end)
        return SaccrTrade(
            id=trade.trade_id,
            asset_class="interest_rate",
            currency=trade.currency,
            notional=trade.notional * _fx(market, trade.currency),
            maturity_years=end,
            start_years=expiry,
            end_years=end,
            option=OptionTerms(
                kind="call" if trade.payer else "put",
                position="bought" if trade.long else "sold",
                underlying_price=forward,
                strike=trade.strike,
                exercise_years=expiry,
                shift=_shift(forward, trade.strike),
            ),
        )
    if isinstance(trade, CrossCurrencySwap):
        first, second = _pair(trade.receive_leg.currency, trade.pay_leg.currency)
        leg = trade.receive_leg if trade.receive_leg.currency == first else trade.pay_leg
        return SaccrTrade(
            id=trade.trade_id,
            asset_class="fx",
            currency_pair=f"{first}/{second}",
            notional=leg.notional * _fx(market, first),
            direction="long" if trade.receive_leg.currency == first else "short",
            maturity_years=max(_years(as_of, trade.maturity_date), 1e-6),
        )
    if isinstance(trade, FxForward):
        first, second = _pair(trade.buy_currency, trade.sell_currency)
        amount = trade.buy_amount if trade.buy_currency == first else trade.sell_amount
        return SaccrTrade(
            id=trade.trade_id,
            asset_class="fx",
            currency_pair=f"{first}/{second}",
            notional=amount * _fx(market, first),
            direction="long" if trade.buy_currency == first else "short",
            maturity_years=max(_years(as_of, trade.delivery_date), 1e-6),
        )
    if isinstance(trade, FxOption):
        first, second = _pair(trade.foreign, trade.domestic)
        expiry = max(_years(as_of, trade.expiry_date), 1e-6)
        spot = _fx(market, first) / _fx(market, second)
        forward = spot * _discount(market, first, expiry) / _discount(market, second, expiry)
        on_first = trade.foreign == first
        strike = trade.strike if on_first else 1.0 / trade.strike
        units = trade.notional if on_first else trade.notional * trade.strike
        kind = ("call" if trade.call else "put") if on_first else ("put" if trade.call else "call")
        return SaccrTrade(
            id=trade.trade_id,
            asset_class="fx",
            currency_pair=f"{first}/{second}",
            notional=units * _fx(market, first),
            maturity_years=expiry,
            option=OptionTerms(
                kind=kind,
                position="bought" if trade.long else "sold",
                underlying_price=forward,
                strike=strike,
                exercise_years=expiry,
            ),
        )
    if isinstance(trade, EquityForward | EquityOption):
        eq = market.equities[trade.underlying]
        notional = trade.quantity * eq.spot * _fx(market, eq.currency)
        if isinstance(trade, EquityForward):
            return SaccrTrade(
                id=trade.trade_id,
                asset_class="equity",
                reference=trade.underlying,
                notional=notional,
                direction="long" if trade.long else "short",
                maturity_years=max(_years(as_of, trade.maturity_date), 1e-6),
            )
        expiry = max(_years(as_of, trade.expiry_date), 1e-6)
        forward = eq.spot * math.exp(-eq.dividend_yield * expiry) / _discount(market, eq.currency, expiry)
        return SaccrTrade(
            id=trade.trade_id,
            asset_class="equity",
            reference=trade.underlying,
            notional=notional,
            maturity_years=expiry,
            option=OptionTerms(
                kind="call" if trade.call else "put",
                position="bought" if trade.long else "sold",
                underlying_price=forward,
                strike=trade.strike,
                exercise_years=expiry,
            ),
        )
    if isinstance(trade, CreditDefaultSwap):
        return SaccrTrade(
            id=trade.trade_id,
            asset_class="credit",
            reference=trade.reference,
            credit_quality=credit_quality_of_spread(_spread_5y(market, trade.reference)),  # type: ignore[arg-type]
            notional=trade.notional * _fx(market, trade.currency),
            direction="long" if trade.protection_buyer else "short",
            maturity_years=max(_years(as_of, trade.maturity_date), 1e-6),
            start_years=_years(as_of, trade.start_date),
            end_years=max(_years(as_of, trade.maturity_date), 1e-6),
        )
    raise TypeError(f"trade: {type(trade).__name__} has no SA-CCR mapping")


def _margin_terms(csa: CSA | None, market: Market) -> dict[str, object]:
    if csa is None:
        return {"margined": False}
    fx = _fx(market, csa.currency)
    held = max(csa.independent_amount, 0.0) + csa.initial_margin_received
    posted = max(-csa.independent_amount, 0.0) + csa.initial_margin_posted
    return {
        "margined": True,
        "threshold": csa.threshold_received * fx,
        "minimum_transfer_amount": csa.minimum_transfer_amount * fx,
        "independent_collateral_held": held * fx,
        "independent_collateral_posted": posted * fx,
        "mpor_business_days": max(csa.margin_period_of_risk_days, MIN_MPOR_BUSINESS_DAYS),
    }


def saccr_netting_set(
    book: Book, netting_set_id: str, market: Market, trades: Sequence[object] | None = None
) -> SaccrNettingSet:
    """The netting set (its book trades, or `trades` instead, e.g. after a what-if) as an SA-CCR netting set."""
    ns = book.netting_set(netting_set_id)
    chosen = trades if trades is not None else [book.trades[i] for i in book.trades_by_netting_set()[netting_set_id]]
    return SaccrNettingSet(
        id=netting_set_id,
        currency=BASE,
        trades=[saccr_trade(t, market) for t in chosen],
        **_margin_terms(ns.csa, market),  # type: ignore[arg-type]
    )


def _rating(rating: str) -> str:
    return rating.upper().rstrip("+-").strip()


def is_investment_grade(rating: str) -> bool:
    return _rating(rating) in INVESTMENT_GRADE


def ccr_risk_weight(sector: str, rating: str) -> float:
    """The standardised counterparty credit risk weight (decimal) for a sector and an agency rating (CRE20)."""
    r = _rating(rating)
    if sector == "sovereign":
        return {"AAA": 0.0, "AA": 0.0, "A": 0.2, "BBB": 0.5, "BB": 1.0, "B": 1.0}.get(r, 1.5)
    return {"AAA": 0.2, "AA": 0.2, "A": 0.5, "BBB": 1.0, "BB": 1.0}.get(r, 1.5)


def ba_cva_sector(sector: str) -> str:
    """The MAR50.16 sector of a counterparty sector of the book."""
    return {"bank": "financial", "fund": "financial", "insurer": "financial", "sovereign": "sovereign"}.get(
        sector, "other"
    )


def ba_cva_quality(rating: str) -> str:
    return "IG" if is_investment_grade(rating) else "HY"

