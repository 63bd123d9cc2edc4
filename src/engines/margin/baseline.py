"""Baseline margin of the book: initial margin at every venue (CCP models and SIMM), today's variation
margin, and their breakdowns per venue, counterparty, manager, strategy, currency and asset class.

Initial margin (`venue_im_usd`, what the fund posts):
- at a CCP, its model's figure (`ccp.ccp_initial_margin`: FHS VaR/ES with its APC option, plus the
  concentration and liquidity add-ons);
- with a bilateral counterparty, ISDA SIMM on the netting set's sensitivities
  (`simm.simm_by_counterparty`, the side the fund posts) when its CSA asks for regulatory IM
  (``initial_margin="simm"``), plus the CSA's independent amount, which the fund posts whatever the
  netting set is worth.

Variation margin today (`venue_vm_usd`, positive when the fund pays): the move from the history's
last day (``history.returns[-1]``, the day that ends at the book's as-of date) revalued on the book's
loadings (`variation.variation_margin`): paid in full at a CCP; under the CSA elsewhere, from a
balance that matched the credit support amount before the move (threshold, transfer minimum and
rounding then decide the call).

Allocation to positions, so that every breakdown adds up to the venue totals: a CCP's margin by its
Euler pieces (`ccp`); SIMM by the Euler contributions of a proxy — the netting set's 99% expected
shortfall on FHS scenarios at the CSA's margin period of risk (at most 10 days) — scaled to the SIMM
figure (SIMM has no cheap gradient; the proxy ranks the positions' contributions to the same
10-day risk); the independent amount in proportion to gross notional; variation margin in
proportion to each position's P&L of the day. The currency of a breakdown is the currency the
venue's calls are paid in (`Ccp.currency`, `CsaTerms.currency`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from engines.margin import ccp
from engines.margin.arrays import ASSET_CLASSES, FactorHistory, MarginBook
from engines.margin.variation import position_pnl, variation_margin
from engines.margin.venues import CcpMarginModel, CsaTerms

Progress = Callable[[int, int], None] | None
BilateralIm = Callable[[MarginBook], dict[int, Any]]
"""SIMM per bilateral venue index: results with a `total_usd` (default: `simm.simm_by_counterparty`)."""

DIMENSIONS = ("venue", "counterparty", "manager", "strategy", "currency", "asset_class")


class LoadedBookLike(Protocol):
    """What a loaded book offers (`files.LoadedBook`): the pydantic book, its history and its arrays."""

    @property
    def book(self) -> Any: ...
    @property
    def history(self) -> FactorHistory: ...
    @property
    def arrays(self) -> MarginBook: ...


def venue_models(book: Any) -> list[CcpMarginModel | None]:
    """Each venue's CCP margin model in venue order (None for a bilateral counterparty)."""
    return [v.margin_model if v.kind == "ccp" else None for v in book.venues]


def venue_csa(book: Any) -> list[CsaTerms | None]:
    """Each venue's CSA in venue order (None for a CCP)."""
    return [v.csa if v.kind == "bilateral" else None for v in book.venues]


def venue_currency(book: Any) -> tuple[str, ...]:
    """The currency each venue's calls are paid in."""
    return tuple(v.currency if v.kind == "ccp" else v.csa.currency for v in book.venues)


def check_venue_order(loaded: LoadedBookLike) -> None:
    ids = tuple(v.id for v in loaded.book.venues)
    if ids != tuple(loaded.arrays.venues):
        raise ValueError("arrays.venues: not the book's venues in the book's order")


@dataclass(frozen=True, eq=False)
class BilateralMargin:
    """SIMM and independent amount per venue (zero at CCPs), allocated to positions."""

    simm_usd: np.ndarray  # [V]
    independent_amount_usd: np.ndarray  # [V]
    position_simm_usd: np.ndarray  # [P]
    position_independent_amount_usd: np.ndarray  # [P]
    results: dict[int, Any]  # the SIMM results by venue index
    breakdown_sum_usd: np.ndarray  # [V] SIMM without diversification across risk classes (sum of their margins)

    @property
    def total_usd(self) -> np.ndarray:
        return self.simm_usd + self.independent_amount_usd

    @property
    def position_usd(self) -> np.ndarray:
        return self.position_simm_usd + self.position_independent_amount_usd


def bilateral_margin(
    loaded: LoadedBookLike, *, simm_im: BilateralIm | None = None, options: ccp.CcpOptions | None = None
) -> BilateralMargin:
    """SIMM plus independent amount of every bilateral venue, allocated to positions (module docstring)."""
    arrays, history, book = loaded.arrays, loaded.history, loaded.book
    n_v = len(arrays.venues)
    csa = venue_csa(book)
    if simm_im is None:
        from engines.margin.simm import simm_by_counterparty

        simm_im = simm_by_counterparty
    results = {int(v): r for v, r in simm_im(arrays).items()}
    simm = np.zeros(n_v)
    no_div = np.zeros(n_v)
    ia = np.zeros(n_v)
    for v, terms in enumerate(csa):
        if terms is None:
            continue
        ia[v] = terms.independent_amount_usd
        if terms.initial_margin == "simm" and v in results:
            simm[v] = float(results[v].total_usd)
            no_div[v] = _undiversified(results[v])
    position_simm = _proxy_allocation(arrays, history, csa, simm, options)
    return BilateralMargin(simm, ia, position_simm, _by_notional(arrays, ia), results, no_div)


def _undiversified(result: Any) -> float:
    """SIMM with the risk classes of each product class summed instead of aggregated with ψ."""
    classes = getattr(result, "product_classes", None)
    if not classes:
        return float(result.total_usd)
    pcs = sum(rc.margin_usd for pc in classes.values() for rc in pc.risk_classes.values())
    extra = sum(pc.additional_usd for pc in classes.values()) + sum(getattr(result, "add_ons_usd", {}).values())
    return max(float(pcs + extra), float(result.total_usd))


def _proxy_allocation(
    arrays: MarginBook,
    history: FactorHistory,
    csa: Sequence[CsaTerms | None],
    amount: np.ndarray,
    options: ccp.CcpOptions | None,
) -> np.ndarray:
    """[P] `amount[v]` of each bilateral venue split by the Euler pieces of a 99% ES proxy."""
    n_v = len(arrays.venues)
    lookback = min(750, len(history.dates) - 10)
    models: list[CcpMarginModel | None] = [None] * n_v
    for v, terms in enumerate(csa):
        if terms is not None and amount[v] > 0:
            models[v] = CcpMarginModel(measure="es", confidence=0.99, mpor_days=min(terms.mpor_days, 10),
                                       lookback_days=max(lookback, 250), apc="none")  # fmt: skip
    out = np.zeros(len(arrays.position_ids))
    if not any(m is not None for m in models):
        return out
    rm = ccp.row_margins(history, arrays.venue_delta(), arrays.venue_gamma(), models, options=options)
    pieces = ccp.loading_contributions(arrays, arrays.position_venue[arrays.load_position], rm.a, rm.b)
    v = arrays.position_venue
    proxy = rm.margin[v]
    scaled = np.divide(amount[v] * pieces, proxy, out=np.zeros_like(pieces), where=proxy > 0)
    # a netting set without tail risk in the proxy (all its scenarios gains) is split by notional
    flat = np.zeros(n_v)
    flat[(amount > 0) & (rm.margin <= 0)] = amount[(amount > 0) & (rm.margin <= 0)]
    return scaled + _by_notional(arrays, flat)


def _by_notional(arrays: MarginBook, amount: np.ndarray) -> np.ndarray:
    """[P] each venue's `amount` in proportion to its positions' gross notional."""
    v = arrays.position_venue
    gross = np.bincount(v, weights=arrays.position_notional_usd, minlength=len(arrays.venues))
    return np.divide(amount[v] * arrays.position_notional_usd, gross[v], out=np.zeros(len(v)), where=gross[v] > 0)


def position_labels(
    arrays: MarginBook, currency_of_venue: Sequence[str]
) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
    """For each dimension: the label index of every position and the label names."""
    currencies = tuple(sorted(set(currency_of_venue)))
    venue_ccy = np.array([currencies.index(c) for c in currency_of_venue], dtype=np.int64)
    v = arrays.position_venue.astype(np.int64)
    return {
        "venue": (v, arrays.venues),
        "counterparty": (np.where(arrays.venue_is_ccp[v], -1, v), arrays.venues),
        "manager": (arrays.position_manager.astype(np.int64), arrays.managers),
        "strategy": (arrays.position_strategy.astype(np.int64), arrays.strategies),
        "currency": (venue_ccy[v], currencies),
        "asset_class": (arrays.position_class.astype(np.int64), ASSET_CLASSES),
    }


def group_sums(values: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Sum of `values` per label (negative labels are left out), keyed by name; labels never seen are omitted."""
    keep = labels >= 0
    sums = np.bincount(labels[keep], weights=values[keep], minlength=len(names))
    seen = np.bincount(labels[keep], minlength=len(names)) > 0
    return {names[i]: float(sums[i]) for i in np.flatnonzero(seen)}


@dataclass(frozen=True, eq=False)
class BaselineMargin:
    """Initial and variation margin per venue (USD) with position pieces that add up to them.

    `venue_im_usd` = CCP total (`ccp`) or SIMM plus independent amount (`bilateral`);
    `venue_vm_usd` is today's variation margin, positive when the fund pays.
    """

    venues: tuple[str, ...]
    venue_is_ccp: np.ndarray
    venue_currency: tuple[str, ...]
    venue_im_usd: np.ndarray  # [V]
    venue_vm_usd: np.ndarray  # [V]
    venue_pnl_usd: np.ndarray  # [V] today's move
    vm_settlement_lag_days: np.ndarray  # [V]
    position_im_usd: np.ndarray  # [P]
    position_vm_usd: np.ndarray  # [P]
    ccp: ccp.CcpMargin
    bilateral: BilateralMargin
    vm_date: str
    labels: dict[str, tuple[np.ndarray, tuple[str, ...]]] = field(repr=False)

    @property
    def total_im_usd(self) -> float:
        return float(self.venue_im_usd.sum())

    @property
    def ccp_im_usd(self) -> float:
        return float(self.venue_im_usd[self.venue_is_ccp].sum())

    @property
    def bilateral_im_usd(self) -> float:
        return float(self.venue_im_usd[~self.venue_is_ccp].sum())

    @property
    def total_vm_usd(self) -> float:
        return float(self.venue_vm_usd.sum())

    def breakdown(self, dimension: str) -> dict[str, dict[str, float]]:
        """{label: {"im_usd", "vm_usd"}} along one of `DIMENSIONS` (counterparty: bilateral venues only)."""
        if dimension not in self.labels:
            raise ValueError(f"dimension: one of {', '.join(DIMENSIONS)}, got {dimension!r}")
        labels, names = self.labels[dimension]
        im = group_sums(self.position_im_usd, labels, names)
        vm = group_sums(self.position_vm_usd, labels, names)
        if dimension in ("venue", "counterparty", "currency"):  # venues without positions still have figures
            im, vm = self._venue_level(dimension, names)
        return {k: {"im_usd": im[k], "vm_usd": vm.get(k, 0.0)} for k in im}

    def _venue_level(self, dimension: str, names: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
        if dimension == "currency":
            im: dict[str, float] = {}
            vm: dict[str, float] = {}
            for c, i, v in zip(self.venue_currency, self.venue_im_usd, self.venue_vm_usd, strict=True):
                im[c] = im.get(c, 0.0) + float(i)
                vm[c] = vm.get(c, 0.0) + float(v)
            return im, vm
        keep = np.ones(len(self.venues), dtype=bool) if dimension == "venue" else ~self.venue_is_ccp
        im = {self.venues[v]: float(self.venue_im_usd[v]) for v in np.flatnonzero(keep)}
        vm = {self.venues[v]: float(self.venue_vm_usd[v]) for v in np.flatnonzero(keep)}
        return im, vm

    def venue_rows(self) -> list[dict[str, Any]]:
        """One row per venue with every component, ordered by IM (largest first)."""
        c, b = self.ccp, self.bilateral
        rows = []
        for v in np.argsort(-self.venue_im_usd, kind="stable"):
            rows.append({
                "venue": self.venues[v],
                "kind": "ccp" if self.venue_is_ccp[v] else "bilateral",
                "currency": self.venue_currency[v],
                "im_usd": float(self.venue_im_usd[v]),
                "core_usd": float(c.core_usd[v]),
                "apc_usd": float(c.apc_usd[v]),
                "concentration_usd": float(c.concentration_usd[v]),
                "liquidity_usd": float(c.liquidity_usd[v]),
                "simm_usd": float(b.simm_usd[v]),
                "independent_amount_usd": float(b.independent_amount_usd[v]),
                "vm_usd": float(self.venue_vm_usd[v]),
            })  # fmt: skip
        return rows

    def to_dict(self, *, top: int | None = None) -> dict[str, Any]:
        """JSON-ready: totals, venue rows (the `top` largest, or all) and every breakdown."""
        rows = self.venue_rows()
        return {
            "totals": {
                "im_usd": self.total_im_usd,
                "ccp_im_usd": self.ccp_im_usd,
                "bilateral_im_usd": self.bilateral_im_usd,
                "ccp_core_usd": float(self.ccp.core_usd.sum()),
                "ccp_apc_usd": float(self.ccp.apc_usd.sum()),
                "ccp_concentration_usd": float(self.ccp.concentration_usd.sum()),
                "ccp_liquidity_usd": float(self.ccp.liquidity_usd.sum()),
                "simm_usd": float(self.bilateral.simm_usd.sum()),
                "independent_amount_usd": float(self.bilateral.independent_amount_usd.sum()),
                "vm_usd": self.total_vm_usd,
                "vm_paid_usd": float(np.maximum(self.venue_vm_usd, 0).sum()),
                "vm_received_usd": float(np.maximum(-self.venue_vm_usd, 0).sum()),
            },
            "vm_date": self.vm_date,
            "venues": rows if top is None else rows[:top],
            "breakdowns": {d: self.breakdown(d) for d in DIMENSIONS if d != "venue"},
        }


def baseline_margin(
    loaded: LoadedBookLike,
    *,
    options: ccp.CcpOptions | None = None,
    simm_im: BilateralIm | None = None,
    progress: Progress = None,
) -> BaselineMargin:
    """Baseline IM and VM of a loaded book (`files.LoadedBook`), per venue and position (module docstring).

    `simm_im` replaces SIMM (tests, or a counterparty's own figures). `progress(done, total)` is
    called as the three stages (CCP models, SIMM, variation margin) finish.
    """
    check_venue_order(loaded)
    arrays, history, book = loaded.arrays, loaded.history, loaded.book
    total = 3
    if progress:
        progress(0, total)
    cm = ccp.ccp_initial_margin(arrays, history, venue_models(book), options=options)
    if progress:
        progress(1, total)
    bm = bilateral_margin(loaded, simm_im=simm_im, options=options)
    if progress:
        progress(2, total)
    vm = variation_margin(arrays, history.returns[-1], venue_csa(book))
    pos_pnl = position_pnl(arrays, history.returns[-1])
    v = arrays.position_venue
    pos_vm = np.divide(vm.paid_usd[v] * pos_pnl, vm.pnl_usd[v], out=np.zeros_like(pos_pnl), where=vm.pnl_usd[v] != 0)
    currency = venue_currency(book)
    result = BaselineMargin(
        venues=arrays.venues,
        venue_is_ccp=np.asarray(arrays.venue_is_ccp, dtype=bool),
        venue_currency=currency,
        venue_im_usd=cm.total_usd + bm.total_usd,
        venue_vm_usd=vm.paid_usd,
        venue_pnl_usd=vm.pnl_usd,
        vm_settlement_lag_days=vm.settlement_lag_days,
        position_im_usd=cm.position_total_usd + bm.position_usd,
        position_vm_usd=pos_vm,
        ccp=cm,
        bilateral=bm,
        vm_date=str(history.dates[-1]),
        labels=position_labels(arrays, currency),
    )
    if progress:
        progress(total, total)
    return result
