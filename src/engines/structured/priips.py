"""PRIIPs risk indicators of a category 3 PRIIP from a Monte Carlo distribution the caller simulates.

A structured note sold to retail investors in the EU needs a key information document (Regulation
(EU) No 1286/2014) whose risk and reward figures follow Delegated Regulation (EU) 2017/653 as
amended by Delegated Regulation (EU) 2021/2268. A note whose value at maturity depends on its
underlyings is a category 3 PRIIP (Annex II, Part 1): its figures are read off a simulated
distribution of the note's value. This module turns such a distribution into those figures; it
simulates nothing, so the pricing engine that produced the paths stays the single source of the
distribution and the rules below stay testable on exact inputs.

Market risk measure (Annex II, Part 1, category 3). The VaR is the value of the PRIIP at the 97.5 %
confidence level at the end of the recommended holding period (RHP), discounted to today with the
expected risk-free discount factor, as a fraction of the price (the percentage of the amount
invested that is returned). With VaR_return_space = ln(VaR_price_space), the VaR-equivalent
volatility is

    VEV = (sqrt(3.842 - 2 VaR_return_space) - 1.96) / sqrt(T),      T = RHP in years,

which gives back σ when ln(V/P) is normal with mean -σ²T/2 and deviation σ√T. The MRM class is 1
below 0.5 %, 2 from 0.5 % to below 5 %, 3 below 12 %, 4 below 20 %, 5 below 30 %, 6 below 80 % and
7 from 80 % (the table of point 2, lower bounds inclusive as in the 2021 wording). The percentile
is numpy's linear-interpolation percentile of the simulated values. A VaR of zero (the note
returns nothing at the 2.5th percentile) has an infinite VEV and MRM 7.

Credit risk measure (Annex II, Part 2). The issuer's long-term rating (S&P/Fitch or Moody's
scale) gives a credit quality step by the standard ECAI mapping (AAA to AA-: 1, A: 2, BBB: 3,
BB: 4, B: 5, CCC and below, and default: 6), and the step gives the credit risk class (CQS 0 and 1:
CRM 1, then CQS n: CRM n). Annex II adjusts the step to the maturity or RHP when that is at most
one year (downwards) or more than 12 years (upwards); those adjusted tables are not implemented
here, so such an RHP is refused rather than answered unadjusted. Unrated issuers, for which the
regulation prescribes default assessments, are refused as well.

Summary risk indicator (Annex II, Part 3; presented per Annex III). The SRI combines the MRM
(rows 1..7) and CRM (columns 1..6) by the table in `SRI_TABLE`: up to CRM 2 the SRI is the MRM;
CRM 3 lifts MRM 1-2 to 3; CRM 4 and 5 lift MRM 1-4 to 5; CRM 6 lifts MRM 1-5 to 6; MRM 7 is 7.

Performance scenarios (Annex IV as amended by 2021/2268, shown per Annex V). For category 3 the
unfavourable, moderate and favourable scenarios are the 10th, 50th and 90th percentiles of the
simulated values at the end of each holding period shown (undiscounted), and the stress scenario is
the extreme percentile of a distribution simulated with stressed volatility: the 1st percentile for
a holding period of one year or less and the 5th for longer ones. Which holding periods to show
(the RHP, and 1 year when the RHP is longer) is the caller's choice of mapping keys. Each scenario
is reported as the amount returned per `investment` (10,000 by default) bought at `price`, and as
a return: the average return per year, (amount / investment)^(1/t) - 1, for a holding period of
a year or more, and the plain return, not annualised, for a shorter one. Stressed volatility can in
rare cases put the stress value above the unfavourable one; the stress scenario is meant to show
what the unfavourable one does not (Annex IV, point 2), so it is then shown at the unfavourable
value and flagged `stress_capped`. Costs are not deducted here: pass values net of costs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engines.registry import InvalidInputs

VAR_PERCENTILE = 2.5
"""The VaR is taken at the 97.5 % confidence level: the 2.5th percentile of the value."""

MRM_UPPER_BOUNDS: tuple[float, ...] = (0.005, 0.05, 0.12, 0.20, 0.30, 0.80)
"""VEV upper bounds (exclusive) of MRM classes 1..6; class 7 is VEV >= 80 %."""

SRI_TABLE: dict[int, tuple[int, ...]] = {
    1: (1, 1, 3, 5, 5, 6),
    2: (2, 2, 3, 5, 5, 6),
    3: (3, 3, 3, 5, 5, 6),
    4: (4, 4, 4, 5, 5, 6),
    5: (5, 5, 5, 5, 5, 6),
    6: (6, 6, 6, 6, 6, 6),
    7: (7, 7, 7, 7, 7, 7),
}
"""SRI by MRM class (key) and CRM class (position 0..5 for CRM 1..6)."""

CQS_TO_CRM: dict[int, int] = {0: 1, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6}
"""Credit risk class of each (maturity-adjusted) credit quality step."""

SCENARIO_PERCENTILES: dict[str, float] = {"unfavourable": 10.0, "moderate": 50.0, "favourable": 90.0}
STRESS_PERCENTILE_SHORT = 1.0
"""Stress percentile for a holding period of one year or less."""
STRESS_PERCENTILE_LONG = 5.0
"""Stress percentile for a holding period longer than one year."""

CRM_UNADJUSTED_RHP_YEARS = (1.0, 12.0)
"""The credit quality step needs no maturity adjustment for an RHP in (1, 12] years."""

_YEAR_TOLERANCE = 1e-9

# S&P and Fitch long-term scale: letter grade (with optional +/-) -> credit quality step.
_SP_STEPS: dict[str, int] = {"AAA": 1, "AA": 1, "A": 2, "BBB": 3, "BB": 4, "B": 5, "CCC": 6, "CC": 6, "C": 6}
_SP_MODIFIABLE = frozenset({"AA", "A", "BBB", "BB", "B", "CCC"})
_DEFAULT_GRADES = frozenset({"D", "SD", "RD"})
# Moody's long-term scale (upper-cased): grade -> credit quality step; numeric modifiers 1-3 where they exist.
_MOODYS_STEPS: dict[str, int] = {"AA": 1, "A": 2, "BAA": 3, "BA": 4, "B": 5, "CAA": 6}
_MOODYS_PLAIN: dict[str, int] = {"AAA": 1, "CA": 6, "C": 6}
_SP_PATTERN = re.compile(r"^(AAA|AA|A|BBB|BB|B|CCC|CC|C)([+-]?)$")
_MOODYS_PATTERN = re.compile(r"^(AA|A|BAA|BA|B|CAA)([123])$")


def _json_float(x: float) -> float | None:
    """A finite float as itself, a non-finite one as None (JSON has no infinity)."""
    return float(x) if math.isfinite(x) else None


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _values(field: str, values: ArrayLike) -> NDArray[np.float64]:
    """A non-empty, finite, non-negative float array (flattened) of simulated values."""
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInputs(field, "must be an array of numbers") from None
    if arr.size == 0:
        raise InvalidInputs(field, "must contain at least one simulated value")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputs(field, "must be finite (no NaN or infinity)")
    if np.any(arr < 0):
        raise InvalidInputs(
            field,
            f"must be non-negative, got {float(np.min(arr))!r}; a note that can lose more than the amount "
            "invested is a category 1 PRIIP, not category 3",
        )
    return arr


def _positive(field: str, value: float) -> float:
    """A finite, strictly positive float."""
    if isinstance(value, bool | str | bytes):
        raise InvalidInputs(field, f"must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidInputs(field, f"must be a number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise InvalidInputs(field, f"must be a finite positive number, got {value!r}")
    return x


def _class(field: str, value: int, top: int) -> int:
    """An integer class in 1..top."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= int(value) <= top:
        raise InvalidInputs(field, f"must be an integer class from 1 to {top}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------
# Market risk measure (Annex II, Part 1)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketRisk:
    """The category 3 market risk measure: VaR in return space, VaR-equivalent volatility and MRM class."""

    var_return_space: float
    vev: float
    mrm: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; an infinite VaR or VEV (a zero VaR in price space) is None."""
        return {"var_return_space": _json_float(self.var_return_space), "vev": _json_float(self.vev), "mrm": self.mrm}


def mrm_class(vev: float) -> int:
    """The MRM class (1..7) of a VaR-equivalent volatility, as a fraction (0.05 is 5 %)."""
    if isinstance(vev, bool | str | bytes):
        raise InvalidInputs("vev", f"must be a number, got {vev!r}")
    try:
        x = float(vev)
    except (TypeError, ValueError):
        raise InvalidInputs("vev", f"must be a number, got {vev!r}") from None
    if math.isnan(x) or x < 0:
        raise InvalidInputs("vev", f"must be a non-negative number, got {vev!r}")
    for cls, bound in enumerate(MRM_UPPER_BOUNDS, start=1):
        if x < bound:
            return cls
    return 7


def market_risk(values_at_rhp: np.ndarray, price: float, rhp_years: float, discount_factor: float) -> MarketRisk:
    """The MRM of a category 3 PRIIP from simulated values at the end of the RHP.

    `values_at_rhp` are the simulated (undiscounted) values of the note at the RHP, in the unit of
    `price`; `discount_factor` is the expected risk-free discount factor from today to the RHP.
    The VaR in price space is the 2.5th percentile of the discounted values over the price.
    """
    values = _values("values_at_rhp", values_at_rhp)
    p = _positive("price", price)
    t = _positive("rhp_years", rhp_years)
    df = _positive("discount_factor", discount_factor)
    var_price_space = float(np.percentile(values, VAR_PERCENTILE)) * df / p
    if var_price_space <= 0.0:
        return MarketRisk(var_return_space=-math.inf, vev=math.inf, mrm=7)
    var_return_space = math.log(var_price_space)
    # A VaR above the price (a near-certain gain) gives a negative VEV: the lowest class.
    vev = (math.sqrt(max(3.842 - 2.0 * var_return_space, 0.0)) - 1.96) / math.sqrt(t)
    return MarketRisk(var_return_space=var_return_space, vev=vev, mrm=mrm_class(max(vev, 0.0)))


# ---------------------------------------------------------------------------------------------
# Credit risk measure (Annex II, Part 2)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditRisk:
    """The issuer's rating as given, its credit quality step and the credit risk class."""

    rating: str
    credit_quality_step: int
    crm: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return {"rating": self.rating, "credit_quality_step": self.credit_quality_step, "crm": self.crm}


def credit_quality_step(rating: str) -> int:
    """The credit quality step (1..6) of a long-term rating on the S&P/Fitch or Moody's scale.

    Case-insensitive; S&P/Fitch modifiers (+/-) and Moody's numeric modifiers (1-3) are accepted.
    Unrated issuers ("NR", "WR", empty) are refused: the regulation's default assessments for them
    are not implemented.
    """
    if not isinstance(rating, str):
        raise InvalidInputs("rating", f"must be a rating string such as 'A+' or 'Baa1', got {rating!r}")
    text = rating.strip().upper()
    if text in _DEFAULT_GRADES:
        return 6
    if text in _MOODYS_PLAIN:
        return _MOODYS_PLAIN[text]
    match = _MOODYS_PATTERN.match(text)
    if match:
        return _MOODYS_STEPS[match.group(1)]
    match = _SP_PATTERN.match(text)
    if match and (not match.group(2) or match.group(1) in _SP_MODIFIABLE):
        return _SP_STEPS[match.group(1)]
    if text in {"", "NR", "WR", "N/A", "NA", "UNRATED", "NOT RATED"}:
        raise InvalidInputs(
            "rating",
            f"{rating!r} is not a rating: unrated issuers are not supported (the default credit assessment "
            "of Annex II, Part 2 is not implemented); give the issuer's or guarantor's long-term rating",
        )
    raise InvalidInputs(
        "rating",
        f"unknown rating {rating!r}; expected an S&P/Fitch (e.g. 'AA-', 'BBB+') or Moody's (e.g. 'Aa2', 'Baa1') "
        "long-term rating",
    )


def credit_risk(rating: str, rhp_years: float) -> CreditRisk:
    """The CRM of a note whose payments depend on the issuer with this long-term rating.

    The credit quality step is used unadjusted, which Annex II allows only for a maturity or RHP
    of more than one year and at most 12 years; other RHPs are refused.
    """
    t = _positive("rhp_years", rhp_years)
    low, high = CRM_UNADJUSTED_RHP_YEARS
    if t <= low + _YEAR_TOLERANCE or t > high + _YEAR_TOLERANCE:
        raise InvalidInputs(
            "rhp_years",
            f"{t!r} years: the credit quality step must be adjusted for a maturity or RHP of at most one year or "
            "of more than 12 years (Annex II, Part 2), which is not implemented; supported RHPs are in (1, 12] years",
        )
    step = credit_quality_step(rating)
    return CreditRisk(rating=rating.strip(), credit_quality_step=step, crm=CQS_TO_CRM[step])


# ---------------------------------------------------------------------------------------------
# Summary risk indicator (Annex II, Part 3)
# ---------------------------------------------------------------------------------------------


def summary_risk_indicator(mrm: int, crm: int) -> int:
    """The SRI (1..7) of an MRM class (1..7) and a CRM class (1..6)."""
    m = _class("mrm", mrm, 7)
    c = _class("crm", crm, 6)
    return SRI_TABLE[m][c - 1]


# ---------------------------------------------------------------------------------------------
# Performance scenarios (Annex IV)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioOutcome:
    """One scenario at one holding period.

    `percentile` is of the distribution it was read from (the stressed one for the stress
    scenario); `value` is the note's value per unit of notional at the end of the holding period;
    `amount` is what `investment` bought at the price would return; `average_return_per_year`
    is annualised for a holding period of a year or more and the plain return for a shorter one.
    """

    percentile: float
    value: float
    amount: float
    average_return_per_year: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return {
            "percentile": float(self.percentile),
            "value": float(self.value),
            "amount": float(self.amount),
            "average_return_per_year": float(self.average_return_per_year),
        }


@dataclass(frozen=True)
class HoldingPeriodScenarios:
    """The four scenarios at the end of one holding period."""

    holding_period_years: float
    return_is_annualised: bool
    stress: ScenarioOutcome
    unfavourable: ScenarioOutcome
    moderate: ScenarioOutcome
    favourable: ScenarioOutcome
    stress_capped: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return {
            "holding_period_years": float(self.holding_period_years),
            "return_is_annualised": self.return_is_annualised,
            "stress": self.stress.to_dict(),
            "unfavourable": self.unfavourable.to_dict(),
            "moderate": self.moderate.to_dict(),
            "favourable": self.favourable.to_dict(),
            "stress_capped": self.stress_capped,
        }


@dataclass(frozen=True)
class PerformanceScenarios:
    """The performance scenarios of every holding period shown, in increasing holding period."""

    investment: float
    price: float
    periods: tuple[HoldingPeriodScenarios, ...]

    def period(self, holding_period_years: float) -> HoldingPeriodScenarios:
        """The scenarios of one holding period (matched to within a nanoyear)."""
        for p in self.periods:
            if abs(p.holding_period_years - holding_period_years) <= _YEAR_TOLERANCE:
                return p
        shown = ", ".join(f"{p.holding_period_years:g}" for p in self.periods)
        raise KeyError(f"no holding period {holding_period_years!r}; shown: {shown}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return {
            "investment": float(self.investment),
            "price": float(self.price),
            "periods": [p.to_dict() for p in self.periods],
        }


def _holding_periods(field: str, values: Mapping[float, np.ndarray]) -> dict[float, NDArray[np.float64]]:
    """Validated holding periods (positive years) and their simulated values, by increasing period."""
    if not isinstance(values, Mapping) or not values:
        raise InvalidInputs(field, "must map at least one holding period in years to simulated values")
    out: dict[float, NDArray[np.float64]] = {}
    for key, arr in values.items():
        t = _positive(field, key)
        out[t] = _values(field, arr)
    return dict(sorted(out.items()))


def _outcome(percentile: float, value: float, price: float, investment: float, years: float) -> ScenarioOutcome:
    amount = investment * value / price
    growth = amount / investment
    ret = growth ** (1.0 / years) - 1.0 if years >= 1.0 - _YEAR_TOLERANCE else growth - 1.0
    return ScenarioOutcome(percentile=percentile, value=value, amount=amount, average_return_per_year=ret)


def stress_percentile(holding_period_years: float) -> float:
    """The stress scenario's percentile: 1st for a holding period of a year or less, 5th for longer."""
    t = _positive("holding_period_years", holding_period_years)
    return STRESS_PERCENTILE_SHORT if t <= 1.0 + _YEAR_TOLERANCE else STRESS_PERCENTILE_LONG


def performance_scenarios(
    values: Mapping[float, np.ndarray],
    stressed_values: Mapping[float, np.ndarray],
    price: float,
    investment: float = 10_000.0,
) -> PerformanceScenarios:
    """Stress, unfavourable, moderate and favourable scenarios for each holding period.

    `values` and `stressed_values` map each holding period in years to simulated redemption values
    (undiscounted, per unit of notional) at its end, under the pricing and the stressed volatility
    respectively; both must show the same holding periods. `price` is the price per unit of
    notional the investor pays.
    """
    p = _positive("price", price)
    inv = _positive("investment", investment)
    base = _holding_periods("values", values)
    stressed = _holding_periods("stressed_values", stressed_values)
    if len(base) != len(stressed) or any(abs(a - b) > _YEAR_TOLERANCE for a, b in zip(base, stressed, strict=True)):
        raise InvalidInputs(
            "stressed_values",
            f"must show the same holding periods as values: {sorted(base)} vs {sorted(stressed)}",
        )
    periods = []
    for (t, arr), stressed_arr in zip(base.items(), stressed.values(), strict=True):
        outcomes = {
            name: _outcome(q, float(np.percentile(arr, q)), p, inv, t) for name, q in SCENARIO_PERCENTILES.items()
        }
        q_stress = stress_percentile(t)
        stress_value = float(np.percentile(stressed_arr, q_stress))
        capped = stress_value > outcomes["unfavourable"].value
        if capped:
            stress_value = outcomes["unfavourable"].value
        periods.append(
            HoldingPeriodScenarios(
                holding_period_years=t,
                return_is_annualised=t >= 1.0 - _YEAR_TOLERANCE,
                stress=_outcome(q_stress, stress_value, p, inv, t),
                stress_capped=capped,
                **outcomes,
            )
        )
    return PerformanceScenarios(investment=inv, price=p, periods=tuple(periods))


# ---------------------------------------------------------------------------------------------
# All indicators together
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriipsIndicators:
    """MRM, CRM, SRI and performance scenarios of one note."""

    rhp_years: float
    market_risk: MarketRisk
    credit_risk: CreditRisk
    sri: int
    performance_scenarios: PerformanceScenarios

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return {
            "rhp_years": float(self.rhp_years),
            "market_risk": self.market_risk.to_dict(),
            "credit_risk": self.credit_risk.to_dict(),
            "sri": self.sri,
            "performance_scenarios": self.performance_scenarios.to_dict(),
        }


def priips_indicators(
    values_at_rhp: np.ndarray,
    price: float,
    rhp_years: float,
    discount_factor: float,
    rating: str,
    scenario_values: Mapping[float, np.ndarray],
    stressed_scenario_values: Mapping[float, np.ndarray],
    investment: float = 10_000.0,
) -> PriipsIndicators:
    """The PRIIPs indicators of a category 3 note; the scenarios must include the RHP itself."""
    t = _positive("rhp_years", rhp_years)
    mr = market_risk(values_at_rhp, price, t, discount_factor)
    cr = credit_risk(rating, t)
    scenarios = performance_scenarios(scenario_values, stressed_scenario_values, price, investment)
    if not any(abs(p.holding_period_years - t) <= _YEAR_TOLERANCE for p in scenarios.periods):
        raise InvalidInputs("scenario_values", f"must include the recommended holding period {t!r} years")
    return PriipsIndicators(
        rhp_years=t,
        market_risk=mr,
        credit_risk=cr,
        sri=summary_risk_indicator(mr.mrm, cr.crm),
        performance_scenarios=scenarios,
    )
