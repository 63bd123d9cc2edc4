"""From specs and market data to the kernel's arrays, and the block loop that runs them.

A *group* is a set of products on the same underlyings (in the same order), simulated on one
time grid that contains every product's observation dates, every ex-dividend date, daily points
when a product monitors its barrier daily, and enough steps for local volatility and the
continuous barrier's Brownian bridge. A *shift* is a market scenario (spot, volatility,
correlation, rates, dividends, skew) applied to the base market; each shift reuses the same
normals, which gives Greeks and stress P&L with common random numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from engines.registry import InvalidInputs
from engines.structured import kernels
from engines.structured.market import MarketData, atm_total_variance, forward
from engines.structured.sampling import NormalSource, Sampler, path_blocks
from engines.structured.spec import TRADING_DAYS_PER_YEAR, AutocallSpec

Model = Literal["bs", "localvol"]
LOCALVOL_STEPS_PER_YEAR = 52
CONTINUOUS_STEPS_PER_YEAR = 52
_BASKETS = {"worst_of": kernels.WORST_OF, "best_of": kernels.BEST_OF, "average": kernels.AVERAGE}
_KI = {None: kernels.KI_NONE, "european": kernels.KI_EUROPEAN, "daily": kernels.KI_DAILY,
       "continuous": kernels.KI_CONTINUOUS}  # fmt: skip


@dataclass(frozen=True)
class Shift:
    """A market scenario relative to the base market (the identity by default).

    `spot` multiplies each underlying's spot (performance stays relative to the strike fixing);
    `vol_level` replaces every underlying's volatility level by a flat vol (local vol is scaled
    to it); `vol_shift` adds to each underlying's vols; `correlation` sets every pairwise
    correlation, `correlation_shift` adds to them; `rate_shift` and `dividend_shift` move the
    rate and dividend-yield curves in parallel; `skew_steepening` multiplies the surface's skew.
    """

    name: str = "base"
    spot: tuple[float, ...] | None = None
    vol_level: float | None = None
    vol_shift: tuple[float, ...] | None = None
    correlation: float | None = None
    correlation_shift: float = 0.0
    rate_shift: float = 0.0
    dividend_shift: float = 0.0
    skew_steepening: float = 1.0


@dataclass
class ProductTable:
    """The kernel's product arrays for a group (see `kernels` for the layout)."""

    specs: list[AutocallSpec]
    p_int: np.ndarray
    p_flt: np.ndarray
    p_step: np.ndarray
    p_obs: np.ndarray
    obs_times: list[np.ndarray]


@dataclass
class Group:
    """Products on the same underlyings and their common simulation grid."""

    underlyings: tuple[str, ...]
    times: np.ndarray
    table: ProductTable
    model: Model
    indices: list[int] = field(default_factory=list)


def simulation_grid(
    specs: Sequence[AutocallSpec],
    market: MarketData,
    model: Model,
    steps_per_year: int | None = None,
    localvol_steps_per_year: int = LOCALVOL_STEPS_PER_YEAR,
) -> np.ndarray:
    """All observation dates, ex-dividend dates and refinement points up to the longest maturity.

    `steps_per_year` asks for at least that many evenly spaced steps (finer local-vol or
    continuous-barrier discretisation); daily monitoring always gets 252 a year.
    """
    horizon = max(s.maturity_years for s in specs)
    points = {0.0}
    for s in specs:
        points.update(np.round(s.observation_times(), 12).tolist())
    for name in {u for s in specs for u in s.underlyings}:
        for d in market.underlyings[name].dividends:
            if d.time < horizon:
                points.add(round(d.time, 12))
    per_year = steps_per_year or 0
    if model == "localvol":
        per_year = max(per_year, localvol_steps_per_year)
    if any(s.knock_in is not None and s.knock_in.monitoring == "continuous" for s in specs):
        per_year = max(per_year, CONTINUOUS_STEPS_PER_YEAR)
    if any(s.knock_in is not None and s.knock_in.monitoring == "daily" for s in specs):
        per_year = max(per_year, TRADING_DAYS_PER_YEAR)
    if per_year:
        n = int(np.ceil(horizon * per_year - 1e-9))
        points.update(np.round(np.linspace(0.0, horizon, n + 1), 12).tolist())
    times = np.array(sorted(points))
    keep = np.concatenate(([True], np.diff(times) > 1e-9))  # drop points that coincide to rounding
    return times[keep]


def product_table(specs: Sequence[AutocallSpec], times: np.ndarray, market: MarketData) -> ProductTable:
    n_products = len(specs)
    n_obs = max(len(s.observation_times()) for s in specs)
    p_int = np.zeros((n_products, 5), dtype=np.int64)
    p_flt = np.zeros((n_products, 5))
    p_step = np.zeros((n_products, n_obs), dtype=np.int64)
    p_obs = np.zeros((n_products, n_obs, 5))
    obs_times = []
    for p, s in enumerate(specs):
        t = s.observation_times()
        steps = np.searchsorted(times, t - 1e-9)
        if np.any(np.abs(times[steps] - t) > 1e-9):
            raise AssertionError("an observation date is missing from the simulation grid")
        ki = s.knock_in
        p_int[p] = (len(t), _BASKETS[s.basket], _KI[ki.monitoring if ki else None], int(s.coupon.memory), steps[-1])
        p_flt[p] = (s.coupon.rate, ki.barrier if ki else 0.0, s.strike, s.downside_buffer, s.capital_protection)
        p_step[p, : len(t)] = steps
        periods = np.diff(np.concatenate(([0.0], t)))
        coupon_barrier = np.full(len(t), s.coupon.barrier if s.coupon.conditional else -np.inf)
        minus_ln_df = market.rates.integral(t) + s.funding_spread * t
        p_obs[p, : len(t)] = np.column_stack([t, s.triggers(), coupon_barrier, periods, minus_ln_df])
        obs_times.append(t)
    return ProductTable(list(specs), p_int, p_flt, p_step, p_obs, obs_times)


def check_market_covers(specs: Sequence[AutocallSpec], market: MarketData) -> None:
    """Refuse the first spec the market cannot price, naming its field: an underlying without market data
    (`specs[i].underlyings`) or a currency other than the market's (`specs[i].currency`: no quanto or FX)."""
    for i, s in enumerate(specs):
        missing = [u for u in s.underlyings if u not in market.underlyings]
        if missing:
            have = ", ".join(market.names)
            raise InvalidInputs(
                f"specs[{i}].underlyings", f"no market data for {', '.join(missing)}; the market has {have}"
            )
        if s.currency != market.currency:
            raise InvalidInputs(
                f"specs[{i}].currency",
                f"{s.currency} differs from the market's {market.currency}; the engine has no quanto or FX conversion",
            )


def make_groups(
    specs: Sequence[AutocallSpec],
    market: MarketData,
    model: Model,
    steps_per_year: int | None = None,
    localvol_steps_per_year: int = LOCALVOL_STEPS_PER_YEAR,
) -> list[Group]:
    """Group specs by underlyings (in order) so that each group shares one path set."""
    check_market_covers(specs, market)
    by_key: dict[tuple[str, ...], list[int]] = {}
    for i, s in enumerate(specs):
        by_key.setdefault(tuple(s.underlyings), []).append(i)
    groups = []
    for key, idx in by_key.items():
        members = [specs[i] for i in idx]
        times = simulation_grid(members, market, model, steps_per_year, localvol_steps_per_year)
        groups.append(Group(key, times, product_table(members, times, market), model, indices=idx))
    return groups


@dataclass
class MarketArrays:
    """The kernel's market arrays for one group under one shift."""

    x0: np.ndarray
    ref: np.ndarray
    chol: np.ndarray
    growth: np.ndarray
    sig: np.ndarray
    div: np.ndarray
    lnfwd: np.ndarray
    lv_on: bool
    lv: np.ndarray
    lv_k: np.ndarray
    lv_scale: np.ndarray
    rate_shift: float


def market_arrays(group: Group, market: MarketData, shift: Shift, surfaces: dict | None = None) -> MarketArrays:
    """Build the per-step market arrays of `group` under `shift` (see the `kernels` layout)."""
    names = list(group.underlyings)
    n_assets = len(names)
    times = group.times
    t0, t1 = times[:-1], times[1:]
    dt = t1 - t0
    spot_mult = np.ones(n_assets) if shift.spot is None else np.asarray(shift.spot, dtype=np.float64)
    if spot_mult.shape != (n_assets,) or np.any(spot_mult <= 0):
        raise ValueError(f"spot: give one positive multiplier per underlying ({n_assets})")
    vol_add = np.zeros(n_assets) if shift.vol_shift is None else np.asarray(shift.vol_shift, dtype=np.float64)
    growth = np.empty((len(dt), n_assets))
    sig = np.empty((len(dt), n_assets))
    div = np.zeros((len(dt), n_assets))
    lnfwd = np.empty((len(dt), n_assets))
    ref = np.empty(n_assets)
    x0 = np.empty(n_assets)
    rate_int = market.rates.integral(t1) - market.rates.integral(t0)
    for a, name in enumerate(names):
        u = market.underlyings[name]
        ref[a] = u.spot
        x0[a] = np.log(u.spot * spot_mult[a])
        q_int = u.dividend_yield.integral(t1) - u.dividend_yield.integral(t0)
        growth[:, a] = (rate_int - q_int) / dt + shift.rate_shift - shift.dividend_shift
        for d in u.dividends:
            k = np.searchsorted(t1, d.time - 1e-9)
            if k < len(dt) and abs(t1[k] - d.time) < 1e-9:
                div[k, a] += d.amount * spot_mult[a]
        lnfwd[:, a] = np.log(forward(market, name, t0) * spot_mult[a])
        vt, vv = u.atm_vols()
        if shift.vol_level is not None:
            vv = np.full_like(vv, shift.vol_level)
        vv = vv + vol_add[a]
        if np.any(vv <= 0):
            raise ValueError(f"vol_shift: the shifted volatility of {name} is not positive")
        tv0, tv1 = atm_total_variance(vt, vv, t0), atm_total_variance(vt, vv, t1)
        sig[:, a] = np.sqrt(np.maximum(tv1 - tv0, 0.0) / dt)
    corr = market.correlation_for(names)
    c = corr.matrix.copy()
    off = ~np.eye(n_assets, dtype=bool)
    if shift.correlation is not None or shift.correlation_shift:
        if shift.correlation is not None:
            c[off] = shift.correlation
        c[off] = np.clip(c[off] + shift.correlation_shift, -0.999, 0.999)
        lowest = float(np.linalg.eigvalsh(c).min())
        if lowest < -1e-12:
            raise ValueError(
                f"correlation: scenario {shift.name!r} makes the correlation matrix indefinite (lowest eigenvalue "
                f"{lowest:.3g})"
            )
    chol = psd_cholesky(c)
    lv_on = group.model == "localvol"
    if lv_on:
        if surfaces is None:
            raise ValueError("model: local volatility needs calibrated surfaces")
        lv_t, lv_k, grids, atm = surfaces["t"], surfaces["k"], [], []
        if len(lv_k) < 2 or not np.allclose(np.diff(lv_k), lv_k[1] - lv_k[0], rtol=1e-9, atol=1e-12):
            raise ValueError("surfaces: the local-vol log-moneyness grid must be evenly spaced")
        for name in names:
            grid, level = surfaces[name](shift.skew_steepening)
            grids.append(_rows_at(grid, lv_t, t0))
            atm.append(level)
        lv = np.ascontiguousarray(np.stack(grids))
        scale = np.ones(n_assets)
        if shift.vol_level is not None:
            scale = shift.vol_level / np.asarray(atm)
        scale = scale + vol_add / np.asarray(atm)
    else:
        lv_k = np.array([0.0, 1.0])
        lv = np.zeros((n_assets, 1, 2))
        scale = np.ones(n_assets)
    return MarketArrays(x0, ref, chol, growth, sig, div, lnfwd, lv_on, lv, lv_k, scale, shift.rate_shift)


def _rows_at(grid: np.ndarray, grid_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The rows of a [time, log-moneyness] grid interpolated linearly to `times` (flat beyond its ends)."""
    pos = np.interp(times, grid_times, np.arange(len(grid_times), dtype=np.float64))
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(grid_times) - 1)
    w = (pos - lo)[:, None]
    return (1.0 - w) * grid[lo] + w * grid[hi]


def psd_cholesky(c: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """A lower-triangular L with L Lᵀ = c for a positive semi-definite c (a zero pivot gives a zero column).

    Unlike `numpy.linalg.cholesky` it accepts singular matrices, such as perfectly correlated underlyings.
    """
    n = c.shape[0]
    lower = np.zeros_like(c)
    for j in range(n):
        d = c[j, j] - lower[j, :j] @ lower[j, :j]
        if d < -1e-9:
            raise ValueError(f"correlation: matrix is not positive semi-definite (pivot {j} is {d:.3g})")
        if d <= tol:
            continue
        lower[j, j] = np.sqrt(d)
        lower[j + 1 :, j] = (c[j + 1 :, j] - lower[j + 1 :, :j] @ lower[j, :j]) / lower[j, j]
    return lower


@dataclass
class GroupRun:
    """Per-path results of one group under each shift: arrays [shift, product, path]."""

    pv_red: np.ndarray
    pv_cpn: np.ndarray
    pairs: bool
    call_idx: np.ndarray | None = None
    ki_prob: np.ndarray | None = None
    life: np.ndarray | None = None
    redemption: np.ndarray | None = None
    irr: np.ndarray | None = None


Backend = Literal["auto", "cpu", "cuda"]
BATCH_BYTES = 32 * 2**20
"""Normals handed to one kernel call: several draw blocks at once, so the parallel launch is amortised."""


def _batches(blocks: list[tuple[int, int]], per_path_bytes: int) -> list[list[tuple[int, int]]]:
    """Consecutive draw blocks grouped so that each group's normals fit in BATCH_BYTES (at least one block)."""
    out: list[list[tuple[int, int]]] = []
    size = 0
    for block in blocks:
        if out and size + block[1] * per_path_bytes <= BATCH_BYTES:
            out[-1].append(block)
            size += block[1] * per_path_bytes
        else:
            out.append([block])
            size = block[1] * per_path_bytes
    return out


_DRAW_THREADS = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="structured-draws")


def _draw(source: NormalSource, batch: list[tuple[int, int]]) -> tuple[np.ndarray, int]:
    """The normals of a batch of blocks, and how many are fresh draws.

    Ordered as every block's fresh draws in block order, then (antithetic) all their mirror images,
    so that the batch's results land in two contiguous ranges of the run's arrays. The blocks are
    drawn on several threads (each block has its own generator and numpy fills without the GIL),
    which leaves the draws independent of the thread count.
    """
    counts = [n // 2 if source.antithetic else n for _, n in batch]
    fresh = sum(counts)
    z = np.empty(((2 if source.antithetic else 1) * fresh, source.n_steps, source.n_assets))
    starts = np.concatenate([[0], np.cumsum(counts)])
    groups = np.array_split(np.arange(len(batch)), min(len(batch), os.cpu_count() or 1))

    def fill(indices: np.ndarray) -> None:
        for i in indices:
            source.fresh(batch[i][0], batch[i][1], out=z[starts[i] : starts[i + 1]])

    list(_DRAW_THREADS.map(fill, groups))
    if source.antithetic:
        np.negative(z[:fresh], out=z[fresh:])
    return z, fresh


def _kernel(backend: Backend) -> Callable[..., None]:
    """The block kernel: CUDA when asked for or (with "auto") when a GPU is present, else the CPU's."""
    if backend == "cpu":
        return kernels.run_block
    from engines.structured import kernels_cuda

    if backend == "cuda" or kernels_cuda.cuda_available():
        return kernels_cuda.run_block_cuda
    return kernels.run_block


def run_group(
    group: Group,
    market: MarketData,
    shifts: Sequence[Shift],
    *,
    paths: int,
    seed: int,
    sampler: Sampler = "pseudo",
    antithetic: bool = True,
    details: bool = False,
    surfaces: dict | None = None,
    first_path: int = 0,
    dtype: type = np.float64,
    progress: Callable[[int], None] | None = None,
    backend: Backend = "auto",
) -> GroupRun:
    """Simulate `paths` paths of the group under each shift (same normals for all) and value its products.

    Per-path values are kept (as `dtype`) for the statistics; details are recorded for shift 0 only.
    `progress(n)` is called with the number of path-scenarios done after each block.
    With antithetic sampling, the per-path arrays are reordered so that path i and path
    i + paths/2 are an antithetic pair across the whole run.
    """
    table = group.table
    n_products = table.p_int.shape[0]
    run_block = _kernel(backend)
    source = NormalSource(group.times, len(group.underlyings), seed, sampler, antithetic)
    arrays = [market_arrays(group, market, s, surfaces) for s in shifts]
    t_grid = group.times
    dt = np.diff(t_grid)
    pv_red = np.empty((len(shifts), n_products, paths), dtype=dtype)
    pv_cpn = np.empty((len(shifts), n_products, paths), dtype=dtype)
    det = {}
    if details:
        det = {
            "call_idx": np.empty((n_products, paths), dtype=np.int16),
            "ki_prob": np.empty((n_products, paths), dtype=np.float32),
            "life": np.empty((n_products, paths), dtype=np.float32),
            "redemption": np.empty((n_products, paths), dtype=np.float32),
            "irr": np.empty((n_products, paths), dtype=np.float32),
        }
    half = paths // 2
    per_path_bytes = 8 * max(1, len(dt)) * len(group.underlyings)
    for batch in _batches(path_blocks(paths, first_path), per_path_bytes):
        z, fresh = _draw(source, batch)
        n = z.shape[0]
        at = (batch[0][0] - first_path) // (2 if antithetic else 1)
        places = [(slice(0, fresh), slice(at, at + fresh))]  # antithetic: path i pairs with path i + half
        if antithetic:
            places.append((slice(fresh, n), slice(half + at, half + at + fresh)))
        red = np.empty((n_products, n))
        cpn = np.empty((n_products, n))
        b_call = np.empty((n_products, n), dtype=np.int64)
        b_ki, b_life, b_red, b_irr = (np.empty((n_products, n)) for _ in range(4))
        for s, m in enumerate(arrays):
            want = details and s == 0
            run_block(z, m.chol, m.x0, m.ref, t_grid, dt, m.growth, m.sig, m.div, m.lnfwd, m.lv_on, m.lv,
                      m.lv_k, m.lv_scale, m.rate_shift, table.p_int, table.p_flt, table.p_step,
                      table.p_obs, want, red, cpn, b_call, b_ki, b_life, b_red, b_irr)  # fmt: skip
            for src, dst in places:
                pv_red[s][:, dst] = red[:, src]
                pv_cpn[s][:, dst] = cpn[:, src]
                if want:
                    det["call_idx"][:, dst] = b_call[:, src]
                    det["ki_prob"][:, dst] = b_ki[:, src]
                    det["life"][:, dst] = b_life[:, src]
                    det["redemption"][:, dst] = b_red[:, src]
                    det["irr"][:, dst] = b_irr[:, src]
        if progress is not None:
            progress(n * len(arrays))
    return GroupRun(pv_red, pv_cpn, antithetic, **det)
