"""Normal draws for the autocallable Monte Carlo: pseudo-random or scrambled Sobol with a Brownian bridge.

Draws come in blocks of paths so that memory stays bounded whatever the path count, and every
block is a pure function of (seed, block position): a run split into chunks on several workers
draws exactly what one unsplit run draws. Antithetic variates put each block's mirror image
in its second half, so path i and path i + n/2 of a block form a pair.

With Sobol, each underlying's Brownian path is built by bisection (Brownian bridge): the first
Sobol coordinates decide the terminal values, the next ones the midpoints, and so on, which puts
the low-discrepancy dimensions where the payoff's variance is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba import njit
from scipy.special import ndtri
from scipy.stats import qmc

Sampler = Literal["pseudo", "sobol"]
BLOCK_PATHS = 4096
"""Paths per block (even, so antithetic pairs stay in one block)."""
MAX_SOBOL_DIMENSIONS = 21201


@dataclass(frozen=True)
class BridgeSchedule:
    """The order in which a Brownian bridge fills a grid of times t_1..t_K (t_0 = 0)."""

    target: np.ndarray  # grid index filled at step s
    left: np.ndarray  # known index to its left (0 = time zero)
    right: np.ndarray  # known index to its right (-1 = none: the terminal point)
    left_weight: np.ndarray
    right_weight: np.ndarray
    stdev: np.ndarray


def bridge_schedule(times: np.ndarray) -> BridgeSchedule:
    """Bisection order over `times` (K + 1 values from 0): terminal point first, then midpoints by index."""
    k = len(times) - 1
    target, left, right, lw, rw, sd = [], [], [], [], [], []
    target.append(k)
    left.append(0)
    right.append(-1)
    lw.append(1.0)
    rw.append(0.0)
    sd.append(np.sqrt(times[k]))
    queue = [(0, k)]
    while queue:
        nxt = []
        for lo, hi in queue:
            if hi - lo < 2:
                continue
            mid = (lo + hi) // 2
            t_l, t_m, t_h = times[lo], times[mid], times[hi]
            target.append(mid)
            left.append(lo)
            right.append(hi)
            lw.append((t_h - t_m) / (t_h - t_l))
            rw.append((t_m - t_l) / (t_h - t_l))
            sd.append(np.sqrt((t_m - t_l) * (t_h - t_m) / (t_h - t_l)))
            nxt += [(lo, mid), (mid, hi)]
        queue = nxt
    return BridgeSchedule(
        np.array(target, dtype=np.int64),
        np.array(left, dtype=np.int64),
        np.array(right, dtype=np.int64),
        np.array(lw),
        np.array(rw),
        np.array(sd),
    )


@njit(cache=True)
def _bridge(normals, n_assets, target, left, right, lw, rw, sd, sqdt, out):  # pragma: no cover - numba
    """normals[path, s * A + a] → increments out[path, k, a] / sqrt(dt_k) (standard normals)."""
    n_paths = normals.shape[0]
    n_steps = target.shape[0]
    w = np.empty(n_steps + 1)
    for i in range(n_paths):
        for a in range(n_assets):
            w[0] = 0.0
            for s in range(n_steps):
                x = sd[s] * normals[i, s * n_assets + a]
                if right[s] < 0:
                    w[target[s]] = w[left[s]] + x
                else:
                    w[target[s]] = lw[s] * w[left[s]] + rw[s] * w[right[s]] + x
            for k in range(n_steps):
                out[i, k, a] = (w[k + 1] - w[k]) / sqdt[k]


@dataclass
class NormalSource:
    """Blocks of independent standard normals z[path, step, asset] for a grid, reproducible from `seed`."""

    times: np.ndarray
    n_assets: int
    seed: int
    sampler: Sampler = "pseudo"
    antithetic: bool = True

    def __post_init__(self) -> None:
        self.n_steps = len(self.times) - 1
        dims = self.n_steps * self.n_assets
        if self.sampler == "sobol" and dims > MAX_SOBOL_DIMENSIONS:
            raise ValueError(
                f"sampler: Sobol supports {MAX_SOBOL_DIMENSIONS} dimensions, this grid needs {dims} "
                f"({self.n_steps} steps x {self.n_assets} underlyings); use the pseudo-random sampler"
            )
        self._bridge = bridge_schedule(self.times) if self.sampler == "sobol" else None
        self._sqdt = np.sqrt(np.diff(self.times))

    def block(self, first_path: int, n_paths: int) -> np.ndarray:
        """Normals for paths [first_path, first_path + n_paths): `first_path` must start a block.

        With antithetic sampling the second half mirrors the first."""
        fresh = self.fresh(first_path, n_paths)
        return np.concatenate([fresh, -fresh]) if self.antithetic else fresh

    def fresh(self, first_path: int, n_paths: int, out: np.ndarray | None = None) -> np.ndarray:
        """The block's independent draws (its first half with antithetic sampling), into `out` if given."""
        if first_path % BLOCK_PATHS:
            raise ValueError(f"first_path: {first_path} is not a multiple of the block size {BLOCK_PATHS}")
        if self.antithetic and n_paths % 2:
            raise ValueError(f"paths: antithetic sampling needs an even number of paths, got {n_paths}")
        fresh = n_paths // 2 if self.antithetic else n_paths
        block_index = first_path // BLOCK_PATHS
        shape = (fresh, self.n_steps, self.n_assets)
        if out is None:
            out = np.empty(shape)
        if self.sampler == "pseudo":
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, block_index]))
            rng.standard_normal(shape, out=out)
        else:
            out[...] = self._sobol(block_index * (BLOCK_PATHS // 2 if self.antithetic else BLOCK_PATHS), fresh)
        return out

    def _sobol(self, start: int, n: int) -> np.ndarray:
        dims = self.n_steps * self.n_assets
        engine = qmc.Sobol(d=dims, scramble=True, seed=np.random.default_rng(self.seed))
        if start:
            engine.fast_forward(start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # balance warning for counts that are not powers of 2
            u = engine.random(n)
        normals = ndtri(np.clip(u, 1e-16, 1 - 1e-16))
        out = np.empty((n, self.n_steps, self.n_assets))
        b = self._bridge
        assert b is not None
        _bridge(normals, self.n_assets, b.target, b.left, b.right, b.left_weight, b.right_weight, b.stdev,
                self._sqdt, out)  # fmt: skip
        return out


def path_blocks(paths: int, first_path: int = 0) -> list[tuple[int, int]]:
    """(first path, count) of each block covering `paths` paths from `first_path`."""
    out = []
    start = first_path
    end = first_path + paths
    while start < end:
        n = min(BLOCK_PATHS, end - start)
        out.append((start, n))
        start += n
    return out
