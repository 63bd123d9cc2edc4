"""The distribution specialist's domain logic: client base, segmentation, suitability and the plan."""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from agents.structured.clients import (
    RISK_TOLERANCES,
    SAMPLE_PATH,
    SOPHISTICATIONS,
    Client,
    ClientBaseError,
    clients_to_csv,
    generate_client_base,
    load_client_base,
    main,
)
from agents.structured.segments import (
    HORIZON_BANDS,
    Segment,
    client_segment_map,
    horizon_band,
    segment_clients,
    to_event,
)
from agents.structured.suitability import (
    complexity,
    plan_distribution,
    score_suitability,
    unassigned_segments,
    value_proposition,
)
from bus.events.narrative import Narrative
from bus.events.structured import DistributionPlanned, StructureFigures
from engines.structured.spec import AutocallSpec

# ----------------------------------------------------------------------------------------------
# helpers


def figures(structure_id: str, spec: AutocallSpec, **overrides: Any) -> StructureFigures:
    """StructureFigures as the quant researcher would emit them, with plausible defaults."""
    data: dict[str, Any] = {
        "structure_id": structure_id,
        "spec": spec.model_dump(mode="json"),
        "price": 0.97,
        "stderr": 0.002,
        "issuer_margin": 0.03,
        "coupon_rate": spec.coupon.rate,
        "fair_coupon": spec.coupon.rate,
        "autocall_probability": 0.75,
        "autocall_by_date": [0.5, 0.15, 0.1],
        "expected_life_years": 2.0,
        "knock_in_probability": 0.08,
        "capital_loss_probability": 0.05,
        "irr_mean": 0.03,
        "irr_median": 0.045,
        "greeks": {},
        "target_score": 0.8,
        "meets_targets": True,
        "target_gaps": {},
    }
    data.update(overrides)
    return StructureFigures(**data)


# a single-index note, European barrier at 50%, plain conditional coupon: little capital at risk
SIMPLE = figures(
    "simple-sx5e",
    AutocallSpec(
        underlyings=["SX5E"], coupon={"rate": 0.045, "memory": False}, knock_in={"barrier": 0.5}, maturity_years=5
    ),
    capital_loss_probability=0.04,
    knock_in_probability=0.06,
    autocall_probability=0.82,
    expected_life_years=1.7,
)
# a 5-asset worst-of with memory coupon, step-down and a continuous 60% barrier paying 12%
COMPLEX = figures(
    "wo5-memory-continuous",
    AutocallSpec(
        underlyings=["ASML", "SAP", "LVMH", "SIE", "TTE"],
        coupon={"rate": 0.12, "memory": True},
        autocall={"trigger": 1.0, "step_down": 0.025, "floor": 0.8},
        knock_in={"barrier": 0.6, "monitoring": "continuous"},
        maturity_years=5,
    ),
    capital_loss_probability=0.27,
    knock_in_probability=0.36,
    autocall_probability=0.61,
    expected_life_years=2.6,
    irr_median=0.09,
)


def make_clients(
    n: int,
    prefix: str,
    *,
    risk: str,
    horizon: float,
    sophistication: str,
    portfolio: float = 500_000.0,
    jurisdiction: str = "DE",
) -> list[Client]:
    return [
        Client(
            client_id=f"{prefix}{i:05d}",
            age=50,
            risk_tolerance=risk,
            horizon_years=horizon,
            sophistication=sophistication,
            portfolio_size=portfolio + 1000.0 * i,
            jurisdiction=jurisdiction,
        )
        for i in range(n)
    ]


def one_segment(**attributes: Any) -> Segment:
    (segment,) = segment_clients(make_clients(60, "C", **attributes))
    return segment


CONSERVATIVE = one_segment(risk="low", horizon=5.0, sophistication="basic", portfolio=250_000.0)
ADVANCED = one_segment(risk="high", horizon=8.0, sophistication="advanced", portfolio=1_500_000.0)


@pytest.fixture(scope="module")
def sample_segments() -> list[Segment]:
    return segment_clients(load_client_base("sample"))


# ----------------------------------------------------------------------------------------------
# the client base


def test_generator_is_deterministic_and_realistic() -> None:
    clients = generate_client_base()
    assert clients == generate_client_base()
    assert generate_client_base(n=200, seed=7) == generate_client_base(n=200, seed=7)
    assert generate_client_base(n=200, seed=7) != generate_client_base(n=200, seed=8)
    assert len(clients) == 3000
    assert len({c.client_id for c in clients}) == 3000
    assert clients[16].client_id == "C00017"
    assert {c.risk_tolerance for c in clients} == set(RISK_TOLERANCES)
    assert {c.sophistication for c in clients} == set(SOPHISTICATIONS)
    assert {horizon_band(c.horizon_years) for c in clients} == set(HORIZON_BANDS)
    assert 350_000 < statistics.median(c.portfolio_size for c in clients) < 450_000
    assert all(1 <= c.horizon_years <= 20 for c in clients)
    # sophistication grows with portfolio size
    by_level = {
        level: statistics.median(c.portfolio_size for c in clients if c.sophistication == level)
        for level in SOPHISTICATIONS
    }
    assert by_level["basic"] < by_level["informed"] < by_level["advanced"]


def test_bundled_sample_is_exactly_the_generation() -> None:
    fresh = clients_to_csv(generate_client_base()).encode()
    assert SAMPLE_PATH.read_bytes() == fresh, "run `uv run python -m agents.structured.clients --write`"
    base = load_client_base("sample")
    assert base.clients == tuple(generate_client_base())
    assert base.sha256 == hashlib.sha256(fresh).hexdigest()
    assert base.source == "sample"
    assert base.name == "clients-sample-v1.csv"
    assert main(["--check"]) == 0


def test_csv_and_json_round_trip(tmp_path: Path) -> None:
    clients = [*generate_client_base(n=20, seed=3), Client(
        client_id="X1", risk_tolerance="high", horizon_years=2.25, sophistication="informed",
        portfolio_size=123_456.78, jurisdiction="MC",
    )]  # fmt: skip
    path = tmp_path / "clients.csv"
    path.write_text(clients_to_csv(clients))
    assert load_client_base(path).clients == tuple(clients)
    json_path = tmp_path / "clients.json"
    json_path.write_text(json.dumps([c.model_dump() for c in clients]))
    loaded = load_client_base(str(json_path))
    assert loaded.clients == tuple(clients)
    assert loaded.source == str(json_path)


def _write_with(tmp_path: Path, row: int, field: str, value: str) -> Path:
    clients = generate_client_base(n=30, seed=1)
    lines = clients_to_csv(clients).splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(field)] = value
    lines[row] = ",".join(cells)
    path = tmp_path / "clients.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "risk_tolerance",
            "mid",
            "clients.csv row 17: risk_tolerance: 'mid' is not one of low, medium, high, very_high",
        ),
        ("sophistication", "expert", "clients.csv row 17: sophistication: 'expert' is not one of basic, informed"),
        ("horizon_years", "25", "clients.csv row 17: horizon_years: '25'"),
        ("portfolio_size", "lots", "clients.csv row 17: portfolio_size: 'lots'"),
        ("jurisdiction", "Germany", "clients.csv row 17: jurisdiction: 'Germany' is not an ISO 3166-1 alpha-2 code"),
        ("client_id", "C00003", "clients.csv row 17: client_id: 'C00003' repeats row 3"),
    ],
)
def test_loader_errors_name_row_and_field(tmp_path: Path, field: str, value: str, message: str) -> None:
    path = _write_with(tmp_path, 17, field, value)
    with pytest.raises(ClientBaseError) as info:
        load_client_base(path)
    assert str(info.value).startswith(message)
    assert len(info.value.errors) == 1


def test_loader_reports_every_bad_row_and_bad_files(tmp_path: Path) -> None:
    clients = generate_client_base(n=40, seed=1)
    path = tmp_path / "clients.csv"
    path.write_text(clients_to_csv(clients).replace(",DE\n", ",Deutschland\n"))
    with pytest.raises(ClientBaseError) as every:
        load_client_base(path)
    german = [i for i, c in enumerate(clients, start=1) if c.jurisdiction == "DE"]
    assert len(german) > 1
    assert [e.split(":")[0] for e in every.value.errors] == [f"clients.csv row {i}" for i in german]
    bad_header = tmp_path / "header.csv"
    bad_header.write_text("client_id,risk,horizon_years\nC1,low,3\n")
    with pytest.raises(ClientBaseError, match=r"header\.csv header: missing column\(s\) risk_tolerance"):
        load_client_base(bad_header)
    bad_json = tmp_path / "clients.json"
    bad_json.write_text(json.dumps([{"client_id": "C1"}, 7]))
    with pytest.raises(ClientBaseError) as info:
        load_client_base(bad_json)
    assert "clients.json row 1: risk_tolerance: missing" in info.value.errors
    assert any(e.startswith("clients.json row 2: expected an object") for e in info.value.errors)
    with pytest.raises(ClientBaseError, match="cannot read"):
        load_client_base(tmp_path / "absent.csv")
    header_only = tmp_path / "header-only.csv"
    header_only.write_text(clients_to_csv([]))
    with pytest.raises(ClientBaseError, match=r"header-only\.csv: no clients"):
        load_client_base(header_only)


# ----------------------------------------------------------------------------------------------
# segments


def test_sample_segments_partition_the_base_with_at_least_50(sample_segments: list[Segment]) -> None:
    base = load_client_base("sample")
    assert all(s.size >= 50 for s in sample_segments)
    members = [m for s in sample_segments for m in s.members]
    assert sorted(members) == sorted(c.client_id for c in base.clients)  # each client exactly once
    assert len({s.segment_id for s in sample_segments}) == len(sample_segments)
    assert len(sample_segments) >= 10
    assert any(s.merged for s in sample_segments)  # the sample has groups below 50
    assert segment_clients(base) == sample_segments  # deterministic
    # the attributes are the most conservative of the members, so target-market rules hold for all
    by_id = {c.client_id: c for c in base.clients}
    for segment in sample_segments:
        assert segment.segment_id == f"seg-{segment.risk_tolerance}-{segment.horizon_band}-{segment.sophistication}"
        for client_id in segment.members:
            client = by_id[client_id]
            assert RISK_TOLERANCES.index(client.risk_tolerance) >= RISK_TOLERANCES.index(segment.risk_tolerance)
            assert SOPHISTICATIONS.index(client.sophistication) >= SOPHISTICATIONS.index(segment.sophistication)
            assert client.horizon_years >= segment.horizon_years
        event = to_event(segment)
        assert event.size == segment.size
        assert event.median_portfolio == segment.median_portfolio
        assert set(event.jurisdictions) == {by_id[m].jurisdiction for m in segment.members}
    assert len(client_segment_map(sample_segments)) == len(base)


def test_small_groups_merge_into_the_nearest() -> None:
    clients = [
        *make_clients(80, "A", risk="medium", horizon=5.0, sophistication="informed"),
        *make_clients(10, "B", risk="medium", horizon=5.0, sophistication="advanced"),  # 1.5 away from A
        *make_clients(60, "C", risk="high", horizon=5.0, sophistication="advanced"),  # 2.0 away from B
    ]
    segments = segment_clients(clients, min_size=50)
    assert [(s.segment_id, s.size, s.groups) for s in segments] == [
        ("seg-medium-mid-informed", 90, ("medium-mid-informed", "medium-mid-advanced")),
        ("seg-high-mid-advanced", 60, ("high-mid-advanced",)),
    ]
    assert segment_clients(clients, min_size=100)[0].size == 150
    with pytest.raises(ValueError, match="fewer than the minimum segment size 200"):
        segment_clients(clients, min_size=200)


# ----------------------------------------------------------------------------------------------
# suitability


def test_complexity_points() -> None:
    assert complexity(AutocallSpec.model_validate(SIMPLE.spec)).points == 1.0
    complex_ = complexity(AutocallSpec.model_validate(COMPLEX.spec))
    assert complex_.points == 5.0
    assert "continuous barrier" in complex_.features and "memory coupon" in complex_.features


def test_conservative_segment_prefers_the_simple_note_and_advanced_the_complex() -> None:
    simple_conservative, reasons = score_suitability(SIMPLE, CONSERVATIVE)
    complex_conservative, complex_reasons = score_suitability(COMPLEX, CONSERVATIVE)
    assert simple_conservative > complex_conservative
    assert simple_conservative >= 0.8 and complex_conservative <= 0.3
    assert complex_reasons[0].startswith("unsuitable:")
    assert any(r.startswith("complexity 0.00") and "5-asset worst-of" in r for r in complex_reasons)
    assert [r.split(" ")[0] for r in reasons] == ["risk", "horizon", "complexity", "return", "ticket"]

    simple_advanced, _ = score_suitability(SIMPLE, ADVANCED)
    complex_advanced, _ = score_suitability(COMPLEX, ADVANCED)
    assert complex_advanced > simple_advanced
    # the event form of a segment scores the same
    assert score_suitability(COMPLEX, to_event(ADVANCED))[0] == complex_advanced
    assert score_suitability(COMPLEX.model_dump(), ADVANCED)[0] == complex_advanced


def test_scores_are_fractions_with_a_reason_per_component(sample_segments: list[Segment]) -> None:
    for segment in sample_segments:
        for structure in (SIMPLE, COMPLEX):
            score, reasons = score_suitability(structure, segment)
            assert 0.0 <= score <= 1.0
            assert len(reasons) >= 5
    # a small portfolio makes the minimum ticket a concentration
    small = one_segment(risk="high", horizon=8.0, sophistication="advanced", portfolio=40_000.0)
    assert score_suitability(COMPLEX, small)[0] < score_suitability(COMPLEX, ADVANCED)[0]
    # a short horizon fits a five-year note less well
    short = one_segment(risk="high", horizon=1.5, sophistication="advanced", portfolio=1_500_000.0)
    assert score_suitability(COMPLEX, short)[0] < score_suitability(COMPLEX, ADVANCED)[0]


def test_plan_assigns_only_above_min_score() -> None:
    segments = [CONSERVATIVE, ADVANCED]
    suitability, assignments = plan_distribution([SIMPLE, COMPLEX], segments, min_score=0.5)
    assert {(s.segment_id, s.structure_id) for s in suitability} == {
        (seg.segment_id, f.structure_id) for seg in segments for f in (SIMPLE, COMPLEX)
    }
    scores = {(s.segment_id, s.structure_id): s.score for s in suitability}
    assert [(a.segment_id, a.structure_id) for a in assignments] == [
        (CONSERVATIVE.segment_id, SIMPLE.structure_id),
        (ADVANCED.segment_id, COMPLEX.structure_id),
    ]
    for a in assignments:
        assert a.score == scores[(a.segment_id, a.structure_id)] >= 0.5

    # only the complex note on offer: the conservative segment gets nothing, and is listed as such
    _, only_complex = plan_distribution([COMPLEX], segments, min_score=0.5)
    assert [a.segment_id for a in only_complex] == [ADVANCED.segment_id]
    assert unassigned_segments(segments, only_complex) == [CONSERVATIVE.segment_id]
    # a bar nothing clears assigns nothing
    _, none = plan_distribution([SIMPLE, COMPLEX], segments, min_score=1.0)
    assert all(a.score >= 1.0 for a in none)
    assert unassigned_segments(segments, []) == [s.segment_id for s in segments]


def test_plan_ties_and_max_per_segment() -> None:
    twin = SIMPLE.model_copy(update={"structure_id": "a-simple-twin"})
    safer = SIMPLE.model_copy(update={"structure_id": "z-simple-safer", "capital_loss_probability": 0.03})
    _, assignments = plan_distribution([SIMPLE, twin, safer], [CONSERVATIVE], max_per_segment=2)
    assert [a.structure_id for a in assignments] == ["z-simple-safer", "a-simple-twin"]
    _, reversed_order = plan_distribution([safer, twin, SIMPLE], [CONSERVATIVE], max_per_segment=2)
    assert reversed_order == assignments
    with pytest.raises(ValueError, match="distinct"):
        plan_distribution([SIMPLE, SIMPLE], [CONSERVATIVE])


def test_value_proposition_mentions_coupon_barrier_and_who() -> None:
    _, assignments = plan_distribution([SIMPLE, COMPLEX], [CONSERVATIVE, ADVANCED])
    by_segment = {a.segment_id: a.value_proposition for a in assignments}
    conservative = by_segment[CONSERVATIVE.segment_id]
    assert "4.50% p.a." in conservative
    assert "below 50%" in conservative
    assert "82% probability of early redemption" in conservative
    assert "maturity 5y" in conservative and "4% probability of a capital loss" in conservative
    assert "low-tolerance, basic clients" in conservative
    advanced = by_segment[ADVANCED.segment_id]
    assert "12.00% p.a. conditional coupon with memory" in advanced
    assert "worst of ASML, SAP, LVMH, SIE, TTE" in advanced and "below 60% (monitored daily)" in advanced
    assert value_proposition(SIMPLE, CONSERVATIVE) == conservative


def test_outputs_fit_the_distribution_planned_event(sample_segments: list[Segment]) -> None:
    suitability, assignments = plan_distribution([SIMPLE, COMPLEX], sample_segments)
    event = DistributionPlanned(
        request_id="req-1",
        client_base=load_client_base().ref,
        client_count=sum(s.size for s in sample_segments),
        segments=[to_event(s) for s in sample_segments],
        suitability=suitability,
        assignments=assignments,
        narrative=Narrative(text="plan", source="template"),
    )
    assert len(event.suitability) == 2 * len(sample_segments)
    assert event.client_count == 3000
    assert {a.segment_id for a in assignments} | set(unassigned_segments(sample_segments, assignments)) == {
        s.segment_id for s in sample_segments
    }
