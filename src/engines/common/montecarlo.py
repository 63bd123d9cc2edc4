"""Monte Carlo price of a European option under terminal geometric Brownian motion.

Under Black–Scholes dynamics only the terminal spot matters, so each path is one normal draw z:

    S_T = S · exp((r - q - σ²/2) T + σ √T z)

With antithetic variates every z also prices its mirror -z, and the *pair average*
Y = e^{-rT} (f(S_T(z)) + f(S_T(-z))) / 2 is the sample (the two halves of a pair are not
independent, so the standard error must come from pair averages, not from single paths).

An estimate is carried as sufficient statistics (pairs n, Σ Y, Σ Y²), so the chunks of one
request, priced on different workers with their own seeds, combine exactly by adding them:
price = ΣY / n and standard error = sqrt((ΣY² - (ΣY)²/n) / (n - 1) / n).

Reproducibility: normals come from numpy's `np.random.default_rng(seed)` in fixed-size
batches; the numba kernels split their work into a fixed number of blocks and add the block
sums in order, so the same seed gives the same bits whatever the number of threads. On a
machine with a CUDA GPU the payoffs are computed there (same normals from the host, same
formula; the last bits of `exp` may differ from the CPU's).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from engines.registry import InvalidInputs, check_fields, choice, integer, number, register

BATCH_PAIRS = 1 << 20
"""Normals drawn per batch (bounds memory: 8 MiB of normals and 8 MiB of payoffs)."""
MAX_PATHS = 10**10
"""Largest path count of one chunk: a guard against a mistyped exponent occupying a worker for days."""
SUM_BLOCKS = 256
"""Fixed number of blocks the kernels split work into; fixed so that results do not depend on threads."""

Backend = Literal["auto", "cpu", "cuda"]
_FIELDS = ("spot", "strike", "rate", "dividend_yield", "volatility", "maturity_years", "option", "paths")

# The workqueue threading layer (the fallback when neither TBB nor OpenMP is present) aborts the
# process when parallel kernels are launched from two threads at once; the kernels already use
# every core, so calls from several threads are serialised.
_kernel_lock = threading.Lock()


@dataclass(frozen=True)
class EuropeanOption:
    """The contract and market of a European option, validated (see `from_inputs`)."""

    spot: float
    strike: float
    rate: float
    dividend_yield: float
    volatility: float
    maturity_years: float
    option: str

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> EuropeanOption:
        """Validate the option fields of `inputs`; `InvalidInputs` names the first bad field."""
        return cls(
            spot=number(inputs, "spot", positive=True),
            strike=number(inputs, "strike", positive=True),
            rate=number(inputs, "rate"),
            dividend_yield=number(inputs, "dividend_yield"),
            volatility=number(inputs, "volatility", positive=True),
            maturity_years=number(inputs, "maturity_years", positive=True),
            option=choice(inputs, "option", ("call", "put")),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "spot": self.spot,
            "strike": self.strike,
            "rate": self.rate,
            "dividend_yield": self.dividend_yield,
            "volatility": self.volatility,
            "maturity_years": self.maturity_years,
            "option": self.option,
        }


@dataclass(frozen=True)
class MonteCarloStats:
    """Sufficient statistics of pair-averaged discounted payoffs; `+` combines two estimates exactly."""

    pairs: int
    sum: float
    sum_of_squares: float

    @property
    def paths(self) -> int:
        return 2 * self.pairs

    @property
    def price(self) -> float:
        """The estimate: mean of the pair averages (NaN without pairs)."""
        return self.sum / self.pairs if self.pairs else math.nan

    @property
    def standard_error(self) -> float:
        """Standard error of `price` from the sample variance of the pair averages (NaN below 2 pairs)."""
        n = self.pairs
        if n < 2:
            return math.nan
        variance = max(self.sum_of_squares - self.sum * (self.sum / n), 0.0) / (n - 1)
        return math.sqrt(variance / n)

    def __add__(self, other: MonteCarloStats) -> MonteCarloStats:
        return MonteCarloStats(
            self.pairs + other.pairs, self.sum + other.sum, self.sum_of_squares + other.sum_of_squares
        )

    @classmethod
    def of_samples(cls, samples: NDArray[np.float64]) -> MonteCarloStats:
        """Statistics of given pair averages (summed as the kernels do)."""
        total, squares = _sum_and_sum_of_squares(np.ascontiguousarray(samples, dtype=np.float64))
        return cls(int(samples.size), total, squares)


def _block(b: int, n: int) -> tuple[int, int]:
    size = (n + SUM_BLOCKS - 1) // SUM_BLOCKS
    lo = min(b * size, n)
    return lo, min(lo + size, n)


_block_jit = njit(cache=True)(_block)


def pair_payoff(
    z: float, spot: float, strike: float, drift: float, diffusion: float, discount: float, is_call: bool
) -> float:
    """Discounted payoff averaged over the antithetic pair (z, -z) of one normal draw.

    Plain Python so that one definition compiles for the CPU (`njit`) and as a CUDA device
    function (`montecarlo_cuda`): both backends run the same algorithm.
    """
    up = spot * math.exp(drift + diffusion * z)
    down = spot * math.exp(drift - diffusion * z)
    if is_call:
        payoff = max(up - strike, 0.0) + max(down - strike, 0.0)
    else:
        payoff = max(strike - up, 0.0) + max(strike - down, 0.0)
    return 0.5 * discount * payoff


_pair_payoff_jit = njit(cache=True)(pair_payoff)


@njit(parallel=True, cache=True)
def _pair_payoffs(
    z: NDArray[np.float64],
    spot: float,
    strike: float,
    drift: float,
    diffusion: float,
    discount: float,
    is_call: bool,
    out: NDArray[np.float64],
) -> None:  # pragma: no cover - compiled
    n = z.size
    for b in prange(SUM_BLOCKS):
        lo, hi = _block_jit(b, n)
        for i in range(lo, hi):
            out[i] = _pair_payoff_jit(z[i], spot, strike, drift, diffusion, discount, is_call)


@njit(parallel=True, cache=True)
def _sum_and_sum_of_squares(y: NDArray[np.float64]) -> tuple[float, float]:  # pragma: no cover - compiled
    n = y.size
    sums = np.zeros(SUM_BLOCKS)
    squares = np.zeros(SUM_BLOCKS)
    for b in prange(SUM_BLOCKS):
        lo, hi = _block_jit(b, n)
        s = 0.0
        q = 0.0
        for i in range(lo, hi):
            s += y[i]
            q += y[i] * y[i]
        sums[b] = s
        squares[b] = q
    total = 0.0
    total_squares = 0.0
    for b in range(SUM_BLOCKS):  # in block order: independent of the thread count
        total += sums[b]
        total_squares += squares[b]
    return total, total_squares


def _use_cuda(backend: Backend) -> bool:
    if backend == "cpu":
        return False
    from engines.common import montecarlo_cuda

    if backend == "cuda":
        if not montecarlo_cuda.cuda_importable():
            raise RuntimeError("backend 'cuda' asked for, but numba's CUDA target cannot be imported")
        return True
    return montecarlo_cuda.gpu_available()


def _payoffs_into(
    z: NDArray[np.float64], contract: EuropeanOption, out: NDArray[np.float64], use_cuda: bool
) -> NDArray[np.float64]:
    t = contract.maturity_years
    vol = contract.volatility
    args = (
        contract.spot,
        contract.strike,
        (contract.rate - contract.dividend_yield - 0.5 * vol * vol) * t,
        vol * math.sqrt(t),
        math.exp(-contract.rate * t),
        contract.option == "call",
    )
    if use_cuda:
        from engines.common.montecarlo_cuda import pair_payoffs_cuda

        pair_payoffs_cuda(z, *args, out)
    else:
        with _kernel_lock:
            _pair_payoffs(z, *args, out)
    return out


def _check_paths(paths: int) -> int:
    paths = integer({"paths": paths}, "paths", minimum=2, maximum=MAX_PATHS)
    if paths % 2:
        raise InvalidInputs("paths", f"must be even (antithetic pairs), got {paths}")
    return paths


def _check_seed(seed: int | None) -> int:
    if seed is None:
        raise InvalidInputs("seed", "is required: a Monte Carlo result must be reproducible from its recorded seed")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputs("seed", f"must be a non-negative integer, got {seed!r}")
    return int(seed)


def european_option_stats(
    contract: EuropeanOption, paths: int, seed: int, *, backend: Backend = "auto"
) -> MonteCarloStats:
    """Price `contract` on `paths` paths (paths/2 antithetic pairs) seeded with `seed`.

    Memory stays bounded (batches of `BATCH_PAIRS`), and the same seed gives the same result.
    """
    pairs = _check_paths(paths) // 2
    rng = np.random.default_rng(_check_seed(seed))
    use_cuda = _use_cuda(backend)
    buffer = np.empty(min(pairs, BATCH_PAIRS))
    stats = MonteCarloStats(0, 0.0, 0.0)
    done = 0
    while done < pairs:
        m = min(BATCH_PAIRS, pairs - done)
        z = rng.standard_normal(m)
        y = _payoffs_into(z, contract, buffer[:m], use_cuda)
        with _kernel_lock:
            total, squares = _sum_and_sum_of_squares(y)
        stats = stats + MonteCarloStats(m, total, squares)
        done += m
    return stats


def discounted_pair_payoffs(
    contract: EuropeanOption, paths: int, seed: int, *, backend: Backend = "cpu"
) -> NDArray[np.float64]:
    """Every pair-averaged discounted payoff that `european_option_stats` sums (same seed, same
    draws), for checks and diagnostics; holds all paths/2 of them in memory."""
    pairs = _check_paths(paths) // 2
    rng = np.random.default_rng(_check_seed(seed))
    use_cuda = _use_cuda(backend)
    out = np.empty(pairs)
    for lo in range(0, pairs, BATCH_PAIRS):
        hi = min(lo + BATCH_PAIRS, pairs)
        _payoffs_into(rng.standard_normal(hi - lo), contract, out[lo:hi], use_cuda)
    return out


def mc_european_option(
    spot: float,
    strike: float,
    rate: float,
    dividend_yield: float,
    volatility: float,
    maturity_years: float,
    option: str,
    paths: int,
    seed: int,
    *,
    backend: Backend = "auto",
) -> MonteCarloStats:
    """Monte Carlo price of a European option (per unit of underlying): the library entry point.

    Arguments as in `engines.common.black_scholes.black_scholes_price`; raises `InvalidInputs`
    naming the argument at fault.
    """
    contract = EuropeanOption.from_inputs(
        {
            "spot": spot,
            "strike": strike,
            "rate": rate,
            "dividend_yield": dividend_yield,
            "volatility": volatility,
            "maturity_years": maturity_years,
            "option": option,
        }
    )
    return european_option_stats(contract, paths, seed, backend=backend)


def _result(stats: MonteCarloStats, contract: Mapping[str, Any], chunks: int) -> dict[str, Any]:
    se = stats.standard_error
    return {
        "price": stats.price,
        "standard_error": None if math.isnan(se) else se,
        "paths": stats.paths,
        "pairs": stats.pairs,
        "sum": stats.sum,
        "sum_of_squares": stats.sum_of_squares,
        "chunks": chunks,
        "contract": dict(contract),
    }


def combine_european_option(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Add the statistics of chunks that priced the same contract; the output is again a valid
    chunk result, so combining is associative."""
    contract = results[0].get("contract")
    total = MonteCarloStats(0, 0.0, 0.0)
    chunks = 0
    for i, result in enumerate(results):
        missing = [f for f in ("pairs", "sum", "sum_of_squares", "contract") if f not in result]
        if missing:
            raise ValueError(f"chunk {i}: result lacks {', '.join(missing)}")
        if result["contract"] != contract:
            raise ValueError(f"chunk {i} priced {result['contract']}, chunk 0 priced {contract}: cannot combine")
        total = total + MonteCarloStats(int(result["pairs"]), float(result["sum"]), float(result["sum_of_squares"]))
        chunks += int(result.get("chunks", 1))
    return _result(total, contract, chunks)


@register("mc.european_option", combine=combine_european_option)
def european_option_kind(inputs: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """Monte Carlo price and standard error of a European option (chunkable: one seed per chunk)."""
    check_fields(inputs, _FIELDS)
    contract = EuropeanOption.from_inputs(inputs)
    paths = integer(inputs, "paths", minimum=2, maximum=MAX_PATHS)
    stats = european_option_stats(contract, paths, _check_seed(seed))
    return _result(stats, contract.as_dict(), 1)
