"""The SIMM calibration: risk weights, correlations, concentration thresholds, vega and curvature
parameters of one ISDA SIMM version, read from a versioned JSON file in `calibrations/`.

ISDA recalibrates SIMM about once a year; each calibration is a file `simm-<version>.json` that
states its version, effective date, margin period of risk and where its numbers come from, so a
margin figure can always be traced to the calibration that produced it. The file is validated on
load (shapes, symmetric correlation matrices with a unit diagonal, a weight and a threshold for
every bucket); the calculator then reads the typed model and never the raw JSON.

Currency lists use the word ``Other`` for "every currency not listed elsewhere".
"""

from __future__ import annotations

import json
import math
from functools import cache, cached_property
from importlib import resources
from statistics import NormalDist
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_VERSION = "2.6"
OTHER = "Other"
"""The currency-list entry standing for every currency not listed in another group."""

Correlation = Annotated[float, Field(ge=-1.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
Matrix = tuple[tuple[Correlation, ...], ...]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_matrix(matrix: Matrix, n: int, what: str) -> None:
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (n, n):
        raise ValueError(f"{what}: expected a {n}x{n} matrix, got shape {m.shape}")
    if not np.allclose(m, m.T, rtol=0.0, atol=0.0):
        i, j = np.argwhere(m != m.T)[0]
        raise ValueError(f"{what}: not symmetric at ({i}, {j}): {m[i, j]} vs {m[j, i]}")
    if not np.all(np.diag(m) == 1.0):
        raise ValueError(f"{what}: the diagonal must be 1")


def _check_keys(mapping: dict[str, object], keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in mapping]
    extra = [k for k in mapping if k not in keys]
    if missing or extra:
        raise ValueError(f"{what}: buckets {keys} expected; missing {missing}, unexpected {extra}")


def _group_of(currency: str, groups: dict[str, tuple[str, ...]]) -> str:
    other = None
    for group, members in groups.items():
        if currency in members:
            return group
        if OTHER in members:
            other = group
    if other is None:
        raise ValueError(f"currency {currency!r} is in no group and no group is marked {OTHER!r}")
    return other


def _check_groups(groups: dict[str, tuple[str, ...]], what: str) -> None:
    seen: dict[str, str] = {}
    for group, members in groups.items():
        for c in members:
            if c in seen:
                raise ValueError(f"{what}: {c} is in groups {seen[c]} and {group}")
            seen[c] = group
    if OTHER not in seen:
        raise ValueError(f"{what}: one group must hold {OTHER!r} (every currency not listed)")


class InterestRateParameters(_Model):
    """Interest rate: one bucket per currency; tenors are the IRCurve and IRVol Label1 vertices."""

    tenors: tuple[str, ...]
    risk_weight_currency_groups: dict[str, tuple[str, ...]] = Field(
        description="Risk-weight bucket of each currency: 1 regular volatility, 2 low (JPY), 3 high."
    )
    delta_risk_weights: dict[str, tuple[Positive, ...]] = Field(description="Per group, one weight per tenor (bp).")
    inflation_risk_weight: Positive
    xccy_basis_risk_weight: Positive
    vega_risk_weight: Positive
    historical_volatility_ratio: Positive
    tenor_correlations: Matrix
    sub_curve_correlation: Correlation
    inflation_correlation: Correlation
    xccy_basis_correlation: Correlation
    inter_currency_correlation: Correlation
    concentration_currency_groups: dict[str, tuple[str, ...]]
    delta_concentration_thresholds: dict[str, Positive] = Field(description="USD million per bp, by group.")
    vega_concentration_thresholds: dict[str, Positive] = Field(description="USD million of vega, by group.")

    @model_validator(mode="after")
    def _shapes(self) -> InterestRateParameters:
        n = len(self.tenors)
        _check_matrix(self.tenor_correlations, n, "interest_rate.tenor_correlations")
        _check_groups(self.risk_weight_currency_groups, "interest_rate.risk_weight_currency_groups")
        _check_groups(self.concentration_currency_groups, "interest_rate.concentration_currency_groups")
        _check_keys(
            self.delta_risk_weights, tuple(self.risk_weight_currency_groups), "interest_rate.delta_risk_weights"
        )
        for group, weights in self.delta_risk_weights.items():
            if len(weights) != n:
                raise ValueError(f"interest_rate.delta_risk_weights.{group}: {len(weights)} weights for {n} tenors")
        groups = tuple(self.concentration_currency_groups)
        _check_keys(self.delta_concentration_thresholds, groups, "interest_rate.delta_concentration_thresholds")
        _check_keys(self.vega_concentration_thresholds, groups, "interest_rate.vega_concentration_thresholds")
        return self

    def risk_weight_group(self, currency: str) -> str:
        return _group_of(currency, self.risk_weight_currency_groups)

    def concentration_group(self, currency: str) -> str:
        return _group_of(currency, self.concentration_currency_groups)

    @cached_property
    def tenor_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tenors)}

    @cached_property
    def tenor_matrix(self) -> np.ndarray:
        return np.asarray(self.tenor_correlations, dtype=np.float64)


class IntraCreditCorrelations(_Model):
    """Within a credit bucket: same or different qualifier (issuer/seniority, or group for non-qualifying)."""

    same: Correlation
    different: Correlation
    residual_same: Correlation
    residual_different: Correlation


class CreditParameters(_Model):
    """Credit qualifying or non-qualifying: buckets by sector and quality plus Residual."""

    buckets: tuple[str, ...]
    tenors: tuple[str, ...]
    delta_risk_weights: dict[str, Positive]
    vega_risk_weight: Positive
    intra_bucket_correlations: IntraCreditCorrelations
    delta_concentration_thresholds: dict[str, Positive] = Field(description="USD million per bp, by bucket.")
    vega_concentration_threshold: Positive = Field(description="USD million of vega.")
    inter_bucket_correlations: Matrix | None = Field(None, description="Between non-residual buckets (qualifying).")
    inter_bucket_correlation: Correlation | None = Field(None, description="One value for all pairs (non-qualifying).")
    base_correlation_risk_weight: Positive | None = None
    base_correlation_correlation: Correlation | None = None

    @model_validator(mode="after")
    def _shapes(self) -> CreditParameters:
        _check_keys(self.delta_risk_weights, self.buckets, "credit.delta_risk_weights")
        _check_keys(self.delta_concentration_thresholds, self.buckets, "credit.delta_concentration_thresholds")
        if (self.inter_bucket_correlations is None) == (self.inter_bucket_correlation is None):
            raise ValueError(
                "credit: give inter_bucket_correlations (a matrix) or inter_bucket_correlation (one value)"
            )
        if self.inter_bucket_correlations is not None:
            _check_matrix(self.inter_bucket_correlations, len(self.regular_buckets), "credit.inter_bucket_correlations")
        return self

    @cached_property
    def regular_buckets(self) -> tuple[str, ...]:
        return tuple(b for b in self.buckets if b != "Residual")

    @cached_property
    def inter_matrix(self) -> np.ndarray:
        n = len(self.regular_buckets)
        if self.inter_bucket_correlations is not None:
            return np.asarray(self.inter_bucket_correlations, dtype=np.float64)
        m = np.full((n, n), float(self.inter_bucket_correlation or 0.0))
        np.fill_diagonal(m, 1.0)
        return m


class EquityCommodityParameters(_Model):
    """Equity or commodity: buckets by region, size and sector (equity) or by commodity group."""

    buckets: tuple[str, ...]
    delta_risk_weights: dict[str, Positive]
    vega_risk_weights: dict[str, Positive] | None = None
    vega_risk_weight: Positive | None = None
    historical_volatility_ratio: Positive
    intra_bucket_correlations: dict[str, Correlation]
    inter_bucket_correlations: Matrix
    delta_concentration_thresholds: dict[str, Positive] = Field(description="USD million per 1%, by bucket.")
    vega_concentration_thresholds: dict[str, Positive] = Field(description="USD million of vega, by bucket.")

    @model_validator(mode="after")
    def _shapes(self) -> EquityCommodityParameters:
        for name in ("delta_risk_weights", "intra_bucket_correlations", "delta_concentration_thresholds",
                     "vega_concentration_thresholds"):  # fmt: skip
            _check_keys(getattr(self, name), self.buckets, name)
        if (self.vega_risk_weights is None) == (self.vega_risk_weight is None):
            raise ValueError("vega_risk_weights: give per-bucket vega_risk_weights or one vega_risk_weight")
        if self.vega_risk_weights is not None:
            _check_keys(self.vega_risk_weights, self.buckets, "vega_risk_weights")
        _check_matrix(self.inter_bucket_correlations, len(self.regular_buckets), "inter_bucket_correlations")
        return self

    @cached_property
    def regular_buckets(self) -> tuple[str, ...]:
        return tuple(b for b in self.buckets if b != "Residual")

    def vega_weight(self, bucket: str) -> float:
        if self.vega_risk_weights is not None:
            return self.vega_risk_weights[bucket]
        return float(self.vega_risk_weight or 0.0)

    @cached_property
    def inter_matrix(self) -> np.ndarray:
        return np.asarray(self.inter_bucket_correlations, dtype=np.float64)


VolatilityGroup = str  # "regular" or "high"


class FxParameters(_Model):
    """FX: one risk factor per currency against the calculation currency; weights and correlations
    depend on whether the currencies are high-volatility ones."""

    volatility_groups: dict[VolatilityGroup, tuple[str, ...]]
    delta_risk_weights: dict[VolatilityGroup, dict[VolatilityGroup, Positive]] = Field(
        description="[group of the calculation currency][group of the qualifier], in percent."
    )
    correlations: dict[VolatilityGroup, dict[VolatilityGroup, dict[VolatilityGroup, Correlation]]] = Field(
        description="[group of the calculation currency][group of one currency][group of the other]."
    )
    vega_risk_weight: Positive
    historical_volatility_ratio: Positive
    vega_correlation: Correlation
    concentration_currency_groups: dict[str, tuple[str, ...]]
    delta_concentration_thresholds: dict[str, Positive] = Field(description="USD million per 1%, by group.")
    vega_concentration_thresholds: dict[str, Positive] = Field(
        description="USD million of vega, by the pair of groups of the two currencies ('1-2' = groups 1 and 2)."
    )

    @model_validator(mode="after")
    def _shapes(self) -> FxParameters:
        groups = ("regular", "high")
        _check_groups(self.volatility_groups, "fx.volatility_groups")
        _check_keys(self.volatility_groups, groups, "fx.volatility_groups")
        _check_groups(self.concentration_currency_groups, "fx.concentration_currency_groups")
        for g in groups:
            _check_keys(self.delta_risk_weights.get(g, {}), groups, f"fx.delta_risk_weights.{g}")
            for h in groups:
                _check_keys(self.correlations.get(g, {}).get(h, {}), groups, f"fx.correlations.{g}.{h}")
        cats = sorted(self.concentration_currency_groups)
        pairs = tuple(f"{a}-{b}" for i, a in enumerate(cats) for b in cats[i:])
        _check_keys(self.vega_concentration_thresholds, pairs, "fx.vega_concentration_thresholds")
        _check_keys(self.delta_concentration_thresholds, tuple(cats), "fx.delta_concentration_thresholds")
        return self

    def volatility_group(self, currency: str) -> VolatilityGroup:
        return _group_of(currency, self.volatility_groups)

    def concentration_group(self, currency: str) -> str:
        return _group_of(currency, self.concentration_currency_groups)

    def vega_threshold(self, pair: str) -> float:
        a, b = sorted((self.concentration_group(pair[:3]), self.concentration_group(pair[3:])))
        return self.vega_concentration_thresholds[f"{a}-{b}"]


class RiskClassCorrelations(_Model):
    risk_classes: tuple[str, ...]
    matrix: Matrix

    @model_validator(mode="after")
    def _shape(self) -> RiskClassCorrelations:
        _check_matrix(self.matrix, len(self.risk_classes), "risk_class_correlations.matrix")
        return self

    def correlation(self, a: str, b: str) -> float:
        return self.matrix[self.risk_classes.index(a)][self.risk_classes.index(b)]


class CurvatureParameters(_Model):
    """Curvature from vega: CVR = SF(t)·(vega risk), SF(t) = 0.5·min(1, horizon / t) with t in days."""

    tenor_days: dict[str, Positive]
    scaling_horizon_days: Positive
    equity_buckets_without_curvature: tuple[str, ...] = ()

    def scaling(self, tenor: str) -> float:
        return 0.5 * min(1.0, self.scaling_horizon_days / self.tenor_days[tenor])


class SimmParameters(_Model):
    """One SIMM calibration (one version, one margin period of risk)."""

    version: str = Field(min_length=1)
    also_known_as: tuple[str, ...] = ()
    effective_date: str
    mpor_days: int = Field(description="Margin period of risk the weights are calibrated to (business days).")
    source: str = Field(min_length=1, description="Where the numbers come from.")
    units: str
    interest_rate: InterestRateParameters
    credit_qualifying: CreditParameters
    credit_non_qualifying: CreditParameters
    equity: EquityCommodityParameters
    commodity: EquityCommodityParameters
    fx: FxParameters
    risk_class_correlations: RiskClassCorrelations
    curvature: CurvatureParameters

    @model_validator(mode="after")
    def _consistent(self) -> SimmParameters:
        if self.mpor_days != 10:
            raise ValueError(f"mpor_days: only the 10-day calibration is supported, got {self.mpor_days}")
        missing = [t for t in (*self.interest_rate.tenors, *self.credit_qualifying.tenors)
                   if t not in self.curvature.tenor_days]  # fmt: skip
        if missing:
            raise ValueError(f"curvature.tenor_days: no days for tenors {missing}")
        if self.credit_qualifying.base_correlation_risk_weight is None:
            raise ValueError("credit_qualifying.base_correlation_risk_weight: required")
        return self

    @cached_property
    def sigma_multiplier(self) -> float:
        """√(365/(1.4·MPOR)) / Φ⁻¹(99%): turns a delta risk weight (%) into the volatility (in vol points)
        that scales equity, commodity and FX vega (SIMM's σ = RW·√(365/14)/α for a 10-day MPOR)."""
        return math.sqrt(365.0 / (1.4 * self.mpor_days)) / NormalDist().inv_cdf(0.99)

    @cached_property
    def curvature_lambda_base(self) -> float:
        """Φ⁻¹(99.5%)² − 1, the λ of the curvature margin when θ = 0."""
        return NormalDist().inv_cdf(0.995) ** 2 - 1.0

    @property
    def ir_curvature_scaling(self) -> float:
        """The interest-rate curvature margin is multiplied by HVR_IR⁻²."""
        return self.interest_rate.historical_volatility_ratio**-2


def available_versions() -> list[str]:
    """The versions with a parameter file in this package."""
    folder = resources.files(__package__).joinpath("calibrations")
    names = [p.name for p in folder.iterdir() if p.name.startswith("simm-") and p.name.endswith(".json")]
    return sorted(n.removeprefix("simm-").removesuffix(".json") for n in names)


@cache
def load_parameters(version: str = DEFAULT_VERSION) -> SimmParameters:
    """The SIMM calibration of `version` (e.g. "2.6"), validated; ValueError naming the versions there are."""
    known = available_versions()
    if version not in known:
        raise ValueError(
            f"parameters_version: no SIMM parameters for version {version!r}; available: {', '.join(known)}"
        )
    text = resources.files(__package__).joinpath("calibrations", f"simm-{version}.json").read_text(encoding="utf-8")
    try:
        params = SimmParameters.model_validate(json.loads(text))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"simm-{version}.json: {loc}: {err['msg']}") from None
    if params.version != version:
        raise ValueError(f"simm-{version}.json: version: the file says {params.version!r}")
    return params
