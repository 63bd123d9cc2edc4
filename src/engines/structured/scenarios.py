"""The market strategist's scenario set: forward-looking regime paths and stylised historical episodes.

Forward-looking scenarios come from a seeded regime-switching model of monthly equity returns.
Five regimes (calm, normal, stressed, crisis, recovery) follow a Markov chain with the monthly
transition matrix `TRANSITIONS`, starting from the regime the market's 1-year ATM vols suggest
(`starting_regime`). In regime r, underlying i has the annual drift `drift` (real-world, decimal),
the vol `vol_multiplier` × its 1-year ATM implied vol (so 1 means the regime realises what the
options imply), and the correlation matrix is the market's blended toward the regime's average
pairwise level (market average + `correlation_shift`, towards the all-ones matrix to raise it or
the identity to lower it, so it stays positive semi-definite). The rate curve drifts by
`rate_drift` a year while in the regime.

`SIMULATED_PATHS` paths are simulated; at each horizon the paths are ranked by the worst
underlying's return and the paths at the `QUANTILES` (5%, 25%, 50%, 75%, 95%) become the
scenarios, each carrying the probability of its quantile band (`QUANTILE_WEIGHTS`, which sum to 1
within a horizon) and the regime sequence that produced it. A scenario's `realised_vol` is the
annualised root-mean-square of the regime vols along its path (the vol its regimes imply, not the
noisy sample deviation of a few monthly returns), `correlation` the time-average of the regime
correlation levels, and `rate_shift` the accumulated rate drift.

Historical scenarios replay documented episodes (2008 financial crisis, 2011 euro debt crisis,
2015 China devaluation, 2018 volatility shock, 2020 pandemic crash, 2022 rates shock, 2000-2002
dot-com bust) at the standard horizons they span: for each, the approximate worst index move over a
window of that length inside the episode, the vol level and cross-index correlation over it, and
the move of rates. THEY ARE STYLISED MOVES, NOT DATA: round numbers of the right size for
European, US and Japanese equity indices, applied to every underlying scaled by its vol relative to
the basket's (an underlying with twice the average vol takes twice the log-move). Each carries a
small plausibility weight (a rough annual frequency of an episode of that kind), not a probability
normalised with the forward scenarios.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from engines.structured.market import MarketData, atm_total_variance

REGIMES = ("calm", "normal", "stressed", "crisis", "recovery")

TRANSITIONS = np.array(
    [  # to: calm  normal stressed crisis recovery   (monthly, rows sum to 1)
        [0.93, 0.06, 0.01, 0.00, 0.00],  # from calm
        [0.04, 0.90, 0.05, 0.01, 0.00],  # from normal
        [0.00, 0.08, 0.80, 0.07, 0.05],  # from stressed
        [0.00, 0.00, 0.10, 0.65, 0.25],  # from crisis
        [0.05, 0.15, 0.03, 0.02, 0.75],  # from recovery
    ]
)
"""Monthly regime transition probabilities: a crisis lasts about 3 months, a calm spell over a year."""


@dataclass(frozen=True)
class RegimeParameters:
    """Per-regime dynamics: annual equity drift, multiplier of the ATM vol, correlation shift, annual rate drift."""

    drift: float
    vol_multiplier: float
    correlation_shift: float
    rate_drift: float


REGIME_PARAMETERS: dict[str, RegimeParameters] = {
    "calm": RegimeParameters(drift=0.10, vol_multiplier=0.75, correlation_shift=-0.10, rate_drift=0.0025),
    "normal": RegimeParameters(drift=0.08, vol_multiplier=1.00, correlation_shift=0.00, rate_drift=0.0),
    "stressed": RegimeParameters(drift=-0.10, vol_multiplier=1.50, correlation_shift=0.08, rate_drift=-0.005),
    "crisis": RegimeParameters(drift=-0.40, vol_multiplier=2.50, correlation_shift=0.15, rate_drift=-0.02),
    "recovery": RegimeParameters(drift=0.25, vol_multiplier=1.30, correlation_shift=0.05, rate_drift=0.005),
}
STARTING_VOL_LEVELS = ((0.12, "calm"), (0.22, "normal"), (0.30, "stressed"))
"""Average 1-year ATM vol below which the chain starts in that regime; at or above the last, in crisis."""
DEFAULT_CORRELATION = 0.5
"""Correlation level of the regimes when there is no pair of underlyings to take it from."""
CORRELATION_CAP = 0.95
SIMULATED_PATHS = 10_000
QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)
QUANTILE_WEIGHTS = (0.15, 0.225, 0.25, 0.225, 0.15)
"""Probability of each quantile's band: the bands end half-way between neighbouring quantiles."""
HORIZONS_MONTHS = (1, 3, 6, 12, 24, 36, 60)


@dataclass(frozen=True)
class Episode:
    """A stylised historical episode: per horizon (months), (worst index move, annualised vol, rate shift)."""

    key: str
    title: str
    regime: str
    correlation: float
    plausibility: float
    windows: dict[int, tuple[float, float, float]]


EPISODES = (
    Episode("gfc2008", "2008 global financial crisis (Oct 2007 - Mar 2009)", "crisis", 0.85, 0.02,
            {1: (-0.17, 0.60, -0.005), 3: (-0.30, 0.55, -0.015), 6: (-0.42, 0.45, -0.025),
             12: (-0.47, 0.40, -0.030), 24: (-0.55, 0.32, -0.035)}),
    Episode("eurodebt2011", "2011 euro sovereign debt crisis (Jul - Sep 2011)", "crisis", 0.85, 0.03,
            {1: (-0.15, 0.40, -0.002), 3: (-0.28, 0.35, -0.005)}),
    Episode("china2015", "2015 China devaluation and the early-2016 sell-off (Aug 2015 - Feb 2016)", "stressed",
            0.70, 0.05, {1: (-0.11, 0.30, 0.0), 3: (-0.14, 0.25, 0.0), 6: (-0.20, 0.24, 0.0025)}),
    Episode("volshock2018", "February 2018 volatility shock", "stressed", 0.80, 0.08, {1: (-0.10, 0.30, 0.001)}),
    Episode("pandemic2020", "2020 pandemic crash (Feb - Mar 2020)", "crisis", 0.90, 0.02, {1: (-0.34, 0.75, -0.015)}),
    Episode("rates2022", "2022 rates shock (Jan - Oct 2022)", "stressed", 0.80, 0.03,
            {1: (-0.09, 0.28, 0.0075), 3: (-0.16, 0.27, 0.015), 6: (-0.21, 0.26, 0.025), 12: (-0.25, 0.24, 0.030)}),
    Episode("dotcom2000", "2000-2002 dot-com bust (Mar 2000 - Oct 2002)", "stressed", 0.70, 0.02,
            {36: (-0.50, 0.25, -0.045)}),
)  # fmt: skip
"""Stylised episodes (approximate magnitudes, not data): 17 replays at the standard horizons."""


@dataclass(frozen=True)
class Scenario:
    """One scenario at one horizon (returns and rate shift are decimals over the horizon, vols annualised).

    `regimes` is the month-by-month regime sequence of a forward scenario (empty for historical
    ones); it is not part of the event payload.
    """

    scenario_id: str
    kind: Literal["forward", "historical"]
    regime: str
    horizon_months: int
    probability: float
    equity_return: dict[str, float]
    realised_vol: dict[str, float]
    correlation: float
    rate_shift: float
    description: str
    regimes: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The event payload `MarketScenario` of bus.events.structured (exactly its fields)."""
        return {
            "scenario_id": self.scenario_id,
            "kind": self.kind,
            "regime": self.regime,
            "horizon_months": self.horizon_months,
            "probability": self.probability,
            "equity_return": dict(self.equity_return),
            "realised_vol": dict(self.realised_vol),
            "correlation": self.correlation,
            "rate_shift": self.rate_shift,
            "description": self.description,
        }


def one_year_atm_vols(market: MarketData, names: Sequence[str]) -> np.ndarray:
    """The 1-year ATM implied vol of each name (from its term structure)."""
    out = []
    for name in names:
        times, vols = market.underlyings[name].atm_vols()
        out.append(float(np.sqrt(atm_total_variance(times, vols, 1.0))))
    return np.array(out)


def starting_regime(market: MarketData, names: Sequence[str]) -> str:
    """The regime the chain starts in, from the average 1-year ATM vol of `names` (`STARTING_VOL_LEVELS`)."""
    level = float(one_year_atm_vols(market, names).mean())
    for bound, regime in STARTING_VOL_LEVELS:
        if level < bound:
            return regime
    return "crisis"


def average_correlation(matrix: np.ndarray) -> float | None:
    """Mean off-diagonal entry of a correlation matrix (None for a single name)."""
    n = matrix.shape[0]
    return float(matrix[~np.eye(n, dtype=bool)].mean()) if n > 1 else None


def _regime_correlations(market: MarketData, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per regime: the average correlation level and the square root of the blended matrix [regime, n, n]."""
    base = market.correlation_for(names).matrix
    avg = average_correlation(base)
    if avg is None:
        whole = market.correlation_for(market.names).matrix
        avg = average_correlation(whole)
        avg = DEFAULT_CORRELATION if avg is None else avg
    n = len(names)
    levels = np.empty(len(REGIMES))
    roots = np.empty((len(REGIMES), n, n))
    for r, regime in enumerate(REGIMES):
        target = float(np.clip(avg + REGIME_PARAMETERS[regime].correlation_shift, min(avg, 0.0),
                               max(avg, CORRELATION_CAP)))  # fmt: skip
        if target >= avg:
            w = (target - avg) / (1 - avg) if avg < 1 else 0.0
            blended = (1 - w) * base + w * np.ones((n, n))
        else:
            w = (avg - target) / avg if avg > 0 else 0.0
            blended = (1 - w) * base + w * np.eye(n)
        values, vectors = np.linalg.eigh(blended)
        roots[r] = vectors * np.sqrt(np.maximum(values, 0.0))
        levels[r] = target
    return levels, roots


def _simulate_regimes(rng: np.random.Generator, start: int, paths: int, months: int) -> np.ndarray:
    """Regime index per path and month [path, month] of the Markov chain started in `start`."""
    cumulative = np.cumsum(TRANSITIONS, axis=1)
    cumulative[:, -1] = 1.0
    out = np.empty((paths, months), dtype=np.int64)
    current = np.full(paths, start, dtype=np.int64)
    for m in range(months):
        u = rng.random(paths)
        current = np.minimum((u[:, None] >= cumulative[current]).sum(axis=1), len(REGIMES) - 1)
        out[:, m] = current
    return out


def _run_length(regimes: Sequence[str]) -> str:
    parts: list[str] = []
    count = 0
    for i, r in enumerate(regimes):
        count += 1
        if i == len(regimes) - 1 or regimes[i + 1] != r:
            parts.append(f"{r} x{count}")
            count = 0
    return " -> ".join(parts)


def _dominant(regimes: np.ndarray) -> str:
    """The regime of most months; among ties the final regime if it is one, else the first in REGIMES order."""
    counts = np.bincount(regimes, minlength=len(REGIMES))
    tied = np.flatnonzero(counts == counts.max())
    return REGIMES[int(regimes[-1]) if regimes[-1] in tied else int(tied[0])]


def _validate(market: MarketData, underlyings: Sequence[str], horizons_months: Sequence[int]) -> tuple[list, list]:
    names = list(dict.fromkeys(underlyings))
    if not names:
        raise ValueError("underlyings: give at least one underlying")
    missing = [n for n in names if n not in market.underlyings]
    if missing:
        raise KeyError(f"underlyings: no market data for {missing}; have {market.names}")
    horizons = sorted({int(h) for h in horizons_months})
    if not horizons or horizons[0] < 1 or horizons[-1] > 120:
        raise ValueError(f"horizons_months: give horizons between 1 and 120 months, got {list(horizons_months)}")
    return names, horizons


def generate_scenarios(
    market: MarketData,
    underlyings: Sequence[str],
    seed: int,
    horizons_months: Sequence[int] = HORIZONS_MONTHS,
) -> list[Scenario]:
    """Forward-looking quantile scenarios per horizon, then the historical replays (see the module docstring).

    With the default horizons: 7 × 5 = 35 forward scenarios and 17 historical ones. The same
    market, underlyings and seed give the same scenarios.
    """
    names, horizons = _validate(market, underlyings, horizons_months)
    return _forward_scenarios(market, names, horizons, seed) + _historical_scenarios(market, names, horizons)


def _forward_scenarios(market: MarketData, names: list[str], horizons: list[int], seed: int) -> list[Scenario]:
    rng = np.random.default_rng(seed)
    months = horizons[-1]
    n = len(names)
    base_vol = one_year_atm_vols(market, names)
    levels, roots = _regime_correlations(market, names)
    start = REGIMES.index(starting_regime(market, names))
    regimes = _simulate_regimes(rng, start, SIMULATED_PATHS, months)
    params = [REGIME_PARAMETERS[r] for r in REGIMES]
    drift = np.array([p.drift for p in params])
    vol = np.array([p.vol_multiplier for p in params])[:, None] * base_vol[None, :]  # [regime, asset]
    rate_drift = np.array([p.rate_drift for p in params])

    z = rng.standard_normal((SIMULATED_PATHS, months, n))
    shocks = np.empty_like(z)
    for r in range(len(REGIMES)):
        here = regimes == r
        shocks[here] = z[here] @ roots[r].T
    sigma = vol[regimes]  # [path, month, asset]
    dt = 1.0 / 12.0
    log_step = (drift[regimes][..., None] - 0.5 * sigma**2) * dt + sigma * np.sqrt(dt) * shocks
    log_cum = np.cumsum(log_step, axis=1)
    variance_cum = np.cumsum(sigma**2, axis=1)
    correlation_cum = np.cumsum(levels[regimes], axis=1)
    rate_cum = np.cumsum(rate_drift[regimes] * dt, axis=1)

    out: list[Scenario] = []
    for h in horizons:
        returns = np.expm1(log_cum[:, h - 1, :])  # [path, asset]
        worst = returns.min(axis=1)
        order = np.argsort(worst, kind="stable")
        for q, weight in zip(QUANTILES, QUANTILE_WEIGHTS, strict=True):
            p = int(order[round(q * (SIMULATED_PATHS - 1))])
            path = tuple(REGIMES[i] for i in regimes[p, :h])
            realised = np.sqrt(variance_cum[p, h - 1] / h)
            out.append(
                Scenario(
                    scenario_id=f"fwd-{h}m-p{round(100 * q):02d}",
                    kind="forward",
                    regime=_dominant(regimes[p, :h]),
                    horizon_months=h,
                    probability=weight,
                    equity_return={name: float(returns[p, a]) for a, name in enumerate(names)},
                    realised_vol={name: float(realised[a]) for a, name in enumerate(names)},
                    correlation=float(correlation_cum[p, h - 1] / h),
                    rate_shift=float(rate_cum[p, h - 1]),
                    description=(
                        f"{q:.0%} quantile of the worst of {', '.join(names)} after {h} months under the "
                        f"regime-switching model (seed {seed}); worst return {worst[p]:+.1%}; regimes: "
                        f"{_run_length(path)}"
                    ),
                    regimes=path,
                )
            )
    return out


def _historical_scenarios(market: MarketData, names: list[str], horizons: list[int]) -> list[Scenario]:
    base_vol = one_year_atm_vols(market, names)
    beta = base_vol / base_vol.mean()
    out: list[Scenario] = []
    for ep in EPISODES:
        for h in horizons:
            if h not in ep.windows:
                continue
            move, vol, rate = ep.windows[h]
            returns = np.expm1(beta * np.log1p(move))
            out.append(
                Scenario(
                    scenario_id=f"hist-{ep.key}-{h}m",
                    kind="historical",
                    regime=ep.regime,
                    horizon_months=h,
                    probability=ep.plausibility,
                    equity_return={name: float(returns[a]) for a, name in enumerate(names)},
                    realised_vol={name: float(vol * beta[a]) for a, name in enumerate(names)},
                    correlation=ep.correlation,
                    rate_shift=rate,
                    description=(
                        f"{ep.title}: stylised worst {h}-month window, index move {move:+.0%}, vol {vol:.0%}, "
                        f"correlation {ep.correlation:g}, rates {10_000 * rate:+.0f} bp (stylised, not data; "
                        "scaled by each underlying's vol relative to the basket's)"
                    ),
                )
            )
    return out
