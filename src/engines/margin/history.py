"""A synthetic daily history of risk-factor returns, with volatility clustering, fat tails and stress
periods.

SYNTHETIC: these numbers are generated, not observed. They have the statistical features a margin
model is sensitive to, at realistic magnitudes, so that the engines can be exercised and tested
without licensed market data; no figure computed from them describes a real market.

How a day's returns are drawn (all seeded, so a seed gives the same history byte for byte):

1. Correlation by blocks. Each factor loads on a global risk-on factor, a factor of its asset class,
   and factors of its currency or region (an IR curve's level and slope, a region's equity and
   credit, the European currencies, commodity sectors); the rest is its own. Equity vols load against
   equities (a falling market raises vol), credit spreads against the global factor.
2. Fat tails: the day's shocks are multivariate Student-t (ν = 6, scaled to unit variance), one
   chi-square draw shared by all factors, so extreme days are extreme everywhere at once.
3. Volatility clustering: each factor's shock goes through a GARCH(1,1) filter with unit
   unconditional variance, ``h_{t+1} = (1 − α − β) + α ε_t² + β h_t`` (α 0.04–0.08, β 0.86–0.93).
4. Stress episodes (`STRESS_EPISODES`): windows at fixed fractions of the history in which volatility
   is multiplied by class, the global loading grows (correlations rise) and returns drift the way
   the episode goes (spreads and vols up, equities down, ...). The window ramps up, holds and eases,
   and its tail decays after it; the window's days are flagged in `FactorHistory.stressed`.
5. Returns are ``σ_i · (m_t,i · ε_t,i + μ_t,i)`` with the factor's normal daily vol σ_i
   (`normal_daily_vol`): log returns for prices, FX and vols, absolute changes in decimals for rates
   and spreads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from engines.margin.arrays import FactorHistory
from engines.margin.book import RiskFactor

TRADING_DAYS_PER_YEAR = 252
STUDENT_DF = 6.0
"""Degrees of freedom of the multivariate-t shocks (excess kurtosis 3 before the GARCH filter)."""

RATE_VOL_BP: dict[str, float] = {"USD": 7.0, "EUR": 6.0, "GBP": 7.5, "JPY": 4.0, "CHF": 5.0, "CAD": 6.5, "AUD": 7.0}
"""Normal daily vol of the 2Y-10Y swap rates in basis points, by currency (others: 6 bp)."""
TENOR_VOL_SCALE: dict[str, float] = {"3M": 0.65, "1Y": 0.85, "2Y": 1.0, "5Y": 1.05, "10Y": 1.0, "30Y": 0.9}
TENOR_SLOPE: dict[str, float] = {"3M": -0.35, "1Y": -0.25, "2Y": -0.12, "5Y": 0.0, "10Y": 0.15, "30Y": 0.3}
FX_VOL: dict[str, float] = {"EUR": 0.0045, "GBP": 0.0055, "JPY": 0.006, "CHF": 0.005, "CAD": 0.004, "AUD": 0.0065}
SAFE_HAVENS = frozenset({"JPY", "CHF"})
"""Currencies that rise against USD when risk falls."""
COMMODITY_SECTOR: dict[str, str] = {
    "WTI": "energy", "BRENT": "energy", "NATGAS": "energy", "GOLD": "metals", "SILVER": "metals",
    "COPPER": "metals", "CORN": "agriculture", "SOYBEAN": "agriculture", "WHEAT": "agriculture",
}  # fmt: skip
EUROPEAN = frozenset({"EUR", "GBP", "CHF", "SEK", "NOK", "DKK"})

GARCH: dict[str, tuple[float, float]] = {
    "rates": (0.05, 0.92), "fx": (0.04, 0.93), "equity": (0.08, 0.89), "credit": (0.07, 0.90),
    "commodity": (0.06, 0.91), "eq_vol": (0.08, 0.86), "ir_vol": (0.07, 0.88),
}  # fmt: skip
"""GARCH(1,1) (α, β) by group: persistence 0.94–0.97, and α²·E[z⁴] + 2αβ + β² < 1 with the Student-t shocks
E[z⁴] = 6, so returns have a finite fourth moment and sample volatilities settle near their targets."""

GROUPS = ("rates", "fx", "equity", "credit", "commodity", "eq_vol", "ir_vol")
_KIND_GROUP = {
    "IR": "rates",
    "FX": "fx",
    "EQ": "equity",
    "CR": "credit",
    "CM": "commodity",
    "VOL.EQ": "eq_vol",
    "VOL.IR": "ir_vol",
}


@dataclass(frozen=True)
class StressEpisode:
    """A stress period: where it starts (fraction of the history), how long it lasts (business days),
    volatility multipliers and daily drifts (in normal daily vols, for a risk currency in FX) by group,
    and how much the global factor's loading grows (`correlation_boost`: 1.0 doubles it)."""

    name: str
    start: float
    days: int
    vol_multiplier: Mapping[str, float]
    drift: Mapping[str, float]
    correlation_boost: float = field(default=1.0)


STRESS_EPISODES: tuple[StressEpisode, ...] = (
    StressEpisode(
        "credit crisis", 0.12, 70,
        {"credit": 4.0, "equity": 2.5, "eq_vol": 2.5, "rates": 1.8, "fx": 1.8, "commodity": 2.0, "ir_vol": 2.0},
        {"credit": 0.6, "equity": -0.35, "eq_vol": 0.3, "rates": -0.25, "fx": -0.2, "commodity": -0.2},
        1.0,
    ),
    StressEpisode(
        "volatility spike", 0.30, 12,
        {"eq_vol": 4.0, "equity": 3.0, "credit": 2.0, "fx": 1.5},
        {"eq_vol": 1.2, "equity": -0.7, "credit": 0.3},
        0.8,
    ),
    StressEpisode(
        "pandemic-style crash", 0.47, 35,
        {"equity": 4.0, "credit": 4.0, "eq_vol": 3.5, "rates": 3.0, "fx": 2.5, "commodity": 3.5, "ir_vol": 3.0},
        {"equity": -0.9, "credit": 0.9, "eq_vol": 0.6, "rates": -0.6, "commodity": -0.8, "fx": -0.4, "ir_vol": 0.4},
        1.5,
    ),
    StressEpisode(
        "rates shock", 0.72, 30,
        {"rates": 3.5, "ir_vol": 3.0, "fx": 2.0, "equity": 1.8, "credit": 1.8, "eq_vol": 1.8},
        {"rates": 1.0, "ir_vol": 0.5, "equity": -0.3, "credit": 0.3, "fx": -0.2},
        0.8,
    ),
)  # fmt: skip
TAIL_DAYS = 15.0
"""e-folding time (business days) of the stress multiplier after a window closes."""


def normal_daily_vol(factor: RiskFactor) -> float:
    """The factor's daily volatility outside stress: rates ~4–8 bp, FX ~0.5%, equity ~1.2%, credit 2–10 bp
    (investment grade to high yield), commodities ~2%, implied vols 4–5% (log)."""
    kind, name, tenor = factor.parsed
    if kind == "IR":
        return RATE_VOL_BP.get(name, 6.0) * TENOR_VOL_SCALE[tenor or "10Y"] * 1e-4
    if kind == "FX":
        return FX_VOL.get(name, 0.006)
    if kind == "EQ":
        return {"NDX": 0.014, "RTY": 0.015, "FTSE": 0.0095, "SMI": 0.0095, "SPTSX": 0.009, "AS51": 0.009}.get(
            name, 0.012
        )
    if kind == "CR":
        high_yield = any(word in name for word in ("HY", "XOVER", "EM"))
        return (8.0 if high_yield else 2.2) * 1e-4
    if kind == "CM":
        return {"NATGAS": 0.035, "WTI": 0.022, "BRENT": 0.02, "GOLD": 0.01, "SILVER": 0.018}.get(name, 0.016)
    return 0.05 if kind == "VOL.EQ" else 0.04


def business_days(end: date, days: int) -> np.ndarray:
    """The `days` business days (Monday to Friday) ending at `end` (rolled back to a business day)."""
    offsets = np.arange(-(days - 1), 1)
    return np.busday_offset(np.datetime64(end, "D"), offsets, roll="backward")


def garch_filter(z: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """GARCH(1,1) with unit unconditional variance applied column by column to unit-variance shocks ``[T, F]``.

    A loop over days vectorised over factors: ~20 ms for ten years of 150 factors, less than loading a
    compiled numba kernel from its cache would take, so this stays numpy.
    """
    out = np.empty_like(z)
    h = np.ones(z.shape[1])
    floor = 1.0 - alpha - beta
    for t in range(z.shape[0]):
        e = np.sqrt(h) * z[t]
        out[t] = e
        h = floor + alpha * e * e + beta * h
    return out


class _Latent:
    """Names of the latent factors, numbered on first use."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {"global": 0}

    def __call__(self, name: str) -> int:
        return self.index.setdefault(name, len(self.index))


def _loadings(factors: Sequence[RiskFactor]) -> tuple[np.ndarray, np.ndarray]:
    """Loadings ``[F, L]`` of each factor on the latent factors (column 0 global), and each factor's
    direction in a risk-off move (+1: falls with risk, as an equity; −1: rises, as a spread or a vol)."""
    latent = _Latent()
    rows: list[dict[int, float]] = []
    risk = np.ones(len(factors))
    for i, f in enumerate(factors):
        kind, name, tenor = f.parsed
        c = f.currency
        if kind == "IR":
            row = {
                0: 0.25,
                latent("rates"): 0.45,
                latent(f"rates:{c}"): 0.7,
                latent(f"slope:{c}"): TENOR_SLOPE[tenor or "10Y"],
            }
        elif kind == "FX":
            sign = -1.0 if name in SAFE_HAVENS else 1.0
            row = {0: 0.3 * sign, latent("fx"): 0.55}
            if name in EUROPEAN:
                row[latent("fx:europe")] = 0.45
            risk[i] = sign
        elif kind == "EQ":
            row = {0: 0.55, latent("equity"): 0.45, latent(f"equity:{c}"): 0.45}
        elif kind == "CR":
            row = {0: -0.5, latent("credit"): 0.5, latent(f"credit:{c}"): 0.4}
            risk[i] = -1.0
        elif kind == "CM":
            row = {0: 0.3, latent("commodity"): 0.35}
            sector = COMMODITY_SECTOR.get(name)
            if sector:
                row[latent(f"commodity:{sector}")] = 0.6 if sector == "energy" else 0.5
        elif kind == "VOL.EQ":
            row = {0: -0.5, latent("equity"): -0.35, latent(f"equity:{c}"): -0.3, latent("eq_vol"): 0.5}
            risk[i] = -1.0
        else:
            row = {0: -0.15, latent("ir_vol"): 0.6, latent(f"ir_vol:{c}"): 0.5}
            risk[i] = -1.0
        rows.append(row)
    b = np.zeros((len(factors), len(latent.index)))
    for i, row in enumerate(rows):
        for j, value in row.items():
            b[i, j] = value
    return b, risk


def _stressed_loadings(b: np.ndarray, boost: float) -> np.ndarray:
    """Loadings with the global one grown by `boost` (capped at 0.9 in size), the others shrunk so that
    no factor's common part exceeds 95% of its variance."""
    out = b.copy()
    out[:, 0] = np.sign(b[:, 0]) * np.minimum(np.abs(b[:, 0]) * (1.0 + boost), 0.9)
    others = np.sum(out[:, 1:] ** 2, axis=1)
    room = np.maximum(0.95 - out[:, 0] ** 2, 0.0)
    scale = np.where(others > room, np.sqrt(room / np.where(others > 0, others, 1.0)), 1.0)
    out[:, 1:] *= scale[:, None]
    return out


def _profiles(n_days: int, episodes: Sequence[StressEpisode]) -> tuple[np.ndarray, np.ndarray]:
    """Intensity ``[E, T]`` of each episode (0..1: ramp over the first 20% of the window, hold until 70%,
    ease to 0.4 at its end, then decay) and the stressed flags ``[T]`` (days inside a window)."""
    t = np.arange(n_days, dtype=np.float64)
    out = np.zeros((len(episodes), n_days))
    flagged = np.zeros(n_days, dtype=bool)
    for e, ep in enumerate(episodes):
        length = max(min(ep.days, n_days // 8), 2)
        start = min(round(ep.start * n_days), n_days - length)
        k = t - start
        ramp = np.clip((k + 1) / max(0.2 * length, 1.0), 0.0, 1.0)
        ease = np.where(k > 0.7 * length, 1.0 - 0.6 * (k - 0.7 * length) / (0.3 * length), 1.0)
        inside = (k >= 0) & (k < length)
        tail = 0.4 * np.exp(-(k - length) / TAIL_DAYS)
        out[e] = np.where(inside, ramp * ease, np.where(k >= length, tail, 0.0))
        flagged |= inside
    return out, flagged


def synthetic_history(
    factors: Sequence[RiskFactor],
    *,
    end: date,
    days: int = 10 * TRADING_DAYS_PER_YEAR,
    seed: int = 2026,
    episodes: Sequence[StressEpisode] = STRESS_EPISODES,
    daily_vol: Mapping[str, float] | None = None,
) -> FactorHistory:
    """A SYNTHETIC history of `days` business days ending at `end` for `factors` (see the module docstring).

    `daily_vol` overrides `normal_daily_vol` for the factors it names. The same arguments give the same
    history, byte for byte.
    """
    if days < 20:
        raise ValueError(f"days: at least 20 business days are needed, got {days}")
    if not factors:
        raise ValueError("factors: at least one factor is needed")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4D415247]))
    n_factors = len(factors)
    b, risk = _loadings(factors)
    groups = [_KIND_GROUP[f.parsed.kind] for f in factors]
    overrides = daily_vol or {}
    sigma = np.array([overrides.get(f.id, normal_daily_vol(f)) for f in factors])
    alpha = np.array([GARCH[g][0] for g in groups])
    beta = np.array([GARCH[g][1] for g in groups])

    latent = rng.standard_normal((days, b.shape[1]))
    own = rng.standard_normal((days, n_factors))
    chi2 = rng.chisquare(STUDENT_DF, size=days)

    intensity, stressed = _profiles(days, episodes)
    which = np.argmax(intensity, axis=0) if len(episodes) else np.zeros(days, dtype=np.int64)
    s = intensity.max(axis=0) if len(episodes) else np.zeros(days)

    z = latent @ b.T
    common = np.sum(b * b, axis=1)
    own_var = np.broadcast_to(1.0 - common, (days, n_factors)).copy()
    multiplier = np.ones((days, n_factors))
    drift = np.zeros((days, n_factors))
    for e, ep in enumerate(episodes):
        on = (which == e) & (s > 0)
        if not on.any():
            continue
        se = s[on][:, None]
        db = _stressed_loadings(b, ep.correlation_boost) - b
        z[on] += se * (latent[on] @ db.T)
        cross, extra = np.sum(b * db, axis=1), np.sum(db * db, axis=1)
        own_var[on] = np.maximum(1.0 - (common + 2.0 * se * cross + se * se * extra), 0.0)
        m = np.array([ep.vol_multiplier.get(g, 1.0) for g in groups])
        multiplier[on] = 1.0 + se * (m - 1.0)
        d = np.array([ep.drift.get(g, 0.0) for g in groups]) * np.where(np.array(groups) == "fx", risk, 1.0)
        in_window = stressed[on][:, None]
        drift[on] = np.where(in_window, se * d, 0.0)
    z += np.sqrt(own_var) * own
    z *= np.sqrt((STUDENT_DF - 2.0) / chi2)[:, None]

    eps = garch_filter(np.ascontiguousarray(z), alpha, beta)
    returns = sigma * (multiplier * eps + drift)
    return FactorHistory(
        dates=business_days(end, days),
        factors=tuple(f.id for f in factors),
        returns=returns,
        stressed=stressed,
    )


def stress_windows(history: FactorHistory) -> list[tuple[np.datetime64, np.datetime64]]:
    """The (first, last) dates of each run of flagged days."""
    flags = np.asarray(history.stressed, dtype=np.int8)
    edges = np.diff(np.concatenate(([0], flags, [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(history.dates[a], history.dates[b]) for a, b in zip(starts, ends, strict=True)]
