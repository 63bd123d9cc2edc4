"""Filtered historical simulation (FHS): the horizon scenarios a CCP's margin model revalues a portfolio on.

Filter (Hull and White, 1998). For each factor an exponentially weighted variance forecast is run
over the whole history: ``v[0]`` is the mean square of the first ``ceil(1 / (1 − λ))`` returns (the
filter's memory; the factor's mean square over all history if that is zero), and
``v[t + 1] = λ · v[t] + (1 − λ) · r[t]²``, so ``v[t]`` is the variance forecast for day ``t`` made at
the close of day ``t − 1`` and ``v[T]`` is the forecast for the day after the last one ("today's
vol"). Each day's return is devolatilised by its own forecast, ``z[t] = r[t] / √v[t]``, and
revolatilised at the as-of day's forecast: ``r̃[t] = z[t] · √v[as_of + 1] · vol_multiplier``. A
factor whose returns are all zero has zero residuals.

Horizon. The margin period of risk is covered by summing the filtered one-day returns over
overlapping windows of ``mpor_days`` consecutive days (``horizon="overlapping"``, the default):
scenario ``j`` is ``Σ r̃[j − mpor_days + 1 .. j]`` for each of the ``lookback_days`` last days ``j``, so
the lookback is the number of scenarios and the data used reach ``mpor_days − 1`` days further back.
Overlapping sums keep the autocorrelation and fat tails of multi-day moves that √time scaling
assumes away; ``horizon="sqrt_time"`` gives ``√mpor_days · r̃[j]`` instead (exactly √MPOR times the
one-day scenarios). For iid returns both have the variance ``mpor_days · σ²``. Returns are summed in
the factors' own units (log returns for prices, FX and vols; absolute decimal changes for rates and
spreads, see `arrays`), which is exact for log and absolute changes alike.

``filtered=False`` gives the same windows of raw (unfiltered) returns: the observations of a stress
period or of a 10-year lookback, as the anti-procyclicality options use them.

The filter is run once per (history, decay) and kept while the history object lives.
"""

from __future__ import annotations

import math
import weakref
from typing import Literal

import numpy as np
from numba import njit, prange

from engines.margin.arrays import FactorHistory

Horizon = Literal["overlapping", "sqrt_time"]

MIN_SCENARIOS = 20
"""Fewest horizon scenarios a lookback may give (below this a tail measure means nothing)."""

_filters: weakref.WeakKeyDictionary[FactorHistory, dict[float, tuple[np.ndarray, np.ndarray]]] = (
    weakref.WeakKeyDictionary()
)


@njit(cache=True)
def _ewma_column(r: np.ndarray, decay: float, seed_days: int, residuals: np.ndarray, vol: np.ndarray) -> None:
    """The EWMA filter of one factor's returns `r` [T] into `residuals` [T] and `vol` [T + 1]."""
    t_len = r.shape[0]
    n_seed = min(seed_days, t_len)
    seed = 0.0
    for t in range(n_seed):
        seed += r[t] * r[t]
    seed /= max(n_seed, 1)
    if seed == 0.0:
        for t in range(t_len):
            seed += r[t] * r[t]
        seed /= max(t_len, 1)
    var = seed
    for t in range(t_len):
        sd = math.sqrt(var)
        vol[t] = sd
        residuals[t] = r[t] / sd if sd > 0.0 else 0.0
        var = decay * var + (1.0 - decay) * r[t] * r[t]
    vol[t_len] = math.sqrt(var)


@njit(cache=True)
def _ewma_serial(returns: np.ndarray, decay: float, seed_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(residuals [T, F], vol forecasts [T + 1, F]) of the EWMA filter described in the module docstring."""
    t_len, f_len = returns.shape
    residuals = np.zeros((f_len, t_len))
    vol = np.zeros((f_len, t_len + 1))
    for f in range(f_len):
        _ewma_column(returns[:, f].copy(), decay, seed_days, residuals[f], vol[f])
    return residuals.T.copy(), vol.T.copy()


@njit(parallel=True, cache=True)
def _ewma_parallel(returns: np.ndarray, decay: float, seed_days: int) -> tuple[np.ndarray, np.ndarray]:
    """`_ewma_serial`, parallel over factors."""
    t_len, f_len = returns.shape
    residuals = np.zeros((f_len, t_len))
    vol = np.zeros((f_len, t_len + 1))
    for f in prange(f_len):
        _ewma_column(returns[:, f].copy(), decay, seed_days, residuals[f], vol[f])
    return residuals.T.copy(), vol.T.copy()


PARALLEL_WORK = 2_000_000
"""Day-factors above which the filter runs in parallel over factors (below, the thread pool's launch
costs more than the work)."""


def ewma_filter(history: FactorHistory, ewma_decay: float) -> tuple[np.ndarray, np.ndarray]:
    """The filter of `history` at decay λ: (residuals ``z`` [T, F], vol forecasts [T + 1, F]).

    ``vol[t]`` is the one-day volatility forecast for day ``t`` (row ``T`` is the forecast for the day
    after the last); arrays are read-only and shared between callers.
    """
    if not 0.0 < ewma_decay < 1.0:
        raise ValueError(f"ewma_decay: must lie in (0, 1), got {ewma_decay}")
    per_history = _filters.setdefault(history, {})
    cached = per_history.get(ewma_decay)
    if cached is None:
        seed_days = math.ceil(1.0 / (1.0 - ewma_decay) - 1e-9)
        returns = np.ascontiguousarray(history.returns, dtype=np.float64)
        kernel = _ewma_parallel if returns.size > PARALLEL_WORK else _ewma_serial
        z, vol = kernel(returns, ewma_decay, seed_days)
        z.setflags(write=False)
        vol.setflags(write=False)
        cached = per_history[ewma_decay] = (z, vol)
    return cached


def current_vol(history: FactorHistory, ewma_decay: float, *, as_of: int = -1) -> np.ndarray:
    """[F] one-day volatility forecast for the day after `as_of` (default: after the last day), in factor units."""
    _, vol = ewma_filter(history, ewma_decay)
    return vol[_as_of_index(history, as_of) + 1]


def _as_of_index(history: FactorHistory, as_of: int) -> int:
    t_len = len(history.dates)
    index = as_of + t_len if as_of < 0 else as_of
    if not 0 <= index < t_len:
        raise ValueError(f"as_of: {as_of} is outside the history's {t_len} days")
    return index


def available_scenarios(history: FactorHistory, *, mpor_days: int, as_of: int = -1) -> int:
    """How many overlapping `mpor_days` windows end on or before `as_of`."""
    return _as_of_index(history, as_of) + 1 - mpor_days + 1


def scenarios(
    history: FactorHistory,
    *,
    lookback_days: int,
    mpor_days: int,
    ewma_decay: float = 0.97,
    vol_multiplier: float = 1.0,
    horizon: Horizon = "overlapping",
    filtered: bool = True,
    as_of: int = -1,
    truncate: bool = False,
) -> np.ndarray:
    """[N, F] horizon returns over the margin period of risk, one row per historical day, in factor units.

    Row ``i`` is the scenario of the ``i``-th of the last ``lookback_days`` days up to `as_of` (oldest
    first): FHS-filtered and revolatilised at the as-of forecast times `vol_multiplier` (or raw returns
    times `vol_multiplier` with ``filtered=False``), summed over the `mpor_days` days ending there or
    scaled by √mpor_days (`horizon`; see the module docstring). `as_of` is a day index (negative from
    the end) and is the last day used, as a CCP computing margin at that day's close would.

    A history that covers the lookback's days but not the ``mpor_days − 1`` before them gives the
    windows it has (a 10-year lookback on ten years of data). With ``truncate=True`` any shorter history
    gives the scenarios it has (a 10-year floor on a shorter history); otherwise a history shorter than
    the lookback is an error. Fewer than `MIN_SCENARIOS` is always one.
    """
    if mpor_days < 1:
        raise ValueError(f"mpor_days: must be at least 1, got {mpor_days}")
    if lookback_days < 1:
        raise ValueError(f"lookback_days: must be at least 1, got {lookback_days}")
    if not (vol_multiplier > 0.0 and math.isfinite(vol_multiplier)):
        raise ValueError(f"vol_multiplier: must be positive and finite, got {vol_multiplier}")
    if horizon not in ("overlapping", "sqrt_time"):
        raise ValueError(f"horizon: must be 'overlapping' or 'sqrt_time', got {horizon!r}")
    end = _as_of_index(history, as_of)
    span = mpor_days if horizon == "overlapping" else 1
    have = end + 1 - span + 1
    n = lookback_days
    if have < lookback_days:
        if not truncate and end + 1 < lookback_days:
            raise ValueError(
                f"lookback_days: {lookback_days} scenarios of {span} day(s) need {lookback_days + span - 1} days "
                f"up to {history.dates[end]}, the history has {end + 1}"
            )
        n = have
    if n < MIN_SCENARIOS:
        raise ValueError(
            f"lookback_days: only {n} scenarios up to {history.dates[end]}, at least {MIN_SCENARIOS} needed"
        )
    first = end - n - span + 2  # first day used
    if filtered:
        z, vol = ewma_filter(history, ewma_decay)
        base = z[first : end + 1]
        scale = vol[end + 1] * vol_multiplier
    else:
        base = history.returns[first : end + 1]
        scale = None
    out = np.array(base[0:n], dtype=np.float64, copy=True)
    for k in range(1, span):
        out += base[k : k + n]
    if horizon == "sqrt_time":
        out *= math.sqrt(mpor_days)
    if scale is not None:
        out *= scale
    elif vol_multiplier != 1.0:
        out *= vol_multiplier
    return out


def scenario_days(history: FactorHistory, *, n: int, as_of: int = -1) -> np.ndarray:
    """[n] indices of the days that end the `n` scenarios `scenarios` returns up to `as_of`."""
    end = _as_of_index(history, as_of)
    return np.arange(end - n + 1, end + 1)
