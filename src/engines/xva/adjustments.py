"""Valuation adjustments of netting sets from their exposures: CVA, DVA, FCA/FBA, MVA and KVA.

Everything here is a function of arrays on one time grid, whatever simulated the exposures. A netting set's
exposure enters as discounted expected profiles (`ExposureProfiles`): built from exposure paths [paths x dates]
and discount factors per path and date (`exposure_profiles`), or from expected profiles and a discount curve
(`expected_profiles`). Every formula is vectorised over netting sets x dates, so `xva` prices a book of
netting sets in one call and a what-if recomputes one netting set from its cached paths.

Conventions
-----------
- Time grid: `times` t_1 < ... < t_T in years from the valuation date (t_1 may be 0); t_0 = 0. Date i stands
  for the interval (t_{i-1}, t_i]: its exposure is the one of the whole interval (right-point rule), so a date
  at time 0 carries no default and no funding.
- Exposure: X = V - C, the netting set's value to the bank net of the collateral it holds (the exposure
  engine's collateralised value). EE*(t) = E[D(t) max(X(t), 0)] and ENE*(t) = E[D(t) max(-X(t), 0)] >= 0 are
  discounted expectations (D the stochastic discount factor; with a deterministic curve, D(t) = P(0, t)).
  ENE is a magnitude: the counterparty's exposure to the bank.
- Units: amounts in the netting sets' currency; spreads and hazards in decimals per year; recoveries as
  fractions of the exposure.
- Sign: every adjustment is reported as a non-negative magnitude, and the total as a cost:
      total = CVA - DVA + FCA - FBA + MVA + KVA,      value adjustment = -total,
  so a positive total lowers the bank's value of the netting set. With `include_dva=False` the DVA stays out
  of the total (a desk that counts its own-default benefit through the FBA must not count it twice).

Formulas (survival curves S on the grid, piecewise-flat hazards between grid dates, defaults independent of
each other and of the exposure; wrong-way risk is `engines.xva.wrong_way`)
------------------------------------------------------------------------------------------------------------
    CVA (unilateral) = (1 - R_c) sum_i EE*(t_i) [S_c(t_{i-1}) - S_c(t_i)]
    CVA (bilateral)  = (1 - R_c) sum_i EE*(t_i) P(tau_c in (t_{i-1}, t_i], tau_c < tau_b)
    DVA              = (1 - R_b) sum_i ENE*(t_i) P(tau_b in (t_{i-1}, t_i], tau_b < tau_c)
    FCA              = sum_i s_borrow(t_i) EE*(t_i) w(t_i) dt_i
    FBA              = sum_i s_lend(t_i) ENE*(t_i) w(t_i) dt_i
    MVA              = sum_i s_borrow(t_i) IM*(t_i) w(t_i) dt_i
    KVA              = cost of capital x sum_i K(t_i) P(0, t_i) w(t_i) dt_i

The first-to-default probability of an interval is exact for hazards flat on it:
P(tau_c in (a, b], tau_c < tau_b) = H_c / (H_c + H_b) x [S_c(a) S_b(a) - S_c(b) S_b(b)], with H = ln S(a) - ln S(b)
the integrated hazards. Without the bank's own curve the CVA is unilateral and the DVA zero.

Funding (sign and survival): a positive uncollateralised exposure is money the bank has paid out (its hedge is
collateralised, this trade is not) and borrows at its unsecured spread over the discount rate: a cost, FCA. A
negative exposure is cash the bank holds and invests at its lending spread: a benefit, FBA. With equal spreads
FCA - FBA = s x sum_i E[D X](t_i) w dt_i, the spread times the expected discounted value. Funding stops at the
first default: w(t) = S_c(t) S_b(t) ("both", the default), S_c(t) ("counterparty") or 1 ("none").

MVA: the initial margin the bank posts (IM*(t) = E[D(t) IM(t)], e.g. from `engines.xva.initial_margin`) is
funded at the borrowing spread, the IM being remunerated at the discount rate.

KVA: K(t) = capital_ratio x RW_ccr x EAD(t) + K_cva(t), the 8% of the counterparty credit risk RWA of the
netting set plus its stand-alone reduced BA-CVA capital (MAR50.14, single counterparty, no diversification):
K_cva = DS x RW_cva / alpha x M(t) x EAD(t) x DF(M(t)), DS = 0.65. EAD(t) is SA-CCR on the netting set aged to
t (`capital_profile`: trades matured by t dropped, maturities, start and end dates and option exercise dates
moved closer, so maturity factors, supervisory durations, option deltas and interest rate maturity buckets
change), with the replacement cost from the expected exposure: RC(t) = EE(t) (margined: at least TH + MTA -
NICA), the PFE multiplier from the expected collateralised value E[X(t)], and the margined EAD capped at the
unmargined one. EE and E[X] are taken in the t-forward measure, EE*(t) / P(0, t). M(t) is the netting set's
notional-weighted remaining maturity, at least one year (MAR50.15, no 5-year cap). The capital profile holds
the trade-dependent part (aged add-ons per date), so a change of collateral or exposure reprices the KVA
without touching the trades.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import ndtr

from engines.xva import saccr as sa
from engines.xva.bacva import ALPHA as BA_CVA_ALPHA
from engines.xva.bacva import DISCOUNT_SCALAR, RISK_WEIGHTS, supervisory_discount_factor
from engines.xva.saccr_models import NettingSet, SaccrTrade

FundingSurvival = Literal["both", "counterparty", "none"]
CAPITAL_RATIO = 0.08
"""Minimum total capital as a share of RWA."""
COST_OF_CAPITAL = 0.10
"""Hurdle rate on capital per year (the desk's default)."""
DEFAULT_CCR_RISK_WEIGHT = 1.0
"""100%: an unrated corporate under the standardised approach (CRE20)."""
DEFAULT_CVA_RISK_WEIGHT = RISK_WEIGHTS["other"][1]
"""12%: the BA-CVA weight of an 'other sector', high-yield or unrated name (the most conservative, MAR50.16)."""
EFFECTIVE_MATURITY_FLOOR = 1.0
SURVIVAL_TOLERANCE = 1e-12

__all__ = [
    "CapitalProfile",
    "CreditInputs",
    "Estimate",
    "ExposureProfiles",
    "FundingSpreads",
    "XvaOptions",
    "XvaResult",
    "aged_add_ons",
    "capital_profile",
    "capital_requirement",
    "cva",
    "cva_paths",
    "dva",
    "ead_profile",
    "expected_profiles",
    "exposure_profiles",
    "exposure_profiles_from_parts",
    "first_to_default",
    "funding_adjustments",
    "interval_lengths",
    "kva",
    "mva",
    "survival_from_hazard",
    "survival_weight",
    "xva",
    "xva_from_paths",
]


# ---- the time grid and survival curves -----------------------------------------------------------


def check_times(times: np.ndarray | Sequence[float], name: str = "times") -> np.ndarray:
    """The grid as a float array: finite, non-negative, strictly increasing, at least one date."""
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{name}: a one-dimensional grid of at least one date in years, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or t[0] < 0:
        raise ValueError(f"{name}: dates must be finite years from the valuation date, >= 0")
    if np.any(np.diff(t) <= 0):
        i = int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1
        raise ValueError(f"{name}[{i}]: {t[i]} is not after {t[i - 1]}; dates must be strictly increasing")
    return t


def interval_lengths(times: np.ndarray) -> np.ndarray:
    """dt_i = t_i - t_{i-1} with t_0 = 0: the length of the interval each date stands for."""
    t = check_times(times)
    return np.diff(t, prepend=0.0)


def _previous(values: np.ndarray, start: float = 1.0) -> np.ndarray:
    """The values at t_{i-1} along the last axis (`start` at t_0 = 0)."""
    out = np.empty_like(values)
    out[..., 0] = start
    out[..., 1:] = values[..., :-1]
    return out


def check_survival(survival: np.ndarray | Sequence[float] | float, times: np.ndarray, name: str) -> np.ndarray:
    """Survival probabilities on the grid ([T] or [..., T]): in (0, 1], non-increasing, 1 at time 0."""
    s = np.asarray(survival, dtype=np.float64)
    if s.ndim == 0 or s.shape[-1] != times.size:
        raise ValueError(f"{name}: one survival probability per date ({times.size}), got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0) or np.any(s > 1 + SURVIVAL_TOLERANCE):
        raise ValueError(f"{name}: survival probabilities must lie in (0, 1]")
    if np.any(np.diff(s, axis=-1) > SURVIVAL_TOLERANCE):
        raise ValueError(f"{name}: survival probabilities must not increase with time")
    if times[0] == 0 and np.any(np.abs(s[..., 0] - 1) > 1e-9):
        raise ValueError(f"{name}[..., 0]: the survival probability at time 0 is 1")
    return np.minimum(s, 1.0)


def survival_from_hazard(times: np.ndarray | Sequence[float], hazard: np.ndarray | float) -> np.ndarray:
    """S(t_i) = exp(-sum_{j <= i} h_j dt_j): hazard rates flat on each grid interval (a scalar, [T] or [..., T]).

    A CDS spread s turns into a flat hazard s / (1 - R) (the credit triangle); a bootstrapped curve gives its
    survival probabilities directly (`engines.xva.market.HazardCurve.survival(times)`).
    """
    t = check_times(times)
    h = np.asarray(hazard, dtype=np.float64)
    if not np.all(np.isfinite(h)) or np.any(h < 0):
        raise ValueError("hazard: hazard rates must be finite and non-negative (decimals per year)")
    return np.exp(-np.cumsum(np.broadcast_to(h, (*h.shape[:-1], t.size)) * np.diff(t, prepend=0.0), axis=-1))


def first_to_default(survival_first: np.ndarray, survival_other: np.ndarray | None) -> np.ndarray:
    """P(tau_1 in (t_{i-1}, t_i], tau_1 < tau_2) per interval, the two names independent with flat hazards on it.

    Without a second name: S_1(t_{i-1}) - S_1(t_i).
    """
    s1 = np.asarray(survival_first, dtype=np.float64)
    p1 = _previous(s1)
    if survival_other is None:
        return p1 - s1
    s2 = np.asarray(survival_other, dtype=np.float64)
    s1, s2 = np.broadcast_arrays(s1, s2)
    p1, p2 = _previous(s1), _previous(s2)
    h1 = np.log(p1) - np.log(s1)
    h2 = np.log(p2) - np.log(s2)
    total = h1 + h2
    share = np.divide(h1, total, out=np.zeros_like(total), where=total > 0)
    return share * (p1 * p2 - s1 * s2)


def survival_weight(
    mode: FundingSurvival, counterparty_survival: np.ndarray, own_survival: np.ndarray | None
) -> np.ndarray | float:
    """The weight w(t) of a funding or capital cost at t: it stops at the first default (see the module docstring)."""
    if mode == "none":
        return 1.0
    if mode == "counterparty" or own_survival is None:
        return counterparty_survival
    return counterparty_survival * own_survival


# ---- boundary models and inputs ------------------------------------------------------------------


class XvaOptions(BaseModel):
    """How the adjustments are computed and added up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bilateral: bool = Field(
        True, description="First-to-default CVA and DVA (each default weighted by the other's survival)."
    )
    funding_survival: FundingSurvival = Field(
        "both", description="Funding and capital costs stop at the first default of both, the counterparty's, or none."
    )
    include_dva: bool = Field(True, description="DVA counted in the total (off if the FBA carries own-default).")
    cost_of_capital: float = Field(COST_OF_CAPITAL, ge=0, le=1, description="Hurdle rate on capital, per year.")
    capital_ratio: float = Field(CAPITAL_RATIO, gt=0, le=1, description="Capital as a share of RWA.")


@dataclass(frozen=True)
class ExposureProfiles:
    """Discounted expected exposures of netting sets on one grid (amounts in `currency`).

    `ee`[NS, T] = E[D(t) max(X, 0)], `ene`[NS, T] = E[D(t) max(-X, 0)] (a magnitude), `discount`[NS, T] = P(0, t)
    (the expectation of D(t)), `initial_margin`[NS, T] = E[D(t) IM(t)] of the IM the bank posts, or None.
    """

    times: np.ndarray
    ee: np.ndarray
    ene: np.ndarray
    discount: np.ndarray
    netting_set_ids: tuple[str, ...]
    initial_margin: np.ndarray | None = None
    currency: str = "USD"

    def __post_init__(self) -> None:
        t = check_times(self.times)
        object.__setattr__(self, "times", t)
        shape = (len(self.netting_set_ids), t.size)
        for name in ("ee", "ene", "discount", "initial_margin"):
            value = getattr(self, name)
            if value is None:
                continue
            if value.shape != shape:
                raise ValueError(f"{name}: expected shape {shape} (netting sets x dates), got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name}: values must be finite")
            if np.any(value < 0):
                raise ValueError(f"{name}: expected exposures and margins are magnitudes (>= 0)")
        if np.any(self.discount <= 0):
            raise ValueError("discount: discount factors must be positive")
        if len(set(self.netting_set_ids)) != len(self.netting_set_ids):
            raise ValueError("netting_set_ids: ids must be unique")

    @property
    def size(self) -> int:
        return len(self.netting_set_ids)

    @property
    def ee_forward(self) -> np.ndarray:
        """EE in the t-forward measure, EE*(t) / P(0, t) (the plain EE when the curve is deterministic)."""
        return self.ee / self.discount

    @property
    def value_forward(self) -> np.ndarray:
        """E[X(t)] in the t-forward measure: the expected collateralised value."""
        return (self.ee - self.ene) / self.discount

    def index(self, netting_set_id: str) -> int:
        try:
            return self.netting_set_ids.index(netting_set_id)
        except ValueError:
            raise KeyError(f"netting_set_ids: no netting set {netting_set_id!r}") from None

    @classmethod
    def concat(cls, parts: Sequence[ExposureProfiles]) -> ExposureProfiles:
        """The netting sets of several profiles (e.g. the exposure engine's chunks) in one, in order."""
        if not parts:
            raise ValueError("parts: give at least one set of profiles")
        first = parts[0]
        for i, p in enumerate(parts[1:], start=1):
            if p.currency != first.currency or not np.array_equal(p.times, first.times):
                raise ValueError(f"parts[{i}]: profiles must share the currency and the time grid")
        with_im = any(p.initial_margin is not None for p in parts)
        return cls(
            times=first.times,
            ee=np.concatenate([p.ee for p in parts]),
            ene=np.concatenate([p.ene for p in parts]),
            discount=np.concatenate([p.discount for p in parts]),
            netting_set_ids=tuple(i for p in parts for i in p.netting_set_ids),
            initial_margin=np.concatenate(
                [np.zeros_like(p.ee) if p.initial_margin is None else p.initial_margin for p in parts]
            )
            if with_im
            else None,
            currency=first.currency,
        )

    def with_netting_set(self, other: ExposureProfiles) -> ExposureProfiles:
        """These profiles with `other`'s netting sets replacing the rows of the same ids (a what-if)."""
        if other.currency != self.currency or not np.array_equal(other.times, self.times):
            raise ValueError("other: profiles must share the currency and the time grid")
        rows = [self.index(i) for i in other.netting_set_ids]
        ee, ene, df = self.ee.copy(), self.ene.copy(), self.discount.copy()
        ee[rows], ene[rows], df[rows] = other.ee, other.ene, other.discount
        im = None
        if self.initial_margin is not None or other.initial_margin is not None:
            im = np.zeros_like(ee) if self.initial_margin is None else self.initial_margin.copy()
            im[rows] = 0.0 if other.initial_margin is None else other.initial_margin
        return replace(self, ee=ee, ene=ene, discount=df, initial_margin=im)


@dataclass(frozen=True)
class CreditInputs:
    """Survival curves on the grid and recoveries.

    `counterparty_survival` is [T] (one curve for all) or [NS, T]; `counterparty_recovery` a scalar or [NS];
    `own_survival` [T] (the bank's own curve) or None for unilateral adjustments.
    """

    counterparty_survival: np.ndarray
    counterparty_recovery: np.ndarray | float
    own_survival: np.ndarray | None = None
    own_recovery: float = 0.4

    def __post_init__(self) -> None:
        r = np.asarray(self.counterparty_recovery, dtype=np.float64)
        if r.ndim > 1 or not np.all(np.isfinite(r)) or np.any(r < 0) or np.any(r >= 1):
            raise ValueError("counterparty_recovery: recoveries are fractions in [0, 1), a scalar or one per set")
        if not math.isfinite(self.own_recovery) or not 0 <= self.own_recovery < 1:
            raise ValueError(f"own_recovery: {self.own_recovery} is not a fraction in [0, 1)")

    def checked(self, times: np.ndarray, sets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(S_c [NS, T], R_c [NS], S_b [T] or None), validated against the grid and the netting sets."""
        s = check_survival(self.counterparty_survival, times, "counterparty_survival")
        if s.ndim > 2 or (s.ndim == 2 and s.shape[0] != sets):
            raise ValueError(f"counterparty_survival: expected [{times.size}] or [{sets}, {times.size}], got {s.shape}")
        r = np.asarray(self.counterparty_recovery, dtype=np.float64)
        if r.ndim == 1 and r.size != sets:
            raise ValueError(f"counterparty_recovery: one recovery per netting set ({sets}), got {r.size}")
        own = None
        if self.own_survival is not None:
            own = check_survival(self.own_survival, times, "own_survival")
            if own.ndim != 1:
                raise ValueError(f"own_survival: the bank's one curve, shape [{times.size}], got {own.shape}")
        return np.broadcast_to(s, (sets, times.size)), np.broadcast_to(r, (sets,)), own


@dataclass(frozen=True)
class FundingSpreads:
    """Unsecured funding spreads over the discount rate, decimals per year: scalars, [T], [NS, 1] or [NS, T]."""

    borrow: np.ndarray | float
    lend: np.ndarray | float

    def checked(self, times: np.ndarray, sets: int) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for name in ("borrow", "lend"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if not np.all(np.isfinite(value)) or np.any(np.abs(value) > 1):
                raise ValueError(f"{name}: spreads are finite decimals per year (0.005 = 50 bp)")
            try:
                out.append(np.broadcast_to(value, (sets, times.size)))
            except ValueError:
                raise ValueError(
                    f"{name}: a scalar, [{times.size}], [{sets}, 1] or [{sets}, {times.size}], got {value.shape}"
                ) from None
        return out[0], out[1]


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate and its standard error."""

    value: float
    stderr: float


# ---- profiles from paths or expectations -----------------------------------------------------------


def exposure_profiles(
    times: np.ndarray | Sequence[float],
    exposure_paths: np.ndarray,
    discount: np.ndarray | None = None,
    *,
    initial_margin_paths: np.ndarray | None = None,
    netting_set_ids: Sequence[str] | None = None,
    currency: str = "USD",
) -> ExposureProfiles:
    """Discounted EE/ENE (and IM) profiles from paths.

    `exposure_paths`: [N, T] for one netting set or [NS, N, T], the collateralised value X = V - C per path and
    date. `discount`: None (no discounting), [T] (a curve), [N, T] (stochastic discount factors of the
    simulation, shared by the netting sets) or [NS, N, T]. `initial_margin_paths`: the IM posted, shaped as the
    exposure paths. P(0, t) is the paths' mean discount factor.
    """
    t = check_times(times)
    x = np.asarray(exposure_paths, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != t.size or x.shape[1] == 0:
        raise ValueError(f"exposure_paths: expected [paths, {t.size}] or [sets, paths, {t.size}], got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("exposure_paths: values must be finite")
    ns, n, _ = x.shape
    if discount is None:
        d = np.ones((1, 1, t.size))
    else:
        d = np.asarray(discount, dtype=np.float64)
        expected = {1: (t.size,), 2: (n, t.size), 3: (ns, n, t.size)}
        if d.ndim not in expected or d.shape != expected[d.ndim]:
            raise ValueError(f"discount: expected [{t.size}], [{n}, {t.size}] or [{ns}, {n}, {t.size}], got {d.shape}")
        d = d.reshape((1,) * (3 - d.ndim) + d.shape)
    ee = np.einsum("snt,snt->st", np.broadcast_to(d, x.shape), np.maximum(x, 0.0)) / n
    ene = np.einsum("snt,snt->st", np.broadcast_to(d, x.shape), np.maximum(-x, 0.0)) / n
    df = np.broadcast_to(d.mean(axis=1), (ns, t.size)).copy()
    im = None
    if initial_margin_paths is not None:
        m = np.asarray(initial_margin_paths, dtype=np.float64)
        m = m[None] if m.ndim == 2 else m
        if m.shape != x.shape:
            raise ValueError(f"initial_margin_paths: expected the exposure paths' shape {x.shape}, got {m.shape}")
        im = np.einsum("snt,snt->st", np.broadcast_to(d, x.shape), m) / n
    ids = _ids(netting_set_ids, ns)
    return ExposureProfiles(t, ee, ene, df, ids, im, currency)


def exposure_profiles_from_parts(
    times: np.ndarray | Sequence[float],
    positive: np.ndarray,
    negative: np.ndarray,
    discount: np.ndarray | None = None,
    *,
    initial_margin: np.ndarray | None = None,
    netting_set_ids: Sequence[str] | None = None,
    currency: str = "USD",
) -> ExposureProfiles:
    """Profiles from separate positive and negative exposures in the exposure engine's layout (paths last).

    `positive` [NS, T, N] = max(V - C - IM_received, 0) and `negative` [NS, T, N] = min(V - C + IM_posted, 0)
    <= 0 (the sign of `engines.xva.exposure.ExposureChunk`: the two are separate when initial margin is
    exchanged); `discount` None, [T] or [T, N] (the numeraire on the exposure dates); `initial_margin` the IM
    posted, [NS, T, N]. P(0, t) is the mean discount factor.
    """
    t = check_times(times)
    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    if pos.ndim != 3 or pos.shape[1] != t.size or pos.shape[2] == 0:
        raise ValueError(f"positive: expected [sets, {t.size}, paths], got {pos.shape}")
    if neg.shape != pos.shape:
        raise ValueError(f"negative: expected the positive exposures' shape {pos.shape}, got {neg.shape}")
    if np.any(pos < 0) or np.any(neg > 0):
        raise ValueError("positive, negative: positive exposures are >= 0 and negative ones <= 0 on every path")
    ns, _, n = pos.shape
    d = np.ones((t.size, 1)) if discount is None else np.asarray(discount, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    if d.shape not in ((t.size, 1), (t.size, n)):
        raise ValueError(f"discount: expected [{t.size}] or [{t.size}, {n}], got {np.shape(discount)}")
    im = None
    if initial_margin is not None:
        m = np.asarray(initial_margin, dtype=np.float64)
        if m.shape != pos.shape:
            raise ValueError(f"initial_margin: expected the exposures' shape {pos.shape}, got {m.shape}")
        im = np.einsum("stn,tn->st", m, np.broadcast_to(d, (t.size, n))) / n
    return ExposureProfiles(
        t,
        np.einsum("stn,tn->st", pos, np.broadcast_to(d, (t.size, n))) / n,
        -np.einsum("stn,tn->st", neg, np.broadcast_to(d, (t.size, n))) / n,
        np.broadcast_to(d.mean(axis=1), (ns, t.size)).copy(),
        _ids(netting_set_ids, ns),
        im,
        currency,
    )


def expected_profiles(
    times: np.ndarray | Sequence[float],
    ee: np.ndarray,
    ene: np.ndarray | float,
    discount: np.ndarray | float,
    *,
    initial_margin: np.ndarray | None = None,
    netting_set_ids: Sequence[str] | None = None,
    currency: str = "USD",
) -> ExposureProfiles:
    """Profiles from undiscounted expectations EE(t), ENE(t) >= 0, IM(t) ([T] or [NS, T]) and a curve P(0, t)."""
    t = check_times(times)
    e = np.atleast_2d(np.asarray(ee, dtype=np.float64))
    if e.ndim != 2 or e.shape[1] != t.size:
        raise ValueError(f"ee: expected [{t.size}] or [sets, {t.size}], got {np.shape(ee)}")
    shape = e.shape

    def expand(value: Any, name: str) -> np.ndarray:
        a = np.asarray(value, dtype=np.float64)
        try:
            return np.broadcast_to(a, shape).copy()
        except ValueError:
            raise ValueError(f"{name}: expected a scalar, [{t.size}] or {list(shape)}, got {a.shape}") from None

    df = expand(discount, "discount")
    im = None if initial_margin is None else expand(initial_margin, "initial_margin") * df
    return ExposureProfiles(t, e * df, expand(ene, "ene") * df, df, _ids(netting_set_ids, shape[0]), im, currency)


def _ids(ids: Sequence[str] | None, n: int) -> tuple[str, ...]:
    if ids is None:
        return tuple(f"netting-set-{i + 1}" for i in range(n))
    out = tuple(ids)
    if len(out) != n:
        raise ValueError(f"netting_set_ids: one id per netting set ({n}), got {len(out)}")
    return out


# ---- the adjustments on profiles (any leading shape [..., T]) -----------------------------------------


def cva(
    times: np.ndarray | Sequence[float],
    ee: np.ndarray,
    counterparty_survival: np.ndarray,
    recovery: np.ndarray | float,
    own_survival: np.ndarray | None = None,
) -> np.ndarray:
    """(1 - R_c) sum_i EE*(t_i) x P(counterparty defaults in (t_{i-1}, t_i] [first]), per leading index.

    `ee` is the discounted expected positive exposure [..., T]; with `own_survival` the CVA is bilateral
    (first to default), without it unilateral.
    """
    t = check_times(times)
    s_c = check_survival(counterparty_survival, t, "counterparty_survival")
    s_b = None if own_survival is None else check_survival(own_survival, t, "own_survival")
    return (1.0 - np.asarray(recovery, dtype=np.float64)) * np.sum(ee * first_to_default(s_c, s_b), axis=-1)


def dva(
    times: np.ndarray | Sequence[float],
    ene: np.ndarray,
    own_survival: np.ndarray,
    own_recovery: float,
    counterparty_survival: np.ndarray | None = None,
) -> np.ndarray:
    """(1 - R_b) sum_i ENE*(t_i) x P(the bank defaults in (t_{i-1}, t_i] [first]): the CVA the counterparty sees."""
    return cva(times, ene, own_survival, own_recovery, counterparty_survival)


def funding_adjustments(
    times: np.ndarray | Sequence[float],
    ee: np.ndarray,
    ene: np.ndarray,
    borrow_spread: np.ndarray | float,
    lend_spread: np.ndarray | float,
    weight: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(FCA, FBA) = (sum s_borrow EE* w dt, sum s_lend ENE* w dt): the cost of funding the positive exposure and
    the benefit of the negative one, both >= 0 for non-negative spreads (FVA = FCA - FBA)."""
    dt = interval_lengths(np.asarray(times))
    fca = np.sum(borrow_spread * ee * weight * dt, axis=-1)
    fba = np.sum(lend_spread * ene * weight * dt, axis=-1)
    return fca, fba


def mva(
    times: np.ndarray | Sequence[float],
    initial_margin: np.ndarray,
    borrow_spread: np.ndarray | float,
    weight: np.ndarray | float = 1.0,
) -> np.ndarray:
    """sum_i s_borrow(t_i) IM*(t_i) w(t_i) dt_i: funding the discounted expected initial margin posted."""
    dt = interval_lengths(np.asarray(times))
    return np.sum(borrow_spread * initial_margin * weight * dt, axis=-1)


def kva(
    times: np.ndarray | Sequence[float],
    capital: np.ndarray,
    discount: np.ndarray | float,
    weight: np.ndarray | float = 1.0,
    cost_of_capital: float = COST_OF_CAPITAL,
) -> np.ndarray:
    """cost_of_capital x sum_i K(t_i) P(0, t_i) w(t_i) dt_i: the hurdle return on the capital held over the life."""
    dt = interval_lengths(np.asarray(times))
    return cost_of_capital * np.sum(capital * discount * weight * dt, axis=-1)


def cva_paths(
    times: np.ndarray | Sequence[float],
    exposure_paths: np.ndarray,
    counterparty_survival: np.ndarray,
    recovery: float,
    discount: np.ndarray | None = None,
    own_survival: np.ndarray | None = None,
) -> Estimate:
    """The CVA of one netting set from its paths [N, T] (discount None, [T] or [N, T]), with its standard error.

    The mean over paths of (1 - R) sum_i D(t_i) max(X(t_i), 0) dPD_i: `cva` of the path-averaged profile.
    """
    t = check_times(times)
    x = np.asarray(exposure_paths, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != t.size:
        raise ValueError(f"exposure_paths: expected [paths, {t.size}], got {x.shape}")
    d = 1.0 if discount is None else np.asarray(discount, dtype=np.float64)
    s_c = check_survival(counterparty_survival, t, "counterparty_survival")
    s_b = None if own_survival is None else check_survival(own_survival, t, "own_survival")
    per_path = (1.0 - recovery) * (d * np.maximum(x, 0.0)) @ first_to_default(s_c, s_b)
    return Estimate(float(per_path.mean()), float(per_path.std(ddof=1) / math.sqrt(x.shape[0])))


# ---- the SA-CCR capital profile ----------------------------------------------------------------------


@dataclass(frozen=True)
class CapitalProfile:
    """The trade-dependent part of each netting set's capital at each date, [NS, T] unless said.

    `add_on`: SA-CCR aggregate add-on of the netting set aged to t (margined maturity factor if margined);
    `unmargined_add_on`: the same as if unmargined (the cap of a margined EAD); `alive`: some trade still
    alive; `margined` [NS]; `rc_floor` [NS]: TH + MTA - NICA of a margined set (0 otherwise);
    `effective_maturity`: M(t) in years; `ccr_risk_weight`, `cva_risk_weight` [NS]: decimals (1.0 = 100%).
    """

    add_on: np.ndarray
    unmargined_add_on: np.ndarray
    alive: np.ndarray
    margined: np.ndarray
    rc_floor: np.ndarray
    effective_maturity: np.ndarray
    ccr_risk_weight: np.ndarray
    cva_risk_weight: np.ndarray
    netting_set_ids: tuple[str, ...] = field(default=())

    def rows(self, index: Sequence[int]) -> CapitalProfile:
        """The profile of the netting sets at `index`, in that order."""
        i = np.asarray(index, dtype=np.int64)
        return CapitalProfile(
            self.add_on[i],
            self.unmargined_add_on[i],
            self.alive[i],
            self.margined[i],
            self.rc_floor[i],
            self.effective_maturity[i],
            self.ccr_risk_weight[i],
            self.cva_risk_weight[i],
            tuple(self.netting_set_ids[k] for k in i) if self.netting_set_ids else (),
        )

    @classmethod
    def concat(cls, parts: Sequence[CapitalProfile]) -> CapitalProfile:
        """The netting sets of several profiles in one, in order."""
        return cls(
            *(np.concatenate([getattr(p, name) for p in parts]) for name in CAPITAL_ARRAYS),
            netting_set_ids=tuple(i for p in parts for i in p.netting_set_ids),
        )

    def with_netting_set(self, row: int, other: CapitalProfile) -> CapitalProfile:
        """This profile with the netting set at `row` replaced by `other`'s single row (a what-if)."""
        arrays = {}
        for name in CAPITAL_ARRAYS:
            a = getattr(self, name).copy()
            a[row] = getattr(other, name)[0]
            arrays[name] = a
        return replace(self, **arrays)


CAPITAL_ARRAYS = (
    "add_on",
    "unmargined_add_on",
    "alive",
    "margined",
    "rc_floor",
    "effective_maturity",
    "ccr_risk_weight",
    "cva_risk_weight",
)
"""The per-netting-set arrays of a `CapitalProfile`, in its fields' order."""


def _option_volatility(trade: SaccrTrade) -> float:
    """The supervisory option volatility of the trade's asset class (CRE52.72 Table 2)."""
    cls = trade.asset_class
    if cls == "interest_rate":
        return sa.IR_VOLATILITY
    if cls == "fx":
        return sa.FX_VOLATILITY
    if cls == "credit":
        return (sa.CREDIT_INDEX if trade.index else sa.CREDIT_SINGLE_NAME)[1]
    if cls == "equity":
        return (sa.EQUITY_INDEX if trade.index else sa.EQUITY_SINGLE_NAME)[2]
    return (sa.ELECTRICITY if trade.electricity else sa.OTHER_COMMODITY)[2]


def aged_add_ons(
    netting_set: NettingSet, times: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(add-on, unmargined add-on, alive, effective maturity) of the netting set aged to each date [T].

    At date t a trade of maturity M <= t is gone; the others have M - t, max(S - t, 0), E - t and an option's
    exercise T - t (an exercise date passed with the trade still alive keeps the shortest exercise, ten business
    days: the delta of an option about to be exercised). Supervisory durations, maturity factors, option deltas
    and interest rate maturity buckets follow from saccr's rules; all dates are computed at once.
    """
    t = check_times(times)[:, None]
    compiled = sa.compile_netting_set(netting_set)
    trades = netting_set.trades
    if not trades:
        zeros = np.zeros(t.size)
        return zeros, zeros.copy(), np.zeros(t.size, dtype=bool), np.full(t.size, EFFECTIVE_MATURITY_FLOOR)
    notional = np.array([tr.notional for tr in trades])
    maturity = np.array([tr.maturity_years for tr in trades])
    start = np.array([tr.start for tr in trades])
    end = np.array([tr.end for tr in trades])
    duration = np.array([tr.asset_class in ("interest_rate", "credit") for tr in trades])
    alive = maturity[None, :] > t + 1e-12
    remaining = np.maximum(maturity[None, :] - t, 0.0)
    end_left = np.maximum(end[None, :] - t, 0.0)
    sd = sa.supervisory_duration(np.maximum(start[None, :] - t, 0.0), end_left)
    adjusted = np.where(duration, notional * sd, notional)
    delta = np.broadcast_to(compiled.delta, alive.shape).copy()
    for j, tr in enumerate(trades):
        if tr.option is not None:
            o = tr.option
            exercise = np.maximum(o.exercise_years - t[:, 0], sa.MATURITY_FLOOR_YEARS)
            vol = _option_volatility(tr)
            root = vol * np.sqrt(exercise)
            d1 = (math.log((o.underlying_price + o.shift) / (o.strike + o.shift)) + 0.5 * root * root) / root
            sign = 1.0 if o.position == "bought" else -1.0
            delta[:, j] = sign * ndtr(d1) if o.kind == "call" else -sign * ndtr(-d1)
    group = np.broadcast_to(compiled.trade_group, alive.shape).copy()
    is_ir = np.array([tr.asset_class == "interest_rate" for tr in trades])
    if is_ir.any():
        ir_row = {int(h): r for r, h in enumerate(compiled.ir_hedging_sets)}
        rows = np.array([ir_row[int(compiled.group_hedging_set[g])] for g in compiled.trade_group[is_ir]])
        lo, hi = sa.IR_BUCKET_LIMITS
        bucket = np.where(end_left[:, is_ir] <= lo, 0, np.where(end_left[:, is_ir] <= hi, 1, 2))
        group[:, is_ir] = compiled.ir_bucket_groups[rows[None, :], bucket]
    base = compiled.supervisory_factor * adjusted * delta * alive
    n_groups = len(compiled.group_label)
    flat = (np.arange(t.size)[:, None] * n_groups + group).ravel()

    def total(mf: np.ndarray | float) -> np.ndarray:
        groups = np.bincount(flat, weights=(base * mf).ravel(), minlength=t.size * n_groups)
        return sa.hedging_set_add_ons(compiled, groups.reshape(t.size, n_groups)).sum(axis=1)

    unmargined = total(sa.unmargined_maturity_factor(remaining))
    margined_mf = compiled.margined_mf
    add_on = unmargined if margined_mf is None else total(margined_mf)
    weight = notional * alive
    live = weight.sum(axis=1)
    average = np.divide((weight * remaining).sum(axis=1), live, out=np.zeros(t.size), where=live > 0)
    return add_on, unmargined, alive.any(axis=1), np.maximum(average, EFFECTIVE_MATURITY_FLOOR)


def capital_profile(
    netting_sets: Sequence[NettingSet],
    times: np.ndarray | Sequence[float],
    *,
    ccr_risk_weight: np.ndarray | Sequence[float] | float = DEFAULT_CCR_RISK_WEIGHT,
    cva_risk_weight: np.ndarray | Sequence[float] | float = DEFAULT_CVA_RISK_WEIGHT,
) -> CapitalProfile:
    """The SA-CCR capital profile of each netting set on the grid (see `aged_add_ons`).

    `cva_risk_weight` is the counterparty's BA-CVA weight (`engines.xva.bacva.risk_weight(sector, quality)`);
    `ccr_risk_weight` its counterparty credit risk weight (CRE20-22). Scalars apply to every netting set.
    """
    t = check_times(times)
    ns = len(netting_sets)
    parts = [aged_add_ons(s, t) for s in netting_sets]
    rw = {}
    for name, value in (("ccr_risk_weight", ccr_risk_weight), ("cva_risk_weight", cva_risk_weight)):
        a = np.asarray(value, dtype=np.float64)
        if a.ndim > 1 or (a.ndim == 1 and a.size != ns):
            raise ValueError(f"{name}: a scalar or one weight per netting set ({ns}), got shape {a.shape}")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"{name}: risk weights are non-negative decimals (1.0 = 100%)")
        rw[name] = np.broadcast_to(a, (ns,)).copy()
    stacked = [np.array([p[k] for p in parts]).reshape(ns, t.size) for k in range(4)]
    return CapitalProfile(
        add_on=stacked[0],
        unmargined_add_on=stacked[1],
        alive=stacked[2].astype(bool),
        margined=np.array([s.margined for s in netting_sets], dtype=bool),
        rc_floor=np.array(
            [s.threshold + s.minimum_transfer_amount - s.nica if s.margined else 0.0 for s in netting_sets]
        ),
        effective_maturity=stacked[3],
        ccr_risk_weight=rw["ccr_risk_weight"],
        cva_risk_weight=rw["cva_risk_weight"],
        netting_set_ids=tuple(s.id for s in netting_sets),
    )


def ead_profile(capital: CapitalProfile, ee_forward: np.ndarray, value_forward: np.ndarray) -> np.ndarray:
    """EAD(t) = alpha (RC + multiplier x AddOn) with RC = EE(t) (margined: at least TH + MTA - NICA), the
    multiplier from the expected collateralised value, a margined EAD capped at the unmargined one; 0 once every
    trade has matured."""
    a, au = capital.add_on, capital.unmargined_add_on
    if ee_forward.shape != a.shape:
        raise ValueError(f"ee_forward: expected the capital profile's shape {a.shape}, got {ee_forward.shape}")
    unmargined = sa.ALPHA * (ee_forward + sa.pfe_multiplier(value_forward, au) * au)
    rc = np.maximum(ee_forward, capital.rc_floor[:, None])
    margined = np.minimum(sa.ALPHA * (rc + sa.pfe_multiplier(value_forward, a) * a), unmargined)
    ead = np.where(capital.margined[:, None], margined, unmargined)
    return np.where(capital.alive, ead, 0.0)


def capital_requirement(
    capital: CapitalProfile, ead: np.ndarray, capital_ratio: float = CAPITAL_RATIO
) -> tuple[np.ndarray, np.ndarray]:
    """(K_ccr, K_cva) [NS, T]: capital_ratio x RW_ccr x EAD, and DS x RW_cva / alpha x M x EAD x DF(M)."""
    ccr = capital_ratio * capital.ccr_risk_weight[:, None] * ead
    m = capital.effective_maturity
    cva_capital = DISCOUNT_SCALAR * capital.cva_risk_weight[:, None] / BA_CVA_ALPHA * m * ead
    return ccr, cva_capital * supervisory_discount_factor(m)


# ---- the result and the batch ---------------------------------------------------------------------------

COMPONENTS = ("cva", "cva_unilateral", "dva", "fca", "fba", "fva", "mva", "kva", "total")


@dataclass(frozen=True)
class XvaResult:
    """Adjustments per netting set [NS] (non-negative magnitudes; see the module docstring for the signs).

    `cva` is bilateral when the bank's curve was given and `options.bilateral`, else equal to `cva_unilateral`.
    `not_computed` names the adjustments left at zero for want of inputs (MVA without IM, KVA without capital).
    """

    netting_set_ids: tuple[str, ...]
    currency: str
    cva_unilateral: np.ndarray
    cva: np.ndarray
    dva: np.ndarray
    fca: np.ndarray
    fba: np.ndarray
    mva: np.ndarray
    kva: np.ndarray
    options: XvaOptions = field(default_factory=XvaOptions)
    not_computed: tuple[str, ...] = ()

    @property
    def fva(self) -> np.ndarray:
        return self.fca - self.fba

    @property
    def total(self) -> np.ndarray:
        """The total cost per netting set: CVA - DVA + FCA - FBA + MVA + KVA (DVA only if included)."""
        dva = self.dva if self.options.include_dva else 0.0
        return self.cva - dva + self.fca - self.fba + self.mva + self.kva

    @property
    def value_adjustment(self) -> np.ndarray:
        """What the adjustments add to the netting sets' value: -total."""
        return -self.total

    def component(self, name: str) -> np.ndarray:
        if name not in COMPONENTS:
            raise KeyError(f"component: {name!r} is not one of {', '.join(COMPONENTS)}")
        return getattr(self, name)

    def totals(self) -> dict[str, float]:
        """Each adjustment summed over the netting sets."""
        return {name: float(np.sum(self.component(name))) for name in COMPONENTS}

    def netting_set(self, netting_set_id: str) -> dict[str, float]:
        try:
            i = self.netting_set_ids.index(netting_set_id)
        except ValueError:
            raise KeyError(f"netting_set_id: no netting set {netting_set_id!r}") from None
        return {name: float(self.component(name)[i]) for name in COMPONENTS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: conventions, totals and one row per netting set."""
        columns = {name: self.component(name).tolist() for name in COMPONENTS}
        return {
            "currency": self.currency,
            "conventions": {
                "sign": "magnitudes; total = cva - dva + fca - fba + mva + kva is a cost, value adjustment = -total",
                "units": f"{self.currency}; time grid in years from the valuation date",
                "bilateral": self.options.bilateral,
                "include_dva": self.options.include_dva,
                "funding_survival": self.options.funding_survival,
                "cost_of_capital": self.options.cost_of_capital,
            },
            "not_computed": list(self.not_computed),
            "totals": self.totals(),
            "netting_sets": [
                {"id": nid, **{name: columns[name][i] for name in COMPONENTS}}
                for i, nid in enumerate(self.netting_set_ids)
            ],
        }


def xva(
    exposure: ExposureProfiles,
    credit: CreditInputs,
    funding: FundingSpreads | None = None,
    capital: CapitalProfile | None = None,
    options: XvaOptions | None = None,
) -> XvaResult:
    """Every adjustment of every netting set in `exposure`, vectorised over netting sets x dates.

    `funding` None leaves FCA, FBA and MVA at zero; `capital` None the KVA; `exposure.initial_margin` None the MVA.
    """
    opts = options or XvaOptions()
    t = exposure.times
    ns = exposure.size
    s_c, r_c, s_b = credit.checked(t, ns)
    bilateral = opts.bilateral and s_b is not None
    d_c = first_to_default(s_c, None)
    cva_u = (1.0 - r_c) * np.einsum("st,st->s", exposure.ee, d_c)
    cva_b = (1.0 - r_c) * np.einsum("st,st->s", exposure.ee, first_to_default(s_c, s_b)) if bilateral else cva_u
    if s_b is None:
        dva_ = np.zeros(ns)
    else:
        d_b = first_to_default(np.broadcast_to(s_b, s_c.shape), s_c if bilateral else None)
        dva_ = (1.0 - credit.own_recovery) * np.einsum("st,st->s", exposure.ene, d_b)
    weight = survival_weight(opts.funding_survival, s_c, s_b)
    missing = []
    zeros = np.zeros(ns)
    if funding is None:
        fca = fba = mva_ = zeros
        missing += ["fca", "fba", "mva"]
    else:
        borrow, lend = funding.checked(t, ns)
        fca, fba = funding_adjustments(t, exposure.ee, exposure.ene, borrow, lend, weight)
        if exposure.initial_margin is None:
            mva_ = zeros
            missing.append("mva")
        else:
            mva_ = mva(t, exposure.initial_margin, borrow, weight)
    if capital is None:
        kva_ = zeros
        missing.append("kva")
    else:
        if capital.add_on.shape != exposure.ee.shape:
            raise ValueError(f"capital: expected a profile of shape {exposure.ee.shape}, got {capital.add_on.shape}")
        ead = ead_profile(capital, exposure.ee_forward, exposure.value_forward)
        k_ccr, k_cva = capital_requirement(capital, ead, opts.capital_ratio)
        kva_ = kva(t, k_ccr + k_cva, exposure.discount, weight, opts.cost_of_capital)
    return XvaResult(
        netting_set_ids=exposure.netting_set_ids,
        currency=exposure.currency,
        cva_unilateral=cva_u,
        cva=cva_b,
        dva=dva_,
        fca=fca,
        fba=fba,
        mva=mva_,
        kva=kva_,
        options=opts,
        not_computed=tuple(missing),
    )


def xva_from_paths(
    times: np.ndarray | Sequence[float],
    exposure_paths: np.ndarray,
    credit: CreditInputs,
    funding: FundingSpreads | None = None,
    *,
    discount: np.ndarray | None = None,
    initial_margin_paths: np.ndarray | None = None,
    netting_set: NettingSet | None = None,
    ccr_risk_weight: float = DEFAULT_CCR_RISK_WEIGHT,
    cva_risk_weight: float = DEFAULT_CVA_RISK_WEIGHT,
    options: XvaOptions | None = None,
    currency: str = "USD",
) -> XvaResult:
    """One netting set's adjustments from its paths [N, T] (the what-if path: profiles, SA-CCR profile, `xva`)."""
    exposure = exposure_profiles(
        times,
        exposure_paths,
        discount,
        initial_margin_paths=initial_margin_paths,
        netting_set_ids=None if netting_set is None else [netting_set.id],
        currency=currency,
    )
    capital = None
    if netting_set is not None:
        capital = capital_profile(
            [netting_set], exposure.times, ccr_risk_weight=ccr_risk_weight, cva_risk_weight=cva_risk_weight
        )
    return xva(exposure, credit, funding, capital, options)
