"""Product-governance rules as data, and the compliance review they decide.

The compliance officer does not hold its rules in code branches: they live in a versioned JSON
rule file (the bundled one is `rules/product-governance.json`) so that a rule change is a reviewed
data change whose version and content hash every decision records (`Rulebook.ref`). Adding a rule
needs no code change as long as it speaks about the facts declared in `FACTS`.

A rule file is ``{"name": ..., "version": ..., "rules": [...]}``. Each rule has

- ``id``: a stable identifier (lower case, digits, ``.``, ``-``), unique in the file;
- ``description``: what the rule protects against, for the reader of the file;
- ``scope``: ``"product"`` (judged once per structure, on ``product.*`` facts only) or
  ``"segment"`` (judged for each client segment, on any fact);
- ``effect``: ``"block"``, ``"condition"`` or ``"warning"``;
- ``condition``: a predicate over named facts, as data: a comparison
  ``{"fact": "product.sri", "op": ">", "value": 4}`` with ``op`` one of ``==, !=, <, <=, >, >=,
  in, not_in`` and ``value`` a JSON literal (a list for ``in``/``not_in``) or another fact
  (``{"fact": "product.maturity_years"}``), combined with ``{"all": [...]}``, ``{"any": [...]}``
  and ``{"not": ...}``;
- ``message``: the text recorded when the rule fires, with facts in braces and an optional format
  spec: ``"minimum ticket is {fit.ticket_share:.0%} of the median portfolio"``;
- optionally ``reference``: the regulation or policy the rule implements.

A fact whose value is unknown (None: no KID yet, no rating given) makes an ordering comparison
and ``in``/``not_in`` false, so a rule about an unknown figure does not fire; ``==``/``!=``
compare it with the literal as given (``null`` matches an unknown fact). For a list-valued fact
(``segment.jurisdictions``) ``in`` is true when any element is in the value and ``not_in`` when
none is.

The decision (`review`): a product-scope block rejects the structure; otherwise a fired condition
or a blocked segment makes it ``approve_with_conditions``; otherwise it is approved. A segment on
which a segment-scope block fires is in the negative target market and never in the target
market; a rejected structure has no target market at all.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from bus.events.structured import ClientSegment, ComplianceDecision, FiredRule, StructureFigures
from bus.events.structured import Rulebook as RulebookRef
from engines.structured.spec import AutocallSpec

DEFAULT_RULE_FILE = Path(__file__).parent / "rules" / "product-governance.json"
"""The rule file bundled with the package (package data under src/agents)."""

DEFAULT_MIN_TICKET = 10_000.0
"""Minimum subscription in the note's currency when the caller gives none (a private-bank retail note)."""

UNRATED = frozenset({"", "NR", "WR", "N/A", "NA", "UNRATED", "NOT RATED"})
"""Rating texts that mean the issuer has no long-term rating."""

FactKind = Literal["number", "integer", "bool", "string", "list"]


@dataclass(frozen=True)
class Fact:
    """A named fact rules may speak about: its kind (for load-time checks) and meaning."""

    kind: FactKind
    description: str


FACTS: dict[str, Fact] = {
    # the product (one structure)
    "product.structure_id": Fact("string", "Identifier of the structure."),
    "product.name": Fact("string", "Name of the note."),
    "product.currency": Fact("string", "Currency of the note (ISO 4217)."),
    "product.notional": Fact("number", "Notional of the issue, in the note's currency."),
    "product.min_ticket": Fact("number", "Minimum subscription, in the note's currency."),
    "product.maturity_years": Fact("number", "Final maturity in years."),
    "product.underlyings": Fact("list", "Names of the underlyings."),
    "product.underlyings_count": Fact("integer", "Number of underlyings."),
    "product.basket": Fact("string", "worst_of, best_of or average."),
    "product.memory": Fact("bool", "Conditional coupons with memory (missed coupons paid later)."),
    "product.conditional_coupon": Fact("bool", "Coupons paid only at or above the coupon barrier."),
    "product.coupon_rate": Fact("number", "Coupon per annum, decimal."),
    "product.step_down": Fact("bool", "The autocall trigger falls over the life of the note."),
    "product.has_knock_in": Fact("bool", "The note has a capital (knock-in) barrier."),
    "product.knock_in_barrier": Fact("number", "Knock-in barrier as a performance; unknown without one."),
    "product.barrier_monitoring": Fact("string", "european, daily or continuous; unknown without a barrier."),
    "product.continuous_barrier": Fact("bool", "The knock-in barrier is monitored daily or continuously."),
    "product.capital_protection": Fact("number", "Minimum redemption, fraction of notional."),
    "product.capital_at_risk": Fact("bool", "Capital protection below 100%: the client can lose capital."),
    "product.downside_buffer": Fact("number", "Loss below the strike absorbed by the issuer, fraction."),
    "product.complex_features": Fact("string", "The features that make the note complex, in words."),
    "product.issuer_margin": Fact("number", "1 - price: what the issuer keeps, fraction of notional."),
    "product.autocall_probability": Fact("number", "Probability of an early redemption."),
    "product.expected_life_years": Fact("number", "Expected life in years."),
    "product.knock_in_probability": Fact("number", "Probability that the barrier is breached."),
    "product.capital_loss_probability": Fact("number", "Probability that the client loses capital."),
    "product.irr_mean": Fact("number", "Mean client IRR per annum."),
    "product.has_kid": Fact("bool", "PRIIPs indicators were computed for the note."),
    "product.sri": Fact("integer", "PRIIPs summary risk indicator 1-7; unknown without a KID."),
    "product.mrm": Fact("integer", "PRIIPs market risk measure 1-7; unknown without a KID."),
    "product.crm": Fact("integer", "PRIIPs credit risk measure 1-6; unknown without a KID."),
    "product.vev": Fact("number", "VaR-equivalent volatility; unknown without a KID or when infinite."),
    "product.rhp_years": Fact("number", "Recommended holding period in years; unknown without a KID."),
    "product.stress_return": Fact("number", "Stress scenario's average return per year at the RHP."),
    "product.unfavourable_return": Fact("number", "Unfavourable scenario's average return per year at the RHP."),
    "product.issuer_rating": Fact("string", "Issuer's long-term rating as given; unknown if not given."),
    "product.issuer_rated": Fact("bool", "The issuer has a long-term rating; unknown if none was given."),
    # the client segment
    "segment.segment_id": Fact("string", "Identifier of the segment."),
    "segment.label": Fact("string", "Label of the segment."),
    "segment.size": Fact("integer", "Number of clients in the segment."),
    "segment.risk_tolerance": Fact("string", "low, medium, high or very_high."),
    "segment.horizon_years": Fact("number", "Investment horizon in years."),
    "segment.sophistication": Fact("string", "Knowledge and experience, e.g. basic, informed, advanced."),
    "segment.median_portfolio": Fact("number", "Median portfolio size, in the note's currency."),
    "segment.jurisdictions": Fact("list", "Jurisdictions of the segment's clients."),
    # the product for the segment
    "fit.ticket_share": Fact("number", "Minimum ticket / median portfolio; unknown for an empty portfolio."),
}
"""Every fact a rule may name. Adding a fact is a code change; adding a rule over these is not."""

SCOPES = ("product", "segment")
EFFECTS = ("block", "condition", "warning")
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
ORDERING = frozenset({"<", "<=", ">", ">="})
MEMBERSHIP = frozenset({"in", "not_in"})
OPS = frozenset(COMPARISONS) | MEMBERSHIP

_RULE_FIELDS = frozenset({"id", "description", "scope", "effect", "condition", "message", "reference"})
_RULE_REQUIRED = ("id", "description", "scope", "effect", "condition", "message")
_FILE_FIELDS = frozenset({"name", "version", "description", "rules"})
_ID = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,99}$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+\.[a-z_]+)(?::([^{}]*))?\}")
_SAMPLE: dict[str, Any] = {"number": 0.5, "integer": 3, "bool": True, "string": "x", "list": ["x"]}
_NUMERIC = frozenset({"number", "integer"})


class RulebookError(ValueError):
    """A rule file that cannot be used; the message names the file, the rule id and the field."""


# ---------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """``fact op value``; `value_fact` names the fact compared with when the value is a fact."""

    fact: str
    op: str
    value: Any = None
    value_fact: str | None = None

    def holds(self, facts: Mapping[str, Any]) -> bool:
        """Whether the comparison holds on these facts (unknown facts: see the module docstring)."""
        left = facts[self.fact]
        right = facts[self.value_fact] if self.value_fact is not None else self.value
        if self.op in MEMBERSHIP:
            if left is None:
                return False
            items = left if isinstance(left, list) else [left]
            found = any(item in right for item in items)
            return found if self.op == "in" else not found
        if self.op in ORDERING and (left is None or right is None):
            return False
        return COMPARISONS[self.op](left, right)


@dataclass(frozen=True)
class Combination:
    """``all`` / ``any`` of its parts, or ``not`` of its single part."""

    kind: Literal["all", "any", "not"]
    parts: tuple[Condition, ...]

    def holds(self, facts: Mapping[str, Any]) -> bool:
        """Whether the combination holds on these facts."""
        if self.kind == "all":
            return all(p.holds(facts) for p in self.parts)
        if self.kind == "any":
            return any(p.holds(facts) for p in self.parts)
        return not self.parts[0].holds(facts)


Condition = Comparison | Combination


@dataclass(frozen=True)
class Rule:
    """One product-governance rule, parsed and checked against the declared facts."""

    id: str
    description: str
    scope: Literal["product", "segment"]
    effect: Literal["block", "condition", "warning"]
    condition: Condition
    message: str
    reference: str | None = None

    def fires(self, facts: Mapping[str, Any]) -> bool:
        """Whether the rule's condition holds on these facts."""
        return self.condition.holds(facts)

    def render(self, facts: Mapping[str, Any]) -> str:
        """The message with its facts filled in (an unknown fact reads "n/a")."""

        def fill(match: re.Match[str]) -> str:
            value = facts[match.group(1)]
            if value is None:
                return "n/a"
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            return format(value, match.group(2) or "")

        return _PLACEHOLDER.sub(fill, self.message)


# ---------------------------------------------------------------------------------------------
# Loading and checking a rule file
# ---------------------------------------------------------------------------------------------


class _Checker:
    """Parses one rule's parts, raising `RulebookError` that name the file, rule and field."""

    def __init__(self, source: str, rule_id: str, scope: str) -> None:
        self.source = source
        self.rule_id = rule_id
        self.scope = scope

    def error(self, field: str, problem: str) -> RulebookError:
        return RulebookError(f"{self.source}: rule {self.rule_id!r}: {field}: {problem}")

    def fact(self, field: str, name: Any) -> Fact:
        if not isinstance(name, str) or name not in FACTS:
            known = ", ".join(sorted(FACTS))
            raise self.error(field, f"unknown fact {name!r}; declared facts: {known}")
        if self.scope == "product" and not name.startswith("product."):
            raise self.error(field, f"fact {name!r} is not a product fact; a product-scope rule sees product.* only")
        return FACTS[name]

    def condition(self, field: str, raw: Any) -> Condition:
        if not isinstance(raw, dict):
            raise self.error(field, f"must be an object, got {raw!r}")
        combinators = [k for k in ("all", "any", "not") if k in raw]
        if combinators:
            kind = combinators[0]
            if len(raw) != 1:
                raise self.error(field, f"a {kind!r} combination takes no other keys, got {sorted(raw)}")
            if kind == "not":
                return Combination("not", (self.condition(f"{field}.not", raw["not"]),))
            parts = raw[kind]
            if not isinstance(parts, list) or not parts:
                raise self.error(f"{field}.{kind}", "must be a non-empty list of conditions")
            return Combination(kind, tuple(self.condition(f"{field}.{kind}[{i}]", p) for i, p in enumerate(parts)))
        if set(raw) != {"fact", "op", "value"}:
            raise self.error(
                field, f'must be {{"all"|"any"|"not": ...}} or {{"fact", "op", "value"}}, got {sorted(raw)}'
            )
        fact = self.fact(f"{field}.fact", raw["fact"])
        op = raw["op"]
        if op not in OPS:
            raise self.error(f"{field}.op", f"unknown op {op!r}; ops: {', '.join(sorted(OPS))}")
        value = raw["value"]
        if isinstance(value, dict):
            if set(value) != {"fact"}:
                raise self.error(f"{field}.value", f'an object value must be {{"fact": name}}, got {sorted(value)}')
            other = self.fact(f"{field}.value.fact", value["fact"])
            if op in MEMBERSHIP:
                raise self.error(f"{field}.value", f"{op!r} needs a list of literals, not a fact")
            if op in ORDERING and not (fact.kind in _NUMERIC and other.kind in _NUMERIC):
                raise self.error(f"{field}.op", f"{op!r} compares numbers; {raw['fact']!r} is a {fact.kind}")
            return Comparison(raw["fact"], op, value_fact=value["fact"])
        if op in MEMBERSHIP:
            if not isinstance(value, list) or not value or any(isinstance(v, list | dict) for v in value):
                raise self.error(f"{field}.value", f"{op!r} needs a non-empty list of literals, got {value!r}")
            return Comparison(raw["fact"], op, tuple(value))
        if isinstance(value, list):
            raise self.error(f"{field}.value", f"{op!r} compares with one literal, got a list; use 'in'")
        if op in ORDERING:
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if fact.kind not in _NUMERIC:
                raise self.error(f"{field}.op", f"{op!r} compares numbers; {raw['fact']!r} is a {fact.kind}")
            if not numeric or not math.isfinite(value):
                raise self.error(f"{field}.value", f"{op!r} needs a finite number, got {value!r}")
        elif fact.kind == "bool" and value is not None and not isinstance(value, bool):
            raise self.error(f"{field}.value", f"{raw['fact']!r} is true/false, got {value!r}")
        return Comparison(raw["fact"], op, value)

    def message(self, raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.error("message", "must be a non-empty string")
        stripped = _PLACEHOLDER.sub("", raw)
        if "{" in stripped or "}" in stripped:
            raise self.error("message", "braces must enclose a fact name, e.g. {product.sri} or {fit.ticket_share:.0%}")
        for match in _PLACEHOLDER.finditer(raw):
            fact = self.fact("message", match.group(1))
            try:
                format(_SAMPLE[fact.kind], match.group(2) or "")
            except (ValueError, TypeError) as exc:
                raise self.error("message", f"format {match.group(0)!r} does not suit a {fact.kind}: {exc}") from None
        return raw


def _text(source: str, where: str, field: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise RulebookError(f"{source}: {where}{field}: must be a non-empty string, got {raw!r}")
    return raw


def _rule(source: str, index: int, raw: Any, seen: set[str]) -> Rule:
    if not isinstance(raw, dict):
        raise RulebookError(f"{source}: rules[{index}]: must be an object, got {raw!r}")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise RulebookError(
            f"{source}: rules[{index}]: id: must match {_ID.pattern} (lower case, digits, '.', '-'), got {rule_id!r}"
        )
    if rule_id in seen:
        raise RulebookError(f"{source}: rule {rule_id!r}: id: appears more than once")
    seen.add(rule_id)
    where = f"rule {rule_id!r}: "
    for field in _RULE_REQUIRED:
        if field not in raw:
            raise RulebookError(f"{source}: {where}{field}: missing")
    unknown = sorted(set(raw) - _RULE_FIELDS)
    if unknown:
        raise RulebookError(f"{source}: {where}{unknown[0]}: unknown field; fields: {', '.join(sorted(_RULE_FIELDS))}")
    scope, effect = raw["scope"], raw["effect"]
    if scope not in SCOPES:
        raise RulebookError(f"{source}: {where}scope: must be one of {SCOPES}, got {scope!r}")
    if effect not in EFFECTS:
        raise RulebookError(f"{source}: {where}effect: must be one of {EFFECTS}, got {effect!r}")
    reference = raw.get("reference")
    if reference is not None:
        _text(source, where, "reference", reference)
    checker = _Checker(source, rule_id, scope)
    return Rule(
        id=rule_id,
        description=_text(source, where, "description", raw["description"]),
        scope=scope,
        effect=effect,
        condition=checker.condition("condition", raw["condition"]),
        message=checker.message(raw["message"]),
        reference=reference,
    )


@dataclass(frozen=True)
class Rulebook:
    """A loaded, checked rule file: its rules in file order and the reference decisions record."""

    name: str
    version: str
    sha256: str
    rules: tuple[Rule, ...]
    source: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> Rulebook:
        """Read and check a rule file (the bundled one by default); errors name the rule and field."""
        file = Path(path) if path is not None else DEFAULT_RULE_FILE
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise RulebookError(f"{file}: cannot read the rule file: {exc}") from None
        return cls.parse(data, source=str(file))

    @classmethod
    def parse(cls, data: bytes, source: str = "<rules>") -> Rulebook:
        """Check rule-file bytes; the SHA-256 is of exactly these bytes."""
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RulebookError(f"{source}: not a JSON document: {exc}") from None
        if not isinstance(doc, dict):
            raise RulebookError(f"{source}: must be a JSON object with name, version and rules")
        unknown = sorted(set(doc) - _FILE_FIELDS)
        if unknown:
            raise RulebookError(f"{source}: {unknown[0]}: unknown field; fields: {', '.join(sorted(_FILE_FIELDS))}")
        for field in ("name", "version", "rules"):
            if field not in doc:
                raise RulebookError(f"{source}: {field}: missing")
        name = _text(source, "", "name", doc["name"])
        version = _text(source, "", "version", doc["version"])
        raw_rules = doc["rules"]
        if not isinstance(raw_rules, list) or not raw_rules:
            raise RulebookError(f"{source}: rules: must be a non-empty list")
        seen: set[str] = set()
        rules = tuple(_rule(source, i, raw, seen) for i, raw in enumerate(raw_rules))
        return cls(name=name, version=version, sha256=hashlib.sha256(data).hexdigest(), rules=rules, source=source)

    @property
    def ref(self) -> RulebookRef:
        """Name, version and content hash, as recorded in `ComplianceReviewed`."""
        return RulebookRef(name=self.name, version=self.version, sha256=self.sha256)

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id!r} in {self.name} {self.version}")


@cache
def bundled_rulebook() -> Rulebook:
    """The bundled rule file, loaded once per process."""
    return Rulebook.load()


# ---------------------------------------------------------------------------------------------
# Facts
# ---------------------------------------------------------------------------------------------


def _rhp_period(kid: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The performance scenarios at the recommended holding period (the last period shown otherwise)."""
    periods = (kid.get("performance_scenarios") or {}).get("periods") or []
    rhp = kid.get("rhp_years")
    for period in periods:
        if rhp is not None and abs(float(period["holding_period_years"]) - float(rhp)) <= 1e-9:
            return period
    return periods[-1] if periods else None


def complex_features(spec: AutocallSpec) -> list[str]:
    """The features that make a note complex for a retail client, in words (empty: none)."""
    features = []
    if spec.coupon.conditional and spec.coupon.memory:
        features.append("memory coupon")
    if spec.basket == "worst_of" and len(spec.underlyings) > 1:
        features.append(f"worst-of basket of {len(spec.underlyings)}")
    if _steps_down(spec):
        features.append("step-down autocall triggers")
    if spec.knock_in is not None and spec.knock_in.monitoring != "european":
        features.append(f"{spec.knock_in.monitoring} barrier monitoring")
    return features


def _steps_down(spec: AutocallSpec) -> bool:
    callable_triggers = [t for t in spec.triggers().tolist() if math.isfinite(t)]
    return any(b < a - 1e-12 for a, b in pairwise(callable_triggers))


def product_facts(
    structure: StructureFigures,
    kid: Mapping[str, Any] | None,
    *,
    issuer_rating: str | None = None,
    min_ticket: float | None = None,
) -> dict[str, Any]:
    """The ``product.*`` facts of one structure and its PRIIPs indicators (None: not computed).

    The issuer rating is `issuer_rating` when given, else the one the KID was computed with.
    """
    spec = AutocallSpec.model_validate(structure.spec)
    ki = spec.knock_in
    market = (kid or {}).get("market_risk") or {}
    credit = (kid or {}).get("credit_risk") or {}
    period = _rhp_period(kid) if kid else None
    rating = issuer_rating if issuer_rating is not None else credit.get("rating")
    features = complex_features(spec)
    return {
        "product.structure_id": structure.structure_id,
        "product.name": spec.name,
        "product.currency": spec.currency,
        "product.notional": spec.notional,
        "product.min_ticket": float(min_ticket if min_ticket is not None else DEFAULT_MIN_TICKET),
        "product.maturity_years": spec.maturity_years,
        "product.underlyings": list(spec.underlyings),
        "product.underlyings_count": len(spec.underlyings),
        "product.basket": spec.basket,
        "product.memory": spec.coupon.conditional and spec.coupon.memory,
        "product.conditional_coupon": spec.coupon.conditional,
        "product.coupon_rate": spec.coupon.rate,
        "product.step_down": _steps_down(spec),
        "product.has_knock_in": ki is not None,
        "product.knock_in_barrier": ki.barrier if ki is not None else None,
        "product.barrier_monitoring": ki.monitoring if ki is not None else None,
        "product.continuous_barrier": ki is not None and ki.monitoring != "european",
        "product.capital_protection": spec.capital_protection,
        "product.capital_at_risk": spec.capital_protection < 1.0,
        "product.downside_buffer": spec.downside_buffer,
        "product.complex_features": ", ".join(features) if features else "none",
        "product.issuer_margin": structure.issuer_margin,
        "product.autocall_probability": structure.autocall_probability,
        "product.expected_life_years": structure.expected_life_years,
        "product.knock_in_probability": structure.knock_in_probability,
        "product.capital_loss_probability": structure.capital_loss_probability,
        "product.irr_mean": structure.irr_mean,
        "product.has_kid": kid is not None,
        "product.sri": kid.get("sri") if kid else None,
        "product.mrm": market.get("mrm"),
        "product.crm": credit.get("crm"),
        "product.vev": market.get("vev"),
        "product.rhp_years": kid.get("rhp_years") if kid else None,
        "product.stress_return": period["stress"]["average_return_per_year"] if period else None,
        "product.unfavourable_return": period["unfavourable"]["average_return_per_year"] if period else None,
        "product.issuer_rating": rating,
        "product.issuer_rated": None if rating is None else rating.strip().upper() not in UNRATED,
    }


def segment_facts(segment: ClientSegment, product: Mapping[str, Any]) -> dict[str, Any]:
    """The ``segment.*`` facts of one segment and the ``fit.*`` facts of the product for it."""
    median = segment.median_portfolio
    return {
        "segment.segment_id": segment.segment_id,
        "segment.label": segment.label,
        "segment.size": segment.size,
        "segment.risk_tolerance": segment.risk_tolerance,
        "segment.horizon_years": segment.horizon_years,
        "segment.sophistication": segment.sophistication,
        "segment.median_portfolio": median,
        "segment.jurisdictions": list(segment.jurisdictions),
        "fit.ticket_share": product["product.min_ticket"] / median if median > 0 else None,
    }


def facts_for(
    structure: StructureFigures,
    kid: Mapping[str, Any] | None,
    segment: ClientSegment,
    *,
    issuer_rating: str | None = None,
    min_ticket: float | None = None,
) -> dict[str, Any]:
    """Every declared fact of one structure for one segment: product.*, segment.* and fit.*."""
    product = product_facts(structure, kid, issuer_rating=issuer_rating, min_ticket=min_ticket)
    return {**product, **segment_facts(segment, product)}


# ---------------------------------------------------------------------------------------------
# The review
# ---------------------------------------------------------------------------------------------


def _fired(rule: Rule, facts: Mapping[str, Any], segment_id: str | None) -> FiredRule:
    return FiredRule(rule_id=rule.id, effect=rule.effect, message=rule.render(facts), segment_id=segment_id)


def review(
    structure: StructureFigures,
    kid: Mapping[str, Any] | None,
    segments: Sequence[ClientSegment],
    rulebook: Rulebook | None = None,
    *,
    issuer_rating: str | None = None,
    min_ticket: float | None = None,
) -> ComplianceDecision:
    """Judge one structure under `rulebook` (the bundled one by default) for every segment.

    Product-scope rules are judged once, segment-scope rules once per segment, both in file order;
    every rule that fires is listed (with its segment for segment-scope rules). Conditions are the
    messages of the conditions that fired on the product or on a segment still in the target
    market, without repeats. The decision carries no documents; the caller renders and stores them.
    """
    book = rulebook if rulebook is not None else bundled_rulebook()
    product = product_facts(structure, kid, issuer_rating=issuer_rating, min_ticket=min_ticket)
    fired: list[FiredRule] = []
    conditions: list[str] = []
    rejected = False
    for rule in book.rules:
        if rule.scope == "product" and rule.fires(product):
            hit = _fired(rule, product, None)
            fired.append(hit)
            rejected |= rule.effect == "block"
            if rule.effect == "condition":
                conditions.append(hit.message)
    blocked: list[str] = []
    allowed: list[str] = []
    for segment in segments:
        facts = {**product, **segment_facts(segment, product)}
        hits = [
            _fired(rule, facts, segment.segment_id)
            for rule in book.rules
            if rule.scope == "segment" and rule.fires(facts)
        ]
        fired.extend(hits)
        if any(h.effect == "block" for h in hits):
            blocked.append(segment.segment_id)
        else:
            allowed.append(segment.segment_id)
            conditions.extend(h.message for h in hits if h.effect == "condition")
    if rejected:
        decision = "reject"
        allowed = []
    elif conditions or blocked:
        decision = "approve_with_conditions"
    else:
        decision = "approve"
    return ComplianceDecision(
        structure_id=structure.structure_id,
        decision=decision,
        rules_fired=fired,
        conditions=list(dict.fromkeys(conditions)),
        negative_target_market=blocked,
        target_market=allowed,
        kid=dict(kid) if kid is not None else None,
    )


__all__ = [
    "DEFAULT_MIN_TICKET",
    "DEFAULT_RULE_FILE",
    "FACTS",
    "Fact",
    "Rule",
    "Rulebook",
    "RulebookError",
    "bundled_rulebook",
    "complex_features",
    "facts_for",
    "product_facts",
    "review",
    "segment_facts",
]
