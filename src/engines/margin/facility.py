"""Credit facility sizing: the smallest facility limit with which, in `confidence` (99%) of the avalanche paths over
the stress, the fund never has to liquidate positions and never falls short, given the facility's drawdown
restrictions (notice before cash arrives, a cap per day) and the treasury's drawing policy (`avalanche`).

Method. The avalanche paths use counter-based random numbers, so every trial limit sees the same paths (common
random numbers) and any subset of paths can be re-simulated alone. A path is *exhausted* at limit L when it
needs forced liquidation or has a shortfall. The sizing assumes exhaustion is monotone in L (a larger limit
never makes a path worse); with instant drawings and no daily cap this holds exactly (a path is exhausted iff
L is below its peak cumulative net calls minus the usable cash), and with delays it is the natural reading of
the drawing policy. Then:

1. With an unlimited facility (same notice; the daily cap as below) a path exhausted even so is exhausted at
   every L; if more than ``(1 − confidence) · paths`` are, no limit reaches the confidence (`limit_usd` is
   None: the delays, not the size, are binding). With a fixed daily cap any limit at least as large as the
   most a path ever requested changes nothing, which brackets the answer in ``[0, max requested]``; with a
   cap in proportion to the limit the bracket is doubled until it meets the confidence.
2. Bisection on L. Each path remembers the smallest limit at which it was seen not exhausted and the largest
   at which it was seen exhausted; only paths between the two are simulated again, so a sizing costs a few
   full runs, not one per step. It stops when the bracket is narrower than `tolerance_usd` (or 10⁻⁴ of the
   limit) and returns its upper end: the smallest limit found that meets the confidence.

The daily drawdown cap of a resized facility is, by `daily_cap`, the facility's own cap kept as it is
(``"fixed"``), or the same share of the limit as today's (``"proportional"``, the default: a facility
negotiated larger comes with a larger drawdown schedule; a fixed cap that the calls outrun makes every limit
fall short). The sizing is done twice: with the facility's notice and that cap, and without delays (notice 0,
no daily cap); the difference is what the operational delays and drawdown restrictions cost in facility
size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engines.margin import avalanche_kernels as K
from engines.margin.avalanche import AvalancheModel, AvalancheSettings, prepare_book, run_model

Progress = Callable[[int, int], None] | None
DailyCap = Literal["fixed", "proportional", "none"]
UNLIMITED_USD = 1e18
"""A limit (and a daily cap) no path reaches."""


@dataclass(frozen=True)
class Sizing:
    """One sizing: the smallest limit meeting the confidence under the given drawdown terms."""

    notice_hours: int
    daily_cap: str  # "fixed", "proportional" or "none"
    max_draw_per_day_usd: float | None  # at limit_usd (None: no daily cap)
    limit_usd: float | None  # None: not reachable with these delays
    exhaust_probability: float  # at limit_usd (or with an unlimited facility when not reachable)
    unlimited_exhaust_probability: float
    bisection_steps: int
    paths_simulated: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "notice_hours": self.notice_hours,
            "daily_cap": self.daily_cap,
            "max_draw_per_day_usd": self.max_draw_per_day_usd,
            "limit_usd": self.limit_usd,
            "exhaust_probability": self.exhaust_probability,
            "unlimited_exhaust_probability": self.unlimited_exhaust_probability,
            "bisection_steps": self.bisection_steps,
            "paths_simulated": self.paths_simulated,
        }


@dataclass(frozen=True)
class FacilitySizing:
    """Facility sizing with and without the drawdown delays, and the current facility's exhaustion probability."""

    confidence: float
    paths: int
    with_delays: Sizing
    without_delays: Sizing
    current_limit_usd: float
    current_exhaust_probability: float
    settings: dict[str, Any]
    resources: dict[str, float]

    @property
    def cost_of_delays_usd(self) -> float | None:
        """Extra facility the delays and the daily cap require (None when no limit meets the confidence)."""
        if self.with_delays.limit_usd is None or self.without_delays.limit_usd is None:
            return None
        return self.with_delays.limit_usd - self.without_delays.limit_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence": self.confidence,
            "paths": self.paths,
            "limit_usd": self.with_delays.limit_usd,
            "limit_without_delays_usd": self.without_delays.limit_usd,
            "cost_of_delays_usd": self.cost_of_delays_usd,
            "current_limit_usd": self.current_limit_usd,
            "current_exhaust_probability": self.current_exhaust_probability,
            "with_delays": self.with_delays.to_dict(),
            "without_delays": self.without_delays.to_dict(),
            "settings": self.settings,
            "resources": self.resources,
        }


class _Search:
    """Exhaustion of every path at trial limits, re-simulating only the paths whose status is not yet known."""

    def __init__(self, model: AvalancheModel, ids: np.ndarray, notice: int, cap_of: Callable[[float], float]) -> None:
        self.model, self.ids, self.notice, self.cap_of = model, ids, notice, cap_of
        self.ok_from = np.full(len(ids), np.inf)  # smallest limit seen not exhausted
        self.bad_to = np.full(len(ids), -np.inf)  # largest limit seen exhausted
        self.simulated = 0

    def exhausted(self, limit: float) -> tuple[np.ndarray, np.ndarray]:
        """(exhausted flags, facility requested) of every path at `limit` (requests only for simulated paths)."""
        bad = self.bad_to >= limit
        unknown = ~bad & (self.ok_from > limit)
        requested = np.zeros(len(self.ids))
        if unknown.any():
            model = self.model.with_facility(limit, self.notice, self.cap_of(limit))
            stats, _ = run_model(model, self.ids[unknown])
            self.simulated += int(unknown.sum())
            hit = stats[:, K.S_EXHAUST_HOUR] >= 0
            idx = np.flatnonzero(unknown)
            bad[idx[hit]] = True
            self.bad_to[idx[hit]] = np.maximum(self.bad_to[idx[hit]], limit)
            self.ok_from[idx[~hit]] = np.minimum(self.ok_from[idx[~hit]], limit)
            requested[idx] = stats[:, K.S_REQUESTED]
        return bad, requested


def _cap_rule(model: AvalancheModel, daily_cap: DailyCap) -> Callable[[float], float]:
    """The daily drawdown cap at a trial limit: the model's own, in proportion to the limit, or none."""
    limit0 = float(model.fparams[K.F_LIMIT])
    cap0 = float(model.fparams[K.F_DAILY_CAP])
    if daily_cap == "none":
        return lambda limit: UNLIMITED_USD
    if daily_cap == "fixed" or limit0 <= 0:
        return lambda limit: cap0
    ratio = cap0 / limit0
    return lambda limit: min(ratio * limit, UNLIMITED_USD)


def smallest_limit(
    model: AvalancheModel,
    *,
    confidence: float = 0.99,
    notice_hours: int | None = None,
    daily_cap: DailyCap = "proportional",
    tolerance_usd: float = 1e6,
    progress: Progress = None,
) -> tuple[Sizing, _Search]:
    """The smallest limit with at most ``(1 − confidence)`` of the paths exhausted (module docstring), and the
    search (which knows every path's status at the limits tried).

    `notice_hours` defaults to the model's facility; `daily_cap` is the model's cap kept ("fixed"), scaled with
    the limit ("proportional") or lifted ("none"). `progress(done, total)` is called after each trial limit
    (the total is an estimate of the steps).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must lie in (0, 1), got {confidence}")
    if daily_cap not in ("fixed", "proportional", "none"):
        raise ValueError(f"daily_cap: must be 'fixed', 'proportional' or 'none', got {daily_cap!r}")
    notice = int(model.iparams[K.I_NOTICE]) if notice_hours is None else int(notice_hours)
    cap_of = _cap_rule(model, daily_cap)
    n = model.settings.paths
    ids = np.arange(n, dtype=np.int64)
    allowed = math.floor((1.0 - confidence) * n + 1e-9)
    search = _Search(model, ids, notice, cap_of)

    def report(done: int, total: int) -> None:
        if progress:
            progress(done, total)

    def sizing(limit: float | None, p: float, p_unlimited: float, steps: int) -> Sizing:
        cap = None if limit is None or daily_cap == "none" else cap_of(limit)
        return Sizing(notice, daily_cap, cap, limit, p, p_unlimited, steps, search.simulated)

    report(0, 2)
    bad_unlimited, requested = search.exhausted(UNLIMITED_USD)
    p_unlimited = float(bad_unlimited.mean())
    search.bad_to[bad_unlimited] = np.inf  # exhausted whatever the limit
    if bad_unlimited.sum() > allowed:
        return sizing(None, p_unlimited, p_unlimited, 0), search
    hi = float(requested.max(initial=0.0))
    if daily_cap != "proportional":  # at a limit no path's requests reach, every path is as with no limit
        search.ok_from[~bad_unlimited] = np.minimum(search.ok_from[~bad_unlimited], hi)
    else:  # a smaller limit also means a smaller daily cap: widen until the confidence is met
        hi = max(hi, tolerance_usd)
        while hi < UNLIMITED_USD and search.exhausted(hi)[0].sum() > allowed:
            hi *= 2.0
    expected = 2 + max(0, math.ceil(math.log2(max(hi, tolerance_usd) / max(tolerance_usd, 1e-4 * hi, 1e-300))))
    report(1, expected)
    steps = 0
    lo_bad, _ = search.exhausted(0.0)
    report(2, expected)
    if lo_bad.sum() <= allowed:
        return sizing(0.0, float(lo_bad.mean()), p_unlimited, 0), search
    lo = 0.0
    p_hi = float(search.exhausted(hi)[0].mean())
    while hi - lo > max(tolerance_usd, 1e-4 * hi):
        mid = 0.5 * (lo + hi)
        bad, _ = search.exhausted(mid)
        steps += 1
        report(min(2 + steps, expected - 1), expected)
        if bad.sum() <= allowed:
            hi, p_hi = mid, float(bad.mean())
        else:
            lo = mid
    report(expected, expected)
    return sizing(hi, p_hi, p_unlimited, steps), search


class _Halves:
    """Progress of two sizings in a row as one bar: each takes half of it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def first(self, done: int, total: int) -> None:
        if self.progress:
            self.progress(round(500 * done / max(total, 1)), 1000)

    def second(self, done: int, total: int) -> None:
        if self.progress:
            self.progress(500 + round(500 * done / max(total, 1)), 1000)


def size_facility(
    model: AvalancheModel,
    *,
    confidence: float = 0.99,
    daily_cap: DailyCap = "proportional",
    tolerance_usd: float = 1e6,
    progress: Progress = None,
) -> FacilitySizing:
    """Size the facility at `confidence` with the model's notice and daily cap (kept or in proportion to the limit,
    by `daily_cap`) and without delays (module docstring)."""
    halves = _Halves(progress)
    with_delays, search = smallest_limit(model, confidence=confidence, daily_cap=daily_cap,
                                         tolerance_usd=tolerance_usd, progress=halves.first)  # fmt: skip
    current = float(model.fparams[K.F_LIMIT])
    if daily_cap == "none":
        current_bad = run_model(model, np.arange(model.settings.paths, dtype=np.int64))[0][:, K.S_EXHAUST_HOUR] >= 0
    else:  # the search's cap at today's limit is today's cap
        current_bad = search.exhausted(current)[0]
    without, _ = smallest_limit(model, confidence=confidence, notice_hours=0, daily_cap="none",
                                tolerance_usd=tolerance_usd, progress=halves.second)  # fmt: skip
    return FacilitySizing(
        confidence=confidence,
        paths=model.settings.paths,
        with_delays=with_delays,
        without_delays=without,
        current_limit_usd=current,
        current_exhaust_probability=float(np.mean(current_bad)),
        settings=model.settings.recorded(),
        resources=dict(model.resources),
    )


def size_facility_of_book(
    loaded: Any,
    settings: AvalancheSettings | None = None,
    *,
    confidence: float = 0.99,
    daily_cap: DailyCap = "proportional",
    tolerance_usd: float = 1e6,
    progress: Progress = None,
) -> FacilitySizing:
    """`size_facility` for a loaded book (`files.LoadedBook`), starting IM from `baseline.baseline_margin`."""
    return size_facility(prepare_book(loaded, settings), confidence=confidence, daily_cap=daily_cap,
                         tolerance_usd=tolerance_usd, progress=progress)  # fmt: skip
