"""Margin efficiency by strategy and by manager: how much initial margin each consumes per unit of its own
risk, and how much expected return it earns per unit of margin.

- `im_usd`: the group's share of its venues' IM (the Euler allocation of `portfolio.allocate_margin`).
- `standalone_es_usd`: the risk of the group's positions alone, as if held in one account: the
  expected shortfall at `confidence` (99%) of their summed P&L over the scenarios scaled to
  `horizon_days` (10) by the square-root-of-time rule. It does not depend on where the positions clear.
- `im_per_risk` = im / standalone ES: above one the group posts more than its own risk (its positions
  sit at venues where they add to others' risk, or its venues' add-ons and buffers bite); below one it
  benefits from netting with other groups' positions at the same venues.
- `return_on_im` = expected annual return / im and `return_on_risk` = expected return / standalone ES.
  A group whose positions hedge their venues' other positions may carry a negative IM share: its IM
  per unit of risk is then negative (it saves margin) and its return on IM undefined (None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.margin.arrays import MarginBook
from engines.margin.portfolio import expected_shortfall, group_sum, position_pnl


@dataclass(frozen=True)
class Efficiency:
    """Efficiency figures of one strategy or manager (see the module docstring)."""

    name: str
    manager: str
    im_usd: float
    standalone_es_usd: float
    expected_return_usd: float

    @property
    def im_per_risk(self) -> float | None:
        """None when the group carries no standalone risk."""
        return self.im_usd / self.standalone_es_usd if self.standalone_es_usd > 0 else None

    @property
    def return_on_im(self) -> float | None:
        """None when the group's margin share is not positive (its positions lower their venues' margin)."""
        return self.expected_return_usd / self.im_usd if self.im_usd > 0 else None

    @property
    def return_on_risk(self) -> float | None:
        return self.expected_return_usd / self.standalone_es_usd if self.standalone_es_usd > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "manager": self.manager,
            "im_usd": self.im_usd,
            "standalone_es_usd": self.standalone_es_usd,
            "expected_return_usd": self.expected_return_usd,
            "im_per_risk": self.im_per_risk,
            "return_on_im": self.return_on_im,
            "return_on_risk": self.return_on_risk,
        }


@dataclass(frozen=True)
class MarginEfficiency:
    """Efficiency by strategy and by manager, least efficient (highest IM per unit of risk) first."""

    confidence: float
    horizon_days: int
    strategies: list[Efficiency]
    managers: list[Efficiency]

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        return {
            "risk_measure": f"standalone expected shortfall {self.confidence:.1%}, {self.horizon_days}-day",
            "confidence": self.confidence,
            "horizon_days": self.horizon_days,
            "strategies": [e.to_dict() for e in self.strategies[:top]],
            "managers": [e.to_dict() for e in self.managers[:top]],
        }


def margin_efficiency(
    book: MarginBook,
    position_im_usd: np.ndarray,
    scenarios: np.ndarray,
    *,
    confidence: float = 0.99,
    horizon_days: int = 10,
) -> MarginEfficiency:
    """IM per unit of standalone risk and return per unit of IM, by strategy and by manager.

    `scenarios` are one-day factor returns ``[N, F]`` (scaled here by √`horizon_days`); `position_im_usd`
    the allocation of venue IM to positions.
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days: at least 1, got {horizon_days}")
    pos_im = np.asarray(position_im_usd, dtype=np.float64)
    if pos_im.shape != (len(book.position_ids),):
        raise ValueError(f"position_im_usd: expected shape ({len(book.position_ids)},), got {pos_im.shape}")
    pnl = position_pnl(book, scenarios, np.sqrt(horizon_days))
    n_s, n_m = len(book.strategies), len(book.managers)
    held_s = np.bincount(book.position_strategy, minlength=n_s) > 0
    held_m = np.bincount(book.position_manager, minlength=n_m) > 0

    def rows(codes: np.ndarray, n: int, names: Sequence[str], owners: list[str], held: np.ndarray) -> list[Efficiency]:
        es = expected_shortfall(-group_sum(pnl, codes, n), confidence)
        im = group_sum(pos_im, codes, n)
        ret = group_sum(book.position_expected_return_usd, codes, n)
        out = [Efficiency(names[i], owners[i], float(im[i]), float(es[i]), float(ret[i])) for i in np.flatnonzero(held)]
        return sorted(out, key=lambda e: -math.inf if e.im_per_risk is None else -e.im_per_risk)

    strategy_owner = [book.managers[m] for m in book.strategy_manager]
    return MarginEfficiency(
        confidence=confidence,
        horizon_days=horizon_days,
        strategies=rows(book.position_strategy, n_s, book.strategies, strategy_owner, held_s),
        managers=rows(book.position_manager, n_m, book.managers, list(book.managers), held_m),
    )


def book_efficiency(
    loaded: Any, *, baseline: Any = None, horizon_days: int = 10, lookback_days: int = 2520, confidence: float = 0.99
) -> MarginEfficiency:
    """Efficiency of a loaded book (`files.LoadedBook`): baseline IM allocation, standalone risk on the one-day
    FHS scenarios of the last `lookback_days` at today's volatility (decay 0.97)."""
    from engines.margin import fhs
    from engines.margin.baseline import baseline_margin

    base = baseline if baseline is not None else baseline_margin(loaded)
    n = min(lookback_days, fhs.available_scenarios(loaded.history, mpor_days=1))
    scenarios = fhs.scenarios(loaded.history, lookback_days=n, mpor_days=1, ewma_decay=0.97)
    return margin_efficiency(
        loaded.arrays, base.position_im_usd, scenarios, confidence=confidence, horizon_days=horizon_days
    )
