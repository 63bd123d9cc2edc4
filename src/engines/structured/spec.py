"""The autocallable note as a product spec: what the desk designs, prices and documents.

A note pays coupons on observation dates while it lives, is called early (redeemed at par plus
the coupon) when the basket performance is at or above the autocall trigger, and at maturity
repays par unless the knock-in barrier was breached and the basket ended below its strike, in
which case the client bears the loss beyond the downside buffer, floored at the capital
protection level. Performances are relative to the strike fixing (initial level = 1).

The spec is the boundary model: the CLI, the compute kinds and the desk's events carry it as JSON
(its JSON Schema is exported to schemas/). `AutocallSpec.model_validate` refuses an inconsistent
spec with a message naming the field.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Basket = Literal["worst_of", "best_of", "average"]
Frequency = Literal["monthly", "quarterly", "semi_annual", "annual"]
Monitoring = Literal["european", "daily", "continuous"]

OBSERVATIONS_PER_YEAR: dict[str, int] = {"monthly": 12, "quarterly": 4, "semi_annual": 2, "annual": 1}
TRADING_DAYS_PER_YEAR = 252
MAX_MATURITY_YEARS = 10.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(_Model):
    """Observation dates: a regular frequency up to maturity, or explicit dates in years from the strike date."""

    frequency: Frequency | None = "quarterly"
    dates: list[float] | None = Field(
        default=None, description="Explicit observation times in years, strictly increasing; the last is maturity."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if self.dates is not None:
            if not self.dates:
                raise ValueError("dates: give at least one observation date")
            if any(not np.isfinite(d) or d <= 0 for d in self.dates):
                raise ValueError("dates: observation times must be positive years")
            if any(b <= a for a, b in zip(self.dates, self.dates[1:], strict=False)):
                raise ValueError("dates: observation dates must be strictly increasing")
        elif self.frequency is None:
            raise ValueError("frequency: give a frequency or explicit dates")
        return self


class Autocall(_Model):
    """The early-redemption trigger per observation: flat, stepping down, or given date by date."""

    trigger: float = Field(1.0, gt=0, description="Trigger at the first callable observation, as a performance.")
    step_down: float = Field(0.0, ge=0, description="Amount the trigger falls at each further callable observation.")
    floor: float = Field(0.0, ge=0, description="The trigger never steps below this level.")
    triggers: list[float | None] | None = Field(
        default=None, description="Explicit trigger per observation (overrides trigger/step_down); null = not callable."
    )
    no_call_observations: int = Field(0, ge=0, description="The first observations at which the note cannot be called.")


class Coupon(_Model):
    """Coupons per observation: fixed, or conditional on the basket being at or above the coupon barrier."""

    rate: float = Field(0.08, ge=0, le=1.0, description="Coupon per annum (0.08 = 8% p.a.), paid pro rata per period.")
    conditional: bool = True
    barrier: float = Field(0.7, ge=0, description="Coupon barrier as a performance (conditional coupons).")
    memory: bool = True


class KnockIn(_Model):
    """The capital barrier: below it (as monitored) the note repays the basket's loss at maturity."""

    barrier: float = Field(0.6, gt=0, le=1.5, description="Knock-in barrier as a performance.")
    monitoring: Monitoring = "european"


class AutocallSpec(_Model):
    """An autocallable note on 1 to 5 underlyings (see the module docstring for the payoff)."""

    name: str = Field("autocallable", min_length=1, max_length=200)
    underlyings: list[str] = Field(min_length=1, max_length=5)
    basket: Basket = "worst_of"
    notional: float = Field(1_000_000.0, gt=0)
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    maturity_years: float = Field(5.0, gt=0, le=MAX_MATURITY_YEARS)
    schedule: Schedule = Schedule()
    autocall: Autocall = Autocall()
    coupon: Coupon = Coupon()
    knock_in: KnockIn | None = KnockIn()
    strike: float = Field(
        1.0, gt=0, description="Performance below which the client shares in the loss once knocked in."
    )
    downside_buffer: float = Field(0.0, ge=0, lt=1, description="Loss below the strike absorbed by the issuer.")
    capital_protection: float = Field(0.0, ge=0, le=1, description="Minimum redemption as a fraction of notional.")
    funding_spread: float = Field(
        0.0, ge=-0.05, le=0.2, description="Issuer's funding spread over the risk-free curve."
    )

    @field_validator("underlyings")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if any(not n.strip() for n in names):
            raise ValueError("underlying names must be non-empty")
        if len(set(names)) != len(names):
            raise ValueError(f"underlyings must be distinct, got {names}")
        return names

    @model_validator(mode="after")
    def _consistent(self) -> AutocallSpec:
        times = self.observation_times()
        if self.schedule.dates is not None and abs(times[-1] - self.maturity_years) > 1e-9:
            raise ValueError(
                f"schedule.dates: the last observation ({times[-1]}) must be the maturity ({self.maturity_years})"
            )
        n = len(times)
        ac = self.autocall
        if ac.triggers is not None and len(ac.triggers) != n:
            raise ValueError(f"autocall.triggers: give one trigger per observation ({n}), got {len(ac.triggers)}")
        if ac.no_call_observations >= n:
            raise ValueError(f"autocall.no_call_observations: {ac.no_call_observations} leaves no callable date of {n}")
        triggers = self.triggers()
        ki = self.knock_in
        if ki is not None:
            callable_triggers = triggers[np.isfinite(triggers)]
            if callable_triggers.size and ki.barrier > callable_triggers.min():
                raise ValueError(
                    f"knock_in.barrier: {ki.barrier} is above the lowest autocall trigger "
                    f"{callable_triggers.min():.4g}; "
                    "the note would knock in while being called"
                )
            if ki.barrier > self.strike:
                raise ValueError(f"knock_in.barrier: {ki.barrier} is above the strike {self.strike}")
            if ki.monitoring == "continuous" and self.basket != "worst_of" and len(self.underlyings) > 1:
                raise ValueError("knock_in.monitoring: continuous monitoring is supported for worst-of baskets only")
        if self.coupon.conditional and self.knock_in is not None and self.coupon.barrier > 2.0:
            raise ValueError(f"coupon.barrier: {self.coupon.barrier} is not a plausible performance level")
        return self

    def observation_times(self) -> np.ndarray:
        """Observation times in years from the strike date (the last is maturity)."""
        if self.schedule.dates is not None:
            return np.asarray(self.schedule.dates, dtype=np.float64)
        per_year = OBSERVATIONS_PER_YEAR[self.schedule.frequency or "quarterly"]
        n = max(1, round(self.maturity_years * per_year))
        if abs(n / per_year - self.maturity_years) > 1e-9:
            raise ValueError(
                f"maturity_years: {self.maturity_years} is not a whole number of {self.schedule.frequency} periods; "
                "give schedule.dates explicitly"
            )
        return np.arange(1, n + 1, dtype=np.float64) / per_year

    def triggers(self) -> np.ndarray:
        """The autocall trigger per observation; +inf where the note cannot be called."""
        ac = self.autocall
        n = len(self.observation_times())
        if ac.triggers is not None:
            out = np.array([np.inf if t is None else t for t in ac.triggers], dtype=np.float64)
        else:
            steps = np.maximum(np.arange(n) - ac.no_call_observations, 0)
            out = np.maximum(ac.trigger - ac.step_down * steps, ac.floor)
        out[: ac.no_call_observations] = np.inf
        return out

    def coupon_amounts(self) -> np.ndarray:
        """The coupon due per observation, as a fraction of notional (the rate times the period)."""
        times = self.observation_times()
        periods = np.diff(np.concatenate(([0.0], times)))
        return self.coupon.rate * periods
