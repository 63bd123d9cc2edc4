"""The margin engine's working form of a book: positions, their risk-factor loadings and their venues
as numpy arrays, and the daily history of risk-factor returns.

Every kernel of the margin engine reads a `MarginBook` and a `FactorHistory`; `book.book_arrays`
builds the first from the pydantic `Book`. Conventions shared by all kernels:

- Money is in the book's base currency, USD, in fields ending `_usd`.
- A factor's return is what the history holds for it: a log return for prices, FX rates and implied
  volatilities; an absolute change in decimals (0.0001 = 1 bp) for interest rates and credit spreads.
- A position's profit and loss for one vector of factor returns ``r`` (a day's, or a horizon's) is
  the delta-gamma form over its loadings ``k``: ``pnl = Σ_k delta_k · r[f_k] + ½ · gamma_k · r[f_k]²``.
  Options carry a gamma on their underlying and a delta on their implied-volatility factor (vega).
- Factor ids follow one grammar so that sensitivities map onto SIMM risk factors:
  ``IR.<CCY>.<tenor>`` (tenors 3M 1Y 2Y 5Y 10Y 30Y), ``FX.<CCY>USD``, ``EQ.<index>``,
  ``CR.<index>.5Y``, ``CM.<commodity>``, ``VOL.IR.<CCY>``, ``VOL.EQ.<index>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

ASSET_CLASSES: Final = ("rates", "fx", "equity", "credit", "commodity")
"""Asset classes by code: a factor's or position's `*_class` array holds the index into this tuple."""

RATES, FX, EQUITY, CREDIT, COMMODITY = range(5)


@dataclass(frozen=True, eq=False)
class FactorHistory:
    """Daily risk-factor returns: ``returns[t, f]`` is factor ``factors[f]`` on ``dates[t]``.

    `stressed` flags the days the generator (or the file's author) marks as stress periods; the
    anti-procyclicality options and the stressed-margin tools may use it, but CCP models find their
    own stress windows from the data when told to.
    """

    dates: np.ndarray  # datetime64[D], shape [T], increasing
    factors: tuple[str, ...]
    returns: np.ndarray  # float64 [T, F]
    stressed: np.ndarray  # bool [T]

    def __post_init__(self) -> None:
        t, f = self.returns.shape
        if len(self.dates) != t or len(self.factors) != f or len(self.stressed) != t:
            raise ValueError(
                f"returns: shape {self.returns.shape} does not match {len(self.dates)} dates, "
                f"{len(self.factors)} factors and {len(self.stressed)} stress flags"
            )
        if not np.all(np.isfinite(self.returns)):
            bad = np.argwhere(~np.isfinite(self.returns))[0]
            raise ValueError(f"returns: not finite at date {self.dates[bad[0]]} factor {self.factors[bad[1]]}")

    def factor_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.factors)}

    def last(self, days: int) -> FactorHistory:
        """The most recent `days` observations."""
        return FactorHistory(self.dates[-days:], self.factors, self.returns[-days:], self.stressed[-days:])


@dataclass(frozen=True, eq=False)
class MarginBook:
    """A multi-manager book as arrays: F factors, V venues, P positions, K loadings.

    Venues are CCPs and bilateral counterparties in one index (`venue_is_ccp` tells which). Each
    position sits at exactly one venue and belongs to one strategy of one manager. The loadings are a
    sparse matrix in coordinate form: entry k loads position `load_position[k]` on factor
    `load_factor[k]` with `load_delta[k]` (USD per unit return) and `load_gamma[k]` (USD per unit
    return squared).
    """

    factors: tuple[str, ...]
    factor_class: np.ndarray  # int8 [F], index into ASSET_CLASSES
    factor_currency: np.ndarray  # int16 [F], index into `currencies`
    factor_depth_usd: np.ndarray  # float64 [F], notional that trades in a day without unusual impact
    venues: tuple[str, ...]
    venue_is_ccp: np.ndarray  # bool [V]
    managers: tuple[str, ...]
    strategies: tuple[str, ...]
    strategy_manager: np.ndarray  # int32 [S], the manager of each strategy
    currencies: tuple[str, ...]
    position_ids: tuple[str, ...]
    position_venue: np.ndarray  # int32 [P]
    position_manager: np.ndarray  # int32 [P]
    position_strategy: np.ndarray  # int32 [P]
    position_currency: np.ndarray  # int16 [P], the currency the position settles in
    position_class: np.ndarray  # int8 [P], index into ASSET_CLASSES
    position_notional_usd: np.ndarray  # float64 [P], gross notional (positive)
    position_value_usd: np.ndarray  # float64 [P], mark-to-market today
    position_expected_return_usd: np.ndarray  # float64 [P], expected P&L over a year
    position_liquidity_factor: np.ndarray  # int32 [P], the factor whose market depth governs selling it
    load_position: np.ndarray  # int32 [K]
    load_factor: np.ndarray  # int32 [K]
    load_delta: np.ndarray  # float64 [K]
    load_gamma: np.ndarray  # float64 [K]
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        f, v, p, k = len(self.factors), len(self.venues), len(self.position_ids), len(self.load_position)
        checks = {
            "factor_class": (self.factor_class, f),
            "factor_currency": (self.factor_currency, f),
            "factor_depth_usd": (self.factor_depth_usd, f),
            "venue_is_ccp": (self.venue_is_ccp, v),
            "strategy_manager": (self.strategy_manager, len(self.strategies)),
            "position_venue": (self.position_venue, p),
            "position_manager": (self.position_manager, p),
            "position_strategy": (self.position_strategy, p),
            "position_currency": (self.position_currency, p),
            "position_class": (self.position_class, p),
            "position_notional_usd": (self.position_notional_usd, p),
            "position_value_usd": (self.position_value_usd, p),
            "position_expected_return_usd": (self.position_expected_return_usd, p),
            "position_liquidity_factor": (self.position_liquidity_factor, p),
            "load_factor": (self.load_factor, k),
            "load_delta": (self.load_delta, k),
            "load_gamma": (self.load_gamma, k),
        }
        for name, (array, n) in checks.items():
            if array.shape != (n,):
                raise ValueError(f"{name}: expected shape ({n},), got {array.shape}")
        for name, array, n in (
            ("position_venue", self.position_venue, v),
            ("position_strategy", self.position_strategy, len(self.strategies)),
            ("position_manager", self.position_manager, len(self.managers)),
            ("load_position", self.load_position, p),
            ("load_factor", self.load_factor, f),
            ("position_liquidity_factor", self.position_liquidity_factor, f),
        ):
            if len(array) and (array.min() < 0 or array.max() >= n):
                raise ValueError(f"{name}: indices must lie in [0, {n}), got [{array.min()}, {array.max()}]")
        if np.any(self.factor_depth_usd <= 0):
            worst = self.factors[int(np.argmin(self.factor_depth_usd))]
            raise ValueError(f"factor_depth_usd: must be positive for every factor (not for {worst})")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(factors, venues, positions, loadings)."""
        return len(self.factors), len(self.venues), len(self.position_ids), len(self.load_position)

    def position_delta(self) -> np.ndarray:
        """Dense [P, F] deltas (USD per unit return); for tools working position by position."""
        return self._dense("position_delta", self.load_delta, self.load_position, len(self.position_ids))

    def position_gamma(self) -> np.ndarray:
        """Dense [P, F] gammas."""
        return self._dense("position_gamma", self.load_gamma, self.load_position, len(self.position_ids))

    def venue_delta(self) -> np.ndarray:
        """[V, F] net delta of each venue's positions: what a venue's margin model sees."""
        return self._dense("venue_delta", self.load_delta, self.position_venue[self.load_position], len(self.venues))

    def venue_gamma(self) -> np.ndarray:
        """[V, F] net gamma of each venue's positions."""
        return self._dense("venue_gamma", self.load_gamma, self.position_venue[self.load_position], len(self.venues))

    def _dense(self, name: str, values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
        cached = self._cache.get(name)
        if cached is None:
            cached = np.zeros((n, len(self.factors)))
            np.add.at(cached, (rows, self.load_factor), values)
            cached.setflags(write=False)
            self._cache[name] = cached
        return cached

    def with_positions_moved(self, positions: np.ndarray, venue: int) -> MarginBook:
        """The same book with the given positions moved to another venue (for netting what-ifs)."""
        moved = self.position_venue.copy()
        moved[positions] = venue
        return self._replace(position_venue=moved)

    def scaled(self, position_scale: np.ndarray) -> MarginBook:
        """The same book with each position scaled (sizes, loadings, values and expected returns)."""
        s = np.asarray(position_scale, dtype=np.float64)
        if s.shape != (len(self.position_ids),):
            raise ValueError(f"position_scale: expected shape ({len(self.position_ids)},), got {s.shape}")
        ks = s[self.load_position]
        return self._replace(
            position_notional_usd=self.position_notional_usd * np.abs(s),
            position_value_usd=self.position_value_usd * s,
            position_expected_return_usd=self.position_expected_return_usd * s,
            load_delta=self.load_delta * ks,
            load_gamma=self.load_gamma * ks,
        )

    def _replace(self, **changes: np.ndarray) -> MarginBook:
        fields = {k: v for k, v in self.__dict__.items() if k != "_cache"}
        fields.update(changes)
        return MarginBook(**fields)
