"""The XVA engine's EPE and CVA of a 10-swap netting set against the Open Source Risk Engine (ORE), and both timed.

    uv venv /tmp/orevenv --python 3.11
    uv pip install --python /tmp/orevenv/bin/python open-source-risk-engine==1.8.17.0
    uv run python bench/xva_reference_ore.py --ore-python /tmp/orevenv/bin/python --write-fixture
    uv run python bench/xva_reference_ore.py --ore-python /tmp/orevenv/bin/python --compare --paths 10000

`--write-fixture` runs ORE on 20,000 paths (`--paths` to change; about 6 minutes) and writes
tests/engines/xva/fixtures/ore_swap_portfolio.json: the market and book as our models' fields, the exposure grid,
ORE's trade NPVs today, its discounted EPE per date with its own Monte Carlo standard error and its CVA with its
standard error (both from ORE's netted cube), the path count and the ORE version.
tests/engines/xva/test_ore_reference.py rebuilds the portfolio from it and checks our engine against ORE.
`--compare` runs ORE and our engine on the same number of paths and the same dates, one after the other in one
run, and prints both times, both CVAs and the largest EPE difference in standard errors (the benchmark's "same
10-swap, one-counterparty portfolio priced by this engine and by ORE at the same paths and dates"); `compare()`
returns the same for bench/xva.py. `--ore-curve-tenors 3M,6M,1Y,2Y,3Y,5Y,7Y,10Y,15Y,20Y` times ORE with the
usual coarse simulated curves instead (about 2.5 times faster, no longer like for like, see below).

The portfolio, written to ORE's XML by our code from our models' fields (USD only):

- Market on 2025-06-30: a discount curve of continuously compounded zero rates at 11 nodes (91-day multiples
  from 3M to 30Y, the sample market's USD levels), also the projection curve (single curve). ORE gets the same
  curve as discount factors on the node dates, log-linear in the discount factor on ACT/365F, as ours.
- Hull–White one factor with constant mean reversion 3% and σ 108 bp: ORE's LGM in its Hull–White
  parametrisation (constant reversion and volatility, no calibration), exact discretisation.
- 10 fixed/float swaps (5 payer, 5 receiver, 10m–100m, 2–15 years left; seasoned, spot and forward starting)
  in one uncollateralised netting set. Every date is the 16th of Mar/Jun/Sep/Dec: fixed legs semi-annual
  30/360 (bond basis), floating legs quarterly ACT/360 on a 3M index with no fixing lag and no calendar (ORE:
  an index convention of our own name with 0 settlement days, `NullCalendar`, unadjusted; its built-in
  USD-LIBOR-3M has a fixing lag, calendars and a SOFR fallback), the index period equal to the accrual period.
  The seasoned swaps' running coupon fixed on 2025-06-16 (our `current_fixing`, ORE's fixings file). Today's
  trade values agree with ORE's NPVs to 1e-6 (checked by the test).
- The exposure grid is the 60 coupon dates 2025-09-16 ... 2040-06-16 (given to both engines as day counts from
  the valuation date), so every reset and payment falls on a simulation date: ORE fixes a coupon at the first
  simulation date on or after its fixing date and we at the last one on or before, here the same date; a flow
  paid on a simulation date is out of the value on that date in both.
- ORE values trades on simulated curves sampled at pillars and interpolated (`SIM_CURVE_STEP_DAYS`): 91-day
  pillars, because ORE puts the discount factor simulated for t + tenor at the pillar time of today + tenor,
  which misdates month tenors by a day or two.
- Counterparty CPTY_A: a flat 5Y CDS spread of 120 bp, recovery 40%, bootstrapped by our engine to one flat
  hazard rate that ORE gets as hazard-rate quotes. CVA (unilateral) = LGD Σ EPE(t_i) [S(t_{i-1}) − S(t_i)] in
  both engines, EPE the discounted expected positive exposure E[max(V(t), 0) / N(t)]: ORE's numeraire is the
  LGM one and ours the bank account, which gives the same expectation (a price) but not the same path-wise
  values, so only discounted profiles are compared (ORE's BaselEE, EPE/P(0,t), is a forward-measure EE and
  differs from our undiscounted bank-account-measure EE).

ORE runs in its own virtual environment (~330 MB, no dependency of the project) with a Mersenne-Twister
sequence, single-threaded, double-precision cubes and log mask 15; its time is `OREApp.run()` (market, model,
simulation and valuation, exposure and CVA), the wall time with its Python start-up printed beside it. Our
engine runs on numba's threads (all cores); its time is `run_exposures` plus the CVA, the second of two runs (the
first compiles and caches the numba kernels).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from engines.xva.adjustments import cva, first_to_default  # noqa: E402
from engines.xva.exposure import ExposureChunk, run_exposures  # noqa: E402
from engines.xva.market import (  # noqa: E402
    CreditCurve,
    CurrencyMarket,
    DiscountCurve,
    HullWhiteSpec,
    Market,
    add_months,
    bootstrap_hazard,
)
from engines.xva.trades import CONVENTIONS, Book, Counterparty, InterestRateSwap, NettingSet, schedule  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "engines" / "xva" / "fixtures" / "ore_swap_portfolio.json"
ORE_VERSION = "1.8.17.0"
AS_OF = date(2025, 6, 30)
CURRENT_FIXING = 0.0433
NODE_DAYS = tuple(91 * k for k in (1, 2, 4, 8, 12, 20, 28, 40, 60, 80, 120))
"""Curve nodes at 91-day multiples (3M to 30Y): each is a pillar of ORE's simulated curve today (see below)."""
NODE_ZEROS = (0.0430, 0.0425, 0.0410, 0.0392, 0.0385, 0.0383, 0.0387, 0.0395, 0.0405, 0.0408, 0.0400)
MEAN_REVERSION = 0.03
SIGMA = 0.0108
CDS_SPREAD = 0.012
RECOVERY = 0.4
COUNTERPARTY = "CPTY_A"
NETTING_SET = "NS_CPTY_A"
INDEX_STEM = "USD-XVAIBOR"
"""Our own index name: ORE's built-in USD-LIBOR-3M carries fixing lags, calendars and a SOFR fallback."""
SIM_CURVE_STEP_DAYS = 91
"""ORE's simulated curves: pillars every 91 days. ORE places the discount factor it simulates for date t + tenor at the
pillar time of today + tenor, so month tenors (92 days from today, 90 or 91 from another date) misdate pillars by up
to two days, a systematic error of ~1e-4 per flow (with 3M..15Y pillars: 10 standard errors on one date at 10,000
paths); day tenors are the same length from every date. Today's curve nodes are pillars, so today's values are
exact, and later the log-linear interpolation between pillars moves the portfolio by under 1,000 (under 0.3 of a
standard error)."""
DAY_COUNTS = {"30/360": "30/360 (Bond Basis)", "ACT/360": "A360", "ACT/365F": "A365F"}
SWAPS = (  # id, bank pays fixed, notional, start, maturity, fixed rate
    ("S01", True, 50e6, date(2024, 6, 16), date(2027, 6, 16), 0.0410),
    ("S02", False, 25e6, date(2023, 9, 16), date(2028, 9, 16), 0.0360),
    ("S03", True, 100e6, date(2025, 9, 16), date(2030, 9, 16), 0.0385),
    ("S04", False, 80e6, date(2025, 6, 16), date(2032, 6, 16), 0.0395),
    ("S05", True, 10e6, date(2022, 12, 16), date(2034, 12, 16), 0.0300),
    ("S06", False, 60e6, date(2026, 3, 16), date(2036, 3, 16), 0.0405),
    ("S07", True, 40e6, date(2025, 6, 16), date(2038, 6, 16), 0.0390),
    ("S08", False, 30e6, date(2020, 6, 16), date(2040, 6, 16), 0.0350),
    ("S09", True, 70e6, date(2025, 12, 16), date(2035, 12, 16), 0.0398),
    ("S10", False, 15e6, date(2024, 3, 16), date(2029, 3, 16), 0.0420),
)


# ---------------------------------------------------------------------------------------------
# The portfolio as our models
# ---------------------------------------------------------------------------------------------


def exposure_dates() -> list[date]:
    """The 16th of every quarter month from 2025-09-16 to 2040-06-16: all resets and payments of the book."""
    out = []
    d = date(2025, 9, 16)
    while d <= date(2040, 6, 16):
        out.append(d)
        d = add_months(d, 3)
    return out


def grid_spec(dates: list[date], as_of: date = AS_OF) -> str:
    """Our grid spec listing the dates as day counts from the valuation date ("78D,169D,...")."""
    return ",".join(f"{(d - as_of).days}D" for d in dates)


def reference_market() -> Market:
    """USD only: the node curve (tenors whole days over 365), constant Hull–White, a flat own curve (unused)."""
    tenors = [n / 365.0 for n in NODE_DAYS]
    return Market(
        as_of=AS_OF,
        currencies={
            "USD": CurrencyMarket(
                discount=DiscountCurve(tenors=tenors, zero_rates=list(NODE_ZEROS)),
                hull_white=HullWhiteSpec(mean_reversion=MEAN_REVERSION, volatilities=[SIGMA]),
            )
        },
        own_credit=CreditCurve(tenors=[5.0], spreads=[0.006], recovery=RECOVERY),
    )


def reference_book() -> Book:
    """The 10 swaps in one uncollateralised netting set of one counterparty (flat 5Y CDS curve, recovery 40%)."""
    trades = [
        InterestRateSwap(
            trade_id=tid,
            netting_set_id=NETTING_SET,
            currency="USD",
            notional=notional,
            start_date=start,
            maturity_date=end,
            fixed_rate=rate,
            pay_fixed=pay,
            current_fixing=CURRENT_FIXING if start < AS_OF else None,
        )
        for tid, pay, notional, start, end, rate in SWAPS
    ]
    party = Counterparty(
        counterparty_id=COUNTERPARTY,
        credit_curve=CreditCurve(tenors=[5.0], spreads=[CDS_SPREAD], recovery=RECOVERY),
        intensity_volatility=0.0,
    )
    return Book(
        counterparties=[party],
        netting_sets=[NettingSet(netting_set_id=NETTING_SET, counterparty_id=COUNTERPARTY)],
        trades=trades,
    )


def counterparty_hazard(book: Book, market: Market) -> float:
    """The counterparty's flat hazard rate, bootstrapped by our engine from its one CDS quote."""
    curve = book.counterparty(COUNTERPARTY).credit_curve
    hazard = bootstrap_hazard(curve, market.as_of, market.currencies["USD"].discount)
    if len(hazard.hazards) != 1:
        raise ValueError("the reference counterparty must have one CDS quote (a flat hazard rate)")
    return float(hazard.hazards[0])


# ---------------------------------------------------------------------------------------------
# ORE's inputs, written from our models
# ---------------------------------------------------------------------------------------------


def _d(d: date) -> str:
    return d.isoformat()


def _conv(trade: InterestRateSwap, attr: str) -> str:
    given = getattr(trade, attr)
    return given if given is not None else getattr(CONVENTIONS[trade.currency], attr)


def _leg_tenor(freq: str) -> str:
    return "12M" if freq == "1Y" else freq


def _schedule_xml(start: date, end: date, tenor: str) -> str:
    return f"""
        <ScheduleData><Rules>
          <StartDate>{_d(start)}</StartDate><EndDate>{_d(end)}</EndDate><Tenor>{tenor}</Tenor>
          <Calendar>NullCalendar</Calendar><Convention>Unadjusted</Convention>
          <TermConvention>Unadjusted</TermConvention><Rule>Backward</Rule><EndOfMonth>false</EndOfMonth>
        </Rules></ScheduleData>"""


def index_name(trade: InterestRateSwap) -> str:
    return f"{INDEX_STEM}-{_leg_tenor(_conv(trade, 'float_frequency'))}"


def swap_xml(trade: InterestRateSwap, counterparty: str) -> str:
    """One ORE Swap trade: the fixed and floating legs with our schedules, day counts and fixing rule."""
    fixed_tenor = _leg_tenor(_conv(trade, "fixed_frequency"))
    float_tenor = _leg_tenor(_conv(trade, "float_frequency"))
    fixed = f"""
      <LegData>
        <LegType>Fixed</LegType><Payer>{str(trade.pay_fixed).lower()}</Payer><Currency>{trade.currency}</Currency>
        <Notionals><Notional>{trade.notional!r}</Notional></Notionals>
        <DayCounter>{DAY_COUNTS[_conv(trade, "fixed_day_count")]}</DayCounter>
        <PaymentConvention>Unadjusted</PaymentConvention>
        <FixedLegData><Rates><Rate>{trade.fixed_rate!r}</Rate></Rates></FixedLegData>
        {_schedule_xml(trade.start_date, trade.maturity_date, fixed_tenor)}
      </LegData>"""
    floating = f"""
      <LegData>
        <LegType>Floating</LegType><Payer>{str(not trade.pay_fixed).lower()}</Payer>
        <Currency>{trade.currency}</Currency>
        <Notionals><Notional>{trade.notional!r}</Notional></Notionals>
        <DayCounter>{DAY_COUNTS[_conv(trade, "float_day_count")]}</DayCounter>
        <PaymentConvention>Unadjusted</PaymentConvention>
        <FloatingLegData>
          <Index>{index_name(trade)}</Index><Spreads><Spread>{trade.float_spread!r}</Spread></Spreads>
          <IsInArrears>false</IsInArrears><FixingDays>0</FixingDays>
        </FloatingLegData>
        {_schedule_xml(trade.start_date, trade.maturity_date, float_tenor)}
      </LegData>"""
    return f"""
  <Trade id="{escape(trade.trade_id)}">
    <TradeType>Swap</TradeType>
    <Envelope><CounterParty>{counterparty}</CounterParty><NettingSetId>{trade.netting_set_id}</NettingSetId>
      <AdditionalFields/></Envelope>
    <SwapData>{fixed}{floating}
    </SwapData>
  </Trade>"""


def _fixings(book: Book, as_of: date) -> list[str]:
    """Fixings file lines: each seasoned swap's running coupon, fixed at its period start (no fixing lag)."""
    lines = set()
    for t in book.trades:
        if not isinstance(t, InterestRateSwap) or t.start_date >= as_of:
            continue
        starts, ends = schedule(t.start_date, t.maturity_date, _conv(t, "float_frequency"))
        running = [s for s, e in zip(starts, ends, strict=True) if s <= as_of < e]
        if running and t.current_fixing is not None:
            lines.add(f"{_d(running[0])} {index_name(t)} {t.current_fixing!r}")
    return sorted(lines)


def ore_inputs(
    book: Book, market: Market, dates: list[date], paths: int, seed: int, net_cube: bool,
    curve_tenors: list[str] | None = None,
) -> dict[str, str]:  # fmt: skip
    """Every ORE input file (name -> text) for the book, market and exposure dates; `curve_tenors` replaces the
    simulated curves' 91-day pillars (e.g. ORE's usual 3M..20Y, to time a lighter configuration)."""
    as_of = market.as_of
    usd = market.currencies["USD"]
    curve = usd.discount
    hw = usd.hull_white
    if hw.calibrate != "none" or len(hw.volatilities) != 1:
        raise ValueError("the ORE reference takes a constant, uncalibrated Hull–White model")
    if set(market.currencies) != {"USD"} or any(
        not isinstance(t, InterestRateSwap) or t.currency != "USD" for t in book.trades
    ):
        raise ValueError("the ORE reference writes a USD-only market and USD interest rate swaps")
    node_dates = [date.fromordinal(as_of.toordinal() + round(t * 365)) for t in curve.tenors]
    hazard = counterparty_hazard(book, market)
    recovery = book.counterparty(COUNTERPARTY).credit_curve.recovery
    asof = as_of.strftime("%Y%m%d")
    indices = sorted({index_name(t) for t in book.trades if isinstance(t, InterestRateSwap)})
    quotes = [f"DISCOUNT/RATE/USD/USD-XVA/{_d(d)}" for d in node_dates]
    hazard_terms = ("1Y", "5Y", "10Y", "20Y", "30Y", "50Y")
    hazard_quotes = [f"HAZARD_RATE/RATE/{COUNTERPARTY}/SR/USD/{k}" for k in hazard_terms]
    market_lines = [
        f"{asof} {q} {float(curve.discount((d - as_of).days / 365.0))!r}"
        for q, d in zip(quotes, node_dates, strict=True)
    ]
    market_lines += [f"{asof} {q} {hazard!r}" for q in hazard_quotes]
    market_lines.append(f"{asof} RECOVERY_RATE/RATE/{COUNTERPARTY}/SR/USD {recovery!r}")
    tenors = curve_tenors or [f"{SIM_CURVE_STEP_DAYS * k}D" for k in range(1, 65)]
    grid = grid_spec(dates, as_of)
    index_conventions = "".join(
        f"""
  <IborIndex><Id>{name}</Id><FixingCalendar>NullCalendar</FixingCalendar><DayCounter>A360</DayCounter>
    <SettlementDays>0</SettlementDays><BusinessDayConvention>Unadjusted</BusinessDayConvention>
    <EndOfMonth>false</EndOfMonth></IborIndex>"""
        for name in indices
    )
    # ORE's LGM builder wants a swaption surface with swap indices even without calibration (it takes its curve from
    # the swap index's discounting): a flat 1Y x 1Y surface and swap indices on the same curve, used for nothing else
    swap_index = f"{INDEX_STEM}-3M"
    conventions = f"""<?xml version="1.0"?>
<Conventions>{index_conventions}
  <Swap><Id>USD-XVA-SWAP</Id><FixedCalendar>NullCalendar</FixedCalendar><FixedFrequency>Semiannual</FixedFrequency>
    <FixedConvention>Unadjusted</FixedConvention><FixedDayCounter>30/360 (Bond Basis)</FixedDayCounter>
    <Index>{swap_index}</Index></Swap>
  <SwapIndex><Id>USD-CMS-1Y</Id><Conventions>USD-XVA-SWAP</Conventions></SwapIndex>
  <SwapIndex><Id>USD-CMS-30Y</Id><Conventions>USD-XVA-SWAP</Conventions></SwapIndex>
  <OvernightIndex><Id>USD-XVAON</Id><FixingCalendar>NullCalendar</FixingCalendar><DayCounter>A360</DayCounter>
    <SettlementDays>0</SettlementDays></OvernightIndex>
  <CDS><Id>CDS-XVA</Id><SettlementDays>0</SettlementDays><Calendar>NullCalendar</Calendar>
    <Frequency>Quarterly</Frequency><PaymentConvention>Unadjusted</PaymentConvention><Rule>Backward</Rule>
    <DayCounter>A360</DayCounter><SettlesAccrual>true</SettlesAccrual><PaysAtDefaultTime>true</PaysAtDefaultTime>
  </CDS>
</Conventions>
"""
    curveconfig = f"""<?xml version="1.0"?>
<CurveConfiguration>
  <YieldCurves>
    <YieldCurve>
      <CurveId>USD-XVA</CurveId><CurveDescription>node curve of the XVA reference</CurveDescription>
      <Currency>USD</Currency><DiscountCurve/>
      <Segments><Direct><Type>Discount</Type><Quotes>
        {"".join(f"<Quote>{q}</Quote>" for q in quotes)}
      </Quotes><Conventions/></Direct></Segments>
      <InterpolationVariable>Discount</InterpolationVariable><InterpolationMethod>LogLinear</InterpolationMethod>
      <YieldCurveDayCounter>A365</YieldCurveDayCounter><Extrapolation>true</Extrapolation>
    </YieldCurve>
  </YieldCurves>
  <SwaptionVolatilities>
    <SwaptionVolatility>
      <CurveId>USD_SW_N</CurveId><CurveDescription>flat, only to attach the swap indices to the LGM</CurveDescription>
      <Dimension>ATM</Dimension><VolatilityType>Normal</VolatilityType><Extrapolation>Flat</Extrapolation>
      <DayCounter>A365</DayCounter><Calendar>NullCalendar</Calendar><BusinessDayConvention>Unadjusted</BusinessDayConvention>
      <OptionTenors>1Y</OptionTenors><SwapTenors>1Y</SwapTenors>
      <ShortSwapIndexBase>USD-CMS-1Y</ShortSwapIndexBase><SwapIndexBase>USD-CMS-30Y</SwapIndexBase>
    </SwaptionVolatility>
  </SwaptionVolatilities>
  <DefaultCurves>
    <DefaultCurve>
      <CurveId>{COUNTERPARTY}_HR</CurveId><CurveDescription>flat hazard rate</CurveDescription><Currency>USD</Currency>
      <Type>HazardRate</Type><DiscountCurve/><DayCounter>A365</DayCounter>
      <RecoveryRate>RECOVERY_RATE/RATE/{COUNTERPARTY}/SR/USD</RecoveryRate>
      <Quotes>{"".join(f"<Quote>{q}</Quote>" for q in hazard_quotes)}</Quotes>
      <Conventions>CDS-XVA</Conventions>
    </DefaultCurve>
  </DefaultCurves>
</CurveConfiguration>
"""
    market_lines.append(f"{asof} SWAPTION/RATE_NVOL/USD/1Y/1Y/ATM 0.0100")
    todaysmarket = f"""<?xml version="1.0"?>
<TodaysMarket>
  <Configuration id="default"/>
  <DiscountingCurves id="default"><DiscountingCurve currency="USD">Yield/USD/USD-XVA</DiscountingCurve>
  </DiscountingCurves>
  <IndexForwardingCurves id="default">
    {"".join(f'<Index name="{n}">Yield/USD/USD-XVA</Index>' for n in indices)}
    <Index name="USD-XVAON">Yield/USD/USD-XVA</Index>
  </IndexForwardingCurves>
  <SwapIndexCurves id="default">
    <SwapIndex name="USD-CMS-1Y"><Discounting>USD-XVAON</Discounting></SwapIndex>
    <SwapIndex name="USD-CMS-30Y"><Discounting>USD-XVAON</Discounting></SwapIndex>
  </SwapIndexCurves>
  <SwaptionVolatilities id="default">
    <SwaptionVolatility key="USD">SwaptionVolatility/USD/USD_SW_N</SwaptionVolatility>
  </SwaptionVolatilities>
  <DefaultCurves id="default"><DefaultCurve name="{COUNTERPARTY}">Default/USD/{COUNTERPARTY}_HR</DefaultCurve>
  </DefaultCurves>
</TodaysMarket>
"""
    simulation = f"""<?xml version="1.0"?>
<Simulation>
  <Parameters>
    <Discretization>Exact</Discretization>
    <Grid>{grid}</Grid>
    <Calendar>NullCalendar</Calendar>
    <DayCounter>A365F</DayCounter>
    <Sequence>MersenneTwister</Sequence>
    <Scenario>Simple</Scenario>
    <Seed>{seed}</Seed>
    <Samples>{paths}</Samples>
  </Parameters>
  <CrossAssetModel>
    <DomesticCcy>USD</DomesticCcy>
    <Currencies><Currency>USD</Currency></Currencies>
    <BootstrapTolerance>0.0001</BootstrapTolerance>
    <Measure>LGM</Measure>
    <Discretization>Exact</Discretization>
    <InterestRateModels>
      <LGM key="USD">
        <CalibrationType>None</CalibrationType>
        <Volatility>
          <Calibrate>N</Calibrate><VolatilityType>HullWhite</VolatilityType><ParamType>Constant</ParamType>
          <TimeGrid/><InitialValue>{hw.volatilities[0]!r}</InitialValue>
        </Volatility>
        <Reversion>
          <Calibrate>N</Calibrate><ReversionType>HullWhite</ReversionType><ParamType>Constant</ParamType>
          <TimeGrid/><InitialValue>{hw.mean_reversion!r}</InitialValue>
        </Reversion>
        <CalibrationSwaptions><Expiries>1Y</Expiries><Terms>1Y</Terms><Strikes/></CalibrationSwaptions>
        <ParameterTransformation><ShiftHorizon>0.0</ShiftHorizon><Scaling>1.0</Scaling></ParameterTransformation>
      </LGM>
    </InterestRateModels>
    <InstantaneousCorrelations/>
  </CrossAssetModel>
  <Market>
    <BaseCurrency>USD</BaseCurrency>
    <Currencies><Currency>USD</Currency></Currencies>
    <YieldCurves><Configuration>
      <Tenors>{",".join(tenors)}</Tenors>
      <Interpolation>LogLinear</Interpolation><Extrapolation>FlatFwd</Extrapolation>
    </Configuration></YieldCurves>
    <Indices>{"".join(f"<Index>{n}</Index>" for n in indices)}</Indices>
    <DefaultCurves><Names/><Tenors>1Y,5Y,10Y</Tenors></DefaultCurves>
    <AggregationScenarioDataCurrencies><Currency>USD</Currency></AggregationScenarioDataCurrencies>
    <AggregationScenarioDataIndices>{"".join(f"<Index>{n}</Index>" for n in indices)}</AggregationScenarioDataIndices>
  </Market>
</Simulation>
"""
    pricingengine = """<?xml version="1.0"?>
<PricingEngines>
  <Product type="Swap"><Model>DiscountedCashflows</Model><ModelParameters/>
    <Engine>DiscountingSwapEngine</Engine><EngineParameters/></Product>
</PricingEngines>
"""
    netting = f"""<?xml version="1.0"?>
<NettingSetDefinitions>
  <NettingSet><NettingSetId>{NETTING_SET}</NettingSetId><ActiveCSAFlag>false</ActiveCSAFlag></NettingSet>
</NettingSetDefinitions>
"""
    portfolio = (
        '<?xml version="1.0"?>\n<Portfolio>'
        + "".join(swap_xml(t, COUNTERPARTY) for t in book.trades if isinstance(t, InterestRateSwap))
        + "\n</Portfolio>\n"
    )
    net_cube_param = '<Parameter name="netCubeOutputFile">netcube.csv</Parameter>' if net_cube else ""
    ore = f"""<?xml version="1.0"?>
<ORE>
  <Setup>
    <Parameter name="asofDate">{_d(as_of)}</Parameter>
    <Parameter name="inputPath">Input</Parameter>
    <Parameter name="outputPath">Output</Parameter>
    <Parameter name="logFile">log.txt</Parameter>
    <Parameter name="logMask">15</Parameter>
    <Parameter name="marketDataFile">market.txt</Parameter>
    <Parameter name="fixingDataFile">fixings.txt</Parameter>
    <Parameter name="implyTodaysFixings">N</Parameter>
    <Parameter name="curveConfigFile">curveconfig.xml</Parameter>
    <Parameter name="conventionsFile">conventions.xml</Parameter>
    <Parameter name="marketConfigFile">todaysmarket.xml</Parameter>
    <Parameter name="pricingEnginesFile">pricingengine.xml</Parameter>
    <Parameter name="portfolioFile">portfolio.xml</Parameter>
    <Parameter name="observationModel">None</Parameter>
    <Parameter name="continueOnError">false</Parameter>
  </Setup>
  <Markets>
    <Parameter name="lgmcalibration">default</Parameter>
    <Parameter name="fxcalibration">default</Parameter>
    <Parameter name="pricing">default</Parameter>
    <Parameter name="simulation">default</Parameter>
  </Markets>
  <Analytics>
    <Analytic type="npv">
      <Parameter name="active">Y</Parameter>
      <Parameter name="baseCurrency">USD</Parameter>
      <Parameter name="outputFileName">npv.csv</Parameter>
    </Analytic>
    <Analytic type="simulation">
      <Parameter name="active">Y</Parameter>
      <Parameter name="simulationConfigFile">simulation.xml</Parameter>
      <Parameter name="pricingEnginesFile">pricingengine.xml</Parameter>
      <Parameter name="baseCurrency">USD</Parameter>
    </Analytic>
    <Analytic type="xva">
      <Parameter name="active">Y</Parameter>
      <Parameter name="csaFile">netting.xml</Parameter>
      <Parameter name="baseCurrency">USD</Parameter>
      <Parameter name="exposureProfiles">Y</Parameter>
      <Parameter name="exposureProfilesByTrade">N</Parameter>
      <Parameter name="quantile">0.95</Parameter>
      <Parameter name="calculationType">Symmetric</Parameter>
      <Parameter name="allocationMethod">None</Parameter>
      <Parameter name="marginalAllocationLimit">1.0</Parameter>
      <Parameter name="exerciseNextBreak">N</Parameter>
      <Parameter name="cva">Y</Parameter>
      <Parameter name="dva">N</Parameter>
      <Parameter name="fva">N</Parameter>
      <Parameter name="colva">N</Parameter>
      <Parameter name="collateralFloor">N</Parameter>
      <Parameter name="useDoublePrecisionCubes">Y</Parameter>
      {net_cube_param}
    </Analytic>
  </Analytics>
</ORE>
"""
    return {
        "ore.xml": ore,
        "market.txt": "\n".join(market_lines) + "\n",
        "fixings.txt": "\n".join(_fixings(book, as_of)) + "\n",
        "curveconfig.xml": curveconfig,
        "conventions.xml": conventions,
        "todaysmarket.xml": todaysmarket,
        "pricingengine.xml": pricingengine,
        "simulation.xml": simulation,
        "netting.xml": netting,
        "portfolio.xml": portfolio,
    }


# ---------------------------------------------------------------------------------------------
# Running ORE
# ---------------------------------------------------------------------------------------------

ORE_DRIVER = textwrap.dedent(
    """
    import csv, json, math, sys, time
    from pathlib import Path
    import ORE
    work = Path(sys.argv[1])
    netting_set, recovery, hazard = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    params = ORE.Parameters()
    params.fromFile(str(work / "Input" / "ore.xml"))
    app = ORE.OREApp(params)
    t0 = time.perf_counter()
    app.run()
    seconds = time.perf_counter() - t0
    out = work / "Output"
    def rows(name):
        path = out / name
        if not path.exists():
            sys.exit("ORE wrote no " + name + "; see " + str(out / "log.txt"))
        lines = list(csv.reader(path.read_text().splitlines()))
        header = [h.lstrip("#") for h in lines[0]]
        return [dict(zip(header, r)) for r in lines[1:]]
    exposure = rows("exposure_nettingset_" + netting_set + ".csv")
    xva = [r for r in rows("xva.csv") if r["TradeId"] == "" and r["NettingSetId"] == netting_set]
    npv = rows("npv.csv")
    result = {
        "seconds": seconds,
        "dates": [r["Date"] for r in exposure],
        "times": [float(r["Time"]) for r in exposure],
        "epe": [float(r["EPE"]) for r in exposure],
        "ene": [float(r["ENE"]) for r in exposure],
        "cva": float(xva[0]["CVA"]),
        "npv": {r["TradeId"]: float(r["NPV"]) for r in npv},
    }
    cube = out / "netcube.csv"
    if cube.exists():
        # per-date mean and standard error of max(value, 0) and the per-path CVA, from the netted (deflated) cube
        times = result["times"]
        surv = [math.exp(-hazard * t) for t in times]
        pd = [0.0] + [surv[i - 1] - surv[i] for i in range(1, len(times))]
        n_dates = len(times) - 1
        s1 = [0.0] * n_dates
        s2 = [0.0] * n_dates
        path_cva = {}
        header = None
        with cube.open() as f:
            for line in f:
                parts = line.strip().split(",")
                if header is None:
                    header = [h.lstrip("#") for h in parts]
                    col = {h: i for i, h in enumerate(header)}
                    continue
                d = int(parts[col["DateIndex"]]) - 1  # 0 is the valuation date
                if d < 0:
                    continue
                v = max(float(parts[col["Value"]]), 0.0)
                s1[d] += v
                s2[d] += v * v
                k = int(parts[col["Sample"]])
                path_cva[k] = path_cva.get(k, 0.0) + (1 - recovery) * v * pd[d + 1]
        n = len(path_cva)
        result["cube_paths"] = n
        result["epe_cube"] = [a / n for a in s1]
        result["epe_stderr"] = [math.sqrt(max(b / n - (a / n) ** 2, 0.0) * n / (n - 1) / n) for a, b in zip(s1, s2)]
        values = list(path_cva.values())
        mean = sum(values) / n
        result["cva_stderr"] = math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1) / n)
    print(json.dumps(result))
    """
)


def run_ore(
    ore_python: str, book: Book, market: Market, dates: list[date], paths: int, seed: int = 42, net_cube: bool = False,
    curve_tenors: list[str] | None = None,
) -> dict:  # fmt: skip
    """ORE's netting-set EPE per date, CVA, trade NPVs and run time (with `net_cube` also the standard errors of
    its EPE and CVA, from its netted cube) for the book."""
    hazard = counterparty_hazard(book, market)
    recovery = book.counterparty(COUNTERPARTY).credit_curve.recovery
    with tempfile.TemporaryDirectory(prefix="xva-ore-") as tmp:
        work = Path(tmp)
        (work / "Input").mkdir()
        (work / "Output").mkdir()
        for name, text in ore_inputs(book, market, dates, paths, seed, net_cube, curve_tenors).items():
            (work / "Input" / name).write_text(text)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [ore_python, "-c", ORE_DRIVER, str(work), NETTING_SET, repr(recovery), repr(hazard)],
            cwd=work,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            log = work / "Output" / "log.txt"
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"ORE failed: {proc.stderr[-2000:]}\n{proc.stdout[-2000:]}\nlog: {tail}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        log = work / "Output" / "log.txt"
        out["alerts"] = [ln for ln in log.read_text().splitlines() if "ALERT" in ln] if log.exists() else []
    out["wall_seconds"] = wall
    return out


# ---------------------------------------------------------------------------------------------
# Running ours
# ---------------------------------------------------------------------------------------------


def run_ours(book: Book, market: Market, dates: list[date], paths: int, seed: int) -> dict:
    """Our discounted EPE per exposure date with its standard error, the CVA with its standard error, the time."""
    chunks: list[ExposureChunk] = []
    t0 = time.perf_counter()
    run = run_exposures(book, market, grid=grid_spec(dates, market.as_of), paths=paths, seed=seed,
                        with_credit=False, on_chunk=chunks.append)  # fmt: skip
    times = run.scenarios.grid.exposure_times
    profile = run.profiles[NETTING_SET]
    hazard = bootstrap_hazard(book.counterparty(COUNTERPARTY).credit_curve, market.as_of,
                              market.currencies["USD"].discount)  # fmt: skip
    survival = hazard.survival(times)
    recovery = hazard.recovery
    value = float(cva(times, profile.ee_discounted, survival, recovery))
    seconds = time.perf_counter() - t0
    chunk = chunks[0]
    k = chunk.netting_set_ids.index(NETTING_SET)
    assert chunk.discount is not None
    disc_pos = chunk.positive[k] * chunk.discount  # [date, path]
    stderr = disc_pos.std(axis=1, ddof=1) / math.sqrt(paths)
    per_path = (1.0 - recovery) * first_to_default(survival, None) @ disc_pos
    return {
        "seconds": seconds,
        "times": times.tolist(),
        "epe": profile.ee_discounted.tolist(),
        "epe_stderr": stderr.tolist(),
        "cva": value,
        "cva_stderr": float(per_path.std(ddof=1) / math.sqrt(paths)),
    }


# ---------------------------------------------------------------------------------------------
# Comparison and fixture
# ---------------------------------------------------------------------------------------------


def epe_z_scores(ours: dict, ore: dict, ours_paths: int, ore_paths: int) -> np.ndarray:
    """(ours − ORE) / combined standard error per date after today; ORE's error is its own if known, else ours
    scaled by √(our paths / ORE's paths)."""
    mine = np.asarray(ours["epe"][1:])
    se_mine = np.asarray(ours["epe_stderr"][1:])
    theirs = np.asarray(ore["epe"][1:])
    se_theirs = np.asarray(ore.get("epe_stderr") or se_mine * math.sqrt(ours_paths / ore_paths))
    se = np.sqrt(se_mine**2 + se_theirs**2)
    # a date on which both profiles are exactly known (all flows paid: zero on every path) must agree exactly
    return np.divide(mine - theirs, se, out=np.where(mine == theirs, 0.0, np.inf), where=se > 0)


def compare(ore_python: str, paths: int, seed: int = 1, ore_curve_tenors: list[str] | None = None) -> dict:
    """ORE and our engine on the same portfolio, `paths` paths and the same dates, one after the other: both times,
    both CVAs, the CVA difference and the largest EPE difference in standard errors. ORE's standard errors are
    estimated as ours (its netted cube is not written here, to time it as it is used); ORE's LGM numeraire gives
    it up to ~1.4 times our error on the late dates, so these z-scores are if anything too large."""
    market, book, dates = reference_market(), reference_book(), exposure_dates()
    ore = run_ore(ore_python, book, market, dates, paths, curve_tenors=ore_curve_tenors)
    if ore["alerts"]:
        raise RuntimeError("ORE logged alerts:\n" + "\n".join(ore["alerts"]))
    run_ours(book, market, dates, min(paths, 500), seed)  # compile and cache the numba kernels first
    ours = run_ours(book, market, dates, paths, seed)
    z = epe_z_scores(ours, ore, paths, paths)
    cva_se = math.sqrt(2.0) * ours["cva_stderr"]
    return {
        "paths": paths,
        "dates": len(dates),
        "trades": len(book.trades),
        "ore_seconds": ore["seconds"],
        "ore_wall_seconds": ore["wall_seconds"],
        "ours_seconds": ours["seconds"],
        "ore_cva": ore["cva"],
        "ours_cva": ours["cva"],
        "ours_cva_stderr": ours["cva_stderr"],
        "cva_z": (ours["cva"] - ore["cva"]) / cva_se,
        "epe_max_abs_z": float(np.max(np.abs(z))),
        "epe_mean_z": float(np.mean(z)),
    }


def write_fixture(ore_python: str, paths: int) -> dict:
    """Runs ORE on the reference portfolio (with its netting-set cube for standard errors) and writes the fixture."""
    market, book, dates = reference_market(), reference_book(), exposure_dates()
    ore = run_ore(ore_python, book, market, dates, paths, net_cube=True)
    if ore["alerts"]:
        raise RuntimeError("ORE logged alerts:\n" + "\n".join(ore["alerts"]))
    if [date.fromisoformat(d) for d in ore["dates"][1:]] != dates:
        raise RuntimeError(f"ORE's exposure dates differ from ours: {ore['dates'][:4]}...")
    if np.max(np.abs(np.asarray(ore["epe_cube"]) - np.asarray(ore["epe"][1:]))) > 1e-6 * max(ore["epe"]):
        raise RuntimeError("ORE's netting-set cube does not reproduce its EPE report")
    fixture = {
        "reference": f"Open Source Risk Engine {ORE_VERSION} (PyPI open-source-risk-engine), exposure and CVA",
        "command": "uv run python bench/xva_reference_ore.py --ore-python /tmp/orevenv/bin/python --write-fixture",
        "ore_version": ORE_VERSION,
        "ore_paths": paths,
        "ore_sequence": "MersenneTwister, seed 42",
        "ore_measure": "LGM (EPE deflated by the LGM numeraire)",
        "netting_set_id": NETTING_SET,
        "counterparty_id": COUNTERPARTY,
        "hazard_rate": counterparty_hazard(book, market),
        "grid": grid_spec(dates, market.as_of),
        "dates": [d.isoformat() for d in [market.as_of, *dates]],
        "times": ore["times"],
        "epe": ore["epe"],
        "epe_stderr": [0.0, *ore["epe_stderr"]],
        "cva": ore["cva"],
        "cva_stderr": ore["cva_stderr"],
        "npv": ore["npv"],
        "market": market.model_dump(mode="json"),
        "book": book.model_dump(mode="json"),
    }
    FIXTURE.write_text(json.dumps(fixture, indent=1) + "\n")
    return fixture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ore-python", default="/tmp/orevenv/bin/python", help="Python of the venv with ORE.")
    parser.add_argument("--paths", type=int, help="Paths (default 20,000 with --write-fixture, 10,000 with --compare).")
    parser.add_argument("--ore-curve-tenors", help="With --compare: ORE's simulated curve tenors instead of the "
                        "exact 91-day pillars, e.g. 3M,6M,1Y,2Y,3Y,5Y,7Y,10Y,15Y,20Y (faster, not exact).")  # fmt: skip
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write-fixture", action="store_true", help=f"Run ORE and write {FIXTURE.name}.")
    mode.add_argument("--compare", action="store_true", help="Run both engines on the same paths and dates.")
    args = parser.parse_args()
    if args.write_fixture:
        fx = write_fixture(args.ore_python, args.paths or 20_000)
        print(f"wrote {FIXTURE}: ORE CVA {fx['cva']:,.2f} ± {fx['cva_stderr']:,.2f} on {fx['ore_paths']} paths")
        return
    tenors = args.ore_curve_tenors.split(",") if args.ore_curve_tenors else None
    r = compare(args.ore_python, args.paths or 10_000, ore_curve_tenors=tenors)
    print(f"{r['trades']} swaps, {r['dates']} dates, {r['paths']} paths")
    print(f"ORE   CVA {r['ore_cva']:14,.2f}  time {r['ore_seconds']:7.2f} s (app.run; {r['ore_wall_seconds']:.2f} s "
          "with start-up)")  # fmt: skip
    print(f"ours  CVA {r['ours_cva']:14,.2f}  time {r['ours_seconds']:7.2f} s (CVA standard error "
          f"{r['ours_cva_stderr']:,.2f})")  # fmt: skip
    print(f"CVA difference {r['cva_z']:+.2f} standard errors; EPE max |difference| {r['epe_max_abs_z']:.2f} "
          f"standard errors (mean {r['epe_mean_z']:+.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
