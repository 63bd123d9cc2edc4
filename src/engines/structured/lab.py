"""The lab: variations of a base note over grids of design parameters, priced together in one call.

A desk tests many designs at once (the users' figure is at least 75): knock-in barriers, coupon
rates, trigger profiles, observation frequencies and underlying baskets. The variations are the
Cartesian product of the grids, in a stable order, each named after what differs from the base.
"""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engines.structured.market import MarketData
from engines.structured.pricing import PriceResult, PricingOptions, price_many
from engines.structured.spec import AutocallSpec, Frequency

MIN_VARIATIONS = 75


class TriggerProfile(BaseModel):
    """An autocall trigger profile: a level stepping down by `step_down` per callable observation to `floor`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger: float = Field(1.0, gt=0)
    step_down: float = Field(0.0, ge=0)
    floor: float = Field(0.0, ge=0)

    def label(self) -> str:
        if self.step_down:
            return f"trig{self.trigger:g}-{self.step_down:g}/obs>={self.floor:g}"
        return f"trig{self.trigger:g}"


class LabGrid(BaseModel):
    """Grids of design parameters; an empty list keeps the base spec's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    barriers: list[float] = [0.5, 0.55, 0.6, 0.65, 0.7]
    coupons: list[float] = [0.05, 0.06, 0.07, 0.08, 0.09]
    triggers: list[TriggerProfile] = [
        TriggerProfile(),
        TriggerProfile(trigger=1.0, step_down=0.025, floor=0.8),
        TriggerProfile(trigger=0.95),
    ]
    frequencies: list[Frequency] = []
    baskets: list[list[str]] = []


def variations(base: AutocallSpec, grid: LabGrid = LabGrid()) -> list[AutocallSpec]:
    """Every combination of the grid applied to `base`; combinations that make an invalid note are refused.

    Raises ValueError naming the combination and the reason, so a grid never half-applies.
    """
    barriers = grid.barriers or [None]
    coupons = grid.coupons or [None]
    triggers = grid.triggers or [None]
    frequencies = grid.frequencies or [None]
    baskets = grid.baskets or [None]
    out = []
    for barrier, coupon, trig, freq, basket in itertools.product(barriers, coupons, triggers, frequencies, baskets):
        update: dict[str, Any] = {}
        label = []
        data = base.model_dump()
        if barrier is not None:
            if base.knock_in is None:
                data["knock_in"] = {"barrier": barrier}
            else:
                data["knock_in"]["barrier"] = barrier
            label.append(f"ki{barrier:g}")
        if coupon is not None:
            data["coupon"]["rate"] = coupon
            label.append(f"cpn{coupon:g}")
        if trig is not None:
            data["autocall"].update(trig.model_dump(), triggers=None)
            label.append(trig.label())
        if freq is not None:
            data["schedule"] = {"frequency": freq, "dates": None}
            label.append(freq)
        if basket is not None:
            data["underlyings"] = basket
            label.append("+".join(basket))
        data.update(update)
        data["name"] = f"{base.name}[{' '.join(label)}]" if label else base.name
        try:
            out.append(AutocallSpec.model_validate(data))
        except ValueError as exc:
            raise ValueError(f"lab variation {data['name']!r} is not a valid note: {exc}") from exc
    return out


def run_lab(
    base: AutocallSpec, market: MarketData, grid: LabGrid = LabGrid(), options: PricingOptions = PricingOptions()
) -> list[PriceResult]:
    """Generate the variations of `base` and price them all (with the Greeks `options` asks for)."""
    return price_many(variations(base, grid), market, options)
