"""A deterministic generator of a realistic dealer book: counterparties, netting sets, CSAs and trades.

`sample_book(seed, counterparties, trades)` gives the same book for the same arguments (one numpy generator,
drawn in a fixed order). The shape is what a dealer's book looks like, not uniform noise:

- Trade counts per counterparty follow a Zipf law (weight 1/rank^1.05), so a handful of netting sets hold
  thousands of trades and most hold a few; every netting set has at least one trade. One counterparty in ten
  has a second, smaller netting set (a legacy agreement).
- Sectors drive ratings, CSAs and products: banks and funds are collateralised (zero thresholds, daily VM,
  often initial margin), corporates and sovereigns mostly are not, or with large thresholds. The Basel rule
  of a 20-day margin period of risk applies to netting sets of more than 5,000 trades.
- Products: swaps (42%), FX forwards (20%), cross-currency swaps, swaptions, FX and equity options, equity
  forwards and single-name CDS; notionals are lognormal (median USD 10m, a few above USD 1bn); seasoned
  trades started up to five years ago; strikes and fixed rates sit near the market's forwards.
- One counterparty in twelve carries wrong-way risk: its credit intensity is correlated to the FX rate of
  its home currency, or to an equity index for funds; intensity vols are 0.3 × the 5Y hazard rate.

It runs in about a second for the default 1,000 counterparties and 20,000 trades.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from engines.xva.market import RATINGS, Market, add_months, rating_curve, sample_market
from engines.xva.trades import (
    CSA,
    Book,
    Counterparty,
    CreditDefaultSwap,
    CrossCurrencySwap,
    EquityForward,
    EquityOption,
    FxForward,
    FxOption,
    InterestRateSwap,
    NettingSet,
    SwapLeg,
    Swaption,
    WrongWayRisk,
    usd_notional,
)

SECTORS = ("bank", "fund", "corporate", "sovereign", "insurer")
_SECTOR_P = (0.15, 0.25, 0.45, 0.05, 0.10)
_RATING_P = {  # AA, A, BBB, BB, B by sector
    "bank": (0.15, 0.55, 0.25, 0.05, 0.0),
    "fund": (0.0, 0.15, 0.45, 0.3, 0.1),
    "corporate": (0.05, 0.2, 0.45, 0.2, 0.1),
    "sovereign": (0.5, 0.3, 0.15, 0.05, 0.0),
    "insurer": (0.2, 0.55, 0.25, 0.0, 0.0),
}
_COLLATERALISED_P = {"bank": 0.98, "fund": 0.9, "corporate": 0.25, "sovereign": 0.3, "insurer": 0.8}
PRODUCTS = ("irs", "xccy", "fx_forward", "fx_option", "swaption", "equity_option", "equity_forward", "cds")
_PRODUCT_P = (0.42, 0.08, 0.20, 0.05, 0.07, 0.08, 0.04, 0.06)
_RATES_CCY = ("USD", "EUR", "GBP", "JPY", "CHF")
_RATES_CCY_P = (0.40, 0.30, 0.12, 0.10, 0.08)
_HOME_CCY_P = (0.45, 0.30, 0.12, 0.08, 0.05)
_SWAP_TENORS = np.array([2, 3, 5, 7, 10, 15, 20, 30])
_SWAP_TENOR_P = np.array([0.08, 0.10, 0.22, 0.12, 0.25, 0.08, 0.08, 0.07])
LARGE_NETTING_SET_TRADES = 5000
"""Basel: netting sets above this many trades get a 20-day margin period of risk."""


def sample_book(seed: int = 7, counterparties: int = 1000, trades: int = 20000, market: Market | None = None) -> Book:
    """A realistic book of `trades` trades with `counterparties` counterparties, the same for the same arguments."""
    if counterparties < 1:
        raise ValueError(f"counterparties: at least 1, got {counterparties}")
    if trades < counterparties:
        raise ValueError(f"trades: at least one per counterparty ({counterparties}), got {trades}")
    market = market or sample_market()
    rng = np.random.default_rng(seed)
    parties = _counterparties(rng, counterparties, market)
    sets, set_weight = _netting_sets(rng, parties)
    counts = np.ones(len(sets), dtype=np.int64) + rng.multinomial(trades - len(sets), set_weight)
    owner = np.repeat(np.arange(len(sets)), counts)
    owner = owner[rng.permutation(owner.size)]  # trade ids do not follow netting sets
    built = _trades(rng, market, [s["netting_set_id"] for s in sets], owner)
    netting_sets = _csas(rng, sets, parties, counts, built, market)
    return Book(counterparties=parties, netting_sets=netting_sets, trades=built)


def _counterparties(rng: np.random.Generator, n: int, market: Market) -> list[Counterparty]:
    sectors = rng.choice(len(SECTORS), size=n, p=_SECTOR_P)
    scale = np.exp(rng.normal(0.0, 0.25, size=n))
    rating_u = rng.random(n)
    home = rng.choice(len(_RATES_CCY), size=n, p=_HOME_CCY_P)
    wwr = rng.random(n) < 1 / 12
    wwr_rho = rng.uniform(0.25, 0.6, size=n)
    equity_names = market.equity_list
    equity_pick = rng.integers(0, len(equity_names), size=n)
    out = []
    for i in range(n):
        sector = SECTORS[sectors[i]]
        rating = RATINGS[int(np.searchsorted(np.cumsum(_RATING_P[sector]), rating_u[i] * 0.999999))]
        recovery = 0.25 if sector == "sovereign" and rating in ("BB", "B") else 0.4
        curve = rating_curve(rating, float(scale[i]), recovery)
        hazard_5y = curve.spreads[2] / (1 - recovery)
        wrong_way = None
        if wwr[i]:
            ccy = _RATES_CCY[home[i]]
            if sector == "fund":
                wrong_way = WrongWayRisk(driver=f"EQ.{equity_names[equity_pick[i]]}", correlation=-float(wwr_rho[i]))
            elif ccy != "USD" and f"FX.{ccy}" in market.driver_names:
                # the home currency weakens (FX against USD falls) as the counterparty's credit worsens
                wrong_way = WrongWayRisk(driver=f"FX.{ccy}", correlation=-float(wwr_rho[i]))
            else:
                wrong_way = WrongWayRisk(driver="IR.USD", correlation=-float(wwr_rho[i]) / 2)
        out.append(
            Counterparty(
                counterparty_id=f"CP{i + 1:04d}",
                sector=sector,
                rating=rating,
                credit_curve=curve,
                intensity_volatility=round(0.3 * hazard_5y, 6),
                wrong_way=wrong_way,
            )
        )
    return out


def _netting_sets(rng: np.random.Generator, parties: list[Counterparty]) -> tuple[list[dict], np.ndarray]:
    n = len(parties)
    rank = rng.permutation(n)
    size_tilt = np.array([{"bank": 3.0, "fund": 2.0, "insurer": 1.5}.get(p.sector, 1.0) for p in parties])
    weight = size_tilt / (rank + 1.0) ** 1.05
    second = rng.random(n) < 0.1
    sets: list[dict] = []
    set_weight: list[float] = []
    for i in range(n):
        split = (0.8, 0.2) if second[i] else (1.0,)
        for k, share in enumerate(split):
            sets.append({"netting_set_id": f"NS{len(sets) + 1:05d}", "counterparty": i, "legacy": k == 1})
            set_weight.append(weight[i] * share)
    w = np.asarray(set_weight)
    return sets, w / w.sum()


def _dates(as_of: date, days: np.ndarray) -> list[date]:
    return [as_of + timedelta(days=int(d)) for d in days]


def _trades(rng: np.random.Generator, market: Market, set_ids: list[str], owner: np.ndarray) -> list:
    n = owner.size
    as_of = market.as_of
    kind = rng.choice(len(PRODUCTS), size=n, p=_PRODUCT_P)
    size_usd = np.minimum(np.exp(rng.normal(np.log(10e6), 1.0, size=n)), 2.5e9)
    ccy = rng.choice(len(_RATES_CCY), size=n, p=_RATES_CCY_P)
    tenor = rng.choice(_SWAP_TENORS, size=n, p=_SWAP_TENOR_P / _SWAP_TENOR_P.sum())
    u = rng.random((n, 8))
    z = rng.normal(size=(n, 4))
    short_tenor_days = rng.integers(20, 730, size=n)
    out = []
    for i in range(n):
        ns = set_ids[owner[i]]
        tid = f"T{i + 1:06d}"
        product = PRODUCTS[kind[i]]
        c = _RATES_CCY[ccy[i]]
        fx = market.fx_spot(c)
        notional = _round_notional(size_usd[i] / fx)
        if product == "irs":
            start, maturity = _seasoned(as_of, int(tenor[i]), u[i, 0], u[i, 1])
            t_mat = (maturity - as_of).days / 365.0
            par = float(_zero(market, c, t_mat))
            seasoned = start <= as_of
            out.append(
                InterestRateSwap(
                    trade_id=tid,
                    netting_set_id=ns,
                    currency=c,
                    notional=notional,
                    start_date=start,
                    maturity_date=maturity,
                    fixed_rate=round(par + 0.004 * z[i, 0], 5),
                    pay_fixed=bool(u[i, 2] < 0.5),
                    current_fixing=round(float(_zero(market, c, 0.25)) + 0.002 * z[i, 1], 5) if seasoned else None,
                )
            )
        elif product == "xccy":
            other = _RATES_CCY[1 + int(u[i, 3] * 4)]
            start, maturity = _seasoned(as_of, int(min(tenor[i], 10)), u[i, 0], u[i, 1])
            usd_size = _round_notional(size_usd[i])
            other_notional = _round_notional(size_usd[i] / market.fx_spot(other))
            seasoned = start <= as_of
            t_mat = (maturity - as_of).days / 365.0
            usd_leg = SwapLeg(
                currency="USD",
                notional=usd_size,
                current_fixing=round(float(_zero(market, "USD", 0.25)), 5) if seasoned else None,
            )
            if u[i, 4] < 0.3:
                other_leg = SwapLeg(
                    currency=other,
                    notional=other_notional,
                    fixed_rate=round(float(_zero(market, other, t_mat)) + 0.003 * z[i, 0], 5),
                )
            else:
                other_leg = SwapLeg(
                    currency=other,
                    notional=other_notional,
                    spread=round(0.001 * z[i, 0], 5),
                    current_fixing=round(float(_zero(market, other, 0.25)), 5) if seasoned else None,
                )
            pay, receive = (usd_leg, other_leg) if u[i, 2] < 0.5 else (other_leg, usd_leg)
            out.append(
                CrossCurrencySwap(
                    trade_id=tid,
                    netting_set_id=ns,
                    pay_leg=pay,
                    receive_leg=receive,
                    start_date=start,
                    maturity_date=maturity,
                )
            )
        elif product in ("fx_forward", "fx_option"):
            foreign = _RATES_CCY[1 + int(u[i, 3] * 4)]
            domestic = "USD" if u[i, 4] < 0.8 else _RATES_CCY[1 + (int(u[i, 3] * 4) + 1 + int(u[i, 5] * 3)) % 4]
            days = int(short_tenor_days[i])
            t = days / 365.0
            fwd = _fx_forward(market, foreign, domestic, t)
            units = _round_notional(size_usd[i] / market.fx_spot(foreign))
            expiry = as_of + timedelta(days=days)
            if product == "fx_forward":
                strike = fwd * (1 + 0.02 * z[i, 0])
                buy_foreign = u[i, 2] < 0.5
                foreign_amount, domestic_amount = units, round(units * strike, 2)
                out.append(
                    FxForward(
                        trade_id=tid,
                        netting_set_id=ns,
                        buy_currency=foreign if buy_foreign else domestic,
                        buy_amount=foreign_amount if buy_foreign else domestic_amount,
                        sell_currency=domestic if buy_foreign else foreign,
                        sell_amount=domestic_amount if buy_foreign else foreign_amount,
                        delivery_date=expiry,
                    )
                )
            else:
                out.append(
                    FxOption(
                        trade_id=tid,
                        netting_set_id=ns,
                        foreign=foreign,
                        domestic=domestic,
                        notional=units,
                        strike=round(fwd * float(np.exp(0.05 * z[i, 0])), 6),
                        expiry_date=expiry,
                        call=bool(u[i, 2] < 0.5),
                        long=bool(u[i, 6] < 0.6),
                    )
                )
        elif product == "swaption":
            expiry_months = int(12 * (0.5, 1, 2, 3, 5, 10)[int(u[i, 0] * 6)])
            swap_years = int((2, 5, 10, 20)[int(u[i, 1] * 4)])
            expiry = add_months(as_of, expiry_months)
            par = float(_zero(market, c, expiry_months / 12 + swap_years))
            out.append(
                Swaption(
                    trade_id=tid,
                    netting_set_id=ns,
                    currency=c,
                    notional=notional,
                    expiry_date=expiry,
                    maturity_date=add_months(expiry, 12 * swap_years),
                    strike=round(par + 0.005 * z[i, 0], 5),
                    payer=bool(u[i, 2] < 0.5),
                    long=bool(u[i, 6] < 0.6),
                    settlement="physical" if u[i, 7] < 0.7 else "cash",
                )
            )
        elif product in ("equity_option", "equity_forward"):
            name = market.equity_list[int(u[i, 3] * len(market.equity_list))]
            eq = market.equities[name]
            days = int(30 + u[i, 0] * 1065)
            t = days / 365.0
            fwd = (
                eq.spot
                * np.exp(-eq.dividend_yield * t)
                / float(np.exp(market.currencies[eq.currency].discount.log_discount(t)))
            )
            quantity = max(1.0, round(size_usd[i] / 5 / (eq.spot * market.fx_spot(eq.currency))))
            if product == "equity_option":
                out.append(
                    EquityOption(
                        trade_id=tid,
                        netting_set_id=ns,
                        underlying=name,
                        quantity=quantity,
                        strike=round(fwd * float(np.exp(0.1 * z[i, 0])), 2),
                        expiry_date=as_of + timedelta(days=days),
                        call=bool(u[i, 2] < 0.5),
                        long=bool(u[i, 6] < 0.6),
                    )
                )
            else:
                out.append(
                    EquityForward(
                        trade_id=tid,
                        netting_set_id=ns,
                        underlying=name,
                        quantity=quantity,
                        strike=round(fwd * (1 + 0.03 * z[i, 0]), 2),
                        maturity_date=as_of + timedelta(days=days),
                        long=bool(u[i, 2] < 0.5),
                    )
                )
        else:  # cds
            names = sorted(market.credit_curves)
            ref = names[int(u[i, 3] * len(names))]
            years = int((1, 3, 5, 5, 7, 10)[int(u[i, 0] * 6)])
            start = as_of - timedelta(days=int(u[i, 1] * 365 * min(years - 0.5, 3)))
            spread5 = market.credit_curves[ref].spreads[2]
            out.append(
                CreditDefaultSwap(
                    trade_id=tid,
                    netting_set_id=ns,
                    reference=ref,
                    notional=_round_notional(size_usd[i]),
                    spread=0.01 if spread5 < 0.02 else 0.05,
                    start_date=start,
                    maturity_date=add_months(start, 12 * years),
                    protection_buyer=bool(u[i, 2] < 0.5),
                )
            )
    return out


def _csas(
    rng: np.random.Generator, sets: list[dict], parties: list[Counterparty], counts: np.ndarray, trades, market
) -> list[NettingSet]:
    gross = np.zeros(len(sets))
    index = {s["netting_set_id"]: k for k, s in enumerate(sets)}
    for t in trades:
        gross[index[t.netting_set_id]] += usd_notional(t, market)
    u = rng.random((len(sets), 5))
    out = []
    for k, s in enumerate(sets):
        party = parties[s["counterparty"]]
        collateralised = u[k, 0] < _COLLATERALISED_P[party.sector] and not s["legacy"]
        csa = None
        if collateralised:
            ccy = "USD" if u[k, 1] < 0.7 else ("EUR" if u[k, 1] < 0.9 else "GBP")
            fx = market.fx_spot(ccy)
            zero_threshold = party.sector in ("bank", "fund", "insurer")
            threshold = 0.0 if zero_threshold else _round_notional((5e6 + 45e6 * u[k, 2]) / fx)
            mta = _round_notional((2.5e5 if zero_threshold else 1e6) / fx)
            im = 0.0
            if party.sector in ("bank", "fund") and u[k, 3] < 0.6:
                im = _round_notional(0.01 * gross[k] / fx)  # in the uncleared-margin-rules scope
            csa = CSA(
                currency=ccy,
                threshold_received=threshold,
                threshold_posted=threshold,
                minimum_transfer_amount=mta,
                initial_margin_received=im,
                initial_margin_posted=im,
                margin_period_of_risk_days=20 if counts[k] > LARGE_NETTING_SET_TRADES else 10,
            )
        out.append(NettingSet(netting_set_id=s["netting_set_id"], counterparty_id=party.counterparty_id, csa=csa))
    return out


def _round_notional(x: float) -> float:
    """Round to 3 significant figures (10,234,567 → 10,200,000)."""
    if x <= 0:
        return 0.0
    digits = int(np.floor(np.log10(x))) - 2
    return float(round(x / 10**digits) * 10**digits)


def _seasoned(as_of: date, tenor_years: int, u_age: float, u_fwd: float) -> tuple[date, date]:
    """A start date up to 5 years ago (leaving at least a month to run) or, 1 time in 20, up to a year ahead."""
    if u_fwd < 0.05:
        start = as_of + timedelta(days=int(7 + u_fwd / 0.05 * 358))
    else:
        max_age_days = int(min(5.0, tenor_years - 0.1) * 365)
        start = as_of - timedelta(days=int(u_age * max_age_days))
    return start, add_months(start, 12 * tenor_years)


def _zero(market: Market, ccy: str, t: float) -> float:
    """The zero rate to `t`: a proxy for par and forward rates when drawing strikes."""
    t = max(t, 1e-4)
    return float(-market.currencies[ccy].discount.log_discount(t) / t)


def _fx_forward(market: Market, foreign: str, domestic: str, t: float) -> float:
    """Domestic per foreign for delivery at `t` (covered interest parity on the discount curves)."""
    spot = market.fx_spot(foreign) / market.fx_spot(domestic)
    lf = float(market.currencies[foreign].discount.log_discount(t))
    ld = float(market.currencies[domestic].discount.log_discount(t))
    return spot * float(np.exp(lf - ld))
