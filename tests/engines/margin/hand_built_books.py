"""Small margin books built by hand from dense delta (and gamma) matrices, for the engine's unit tests:
equity factors EQ.X<i>, venues VEN<i>, one currency, deep markets, every other field plain."""

from __future__ import annotations

import numpy as np

from engines.margin.arrays import MarginBook


def hand_book(
    delta: np.ndarray,
    venue: list[int],
    *,
    gamma: np.ndarray | None = None,
    strategy: list[int] | None = None,
    strategy_manager: list[int] | None = None,
    asset_class: list[int] | None = None,
    is_ccp: list[bool] | None = None,
    expected_return: list[float] | None = None,
    notional: list[float] | None = None,
    n_venues: int | None = None,
    value: list[float] | None = None,
) -> MarginBook:
    """A book from dense [P, F] deltas (and gammas); every other field is plain and small."""
    delta = np.asarray(delta, dtype=np.float64)
    p, f = delta.shape
    gamma = np.zeros_like(delta) if gamma is None else np.asarray(gamma, dtype=np.float64)
    strat = np.zeros(p, np.int32) if strategy is None else np.asarray(strategy, np.int32)
    owner = np.zeros(strat.max() + 1, np.int32) if strategy_manager is None else np.asarray(strategy_manager, np.int32)
    n_v = n_venues or max(venue) + 1
    rows, cols = np.nonzero((delta != 0) | (gamma != 0))
    return MarginBook(
        factors=tuple(f"EQ.X{i}" for i in range(f)),
        factor_class=np.full(f, 2, np.int8),
        factor_currency=np.zeros(f, np.int16),
        factor_depth_usd=np.full(f, 1e12),
        venues=tuple(f"VEN{i}" for i in range(n_v)),
        venue_is_ccp=np.ones(n_v, bool) if is_ccp is None else np.asarray(is_ccp, bool),
        managers=tuple(f"MGR{i}" for i in range(owner.max() + 1)),
        strategies=tuple(f"STR{i}" for i in range(len(owner))),
        strategy_manager=owner,
        currencies=("USD",),
        position_ids=tuple(f"POS{i}" for i in range(p)),
        position_venue=np.asarray(venue, np.int32),
        position_manager=owner[strat],
        position_strategy=strat,
        position_currency=np.zeros(p, np.int16),
        position_class=np.full(p, 2, np.int8) if asset_class is None else np.asarray(asset_class, np.int8),
        position_notional_usd=np.abs(delta).sum(axis=1) if notional is None else np.asarray(notional, np.float64),
        position_value_usd=np.zeros(p) if value is None else np.asarray(value, np.float64),
        position_expected_return_usd=np.zeros(p) if expected_return is None else np.asarray(expected_return),
        position_liquidity_factor=np.zeros(p, np.int32),
        load_position=rows.astype(np.int32),
        load_factor=cols.astype(np.int32),
        load_delta=delta[rows, cols],
        load_gamma=gamma[rows, cols],
    )
