"""The book seen through scenarios: what each position, venue, strategy and manager gains or loses in a
set of factor-return scenarios, expected shortfall, the allocation of venue margin to positions, and
the venue what-if (moving positions to another venue to capture netting).

The concentration limits (`concentration`), margin efficiency (`efficiency`) and the strategy optimiser
(`optimiser`) are built on these pieces.

Conventions:
- `scenarios` is a ``[N, F]`` matrix of factor returns over one day (or any unit horizon); a venue's
  margin period of risk enters as a per-venue `venue_scale` c_v that multiplies the returns seen at that
  venue (√mpor for the square-root-of-time rule). Because P&L is delta-gamma, scaling the returns by c
  scales the delta part by c and the gamma part by c²: ``pnl = c · Σ δ r + ½ c² · Σ γ r²``.
- A loss is minus a P&L; margin and shortfall are stated as positive losses in USD.
- Expected shortfall at confidence α over N equally weighted scenarios is the Rockafellar–Uryasev value
  ``min_ζ ζ + Σ (L_n − ζ)⁺ / ((1 − α) N)``: the mean of the worst k = (1 − α) N losses, the last one
  counted with the fractional weight k − ⌊k⌋ when k is not whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.margin.arrays import ASSET_CLASSES, MarginBook

VenueMargin = Callable[[MarginBook], np.ndarray]
"""A margin model over a whole book: the initial margin of every venue, ``[V]`` USD."""


def _scale(book: MarginBook, venue_scale: np.ndarray | float | None) -> np.ndarray:
    n = len(book.venues)
    if venue_scale is None:
        return np.ones(n)
    c = np.broadcast_to(np.asarray(venue_scale, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"venue_scale: must be positive and finite for every venue ({n})")
    return c


def _checked_scenarios(book: MarginBook, scenarios: np.ndarray) -> np.ndarray:
    r = np.asarray(scenarios, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != len(book.factors):
        raise ValueError(f"scenarios: expected shape [N, {len(book.factors)}] (one column per factor), got {r.shape}")
    if r.shape[0] == 0:
        raise ValueError("scenarios: at least one scenario is needed")
    return r


def venue_pnl_parts(book: MarginBook, scenarios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The delta and gamma parts ``([N, V], [N, V])`` of each venue's P&L in each scenario, unscaled: a venue's
    P&L with returns scaled by c is ``c · delta_part + c² · gamma_part``."""
    r = _checked_scenarios(book, scenarios)
    return r @ book.venue_delta().T, 0.5 * ((r * r) @ book.venue_gamma().T)


def venue_pnl(book: MarginBook, scenarios: np.ndarray, venue_scale: np.ndarray | float | None = None) -> np.ndarray:
    """``[N, V]`` P&L of each venue's netted positions in each scenario (USD), returns scaled per venue."""
    c = _scale(book, venue_scale)
    delta_part, gamma_part = venue_pnl_parts(book, scenarios)
    return delta_part * c + gamma_part * (c * c)


def position_pnl(book: MarginBook, scenarios: np.ndarray, venue_scale: np.ndarray | float | None = None) -> np.ndarray:
    """``[N, P]`` P&L of each position in each scenario (USD), with its venue's return scale."""
    r = _checked_scenarios(book, scenarios)
    c = _scale(book, venue_scale)[book.position_venue]
    return (r @ book.position_delta().T) * c + 0.5 * ((r * r) @ book.position_gamma().T) * (c * c)


def group_sum(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum the last axis of `values` by group label: ``[..., P] -> [..., G]``."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros((*values.shape[:-1], n_groups))
    if values.shape[-1] == 0:
        return out
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    out[..., sorted_groups[starts]] = np.add.reduceat(values[..., order], starts, axis=-1)
    return out


def tail_weights(losses: np.ndarray, confidence: float) -> np.ndarray:
    """Scenario weights ``[N, ...]`` whose weighted sum of `losses` is their expected shortfall, column by column.

    Each column's weights are 1/k on its ⌊k⌋ worst scenarios and (k − ⌊k⌋)/k on the next, k = (1 − α) N,
    and zero elsewhere; they sum to one. The same weights applied to the parts of a column (a venue's
    positions) give the Euler allocation of that column's shortfall to its parts.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must lie strictly between 0 and 1, got {confidence}")
    n = losses.shape[0]
    k = (1.0 - confidence) * n
    if k < 1.0:
        raise ValueError(f"confidence: {confidence} leaves fewer than one of the {n} scenarios in the tail")
    order = np.argsort(-losses, axis=0, kind="stable")
    rank_weight = np.zeros(n)
    whole = int(np.floor(k))
    rank_weight[:whole] = 1.0 / k
    if whole < n:
        rank_weight[whole] = (k - whole) / k
    weights = np.zeros_like(losses, dtype=np.float64)
    np.put_along_axis(weights, order, rank_weight.reshape((n,) + (1,) * (losses.ndim - 1)), axis=0)
    return weights


def expected_shortfall(losses: np.ndarray, confidence: float) -> np.ndarray:
    """Expected shortfall of each column of `losses` (``[N]`` or ``[N, ...]``) at `confidence`."""
    return np.sum(tail_weights(losses, confidence) * losses, axis=0)


def es_margin(
    scenarios: np.ndarray, confidence: float = 0.99, venue_scale: np.ndarray | float | None = None
) -> VenueMargin:
    """A plain margin model: each venue's margin is the expected shortfall of its netted loss over `scenarios`.

    The stand-in for the venues' own models (FHS with add-ons, SIMM) where only netting matters: tests
    and what-ifs on hand-built books. Negative shortfalls (a venue that gains in every tail) count as zero.
    """

    def margin(book: MarginBook) -> np.ndarray:
        return np.maximum(expected_shortfall(-venue_pnl(book, scenarios, venue_scale), confidence), 0.0)

    return margin


def allocate_margin(
    book: MarginBook,
    scenarios: np.ndarray,
    venue_im_usd: np.ndarray,
    *,
    confidence: float = 0.99,
    venue_scale: np.ndarray | float | None = None,
) -> np.ndarray:
    """``[P]`` each position's share of its venue's initial margin (USD); the shares of a venue add up to its IM.

    Euler allocation under expected shortfall: a position carries its mean loss over its venue's tail
    scenarios (the `tail_weights` of the venue's netted loss), so a hedge carries a negative share. The
    contributions are then rescaled per venue to the venue's actual IM (which also holds add-ons and
    anti-procyclicality buffers the scenarios do not). A venue whose tail loss is not positive (nothing at
    risk there) spreads its IM by gross notional; one without positions has nothing to spread it over.
    """
    im = np.asarray(venue_im_usd, dtype=np.float64)
    if im.shape != (len(book.venues),):
        raise ValueError(f"venue_im_usd: expected shape ({len(book.venues)},), got {im.shape}")
    pos_loss = -position_pnl(book, scenarios, venue_scale)
    venue_loss = group_sum(pos_loss, book.position_venue, len(book.venues))
    w = tail_weights(venue_loss, confidence)
    contribution = np.sum(w[:, book.position_venue] * pos_loss, axis=0)
    venue_es = group_sum(contribution, book.position_venue, len(book.venues))
    notional = group_sum(book.position_notional_usd, book.position_venue, len(book.venues))
    scale_pos = np.divide(im, venue_es, out=np.zeros_like(im), where=venue_es > 1e-9 * np.maximum(im, 1.0))
    by_es = venue_es[book.position_venue] > 1e-9 * np.maximum(im[book.position_venue], 1.0)
    by_notional = np.divide(im, notional, out=np.zeros_like(im), where=notional > 0)
    return np.where(
        by_es,
        contribution * scale_pos[book.position_venue],
        book.position_notional_usd * by_notional[book.position_venue],
    )


# ---- selecting and moving positions -------------------------------------------------------------------


def select_positions(
    book: MarginBook,
    *,
    ids: Sequence[str] | None = None,
    manager: str | None = None,
    asset_class: str | None = None,
    venue: str | None = None,
) -> np.ndarray:
    """Indices of the positions that match every criterion given (ids, manager, asset class, current venue)."""
    mask = np.ones(len(book.position_ids), dtype=bool)
    if ids is not None:
        index = {p: i for i, p in enumerate(book.position_ids)}
        unknown = [p for p in ids if p not in index]
        if unknown:
            raise ValueError(f"ids: unknown position id(s) {', '.join(map(repr, unknown[:5]))}")
        chosen = np.zeros_like(mask)
        chosen[[index[p] for p in ids]] = True
        mask &= chosen
    for name, value, labels, codes in (
        ("manager", manager, book.managers, book.position_manager),
        ("asset_class", asset_class, ASSET_CLASSES, book.position_class),
        ("venue", venue, book.venues, book.position_venue),
    ):
        if value is None:
            continue
        if value not in labels:
            raise ValueError(f"{name}: unknown {name.replace('_', ' ')} {value!r}")
        mask &= codes == labels.index(value)
    return np.flatnonzero(mask)


@dataclass(frozen=True)
class VenueMove:
    """The margin effect of moving positions to another venue: IM per venue before and after, and in total.

    `netting_benefit_usd` = total IM before − after (positive: the move saves margin). Only venues whose
    IM changed are listed in `venues`.
    """

    positions: list[str]
    to_venue: str
    from_venues: list[str]
    venues: list[str]
    im_before_usd: list[float]
    im_after_usd: list[float]
    total_before_usd: float
    total_after_usd: float

    @property
    def netting_benefit_usd(self) -> float:
        return self.total_before_usd - self.total_after_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "positions": self.positions,
            "to_venue": self.to_venue,
            "from_venues": self.from_venues,
            "venues": [
                {"venue": v, "im_before_usd": b, "im_after_usd": a, "change_usd": a - b}
                for v, b, a in zip(self.venues, self.im_before_usd, self.im_after_usd, strict=True)
            ],
            "total_before_usd": self.total_before_usd,
            "total_after_usd": self.total_after_usd,
            "netting_benefit_usd": self.netting_benefit_usd,
        }


def move_positions(book: MarginBook, positions: np.ndarray, to_venue: str, margin_of: VenueMargin) -> VenueMove:
    """Move `positions` (indices) to `to_venue` and report each venue's IM before and after under `margin_of`.

    The netting benefit is what the destination gains by netting the moved risk against what it already
    holds, minus what the origins lose by no longer netting it. Moving between a CCP and a bilateral
    counterparty is allowed here (a what-if), though a real book would need the product to be clearable.
    """
    if to_venue not in book.venues:
        raise ValueError(f"to_venue: unknown venue {to_venue!r}")
    idx = np.unique(np.asarray(positions, dtype=np.int64))
    if idx.size == 0:
        raise ValueError(f"positions: none to move (none matched, or all are at {to_venue} already)")
    target = book.venues.index(to_venue)
    before = np.asarray(margin_of(book), dtype=np.float64)
    after = np.asarray(margin_of(book.with_positions_moved(idx, target)), dtype=np.float64)
    changed = np.flatnonzero(np.abs(after - before) > 1e-9 * np.maximum(np.abs(before), 1.0))
    origins = sorted({book.venues[v] for v in book.position_venue[idx]})
    return VenueMove(
        positions=[book.position_ids[i] for i in idx],
        to_venue=to_venue,
        from_venues=origins,
        venues=[book.venues[v] for v in changed],
        im_before_usd=before[changed].tolist(),
        im_after_usd=after[changed].tolist(),
        total_before_usd=float(before.sum()),
        total_after_usd=float(after.sum()),
    )


# ---- on a loaded book ---------------------------------------------------------------------------------------


def book_margin_model(loaded: Any, *, vol_multiplier: float = 1.0) -> VenueMargin:
    """The venues' own margin models over any arrangement of a loaded book's positions: each CCP's model
    (`ccp.ccp_initial_margin`, at `vol_multiplier` times today's volatility) and, at each bilateral
    counterparty whose CSA asks for it, SIMM on the netting set's sensitivities (multiplied by the vol
    multiplier, as `stressed` scales it), plus the CSA's independent amount."""
    from engines.margin import ccp
    from engines.margin.baseline import venue_csa, venue_models
    from engines.margin.simm import simm_by_counterparty

    models = venue_models(loaded.book)
    csa = venue_csa(loaded.book)
    independent = np.array([0.0 if t is None else t.independent_amount_usd for t in csa])
    with_simm = [t is not None and t.initial_margin == "simm" for t in csa]

    def margin(book: MarginBook) -> np.ndarray:
        ccp_im = ccp.ccp_initial_margin(book, loaded.history, models, vol_multiplier=vol_multiplier).total_usd
        simm = np.zeros(len(book.venues))
        for v, result in simm_by_counterparty(book).items():
            if with_simm[int(v)]:
                simm[int(v)] = float(result.total_usd)
        return ccp_im + simm * vol_multiplier + independent

    return margin


def move_book_positions(
    loaded: Any,
    to_venue: str,
    *,
    ids: Sequence[str] | None = None,
    manager: str | None = None,
    asset_class: str | None = None,
    from_venue: str | None = None,
    vol_multiplier: float = 1.0,
) -> VenueMove:
    """`move_positions` on a loaded book with the venues' own models (`book_margin_model`): the positions that
    match every criterion given move to `to_venue`."""
    if ids is None and manager is None and asset_class is None and from_venue is None:
        raise ValueError("ids: say which positions to move (ids, manager, asset_class or from_venue)")
    book = loaded.arrays
    chosen = select_positions(book, ids=ids, manager=manager, asset_class=asset_class, venue=from_venue)
    target = book.venues.index(to_venue) if to_venue in book.venues else -1
    chosen = chosen[book.position_venue[chosen] != target]  # positions already there do not move
    return move_positions(book, chosen, to_venue, book_margin_model(loaded, vol_multiplier=vol_multiplier))
