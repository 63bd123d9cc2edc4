"""Indicators and alerts: what the early-warning board folds and what it raises."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from bus.catalog import CATALOG, Event
from bus.events.common import Finite, Identifier
from bus.topics import ALERTS, RISK_INDICATORS

Level = Literal["ok", "high", "critical"]


@CATALOG.register
class IndicatorObserved(Event, type="risk.indicator_observed", version=1, topic=RISK_INDICATORS, key="subject"):
    """A measured quantity of a subject against its capacity, e.g. margin calls used of a credit line."""

    subject: Identifier = Field(description="What is measured: a portfolio, venue, counterparty; the partition key.")
    metric: Identifier = Field(description="Which quantity, e.g. gross_notional, margin_call_velocity.")
    value: Finite = Field(ge=0, description="Measured amount, in `unit`.")
    capacity: Finite = Field(gt=0, description="The amount available, in `unit`; ratio = value / capacity.")
    unit: str = Field(min_length=1, max_length=40, description="Unit of value and capacity, e.g. USD.")
    observed_at: AwareDatetime
    window: str | None = Field(default=None, max_length=40, description="Window the value is taken over, e.g. 1h.")


class _AlertFields(Event):
    subject: Identifier
    metric: Identifier
    value: Finite = Field(description="The value that caused the transition, in `unit`.")
    capacity: Finite = Field(gt=0, description="Capacity at the transition, in `unit`.")
    ratio: Finite = Field(description="value / capacity.")
    unit: str
    observed_at: AwareDatetime
    indicator_event_id: str = Field(description="The IndicatorObserved event that caused the transition.")


@CATALOG.register
class AlertRaised(_AlertFields, type="risk.alert_raised", version=1, topic=ALERTS, key="subject"):
    """A subject's level went up: ok→high, ok→critical or high→critical (high ≥ 0.7, critical ≥ 0.9)."""

    level: Literal["high", "critical"]
    previous_level: Level
    threshold: Finite = Field(description="The ratio threshold of `level`.")


@CATALOG.register
class AlertCleared(_AlertFields, type="risk.alert_cleared", version=1, topic=ALERTS, key="subject"):
    """A subject's level came back down: the `cleared_level` alert no longer holds."""

    level: Literal["ok", "high"]
    cleared_level: Literal["high", "critical"]
