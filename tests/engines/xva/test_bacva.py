"""BA-CVA (MAR50) against hand computations and limit cases.

The Basel Committee publishes no numerical BA-CVA example, so the references are: the MAR50.16 risk-weight
table typed here from the standard, figures worked by hand from the MAR50 formulas (written out below with
their intermediate numbers), and limit cases the formulas imply: one counterparty (K = SCVA), many equal
counterparties (K / sum SCVA -> rho), no hedges (full = reduced), a perfect direct hedge (K_hedged = 0,
K_full = beta K_reduced), the best index hedge (IH = rho SCVA leaves sqrt(1 - rho^2) SCVA).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from engines.registry import InvalidInputs
from engines.xva.bacva import (
    RISK_WEIGHTS,
    BaCvaPortfolio,
    Counterparty,
    IndexHedge,
    SingleNameHedge,
    ba_cva_full,
    ba_cva_reduced,
    risk_weight,
    supervisory_discount_factor,
)
from engines.xva.compute.saccr import ba_cva_kind


def counterparty(
    cid: str = "c1",
    sector: str = "financial",
    quality: str = "IG",
    ead: float = 100.0,
    maturity: float = 2.0,
    **more: Any,
) -> Counterparty:
    return Counterparty.model_validate(
        {
            "id": cid,
            "sector": sector,
            "credit_quality": quality,
            "netting_sets": [{"ead": ead, "maturity_years": maturity, **more}],
        }
    )


def df(m: float) -> float:
    return (1 - math.exp(-0.05 * m)) / (0.05 * m)


def test_risk_weights_are_mar50_16() -> None:
    table = {
        "sovereign": (0.5, 2.0),
        "local_government": (1.0, 4.0),
        "financial": (5.0, 12.0),
        "basic_materials": (3.0, 7.0),
        "consumer": (3.0, 8.5),
        "technology": (2.0, 5.5),
        "health_care": (1.5, 5.0),
        "other": (5.0, 12.0),
    }
    assert {k: (round(100 * ig, 4), round(100 * hy, 4)) for k, (ig, hy) in RISK_WEIGHTS.items()} == table
    assert risk_weight("consumer", "HY") == risk_weight("consumer", "NR") == 0.085


def test_supervisory_discount_factor() -> None:
    assert float(supervisory_discount_factor(1.0)) == pytest.approx(0.975411, abs=1e-6)
    assert float(supervisory_discount_factor(1e-9)) == pytest.approx(1.0, abs=1e-9)
    assert float(supervisory_discount_factor(10.0)) == pytest.approx((1 - math.exp(-0.5)) / 0.5, rel=1e-15)


def test_one_counterparty_reduced_by_hand() -> None:
    """Financial IG, EAD 100, M 2: DF = 0.951626, SCVA = 5%/1.4 x 2 x 100 x DF = 6.797331 = K; capital 0.65 K."""
    r = ba_cva_reduced([counterparty()])
    scva = 0.05 / 1.4 * 2 * 100 * 0.9516258196
    assert r.counterparties[0].scva == pytest.approx(scva, rel=1e-9)
    assert r.k_reduced == pytest.approx(scva, rel=1e-9)  # sqrt(rho^2 S^2 + (1 - rho^2) S^2) = S
    assert r.capital == pytest.approx(0.65 * 6.797327, rel=1e-6)
    assert r.rwa == pytest.approx(12.5 * 0.65 * 6.797327, rel=1e-6)
    assert r.version == "reduced" and r.k_hedged is None


def test_two_counterparties_and_several_netting_sets_by_hand() -> None:
    """c1: technology HY, netting sets (EAD 50, M 1) and (EAD 30, M 4, IMM); c2: sovereign IG, EAD 200, M 5."""
    c1 = Counterparty.model_validate(
        {
            "id": "c1",
            "sector": "technology",
            "credit_quality": "HY",
            "netting_sets": [{"ead": 50, "maturity_years": 1}, {"ead": 30, "maturity_years": 4, "imm": True}],
        }
    )
    c2 = counterparty("c2", "sovereign", "IG", 200, 5)
    s1 = 0.055 / 1.4 * (1 * 50 * df(1) + 4 * 30 * 1.0)
    s2 = 0.005 / 1.4 * 5 * 200 * df(5)
    k = math.sqrt((0.5 * (s1 + s2)) ** 2 + 0.75 * (s1**2 + s2**2))
    r = ba_cva_reduced([c1, c2])
    assert [c.scva for c in r.counterparties] == pytest.approx([s1, s2], rel=1e-13)
    assert r.k_reduced == pytest.approx(k, rel=1e-13)
    assert r.systematic == pytest.approx(0.5 * (s1 + s2)) and r.idiosyncratic == pytest.approx(0.75 * (s1**2 + s2**2))
    assert r.capital == pytest.approx(0.65 * k, rel=1e-13)


def test_many_equal_counterparties_tend_to_rho() -> None:
    """n equal SCVA: K = S sqrt(rho^2 n^2 + (1 - rho^2) n), so K / (n S) -> rho = 50%."""
    n = 400
    r = ba_cva_reduced([counterparty(f"c{i}") for i in range(n)])
    s = r.counterparties[0].scva
    assert r.k_reduced == pytest.approx(s * math.sqrt(0.25 * n * n + 0.75 * n), rel=1e-12)
    assert r.k_reduced / (n * s) == pytest.approx(0.5, abs=0.002)


def test_full_without_hedges_equals_reduced() -> None:
    cps = [counterparty("a"), counterparty("b", "consumer", "NR", 70, 3)]
    full, reduced = ba_cva_full(cps, []), ba_cva_reduced(cps)
    assert full.k_hedged == pytest.approx(reduced.k_reduced, rel=1e-14)
    assert full.k_full == pytest.approx(reduced.k_reduced, rel=1e-14)
    assert full.capital == pytest.approx(reduced.capital, rel=1e-14)


def test_perfect_direct_hedge() -> None:
    """A CDS on the counterparty with RW M B DF = SCVA: SNH = SCVA, HMA = 0, K_hedged = 0, K_full = 25% K_reduced."""
    cp = counterparty(ead=140.0, maturity=3.0)  # SCVA = RW x 3 x 100 x DF(3)
    hedge = SingleNameHedge(id="h", counterparty="c1", relation="direct", notional=100.0, maturity_years=3.0)
    r = ba_cva_full([cp], [hedge])
    assert r.counterparties[0].snh == pytest.approx(r.counterparties[0].scva, rel=1e-14)
    assert r.counterparties[0].hma == 0.0
    assert r.k_hedged == pytest.approx(0.0, abs=1e-12)
    assert r.k_full == pytest.approx(0.25 * r.k_reduced, rel=1e-12)
    assert r.capital == pytest.approx(0.65 * 0.25 * r.k_reduced, rel=1e-12)


def test_related_name_hedge_by_hand() -> None:
    """Hedge on a legally related name (r = 80%), basic materials HY (RW 7%), notional 60, M 4, on c1 (SCVA S):

    h = 7% x 4 x 60 x DF(4); SNH = 0.8 h; HMA = 0.36 h^2;
    K_hedged = sqrt((0.5 (S - 0.8 h))^2 + 0.75 (S - 0.8 h)^2 + 0.36 h^2) = sqrt((S - 0.8 h)^2 + 0.36 h^2).
    """
    cp = counterparty(ead=100.0, maturity=5.0)
    s = 0.05 / 1.4 * 5 * 100 * df(5)
    h = 0.07 * 4 * 60 * df(4)
    hedge = SingleNameHedge(
        id="h",
        counterparty="c1",
        relation="legally_related",
        notional=60,
        maturity_years=4,
        sector="basic_materials",
        credit_quality="HY",
    )
    r = ba_cva_full([cp], [hedge])
    assert r.counterparties[0].snh == pytest.approx(0.8 * h, rel=1e-13)
    assert r.counterparties[0].hma == pytest.approx(0.36 * h * h, rel=1e-13)
    k_hedged = math.sqrt((s - 0.8 * h) ** 2 + 0.36 * h * h)
    assert r.k_hedged == pytest.approx(k_hedged, rel=1e-13)
    assert r.k_full == pytest.approx(0.25 * s + 0.75 * k_hedged, rel=1e-13)
    # a peer of the same sector and region (r = 50%) recognises less: higher capital
    peer = hedge.model_copy(update={"relation": "sector_region"})
    assert ba_cva_full([cp], [peer]).capital > r.capital


def test_index_hedge_limits() -> None:
    """One counterparty and an index hedge: K_hedged = sqrt((rho S - IH)^2 + (1 - rho^2) S^2).

    IH = rho S minimises it at sqrt(0.75) S; IH = 2 rho S over-hedges back to S.
    """
    cp = counterparty(ead=100.0, maturity=5.0)
    s = 0.05 / 1.4 * 5 * 100 * df(5)
    unit = 0.7 * 0.05 * 5 * df(5)  # IH per unit notional of a financial IG index of maturity 5
    for notional, expected in ((0.5 * s / unit, math.sqrt(0.75) * s), (s / unit, s)):
        hedge = IndexHedge(id="i", notional=notional, maturity_years=5, sector="financial", credit_quality="IG")
        r = ba_cva_full([cp], [hedge])
        assert r.index_hedges == pytest.approx(notional * unit, rel=1e-13)
        assert r.k_hedged == pytest.approx(expected, rel=1e-12)


def test_mixed_index_risk_weight() -> None:
    """An index across sectors: 0.7 x the name-weighted average risk weight (MAR50.25)."""
    mixed = IndexHedge(
        id="i",
        notional=1,
        maturity_years=5,
        constituents=[
            {"sector": "financial", "credit_quality": "IG", "weight": 25},
            {"sector": "technology", "credit_quality": "HY", "weight": 75},
        ],
    )
    assert mixed.risk_weight == pytest.approx(0.7 * (0.25 * 0.05 + 0.75 * 0.055), rel=1e-14)
    single = IndexHedge(id="j", notional=1, maturity_years=5, sector="sovereign", credit_quality="IG")
    assert single.risk_weight == pytest.approx(0.7 * 0.005, rel=1e-14)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {"counterparties": [{"id": "a", "sector": "financial", "credit_quality": "IG", "netting_sets": []}]},
            "counterparties.0.netting_sets",
        ),
        (
            {
                "counterparties": [
                    {
                        "id": "a",
                        "sector": "crypto",
                        "credit_quality": "IG",
                        "netting_sets": [{"ead": 1, "maturity_years": 1}],
                    }
                ]
            },
            "counterparties.0.sector",
        ),
        (
            {
                "counterparties": [
                    {
                        "id": "a",
                        "sector": "other",
                        "credit_quality": "IG",
                        "netting_sets": [{"ead": -1, "maturity_years": 1}],
                    }
                ]
            },
            "counterparties.0.netting_sets.0.ead",
        ),
    ],
)
def test_input_errors_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        BaCvaPortfolio.model_validate(data)
    assert ".".join(str(p) for p in info.value.errors()[0]["loc"]) == field


def test_hedge_and_portfolio_errors_name_the_field() -> None:
    cps = [counterparty("a").model_dump(), counterparty("b").model_dump()]
    direct = {
        "type": "single_name",
        "id": "h",
        "counterparty": "a",
        "relation": "direct",
        "notional": 1,
        "maturity_years": 1,
    }
    cases = [
        ({"counterparties": [cps[0], cps[0]]}, "counterparties[1].id"),
        ({"counterparties": cps, "hedges": [{**direct, "counterparty": "z"}]}, "hedges[0].counterparty"),
        ({"counterparties": cps, "hedges": [direct, direct]}, "hedges[1].id"),
        ({"counterparties": cps, "hedges": [{**direct, "sector": "other"}]}, "hedges[0].sector"),
        ({"counterparties": cps, "hedges": [{**direct, "relation": "sector_region"}]}, "hedges[0].sector"),
        (
            {"counterparties": cps, "hedges": [{"type": "index", "id": "i", "notional": 1, "maturity_years": 1}]},
            "hedges[0].constituents",
        ),
    ]
    for data, field in cases:
        with pytest.raises(InvalidInputs) as info:
            ba_cva_kind({"version": "full", **data}, None)
        assert info.value.field == field, (data, info.value)


def test_ba_cva_kind() -> None:
    cps = [counterparty("a").model_dump(), counterparty("b", "consumer", "HY", 50, 1).model_dump()]
    reduced = ba_cva_kind({"counterparties": cps}, None)
    assert reduced["version"] == "reduced"
    assert reduced["capital"] == pytest.approx(ba_cva_reduced([Counterparty.model_validate(c) for c in cps]).capital)
    hedges = [
        {"type": "index", "id": "i", "notional": 20, "maturity_years": 5, "sector": "other", "credit_quality": "IG"}
    ]
    full = ba_cva_kind({"counterparties": cps, "hedges": hedges, "version": "full"}, None)
    assert full["version"] == "full" and full["capital"] < reduced["capital"]
    assert full["rwa"] == pytest.approx(12.5 * full["capital"])
    with pytest.raises(InvalidInputs) as info:
        ba_cva_kind({"counterparties": cps, "hedges": hedges}, None)
    assert info.value.field == "hedges"
    with pytest.raises(InvalidInputs) as info:
        ba_cva_kind({"counterparties": cps, "version": "advanced"}, None)
    assert info.value.field == "version"
