"""A deterministic generator of realistic sample books for the margin desk.

`sample()` builds a $15bn multi-manager platform on 2026-11-20: 30 managers running 1 to 3
strategies each (macro, rates relative value, equity long/short, credit, vol arbitrage, commodities,
FX), 5,000 positions across 50 CCPs and 150 bilateral counterparties in eight currencies, on ~107
risk factors (six-pillar swap curves, FX rates, 15 equity indices, 6 credit indices, 8 commodities,
rate and equity vols), with ten years of SYNTHETIC daily returns (`history.py`). Levels, depths and
vols are round, plausible numbers for late 2026, not market data; venue and counterparty names are
made up.

How the book is put together:

- Managers' capital is lognormal (a few large pods), split over their strategies, summing to
  `PLATFORM_CAPITAL_USD`; each strategy's return target depends on its style.
- Positions are spread over strategies in proportion to capital^0.8; each draws an instrument from
  its style's mix, then its underlying (liquid markets more often), terms and side.
- Sides: the sign of a position's delta on its main factor is positive with probability one half,
  moved by a small platform tilt per factor (managers crowd into the same trades, so a venue's
  positions net less than random sides would) and by the style (equity long/short books lean long).
- Sizes are risk budgets: a position's daily standalone volatility is its strategy's share times a
  lognormal weight (σ = 1.2: a skewed, heavy-tailed size distribution), turned into contracts or
  notional through its main factor's daily vol, capped at `DEPTH_CAP` days of the factor's market
  depth and rounded to market lots.
- Cleared positions go to CCPs that clear their asset class (large CCPs and CCPs of the position's
  currency more often), uncleared ones to dealers (a few large ones take most); every venue gets at
  least one position when there are enough.
- One scale calibrates all sizes so that a parametric margin proxy (2.33 σ √MPOR per venue, from the
  history's correlations) totals `MARGIN_TARGET` of capital; liquidity resources are set against
  that figure so that a severe stress is tight but not hopeless.

The same arguments give the same book and history, byte for byte. The default sample is cached.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from engines.margin import instruments as ins
from engines.margin.arrays import FactorHistory
from engines.margin.book import (
    Book,
    Manager,
    Position,
    PositionDocument,
    RiskFactor,
    Strategy,
    book_arrays,
    fx_factor,
)
from engines.margin.files import LoadedBook
from engines.margin.history import TRADING_DAYS_PER_YEAR, normal_daily_vol, synthetic_history
from engines.margin.venues import (
    BilateralCounterparty,
    Ccp,
    CcpMarginModel,
    ConcentrationAddOn,
    CreditFacility,
    CsaTerms,
    EligibleCollateral,
    LiquidityAddOn,
    LiquidityResources,
)

SAMPLE_AS_OF = date(2026, 11, 20)
PLATFORM_CAPITAL_USD = 15e9
MARGIN_TARGET = 0.18
"""The margin proxy (sum over venues of 2.33 σ √MPOR) the sizes are scaled to, as a fraction of capital."""
DEPTH_CAP = 1.5
"""No position's notional exceeds this many days of its main factor's market depth."""
CASH_SHARE, FACILITY_SHARE, BUFFER_SHARE = 0.6, 0.4, 0.1
"""Unencumbered cash and the credit facility as fractions of the margin proxy; the buffer as a fraction of cash."""

# -- the market: levels (decimals for rates, spreads and vols) and daily depth (USD notional) --------

CURVES: dict[str, tuple[tuple[float, ...], float]] = {
    "USD": ((0.0390, 0.0365, 0.0350, 0.0360, 0.0405, 0.0455), 60e9),
    "EUR": ((0.0200, 0.0205, 0.0215, 0.0240, 0.0275, 0.0300), 40e9),
    "GBP": ((0.0385, 0.0370, 0.0360, 0.0375, 0.0420, 0.0460), 15e9),
    "JPY": ((0.0060, 0.0080, 0.0100, 0.0135, 0.0180, 0.0290), 12e9),
    "CHF": ((0.0000, 0.0005, 0.0010, 0.0030, 0.0055, 0.0070), 3e9),
    "CAD": ((0.0250, 0.0255, 0.0265, 0.0290, 0.0330, 0.0365), 6e9),
    "AUD": ((0.0360, 0.0355, 0.0350, 0.0375, 0.0430, 0.0480), 6e9),
    "SEK": ((0.0190, 0.0195, 0.0205, 0.0235, 0.0270, 0.0295), 2e9),
}
"""Par swap rates at the pillars 3M 1Y 2Y 5Y 10Y 30Y, and the daily depth of a pillar."""
TENOR_DEPTH: dict[str, float] = {"3M": 1.2, "1Y": 1.0, "2Y": 1.0, "5Y": 1.0, "10Y": 0.9, "30Y": 0.4}
CURRENCY_WEIGHT: dict[str, float] = {
    "USD": 0.40, "EUR": 0.24, "GBP": 0.12, "JPY": 0.08, "CHF": 0.03, "CAD": 0.05, "AUD": 0.05, "SEK": 0.03,
}  # fmt: skip
FIXED_PAYMENTS: dict[str, int] = {"CAD": 2, "AUD": 2, "JPY": 2}
RATE_VOL: dict[str, float] = {
    "USD": 0.0085, "EUR": 0.0070, "GBP": 0.0090, "JPY": 0.0045, "CHF": 0.0050, "CAD": 0.0075, "AUD": 0.0085,
    "SEK": 0.0070,
}  # fmt: skip
"""Normal swaption vols (decimals a year): the levels of VOL.IR.<CCY>."""
FX: dict[str, tuple[float, float, float, float]] = {
    "EUR": (1.10, 120e9, 125_000, 0.075),
    "GBP": (1.30, 50e9, 62_500, 0.085),
    "JPY": (0.0066, 60e9, 12_500_000, 0.100),
    "CHF": (1.18, 15e9, 125_000, 0.080),
    "CAD": (0.72, 20e9, 100_000, 0.065),
    "AUD": (0.66, 20e9, 100_000, 0.100),
    "SEK": (0.095, 5e9, 2_000_000, 0.095),
}
"""Per currency: USD per unit, daily depth, futures contract size, implied vol of FX options."""
EQUITY: dict[str, tuple[str, float, float, float, float]] = {
    "SPX": ("USD", 6500.0, 40e9, 50, 0.17),
    "NDX": ("USD", 23500.0, 20e9, 20, 0.21),
    "RTY": ("USD", 2400.0, 5e9, 50, 0.23),
    "SX5E": ("EUR", 5500.0, 12e9, 10, 0.18),
    "DAX": ("EUR", 23800.0, 6e9, 25, 0.18),
    "CAC": ("EUR", 7900.0, 4e9, 10, 0.17),
    "MIB": ("EUR", 42000.0, 2e9, 5, 0.20),
    "IBEX": ("EUR", 15500.0, 1.5e9, 10, 0.19),
    "FTSE": ("GBP", 9500.0, 5e9, 10, 0.15),
    "NKY": ("JPY", 48000.0, 8e9, 1000, 0.22),
    "TPX": ("JPY", 3300.0, 5e9, 10_000, 0.19),
    "SMI": ("CHF", 12400.0, 2e9, 10, 0.15),
    "SPTSX": ("CAD", 29000.0, 2.5e9, 200, 0.14),
    "AS51": ("AUD", 8700.0, 2.5e9, 25, 0.15),
    "OMX": ("SEK", 2650.0, 1e9, 100, 0.18),
}
"""Per index: currency, level, daily depth, contract multiplier, implied vol (the level of VOL.EQ.<index>)."""
DIVIDEND_YIELD: dict[str, float] = {"USD": 0.013, "JPY": 0.02}
CREDIT: dict[str, tuple[str, float, float, float]] = {
    "CDX_IG": ("USD", 0.0052, 6e9, 0.01),
    "CDX_HY": ("USD", 0.0330, 2e9, 0.05),
    "CDX_EM": ("USD", 0.0150, 0.5e9, 0.01),
    "ITRAXX_MAIN": ("EUR", 0.0058, 5e9, 0.01),
    "ITRAXX_XOVER": ("EUR", 0.0290, 1.5e9, 0.05),
    "ITRAXX_SENFIN": ("EUR", 0.0063, 1e9, 0.01),
}
"""Per index: currency, spread, daily depth, running coupon."""
CDS_MATURITY = date(2031, 12, 20)
COMMODITY: dict[str, tuple[float, float, float]] = {
    "WTI": (64.0, 8e9, 1000), "BRENT": (67.0, 6e9, 1000), "NATGAS": (3.6, 3e9, 10_000), "GOLD": (3900.0, 15e9, 100),
    "SILVER": (47.0, 2e9, 5000), "COPPER": (10600.0, 4e9, 25), "CORN": (4.35, 1.5e9, 5000),
    "SOYBEAN": (10.6, 1.2e9, 5000),
}  # fmt: skip
"""Per commodity (USD): price, daily depth, contract size."""

# -- the platform ---------------------------------------------------------------------------------

STYLE_LABEL: dict[str, str] = {
    "macro": "Global macro", "rates_rv": "Rates relative value", "equity_ls": "Equity long/short",
    "credit": "Credit", "vol_arb": "Volatility arbitrage", "commodities": "Commodities", "fx": "FX",
}  # fmt: skip
STYLE_SHARE: dict[str, float] = {
    "equity_ls": 0.27, "macro": 0.2, "rates_rv": 0.17, "credit": 0.13, "vol_arb": 0.1, "commodities": 0.07, "fx": 0.06,
}  # fmt: skip
SECONDARY: dict[str, tuple[str, ...]] = {
    "macro": ("fx", "rates_rv", "commodities"), "rates_rv": ("macro", "credit"), "equity_ls": ("vol_arb", "macro"),
    "credit": ("rates_rv", "equity_ls"), "vol_arb": ("equity_ls", "macro"), "commodities": ("macro", "fx"),
    "fx": ("macro", "rates_rv"),
}  # fmt: skip
RETURN_TARGET: dict[str, float] = {
    "macro": 0.10, "rates_rv": 0.08, "equity_ls": 0.12, "credit": 0.07, "vol_arb": 0.09, "commodities": 0.11,
    "fx": 0.08,
}  # fmt: skip
MIX: dict[str, dict[str, float]] = {
    "macro": {"cleared_irs": 0.3, "eq_future": 0.17, "fx_future": 0.1, "cm_future": 0.08, "fx_forward": 0.1,
              "fx_option": 0.06, "swaption": 0.08, "uncleared_irs": 0.04, "cds": 0.07},
    "rates_rv": {"cleared_irs": 0.7, "uncleared_irs": 0.1, "swaption": 0.15, "fx_forward": 0.05},
    "equity_ls": {"eq_trs": 0.35, "eq_future": 0.4, "eq_listed_option": 0.17, "fx_forward": 0.04,
                  "eq_otc_option": 0.04},
    "credit": {"cds": 0.7, "cleared_irs": 0.15, "eq_future": 0.1, "eq_trs": 0.05},
    "vol_arb": {"eq_listed_option": 0.5, "eq_otc_option": 0.2, "eq_future": 0.2, "swaption": 0.1},
    "commodities": {"cm_future": 0.9, "fx_forward": 0.05, "eq_future": 0.05},
    "fx": {"fx_forward": 0.45, "fx_option": 0.25, "fx_future": 0.3},
}  # fmt: skip
"""Each style's instrument mix (generator templates)."""
STYLE_BIAS: dict[tuple[str, str], float] = {("equity_ls", "equity"): 0.04, ("credit", "credit"): -0.03}
"""Added to the probability of a positive delta on the main factor, by (style, asset class): equity long/short
books are net long; credit books net short spreads (sold protection)."""
TILT = 0.05
"""Bound of the platform's tilt per factor on the probability of a positive delta."""

REGION_CURRENCY: dict[str, str] = {
    "US": "USD", "EU": "EUR", "UK": "GBP", "JP": "JPY", "CH": "CHF", "CA": "CAD", "AU": "AUD", "SE": "SEK", "SG": "USD",
}  # fmt: skip
MAJOR_CCPS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("US", ("rates",), 10.0), ("US", ("equity", "commodity", "fx"), 10.0), ("EU", ("rates", "equity"), 8.0),
    ("UK", ("rates", "commodity"), 8.0), ("US", ("credit",), 6.0), ("EU", ("credit",), 5.0),
    ("UK", ("equity", "commodity"), 4.0), ("JP", ("rates", "equity", "credit"), 4.0), ("US", ("equity",), 4.0),
    ("CA", ("rates", "equity"), 2.0), ("AU", ("rates", "equity"), 2.0), ("SE", ("rates", "equity", "commodity"), 1.5),
    ("CH", ("equity",), 1.5), ("SG", ("commodity", "fx"), 1.0),
)  # fmt: skip
"""The large CCPs: region, the asset classes they clear, and how often positions go there."""
PRODUCTS = ("rates", "equity", "credit", "commodity", "fx")
APC_OPTIONS = ("buffer", "stressed_weight", "ten_year_floor", "none")
DEALER_REGIONS = (("US", 0.35), ("EU", 0.3), ("UK", 0.15), ("JP", 0.08), ("CH", 0.05), ("CA", 0.04), ("AU", 0.03))
GOVERNMENT_BONDS = (("govt-US", "USD"), ("govt-DE", "EUR"), ("govt-FR", "EUR"), ("govt-UK", "GBP"), ("govt-JP", "JPY"))
RESOURCE_CURRENCY_SHARE: dict[str, float] = {
    "USD": 0.62, "EUR": 0.18, "GBP": 0.08, "JPY": 0.05, "CHF": 0.03, "CAD": 0.02, "AUD": 0.02,
}  # fmt: skip


def sample(
    seed: int = 2026,
    *,
    managers: int = 30,
    positions: int = 5000,
    ccps: int = 50,
    bilaterals: int = 150,
    years: int = 10,
) -> LoadedBook:
    """The sample book (see the module docstring), cached per arguments: the objects returned are
    immutable (frozen models, read-only arrays), so callers share them."""
    return _cached_sample(seed, managers, positions, ccps, bilaterals, years)


@functools.lru_cache(maxsize=8)
def _cached_sample(seed: int, managers: int, positions: int, ccps: int, bilaterals: int, years: int) -> LoadedBook:
    return build_sample(seed, managers=managers, positions=positions, ccps=ccps, bilaterals=bilaterals, years=years)


def build_sample(
    seed: int = 2026,
    *,
    managers: int = 30,
    positions: int = 5000,
    ccps: int = 50,
    bilaterals: int = 150,
    years: int = 10,
) -> LoadedBook:
    """`sample` without the cache: a new book each call (the same one for the same arguments)."""
    for name, value, least in (
        ("managers", managers, 1),
        ("positions", positions, 1),
        ("ccps", ccps, 1),
        ("bilaterals", bilaterals, 1),
        ("years", years, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: must be an integer of at least {least}, got {value!r}")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    factors = sample_factors()
    history = synthetic_history(factors, end=SAMPLE_AS_OF, days=years * TRADING_DAYS_PER_YEAR, seed=seed)
    venue_list = _ccps(streams[0], ccps) + _dealers(streams[0], bilaterals)
    manager_list, strategy_list = _platform(streams[1], managers)
    drafts = _draft_positions(streams[2], strategy_list, positions, {f.id: f for f in factors})
    _assign_venues(streams[3], drafts, venue_list)
    scale = _calibration(drafts, venue_list, history)
    position_list = [_position(d, scale, i, venue_list) for i, d in enumerate(drafts)]
    margin = MARGIN_TARGET * PLATFORM_CAPITAL_USD
    book = Book(
        as_of=SAMPLE_AS_OF,
        managers=tuple(manager_list),
        strategies=tuple(strategy_list),
        venues=tuple(v.model for v in venue_list),
        factors=tuple(factors),
        positions=tuple(position_list),
        resources=_resources(margin),
    )
    return LoadedBook(book=book, history=history, arrays=book_arrays(book, history))


# -- factors --------------------------------------------------------------------------------------


def sample_factors() -> list[RiskFactor]:
    """The sample's risk factors with today's levels and depths, in a fixed order."""
    out: list[RiskFactor] = []
    for ccy, (levels, depth) in CURVES.items():
        for tenor, level in zip(ins.PILLAR_YEARS, levels, strict=True):
            out.append(
                RiskFactor(
                    id=f"IR.{ccy}.{tenor}",
                    asset_class="rates",
                    currency=ccy,
                    depth_usd=depth * TENOR_DEPTH[tenor],
                    level=level,
                )
            )
    for ccy, (level, depth, _, _) in FX.items():
        out.append(RiskFactor(id=fx_factor(ccy), asset_class="fx", currency=ccy, depth_usd=depth, level=level))
    for name, (ccy, level, depth, _, _) in EQUITY.items():
        out.append(RiskFactor(id=f"EQ.{name}", asset_class="equity", currency=ccy, depth_usd=depth, level=level))
    for name, (ccy, spread, depth, _) in CREDIT.items():
        out.append(RiskFactor(id=f"CR.{name}.5Y", asset_class="credit", currency=ccy, depth_usd=depth, level=spread))
    for name, (price, depth, _) in COMMODITY.items():
        out.append(RiskFactor(id=f"CM.{name}", asset_class="commodity", currency="USD", depth_usd=depth, level=price))
    for ccy, (_, depth) in CURVES.items():
        out.append(
            RiskFactor(
                id=f"VOL.IR.{ccy}", asset_class="rates", currency=ccy, depth_usd=depth * 0.05, level=RATE_VOL[ccy]
            )
        )
    for name, (ccy, _, depth, _, vol) in EQUITY.items():
        out.append(
            RiskFactor(id=f"VOL.EQ.{name}", asset_class="equity", currency=ccy, depth_usd=depth * 0.1, level=vol)
        )
    return out


# -- venues ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Venue:
    """A venue with what the generator needs to know of it: what it clears and how popular it is."""

    model: Any
    products: tuple[str, ...]
    weight: float
    currency: str
    mpor: int

    @property
    def is_ccp(self) -> bool:
        return self.model.kind == "ccp"


def _ccps(rng: np.random.Generator, n: int) -> list[_Venue]:
    out: list[_Venue] = []
    regions = list(REGION_CURRENCY)
    for i in range(n):
        if i < len(MAJOR_CCPS):
            region, products, weight = MAJOR_CCPS[i]
        else:
            region = regions[int(rng.integers(len(regions)))]
            k = 1 + int(rng.random() < 0.35)
            products = tuple(sorted(rng.choice(PRODUCTS, size=k, replace=False, p=[0.3, 0.3, 0.1, 0.2, 0.1])))
            weight = float(rng.uniform(0.1, 0.6))
        base_mpor = max({"rates": 5, "credit": 5, "equity": 2, "commodity": 2, "fx": 1}[p] for p in products)
        mpor = int(np.clip(base_mpor + rng.integers(-1, 2), 1, 5))
        model = CcpMarginModel(
            measure="var" if i % 3 == 1 else "es",
            confidence=(0.99, 0.995, 0.997, 0.99, 0.993)[i % 5],
            mpor_days=mpor,
            lookback_days=(250, 500, 750, 1250, 2520, 750, 1000)[i % 7],
            ewma_decay=(0.94, 0.96, 0.97, 0.98, 0.99)[int(rng.integers(5))],
            apc=APC_OPTIONS[i % 4],
            apc_buffer=round(float(rng.uniform(0.25, 0.4)), 2),
            apc_stressed_weight=round(float(rng.uniform(0.25, 0.35)), 2),
            concentration=ConcentrationAddOn(
                threshold_days=round(float(rng.uniform(0.1, 0.3)), 2),
                coefficient=round(float(rng.uniform(0.3, 0.8)), 2),
                exponent=round(float(rng.uniform(1.3, 2.0)), 2),
            ),
            liquidity=LiquidityAddOn(
                spread_bp={c: round(v * float(rng.uniform(0.7, 1.5)), 2) for c, v in LiquidityAddOn().spread_bp.items()}
            ),
            intraday_call_hours=((11, 14), (10, 13, 15), (12,), (11,))[i % 4],
            end_of_day_hour=int(rng.integers(16, 19)),
            payment_delay_hours=int(rng.integers(1, 3)),
        )
        ccy = REGION_CURRENCY[region]
        ccp = Ccp(
            id=f"CCP-{i + 1:02d}",
            name=f"{region} clearing house {i + 1:02d} ({', '.join(products)})",
            region=region,
            currency=ccy,
            margin_model=model,
        )
        out.append(_Venue(ccp, tuple(products), weight, ccy, mpor))
    return out


def _dealers(rng: np.random.Generator, n: int) -> list[_Venue]:
    out: list[_Venue] = []
    names, probs = zip(*DEALER_REGIONS, strict=True)
    for i in range(n):
        region = names[int(rng.choice(len(names), p=probs))]
        ccy = REGION_CURRENCY[region] if rng.random() < 0.6 else "USD"
        collateral = [EligibleCollateral(asset="cash-USD", haircut=0.0)]
        if ccy != "USD":
            collateral.append(EligibleCollateral(asset=f"cash-{ccy}", haircut=0.0))
        for j in rng.choice(len(GOVERNMENT_BONDS), size=int(rng.integers(0, 4)), replace=False):
            asset, bond_ccy = GOVERNMENT_BONDS[int(j)]
            haircut = float(rng.uniform(0.005, 0.04)) + (0.08 if bond_ccy != ccy else 0.0)
            collateral.append(EligibleCollateral(asset=asset, haircut=round(haircut, 3)))
        legacy = rng.random() < 0.12
        csa = CsaTerms(
            threshold_usd=float(rng.choice([5e6, 10e6, 25e6, 50e6])) if legacy else 0.0,
            minimum_transfer_amount_usd=float(rng.choice([250_000.0, 500_000.0, 500_000.0, 1_000_000.0])),
            independent_amount_usd=float(rng.choice([5e6, 10e6, 20e6, 50e6])) if rng.random() < 0.15 else 0.0,
            rounding_usd=float(rng.choice([10_000.0, 50_000.0, 100_000.0])),
            mpor_days=20 if rng.random() < 0.1 else 10,
            call_timing="same_day" if rng.random() < 0.7 else "next_day",
            currency=ccy,
            eligible_collateral=tuple(collateral),
            initial_margin="none" if legacy else "simm",
        )
        dealer = BilateralCounterparty(id=f"CPTY-{i + 1:03d}", name=f"Dealer {i + 1:03d}", region=region, csa=csa)
        out.append(_Venue(dealer, (), 1.0 / (i + 1) ** 1.3, ccy, csa.mpor_days))
    return out


# -- managers and strategies ----------------------------------------------------------------------


def _platform(rng: np.random.Generator, n: int) -> tuple[list[Manager], list[Strategy]]:
    styles = list(STYLE_SHARE)
    counts = _largest_remainder(np.array(list(STYLE_SHARE.values())), n)
    primaries = [s for s, c in zip(styles, counts, strict=True) for _ in range(c)]
    rng.shuffle(primaries)
    capital = rng.lognormal(0.0, 0.6, size=n)
    capital = np.round(capital * PLATFORM_CAPITAL_USD / capital.sum(), -5)
    capital[int(np.argmax(capital))] += PLATFORM_CAPITAL_USD - capital.sum()  # the platform's capital exactly
    managers: list[Manager] = []
    strategies: list[Strategy] = []
    for k, (style, cap) in enumerate(zip(primaries, capital, strict=True), start=1):
        mid = f"PM-{k:02d}"
        managers.append(Manager(id=mid, name=f"{STYLE_LABEL[style]} pod {k:02d}"))
        extra = int(rng.integers(0, 3))
        chosen = [style, *rng.choice(SECONDARY[style], size=min(extra, len(SECONDARY[style])), replace=False)]
        shares = 0.1 + (1.0 - 0.1 * len(chosen)) * rng.dirichlet([4.0] + [1.5] * (len(chosen) - 1))  # 10% at least
        caps = [round(float(cap * s), -5) for s in shares]
        caps[0] += float(cap) - sum(caps)
        for st, c in zip(chosen, caps, strict=True):
            target = round(RETURN_TARGET[st] + float(rng.normal(0.0, 0.015)), 4)
            strategies.append(
                Strategy(
                    id=f"{mid}-{st}",
                    manager=mid,
                    name=f"{STYLE_LABEL[st]} {k:02d}",
                    style=st,
                    capital_usd=max(c, 1e6),
                    return_target=target,
                )
            )
    return managers, strategies


def _largest_remainder(weights: np.ndarray, total: int, least: int = 0) -> np.ndarray:
    """Integers proportional to `weights` summing to `total` (each at least `least` when possible)."""
    w = np.asarray(weights, dtype=np.float64)
    base = np.full(len(w), least if least * len(w) <= total else 0)
    share = w / w.sum() * (total - base.sum())
    out = base + np.floor(share).astype(np.int64)
    rest = total - out.sum()
    out[np.argsort(-(share - np.floor(share)), kind="stable")[:rest]] += 1
    return out


# -- positions ------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A position before sizing and side: its terms, the field its size goes into, its risk and notional (USD)
    per unit of size, and, once drawn, its side: the sign of its delta on its main factor."""

    strategy: str
    style: str
    terms: dict[str, Any]
    size_field: str
    unit_risk_usd: float
    unit_notional_usd: float
    lot: float
    main: str
    product: str | None
    risk_budget: float
    sign: float = 1.0
    venue: int = -1
    budget_cap: float = math.inf
    extra: dict[str, Any] = field(default_factory=dict)


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """One of the keys, drawn with probability proportional to its weight."""
    names = list(weights)
    cumulative = np.cumsum(list(weights.values()))
    return names[min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(names) - 1)]


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _months_ahead(months: int) -> date:
    y, m = divmod(SAMPLE_AS_OF.month - 1 + months, 12)
    return _third_friday(SAMPLE_AS_OF.year + y, m + 1)


def _days_ahead(days: int) -> date:
    return SAMPLE_AS_OF + timedelta(days=int(days))


def _draft_positions(
    rng: np.random.Generator, strategies: Sequence[Strategy], n: int, factors: dict[str, RiskFactor]
) -> list[_Draft]:
    """Instruments, terms and sides of `n` positions over the strategies (sizes come later).

    The side is the sign of the delta on the main factor: positive with probability 0.5, plus the
    platform's tilt on that factor (drawn once per factor, ±`TILT`: managers crowd into the same
    trades, so positions at a venue net less than random sides would), plus the style's bias.
    """
    capital = np.array([s.capital_usd for s in strategies])
    counts = _largest_remainder(capital**0.8, n, least=1)
    tilt = dict(zip(factors, rng.uniform(-TILT, TILT, size=len(factors)), strict=True))
    drafts: list[_Draft] = []
    for strategy, count in zip(strategies, counts, strict=True):
        weights = rng.lognormal(0.0, 1.2, size=int(count))
        budget = strategy.capital_usd * weights / weights.sum()
        for b in budget:
            d = TEMPLATES[_pick(rng, MIX[strategy.style])](rng, strategy, float(b), factors)
            main = factors[d.main]
            d.budget_cap = DEPTH_CAP * main.depth_usd * d.unit_risk_usd / d.unit_notional_usd
            up = 0.5 + tilt[d.main] + STYLE_BIAS.get((strategy.style, main.asset_class), 0.0)
            d.sign = 1.0 if rng.random() < up else -1.0
            drafts.append(d)
    return drafts


def _equity_index(rng: np.random.Generator) -> str:
    return _pick(rng, {k: v[2] ** 0.6 for k, v in EQUITY.items()})


def _currency(rng: np.random.Generator) -> str:
    return _pick(rng, CURRENCY_WEIGHT)


def _usd(ccy: str) -> float:
    return 1.0 if ccy == "USD" else FX[ccy][0]


def _lot(level: float) -> float:
    """A round lot of underlying units worth roughly 10^5 to 10^6 USD at `level`."""
    return 10.0 ** max(0, 5 - round(math.log10(level)))


def _draft(strategy: Strategy, b: float, **kw: Any) -> _Draft:
    return _Draft(strategy=strategy.id, style=strategy.style, risk_budget=b, **kw)


def _future(
    s: Strategy, b: float, f: dict[str, RiskFactor], factor: str, multiplier: float, expiry: date, product: str
) -> _Draft:
    under = f[factor]
    level = float(under.level or 1.0)
    unit = multiplier * level * _usd(under.quote_currency)
    terms = {
        "instrument": "listed_future",
        "currency": under.quote_currency,
        "underlying": factor,
        "multiplier": float(multiplier),
        "expiry": expiry,
    }
    return _draft(
        s,
        b,
        terms=terms,
        size_field="contracts",
        unit_risk_usd=unit * normal_daily_vol(under),
        unit_notional_usd=unit,
        lot=1.0,
        main=factor,
        product=product,
    )


def _eq_future(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor]) -> _Draft:
    name = _equity_index(rng)
    return _future(s, b, f, f"EQ.{name}", EQUITY[name][3], _months_ahead(int(rng.choice([1, 4]))), "equity")


def _cm_future(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor]) -> _Draft:
    name = _pick(rng, {k: v[1] ** 0.6 for k, v in COMMODITY.items()})
    return _future(s, b, f, f"CM.{name}", COMMODITY[name][2], _months_ahead(int(rng.integers(1, 7))), "commodity")


def _fx_future(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor]) -> _Draft:
    ccy = _pick(rng, {k: v[1] ** 0.6 for k, v in FX.items()})
    return _future(s, b, f, fx_factor(ccy), FX[ccy][2], _months_ahead(int(rng.choice([1, 4]))), "fx")


def _equity_option(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor], listed: bool) -> _Draft:
    name = _equity_index(rng)
    ccy, level, _, mult, vol = EQUITY[name]
    tick = 5.0 * 10.0 ** (math.floor(math.log10(level)) - 3)
    strike = max(round(level * math.exp(float(rng.normal(0.0, 0.08))) / tick) * tick, tick)
    expiry = _months_ahead(int(rng.integers(1, 13))) if listed else _days_ahead(rng.integers(30, 730))
    option = "call" if rng.random() < 0.5 else "put"
    q = DIVIDEND_YIELD.get(ccy, 0.03)
    t = ins.year_fraction(SAMPLE_AS_OF, expiry)
    delta = float(ins.black_scholes(level, strike, t, CURVES[ccy][0][2], q, vol, option == "call").delta[()])
    unit = level * _usd(ccy)
    risk = unit * normal_daily_vol(f[f"EQ.{name}"]) * max(abs(delta), 0.15)
    terms = {
        "currency": ccy,
        "underlying": f"EQ.{name}",
        "option": option,
        "strike": strike,
        "expiry": expiry,
        "dividend_yield": q,
    }
    if listed:
        terms |= {"instrument": "listed_option", "multiplier": float(mult)}
        return _draft(
            s,
            b,
            terms=terms,
            size_field="contracts",
            unit_risk_usd=risk * mult,
            unit_notional_usd=unit * mult,
            lot=1.0,
            main=f"EQ.{name}",
            product="equity",
        )
    terms["instrument"] = "uncleared_option"
    return _draft(
        s,
        b,
        terms=terms,
        size_field="quantity",
        unit_risk_usd=risk,
        unit_notional_usd=unit,
        lot=_lot(level),
        main=f"EQ.{name}",
        product=None,
    )


def _swap(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor], cleared: bool) -> _Draft:
    ccy = _currency(rng)
    original = float(
        rng.choice([1, 2, 3, 5, 7, 10, 12, 15, 20, 30], p=np.array([5, 12, 8, 18, 8, 20, 4, 6, 6, 13]) / 100)
    )
    years = max(original * (float(rng.uniform(0.3, 1.0)) if rng.random() < 0.5 else 1.0), 0.75)
    maturity = _days_ahead(round(years * 365.25))
    t = ins.year_fraction(SAMPLE_AS_OF, maturity)
    pillars = list(ins.PILLAR_YEARS.values())
    par = float(ins.curve_rate(pillars, CURVES[ccy][0], t))
    fixed = round(par + float(rng.normal(0.0, 0.004)), 5)
    freq = FIXED_PAYMENTS.get(ccy, 1)
    dv01 = abs(float(ins.swap(1.0, fixed, par, t, freq, True).delta[0]))
    lo, hi, w = ins.pillar_split(pillars, [t])
    main = f"IR.{ccy}.{list(ins.PILLAR_YEARS)[int(lo[0] if w[0] >= 0.5 else hi[0])]}"
    terms = {
        "instrument": "cleared_irs" if cleared else "uncleared_irs",
        "currency": ccy,
        "fixed_rate": fixed,
        "maturity": maturity,
        "payments_per_year": freq,
    }
    return _draft(
        s,
        b,
        terms=terms,
        size_field="notional",
        unit_risk_usd=dv01 * normal_daily_vol(f[main]) * _usd(ccy),
        unit_notional_usd=_usd(ccy),
        lot=1e6,
        main=main,
        product="rates" if cleared else None,
    )


def _swaption(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor]) -> _Draft:
    ccy = _currency(rng)
    tenor = str(rng.choice(["2Y", "5Y", "10Y", "30Y"], p=[0.2, 0.3, 0.35, 0.15]))
    main = f"IR.{ccy}.{tenor}"
    level = CURVES[ccy][0][list(ins.PILLAR_YEARS).index(tenor)]
    strike = round(level + float(rng.normal(0.0, 0.005)), 5)
    expiry = _days_ahead(rng.integers(60, 5 * 365))
    t = ins.year_fraction(SAMPLE_AS_OF, expiry)
    option = "call" if rng.random() < 0.5 else "put"
    years = ins.PILLAR_YEARS[tenor]
    g = ins.swaption(1.0, strike, level, t, years, RATE_VOL[ccy], option == "call")
    unit = max(abs(float(g.delta[0])), 0.12 * years) * normal_daily_vol(f[main]) * _usd(ccy)
    terms = {
        "instrument": "uncleared_option",
        "currency": ccy,
        "underlying": main,
        "option": option,
        "strike": strike,
        "expiry": expiry,
    }
    return _draft(
        s,
        b,
        terms=terms,
        size_field="quantity",
        unit_risk_usd=unit,
        unit_notional_usd=_usd(ccy),
        lot=1e6,
        main=main,
        product=None,
    )


def _cds(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor]) -> _Draft:
    name = _pick(rng, {k: v[2] ** 0.6 for k, v in CREDIT.items()})
    ccy, spread, _, coupon = CREDIT[name]
    main = f"CR.{name}.5Y"
    t = ins.year_fraction(SAMPLE_AS_OF, CDS_MATURITY)
    cs01 = abs(float(ins.cds(1.0, coupon, spread, t, 0.4, CURVES[ccy][0][3], True).delta[0]))
    terms = {"instrument": "cds_index", "currency": ccy, "underlying": main, "coupon": coupon, "maturity": CDS_MATURITY}
    return _draft(
        s,
        b,
        terms=terms,
        size_field="notional",
        unit_risk_usd=cs01 * normal_daily_vol(f[main]) * _usd(ccy),
        unit_notional_usd=_usd(ccy),
        lot=1e6,
        main=main,
        product="credit",
    )


def _fx_forward(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor]) -> _Draft:
    foreign = _pick(rng, {k: v[1] ** 0.5 for k, v in FX.items()})
    other = "USD"
    if rng.random() < 0.2:
        other = _pick(rng, {k: v[1] ** 0.5 for k, v in FX.items() if k != foreign})
    maturity = _days_ahead(rng.integers(7, 366))
    t = ins.year_fraction(SAMPLE_AS_OF, maturity)
    carry = CURVES[other][0][1] - CURVES[foreign][0][1]
    rate = _usd(foreign) / _usd(other) * math.exp(carry * t) * (1.0 + float(rng.normal(0.0, 0.01)))
    main = fx_factor(foreign)
    terms = {"instrument": "fx_forward", "currency": other, "maturity": maturity}
    return _draft(
        s,
        b,
        terms=terms,
        size_field="foreign_amount",
        unit_risk_usd=_usd(foreign) * normal_daily_vol(f[main]),
        unit_notional_usd=_usd(foreign),
        lot=1e5,
        main=main,
        product=None,
        extra={"foreign": foreign, "other": other, "rate": rate},
    )


def _eq_trs(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor]) -> _Draft:
    name = _equity_index(rng)
    ccy = EQUITY[name][0]
    terms = {
        "instrument": "equity_trs",
        "currency": ccy,
        "underlying": f"EQ.{name}",
        "maturity": _months_ahead(int(rng.integers(3, 13))),
    }
    return _draft(
        s,
        b,
        terms=terms,
        size_field="notional",
        unit_risk_usd=_usd(ccy) * normal_daily_vol(f[f"EQ.{name}"]),
        unit_notional_usd=_usd(ccy),
        lot=1e5,
        main=f"EQ.{name}",
        product=None,
    )


def _fx_option(rng: np.random.Generator, s: Strategy, b: float, f: dict[str, RiskFactor]) -> _Draft:
    ccy = _pick(rng, {k: v[1] ** 0.5 for k, v in FX.items()})
    level, _, _, vol = FX[ccy]
    main = fx_factor(ccy)
    strike = float(f"{level * math.exp(float(rng.normal(0.0, 0.03))):.5g}")
    terms = {
        "instrument": "uncleared_option",
        "currency": "USD",
        "underlying": main,
        "strike": strike,
        "option": "call" if rng.random() < 0.5 else "put",
        "expiry": _days_ahead(rng.integers(20, 366)),
        "volatility": round(vol * float(rng.uniform(0.9, 1.2)), 4),
    }
    return _draft(
        s,
        b,
        terms=terms,
        size_field="quantity",
        unit_risk_usd=0.5 * level * normal_daily_vol(f[main]),
        unit_notional_usd=level,
        lot=_lot(level),
        main=main,
        product=None,
    )


TEMPLATES: dict[str, Any] = {
    "eq_future": _eq_future,
    "cm_future": _cm_future,
    "fx_future": _fx_future,
    "eq_listed_option": lambda rng, s, b, f: _equity_option(rng, s, b, f, True),
    "eq_otc_option": lambda rng, s, b, f: _equity_option(rng, s, b, f, False),
    "cleared_irs": lambda rng, s, b, f: _swap(rng, s, b, f, True),
    "uncleared_irs": lambda rng, s, b, f: _swap(rng, s, b, f, False),
    "swaption": _swaption,
    "cds": _cds,
    "fx_forward": _fx_forward,
    "eq_trs": _eq_trs,
    "fx_option": _fx_option,
}


def _assign_venues(rng: np.random.Generator, drafts: list[_Draft], venues: Sequence[_Venue]) -> None:
    """Cleared drafts to a CCP clearing their asset class, uncleared ones to a dealer; then every empty venue
    takes a position from the busiest venue that can give it one."""
    ccps = [i for i, v in enumerate(venues) if v.is_ccp]
    dealers = [i for i, v in enumerate(venues) if not v.is_ccp]
    dealer_w = np.array([venues[i].weight for i in dealers])
    for d in drafts:
        if d.product is None:
            d.venue = dealers[int(rng.choice(len(dealers), p=dealer_w / dealer_w.sum()))]
            continue
        eligible = [i for i in ccps if d.product in venues[i].products] or ccps
        w = np.array([venues[i].weight * (4.0 if venues[i].currency == d.terms["currency"] else 1.0) for i in eligible])
        d.venue = eligible[int(rng.choice(len(eligible), p=w / w.sum()))]
    held: list[list[_Draft]] = [[] for _ in venues]
    for d in drafts:
        held[d.venue].append(d)
    for i, v in enumerate(venues):
        if held[i]:
            continue

        def fits(d: _Draft, v: _Venue = v) -> bool:
            return d.product is None if not v.is_ccp else d.product in v.products

        donors = [j for j, u in enumerate(venues) if u.is_ccp == v.is_ccp and sum(map(fits, held[j])) > 1]
        if not donors:
            continue
        donor = max(donors, key=lambda j: len(held[j]))
        moved = next(d for d in held[donor] if fits(d))
        held[donor].remove(moved)
        held[i].append(moved)
        moved.venue = i


def _calibration(drafts: Sequence[_Draft], venues: Sequence[_Venue], history: FactorHistory) -> float:
    """The scale k that brings the margin proxy Σ_venues 2.33 σ_v √MPOR_v to `MARGIN_TARGET` of capital, where
    σ_v is the daily vol of the venue's signed risk budgets min(k·b, cap) on their main factors under the
    history's correlation (the proxy grows with k: bisection)."""
    index = history.factor_index()
    corr = np.corrcoef(history.returns.T)
    venue = np.array([d.venue for d in drafts])
    factor = np.array([index[d.main] for d in drafts])
    sign = np.array([d.sign for d in drafts])
    budget = np.array([d.risk_budget for d in drafts])
    cap = np.array([d.budget_cap for d in drafts])
    mpor = np.sqrt(np.array([v.mpor for v in venues], dtype=np.float64))
    target = MARGIN_TARGET * PLATFORM_CAPITAL_USD

    def proxy(k: float) -> float:
        exposure = np.zeros((len(venues), len(index)))
        np.add.at(exposure, (venue, factor), sign * np.minimum(k * budget, cap))
        sigma = np.sqrt(np.maximum(np.einsum("vf,fg,vg->v", exposure, corr, exposure), 0.0))
        return float(np.sum(2.33 * sigma * mpor))

    lo, hi = 0.0, 1.0
    while proxy(hi) < target and hi < 1e6:
        lo, hi = hi, hi * 4.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if proxy(mid) < target else (lo, mid)
    return hi


def _position(d: _Draft, scale: float, i: int, venues: Sequence[_Venue]) -> Position:
    """The position of a draft: its size at `scale`, rounded to lots, and its side written into its terms."""
    size = max(round(min(d.risk_budget * scale, d.budget_cap) / d.unit_risk_usd / d.lot), 1) * d.lot
    terms = dict(d.terms)
    up = d.sign > 0
    kind = terms["instrument"]
    if kind in ("listed_option", "uncleared_option"):  # the sign of the delta: a long put's is negative
        size *= d.sign * (1.0 if terms["option"] == "call" else -1.0)
    elif kind == "listed_future":
        size *= d.sign
    elif kind in ("cleared_irs", "uncleared_irs"):
        terms["direction"] = "pay_fixed" if up else "receive_fixed"
    elif kind == "cds_index":
        terms["protection"] = "buy" if up else "sell"
    elif kind == "equity_trs":
        terms["direction"] = "receive_equity" if up else "pay_equity"
    if kind == "fx_forward":
        foreign, other, rate = d.extra["foreign"], d.extra["other"], d.extra["rate"]
        legs = ((foreign, size), (other, round(size * rate, 2)))
        (terms["buy_currency"], terms["buy_amount"]), (terms["sell_currency"], terms["sell_amount"]) = (
            legs if up else legs[::-1]
        )
    else:
        terms[d.size_field] = size
    data = {"id": f"P{i + 1:05d}", "strategy": d.strategy, "venue": venues[d.venue].model.id, **terms}
    return PositionDocument.model_validate(data).root


def _resources(margin: float) -> LiquidityResources:
    cash = CASH_SHARE * margin
    return LiquidityResources(
        cash_usd={c: round(cash * w, -5) for c, w in RESOURCE_CURRENCY_SHARE.items()},
        operational_buffer_usd=round(BUFFER_SHARE * cash, -5),
        facility=CreditFacility(
            limit_usd=round(FACILITY_SHARE * margin, -6),
            notice_hours=24,
            max_draw_per_day_usd=round(FACILITY_SHARE * margin / 4, -6),
        ),
    )
