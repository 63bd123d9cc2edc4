"""Market inputs of the XVA engine: discount curves, Hull–White settings, FX, equities, correlations and credit.

The boundary model `Market` validates what the desk feeds in; `sample_market()` is a bundled, internally
consistent market for the five currencies the desk trades (USD, EUR, GBP, JPY, CHF). Conventions:

- Times are years from the valuation date `as_of` on ACT/365F; rates, spreads and vols are decimals per year.
- A discount curve holds continuously compounded zero rates at tenors; discount factors are interpolated
  log-linearly (piecewise-flat instantaneous forwards), and extrapolated beyond the last tenor with the last
  forward — QuantLib's `DiscountCurve` (LogLinear) does the same, so the two agree node for node.
- The base (numeraire) currency is USD; an FX spot is the price of one unit of the currency in USD.
- Model drivers have stable names: ``IR.<CCY>`` (the Hull–White factor of a currency), ``FX.<CCY>`` (the
  currency against USD) and ``EQ.<NAME>`` (an equity). `Correlation` lists some or all of them; a driver it
  leaves out is independent of the others.
- A credit curve is CDS par spreads by tenor and a recovery rate; `hazard_curve` bootstraps piecewise-flat
  hazard rates with QuantLib's mid-point CDS conventions (quarterly premiums, ACT/360 accrual, accrual paid on
  default, default mid-period), so our survival probabilities are checkable against QuantLib's bootstrap.
"""

from __future__ import annotations

import calendar
import itertools
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.optimize import brentq

CURRENCIES: tuple[str, ...] = ("USD", "EUR", "GBP", "JPY", "CHF")
"""The currencies the engine supports, in the order of every per-currency array."""

Currency = Literal["USD", "EUR", "GBP", "JPY", "CHF"]
BASE_CURRENCY = "USD"
DAYS_PER_YEAR = 365.0
"""ACT/365F: the engine's clock (model time) counts calendar days over 365."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------


def add_months(d: date, months: int) -> date:
    """`d` moved by whole months, the day clipped to the month's length (31 Jan + 1M = 28/29 Feb)."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(d.day, calendar.monthrange(year, month + 1)[1]))


def year_time(as_of: date, d: date) -> float:
    """Model time of `d`: calendar days from `as_of` over 365 (ACT/365F)."""
    return (d - as_of).days / DAYS_PER_YEAR


def _check_nodes(times: list[float], values: list[float], what: str, names: tuple[str, str]) -> None:
    if len(times) != len(values):
        raise ValueError(f"{what}.{names[1]}: one value per tenor ({len(times)}), got {len(values)}")
    if not times:
        raise ValueError(f"{what}.{names[0]}: give at least one tenor")
    if any(not np.isfinite(t) or t <= 0 for t in times):
        raise ValueError(f"{what}.{names[0]}: tenors must be positive years")
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise ValueError(f"{what}.{names[0]}: tenors must be strictly increasing")
    if any(not np.isfinite(v) for v in values):
        raise ValueError(f"{what}.{names[1]}: values must be finite")


# ---------------------------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------------------------


class DiscountCurve(_Model):
    """Continuously compounded zero rates at tenors (years); log-linear in the discount factor between them."""

    tenors: list[float] = Field(description="Node times in years (ACT/365F), strictly increasing.")
    zero_rates: list[float] = Field(description="Continuously compounded zero rates at the tenors, decimals.")

    @model_validator(mode="after")
    def _nodes(self) -> DiscountCurve:
        _check_nodes(self.tenors, self.zero_rates, "discount", ("tenors", "zero_rates"))
        if any(abs(r) > 0.5 for r in self.zero_rates):
            raise ValueError("discount.zero_rates: rates must be decimals within ±50% (0.04 = 4%)")
        return self

    @cached_property
    def _nodes_log(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.concatenate([[0.0], np.asarray(self.tenors, dtype=np.float64)])
        lnp = np.concatenate([[0.0], -np.asarray(self.zero_rates) * np.asarray(self.tenors)])
        fwd = -np.diff(lnp) / np.diff(t)
        return t, lnp, fwd

    def log_discount(self, t: np.ndarray | float) -> np.ndarray:
        """ln P(0, t), linear between nodes (and from 0 at t = 0), the last forward beyond the last node."""
        nodes, lnp, fwd = self._nodes_log
        t = np.asarray(t, dtype=np.float64)
        inside = np.interp(t, nodes, lnp)
        return np.where(t > nodes[-1], lnp[-1] - fwd[-1] * (t - nodes[-1]), inside)

    def discount(self, t: np.ndarray | float) -> np.ndarray:
        """P(0, t)."""
        return np.exp(self.log_discount(t))

    def forward(self, t: np.ndarray | float) -> np.ndarray:
        """Instantaneous forward f(0, t): piecewise flat, right-continuous at the nodes."""
        nodes, _, fwd = self._nodes_log
        i = np.searchsorted(nodes, np.asarray(t, dtype=np.float64), side="right") - 1
        return fwd[np.clip(i, 0, len(fwd) - 1)]

    @classmethod
    def flat(cls, rate: float) -> DiscountCurve:
        return cls(tenors=[1.0], zero_rates=[rate])


class SwaptionQuote(_Model):
    """An at-the-money European swaption quote in the currency's fixed-leg conventions."""

    expiry_years: float = Field(gt=0, le=30, description="Option expiry in whole or fractional years (months added).")
    tenor_years: float = Field(gt=0, le=40, description="Underlying swap tenor in years from expiry.")
    normal_vol: float = Field(gt=0, le=0.1, description="Normal (Bachelier) vol, decimals (0.009 = 90 bp).")


class HullWhiteSpec(_Model):
    """Hull–White one-factor settings: mean reversion and σ, given or calibrated to swaption quotes.

    σ is piecewise constant: `volatilities[i]` applies up to `volatility_times[i]` (and the last beyond).
    With `calibrate` = "constant", one σ is fitted to all `swaptions` (least squares in price over vega);
    with "piecewise", σ is bootstrapped quote by quote on the expiries (co-terminal or diagonal quotes).
    """

    mean_reversion: float = Field(0.03, gt=0, le=1.0, description="Mean reversion a, per year.")
    volatilities: list[float] = Field(default=[0.01], description="σ per piece (absolute short-rate vol).")
    volatility_times: list[float] = Field(default=[], description="Ends of all pieces but the last, in years.")
    swaptions: list[SwaptionQuote] = []
    calibrate: Literal["none", "constant", "piecewise"] = "none"

    @model_validator(mode="after")
    def _pieces(self) -> HullWhiteSpec:
        if len(self.volatilities) != len(self.volatility_times) + 1:
            raise ValueError(
                f"volatilities: one more σ than volatility_times ({len(self.volatility_times) + 1}), "
                f"got {len(self.volatilities)}"
            )
        if any(not np.isfinite(s) or s < 0 or s > 0.2 for s in self.volatilities):
            raise ValueError("volatilities: σ must be in [0, 0.2] (decimals: 0.01 = 100 bp)")
        if any(t <= 0 for t in self.volatility_times) or any(
            b <= a for a, b in itertools.pairwise(self.volatility_times)
        ):
            raise ValueError("volatility_times: must be positive and strictly increasing")
        if self.calibrate != "none" and not self.swaptions:
            raise ValueError(f"swaptions: calibrate={self.calibrate!r} needs at least one swaption quote")
        if self.calibrate == "piecewise":
            expiries = [q.expiry_years for q in self.swaptions]
            if any(b <= a for a, b in itertools.pairwise(expiries)):
                raise ValueError("swaptions: piecewise calibration needs strictly increasing expiries")
        return self


class CurrencyMarket(_Model):
    """One currency: its discount curve (single curve: also the projection curve), Hull–White and funding."""

    discount: DiscountCurve
    hull_white: HullWhiteSpec = HullWhiteSpec()
    funding_spread_borrow: float = Field(0.0, ge=-0.05, le=0.2, description="Spread over OIS to borrow, decimals.")
    funding_spread_lend: float = Field(0.0, ge=-0.05, le=0.2, description="Spread over OIS earned on cash, decimals.")


class FxMarket(_Model):
    """A currency against USD: spot in USD per unit, and the lognormal volatility of the model."""

    spot: float = Field(gt=0, description="USD per one unit of the currency.")
    volatility: float = Field(gt=0, le=2.0, description="Lognormal vol of the spot in the model, decimals.")


class EquityMarket(_Model):
    """An equity or index: currency, spot, lognormal vol (constant) and a continuous dividend yield."""

    currency: Currency
    spot: float = Field(gt=0)
    volatility: float = Field(gt=0, le=3.0)
    dividend_yield: float = Field(0.0, ge=-0.05, le=0.3)


class Correlation(_Model):
    """Correlation of model drivers (``IR.USD``, ``FX.EUR``, ``EQ.SPX``, ...); unlisted drivers are independent."""

    drivers: list[str] = []
    matrix: list[list[float]] = []

    @model_validator(mode="after")
    def _matrix(self) -> Correlation:
        n = len(self.drivers)
        if len(set(self.drivers)) != n:
            dup = next(d for d in self.drivers if self.drivers.count(d) > 1)
            raise ValueError(f"drivers: {dup!r} is listed twice")
        if len(self.matrix) != n or any(len(row) != n for row in self.matrix):
            raise ValueError(f"matrix: must be {n}x{n} (one row and column per driver)")
        if n == 0:
            return self
        m = np.asarray(self.matrix, dtype=np.float64)
        if not np.all(np.isfinite(m)):
            raise ValueError("matrix: entries must be finite")
        if not np.allclose(m, m.T, atol=1e-12):
            i, j = np.argwhere(~np.isclose(m, m.T, atol=1e-12))[0]
            raise ValueError(f"matrix[{i}][{j}]: not symmetric ({m[i, j]} vs {m[j, i]})")
        if not np.allclose(np.diag(m), 1.0, atol=1e-12):
            raise ValueError("matrix: the diagonal must be 1")
        if np.abs(m).max() > 1.0:
            raise ValueError("matrix: entries must lie in [-1, 1]")
        lowest = float(np.linalg.eigvalsh(m).min())
        if lowest < -1e-10:
            raise ValueError(f"matrix: not positive semi-definite (lowest eigenvalue {lowest:.4g})")
        return self


class CreditCurve(_Model):
    """CDS par spreads by tenor and a recovery rate; bootstrapped to piecewise-flat hazard rates."""

    tenors: list[float] = Field(default=[1.0, 3.0, 5.0, 7.0, 10.0], description="CDS maturities in years.")
    spreads: list[float] = Field(description="Par running spreads, decimals (0.01 = 100 bp).")
    recovery: float = Field(0.4, ge=0, lt=1)

    @model_validator(mode="after")
    def _nodes(self) -> CreditCurve:
        _check_nodes(self.tenors, self.spreads, "credit_curve", ("tenors", "spreads"))
        if any(s <= 0 or s > 1.0 for s in self.spreads):
            raise ValueError("credit_curve.spreads: spreads must be in (0, 1] (decimals: 0.01 = 100 bp)")
        if any(abs(t * 4 - round(t * 4)) > 1e-9 for t in self.tenors):
            raise ValueError("credit_curve.tenors: tenors must be whole quarters (0.25, 0.5, 1, ...)")
        return self


class CreditModel(_Model):
    """Settings of the simulated credit intensities (a Hull–White-type Gaussian intensity per name).

    Every name's intensity λ(t) = h(t) + x(t) fits its bootstrapped hazard curve h exactly in expectation of
    the survival probability; x mean-reverts at `mean_reversion` with the name's own vol, and may be correlated
    to one market driver (wrong-way risk). Being Gaussian, λ can turn negative on some paths (its long-run sd is
    vol/√(2κ)): keep vols to a fraction of the hazard rate (the sample book uses 0.3 × the 5Y hazard).
    `wwr_drivers` limits the drivers whose credit factor is stored with the scenarios (None: all).
    """

    mean_reversion: float = Field(0.1, gt=0, le=2.0)
    wwr_drivers: list[str] | None = None
    reference_volatility_ratio: float = Field(
        0.3, ge=0, le=3.0, description="Intensity vol of CDS reference names as a multiple of their 5Y hazard rate."
    )


class Market(_Model):
    """Everything the XVA simulation and pricing need on the valuation date."""

    as_of: date
    currencies: dict[Currency, CurrencyMarket]
    fx: dict[Currency, FxMarket] = {}
    equities: dict[str, EquityMarket] = {}
    correlation: Correlation = Correlation()
    credit_curves: dict[str, CreditCurve] = Field(default={}, description="Reference names for CDS trades.")
    own_credit: CreditCurve = Field(description="The bank's own credit curve (bilateral CVA, DVA).")
    credit_model: CreditModel = CreditModel()

    @model_validator(mode="after")
    def _consistent(self) -> Market:
        if BASE_CURRENCY not in self.currencies:
            raise ValueError("currencies: USD (the base currency) is required")
        if BASE_CURRENCY in self.fx:
            raise ValueError("fx.USD: USD is the base currency; give FX only for the other currencies")
        for ccy in self.currencies:
            if ccy != BASE_CURRENCY and ccy not in self.fx:
                raise ValueError(f"fx.{ccy}: the currency has a curve but no FX spot/vol against USD")
        for ccy in self.fx:
            if ccy not in self.currencies:
                raise ValueError(f"fx.{ccy}: no discount curve for {ccy} in currencies")
        for name, eq in self.equities.items():
            if not name or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"equities.{name}: names are letters, digits, '-' and '_'")
            if eq.currency not in self.currencies:
                raise ValueError(f"equities.{name}.currency: no discount curve for {eq.currency}")
        known = set(self.driver_names)
        for i, d in enumerate(self.correlation.drivers):
            if d not in known:
                raise ValueError(f"correlation.drivers[{i}]: {d!r} is not a driver of this market ({sorted(known)})")
        for i, d in enumerate(self.credit_model.wwr_drivers or []):
            if d not in known:
                raise ValueError(f"credit_model.wwr_drivers[{i}]: {d!r} is not a driver of this market")
        return self

    @cached_property
    def currency_list(self) -> tuple[str, ...]:
        """Currencies present, in `CURRENCIES` order (USD first): the order of per-currency arrays."""
        return tuple(c for c in CURRENCIES if c in self.currencies)

    @cached_property
    def equity_list(self) -> tuple[str, ...]:
        """Equity names, sorted: the order of per-equity arrays."""
        return tuple(sorted(self.equities))

    @cached_property
    def driver_names(self) -> tuple[str, ...]:
        """Model drivers in simulation order: rates factors, FX against USD, equities."""
        return (
            tuple(f"IR.{c}" for c in self.currency_list)
            + tuple(f"FX.{c}" for c in self.currency_list if c != BASE_CURRENCY)
            + tuple(f"EQ.{e}" for e in self.equity_list)
        )

    def correlation_matrix(self) -> np.ndarray:
        """Correlation of all drivers in `driver_names` order (identity where `correlation` is silent)."""
        names = self.driver_names
        full = np.eye(len(names))
        pos = [names.index(d) for d in self.correlation.drivers]
        if pos:
            full[np.ix_(pos, pos)] = np.asarray(self.correlation.matrix, dtype=np.float64)
        return full

    def fx_spot(self, ccy: str) -> float:
        """USD per unit of `ccy` today (1 for USD)."""
        return 1.0 if ccy == BASE_CURRENCY else self.fx[ccy].spot  # type: ignore[index]

    def credit_curve(self, name: str) -> CreditCurve:
        """The CDS curve of reference name `name` (``OWN`` is the bank's own curve)."""
        if name == "OWN":
            return self.own_credit
        try:
            return self.credit_curves[name]
        except KeyError:
            raise KeyError(f"credit_curves: no curve for reference name {name!r}") from None


# ---------------------------------------------------------------------------------------------
# Hazard-rate bootstrap
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HazardCurve:
    """Piecewise-flat hazard rates: `hazards[i]` on (times[i-1], times[i]], the last one beyond."""

    times: np.ndarray
    hazards: np.ndarray
    recovery: float

    def cumulative(self, t: np.ndarray | float) -> np.ndarray:
        """Λ(t) = ∫₀ᵗ h(u) du."""
        t = np.asarray(t, dtype=np.float64)
        edges = np.concatenate([[0.0], self.times])
        cum = np.concatenate([[0.0], np.cumsum(self.hazards * np.diff(edges))])
        i = np.clip(np.searchsorted(edges, t, side="left") - 1, 0, len(self.hazards) - 1)
        return cum[i] + self.hazards[i] * (t - edges[i])

    def survival(self, t: np.ndarray | float) -> np.ndarray:
        return np.exp(-self.cumulative(t))

    def hazard(self, t: np.ndarray | float) -> np.ndarray:
        """h(t), left-continuous at the nodes."""
        i = np.searchsorted(self.times, np.asarray(t, dtype=np.float64), side="left")
        return self.hazards[np.clip(i, 0, len(self.hazards) - 1)]


def cds_legs(
    as_of: date, maturity: date, discount: DiscountCurve, hazard: HazardCurve, start: date | None = None
) -> tuple[float, float]:
    """(risky annuity per unit spread incl. accrual on default, protection leg per unit loss-given-default) at t=0.

    Quarterly premium dates rolled back from `maturity`, ACT/360 accruals, default assumed mid-period,
    discounting from the payment date mid-period — QuantLib's `MidPointCdsEngine`.
    """
    start = start or as_of
    dates = [maturity]
    k = 1
    while (d := add_months(maturity, -3 * k)) > start:
        dates.append(d)
        k += 1
    dates.append(start)
    dates.reverse()
    t = np.array([year_time(as_of, d) for d in dates])
    accrual = np.diff([d.toordinal() for d in dates]) / 360.0
    t0 = np.maximum(t[:-1], 0.0)
    t1 = t[1:]
    s0, s1 = hazard.survival(t0), hazard.survival(t1)
    mid = 0.5 * (t0 + t1)
    p_mid, p_end = discount.discount(mid), discount.discount(t1)
    annuity = float(np.sum(accrual * s1 * p_end + 0.5 * accrual * (s0 - s1) * p_mid))
    protection = float(np.sum((s0 - s1) * p_mid))
    return annuity, protection


def bootstrap_hazard(curve: CreditCurve, as_of: date, discount: DiscountCurve) -> HazardCurve:
    """Piecewise-flat hazard rates repricing every par CDS quote of `curve` (maturities as_of + tenor).

    All quotes share one quarterly grid (as_of + 3k months), so each hazard is one bracketed root of a
    small vectorised sum; about a millisecond per curve.
    """
    quarters = [round(4 * t) for t in curve.tenors]
    dates = [add_months(as_of, 3 * k) for k in range(quarters[-1] + 1)]
    t = np.array([year_time(as_of, d) for d in dates])
    accrual = np.diff([d.toordinal() for d in dates]) / 360.0
    dt = np.diff(t)
    p_end = discount.discount(t[1:])
    p_mid = discount.discount(0.5 * (t[:-1] + t[1:]))
    lgd = 1.0 - curve.recovery
    log_s = np.zeros(len(t))  # ln survival at the grid dates, filled tenor by tenor
    hazards = np.zeros(len(quarters))
    done = 0
    for i, (q, spread) in enumerate(zip(quarters, curve.spreads, strict=True)):
        s_known = np.exp(log_s[: done + 1])
        fixed_prem = float(
            np.sum(accrual[:done] * (s_known[1:] * p_end[:done] + 0.5 * (s_known[:-1] - s_known[1:]) * p_mid[:done]))
        )
        fixed_prot = float(np.sum((s_known[:-1] - s_known[1:]) * p_mid[:done]))
        cum = np.cumsum(dt[done:q])
        acc, pe, pm = accrual[done:q], p_end[done:q], p_mid[done:q]

        def par_gap(
            h: float,
            base: float = log_s[done],
            cum: np.ndarray = cum,
            acc: np.ndarray = acc,
            pe: np.ndarray = pe,
            pm: np.ndarray = pm,
            fp: float = fixed_prem,
            fq: float = fixed_prot,
            spread: float = spread,
        ) -> float:
            s1 = np.exp(base - h * cum)
            s0 = np.concatenate([[np.exp(base)], s1[:-1]])
            annuity = fp + float(np.sum(acc * (s1 * pe + 0.5 * (s0 - s1) * pm)))
            protection = fq + float(np.sum((s0 - s1) * pm))
            return lgd * protection - spread * annuity

        try:
            h = brentq(par_gap, 1e-12, 20.0, xtol=1e-15, rtol=1e-13)
        except ValueError:
            raise ValueError(
                f"credit_curve.spreads[{i}]: no positive hazard rate reprices {spread:.6g} at {curve.tenors[i]}y "
                "(spreads fall too steeply after the earlier tenors)"
            ) from None
        hazards[i] = h
        log_s[done + 1 : q + 1] = log_s[done] - h * cum
        done = q
    return HazardCurve(t[quarters], hazards, curve.recovery)


# ---------------------------------------------------------------------------------------------
# The bundled sample market
# ---------------------------------------------------------------------------------------------

_TENORS = [0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0]
_ZEROS = {
    "USD": [0.0430, 0.0425, 0.0410, 0.0392, 0.0385, 0.0383, 0.0387, 0.0395, 0.0405, 0.0408, 0.0400],
    "EUR": [0.0210, 0.0205, 0.0200, 0.0205, 0.0215, 0.0230, 0.0245, 0.0262, 0.0280, 0.0285, 0.0275],
    "GBP": [0.0420, 0.0410, 0.0395, 0.0380, 0.0378, 0.0385, 0.0398, 0.0415, 0.0440, 0.0450, 0.0440],
    "JPY": [0.0045, 0.0050, 0.0058, 0.0072, 0.0085, 0.0105, 0.0125, 0.0150, 0.0190, 0.0215, 0.0240],
    "CHF": [0.0020, 0.0020, 0.0022, 0.0028, 0.0035, 0.0048, 0.0058, 0.0070, 0.0080, 0.0082, 0.0078],
}
_HW = {  # mean reversion, σ (near the calibrated ones), ATM normal vols of 1Y×9Y, 2Y×8Y, 5Y×5Y co-terminals
    "USD": (0.03, 0.0108, (0.0100, 0.0098, 0.0094)),
    "EUR": (0.03, 0.0094, (0.0082, 0.0084, 0.0083)),
    "GBP": (0.03, 0.0101, (0.0092, 0.0091, 0.0088)),
    "JPY": (0.02, 0.0052, (0.0040, 0.0045, 0.0050)),
    "CHF": (0.03, 0.0074, (0.0060, 0.0063, 0.0066)),
}
_FUNDING = {"USD": (0.0060, 0.0020), "EUR": (0.0055, 0.0015), "GBP": (0.0065, 0.0020), "JPY": (0.0045, 0.0010)}
_FX = {"EUR": (1.08, 0.075), "GBP": (1.27, 0.080), "JPY": (1 / 150.0, 0.095), "CHF": (1.12, 0.070)}
_EQUITIES = {  # currency, spot, vol, dividend yield
    "SPX": ("USD", 5400.0, 0.17, 0.014),
    "SX5E": ("EUR", 4900.0, 0.18, 0.031),
    "UKX": ("GBP", 8200.0, 0.14, 0.036),
    "NKY": ("JPY", 39000.0, 0.21, 0.019),
    "SMI": ("CHF", 12000.0, 0.14, 0.029),
}
_RATINGS_BP = {"AA": 35.0, "A": 60.0, "BBB": 110.0, "BB": 250.0, "B": 480.0}
"""5Y CDS spread by rating (bp); the term structure below scales it."""
CREDIT_TERM_SHAPE = (0.55, 0.8, 1.0, 1.08, 1.15)
"""Spread at 1Y, 3Y, 5Y, 7Y, 10Y relative to the 5Y spread."""


def rating_curve(rating: str, scale: float = 1.0, recovery: float = 0.4) -> CreditCurve:
    """A CDS curve typical of `rating` (AA, A, BBB, BB, B), its level multiplied by `scale`."""
    try:
        level = _RATINGS_BP[rating] * scale / 1e4
    except KeyError:
        raise ValueError(f"rating: {rating!r} is not one of {', '.join(_RATINGS_BP)}") from None
    return CreditCurve(spreads=[level * s for s in CREDIT_TERM_SHAPE], recovery=recovery)


RATINGS: tuple[str, ...] = tuple(_RATINGS_BP)


def _sample_correlation() -> Correlation:
    """Rates factors 0.55–0.75 among themselves, FX 0.35–0.6, equities 0.6; crosses of 0.1–0.2 in size."""
    ccys = [c for c in CURRENCIES]
    drivers = [f"IR.{c}" for c in ccys] + [f"FX.{c}" for c in ccys[1:]] + [f"EQ.{e}" for e in sorted(_EQUITIES)]
    idx = {d: i for i, d in enumerate(drivers)}
    m = np.eye(len(drivers))

    def put(a: str, b: str, v: float) -> None:
        m[idx[a], idx[b]] = m[idx[b], idx[a]] = v

    ir = [f"IR.{c}" for c in ccys]
    for a, b in itertools.combinations(ir, 2):
        put(a, b, 0.75 if {"IR.EUR", "IR.CHF"} == {a, b} else 0.55 if "IR.JPY" in (a, b) else 0.65)
    fx = [f"FX.{c}" for c in ccys[1:]]
    for a, b in itertools.combinations(fx, 2):
        put(a, b, 0.6 if {"FX.EUR", "FX.CHF"} == {a, b} else 0.35)
    eq = [f"EQ.{e}" for e in sorted(_EQUITIES)]
    for a, b in itertools.combinations(eq, 2):
        put(a, b, 0.6)
    for c in ccys[1:]:
        put(f"FX.{c}", f"IR.{c}", 0.2)  # a currency tends to strengthen when its rates rise
        put(f"FX.{c}", "IR.USD", -0.15)
    for e, (c, *_rest) in _EQUITIES.items():
        put(f"EQ.{e}", f"IR.{c}", 0.1)
        if c != "USD":
            put(f"EQ.{e}", f"FX.{c}", -0.1)
    assert float(np.linalg.eigvalsh(m).min()) > 0.02
    return Correlation(drivers=drivers, matrix=m.tolist())


def sample_market(as_of: date = date(2025, 6, 30), *, calibrate: bool = False) -> Market:
    """The bundled market: five currencies, four FX rates, five equity indices, 20 CDS names (``REF01``..).

    With `calibrate`, each currency's Hull–White σ is bootstrapped piecewise on its 1Y×9Y, 2Y×8Y and 5Y×5Y
    swaption quotes instead of the constant σ given.
    """
    currencies = {}
    for c in CURRENCIES:
        a, sigma, vols = _HW[c]
        quotes = [
            SwaptionQuote(expiry_years=e, tenor_years=10 - e, normal_vol=v)
            for e, v in zip((1.0, 2.0, 5.0), vols, strict=True)
        ]
        borrow, lend = _FUNDING.get(c, (0.0050, 0.0015))
        currencies[c] = CurrencyMarket(
            discount=DiscountCurve(tenors=_TENORS, zero_rates=_ZEROS[c]),
            hull_white=HullWhiteSpec(
                mean_reversion=a,
                volatilities=[sigma],
                swaptions=quotes,
                calibrate="piecewise" if calibrate else "none",
            ),
            funding_spread_borrow=borrow,
            funding_spread_lend=lend,
        )
    fx = {c: FxMarket(spot=s, volatility=v) for c, (s, v) in _FX.items()}
    equities = {
        n: EquityMarket(currency=c, spot=s, volatility=v, dividend_yield=q) for n, (c, s, v, q) in _EQUITIES.items()
    }
    ratings = list(_RATINGS_BP)
    credit = {f"REF{i + 1:02d}": rating_curve(ratings[i % len(ratings)], 0.8 + 0.05 * i) for i in range(20)}
    return Market(
        as_of=as_of,
        currencies=currencies,
        fx=fx,
        equities=equities,
        correlation=_sample_correlation(),
        credit_curves=credit,
        own_credit=rating_curve("A", 1.2),
    )
