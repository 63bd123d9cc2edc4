"""CCP model changes: the change set's validation, the phase-in weight (linear between its dates, or
in equal steps), and the impact per venue, manager and date against the new model run on its own."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pydantic import ValidationError
from test_baseline import loaded  # the hand-built book of the baseline tests

from engines.margin import ccp
from engines.margin.model_change import ModelChangeSet, PhaseIn, model_change_impact

D = dt.date


def change(**kw: object) -> ModelChangeSet:
    base = {"changes": {"confidence": 0.995}, "effective_date": D(2026, 3, 2),
            "phase_in": {"start": D(2026, 3, 2), "end": D(2026, 4, 1)}}  # fmt: skip
    return ModelChangeSet.model_validate(base | kw)


def test_linear_phase_in_between_the_dates() -> None:
    c = change()
    assert c.weight(D(2026, 3, 1)) == 0.0
    assert c.weight(D(2026, 3, 2)) == 0.0
    assert c.weight(D(2026, 3, 17)) == pytest.approx(0.5)  # 15 of 30 days
    assert c.weight(D(2026, 3, 8)) == pytest.approx(6 / 30)
    assert c.weight(D(2026, 4, 1)) == 1.0 and c.weight(D(2027, 1, 1)) == 1.0
    days = [D(2026, 3, 2) + dt.timedelta(days=k) for k in range(31)]
    np.testing.assert_allclose(np.diff([c.weight(d) for d in days]), 1 / 30, rtol=1e-12)


def test_steps_and_no_phase_in() -> None:
    c = change(phase_in={"start": D(2026, 3, 2), "end": D(2026, 4, 1), "schedule": "steps", "steps": 3})
    assert [c.weight(D(2026, 3, d)) for d in (2, 11, 12, 21, 22, 31)] == [0.0, 0.0, 1 / 3, 1 / 3, 2 / 3, 2 / 3]
    assert c.weight(D(2026, 4, 1)) == 1.0
    sudden = change(phase_in=None)
    assert sudden.weight(D(2026, 3, 1)) == 0.0 and sudden.weight(D(2026, 3, 2)) == 1.0
    assert D(2026, 3, 1) in c.default_dates() and D(2026, 4, 1) in c.default_dates()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"changes": {"confidence": 1.5}}, "confidence"),
        ({"changes": {"lookback": 500}}, "lookback: not a CCP margin-model parameter"),
        ({"changes": {}}, "changes"),
        ({"phase_in": {"start": D(2026, 3, 1), "end": D(2026, 4, 1)}}, "phase_in.start"),
        ({"phase_in": {"start": D(2026, 3, 5), "end": D(2026, 3, 5)}}, "end"),
    ],
)
def test_bad_change_sets_name_the_field(kw: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        change(**kw)


def test_nested_changes_keep_the_other_fields() -> None:
    c = change(changes={"concentration": {"coefficient": 2.0}, "apc": "ten_year_floor"})
    lb = loaded()
    old = lb.book.venues[0].margin_model
    new = c.apply(old)
    assert new.concentration.coefficient == 2.0 and new.concentration.exponent == old.concentration.exponent
    assert new.apc == "ten_year_floor" and new.lookback_days == old.lookback_days
    assert PhaseIn(start=D(2026, 1, 1), end=D(2026, 1, 11)).fraction(D(2026, 1, 6)) == 0.5


def test_impact_per_venue_manager_and_date() -> None:
    lb = loaded()
    c = change(venues=("CCP-A",), changes={"confidence": 0.995, "lookback_days": 750})
    dates = [D(2026, 2, 1), D(2026, 3, 2), D(2026, 3, 17), D(2026, 4, 1), D(2026, 6, 1)]
    impact = model_change_impact(lb, c, dates)
    assert impact.venues == ("CCP-A",)
    models = [v.margin_model if v.kind == "ccp" else None for v in lb.book.venues]
    before = ccp.ccp_initial_margin(lb.arrays, lb.history, models)
    new_models = list(models)
    new_models[0] = models[0].model_copy(update={"confidence": 0.995, "lookback_days": 750})
    after = ccp.ccp_initial_margin(lb.arrays, lb.history, new_models)
    assert impact.venue_before_usd[0] == pytest.approx(before.total_usd[0], rel=1e-12)
    assert impact.venue_full_usd[0] == pytest.approx(after.total_usd[0], rel=1e-12)
    np.testing.assert_allclose(impact.weights, [0.0, 0.0, 0.5, 1.0, 1.0])
    expected = before.total_usd[0] + impact.weights * (after.total_usd[0] - before.total_usd[0])
    np.testing.assert_allclose(impact.venue_after_usd[:, 0], expected, rtol=1e-12)
    assert impact.venue_increase_usd[-1, 0] > 0  # a higher confidence asks for more
    # managers: the affected venue's pieces, adding up to it on every date
    np.testing.assert_allclose(impact.manager_after_usd.sum(axis=1), impact.venue_after_usd.sum(axis=1), rtol=1e-10)
    np.testing.assert_allclose(impact.manager_increase_usd[0], 0.0, atol=1e-6)
    at_a = lb.arrays.position_venue == 0
    m2 = np.bincount(lb.arrays.position_manager[at_a], weights=after.position_total_usd[at_a], minlength=3)
    np.testing.assert_allclose(impact.manager_after_usd[3], m2, rtol=1e-10, atol=1e-6)
    out = impact.to_dict()
    assert out["dates"][2] == "2026-03-17" and out["venues"]["CCP-A"]["after_usd"][2] == pytest.approx(expected[2])


def test_all_venues_and_unknown_ids() -> None:
    lb = loaded()
    impact = model_change_impact(lb, change(venues="all", phase_in=None), [D(2026, 3, 2)])
    assert impact.venues == ("CCP-A", "CCP-B")
    with pytest.raises(ValueError, match=r"venues\[1\]: 'NOPE' is not a venue"):
        model_change_impact(lb, change(venues=("CCP-A", "NOPE")))
    with pytest.raises(ValueError, match=r"venues\[0\]: 'DLR-X' is a bilateral counterparty"):
        model_change_impact(lb, change(venues=("DLR-X",)))
