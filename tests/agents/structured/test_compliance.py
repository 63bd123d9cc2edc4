"""The compliance officer's domain logic: the product-governance rule file, the review, the documents.

The rules are data (src/agents/structured/rules/product-governance.json): these tests check that the
bundled rules decide as the desk's policy says, that a changed or extended rule file is picked up
and recorded without code changes, that a broken one is refused with the rule and field named, and
that the term sheet and the KID render escaped, self-contained and byte-for-byte reproducibly.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pypdf
import pytest

from agents.structured.documents import latin1, render_kid, render_term_sheet
from agents.structured.rulebook import DEFAULT_RULE_FILE, FACTS, Rulebook, RulebookError, facts_for, review
from bus.events.narrative import Narrative
from bus.events.structured import ClientSegment, ComplianceDecision, ComplianceReviewed, StructureFigures
from engines.structured.kid import kid_indicators
from engines.structured.market import Curve, MarketData, UnderlyingMarket
from engines.structured.pricing import PricingOptions
from engines.structured.spec import AutocallSpec

AS_OF = "2026-11-24"

# A 5-year quarterly worst-of of three with memory coupons and step-down triggers: complex, capital at risk.
WORST_OF = {
    "name": "WO A/B/C 5y Phoenix 7% memory",
    "underlyings": ["A", "B", "C"],
    "basket": "worst_of",
    "currency": "EUR",
    "maturity_years": 5.0,
    "schedule": {"frequency": "quarterly"},
    "autocall": {"trigger": 1.0, "step_down": 0.025, "floor": 0.8, "no_call_observations": 4},
    "coupon": {"rate": 0.07, "conditional": True, "barrier": 0.7, "memory": True},
    "knock_in": {"barrier": 0.6, "monitoring": "european"},
}
# A 3-year annual note on one underlying with a fixed coupon and a flat trigger: not complex.
PLAIN = {
    "name": "A 3y fixed 4%",
    "underlyings": ["A"],
    "basket": "worst_of",
    "maturity_years": 3.0,
    "schedule": {"frequency": "annual"},
    "autocall": {"trigger": 1.0},
    "coupon": {"rate": 0.04, "conditional": False, "memory": False},
    "knock_in": {"barrier": 0.6, "monitoring": "european"},
}


def structure(spec: dict[str, Any], structure_id: str = "s-1", **figures: float) -> StructureFigures:
    """Priced figures of a structure; defaults are those of a typical unprotected autocallable."""
    values: dict[str, Any] = {
        "price": 0.97,
        "stderr": 0.002,
        "issuer_margin": 0.03,
        "coupon_rate": spec["coupon"]["rate"],
        "fair_coupon": 0.068,
        "autocall_probability": 0.7,
        "expected_life_years": 2.1,
        "knock_in_probability": 0.2,
        "capital_loss_probability": 0.18,
        "irr_mean": 0.03,
        "irr_median": 0.07,
    }
    values.update(figures)
    note = AutocallSpec.model_validate(spec)
    dates = len(note.observation_times())
    return StructureFigures(
        structure_id=structure_id,
        spec=note.model_dump(mode="json"),
        autocall_by_date=[values["autocall_probability"] / dates] * dates,
        greeks={},
        target_score=0.8,
        meets_targets=True,
        target_gaps={},
        **values,
    )


def segment(segment_id: str, tolerance: str = "high", sophistication: str = "advanced", **fields: Any) -> ClientSegment:
    values: dict[str, Any] = {
        "label": f"Segment {segment_id}",
        "size": 120,
        "horizon_years": 8.0,
        "median_portfolio": 400_000.0,
        "jurisdictions": ["DE", "FR"],
    }
    values.update(fields)
    return ClientSegment(segment_id=segment_id, risk_tolerance=tolerance, sophistication=sophistication, **values)


def kid_dict(sri: int, rhp: float = 5.0, rating: str = "A") -> dict[str, Any]:
    """A KID shaped like `kid_indicators`' output, with chosen SRI."""

    def outcome(percentile: float, value: float) -> dict[str, float]:
        amount = 10_000.0 * value
        return {"percentile": percentile, "value": value, "amount": amount,
                "average_return_per_year": (amount / 10_000.0) ** (1 / rhp) - 1}  # fmt: skip

    return {
        "rhp_years": rhp,
        "market_risk": {"var_return_space": -1.0, "vev": 0.21, "mrm": min(sri, 7)},
        "credit_risk": {"rating": rating, "credit_quality_step": 2, "crm": 2},
        "sri": sri,
        "performance_scenarios": {
            "investment": 10_000.0,
            "price": 1.0,
            "periods": [
                {
                    "holding_period_years": rhp,
                    "return_is_annualised": True,
                    "stress": outcome(5.0, 0.2694),
                    "unfavourable": outcome(10.0, 0.5561),
                    "moderate": outcome(50.0, 1.2110),
                    "favourable": outcome(90.0, 1.3071),
                    "stress_capped": False,
                }
            ],
        },
        "name": "note",
        "paths": 10_000,
        "model": "bs",
        "stressed_vol_multiplier": 1.5,
    }


def fired(decision: ComplianceDecision, rule_id: str) -> list[str | None]:
    """The segments (None for the product) on which a rule fired."""
    return [r.segment_id for r in decision.rules_fired if r.rule_id == rule_id]


def write_rules(tmp_path: Path, edit: Any = None, name: str = "rules.json") -> Path:
    """A copy of the bundled rule file, edited by `edit(doc)`."""
    doc = json.loads(DEFAULT_RULE_FILE.read_text())
    if edit is not None:
        edit(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return path


def rule_of(doc: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(r for r in doc["rules"] if r["id"] == rule_id)


@pytest.fixture(scope="module")
def book() -> Rulebook:
    return Rulebook.load()


@pytest.fixture(scope="module")
def engine_kid() -> dict[str, Any]:
    """The real engine's KID of the worst-of note (10,000 paths, the regulation's minimum)."""
    underlying = UnderlyingMarket(spot=100.0, dividend_yield=Curve.flat(0.01), volatility=0.25)
    market = MarketData(rates=Curve.flat(0.02), underlyings=dict.fromkeys(("A", "B", "C"), underlying))
    return kid_indicators(AutocallSpec.model_validate(WORST_OF), market, PricingOptions(paths=10_000, seed=7))


# ---------------------------------------------------------------------------------------------
# The rule file and its version
# ---------------------------------------------------------------------------------------------


def test_the_bundled_rule_file_is_versioned_and_hashed(book: Rulebook) -> None:
    ref = book.ref
    assert (ref.name, ref.version) == ("product-governance", "2026.11.1")
    assert ref.sha256 == hashlib.sha256(DEFAULT_RULE_FILE.read_bytes()).hexdigest()
    assert {r.effect for r in book.rules} == {"block", "condition", "warning"}
    assert {r.scope for r in book.rules} == {"product", "segment"}


def test_every_declared_fact_is_built(book: Rulebook) -> None:
    facts = facts_for(structure(WORST_OF), kid_dict(5), segment("s"))
    assert set(facts) == set(FACTS)
    assert facts["product.memory"] and facts["product.step_down"] and facts["product.underlyings_count"] == 3
    assert facts["product.sri"] == 5 and facts["product.issuer_rated"] is True
    assert facts["fit.ticket_share"] == pytest.approx(10_000 / 400_000)
    without_kid = facts_for(structure(PLAIN), None, segment("s"))
    assert without_kid["product.sri"] is None and without_kid["product.has_kid"] is False
    assert without_kid["product.complex_features"] == "none"


def test_a_rule_file_change_is_versioned_and_recorded(tmp_path: Path, book: Rulebook) -> None:
    def tighten(doc: dict[str, Any]) -> None:
        doc["version"] = "2026.11.2"
        rule = rule_of(doc, "concentration.limit")
        rule["condition"]["all"][0]["value"] = 0.1

    changed = Rulebook.load(write_rules(tmp_path, tighten))
    assert changed.ref.version == "2026.11.2" and book.ref.version == "2026.11.1"
    assert changed.ref.sha256 != book.ref.sha256
    assert changed.ref.sha256 == hashlib.sha256((tmp_path / "rules.json").read_bytes()).hexdigest()

    # a minimum ticket of 15% of the median portfolio: no condition before, a condition after
    note, kid, seg = structure(PLAIN), kid_dict(3, rhp=3.0), segment("mid", median_portfolio=10_000 / 0.15)
    before, after = review(note, kid, [seg], book), review(note, kid, [seg], changed)
    assert fired(before, "concentration.limit") == [] and before.decision == "approve"
    assert fired(after, "concentration.limit") == ["mid"] and after.decision == "approve_with_conditions"
    assert any("limit to 20% of portfolio" in c for c in after.conditions)

    event = ComplianceReviewed(
        request_id="req-1",
        rulebook=changed.ref,
        decisions=[after],
        narrative=Narrative(text="Reviewed one structure.", source="template"),
    )
    recorded = json.loads(event.model_dump_json())["rulebook"]
    assert recorded == {"name": "product-governance", "version": "2026.11.2", "sha256": changed.ref.sha256}


def test_a_new_rule_needs_no_code_change(tmp_path: Path, book: Rulebook) -> None:
    def add(doc: dict[str, Any]) -> None:
        doc["version"] = "2026.11.3"
        doc["rules"].append(
            {
                "id": "jurisdiction.us-persons",
                "description": "The note is not registered for offer to US persons.",
                "scope": "segment",
                "effect": "block",
                "condition": {"fact": "segment.jurisdictions", "op": "in", "value": ["US"]},
                "message": "not offered in {segment.jurisdictions}",
            }
        )

    extended = Rulebook.load(write_rules(tmp_path, add))
    segments = [segment("eu"), segment("us", jurisdictions=["CH", "US"])]
    decision = review(structure(PLAIN), kid_dict(3, rhp=3.0), segments, extended)
    assert fired(decision, "jurisdiction.us-persons") == ["us"]
    assert decision.negative_target_market == ["us"] and decision.target_market == ["eu"]
    message = next(r.message for r in decision.rules_fired if r.rule_id == "jurisdiction.us-persons")
    assert message == "not offered in CH, US"
    assert review(structure(PLAIN), kid_dict(3, rhp=3.0), segments, book).target_market == ["eu", "us"]


# ---------------------------------------------------------------------------------------------
# Malformed rule files
# ---------------------------------------------------------------------------------------------


def _unknown_fact(doc: dict[str, Any]) -> None:
    rule_of(doc, "ntm.capital-at-risk-low-tolerance")["condition"]["all"][1]["fact"] = "product.capital_at_rsk"


def _bad_op(doc: dict[str, Any]) -> None:
    rule_of(doc, "sri-limit.medium")["condition"]["all"][1]["op"] = "=>"


def _missing_message(doc: dict[str, Any]) -> None:
    del rule_of(doc, "product.kid-required")["message"]


def _bad_effect(doc: dict[str, Any]) -> None:
    rule_of(doc, "product.sri-7")["effect"] = "reject"


def _segment_fact_in_product_rule(doc: dict[str, Any]) -> None:
    rule_of(doc, "product.sri-7")["condition"] = {"fact": "segment.risk_tolerance", "op": "==", "value": "low"}


def _unknown_message_fact(doc: dict[str, Any]) -> None:
    rule_of(doc, "concentration.limit")["message"] = "ticket is {fit.ticket_ratio:.0%} of the portfolio"


def _ordering_on_text(doc: dict[str, Any]) -> None:
    rule_of(doc, "sri-limit.high")["condition"]["all"][0] = {"fact": "segment.risk_tolerance", "op": ">", "value": 2}


def _list_for_equality(doc: dict[str, Any]) -> None:
    rule_of(doc, "sri-limit.low")["condition"]["all"][0]["value"] = ["low"]


def _duplicate_id(doc: dict[str, Any]) -> None:
    rule_of(doc, "sri-limit.high")["id"] = "sri-limit.low"


def _unknown_field(doc: dict[str, Any]) -> None:
    rule_of(doc, "product.complexity")["severity"] = "high"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_unknown_fact, r"rule 'ntm.capital-at-risk-low-tolerance': condition\.all\[1\]\.fact: unknown fact "
                        r"'product.capital_at_rsk'"),
        (_bad_op, r"rule 'sri-limit.medium': condition\.all\[1\]\.op: unknown op '=>'"),
        (_missing_message, r"rule 'product.kid-required': message: missing"),
        (_bad_effect, r"rule 'product.sri-7': effect: must be one of"),
        (_segment_fact_in_product_rule, r"rule 'product.sri-7': condition\.fact: .*not a product fact"),
        (_unknown_message_fact, r"rule 'concentration.limit': message: unknown fact 'fit.ticket_ratio'"),
        (_ordering_on_text, r"rule 'sri-limit.high': condition\.all\[0\]\.op: '>' compares numbers"),
        (_list_for_equality, r"rule 'sri-limit.low': condition\.all\[0\]\.value: .*use 'in'"),
        (_duplicate_id, r"rule 'sri-limit.low': id: appears more than once"),
        (_unknown_field, r"rule 'product.complexity': severity: unknown field"),
    ],
)  # fmt: skip
def test_a_malformed_rule_file_is_refused_naming_the_rule_and_field(tmp_path: Path, edit: Any, expected: str) -> None:
    path = write_rules(tmp_path, edit)
    with pytest.raises(RulebookError, match=expected) as info:
        Rulebook.load(path)
    assert str(path) in str(info.value)


def test_a_rule_file_that_is_not_json_or_lacks_a_version_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(RulebookError, match="not a JSON document"):
        Rulebook.load(broken)
    with pytest.raises(RulebookError, match="version: missing"):
        Rulebook.load(write_rules(tmp_path, lambda doc: doc.pop("version")))


# ---------------------------------------------------------------------------------------------
# The review
# ---------------------------------------------------------------------------------------------


def test_a_low_tolerance_segment_is_in_the_negative_target_market_of_a_capital_at_risk_note(book: Rulebook) -> None:
    segments = [segment("cautious", "low", "informed"), segment("growth", "high", "advanced")]
    decision = review(structure(PLAIN, capital_loss_probability=0.12), kid_dict(2, rhp=3.0), segments, book)
    assert fired(decision, "ntm.capital-at-risk-low-tolerance") == ["cautious"]
    assert decision.negative_target_market == ["cautious"] and decision.target_market == ["growth"]
    assert decision.decision == "approve_with_conditions"
    # a capital-protected note is open to the same segment
    protected = {**PLAIN, "capital_protection": 1.0}
    safe = review(structure(protected, capital_loss_probability=0.0), kid_dict(2, rhp=3.0), segments, book)
    assert safe.target_market == ["cautious", "growth"] and safe.decision == "approve"


@pytest.mark.parametrize("sri", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("loss", [0.0, 0.04, 0.3])
def test_a_blocked_segment_is_never_in_the_target_market(book: Rulebook, sri: int, loss: float) -> None:
    segments = [
        segment(
            f"{tolerance}-{knowledge}-{size}", tolerance, knowledge, median_portfolio=portfolio, horizon_years=horizon
        )
        for tolerance in ("low", "medium", "high", "very_high")
        for knowledge in ("basic", "advanced")
        for size, portfolio, horizon in (("small", 15_000.0, 3.0), ("large", 400_000.0, 8.0))
    ]
    segments.append(segment("odd", "balanced"))
    decision = review(structure(WORST_OF, capital_loss_probability=loss), kid_dict(sri), segments, book)
    blocked = {r.segment_id for r in decision.rules_fired if r.effect == "block" and r.segment_id is not None}
    assert set(decision.negative_target_market) == blocked
    assert not set(decision.target_market) & blocked
    if decision.decision != "reject":
        assert set(decision.target_market) | blocked == {s.segment_id for s in segments}
    assert "odd" in decision.negative_target_market  # an unclassified risk tolerance has no SRI limit
    if loss > 0.05:
        assert {"low-basic-large", "low-advanced-large"} <= set(decision.negative_target_market)


@pytest.mark.parametrize(
    ("sri", "blocked"),
    [
        (2, []),
        (3, ["low"]),
        (4, ["low"]),
        (5, ["low", "medium"]),
        (6, ["low", "medium", "high"]),
    ],
)
def test_the_sri_limit_fires_per_segment(book: Rulebook, sri: int, blocked: list[str]) -> None:
    segments = [segment(t, t) for t in ("low", "medium", "high", "very_high")]
    protected = {**PLAIN, "capital_protection": 1.0}
    decision = review(structure(protected, capital_loss_probability=0.0), kid_dict(sri, rhp=3.0), segments, book)
    sri_hits = sorted(r.segment_id for r in decision.rules_fired if r.rule_id.startswith("sri-limit."))
    assert sri_hits == sorted(blocked)
    assert decision.negative_target_market == blocked
    for hit in decision.rules_fired:
        if hit.rule_id.startswith("sri-limit."):
            assert hit.effect == "block" and f"SRI {sri} exceeds" in hit.message


def test_the_complexity_condition_fires_for_a_memory_worst_of(book: Rulebook) -> None:
    decision = review(structure(WORST_OF), kid_dict(4), [segment("growth")], book)
    assert fired(decision, "product.complexity") == [None]
    assert decision.decision == "approve_with_conditions"
    condition = next(c for c in decision.conditions if "appropriateness assessment required" in c)
    assert condition.startswith("complex product (memory coupon, worst-of basket of 3, step-down autocall triggers)")
    plain = review(structure(PLAIN), kid_dict(3, rhp=3.0), [segment("growth")], book)
    assert fired(plain, "product.complexity") == [] and plain.decision == "approve" and plain.conditions == []


def test_basic_knowledge_is_the_negative_target_market_of_a_worst_of_three_with_memory(book: Rulebook) -> None:
    segments = [segment("basic", "high", "basic"), segment("informed", "high", "informed")]
    decision = review(structure(WORST_OF), kid_dict(4), segments, book)
    assert fired(decision, "ntm.complex-basic-knowledge") == ["basic"]
    assert fired(decision, "complexity.basic-knowledge-warning") == ["basic"]
    assert decision.target_market == ["informed"]


def test_a_horizon_shorter_than_the_maturity_is_a_negative_target_market(book: Rulebook) -> None:
    segments = [segment("short", horizon_years=3.0), segment("long", horizon_years=5.0)]
    decision = review(structure(WORST_OF), kid_dict(4), segments, book)
    assert fired(decision, "ntm.horizon-shorter-than-maturity") == ["short"]
    assert decision.target_market == ["long"]


def test_concentration_limits_and_blocks_by_ticket_share(book: Rulebook) -> None:
    segments = [
        segment("wealthy", median_portfolio=400_000.0),
        segment("modest", median_portfolio=30_000.0),  # 10,000 / 30,000 = 33%
        segment("small", median_portfolio=15_000.0),  # 67%
    ]
    decision = review(structure(PLAIN), kid_dict(3, rhp=3.0), segments, book)
    assert fired(decision, "concentration.limit") == ["modest"]
    assert fired(decision, "concentration.unsuitable") == ["small"]
    assert decision.target_market == ["wealthy", "modest"] and decision.negative_target_market == ["small"]
    assert decision.conditions == [
        "limit to 20% of portfolio for segment modest (minimum ticket is 33% of the median portfolio)"
    ]
    # a smaller ticket lifts both
    small_ticket = review(structure(PLAIN), kid_dict(3, rhp=3.0), segments, book, min_ticket=1_000.0)
    assert small_ticket.decision == "approve" and small_ticket.negative_target_market == []


def test_sri_7_and_an_unrated_issuer_are_rejected(book: Rulebook) -> None:
    segments = [segment("growth", "very_high"), segment("cautious", "low")]
    decision = review(structure(PLAIN), kid_dict(7, rhp=3.0), segments, book)
    assert decision.decision == "reject" and fired(decision, "product.sri-7") == [None]
    assert decision.target_market == []
    assert "cautious" in decision.negative_target_market
    unrated = review(structure(PLAIN), kid_dict(3, rhp=3.0), segments, book, issuer_rating="NR")
    assert unrated.decision == "reject" and fired(unrated, "product.issuer-unrated") == [None]
    assert unrated.target_market == []


def test_a_note_without_a_kid_is_approved_only_on_condition(book: Rulebook) -> None:
    decision = review(structure(PLAIN), None, [segment("growth")], book)
    assert decision.decision == "approve_with_conditions" and decision.kid is None
    assert decision.conditions == ["KID required before distribution"]
    assert fired(decision, "product.sri-7") == []  # an unknown SRI fires no SRI rule


def test_the_decision_carries_the_engine_kid(book: Rulebook, engine_kid: dict[str, Any]) -> None:
    decision = review(structure(WORST_OF), engine_kid, [segment("growth", "very_high")], book)
    assert decision.kid == engine_kid and 1 <= engine_kid["sri"] <= 7
    assert json.loads(decision.model_dump_json())["kid"]["sri"] == engine_kid["sri"]


# ---------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_the_term_sheet_states_the_terms_pricing_and_risks(book: Rulebook) -> None:
    note = structure(WORST_OF)
    segments = [segment("growth"), segment("cautious", "low")]
    decision = review(note, kid_dict(5), segments, book)
    html, pdf = render_term_sheet(note, as_of=AS_OF, decision=decision, segments=segments, rulebook=book.ref)
    text = pdf_text(pdf)
    assert pdf.startswith(b"%PDF-")
    for document in (html, text):
        for expected in ("WO A/B/C 5y Phoenix 7% memory", "Issuer", "EUR", "A, B, C", "worst-of", "Memory",
                         "Knock-in barrier", "60.00%", "European", "Downside buffer", "Capital protection",
                         "Issue price", "Issuer margin", "3.00%", "70.0%", "2.10 years", "Main risks",
                         "not callable", "97.50%", "Probability of redemption", "2026.11.1", AS_OF):  # fmt: skip
            assert expected in document, expected


def test_the_kid_shows_the_sri_scale_and_the_scenarios(engine_kid: dict[str, Any]) -> None:
    note = structure(WORST_OF)
    html, pdf = render_kid(note, engine_kid, as_of=AS_OF)
    text = pdf_text(pdf)
    sri = engine_kid["sri"]
    period = engine_kid["performance_scenarios"]["periods"][0]
    assert "WO A/B/C 5y Phoenix 7% memory" in text
    assert f"Summary risk indicator (SRI) {sri} of 7" in text and f"as {sri} out of 7" in text
    assert "1 2 3 4 5 6 7" in text
    for name in ("stress", "unfavourable", "moderate", "favourable"):
        amount = f"{period[name]['amount']:,.0f} EUR"
        ret = f"{period[name]['average_return_per_year'] * 100:.2f}%"
        assert amount in text and ret in text, (name, amount, ret)
        assert amount in html and ret in html
    for heading in ("What is this product?", "What are the risks and what could I get in return?",
                    "Performance scenarios", "What are the costs?",
                    "How long should I hold it and can I take money out early?"):  # fmt: skip
        assert heading in text and heading in html
    assert "Entry costs" in text and "300 EUR" in text  # 3% issuer margin on 10,000
    assert re.search(rf'<li class="selected" aria-current="true">{sri}</li>', html)
    assert "not simple and may be difficult to understand" in html


def test_html_is_escaped_and_self_contained() -> None:
    hostile = {**PLAIN, "name": '<script>alert("x")</script> & Co'}
    note = structure(hostile, structure_id="s-<b>")
    html, _ = render_term_sheet(note, as_of=AS_OF, issuer="Bank <i>")
    kid_html, _ = render_kid(note, kid_dict(3, rhp=3.0), as_of=AS_OF, issuer="Bank <i>")
    for page in (html, kid_html):
        assert "<script" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in page
        assert "s-&lt;b&gt;" in page and "Bank &lt;i&gt;" in page and "<i>" not in page
        assert not re.search(r"(src|href)\s*=|@import|url\(|https?://", page)
        assert page.startswith("<!DOCTYPE html>") and "<style>" in page


def test_rendering_is_deterministic(engine_kid: dict[str, Any]) -> None:
    note = structure(WORST_OF)
    first = render_term_sheet(note, as_of=AS_OF), render_kid(note, engine_kid, as_of=AS_OF)
    second = render_term_sheet(note, as_of=AS_OF), render_kid(note, engine_kid, as_of=AS_OF)
    assert first == second
    later = render_kid(note, engine_kid, as_of="2026-11-25")
    assert later[1] != first[1][1] and "2026-11-25" in later[0]
    assert pypdf.PdfReader(io.BytesIO(first[1][1])).metadata["/CreationDate"].startswith("D:20261124")
    with pytest.raises(ValueError, match="as_of"):
        render_term_sheet(note, as_of="24/11/2026")


def test_pdf_text_is_sanitised_to_latin1() -> None:
    assert latin1("SRI ≥ 5 – worst‑of “basket” … 100 €") == 'SRI >= 5 - worst-of "basket" ... 100 EUR'
    assert latin1("Zürich ✓") == "Zürich ?"
    note = structure({**PLAIN, "name": "Note – step‑down ≥ 80% ✓"})
    _, pdf = render_term_sheet(note, as_of=AS_OF)
    assert "Note - step-down >= 80% ?" in pdf_text(pdf)
