"""Cut stressed margin while keeping the return target: scale each strategy by x_s ∈ [1 − δ, 1 + δ]
(δ = 25%) to minimise the book's total stressed margin subject to Σ_s x_s · R_s ≥ the return target.

The margin each venue charges is modelled as the expected shortfall at α (99%) of the venue's netted loss
over a set of stressed scenarios (filtered historical returns under a volatility multiplier, each venue's
returns scaled to its margin period of risk): the core of the CCPs' FHS models, and a stand-in for SIMM
at bilateral counterparties. Scaling a strategy scales its positions (deltas and gammas alike), so a
venue's loss in scenario n is linear in x: ``L_vn(x) = Σ_s x_s · ℓ_vsn`` with ℓ_vsn the loss of strategy
s's positions at venue v. A venue's margin is its shortfall floored at zero (a venue where the book gains
in every tail scenario charges nothing, it does not pay), ``max(ES_v(x), 0)``. The problem is then an
exact linear programme in the Rockafellar–Uryasev form:

    minimise    Σ_v m_v
    subject to  m_v ≥ ζ_v + Σ_n u_vn / ((1 − α) N),  m_v ≥ 0,
                u_vn ≥ Σ_s ℓ_vsn x_s − ζ_v,  u_vn ≥ 0,  1 − δ ≤ x_s ≤ 1 + δ,  Σ_s R_s x_s ≥ target,

solved by HiGHS (`scipy.optimize.linprog`). With hundreds of venues and scenarios the full programme
has N·V rows, so it is solved by constraint generation on a reduced scenario set: each venue starts with
its worst scenarios at x = 1, the programme is solved, each venue's tail at the solution is recomputed
on all N scenarios, and scenarios that entered a tail are added until every venue's tail lies in its set.
The reduced programme is a lower bound of the full one (its shortfall is a maximum over fewer
scenario subsets), so when the tails are inside the sets its optimum is the full programme's optimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, sparse

from engines.margin.arrays import MarginBook
from engines.margin.portfolio import VenueMargin, expected_shortfall, group_sum, position_pnl

Progressor = Callable[[int, int], None] | None


@dataclass(frozen=True)
class StrategyChange:
    """One strategy's scale factor and what it does to the strategy's expected return."""

    strategy: str
    manager: str
    scale: float
    expected_return_before_usd: float
    expected_return_after_usd: float

    @property
    def change(self) -> float:
        return self.scale - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "manager": self.manager,
            "scale": self.scale,
            "change": self.change,
            "expected_return_before_usd": self.expected_return_before_usd,
            "expected_return_after_usd": self.expected_return_after_usd,
        }


@dataclass(frozen=True)
class Optimisation:
    """The optimiser's answer: scale factors, stressed margin and return before and after.

    `margin_*_usd` is the optimiser's own measure (Σ over venues of the stressed expected shortfall);
    `model_margin_*_usd`, when a margin model was given, the same book before and after under that model.
    """

    confidence: float
    max_change: float
    scenarios: int
    scenarios_used: int
    rounds: int
    margin_before_usd: float
    margin_after_usd: float
    return_before_usd: float
    return_after_usd: float
    return_target_usd: float
    strategies: list[StrategyChange]
    venue_margin_before_usd: np.ndarray
    venue_margin_after_usd: np.ndarray
    model_margin_before_usd: float | None = None
    model_margin_after_usd: float | None = None

    @property
    def reduction_usd(self) -> float:
        return self.margin_before_usd - self.margin_after_usd

    @property
    def return_target_met(self) -> bool:
        return self.return_after_usd >= self.return_target_usd - 1e-6 * max(abs(self.return_target_usd), 1.0)

    def scales(self) -> dict[str, float]:
        return {c.strategy: c.scale for c in self.strategies}

    def to_dict(self) -> dict[str, Any]:
        largest = max((abs(c.change) for c in self.strategies), default=0.0)
        return {
            "objective": f"sum over venues of stressed expected shortfall {self.confidence:.1%}",
            "confidence": self.confidence,
            "max_change": self.max_change,
            "largest_change": largest,
            "scenarios": self.scenarios,
            "scenarios_used": self.scenarios_used,
            "rounds": self.rounds,
            "margin_before_usd": self.margin_before_usd,
            "margin_after_usd": self.margin_after_usd,
            "reduction_usd": self.reduction_usd,
            "reduction_share": self.reduction_usd / self.margin_before_usd if self.margin_before_usd > 0 else 0.0,
            "return_before_usd": self.return_before_usd,
            "return_after_usd": self.return_after_usd,
            "return_target_usd": self.return_target_usd,
            "return_target_met": self.return_target_met,
            "model_margin_before_usd": self.model_margin_before_usd,
            "model_margin_after_usd": self.model_margin_after_usd,
            "strategies": [c.to_dict() for c in sorted(self.strategies, key=lambda c: -abs(c.change))],
        }


def strategy_venue_losses(
    book: MarginBook, scenarios: np.ndarray, venue_scale: np.ndarray | float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Losses of each (venue, strategy) pair held in the book: ``(venue [Q], strategy [Q], loss [N, Q])``."""
    pair_code = book.position_venue.astype(np.int64) * len(book.strategies) + book.position_strategy
    pairs, inverse = np.unique(pair_code, return_inverse=True)
    loss = -group_sum(position_pnl(book, scenarios, venue_scale), inverse, len(pairs))
    return pairs // len(book.strategies), pairs % len(book.strategies), loss


def _tail_count(n: int, confidence: float) -> float:
    k = (1.0 - confidence) * n
    if not 0.0 < confidence < 1.0 or k < 1.0:
        raise ValueError(f"confidence: {confidence} must lie in (0, 1) and leave one of the {n} scenarios in the tail")
    return k


def optimise_strategies(
    book: MarginBook,
    scenarios: np.ndarray,
    *,
    venue_scale: np.ndarray | float | None = None,
    confidence: float = 0.99,
    return_target_usd: float | None = None,
    max_change: float = 0.25,
    margin_of: VenueMargin | None = None,
    max_rounds: int = 30,
    progress: Progressor = None,
) -> Optimisation:
    """Strategy scale factors minimising total stressed margin at the return target (see the module docstring).

    `scenarios` ``[N, F]`` are the stressed one-day factor returns, `venue_scale` each venue's return scale
    (√mpor); `return_target_usd` defaults to today's expected return (x = 1). `margin_of`, if given, is
    applied to the book before and after (each position scaled by its strategy's factor) for the report.
    """
    if not 0.0 <= max_change < 1.0:
        raise ValueError(f"max_change: a fraction in [0, 1), got {max_change}")
    venue_of, strategy_of, loss = strategy_venue_losses(book, scenarios, venue_scale)
    n = loss.shape[0]
    k = _tail_count(n, confidence)
    strategies = np.unique(strategy_of)
    venues = np.unique(venue_of)
    x_col = np.searchsorted(strategies, strategy_of)  # column of each pair's strategy among the variables
    v_row = np.searchsorted(venues, venue_of)
    n_x, n_v = len(strategies), len(venues)
    ret = group_sum(book.position_expected_return_usd, book.position_strategy, len(book.strategies))[strategies]
    today = float(ret.sum())
    target = today if return_target_usd is None else float(return_target_usd)
    lo, hi = 1.0 - max_change, 1.0 + max_change
    best_possible = float(np.sum(np.where(ret > 0, hi, lo) * ret))
    if target > best_possible + 1e-9 * max(abs(best_possible), 1.0):
        raise ValueError(
            f"return_target_usd: {target:,.0f} is above the most the strategies can earn within ±{max_change:.0%} "
            f"({best_possible:,.0f})"
        )

    def venue_losses(x: np.ndarray) -> np.ndarray:
        return group_sum(loss * x[x_col], v_row, n_v)  # [N, V']

    scale = max(float(np.sum(np.abs(expected_shortfall(venue_losses(np.ones(n_x)), confidence)))), 1.0)
    ret_scale = max(float(np.abs(ret).sum()), 1.0)
    want = min(n, math.ceil(k) + 1)
    first = min(n, math.ceil(3 * k) + 2)
    base = venue_losses(np.ones(n_x))
    candidates = [set(np.argsort(-base[:, j], kind="stable")[:first].tolist()) for j in range(n_v)]
    x = np.ones(n_x)
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        x = _solve(loss / scale, x_col, v_row, candidates, k, ret / ret_scale, target / ret_scale, lo, hi, n_x, n_v)
        losses = venue_losses(x)
        grown = False
        for j in range(n_v):
            tail = np.argsort(-losses[:, j], kind="stable")[:want]
            missing = set(tail.tolist()) - candidates[j]
            if missing:
                candidates[j] |= set(np.argsort(-losses[:, j], kind="stable")[: 2 * want].tolist())
                grown = True
        if progress is not None:
            progress(rounds, rounds + 1 if grown else rounds)
        if not grown:
            break
    else:
        raise RuntimeError(f"max_rounds: the scenario set did not settle in {max_rounds} rounds")

    before_v = np.maximum(expected_shortfall(base, confidence), 0.0)
    after_v = np.maximum(expected_shortfall(venue_losses(x), confidence), 0.0)
    venue_before = np.zeros(len(book.venues))
    venue_after = np.zeros(len(book.venues))
    venue_before[venues] = before_v
    venue_after[venues] = after_v
    full_x = np.ones(len(book.strategies))
    full_x[strategies] = x
    model_before = model_after = None
    if margin_of is not None:
        model_before = float(np.sum(margin_of(book)))
        model_after = float(np.sum(margin_of(book.scaled(full_x[book.position_strategy]))))
    changes = [
        StrategyChange(
            book.strategies[s],
            book.managers[book.strategy_manager[s]],
            float(x[i]),
            float(ret[i]),
            float(ret[i] * x[i]),
        )
        for i, s in enumerate(strategies)
    ]
    return Optimisation(
        confidence=confidence,
        max_change=max_change,
        scenarios=n,
        scenarios_used=len(set().union(*candidates)),
        rounds=rounds,
        margin_before_usd=float(before_v.sum()),
        margin_after_usd=float(after_v.sum()),
        return_before_usd=today,
        return_after_usd=float(ret @ x),
        return_target_usd=target,
        strategies=changes,
        venue_margin_before_usd=venue_before,
        venue_margin_after_usd=venue_after,
        model_margin_before_usd=model_before,
        model_margin_after_usd=model_after,
    )


def _solve(
    loss: np.ndarray,
    x_col: np.ndarray,
    v_row: np.ndarray,
    candidates: list[set[int]],
    k: float,
    ret: np.ndarray,
    target: float,
    lo: float,
    hi: float,
    n_x: int,
    n_v: int,
) -> np.ndarray:
    """The Rockafellar–Uryasev programme on each venue's candidate scenarios; returns x.

    Variables in order: x [n_x], ζ [n_v], m [n_v], u [one per venue and candidate scenario].
    """
    rows, cols, vals = [], [], []
    row = 0
    pairs_of = [np.flatnonzero(v_row == j) for j in range(n_v)]
    m_start = n_x + n_v
    u_start = m_start + n_v
    floor_rows, floor_cols, floor_vals = [], [], []
    for j in range(n_v):
        scen = np.array(sorted(candidates[j]), dtype=np.int64)
        m = len(scen)
        q = pairs_of[j]
        block = loss[np.ix_(scen, q)]  # [m, q]: loss of each pair in each candidate scenario
        # Σ_pairs loss · x_strategy: pairs of the same strategy at this venue share a column (summed by coo)
        r_idx = np.repeat(np.arange(row, row + m), len(q))
        rows += [r_idx, np.arange(row, row + m), np.arange(row, row + m)]
        cols += [np.tile(x_col[q], m), np.full(m, n_x + j), u_start + np.arange(row, row + m)]
        vals += [block.ravel(), np.full(m, -1.0), np.full(m, -1.0)]
        # ζ_v + Σ_n u_vn / k − m_v ≤ 0
        floor_rows += [np.full(m + 2, j)]
        floor_cols += [np.r_[n_x + j, m_start + j, u_start + np.arange(row, row + m)]]
        floor_vals += [np.r_[1.0, -1.0, np.full(m, 1.0 / k)]]
        row += m
    n_u = row
    width = u_start + n_u
    entries = (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))
    tails = sparse.coo_matrix(entries, shape=(row, width))
    floor_entries = (np.concatenate(floor_vals), (np.concatenate(floor_rows), np.concatenate(floor_cols)))
    floors = sparse.coo_matrix(floor_entries, shape=(n_v, width))
    return_row = sparse.coo_matrix((-ret, (np.zeros(n_x, dtype=np.int64), np.arange(n_x))), shape=(1, width))
    a_ub = sparse.vstack([tails, floors, return_row], format="csr")
    b_ub = np.concatenate([np.zeros(row + n_v), [-target]])
    c = np.concatenate([np.zeros(n_x + n_v), np.ones(n_v), np.zeros(n_u)])
    bounds = [(lo, hi)] * n_x + [(None, None)] * n_v + [(0.0, None)] * (n_v + n_u)
    result = optimize.linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if result.status != 0:
        raise RuntimeError(f"optimiser: the linear programme did not solve ({result.message})")
    return np.clip(result.x[:n_x], lo, hi)


def venue_return_scale(book: Any) -> np.ndarray:
    """``[V]`` √(margin period of risk) of each venue: the CCP model's, or the CSA's capped at 10 days (as the
    baseline's SIMM allocation proxy)."""
    days = [v.margin_model.mpor_days if v.kind == "ccp" else min(v.csa.mpor_days, 10) for v in book.venues]
    return np.sqrt(np.asarray(days, dtype=np.float64))


def optimise_book(
    loaded: Any,
    *,
    vol_multiplier: float = 2.0,
    lookback_days: int = 750,
    confidence: float = 0.99,
    return_target_usd: float | None = None,
    max_change: float = 0.25,
    check_with_model: bool = True,
    progress: Progressor = None,
) -> Optimisation:
    """The optimiser on a loaded book (`files.LoadedBook`): stressed scenarios are the one-day FHS returns of
    the last `lookback_days` at `vol_multiplier` times today's volatility (decay 0.97), scaled per venue by
    √MPOR; with `check_with_model` the book before and after is also run through the venues' own stressed
    models (`portfolio.book_margin_model`: CCP models at the multiplier, SIMM scaled alike)."""
    from engines.margin import fhs
    from engines.margin.portfolio import book_margin_model

    history = loaded.history
    n = min(lookback_days, fhs.available_scenarios(history, mpor_days=1))
    scenarios = fhs.scenarios(history, lookback_days=n, mpor_days=1, ewma_decay=0.97, vol_multiplier=vol_multiplier)
    return optimise_strategies(
        loaded.arrays,
        scenarios,
        venue_scale=venue_return_scale(loaded.book),
        confidence=confidence,
        return_target_usd=return_target_usd,
        max_change=max_change,
        margin_of=book_margin_model(loaded, vol_multiplier=vol_multiplier) if check_with_model else None,
        progress=progress,
    )
