"""The XVA market inputs against QuantLib: log-linear discount curves and the CDS hazard bootstrap, plus the
boundary checks that name the field at fault."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pytest
import QuantLib as ql
from pydantic import ValidationError

from engines.xva.market import (
    Correlation,
    CreditCurve,
    DiscountCurve,
    HullWhiteSpec,
    Market,
    add_months,
    bootstrap_hazard,
    sample_market,
    year_time,
)

AS_OF = date(2025, 6, 30)


def ql_date(d: date) -> ql.Date:
    return ql.Date(d.day, d.month, d.year)


def day_curve() -> tuple[DiscountCurve, list[int]]:
    """A curve whose nodes fall on whole days, so QuantLib's date-based nodes are the same times."""
    days = [91, 182, 365, 730, 1095, 1825, 2555, 3650, 7300, 10950]
    zeros = [0.043, 0.0425, 0.041, 0.0392, 0.0385, 0.0383, 0.0387, 0.0395, 0.0408, 0.04]
    return DiscountCurve(tenors=[d / 365 for d in days], zero_rates=zeros), days


def ql_curve(curve: DiscountCurve, days: list[int]) -> ql.YieldTermStructureHandle:
    today = ql_date(AS_OF)
    dates = [today] + [today + d for d in days]
    dfs = [1.0] + [float(curve.discount(d / 365)) for d in days]
    ts = ql.DiscountCurve(dates, dfs, ql.Actual365Fixed())
    ts.enableExtrapolation()
    return ql.YieldTermStructureHandle(ts)


def test_discount_curve_matches_quantlib_log_linear_inside_and_beyond_the_nodes():
    ql.Settings.instance().evaluationDate = ql_date(AS_OF)
    curve, days = day_curve()
    handle = ql_curve(curve, days)
    times = np.array([0.01, 0.1, 0.3, 0.77, 1.5, 4.2, 9.99, 17.3, 29.0, 35.0, 45.0])
    ours = curve.discount(times)
    theirs = np.array([handle.discount(float(t)) for t in times])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg="log-linear discount factors differ from QuantLib")
    # the instantaneous forward is flat between nodes: QuantLib's forward inside a segment
    mids = np.array([0.3, 1.5, 4.2, 17.3, 40.0])
    ql_fwd = [handle.forwardRate(float(t), float(t), ql.Continuous).rate() for t in mids]
    np.testing.assert_allclose(curve.forward(mids), ql_fwd, atol=1e-8)


def test_bootstrapped_hazards_reprice_the_quotes_with_quantlibs_midpoint_cds_engine():
    """Our piecewise-flat hazards, handed to QuantLib as a backward-flat hazard curve, give back each quote as the
    fair spread of QuantLib's mid-point engine (dates midpoint vs our time midpoint: < 0.05 bp)."""
    today = ql_date(AS_OF)
    ql.Settings.instance().evaluationDate = today
    discount_curve, days = day_curve()
    credit = CreditCurve(
        tenors=[0.5, 1, 3, 5, 7, 10], spreads=[0.006, 0.008, 0.011, 0.014, 0.016, 0.0175], recovery=0.35
    )
    hz = bootstrap_hazard(credit, AS_OF, discount_curve)
    node_dates = [today] + [today + round(float(t) * 365) for t in hz.times]
    hazard_ts = ql.HazardRateCurve(node_dates, [float(hz.hazards[0]), *map(float, hz.hazards)], ql.Actual365Fixed())
    hazard_ts.enableExtrapolation()
    engine = ql.MidPointCdsEngine(
        ql.DefaultProbabilityTermStructureHandle(hazard_ts), credit.recovery, ql_curve(discount_curve, days)
    )
    for tenor, quote in zip(credit.tenors, credit.spreads, strict=True):
        maturity = add_months(AS_OF, round(12 * tenor))
        schedule = ql.Schedule(
            today,
            ql_date(maturity),
            ql.Period(3, ql.Months),
            ql.NullCalendar(),
            ql.Unadjusted,
            ql.Unadjusted,
            ql.DateGeneration.Backward,
            False,
        )
        cds = ql.CreditDefaultSwap(
            ql.Protection.Buyer,
            1e6,
            quote,
            schedule,
            ql.Unadjusted,
            ql.Actual360(),
            True,
            True,
            today,
            ql.FaceValueClaim(),
            ql.Actual360(),
            False,
        )
        cds.setPricingEngine(engine)
        assert cds.fairSpread() == pytest.approx(quote, abs=5e-6), f"{tenor}y: QuantLib fair spread vs quote"
    # survival probabilities agree at the nodes too
    for t in hz.times:
        assert float(hz.survival(t)) == pytest.approx(hazard_ts.survivalProbability(float(t)), rel=1e-10)


def test_hazard_curve_is_flat_for_a_flat_spread_and_near_the_credit_triangle():
    curve = DiscountCurve.flat(0.03)
    hz = bootstrap_hazard(CreditCurve(spreads=[0.012] * 5, recovery=0.4), AS_OF, curve)
    assert np.ptp(hz.hazards) < 2e-5
    # credit triangle with ACT/360 premiums: s = h (1 - R) 360/365
    assert hz.hazards[2] == pytest.approx(0.012 / 0.6 * 365 / 360, rel=0.01)


def test_sample_market_is_consistent():
    m = sample_market()
    assert m.currency_list == ("USD", "EUR", "GBP", "JPY", "CHF")
    assert len(m.driver_names) == 14
    corr = m.correlation_matrix()
    assert np.allclose(corr, corr.T) and np.linalg.eigvalsh(corr).min() > 0
    assert year_time(m.as_of, add_months(m.as_of, 12)) == pytest.approx(1.0, abs=0.003)


def _market_dict() -> dict:
    return sample_market().model_dump(mode="json")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["fx"].pop("JPY"), "fx.JPY: the currency has a curve but no FX spot"),
        (lambda d: d["currencies"].pop("USD"), "currencies: USD (the base currency) is required"),
        (lambda d: d["equities"]["SPX"].update(currency="AUD"), "equities.SPX.currency"),
        (lambda d: d["correlation"]["drivers"].__setitem__(0, "IR.AUD"), "correlation.drivers[0]"),
        (
            lambda d: d["currencies"]["EUR"]["discount"].update(tenors=[1.0, 0.5], zero_rates=[0.02, 0.02]),
            "discount.tenors",
        ),
    ],
)
def test_market_refusals_name_the_field(change, expected):
    d = _market_dict()
    change(d)
    with pytest.raises(ValidationError, match=re.escape(expected)):
        Market.model_validate(d)


def test_correlation_must_be_positive_semidefinite():
    bad = [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]
    with pytest.raises(ValidationError, match="not positive semi-definite"):
        Correlation(drivers=["IR.USD", "IR.EUR", "FX.EUR"], matrix=bad)
    with pytest.raises(ValidationError, match=r"matrix\[0\]\[1\]: not symmetric"):
        Correlation(drivers=["IR.USD", "IR.EUR"], matrix=[[1, 0.5], [0.4, 1]])


def test_hull_white_spec_checks():
    with pytest.raises(ValidationError, match="volatilities: one more σ"):
        HullWhiteSpec(volatilities=[0.01, 0.01], volatility_times=[])
    with pytest.raises(ValidationError, match="swaptions: calibrate='constant' needs"):
        HullWhiteSpec(calibrate="constant")


def test_market_file_round_trip_and_errors_name_file_and_field(tmp_path):
    from engines.xva.files import BookFileError, load_market, write_market

    m = sample_market()
    write_market(m, tmp_path / "m.json")
    assert load_market(tmp_path / "m.json") == m
    d = m.model_dump(mode="json")
    d["fx"]["EUR"]["spot"] = -1.08
    (tmp_path / "bad.json").write_text(__import__("json").dumps(d))
    with pytest.raises(BookFileError, match=r"bad\.json: fx\.EUR\.spot: Input should be greater than 0"):
        load_market(tmp_path / "bad.json")
