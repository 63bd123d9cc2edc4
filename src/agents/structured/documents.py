"""The term sheet and the PRIIPs key information document of a structure, as HTML and PDF.

Each document is first built as a small document model (sections of paragraphs, fact tables,
tables, bullet lists and the 1-7 risk scale) and then written twice from that one model: HTML by
a jinja2 template with autoescaping (`templates/document.html.j2`, self-contained: inline CSS, no
scripts, no external fonts) and PDF by fpdf2 with its core fonts. Both outputs are deterministic:
the only date in them is the `as_of` date the caller passes (it is also the PDF's creation date),
so identical inputs give identical bytes, which the content-addressed artifact store relies on.

fpdf2's core fonts speak latin-1 only, so PDF text is sanitised: typographic dashes, quotes and
comparison signs become their ASCII forms, the euro sign becomes "EUR" and anything else outside
latin-1 becomes "?".

The term sheet states the note's terms (from the `AutocallSpec` the structure carries), its
observation schedule, the desk's pricing summary and the main risks. The KID follows the sections
of the PRIIPs template (Regulation (EU) 1286/2014, Article 8; Delegated Regulation (EU) 2017/653,
Annexes III, V and VI) with the indicators `engines.structured.kid.kid_indicators` computed; the
costs section shows the issuer margin as the entry cost. When a compliance decision is given, both
documents state the target market and the negative target market it decided.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from agents.structured.rulebook import complex_features
from bus.events.structured import ClientSegment, ComplianceDecision, StructureFigures
from bus.events.structured import Rulebook as RulebookRef
from engines.structured.spec import AutocallSpec

TEMPLATES = Path(__file__).parent / "templates"
"""The jinja2 templates (package data under src/agents)."""

DEFAULT_ISSUER = "Issuer"
"""The issuer's name on documents when the caller gives none."""

SRI_CLASSES: dict[int, tuple[str, str, str]] = {
    1: ("the lowest", "very low", "are very unlikely to impact"),
    2: ("a low", "low", "are very unlikely to impact"),
    3: ("a medium-low", "medium-low", "are unlikely to impact"),
    4: ("a medium", "medium", "could impact"),
    5: ("a medium-high", "medium-high", "could impact"),
    6: ("the second-highest", "high", "are very likely to impact"),
    7: ("the highest", "very high", "are very likely to impact"),
}
"""Per SRI: the risk class, the level of potential losses and how poor markets affect payment (Annex III)."""

BASKETS: dict[str, str] = {
    "worst_of": "worst-of (the performance of the worst-performing underlying counts)",
    "best_of": "best-of (the performance of the best-performing underlying counts)",
    "average": "average (the equally weighted average performance of the underlyings counts)",
}
FREQUENCIES: dict[str, str] = {
    "monthly": "monthly",
    "quarterly": "quarterly",
    "semi_annual": "semi-annual",
    "annual": "annual",
}
MONITORING: dict[str, str] = {
    "european": "European: observed at maturity only",
    "daily": "daily: observed at every trading day's close",
    "continuous": "continuous: observed at any time during the life of the note",
}

_LATIN1_REPLACEMENTS: dict[str, str] = {
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2026": "...", "\u2022": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2264": "<=", "\u2265": ">=",
    "\u2260": "!=", "\u2248": "~", "\u2192": "->", "\u20ac": "EUR", "\u2030": " per mille",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The document model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: Literal["paragraph"] = "paragraph"


@dataclass(frozen=True)
class Notice:
    """A highlighted statement (the KID's comprehension alert)."""

    text: str
    kind: Literal["notice"] = "notice"


@dataclass(frozen=True)
class Facts:
    """Label-value rows."""

    rows: tuple[tuple[str, str], ...]
    kind: Literal["facts"] = "facts"


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    kind: Literal["table"] = "table"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    kind: Literal["bullets"] = "bullets"


@dataclass(frozen=True)
class Scale:
    """The PRIIPs risk scale 1..top with one value marked."""

    value: int
    caption: str
    low_label: str = "Lower risk"
    high_label: str = "Higher risk"
    top: int = 7
    kind: Literal["scale"] = "scale"


Block = Paragraph | Notice | Facts | Table | Bullets | Scale


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    """One document, rendered alike to HTML and PDF."""

    title: str
    product_name: str
    structure_id: str
    subtitle: str
    sections: tuple[Section, ...]
    footer: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


def _pct(x: float, digits: int = 2) -> str:
    return f"{x * 100:.{digits}f}%"


def _money(x: float, currency: str, digits: int = 0) -> str:
    return f"{x:,.{digits}f} {currency}"


def _years(x: float) -> str:
    return "1 year" if abs(x - 1.0) < 1e-9 else f"{x:g} years"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _as_of(as_of: str) -> dt.date:
    """The document date; only an ISO date (YYYY-MM-DD) is accepted, so the bytes stay reproducible."""
    try:
        return dt.date.fromisoformat(as_of)
    except (TypeError, ValueError):
        raise ValueError(f"as_of: must be an ISO date such as '2026-11-24', got {as_of!r}") from None


def _kid_figures(kid: Mapping[str, Any]) -> tuple[int, Mapping[str, Any], Mapping[str, Any], float, Mapping[str, Any]]:
    """SRI, market risk, credit risk, RHP and the scenarios at the RHP of a `kid_indicators` dict."""
    try:
        sri = int(kid["sri"])
        market, credit, rhp = kid["market_risk"], kid["credit_risk"], float(kid["rhp_years"])
        periods = kid["performance_scenarios"]["periods"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"kid: not shaped like kid_indicators' output ({exc!r} missing or invalid)") from None
    if not 1 <= sri <= 7:
        raise ValueError(f"kid.sri: must be 1..7, got {sri}")
    if not periods:
        raise ValueError("kid.performance_scenarios.periods: must show at least the recommended holding period")
    period = next((p for p in periods if abs(float(p["holding_period_years"]) - rhp) <= 1e-9), periods[-1])
    return sri, market, credit, rhp, period


def _segment_names(ids: Sequence[str], segments: Sequence[ClientSegment] | None) -> str:
    labels = {s.segment_id: s.label for s in segments or ()}
    named = [f"{labels[i]} ({i})" if i in labels else i for i in ids]
    return "; ".join(named) if named else "none"


# ---------------------------------------------------------------------------------------------
# Shared content
# ---------------------------------------------------------------------------------------------


def _payoff_at_maturity(spec: AutocallSpec) -> str:
    """The redemption at maturity in words, with a worked example of a loss.

    Knocked in (or without a barrier) and below the strike net of the buffer, the note repays
    1 - (strike - buffer - final performance) / strike of the notional, floored at the protection.
    """
    ki = spec.knock_in
    floor = spec.capital_protection
    strike, buffer = spec.strike, spec.downside_buffer
    level = strike - buffer
    example = round(0.5 * min(level, ki.barrier if ki is not None else level), 2)
    repaid = max(floor, 1.0 - (level - example) / strike)
    loss = (
        f"the notional reduced by the basket's shortfall below {_pct(level)} of its initial level, divided by the "
        f"strike of {_pct(strike)}"
        + (f", and never less than {_pct(floor)} of the notional (capital protection)" if floor > 0 else "")
        + f"; for example, a final basket performance of {_pct(example, 0)} repays {_pct(repaid)} of the notional"
    )
    if ki is None:
        if floor >= 1.0:
            return "If the note was not called early, it repays 100% of the notional at maturity."
        return (
            f"If the note was not called early and the final basket performance is below {_pct(level)}, "
            f"it repays {loss}; otherwise it repays 100% of the notional."
        )
    return (
        f"If the note was not called early, it repays 100% of the notional at maturity unless the basket has "
        f"fallen below the knock-in barrier of {_pct(ki.barrier)} ({MONITORING[ki.monitoring]}) and ends below "
        f"{_pct(level)}; then it repays {loss}."
    )


def _main_risks(spec: AutocallSpec, structure: StructureFigures, issuer: str) -> tuple[str, ...]:
    risks = []
    if spec.capital_protection < 1.0:
        risks.append(
            f"Capital at risk: you can lose up to {_pct(1.0 - spec.capital_protection, 0)} of the capital invested. "
            f"The pricing model puts the probability of a loss of capital at "
            f"{_pct(structure.capital_loss_probability, 1)} and of breaching the barrier at "
            f"{_pct(structure.knock_in_probability, 1)}."
        )
    risks.append(
        f"Credit risk: every payment depends on {issuer}'s ability to pay. If {issuer} defaults or is resolved, "
        "you can lose some or all of your investment, whatever the underlyings do."
    )
    if spec.basket == "worst_of" and len(spec.underlyings) > 1:
        risks.append(
            f"Worst-of risk: coupons and redemption depend on the worst of {len(spec.underlyings)} underlyings; "
            "the more underlyings and the less they move together, the likelier one of them falls far."
        )
    if spec.coupon.conditional:
        memory = " Missed coupons are paid later only if a later observation meets the barrier (memory)." * bool(
            spec.coupon.memory
        )
        risks.append(
            f"Coupon risk: coupons are paid only when the basket is at or above {_pct(spec.coupon.barrier)} "
            f"on an observation date; you may receive no coupon at all.{memory}"
        )
    risks.append(
        f"Early redemption: the note is called automatically when the basket is at or above the trigger "
        f"(probability {_pct(structure.autocall_probability, 1)}, expected life {structure.expected_life_years:.2f} "
        "years); you may have to reinvest at less favourable terms."
    )
    if spec.knock_in is not None and spec.knock_in.monitoring != "european":
        risks.append(
            f"Barrier risk: the knock-in barrier is {MONITORING[spec.knock_in.monitoring]}; a single breach "
            "during the life of the note exposes the capital at maturity."
        )
    risks.append(
        "Liquidity risk: there may be no secondary market; selling before maturity can realise much less than "
        "the amount invested."
    )
    risks.append(
        "Model risk: probabilities and values are Monte Carlo estimates under the desk's market model and may "
        "differ from what happens."
    )
    return tuple(risks)


def _target_market_blocks(
    decision: ComplianceDecision | None, segments: Sequence[ClientSegment] | None, rulebook: RulebookRef | None
) -> tuple[Block, ...]:
    if decision is None:
        return ()
    rows = [
        ("Compliance decision", decision.decision.replace("_", " ")),
        ("Target market", _segment_names(decision.target_market, segments)),
        ("Negative target market", _segment_names(decision.negative_target_market, segments)),
    ]
    if rulebook is not None:
        rows.append(("Rulebook", f"{rulebook.name} version {rulebook.version} (SHA-256 {rulebook.sha256[:12]})"))
    blocks: list[Block] = [Facts(tuple(rows))]
    if decision.conditions:
        blocks.append(Paragraph("Conditions of distribution:"))
        blocks.append(Bullets(tuple(decision.conditions)))
    return tuple(blocks)


# ---------------------------------------------------------------------------------------------
# Term sheet
# ---------------------------------------------------------------------------------------------


def _trigger_profile(spec: AutocallSpec) -> str:
    ac = spec.autocall
    if ac.triggers is not None:
        return "explicit trigger per observation (see the schedule)"
    text = f"{_pct(ac.trigger)} of the initial level"
    if ac.step_down > 0:
        text += f", stepping down by {_pct(ac.step_down)} per observation to a floor of {_pct(ac.floor)}"
    if ac.no_call_observations:
        text += f"; not callable at the first {ac.no_call_observations} observation(s)"
    return text


def term_sheet_document(
    structure: StructureFigures,
    *,
    as_of: str,
    issuer: str = DEFAULT_ISSUER,
    min_ticket: float | None = None,
    decision: ComplianceDecision | None = None,
    segments: Sequence[ClientSegment] | None = None,
    rulebook: RulebookRef | None = None,
) -> Document:
    """The term sheet's document model (see `render_term_sheet`)."""
    date = _as_of(as_of).isoformat()
    spec = AutocallSpec.model_validate(structure.spec)
    ccy = spec.currency
    cpn = spec.coupon
    ki = spec.knock_in
    times = spec.observation_times().tolist()
    triggers = spec.triggers().tolist()
    amounts = spec.coupon_amounts().tolist()
    terms: list[tuple[str, str]] = [
        ("Issuer", issuer),
        ("Product type", "Autocallable note" + (" with conditional coupons" if cpn.conditional else "")),
        ("Currency", ccy),
        ("Notional (issue size)", _money(spec.notional, ccy, 2)),
    ]
    if min_ticket is not None:
        terms.append(("Minimum subscription", _money(min_ticket, ccy, 2)))
    terms += [
        ("Issue price", "100.00% of the notional"),
        ("Maturity", _years(spec.maturity_years) + " from the strike date"),
        ("Underlyings", ", ".join(spec.underlyings)),
        ("Basket", BASKETS[spec.basket]),
        ("Strike", f"{_pct(spec.strike)} of the initial level of each underlying"),
    ]
    schedule = spec.schedule
    observations: list[tuple[str, str]] = [
        ("Frequency", FREQUENCIES[schedule.frequency] if schedule.dates is None and schedule.frequency else "explicit"),
        ("Number of observations", str(len(times))),
        ("First and last observation", f"{times[0]:g} and {times[-1]:g} years after the strike date"),
        ("Autocall trigger profile", _trigger_profile(spec)),
    ]
    coupon: list[tuple[str, str]] = [
        ("Coupon rate", f"{_pct(cpn.rate)} per annum, paid pro rata per observation period"),
        ("Conditional", _yes(cpn.conditional)),
    ]
    if cpn.conditional:
        coupon += [("Coupon barrier", _pct(cpn.barrier)), ("Memory", _yes(cpn.memory))]
    redemption: list[tuple[str, str]] = [
        ("Knock-in barrier", _pct(ki.barrier) if ki else "none"),
        ("Barrier monitoring", MONITORING[ki.monitoring] if ki else "not applicable"),
        ("Strike", _pct(spec.strike)),
        ("Downside buffer", _pct(spec.downside_buffer)),
        ("Capital protection", _pct(spec.capital_protection)),
    ]
    # the model's probability of redemption on each date, when the figures give one per observation
    by_date = structure.autocall_by_date if len(structure.autocall_by_date) == len(times) else None
    table_rows = tuple(
        (
            str(i + 1),
            f"{t:.4g}",
            _pct(trig) if math.isfinite(trig) else "not callable",
            _pct(cpn.barrier) if cpn.conditional else "unconditional",
            _pct(amount, 3),
            *((_pct(by_date[i], 1),) if by_date else ()),
        )
        for i, (t, trig, amount) in enumerate(zip(times, triggers, amounts, strict=True))
    )
    pricing: list[tuple[str, str]] = [
        ("Issue price", "100.00%"),
        (
            "Estimated value (model price)",
            f"{_pct(structure.price)} (Monte Carlo standard error {_pct(structure.stderr, 3)})",
        ),
        ("Issuer margin", _pct(structure.issuer_margin)),
    ]
    if structure.fair_coupon is not None:
        pricing.append(("Coupon for the target margin", f"{_pct(structure.fair_coupon)} per annum"))
    pricing += [
        ("Probability of early redemption", _pct(structure.autocall_probability, 1)),
        ("Expected life", f"{structure.expected_life_years:.2f} years"),
        ("Probability of a barrier breach", _pct(structure.knock_in_probability, 1)),
        ("Probability of a loss of capital", _pct(structure.capital_loss_probability, 1)),
        ("Client return (IRR) mean / median", f"{_pct(structure.irr_mean)} / {_pct(structure.irr_median)} per annum"),
    ]
    sections = [
        Section("Terms", (Facts(tuple(terms)),)),
        Section(
            "Observations and early redemption",
            (
                Facts(tuple(observations)),
                Paragraph(
                    "On each callable observation date, if the basket is at or above the autocall trigger, the note "
                    "is redeemed early at 100% of the notional plus the coupon due."
                ),
                Table(
                    (
                        "Observation",
                        "Years",
                        "Autocall trigger",
                        "Coupon barrier",
                        "Coupon (% of notional)",
                        *(("Probability of redemption",) if by_date else ()),
                    ),
                    table_rows,
                ),
            ),
        ),
        Section("Coupons", (Facts(tuple(coupon)),)),
        Section("Redemption at maturity", (Facts(tuple(redemption)), Paragraph(_payoff_at_maturity(spec)))),
        Section("Pricing summary", (Facts(tuple(pricing)),)),
        Section("Main risks", (Bullets(_main_risks(spec, structure, issuer)),)),
    ]
    market_blocks = _target_market_blocks(decision, segments, rulebook)
    if market_blocks:
        sections.append(Section("Product governance", market_blocks))
    return Document(
        title="Term sheet",
        product_name=spec.name,
        structure_id=structure.structure_id,
        subtitle=f"Indicative terms as of {date}. Structure {structure.structure_id}. Issuer: {issuer}.",
        sections=tuple(sections),
        footer=(
            f"Indicative terms as of {date}; figures from the desk's Monte Carlo pricing. This term sheet is not an "
            "offer; the key information document must be read before investing.",
        ),
    )


# ---------------------------------------------------------------------------------------------
# Key information document
# ---------------------------------------------------------------------------------------------


def kid_document(
    structure: StructureFigures,
    kid: Mapping[str, Any],
    *,
    as_of: str,
    issuer: str = DEFAULT_ISSUER,
    decision: ComplianceDecision | None = None,
    segments: Sequence[ClientSegment] | None = None,
    rulebook: RulebookRef | None = None,
) -> Document:
    """The KID's document model (see `render_kid`)."""
    date = _as_of(as_of).isoformat()
    spec = AutocallSpec.model_validate(structure.spec)
    sri, market, credit, rhp, period = _kid_figures(kid)
    ccy = spec.currency
    investment = float(kid.get("performance_scenarios", {}).get("investment", 10_000.0))
    risk_class, loss_level, impact = SRI_CLASSES[sri]
    features = complex_features(spec)
    product_blocks: list[Block] = [
        Facts(
            (
                ("Product", spec.name),
                ("Manufacturer (issuer)", issuer),
                ("Currency", ccy),
                ("Structure", structure.structure_id),
                ("Date of production", date),
            )
        )
    ]
    if features:
        product_blocks.append(
            Notice("You are about to purchase a product that is not simple and may be difficult to understand.")
        )
    observations = zip(spec.observation_times().tolist(), spec.triggers().tolist(), strict=True)
    callable_from = next((t for t, trigger in observations if math.isfinite(trigger)), spec.maturity_years)
    coupon_text = (
        f"a coupon of {_pct(spec.coupon.rate)} per annum, paid on each observation date on which the basket is at "
        f"or above {_pct(spec.coupon.barrier)} of its initial level"
        + (" (coupons missed earlier are then paid too)" if spec.coupon.memory else "")
        if spec.coupon.conditional
        else f"a fixed coupon of {_pct(spec.coupon.rate)} per annum"
    )
    objectives = (
        f"This note gives you {coupon_text}. The basket is the {BASKETS[spec.basket]} of "
        f"{', '.join(spec.underlyings)}. From {_years(callable_from)} after the strike date the note is redeemed "
        f"early at 100% of the notional when the basket is at or above the autocall trigger "
        f"({_trigger_profile(spec)}). {_payoff_at_maturity(spec)}"
    )
    if decision is not None:
        investor = (
            f"The note is intended for the client segments {_segment_names(decision.target_market, segments)}; "
            f"it must not be offered to {_segment_names(decision.negative_target_market, segments)}."
        )
    else:
        investor = (
            f"The note is intended for retail investors with knowledge of structured products, an investment "
            f"horizon of at least {_years(spec.maturity_years)}, and the ability to bear a loss of "
            f"{_pct(1.0 - spec.capital_protection, 0)} of the capital invested."
        )
    what = (
        Facts(
            (
                ("Type", "Unsecured debt instrument (autocallable note) governed by its terms and conditions"),
                ("Term", f"{_years(spec.maturity_years)}, unless redeemed early automatically"),
            )
        ),
        Paragraph("Objectives: " + objectives),
        Paragraph("Intended retail investor: " + investor),
    )
    mrm = market.get("mrm")
    crm = credit.get("crm")
    risk_blocks: list[Block] = [
        Scale(sri, caption=f"Summary risk indicator {sri} of 7"),
        Paragraph(
            f"The risk indicator assumes you keep the product for {_years(rhp)}. The actual risk can vary "
            "significantly if you cash in at an early stage, and you may get back less."
        ),
        Paragraph(
            f"We have classified this product as {sri} out of 7, which is {risk_class} risk class. This rates the "
            f"potential losses from future performance at a {loss_level} level, and poor market conditions {impact} "
            f"the capacity of {issuer} to pay you."
        ),
        Facts(
            (
                ("Summary risk indicator (SRI)", f"{sri} of 7"),
                ("Market risk measure (MRM)", f"{mrm} of 7" + _vev(market.get("vev"))),
                ("Credit risk measure (CRM)", f"{crm} of 6 (issuer rating {credit.get('rating', 'n/a')})"),
                ("Recommended holding period", _years(rhp)),
            )
        ),
    ]
    if spec.capital_protection < 1.0:
        protection = (
            f" beyond {_pct(spec.capital_protection, 0)} of the notional" if spec.capital_protection > 0 else ""
        )
        risk_blocks.append(
            Paragraph(
                f"This product does not include any protection from future market performance{protection}, so you "
                "could lose some or all of your investment."
            )
        )
    annualised = bool(period.get("return_is_annualised", rhp >= 1.0))
    ret_label = "Average return each year" if annualised else "Return"
    scenario_rows = tuple(
        (
            name.capitalize(),
            _money(float(period[name]["amount"]), ccy),
            _pct(float(period[name]["average_return_per_year"])),
        )
        for name in ("stress", "unfavourable", "moderate", "favourable")
    )
    minimum = (
        f"Minimum: {_money(investment * spec.capital_protection, ccy)} at maturity (capital protection), subject "
        f"to {issuer}'s ability to pay."
        if spec.capital_protection > 0
        else "There is no minimum guaranteed return. You could lose some or all of your investment."
    )
    scenario_blocks: list[Block] = [
        Paragraph(
            f"What you might get back at the end of the recommended holding period of {_years(rhp)} on an "
            f"investment of {_money(investment, ccy)}, in different scenarios. {minimum}"
        ),
        Table(("Scenario", "What you might get back", ret_label), scenario_rows),
        Paragraph(
            "The stress scenario shows what you might get back in extreme market circumstances; the unfavourable, "
            "moderate and favourable scenarios are the 10th, 50th and 90th percentiles of the simulated outcomes. "
            "Market developments in the future cannot be accurately predicted; these are estimates."
        ),
    ]
    if period.get("stress_capped"):
        scenario_blocks.append(Paragraph("The stress scenario is shown at the unfavourable scenario's value."))
    margin = max(structure.issuer_margin, 0.0)
    costs = (
        Table(
            ("Cost", "Amount", "Impact"),
            (
                (
                    "Entry costs (issuer margin, included in the price)",
                    _money(margin * investment, ccy),
                    _pct(margin) + " of the amount invested",
                ),
                ("Exit costs", "none if held to maturity", "-"),
                ("Ongoing costs", "none", "-"),
                ("Total costs", _money(margin * investment, ccy), f"about {_pct(margin / rhp)} each year"),
            ),
        ),
        Paragraph(
            f"The annual cost impact spreads the entry cost over the recommended holding period of {_years(rhp)}; "
            "it is an approximation of the reduction in yield."
        ),
    )
    sections = [
        Section(
            "Purpose",
            (
                Paragraph(
                    "This document provides you with key information about this investment product. It is not "
                    "marketing material. The information is required by law to help you understand the nature, "
                    "risks, costs, potential gains and losses of this product and to help you compare it with other "
                    "products."
                ),
            ),
        ),
        Section("Product", tuple(product_blocks)),
        Section("What is this product?", what),
        Section("What are the risks and what could I get in return?", tuple(risk_blocks)),
        Section("Performance scenarios", tuple(scenario_blocks)),
        Section(
            f"What happens if {issuer} is unable to pay out?",
            (
                Paragraph(
                    f"You are exposed to the risk that {issuer} cannot meet its obligations under the note. The note "
                    "is not covered by any investor compensation or guarantee scheme; you could lose your entire "
                    "investment."
                ),
            ),
        ),
        Section("What are the costs?", costs),
        Section(
            "How long should I hold it and can I take money out early?",
            (
                Paragraph(
                    f"Recommended holding period: {_years(rhp)}, the note's maturity; it may end earlier if it is "
                    "called automatically. There is no right to redeem early; a sale before maturity depends on "
                    "secondary market liquidity and can realise much less than the amount invested."
                ),
            ),
        ),
    ]
    market_blocks = _target_market_blocks(decision, segments, rulebook)
    if market_blocks:
        sections.append(Section("Product governance", market_blocks))
    paths = kid.get("paths")
    model = kid.get("model")
    multiplier = kid.get("stressed_vol_multiplier")
    other = "Figures computed by Monte Carlo simulation"
    if paths is not None:
        other += f" with {int(paths):,} paths"
    if model is not None:
        other += f" under the {model} model"
    if multiplier is not None:
        other += f"; the stress scenario multiplies volatilities by {float(multiplier):g}"
    sections.append(Section("Other relevant information", (Paragraph(other + "."),)))
    return Document(
        title="Key information document",
        product_name=spec.name,
        structure_id=structure.structure_id,
        subtitle=f"Produced on {date}. Manufacturer: {issuer}. Structure {structure.structure_id}.",
        sections=tuple(sections),
        footer=(f"Key information document produced on {date}.",),
    )


def _vev(vev: Any) -> str:
    if vev is None:
        return " (VaR-equivalent volatility not finite)"
    return f" (VaR-equivalent volatility {_pct(float(vev), 1)})"


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(doc: Document) -> str:
    """The document as one self-contained, escaped HTML page."""
    return _environment().get_template("document.html.j2").render(doc=doc)


def latin1(text: str) -> str:
    """Text the PDF core fonts can show: typographic characters to ASCII, the rest of non-latin-1 to '?'."""
    for char, ascii_text in _LATIN1_REPLACEMENTS.items():
        text = text.replace(char, ascii_text)
    return text.encode("latin-1", errors="replace").decode("latin-1")


class _Pdf(FPDF):
    """A4 portrait with the document's footer line and page numbers on every page."""

    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._footer_text = latin1(footer_text)

    def footer(self) -> None:
        self.set_y(-16)
        self.set_font("Helvetica", size=7)
        self.set_text_color(90, 90, 90)
        self.multi_cell(0, 3.5, self._footer_text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(0, 3.5, f"Page {self.page_no()}/{{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def render_pdf(doc: Document, as_of: str) -> bytes:
    """The document as PDF bytes; the creation date is `as_of` at midnight UTC, so the bytes are reproducible."""
    date = _as_of(as_of)
    pdf = _Pdf(" ".join(doc.footer))
    pdf.set_creation_date(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC))
    pdf.set_title(latin1(f"{doc.title}: {doc.product_name}"))
    pdf.set_subject(latin1(doc.structure_id))
    pdf.set_creator("risklab")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 8, latin1(doc.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "B", 12)
    pdf.multi_cell(0, 6, latin1(doc.product_name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(0, 5, latin1(doc.subtitle), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for section in doc.sections:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 11)
        pdf.set_fill_color(236, 236, 236)
        pdf.multi_cell(0, 7, latin1(section.title), fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
        for block in section.blocks:
            _pdf_block(pdf, block)
    return bytes(pdf.output())


def _pdf_block(pdf: FPDF, block: Block) -> None:
    pdf.set_font("Helvetica", size=9)
    if isinstance(block, Paragraph):
        pdf.multi_cell(0, 4.5, latin1(block.text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
    elif isinstance(block, Notice):
        pdf.set_font("Helvetica", "B", 9)
        pdf.set_fill_color(255, 246, 214)
        pdf.multi_cell(0, 5, latin1(block.text), border=1, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
    elif isinstance(block, Facts):
        with pdf.table(col_widths=(38, 62), first_row_as_headings=False, line_height=4.5) as table:
            for label, value in block.rows:
                row = table.row()
                row.cell(latin1(label))
                row.cell(latin1(value))
        pdf.ln(1)
    elif isinstance(block, Table):
        with pdf.table(line_height=4.5) as table:
            for cells in (block.header, *block.rows):
                row = table.row()
                for cell in cells:
                    row.cell(latin1(cell))
        pdf.ln(1)
    elif isinstance(block, Bullets):
        for item in block.items:
            pdf.multi_cell(0, 4.5, latin1(f"- {item}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(0.5)
        pdf.ln(1)
    elif isinstance(block, Scale):
        width = (pdf.w - pdf.l_margin - pdf.r_margin) / block.top
        pdf.set_font("Helvetica", "B", 11)
        for n in range(1, block.top + 1):
            shade, ink = (26, 255) if n == block.value else (255, 0)
            pdf.set_fill_color(shade, shade, shade)
            pdf.set_text_color(ink, ink, ink)
            pdf.cell(width, 9, str(n), border=1, align="C", fill=True)
        pdf.set_text_color(0, 0, 0)
        pdf.ln(9)
        pdf.set_font("Helvetica", size=8)
        half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
        pdf.cell(half, 5, latin1(block.low_label))
        pdf.cell(half, 5, latin1(block.high_label), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)


def render_term_sheet(
    structure: StructureFigures,
    *,
    as_of: str,
    issuer: str = DEFAULT_ISSUER,
    min_ticket: float | None = None,
    decision: ComplianceDecision | None = None,
    segments: Sequence[ClientSegment] | None = None,
    rulebook: RulebookRef | None = None,
) -> tuple[str, bytes]:
    """The term sheet as (HTML, PDF): terms, schedule, trigger profile, coupon, barrier, pricing, risks.

    `as_of` (ISO date) is the only date in the output; `decision` (with `segments` for their labels
    and `rulebook` for its version) adds the product-governance section.
    """
    doc = term_sheet_document(
        structure,
        as_of=as_of,
        issuer=issuer,
        min_ticket=min_ticket,
        decision=decision,
        segments=segments,
        rulebook=rulebook,
    )
    return render_html(doc), render_pdf(doc, as_of)


def render_kid(
    structure: StructureFigures,
    kid: Mapping[str, Any],
    *,
    as_of: str,
    issuer: str = DEFAULT_ISSUER,
    decision: ComplianceDecision | None = None,
    segments: Sequence[ClientSegment] | None = None,
    rulebook: RulebookRef | None = None,
) -> tuple[str, bytes]:
    """The PRIIPs key information document as (HTML, PDF), from a `kid_indicators` dict.

    Sections: purpose, product, what is this product, risks (SRI scale, MRM, CRM), performance
    scenarios at the RHP, issuer default, costs (issuer margin as entry cost), holding period,
    product governance (when `decision` is given) and the simulation settings.
    """
    doc = kid_document(
        structure, kid, as_of=as_of, issuer=issuer, decision=decision, segments=segments, rulebook=rulebook
    )
    return render_html(doc), render_pdf(doc, as_of)


__all__ = [
    "DEFAULT_ISSUER",
    "Document",
    "kid_document",
    "latin1",
    "render_html",
    "render_kid",
    "render_pdf",
    "render_term_sheet",
    "term_sheet_document",
]
