"""ISDA SIMM 2.6 against independent references.

- The Open Source Risk Engine (ORE 1.8.17.0) on the same CRIF files: every row of its SIMM report (product
  class, risk class, margin type, bucket; both sides) must agree to 1e-9 relative (what we see is ≤ 1e-11:
  the same formulas summed in a different order), and every figure we report that ORE leaves out must be
  zero. The CRIF files and ORE's figures are fixtures written by bench/simm_reference_ore.py.
- Hand computations of the SIMM formulas on tiny CRIFs, with the risk weights and correlations typed in from
  the SIMM 2.6 tables (not read from our parameter file) and Φ⁻¹ from scipy.
- Limit cases: concentration thresholds below and above, the calculation currency left out, the two sides.
- The CRIF reader and writer, `crif_from_book` on a hand-built book, the compute kind and the CLI.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from engines import registry
from engines.margin.arrays import MarginBook
from engines.margin.simm import (
    CrifFileError,
    CrifRecord,
    SimmInputError,
    crif_from_book,
    load_parameters,
    read_crif,
    simm,
    simm_by_counterparty,
    simm_by_portfolio,
    write_crif,
)
from risklab.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "simm"
ORE_CASES = ("rates_fx", "equity_credit", "commodity_addons", "concentration", "thresholds", "from_book")
RELATIVE = 1e-9

# SIMM 2.6 numbers used by the hand computations (ISDA SIMM Methodology 2.6, 10-day)
SQRT_365_14 = math.sqrt(365 / 14)
ALPHA = norm.ppf(0.99)
LAMBDA0 = norm.ppf(0.995) ** 2 - 1
HVR_IR, HVR_EQ = 0.47, 0.60


def rec(risk_type: str, qualifier: str, amount: float, bucket: str = "", label1: str = "", label2: str = "",
        product_class: str = "RatesFX", **kw: Any) -> CrifRecord:  # fmt: skip
    return CrifRecord(risk_type=risk_type, qualifier=qualifier, amount_usd=amount, bucket=bucket, label1=label1,
                      label2=label2, product_class=product_class, **kw)  # fmt: skip


def close(a: float, b: float, rel: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


# ---------------------------------------------------------------------------------------------
# Against ORE on the same CRIF
# ---------------------------------------------------------------------------------------------


def _fixture(case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{case}.json").read_text())


@pytest.mark.parametrize("case", ORE_CASES)
@pytest.mark.parametrize("side", ["call", "post"])
def test_every_ore_figure_agrees(case: str, side: str) -> None:
    fixture = _fixture(case)
    ours = simm_by_portfolio(read_crif(FIXTURES / fixture["crif"]), side=side)
    assert set(ours) == set(fixture["portfolios"])
    for portfolio, sides in fixture["portfolios"].items():
        mine = {tuple(r[:4]): r[4] for r in ours[portfolio].rows()}
        theirs = {tuple(r[:4]): r[4] for r in sides[side]}
        assert theirs[("All", "All", "All", "All")] > 0
        for key, value in theirs.items():
            if key[2] == "BaseCorr" and key[3] == "":
                continue  # ORE repeats the base-correlation margin as a bucket named "": we report no buckets for it
            assert key in mine, f"{case} {portfolio} {side}: ORE reports {key} = {value}, we do not"
            assert math.isclose(mine[key], value, rel_tol=RELATIVE, abs_tol=1e-6), (
                f"{case} {portfolio} {side} {key}: ours {mine[key]!r}, ORE {value!r} (tolerance {RELATIVE} relative)"
            )
        for key, value in mine.items():
            if key not in theirs:
                assert value == 0.0, f"{case} {portfolio} {side}: we report {key} = {value}, ORE nothing"


def test_ore_cases_exercise_what_they_claim() -> None:
    """The fixtures cover the risk types, both curvature signs and concentration above 1."""
    types = {r.risk_type for case in ORE_CASES for r in read_crif(FIXTURES / f"{case}.csv")}
    assert types >= {
        "Risk_IRCurve", "Risk_Inflation", "Risk_XCcyBasis", "Risk_IRVol", "Risk_InflationVol", "Risk_FX", "Risk_FXVol",
        "Risk_Equity", "Risk_EquityVol", "Risk_CreditQ", "Risk_CreditVol", "Risk_BaseCorr", "Risk_CreditNonQ",
        "Risk_CreditVolNonQ", "Risk_Commodity", "Risk_CommodityVol", "Param_ProductClassMultiplier",
        "Param_AddOnFixedAmount", "Param_AddOnNotionalFactor", "Notional",
    }  # fmt: skip
    short = simm_by_portfolio(read_crif(FIXTURES / "rates_fx.csv"), side="call")["RATESFX_SHORT_VOL"]
    post = simm_by_portfolio(read_crif(FIXTURES / "rates_fx.csv"), side="post")["RATESFX_SHORT_VOL"]
    assert short.total_usd != post.total_usd
    concentrated = {(r.risk_type, r.qualifier): r.amount_usd for r in read_crif(FIXTURES / "concentration.csv")}
    assert concentrated[("Risk_FX", "EUR")] > 3300e6 and concentrated[("Risk_Equity", "BIG_B1")] > 3e6


def test_simm_by_counterparty_is_ore_on_the_book_crif() -> None:
    """The bench's sample book: each bilateral counterparty's posted SIMM is ORE's Post figure for its portfolio."""
    spec = importlib.util.spec_from_file_location(
        "simm_reference_ore", Path(__file__).resolve().parents[3] / "bench" / "simm_reference_ore.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    book = bench.sample_book()
    assert write_crif(bench.case_from_book(None)) == (FIXTURES / "from_book.csv").read_text()
    ore = _fixture("from_book")["portfolios"]
    results = simm_by_counterparty(book, implied_vols={"VOL.EQ.SPX": 0.18})
    assert sorted(results) == [1, 2, 3]  # the CCP (venue 0) has none
    for venue, result in results.items():
        expected = next(r[4] for r in ore[book.venues[venue]]["post"] if r[:4] == ["All"] * 4)
        assert math.isclose(result.total_usd, expected, rel_tol=RELATIVE)


# ---------------------------------------------------------------------------------------------
# Hand computations on tiny CRIFs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ccy", "tenor", "rw"), [("USD", "5y", 60), ("JPY", "10y", 23), ("BRL", "2w", 163)])
def test_one_ir_delta_is_risk_weight_times_sensitivity(ccy: str, tenor: str, rw: float) -> None:
    result = simm([rec("Risk_IRCurve", ccy, -1234.5, label1=tenor, label2="OIS")])
    assert close(result.total_usd, rw * 1234.5)
    ir = result.product_classes["RatesFX"].risk_classes["InterestRate"]
    assert close(ir.margin_types_usd["Delta"], rw * 1234.5) and close(ir.buckets_usd["Delta"][ccy], rw * 1234.5)


def test_two_tenors_and_two_sub_curves_in_one_currency() -> None:
    ws1, ws2 = 66 * 1000.0, 60 * -500.0  # 2y and 10y risk weights of regular currencies
    expected = math.sqrt(ws1**2 + ws2**2 + 2 * 0.80 * ws1 * ws2)  # tenor correlation 2y-10y: 0.80
    got = simm([rec("Risk_IRCurve", "EUR", 1000.0, label1="2y", label2="OIS"),
                rec("Risk_IRCurve", "EUR", -500.0, label1="10y", label2="OIS")])  # fmt: skip
    assert close(got.total_usd, expected)
    ws3 = 60 * 700.0  # same 10y tenor on another sub-curve: correlation 0.993 with the 10y OIS point
    expected = math.sqrt(ws1**2 + ws2**2 + ws3**2 + 2 * 0.80 * ws1 * ws2 + 2 * 0.80 * 0.993 * ws1 * ws3
                         + 2 * 0.993 * ws2 * ws3)  # fmt: skip
    got = simm([rec("Risk_IRCurve", "EUR", 1000.0, label1="2y", label2="OIS"),
                rec("Risk_IRCurve", "EUR", -500.0, label1="10y", label2="OIS"),
                rec("Risk_IRCurve", "EUR", 700.0, label1="10y", label2="Libor3m")])  # fmt: skip
    assert close(got.total_usd, expected)


def test_two_currencies_aggregate_with_gamma_and_g() -> None:
    k_usd, k_eur = 60 * 1000.0, 60 * 2000.0
    got = simm([rec("Risk_IRCurve", "USD", 1000.0, label1="5y"), rec("Risk_IRCurve", "EUR", -2000.0, label1="5y")])
    assert close(got.total_usd, math.sqrt(k_usd**2 + k_eur**2 + 2 * 0.32 * k_usd * -k_eur))
    # USD at four times its threshold (330m per bp): CR = 2, so g = 1/2 against an unconcentrated EUR
    s = 4 * 330e6
    k_usd = 60 * s * 2
    got = simm([rec("Risk_IRCurve", "USD", s, label1="5y"), rec("Risk_IRCurve", "EUR", -2000.0, label1="5y")])
    assert close(got.total_usd, math.sqrt(k_usd**2 + k_eur**2 + 2 * 0.32 * 0.5 * k_usd * -k_eur))


def test_inflation_and_cross_currency_basis() -> None:
    ws_c, ws_i, ws_x = 60 * 1000.0, 61 * -400.0, 21 * 300.0
    expected = math.sqrt(ws_c**2 + ws_i**2 + ws_x**2 + 2 * 0.24 * ws_c * ws_i + 2 * 0.04 * ws_c * ws_x
                         + 2 * 0.04 * ws_i * ws_x)  # fmt: skip
    got = simm([rec("Risk_IRCurve", "GBP", 1000.0, label1="5y"), rec("Risk_Inflation", "GBP", -400.0),
                rec("Risk_XCcyBasis", "GBP", 300.0)])  # fmt: skip
    assert close(got.total_usd, expected)


def test_fx_delta_weights_and_correlations() -> None:
    one = simm([rec("Risk_FX", "EUR", 1e6)])
    assert close(one.total_usd, 7.4e6)
    ws_eur, ws_gbp, ws_brl = 7.4 * 1e6, 7.4 * -2e6, 14.7 * 5e5  # BRL is a high-volatility currency
    expected = math.sqrt(ws_eur**2 + ws_gbp**2 + ws_brl**2 + 2 * 0.5 * ws_eur * ws_gbp + 2 * 0.25 * ws_eur * ws_brl
                         + 2 * 0.25 * ws_gbp * ws_brl)  # fmt: skip
    records = [rec("Risk_FX", "EUR", 1e6), rec("Risk_FX", "GBP", -2e6), rec("Risk_FX", "BRL", 5e5),
               rec("Risk_FX", "USD", 9e9)]  # fmt: skip
    got = simm(records)
    assert close(got.total_usd, expected)
    assert got.records_ignored == {"Risk_FX in the calculation currency USD": 1}


def test_equity_vega_gives_curvature_on_the_side_that_is_long_it() -> None:
    vega = 10_000.0  # USD per vol point, bucket 1 (delta risk weight 30), 1y expiry
    sigma = 30 * SQRT_365_14 / ALPHA
    vega_margin = 0.45 * HVR_EQ * vega * sigma
    cvr = 0.5 * 14 / 365 * sigma * vega
    call = simm([rec("Risk_EquityVol", "NAME", vega, bucket="1", label1="1y", product_class="Equity")], side="call")
    eq = call.product_classes["Equity"].risk_classes["Equity"]
    assert close(eq.margin_types_usd["Vega"], vega_margin)
    assert close(eq.margin_types_usd["Curvature"], cvr * (1 + LAMBDA0))  # θ = 0, λ = Φ⁻¹(99.5%)² − 1
    assert close(call.total_usd, vega_margin + cvr * (1 + LAMBDA0))
    post = simm([rec("Risk_EquityVol", "NAME", vega, bucket="1", label1="1y", product_class="Equity")], side="post")
    assert post.product_classes["Equity"].risk_classes["Equity"].margin_types_usd["Curvature"] == 0.0  # θ = −1, λ = 1
    assert close(post.total_usd, vega_margin)


def test_ir_vega_and_curvature() -> None:
    v = 2.0e5
    result = simm([rec("Risk_IRVol", "USD", v, label1="5y")])
    ir = result.product_classes["RatesFX"].risk_classes["InterestRate"]
    assert close(ir.margin_types_usd["Vega"], 0.23 * v)
    assert close(ir.margin_types_usd["Curvature"], HVR_IR**-2 * (0.5 * 14 / (5 * 365)) * v * (1 + LAMBDA0))


def test_credit_delta_correlations_and_the_residual_bucket() -> None:
    a, b, c = 84 * 1000.0, 84 * 500.0, 84 * -300.0  # bucket 3: 84 bp
    records = [rec("Risk_CreditQ", "A", 1000.0, "3", "5y", product_class="Credit"),
               rec("Risk_CreditQ", "A", 500.0, "3", "10y", product_class="Credit"),
               rec("Risk_CreditQ", "B", -300.0, "3", "5y", product_class="Credit"),
               rec("Risk_CreditQ", "R", 200.0, "Residual", "5y", product_class="Credit")]  # fmt: skip
    k3 = math.sqrt(a**2 + b**2 + c**2 + 2 * 0.93 * a * b + 2 * 0.46 * a * c + 2 * 0.46 * b * c)
    got = simm(records)
    assert close(got.total_usd, k3 + 343 * 200.0)  # Residual added outside the square root


def test_risk_classes_and_product_classes_aggregate() -> None:
    ir, fx, eq = 60 * 1000.0, 7.4 * 1e5, 30 * 2e4
    records = [rec("Risk_IRCurve", "USD", 1000.0, label1="5y"), rec("Risk_FX", "EUR", 1e5),
               rec("Risk_Equity", "E", 2e4, "1", product_class="Equity")]  # fmt: skip
    got = simm(records)
    rates_fx = math.sqrt(ir**2 + fx**2 + 2 * 0.14 * ir * fx)
    assert close(got.product_classes["RatesFX"].margin_usd, rates_fx)
    assert close(got.total_usd, rates_fx + eq)  # product classes add up


@pytest.mark.parametrize(
    ("risk_type", "qualifier", "bucket", "label1", "rw", "threshold"),
    [
        ("Risk_Equity", "E", "1", "", 30, 3e6),  # USD million per 1%
        ("Risk_CreditQ", "C", "2", "5y", 90, 0.17e6),  # per bp
        ("Risk_IRCurve", "JPY", "", "5y", 23, 61e6),
        ("Risk_FX", "MXN", "", "", 7.4, 880e6),
        ("Risk_Commodity", "GOLD", "12", "", 21, 1300e6),
    ],
)
def test_concentration_threshold_kicks_in_above_it(risk_type, qualifier, bucket, label1, rw, threshold) -> None:
    pc = {"Risk_Equity": "Equity", "Risk_CreditQ": "Credit", "Risk_Commodity": "Commodity"}.get(risk_type, "RatesFX")
    below = simm([rec(risk_type, qualifier, 0.99 * threshold, bucket, label1, product_class=pc)])
    assert close(below.total_usd, rw * 0.99 * threshold)
    above = simm([rec(risk_type, qualifier, -9 * threshold, bucket, label1, product_class=pc)])
    assert close(above.total_usd, rw * 9 * threshold * 3)  # CR = √9


def test_sensitivities_net_by_risk_factor_and_portfolios_stay_apart() -> None:
    records = [rec("Risk_IRCurve", "USD", 1000.0, label1="5y", portfolio_id="P1", trade_id="A"),
               rec("Risk_IRCurve", "USD", -400.0, label1="5Y", portfolio_id="P1", trade_id="B"),
               rec("Risk_IRCurve", "USD", 50.0, label1="5y", portfolio_id="P2")]  # fmt: skip
    assert close(simm(records).total_usd, 60 * 650.0)
    by = simm_by_portfolio(records)
    assert close(by["P1"].total_usd, 60 * 600.0) and close(by["P2"].total_usd, 60 * 50.0)


def test_schedule_records_are_left_out() -> None:
    result = simm([rec("Risk_IRCurve", "USD", 1e3, label1="5y"), rec("Risk_IRCurve", "USD", 1e9, label1="5y",
                                                                     im_model="Schedule")])  # fmt: skip
    assert close(result.total_usd, 60e3) and result.records_ignored == {"IMModel Schedule": 1}


def test_unplaceable_sensitivities_are_refused_by_name() -> None:
    with pytest.raises(SimmInputError, match=r"Label1: '4y' is not a Risk_IRCurve tenor"):
        simm([rec("Risk_IRCurve", "USD", 1.0, label1="4y")])
    with pytest.raises(SimmInputError, match=r"Bucket: '13' is not a Risk_Equity bucket of SIMM 2.6"):
        simm([rec("Risk_Equity", "E", 1.0, "13", product_class="Equity")])
    with pytest.raises(SimmInputError, match=r"Qualifier: 'EURO' is not a currency code"):
        simm([rec("Risk_FX", "EURO", 1.0)])


def test_parameter_file_is_versioned_and_checked() -> None:
    p = load_parameters("2.6")
    assert p.version == "2.6" and p.mpor_days == 10 and "ISDA SIMM" in p.source
    assert p.sigma_multiplier == pytest.approx(SQRT_365_14 / ALPHA, rel=1e-14)
    with pytest.raises(ValueError, match=r"no SIMM parameters for version '1.0'; available: 2.6"):
        load_parameters("1.0")


# ---------------------------------------------------------------------------------------------
# CRIF files
# ---------------------------------------------------------------------------------------------


def test_crif_round_trip(tmp_path: Path) -> None:
    records = read_crif(FIXTURES / "equity_credit.csv") + read_crif(FIXTURES / "commodity_addons.csv")
    path = tmp_path / "out.csv"
    write_crif(records, path)
    assert read_crif(path) == records
    assert (
        simm_by_portfolio(read_crif(path))["EQUITY_CREDIT"].total_usd
        == simm_by_portfolio(records)["EQUITY_CREDIT"].total_usd
    )


def test_crif_reader_accepts_ore_and_tab_files(tmp_path: Path) -> None:
    ore_style = tmp_path / "ore.csv"  # lower-case regulation columns, no AmountUSD (amounts in USD)
    ore_style.write_text(
        "TradeID,PortfolioID,ProductClass,RiskType,Qualifier,Bucket,Label1,Label2,AmountCurrency,Amount,"
        'collect_regulations,post_regulations\nT1,P1,RatesFX,Risk_IRCurve,USD,1,10y,Libor3m,USD,-1991.02,"ESA,USPR",'
        '"SEC,CFTC"\n'
    )
    ore = read_crif(ore_style)
    assert ore[0].collect_regulation == "ESA,USPR" and ore[0].amount_usd == -1991.02
    tab = tmp_path / "tab.csv"
    tab.write_text("risk_type\tqualifier\tlabel1\tamount_usd\tproduct_class\nrisk_ircurve\tusd\t5Y\t10\tratesfx\n")
    (r,) = read_crif(tab)
    assert (r.risk_type, r.qualifier, r.label1, r.product_class) == ("Risk_IRCurve", "USD", "5y", "RatesFX")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RiskType,Qualifier,Label1,AmountUSD,ProductClass\nRisk_IRCurve,USD,5y,10,RatesFX\n"
         "Risk_IRCurve,USD,5y,abc,RatesFX\n", "trades.csv line 3: AmountUSD: not a number: 'abc'"),
        ("RiskType,Qualifier,AmountUSD,ProductClass\nRisk_Bogus,USD,10,RatesFX\n",
         "trades.csv line 2: RiskType: unknown 'Risk_Bogus'; supported: Risk_IRCurve, Risk_Inflation"),
        ("RiskType,Qualifier,Amount,AmountCurrency,ProductClass\nRisk_FX,EUR,10,EUR,RatesFX\n",
         "trades.csv line 2: AmountUSD: required when AmountCurrency is EUR"),
        ("RiskType,Qualifier,AmountUSD,ProductClass\nRisk_FX,EUR,10,Rates\n",
         "trades.csv line 2: ProductClass: 'Rates' is not one of RatesFX, Credit, Equity, Commodity"),
        ("Qualifier,AmountUSD\nEUR,10\n", "trades.csv line 1: missing column(s) RiskType"),
        ("", "trades.csv: empty file"),
    ],
)  # fmt: skip
def test_crif_file_errors_name_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(text)
    with pytest.raises(CrifFileError) as err:
        read_crif(path)
    assert str(err.value).startswith(message), str(err.value)


def test_calculator_errors_name_the_file_line(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text("RiskType,Qualifier,Label1,AmountUSD,ProductClass\nRisk_IRCurve,USD,5y,1,RatesFX\n"
                    "Risk_IRCurve,USD,7y,1,RatesFX\n")  # fmt: skip
    with pytest.raises(SimmInputError, match=r"^trades.csv line 3: Label1: '7y' is not a Risk_IRCurve tenor"):
        simm(read_crif(path))


# ---------------------------------------------------------------------------------------------
# From the margin book
# ---------------------------------------------------------------------------------------------


def small_book() -> MarginBook:
    """A CCP and two dealers; position 0 at the CCP, 1-2 at DEALER_A, 3 at DEALER_B; DEALER_C has nothing."""
    factors = ("IR.USD.10Y", "FX.EURUSD", "EQ.SPX", "EQ.VIX", "CR.CDX.NA.HY.5Y", "VOL.IR.EUR", "VOL.EQ.SPX",
               "CR.ITRAXX.EUROPE.5Y", "CM.BRENT")  # fmt: skip
    load = [(0, 0, 1e9), (1, 0, -2e8), (1, 1, 3e6), (1, 5, 5e5), (2, 2, 4e6), (2, 3, -1e6), (2, 6, 2e5),
            (3, 4, -1e7), (3, 7, 2e7), (3, 8, 1e6), (1, 0, 5e7)]  # fmt: skip
    n, f = 4, len(factors)
    return MarginBook(
        factors=factors, factor_class=np.array([0, 1, 2, 2, 3, 0, 2, 3, 4], dtype=np.int8),
        factor_currency=np.zeros(f, dtype=np.int16), factor_depth_usd=np.full(f, 1e9),
        venues=("CCP", "DEALER_A", "DEALER_B", "DEALER_C"), venue_is_ccp=np.array([True, False, False, False]),
        managers=("M",), strategies=("S",), strategy_manager=np.zeros(1, dtype=np.int32), currencies=("USD",),
        position_ids=("P0", "P1", "P2", "P3"), position_venue=np.array([0, 1, 1, 2], dtype=np.int32),
        position_manager=np.zeros(n, dtype=np.int32), position_strategy=np.zeros(n, dtype=np.int32),
        position_currency=np.zeros(n, dtype=np.int16), position_class=np.array([0, 0, 2, 3], dtype=np.int8),
        position_notional_usd=np.ones(n), position_value_usd=np.zeros(n), position_expected_return_usd=np.zeros(n),
        position_liquidity_factor=np.zeros(n, dtype=np.int32),
        load_position=np.array([x[0] for x in load], dtype=np.int32),
        load_factor=np.array([x[1] for x in load], dtype=np.int32),
        load_delta=np.array([x[2] for x in load]), load_gamma=np.full(len(load), 7.0),
    )  # fmt: skip


def test_crif_from_book_translates_units_and_buckets() -> None:
    records = crif_from_book(small_book(), implied_vols={"VOL.EQ.SPX": 0.25})
    got = {(r.trade_id, r.risk_type, r.qualifier): r for r in records}
    assert {r.portfolio_id for r in records} == {"DEALER_A", "DEALER_B"}  # nothing from the CCP
    ir = got[("P1", "Risk_IRCurve", "USD")]
    assert (ir.label1, ir.label2, ir.product_class) == ("10y", "OIS", "RatesFX")
    assert ir.amount_usd == pytest.approx(-1.5e8 * 1e-4)  # two loadings on one factor add up, per bp
    assert got[("P1", "Risk_FX", "EUR")].amount_usd == pytest.approx(3e4)  # per 1%
    irv = got[("P1", "Risk_IRVol", "EUR")]
    assert irv.amount_usd == pytest.approx(5e5) and irv.label1 == "1y"  # vega·σ is SIMM's IR vega as it is
    spx, vix = got[("P2", "Risk_Equity", "SPX")], got[("P2", "Risk_Equity", "VIX")]
    assert (spx.bucket, spx.amount_usd, spx.product_class) == ("11", pytest.approx(4e4), "Equity")
    assert (vix.bucket, vix.amount_usd) == ("12", pytest.approx(-1e4))
    eqv = got[("P2", "Risk_EquityVol", "SPX")]
    assert eqv.amount_usd == pytest.approx(2e5 * 0.01 / 0.25) and eqv.bucket == "11"  # per vol point: vega·σ·0.01/σ
    hy, ig = got[("P3", "Risk_CreditQ", "CDX.NA.HY")], got[("P3", "Risk_CreditQ", "ITRAXX.EUROPE")]
    assert (hy.bucket, hy.label1, hy.amount_usd, hy.product_class) == ("8", "5y", pytest.approx(-1e3), "Credit")
    assert ig.bucket == "2"
    assert got[("P3", "Risk_Commodity", "BRENT")].bucket == "2"
    assert [r.portfolio_id for r in crif_from_book(small_book(), venue=2)] == ["DEALER_B"] * 3
    with pytest.raises(ValueError, match=r"venue: CCP .* is a CCP"):
        crif_from_book(small_book(), venue=0)


def test_simm_by_counterparty_covers_every_bilateral_venue() -> None:
    book = small_book()
    posted = simm_by_counterparty(book)
    assert sorted(posted) == [1, 2, 3] and posted[3].total_usd == 0.0
    # DEALER_B's one credit position: HY index in bucket 8 (343 bp), IG in bucket 2 (90 bp), γ 0.40 between them,
    # and crude oil (bucket 2, 29 per 1%) in the same Credit product class: ψ(credit, commodity) = 0.27
    ws_hy, ws_ig = 343 * -1e3, 90 * 2e3
    credit = math.sqrt(ws_hy**2 + ws_ig**2 + 2 * 0.40 * ws_hy * ws_ig)
    commodity = 29 * 1e4  # crude oil, bucket 2: 29 per 1%
    assert close(posted[2].product_classes["Credit"].risk_classes["CreditQualifying"].margin_usd, credit)
    assert close(posted[2].total_usd, math.sqrt(credit**2 + commodity**2 + 2 * 0.27 * credit * commodity))
    collected = simm_by_counterparty(book, side="call")
    assert collected[1].total_usd > posted[1].total_usd  # long vega: curvature charged when collecting only


# ---------------------------------------------------------------------------------------------
# The compute kind and the CLI
# ---------------------------------------------------------------------------------------------


def test_compute_kind_from_records_and_from_csv() -> None:
    text = (FIXTURES / "from_book.csv").read_text()
    from_csv = registry.run("margin.simm", {"crif_csv": text, "side": "post"})
    rows = [dict(zip(("TradeID", "PortfolioID", "ProductClass", "RiskType", "Qualifier", "Bucket", "Label1", "Label2",
                      "Amount", "AmountCurrency", "AmountUSD"), line.split(","), strict=False))
            for line in text.splitlines()[1:]]  # fmt: skip
    from_records = registry.run("margin.simm", {"crif": rows, "side": "post", "parameters_version": "2.6"})
    ore = _fixture("from_book")["portfolios"]
    for result in (from_csv, from_records):
        assert result["parameters_version"] == "2.6" and result["side"] == "post"
        for name, portfolio in result["portfolios"].items():
            expected = next(r[4] for r in ore[name]["post"] if r[:4] == ["All"] * 4)
            assert math.isclose(portfolio["total_usd"], expected, rel_tol=RELATIVE)
    assert not registry.get("margin.simm").chunkable


@pytest.mark.parametrize(
    ("inputs", "field", "reason"),
    [
        ({}, "crif", "give the records as crif"),
        ({"crif": [], "crif_csv": ""}, "crif", "not both"),
        ({"crif": [{"RiskType": "Risk_FX", "Qualifier": "EUR", "AmountUSD": "x", "ProductClass": "RatesFX"}]},
         "crif[0].AmountUSD", "not a number"),
        ({"crif": [{"RiskType": "Risk_IRCurve", "Qualifier": "USD", "AmountUSD": 1, "ProductClass": "RatesFX",
                    "Label1": "4y"}]}, "crif[0].Label1", "'4y' is not a Risk_IRCurve tenor"),
        ({"crif_csv": "RiskType,Qualifier,AmountUSD\nRisk_FX,EUR,1\n"}, "crif_csv", "line 2: ProductClass"),
        ({"crif": [], "parameters_version": "0.9"}, "parameters_version", "no SIMM parameters for '0.9'"),
        ({"crif": [], "sides": "post"}, "sides", "is not an input of this kind"),
    ],
)  # fmt: skip
def test_compute_kind_refusals_name_the_field(inputs: dict, field: str, reason: str) -> None:
    with pytest.raises(registry.InvalidInputs) as err:
        registry.run("margin.simm", inputs)
    assert err.value.field == field and reason in err.value.reason, (err.value.field, err.value.reason)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _ore_total(case: str, portfolio: str, side: str) -> float:
    """ORE's total for a portfolio and side, from the fixture's report rows."""
    rows = json.loads((FIXTURES / f"{case}.json").read_text())["portfolios"][portfolio][side]
    (total,) = [r[-1] for r in rows if r[:4] == ["All", "All", "All", "All"]]
    return float(total)


def test_cli_json_and_table() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["margin", "simm", str(FIXTURES / "rates_fx.csv"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ore = _ore_total("rates_fx", "RATESFX_SHORT_VOL", "call")
    assert math.isclose(data["portfolios"]["RATESFX_SHORT_VOL"]["total_usd"], ore, rel_tol=RELATIVE)
    result = runner.invoke(app, ["margin", "simm", str(FIXTURES / "rates_fx.csv"), "--side", "post"])
    assert result.exit_code == 0, result.output
    text = " ".join(_ANSI.sub("", result.stdout).split())
    posted = _ore_total("rates_fx", "RATESFX_SHORT_VOL", "post")
    assert "RATESFX_SHORT_VOL" in text and "InterestRate" in text and f"{posted / 1e6:,.2f}m" in text


def test_cli_refusals(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_text("RiskType,Qualifier,AmountUSD,ProductClass\nRisk_FX,EUR,abc,RatesFX\n")
    result = runner.invoke(app, ["margin", "simm", str(bad)])
    assert result.exit_code == 1
    assert "bad.csv line 2: AmountUSD: not a number: 'abc'" in " ".join(_ANSI.sub("", result.stderr).split())
    result = runner.invoke(app, ["margin", "simm", str(FIXTURES / "rates_fx.csv"), "--parameters", "0.1"])
    assert result.exit_code == 2 and "--parameters" in result.stderr


def test_scaling_and_sign_limits() -> None:
    """Below the concentration thresholds SIMM is homogeneous of degree one, and collecting on −s is posting on s."""
    records = read_crif(FIXTURES / "equity_credit.csv")
    doubled = [CrifRecord(**{**_fields(r), "amount_usd": 2 * r.amount_usd, "amount": None}) for r in records]
    negated = [CrifRecord(**{**_fields(r), "amount_usd": -r.amount_usd, "amount": None}) for r in records]
    base_call, base_post = simm(records, side="call"), simm(records, side="post")
    assert math.isclose(simm(doubled, side="call").total_usd, 2 * base_call.total_usd, rel_tol=1e-12)
    assert math.isclose(simm(negated, side="call").total_usd, base_post.total_usd, rel_tol=1e-12)
    assert math.isclose(simm(negated, side="post").total_usd, base_call.total_usd, rel_tol=1e-12)


def _fields(r: CrifRecord) -> dict[str, Any]:
    return {name: getattr(r, name) for name in CrifRecord.__slots__ if name != "origin"}
