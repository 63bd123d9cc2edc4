"""Concentration of the book by manager, asset class, clearing venue and bilateral counterparty, against the
desk's limits (15%, 30%, 25%, 10%).

Two measures of each group's share, both against the whole book:
- **initial margin**: the group's IM over the book's total IM. Venues and counterparties carry their own IM;
  managers and asset classes carry the Euler allocation of their venues' IM to their positions
  (`portfolio.allocate_margin`), so a hedge that lowers a venue's margin lowers its owner's share and the
  shares add up to one. This is the measure the limits are checked on.
- **gross notional**: the group's gross notional over the book's, a second view that ignores netting
  (a large hedged book is concentrated in notional but not in margin).

The venue limit (25%) applies to the clearing houses and the counterparty limit (10%) to the bilateral
counterparties, each against the total of all venues. A group breaches a limit when its share exceeds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from engines.margin.arrays import ASSET_CLASSES, MarginBook
from engines.margin.portfolio import group_sum

Dimension = Literal["manager", "asset_class", "venue", "counterparty"]
LIMITS: Final[dict[str, float]] = {"manager": 0.15, "asset_class": 0.30, "venue": 0.25, "counterparty": 0.10}
"""The desk's concentration limits, as a share of the book's total initial margin."""


@dataclass(frozen=True)
class GroupShare:
    """One group's initial margin and gross notional, and their shares of the book's totals."""

    dimension: str
    name: str
    im_usd: float
    im_share: float
    notional_usd: float
    notional_share: float
    limit: float

    @property
    def breach(self) -> bool:
        return self.im_share > self.limit

    @property
    def notional_breach(self) -> bool:
        return self.notional_share > self.limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "name": self.name,
            "im_usd": self.im_usd,
            "im_share": self.im_share,
            "notional_usd": self.notional_usd,
            "notional_share": self.notional_share,
            "limit": self.limit,
            "breach": self.breach,
            "notional_breach": self.notional_breach,
        }


@dataclass(frozen=True)
class Concentration:
    """Shares of every group by dimension (largest margin share first), and the breaches."""

    total_im_usd: float
    total_notional_usd: float
    limits: dict[str, float]
    groups: dict[str, list[GroupShare]] = field(default_factory=dict)

    @property
    def breaches(self) -> list[GroupShare]:
        """Groups over their limit on the margin measure, largest excess first."""
        out = [g for gs in self.groups.values() for g in gs if g.breach]
        return sorted(out, key=lambda g: g.limit - g.im_share)

    @property
    def notional_breaches(self) -> list[GroupShare]:
        """Groups over their limit on the gross-notional view."""
        out = [g for gs in self.groups.values() for g in gs if g.notional_breach]
        return sorted(out, key=lambda g: g.limit - g.notional_share)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON form; `top` keeps the largest groups of each dimension (breaches are always listed)."""
        return {
            "measure": "share of total initial margin (Euler allocation for managers and asset classes)",
            "second_view": "share of total gross notional",
            "total_im_usd": self.total_im_usd,
            "total_notional_usd": self.total_notional_usd,
            "limits": self.limits,
            "groups": {d: [g.to_dict() for g in gs[:top]] for d, gs in self.groups.items()},
            "breaches": [g.to_dict() for g in self.breaches],
            "notional_breaches": [g.to_dict() for g in self.notional_breaches],
        }


def concentration(
    book: MarginBook,
    venue_im_usd: np.ndarray,
    position_im_usd: np.ndarray,
    *,
    limits: dict[str, float] | None = None,
) -> Concentration:
    """Shares and limit breaches by manager, asset class, CCP and bilateral counterparty (see the module docstring).

    `venue_im_usd` ``[V]`` is each venue's IM; `position_im_usd` ``[P]`` its allocation to positions (which
    must add up to the venues' IM, as `portfolio.allocate_margin` gives).
    """
    lim = dict(LIMITS)
    for key, value in (limits or {}).items():
        if key not in LIMITS:
            raise ValueError(f"limits.{key}: not a concentration dimension; use {', '.join(LIMITS)}")
        if not 0.0 < value <= 1.0:
            raise ValueError(f"limits.{key}: a share in (0, 1], got {value}")
        lim[key] = float(value)
    venue_im = np.asarray(venue_im_usd, dtype=np.float64)
    pos_im = np.asarray(position_im_usd, dtype=np.float64)
    n_v, n_p = len(book.venues), len(book.position_ids)
    if venue_im.shape != (n_v,):
        raise ValueError(f"venue_im_usd: expected shape ({n_v},), got {venue_im.shape}")
    if pos_im.shape != (n_p,):
        raise ValueError(f"position_im_usd: expected shape ({n_p},), got {pos_im.shape}")
    total_im = float(venue_im.sum())
    allocated = float(pos_im.sum())
    if abs(allocated - total_im) > 1e-6 * max(abs(total_im), 1.0):
        raise ValueError(f"position_im_usd: adds up to {allocated:,.0f}, not the venues' total {total_im:,.0f}")
    if total_im <= 0:
        raise ValueError("venue_im_usd: the book's total initial margin must be positive")
    notional = book.position_notional_usd
    total_notional = float(notional.sum())
    venue_notional = group_sum(notional, book.position_venue, n_v)

    def shares(dim: str, names: Sequence[str], im: np.ndarray, gross: np.ndarray, keep: np.ndarray) -> list[GroupShare]:
        rows = []
        for i in np.flatnonzero(keep):
            notional_share = float(gross[i] / total_notional) if total_notional > 0 else 0.0
            rows.append(GroupShare(dim, names[i], float(im[i]), float(im[i] / total_im), float(gross[i]),
                                   notional_share, lim[dim]))  # fmt: skip
        return sorted(rows, key=lambda g: -g.im_share)

    n_m, n_c = len(book.managers), len(ASSET_CLASSES)
    asset_class = book.position_class.astype(np.int64)
    class_notional = group_sum(notional, asset_class, n_c)
    manager_im = group_sum(pos_im, book.position_manager, n_m)
    manager_notional = group_sum(notional, book.position_manager, n_m)
    at_venue = (venue_notional > 0) | (venue_im > 0)
    return Concentration(
        total_im_usd=total_im,
        total_notional_usd=total_notional,
        limits=lim,
        groups={
            "manager": shares("manager", book.managers, manager_im, manager_notional, np.ones(n_m, dtype=bool)),
            "asset_class": shares(
                "asset_class", ASSET_CLASSES, group_sum(pos_im, asset_class, n_c), class_notional, class_notional > 0
            ),
            "venue": shares("venue", book.venues, venue_im, venue_notional, book.venue_is_ccp & at_venue),
            "counterparty": shares(
                "counterparty", book.venues, venue_im, venue_notional, ~book.venue_is_ccp & at_venue
            ),
        },
    )


def book_concentration(loaded: Any, *, baseline: Any = None, limits: dict[str, float] | None = None) -> Concentration:
    """Concentration of a loaded book (`files.LoadedBook`) on its baseline IM and its allocation to positions."""
    from engines.margin.baseline import baseline_margin

    base = baseline if baseline is not None else baseline_margin(loaded)
    return concentration(loaded.arrays, base.venue_im_usd, base.position_im_usd, limits=limits)
