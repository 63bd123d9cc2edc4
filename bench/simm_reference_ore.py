"""Reference SIMM figures from the Open Source Risk Engine (ORE) for the SIMM engine's tests.

    uv venv /tmp/orevenv --python 3.11
    uv pip install --python /tmp/orevenv/bin/python open-source-risk-engine==1.8.17.0
    uv run python bench/simm_reference_ore.py --ore-python /tmp/orevenv/bin/python

Writes, under tests/engines/margin/fixtures/simm/, one CRIF file per case (built by our code: the
CRIF writer, and for the last case `crif_from_book` on a small hand-built margin book) and one JSON
file with ORE's SIMM report on it: for each portfolio and side (Call, Post) every row ORE reports,
(product class, risk class, margin type, bucket, initial margin in USD). Cases:

- rates_fx: interest-rate delta in seven currencies (regular, low- and high-volatility groups) on
  several tenors and sub-curves, inflation, cross-currency basis, IR and inflation vega, FX delta
  (high-volatility currencies included, and the calculation currency, which SIMM leaves out) and FX
  vega; a second portfolio short volatility, so that curvature differs between the sides.
- equity_credit: equity delta and vega in every bucket (Residual and the volatility-index bucket
  12 included), credit qualifying delta and vega (several tenors per issuer, securitisations,
  Residual), base correlation, credit non-qualifying delta and vega; IR and FX sensitivities of
  equity trades in the Equity product class.
- commodity_addons: commodity delta and vega in all 17 buckets, with a product-class multiplier,
  a fixed add-on and a notional-factor add-on.
- concentration: sensitivities large enough for concentration factors (IR, FX, equity, credit,
  commodity delta; IR, equity, FX vega) to exceed 1, next to small ones (g and f below 1).
- thresholds: every concentration threshold of the calibration, at four times its size.
- from_book: the CRIF `crif_from_book` makes of a small book with three bilateral counterparties
  and a CCP (the CCP's positions must not appear).

ORE runs in its own virtual environment (it is ~330 MB and no dependency of the project), once per
file, with SIMM 2.6, 10-day MPOR, calculation and result currency USD, regulations not enforced.
The script prints our total against ORE's for each portfolio and side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from engines.margin.arrays import MarginBook  # noqa: E402
from engines.margin.simm import CrifRecord, crif_from_book, read_crif, simm_by_portfolio, write_crif  # noqa: E402
from engines.margin.simm.parameters import load_parameters  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "engines" / "margin" / "fixtures" / "simm"
ORE_VERSION = "1.8.17.0"
IR_TENORS = ("2w", "1m", "3m", "6m", "1y", "2y", "3y", "5y", "10y", "15y", "20y", "30y")
CREDIT_TENORS = ("1y", "2y", "3y", "5y", "10y")
IR_BUCKET = {"JPY": "2", "BRL": "3", "TRY": "3", "MXN": "3"}


def rec(portfolio: str, product_class: str, risk_type: str, qualifier: str, amount: float, bucket: str = "",
        label1: str = "", label2: str = "", trade: str = "T1") -> CrifRecord:  # fmt: skip
    amount = round(float(amount), 2)
    return CrifRecord(
        risk_type=risk_type,
        qualifier=qualifier,
        bucket=bucket,
        label1=label1,
        label2=label2,
        amount=amount,
        amount_currency="USD",
        amount_usd=amount,
        product_class=product_class,
        trade_id=trade,
        portfolio_id=portfolio,
    )


def param(portfolio: str, risk_type: str, qualifier: str, amount: float) -> CrifRecord:
    usd = risk_type in ("Param_AddOnFixedAmount", "Notional")
    return CrifRecord(
        risk_type=risk_type,
        qualifier=qualifier,
        amount=amount,
        amount_currency="USD" if usd else "",
        amount_usd=amount if usd else None,
        portfolio_id=portfolio,
        trade_id="",
    )


def pick(rng: np.random.Generator, items: tuple[str, ...], low: int, high: int) -> list[str]:
    n = int(rng.integers(low, high + 1))
    return [items[i] for i in sorted(rng.choice(len(items), size=min(n, len(items)), replace=False))]


def case_rates_fx(rng: np.random.Generator) -> list[CrifRecord]:
    out: list[CrifRecord] = []
    p = "RATESFX_LONG"
    scale = {"USD": 40_000, "EUR": 30_000, "GBP": 10_000, "JPY": 60_000, "AUD": 5_000, "BRL": 4_000, "TRY": 2_000}
    for ccy, s in scale.items():
        for tenor in pick(rng, IR_TENORS, 4, 12):
            for sub in pick(rng, ("OIS", "Libor3m", "Libor6m", "Libor1m"), 1, 3):
                out.append(rec(p, "RatesFX", "Risk_IRCurve", ccy, rng.normal(0, s), IR_BUCKET.get(ccy, "1"), tenor,
                               sub, trade=f"SWAP_{ccy}"))  # fmt: skip
    for ccy in ("USD", "EUR", "GBP"):
        out.append(rec(p, "RatesFX", "Risk_Inflation", ccy, rng.normal(0, 20_000), trade=f"INF_{ccy}"))
    for ccy in ("EUR", "JPY", "BRL"):
        out.append(rec(p, "RatesFX", "Risk_XCcyBasis", ccy, rng.normal(0, 8_000), trade=f"XCCY_{ccy}"))
    for ccy, n in (("USD", 5), ("EUR", 3), ("JPY", 2), ("BRL", 1)):
        for tenor in pick(rng, IR_TENORS, n, n):
            out.append(rec(p, "RatesFX", "Risk_IRVol", ccy, abs(rng.normal(0, 3e5)), label1=tenor, trade=f"SWO_{ccy}"))
    for tenor in ("1y", "5y"):
        out.append(rec(p, "RatesFX", "Risk_InflationVol", "EUR", abs(rng.normal(0, 1e5)), label1=tenor, trade="INFO"))
    out.append(rec(p, "RatesFX", "Risk_InflationVol", "USD", -abs(rng.normal(0, 5e4)), label1="2y", trade="INFO"))
    for ccy in ("EUR", "GBP", "JPY", "BRL", "TRY", "CNY", "CHF", "USD"):
        out.append(rec(p, "RatesFX", "Risk_FX", ccy, rng.normal(0, 2e6), trade=f"FXF_{ccy}"))
    for pair, n in (("EURUSD", 3), ("USDJPY", 2), ("EURBRL", 1), ("TRYUSD", 1)):
        for tenor in pick(rng, IR_TENORS, n, n):
            out.append(rec(p, "RatesFX", "Risk_FXVol", pair, rng.normal(0, 5e4), label1=tenor, trade=f"FXO_{pair}"))
    q = "RATESFX_SHORT_VOL"
    for ccy in ("USD", "EUR"):
        for tenor in ("2y", "5y", "10y"):
            out.append(rec(q, "RatesFX", "Risk_IRCurve", ccy, rng.normal(0, 20_000), "1", tenor, "OIS"))
            out.append(rec(q, "RatesFX", "Risk_IRVol", ccy, -abs(rng.normal(0, 4e5)), label1=tenor))
    out.append(rec(q, "RatesFX", "Risk_IRVol", "EUR", abs(rng.normal(0, 1e5)), label1="1y"))
    for pair in ("EURUSD", "GBPUSD"):
        out.append(rec(q, "RatesFX", "Risk_FXVol", pair, -abs(rng.normal(0, 8e4)), label1="6m"))
    out.append(rec(q, "RatesFX", "Risk_FX", "GBP", rng.normal(0, 1e6)))
    return out


EQUITY_BUCKETS = (*(str(b) for b in range(1, 13)), "Residual")
CREDIT_Q_BUCKETS = EQUITY_BUCKETS


def case_equity_credit(rng: np.random.Generator) -> list[CrifRecord]:
    out: list[CrifRecord] = []
    p = "EQUITY_CREDIT"
    for b in EQUITY_BUCKETS:
        for i in range(int(rng.integers(1, 4))):
            name = f"EQ_B{b}_{i}"
            out.append(rec(p, "Equity", "Risk_Equity", name, rng.normal(0, 2e5), b, trade=f"EQS_{name}"))
            if rng.random() < 0.6 or b in ("12", "Residual"):
                for tenor in pick(rng, IR_TENORS, 1, 3):
                    out.append(rec(p, "Equity", "Risk_EquityVol", name, rng.normal(1e4, 2e4), b, tenor,
                                   trade=f"EQO_{name}"))  # fmt: skip
    out.append(rec(p, "Equity", "Risk_FX", "EUR", rng.normal(0, 1e6), trade="EQS_EQ_B5_0"))
    out.append(rec(p, "Equity", "Risk_FX", "JPY", rng.normal(0, 5e5), trade="EQS_EQ_B6_0"))
    out.append(rec(p, "Equity", "Risk_IRCurve", "USD", rng.normal(0, 3e3), "1", "1y", "OIS", trade="EQO_EQ_B5_0"))
    for b in CREDIT_Q_BUCKETS:
        for i in range(int(rng.integers(1, 4))):
            name = f"ISSUER_B{b}_{i}"
            for tenor in pick(rng, CREDIT_TENORS, 1, 3):
                out.append(rec(p, "Credit", "Risk_CreditQ", name, rng.normal(0, 3e3), b, tenor, trade=f"CDS_{name}"))
            if rng.random() < 0.3:
                out.append(rec(p, "Credit", "Risk_CreditQ", name, rng.normal(0, 1e3), b, "5y", "Sec",
                               trade=f"ABS_{name}"))  # fmt: skip
            if rng.random() < 0.4:
                for tenor in pick(rng, CREDIT_TENORS, 1, 2):
                    out.append(rec(p, "Credit", "Risk_CreditVol", name, rng.normal(2e4, 3e4), b, tenor,
                                   trade=f"CDSO_{name}"))  # fmt: skip
    for family in ("CDX IG", "ITRAXX MAIN"):
        out.append(rec(p, "Credit", "Risk_BaseCorr", family, rng.normal(0, 5e4), trade=f"TRANCHE_{family}"))
    for b, groups in (("1", ("RMBS", "CMBS")), ("2", ("RMBS",)), ("Residual", ("",))):
        for group in groups:
            for i in range(2):
                name = f"NONQ_B{b}_{group}_{i}"
                out.append(rec(p, "Credit", "Risk_CreditNonQ", name, rng.normal(0, 800), b, "5y", group,
                               trade=f"NQ_{name}"))  # fmt: skip
                if i == 0:
                    out.append(rec(p, "Credit", "Risk_CreditVolNonQ", name, rng.normal(0, 2e4), b, "3y", group,
                                   trade=f"NQO_{name}"))  # fmt: skip
    return out


def case_commodity_addons(rng: np.random.Generator) -> list[CrifRecord]:
    out: list[CrifRecord] = []
    p = "COMMODITY_ADDONS"
    for b in range(1, 18):
        for i in range(int(rng.integers(1, 3))):
            name = f"CMDTY_B{b}_{i}"
            out.append(rec(p, "Commodity", "Risk_Commodity", name, rng.normal(0, 3e5), str(b), trade=f"CMF_{name}"))
            if rng.random() < 0.5:
                for tenor in pick(rng, IR_TENORS, 1, 2):
                    out.append(rec(p, "Commodity", "Risk_CommodityVol", name, rng.normal(0, 3e4), str(b), tenor,
                                   trade=f"CMO_{name}"))  # fmt: skip
    out.append(rec(p, "Commodity", "Risk_FX", "GBP", rng.normal(0, 1e6), trade="CMF_CMDTY_B9_0"))
    out.append(rec(p, "Equity", "Risk_Equity", "EQ_ADDON", rng.normal(0, 5e5), "11", trade="EQ_ADDON"))
    out.append(param(p, "Param_ProductClassMultiplier", "Commodity", 1.5))
    out.append(param(p, "Param_AddOnFixedAmount", "", 1_000_000.0))
    out.append(param(p, "Param_AddOnNotionalFactor", "EXOTIC_X", 2.5))
    out.append(param(p, "Notional", "EXOTIC_X", 40_000_000.0))
    return out


def case_concentration(rng: np.random.Generator) -> list[CrifRecord]:
    out: list[CrifRecord] = []
    p = "CONCENTRATED"
    for tenor, w in (("5y", 0.6), ("10y", 0.4)):
        out.append(rec(p, "RatesFX", "Risk_IRCurve", "USD", 1.3e9 * w, "1", tenor, "OIS"))  # 330m/bp threshold
        out.append(rec(p, "RatesFX", "Risk_IRCurve", "JPY", -2.0e8 * w, "2", tenor, "OIS"))  # 61m/bp
    out.append(rec(p, "RatesFX", "Risk_IRCurve", "EUR", 1.0e6, "1", "2y", "OIS"))  # below threshold
    out.append(rec(p, "RatesFX", "Risk_Inflation", "USD", 2.0e8))
    out.append(rec(p, "RatesFX", "Risk_IRVol", "USD", 9.0e9, label1="5y"))  # 4900m vega threshold
    out.append(rec(p, "RatesFX", "Risk_IRVol", "EUR", 3.0e8, label1="1y"))
    out.append(rec(p, "RatesFX", "Risk_FX", "EUR", 1.2e10))  # 3300m per 1%
    out.append(rec(p, "RatesFX", "Risk_FX", "MXN", -2.0e9))  # 880m
    out.append(rec(p, "RatesFX", "Risk_FX", "PLN", 5.0e8))  # 170m
    out.append(rec(p, "RatesFX", "Risk_FXVol", "EURUSD", 2.0e9, label1="1y"))
    out.append(rec(p, "Equity", "Risk_Equity", "BIG_B1", 1.2e7, "1"))  # 3m per 1%
    out.append(rec(p, "Equity", "Risk_Equity", "SMALL_B1", -1.0e6, "1"))
    out.append(rec(p, "Equity", "Risk_Equity", "BIG_B9", 2.0e6, "9"))  # 0.64m
    out.append(rec(p, "Equity", "Risk_EquityVol", "BIG_B11", 1.6e8, "11", "1y"))
    out.append(rec(p, "Equity", "Risk_EquityVol", "BIG_B1", -3.0e7, "1", "6m"))
    out.append(rec(p, "Credit", "Risk_CreditQ", "ISSUER_BIG", 5.0e5, "2", "5y"))  # 0.17m per bp
    out.append(rec(p, "Credit", "Risk_CreditQ", "ISSUER_BIG", 2.0e5, "2", "10y"))
    out.append(rec(p, "Credit", "Risk_CreditQ", "ISSUER_SMALL", 1.0e4, "2", "5y"))
    out.append(rec(p, "Credit", "Risk_CreditQ", "SOVEREIGN", 2.5e6, "1", "5y"))  # 1m per bp
    out.append(rec(p, "Commodity", "Risk_Commodity", "GOLD", 5.0e9, "12"))  # 1300m
    out.append(rec(p, "Commodity", "Risk_Commodity", "SILVER", -4.0e8, "12"))
    return out


def case_thresholds(rng: np.random.Generator) -> list[CrifRecord]:
    """Every concentration threshold of the calibration at four times its size (CR = 2 where SIMM is right).

    Amounts come from our parameter file; ORE applies its own thresholds, so a wrong number in ours shows as a
    bucket margin that differs from ORE's.
    """
    params = load_parameters("2.6")
    sigma = params.sigma_multiplier
    out: list[CrifRecord] = []
    p = "THRESHOLDS"
    ir = params.interest_rate
    for group, ccy in (("1", "MXN"), ("2", "USD"), ("3", "AUD"), ("4", "JPY")):
        assert ir.concentration_group(ccy) == group
        out.append(
            rec(p, "RatesFX", "Risk_IRCurve", ccy, 4e6 * ir.delta_concentration_thresholds[group], "", "5y", "OIS")
        )
        out.append(rec(p, "RatesFX", "Risk_IRVol", ccy, -4e6 * ir.vega_concentration_thresholds[group], label1="5y"))
    fx = params.fx
    for ccy in ("EUR", "MXN", "PLN"):
        out.append(
            rec(p, "RatesFX", "Risk_FX", ccy, 4e6 * fx.delta_concentration_thresholds[fx.concentration_group(ccy)])
        )
    for pair in ("EURJPY", "EURMXN", "EURPLN", "MXNNOK", "MXNPLN", "HUFPLN"):
        vol = sigma * fx.delta_risk_weights[fx.volatility_group(pair[3:])][fx.volatility_group(pair[:3])]
        amount = 4e6 * fx.vega_threshold(pair) / (vol * fx.historical_volatility_ratio)
        out.append(rec(p, "RatesFX", "Risk_FXVol", pair, amount, label1="1y"))
    for product_class, risk_type, e in (("Equity", "Risk_Equity", params.equity),
                                        ("Commodity", "Risk_Commodity", params.commodity)):  # fmt: skip
        for b in e.buckets:
            name = f"{risk_type[5:].upper()}_T{b}"
            out.append(rec(p, product_class, risk_type, name, 4e6 * e.delta_concentration_thresholds[b], b))
            vol = sigma * e.delta_risk_weights[b] * e.historical_volatility_ratio
            amount = -4e6 * e.vega_concentration_thresholds[b] / vol
            out.append(rec(p, product_class, risk_type + "Vol", name + "_V", amount, b, "3m"))
    for risk_type, c in (("Risk_CreditQ", params.credit_qualifying), ("Risk_CreditNonQ", params.credit_non_qualifying)):
        vol_type = "Risk_CreditVol" if risk_type == "Risk_CreditQ" else "Risk_CreditVolNonQ"
        for b in c.buckets:
            name = f"{risk_type[5:].upper()}_T{b}"
            out.append(rec(p, "Credit", risk_type, name, 4e6 * c.delta_concentration_thresholds[b], b, "5y"))
        out.append(
            rec(p, "Credit", vol_type, f"{vol_type}_T", 4e6 * c.vega_concentration_threshold, c.buckets[0], "5y")
        )
    return out


def sample_book() -> MarginBook:
    """Three bilateral counterparties and a CCP; positions across the asset classes."""
    factors = ("IR.USD.2Y", "IR.USD.10Y", "IR.EUR.5Y", "IR.JPY.30Y", "FX.EURUSD", "FX.JPYUSD", "FX.BRLUSD",
               "EQ.SPX", "EQ.SX5E", "EQ.VIX", "CR.CDX.NA.IG.5Y", "CR.ITRAXX.XOVER.5Y", "CM.WTI", "CM.GOLD",
               "VOL.IR.USD", "VOL.EQ.SPX", "VOL.EQ.SX5E")  # fmt: skip
    cls = (0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 0, 2, 2)
    venues = ("CCP_LCH", "DEALER_A", "DEALER_B", "DEALER_C")
    # position: (venue, asset class, [(factor, delta)])
    positions = [
        (0, 0, [(0, 5e8), (1, -2e8)]),
        (1, 0, [(0, -3e8), (1, 4e8), (2, 1e8)]),
        (1, 0, [(14, 2e6), (1, 1e7)]),
        (1, 1, [(4, 3e7), (5, -2e7)]),
        (2, 2, [(7, 8e7), (15, -1.5e6), (4, 1e7)]),
        (2, 2, [(8, -4e7), (16, 8e5), (9, 5e6)]),
        (2, 3, [(10, -6e8), (11, 1.5e8)]),
        (3, 4, [(12, 2e7), (13, -1e7)]),
        (3, 1, [(6, 5e6)]),
        (3, 0, [(3, 2e8), (14, -3e6)]),
    ]
    lp, lf, ld = [], [], []
    for i, (_, _, loads) in enumerate(positions):
        for f, d in loads:
            lp.append(i)
            lf.append(f)
            ld.append(d)
    n, k = len(positions), len(lp)
    return MarginBook(
        factors=factors,
        factor_class=np.array(cls, dtype=np.int8),
        factor_currency=np.zeros(len(factors), dtype=np.int16),
        factor_depth_usd=np.full(len(factors), 1e9),
        venues=venues,
        venue_is_ccp=np.array([True, False, False, False]),
        managers=("M1",),
        strategies=("S1",),
        strategy_manager=np.zeros(1, dtype=np.int32),
        currencies=("USD",),
        position_ids=tuple(f"POS{i}" for i in range(n)),
        position_venue=np.array([p[0] for p in positions], dtype=np.int32),
        position_manager=np.zeros(n, dtype=np.int32),
        position_strategy=np.zeros(n, dtype=np.int32),
        position_currency=np.zeros(n, dtype=np.int16),
        position_class=np.array([p[1] for p in positions], dtype=np.int8),
        position_notional_usd=np.ones(n),
        position_value_usd=np.zeros(n),
        position_expected_return_usd=np.zeros(n),
        position_liquidity_factor=np.zeros(n, dtype=np.int32),
        load_position=np.array(lp, dtype=np.int32),
        load_factor=np.array(lf, dtype=np.int32),
        load_delta=np.array(ld),
        load_gamma=np.zeros(k),
    )


def case_from_book(rng: np.random.Generator) -> list[CrifRecord]:
    return crif_from_book(sample_book(), implied_vols={"VOL.EQ.SPX": 0.18})


CASES = {
    "rates_fx": case_rates_fx,
    "equity_credit": case_equity_credit,
    "commodity_addons": case_commodity_addons,
    "concentration": case_concentration,
    "thresholds": case_thresholds,
    "from_book": case_from_book,
}

ORE_DRIVER = textwrap.dedent(
    """
    import csv, json, sys
    from pathlib import Path
    import ORE
    work = Path(sys.argv[1])
    params = ORE.Parameters()
    params.fromFile(str(work / "Input" / "ore.xml"))
    app = ORE.OREApp(params)
    app.run()
    report = work / "Output" / "simm.csv"
    if not report.exists():
        sys.exit("ORE wrote no SIMM report; see " + str(work / "Output" / "log.txt"))
    rows = list(csv.reader(report.read_text().splitlines()))
    header = [h.lstrip("#") for h in rows[0]]
    out = {}
    for row in rows[1:]:
        r = dict(zip(header, row))
        if r["Portfolio"] == "All":
            continue
        side = out.setdefault(r["Portfolio"], {}).setdefault(r["SimmSide"].lower(), [])
        side.append([r["ProductClass"], r["RiskClass"], r["MarginType"], r["Bucket"], float(r["InitialMargin"])])
    print(json.dumps(out))
    """
)

ORE_XML = """<?xml version="1.0"?>
<ORE>
  <Setup>
    <Parameter name="asofDate">2024-06-28</Parameter>
    <Parameter name="inputPath">Input</Parameter>
    <Parameter name="outputPath">Output</Parameter>
    <Parameter name="logFile">log.txt</Parameter>
    <Parameter name="logMask">15</Parameter>
    <Parameter name="marketDataFile">market.txt</Parameter>
    <Parameter name="fixingDataFile"></Parameter>
    <Parameter name="implyTodaysFixings">N</Parameter>
    <Parameter name="curveConfigFile">curveconfig.xml</Parameter>
    <Parameter name="conventionsFile">conventions.xml</Parameter>
    <Parameter name="marketConfigFile">todaysmarket.xml</Parameter>
    <Parameter name="pricingEnginesFile">pricingengine.xml</Parameter>
    <Parameter name="portfolioFile"></Parameter>
    <Parameter name="observationModel">None</Parameter>
    <Parameter name="csvCommentReportHeader">N</Parameter>
  </Setup>
  <Markets><Parameter name="pricing">default</Parameter></Markets>
  <Analytics>
    <Analytic type="simm">
      <Parameter name="active">Y</Parameter>
      <Parameter name="version">2.6</Parameter>
      <Parameter name="crif">crif.csv</Parameter>
      <Parameter name="calculationCurrency">USD</Parameter>
      <Parameter name="resultCurrency">USD</Parameter>
      <Parameter name="enforceIMRegulations">N</Parameter>
      <Parameter name="writeIntermediateReports">N</Parameter>
      <Parameter name="mporDays">10</Parameter>
    </Analytic>
  </Analytics>
</ORE>
"""

EMPTY_FILES = {
    "todaysmarket.xml": '<?xml version="1.0"?>\n<TodaysMarket><Configuration id="default"/></TodaysMarket>\n',
    "curveconfig.xml": '<?xml version="1.0"?>\n<CurveConfiguration/>\n',
    "conventions.xml": '<?xml version="1.0"?>\n<Conventions/>\n',
    "pricingengine.xml": '<?xml version="1.0"?>\n<PricingEngines/>\n',
    "market.txt": "20240628 FX/RATE/EUR/USD 1.07\n",
}


def run_ore(ore_python: str, crif_text: str) -> dict:
    """ORE's SIMM report rows for the CRIF, by portfolio and side."""
    with tempfile.TemporaryDirectory(prefix="simm-ore-") as tmp:
        work = Path(tmp)
        (work / "Input").mkdir()
        (work / "Output").mkdir()
        (work / "Input" / "ore.xml").write_text(ORE_XML)
        (work / "Input" / "crif.csv").write_text(crif_text)
        for name, text in EMPTY_FILES.items():
            (work / "Input" / name).write_text(text)
        proc = subprocess.run([ore_python, "-c", ORE_DRIVER, str(work)], cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ORE failed: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ore-python", default="/tmp/orevenv/bin/python", help="Python of the venv with ORE.")
    parser.add_argument("--seed", type=int, default=20240628)
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    args = parser.parse_args()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for name, build in CASES.items():
        records = build(rng)
        if args.only and name not in args.only:
            continue
        crif_path = FIXTURES / f"{name}.csv"
        text = write_crif(records, crif_path)
        ore = run_ore(args.ore_python, text)
        fixture = {
            "crif": crif_path.name,
            "reference": f"Open Source Risk Engine {ORE_VERSION} (PyPI open-source-risk-engine), SIMM analytic",
            "simm_version": "2.6",
            "mpor_days": 10,
            "calculation_currency": "USD",
            "result_currency": "USD",
            "command": "uv run python bench/simm_reference_ore.py --ore-python /tmp/orevenv/bin/python",
            "columns": ["ProductClass", "RiskClass", "MarginType", "Bucket", "InitialMargin"],
            "portfolios": ore,
        }
        (FIXTURES / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")
        for side in ("call", "post"):
            ours = simm_by_portfolio(read_crif(crif_path), side=side)
            for portfolio, rows in ore.items():
                total = next((r[4] for r in rows.get(side, []) if r[:4] == ["All"] * 4), 0.0)
                mine = ours[portfolio].total_usd
                rel = abs(mine - total) / max(abs(total), 1.0)
                print(f"{name:18s} {portfolio:20s} {side:4s} ORE {total:20,.2f}  ours {mine:20,.2f}  rel {rel:.1e}")


if __name__ == "__main__":
    main()
