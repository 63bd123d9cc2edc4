"""CCP model changes: an announced change of margin-model parameters with its effective date and
phase-in, and its impact on the book per venue, per manager and per date.

A `ModelChangeSet` names the CCPs it applies to (or ``"all"``), the `CcpMarginModel` fields it changes
(a nested add-on such as ``{"concentration": {"coefficient": 1.0}}`` changes only the fields it gives),
the date the new model takes effect and an optional phase-in. CCPs phase a new model in by blending
the two requirements, so on a date d the requirement is

    IM(d) = IM_before + w(d) · (IM_after − IM_before)

with w = 0 before the effective date. Without a phase-in w = 1 from the effective date on. With one,
w = 0 up to `phase_in.start` (which may not be before the effective date), rises to 1 at
`phase_in.end` — linearly in calendar days (``schedule="linear"``) or in `steps` equal increments at
equally spaced dates (``"steps"``: w = ⌊steps · x⌋ / steps, x the linear fraction) — and stays 1 after.

The impact is computed on today's book and market (the history up to the book's date): it shows what
the announced change does to the current positions as it phases in, per affected venue and per
manager (from the venues' Euler allocations, `ccp`), with the increase over the current model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engines.margin import ccp
from engines.margin.baseline import LoadedBookLike, check_venue_order, group_sums, venue_models
from engines.margin.venues import CcpMarginModel

Progress = Callable[[int, int], None] | None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PhaseIn(_Frozen):
    """How the new model's requirement replaces the old one's between two dates."""

    start: dt.date
    end: dt.date
    schedule: Literal["linear", "steps"] = "linear"
    steps: int = Field(4, ge=1, le=260, description="Equal increments of a 'steps' schedule.")

    @model_validator(mode="after")
    def _order(self) -> PhaseIn:
        if self.end <= self.start:
            raise ValueError(f"end: {self.end} must be after start {self.start}")
        return self

    def fraction(self, day: dt.date) -> float:
        """The new model's weight on `day` (0 up to start, 1 from end)."""
        x = min(max((day - self.start).days / (self.end - self.start).days, 0.0), 1.0)
        return x if self.schedule == "linear" else float(np.floor(self.steps * x + 1e-12)) / self.steps


def _merged(model: CcpMarginModel, changes: dict[str, Any]) -> CcpMarginModel:
    data = model.model_dump()
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) and isinstance(value, dict) else value
    return CcpMarginModel.model_validate(data)


class ModelChangeSet(_Frozen):
    """An announced change of CCP margin-model parameters (see the module docstring)."""

    name: str = Field("model change", min_length=1)
    venues: Literal["all"] | tuple[str, ...] = Field("all", description="CCP ids, or 'all' CCPs of the book.")
    changes: dict[str, Any] = Field(min_length=1, description="New values of CcpMarginModel fields.")
    effective_date: dt.date
    phase_in: PhaseIn | None = None

    @field_validator("changes")
    @classmethod
    def _known(cls, changes: dict[str, Any]) -> dict[str, Any]:
        fields = CcpMarginModel.model_fields
        for key in changes:
            if key not in fields:
                raise ValueError(f"{key}: not a CCP margin-model parameter (known: {', '.join(fields)})")
        try:
            _merged(CcpMarginModel(), changes)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            errors = getattr(exc, "errors", None)
            if errors is None:
                raise
            first = errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{where}: {first['msg']}") from None
        return changes

    @model_validator(mode="after")
    def _dates(self) -> ModelChangeSet:
        if self.phase_in is not None and self.phase_in.start < self.effective_date:
            raise ValueError(
                f"phase_in.start: {self.phase_in.start} is before the effective date {self.effective_date}"
            )
        return self

    def weight(self, day: dt.date) -> float:
        """The new model's weight in the requirement on `day`."""
        if day < self.effective_date:
            return 0.0
        return 1.0 if self.phase_in is None else self.phase_in.fraction(day)

    def apply(self, model: CcpMarginModel) -> CcpMarginModel:
        """`model` with the changes."""
        return _merged(model, self.changes)

    def default_dates(self) -> list[dt.date]:
        """The day before the effective date, the effective date, and the phase-in's start, steps (or nine
        evenly spaced dates) and end."""
        days = {self.effective_date - dt.timedelta(days=1), self.effective_date}
        p = self.phase_in
        if p is not None:
            span = (p.end - p.start).days
            n = p.steps if p.schedule == "steps" else 8
            days |= {p.start + dt.timedelta(days=round(k * span / n)) for k in range(n + 1)}
        return sorted(days)


@dataclass(frozen=True, eq=False)
class ModelChangeImpact:
    """CCP IM of the affected venues before the change and on each date of the phase-in (USD).

    `venue_after_usd[d, a]` is the phased requirement of affected venue a on `dates[d]`; the increase
    is after − before. `manager_*` are the same over the affected venues' positions, by manager.
    """

    change: ModelChangeSet
    dates: tuple[dt.date, ...]
    weights: np.ndarray  # [D]
    venues: tuple[str, ...]  # affected CCPs
    venue_before_usd: np.ndarray  # [A]
    venue_full_usd: np.ndarray  # [A] the new model in full
    venue_after_usd: np.ndarray  # [D, A]
    managers: tuple[str, ...]
    manager_before_usd: np.ndarray  # [M]
    manager_after_usd: np.ndarray  # [D, M]

    @property
    def venue_increase_usd(self) -> np.ndarray:
        return self.venue_after_usd - self.venue_before_usd

    @property
    def manager_increase_usd(self) -> np.ndarray:
        return self.manager_after_usd - self.manager_before_usd

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the change, per date the totals, per venue and per manager before/after/increase."""

        def rows(names: Sequence[str], before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
            return {
                n: {
                    "before_usd": float(before[i]),
                    "after_usd": after[:, i].tolist(),
                    "increase_usd": (after[:, i] - before[i]).tolist(),
                }
                for i, n in enumerate(names)
            }

        before = float(self.venue_before_usd.sum())
        return {
            "change": self.change.model_dump(mode="json"),
            "dates": [d.isoformat() for d in self.dates],
            "weights": self.weights.tolist(),
            "totals": {
                "before_usd": before,
                "full_usd": float(self.venue_full_usd.sum()),
                "after_usd": self.venue_after_usd.sum(axis=1).tolist(),
                "increase_usd": (self.venue_after_usd.sum(axis=1) - before).tolist(),
            },
            "venues": rows(self.venues, self.venue_before_usd, self.venue_after_usd),
            "managers": rows(self.managers, self.manager_before_usd, self.manager_after_usd),
        }


def affected_venues(loaded: LoadedBookLike, change: ModelChangeSet) -> list[int]:
    """Indices of the CCPs the change applies to; ValueError naming `venues[i]` for an unknown or bilateral id."""
    arrays = loaded.arrays
    ccps = [v for v in range(len(arrays.venues)) if arrays.venue_is_ccp[v]]
    if change.venues == "all":
        return ccps
    index = {name: i for i, name in enumerate(arrays.venues)}
    out = []
    for i, name in enumerate(change.venues):
        if name not in index:
            raise ValueError(f"venues[{i}]: {name!r} is not a venue of the book")
        if not arrays.venue_is_ccp[index[name]]:
            raise ValueError(f"venues[{i}]: {name!r} is a bilateral counterparty, not a CCP")
        out.append(index[name])
    return sorted(set(out))


def model_change_impact(
    loaded: LoadedBookLike,
    change: ModelChangeSet,
    dates: Sequence[dt.date] | None = None,
    *,
    options: ccp.CcpOptions | None = None,
    progress: Progress = None,
) -> ModelChangeImpact:
    """The change's impact on the book's CCP IM per affected venue, per manager and per date (default:
    `ModelChangeSet.default_dates`)."""
    check_venue_order(loaded)
    arrays, history = loaded.arrays, loaded.history
    days = tuple(sorted(set(dates))) if dates is not None else tuple(change.default_dates())
    if not days:
        raise ValueError("dates: give at least one date")
    affected = affected_venues(loaded, change)
    models = venue_models(loaded.book)
    new_models = list(models)
    for v in affected:
        new_models[v] = change.apply(models[v])  # type: ignore[arg-type]
    if progress:
        progress(0, 2)
    before = ccp.ccp_initial_margin(arrays, history, models, options=options)
    if progress:
        progress(1, 2)
    after = ccp.ccp_initial_margin(arrays, history, new_models, options=options)
    if progress:
        progress(2, 2)
    w = np.array([change.weight(d) for d in days])
    idx = np.array(affected, dtype=np.int64)
    at_affected = np.isin(arrays.position_venue, idx)
    labels = arrays.position_manager.astype(np.int64)
    pb = np.where(at_affected, before.position_total_usd, 0.0)
    pa = np.where(at_affected, after.position_total_usd, 0.0)
    m_before = _by_manager(pb, labels, arrays.managers)
    m_full = _by_manager(pa, labels, arrays.managers)
    vb, vf = before.total_usd[idx], after.total_usd[idx]
    return ModelChangeImpact(
        change=change,
        dates=days,
        weights=w,
        venues=tuple(arrays.venues[v] for v in idx),
        venue_before_usd=vb,
        venue_full_usd=vf,
        venue_after_usd=vb[None, :] + w[:, None] * (vf - vb)[None, :],
        managers=tuple(arrays.managers),
        manager_before_usd=m_before,
        manager_after_usd=m_before[None, :] + w[:, None] * (m_full - m_before)[None, :],
    )


def _by_manager(values: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> np.ndarray:
    sums = group_sums(values, labels, names)
    return np.array([sums.get(n, 0.0) for n in names])
