"""The SIMM figure and its breakdown: by product class, risk class, margin type and bucket.

SIMM adds margin types within a risk class, aggregates risk classes within a product class with the
risk-class correlations ψ, and sums product classes (and add-ons) into the total. The breakdown keeps
every level, so a reader can see where the margin comes from, and `rows()` flattens it into the
(product class, risk class, margin type, bucket) table that SIMM reports (and ORE writes), with
"All" for an aggregated level.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MARGIN_TYPES = ("Delta", "Vega", "Curvature", "BaseCorr")
RISK_CLASSES = ("InterestRate", "CreditQualifying", "CreditNonQualifying", "Equity", "Commodity", "FX")
ALL = "All"

Side = Literal["call", "post"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskClassMargin(_Model):
    """One risk class within one product class."""

    margin_usd: float = Field(description="Delta + vega + curvature + base-correlation margin.")
    margin_types_usd: dict[str, float] = Field(description="Margin by type: Delta, Vega, Curvature, BaseCorr.")
    buckets_usd: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="By margin type, the margin of each bucket (currency for interest rates and FX) before "
        "aggregation across buckets; curvature buckets are before θ/λ and the interest-rate scaling, except Residual.",
    )


class ProductClassMargin(_Model):
    """One product class: RatesFX, Credit, Equity or Commodity."""

    margin_usd: float = Field(description="SIMM of the product class, its multiplier add-on included.")
    additional_usd: float = Field(0.0, description="Add-on from a Param_ProductClassMultiplier record: (m − 1)·SIMM.")
    margin_types_usd: dict[str, float] = Field(description="Each margin type aggregated across risk classes with ψ.")
    risk_classes: dict[str, RiskClassMargin]


class SimmResult(_Model):
    """The initial margin of one netting set under SIMM, in USD, with its breakdown."""

    version: str = Field(description="SIMM version of the parameters used.")
    side: Side = Field(description="call: margin to collect (sensitivities as given); post: to post (negated).")
    calculation_currency: str = Field(description="Risk_FX sensitivities to this currency are left out.")
    total_usd: float = Field(description="Σ of product classes plus add-ons.")
    product_classes: dict[str, ProductClassMargin] = Field(default_factory=dict)
    add_ons_usd: dict[str, float] = Field(
        default_factory=dict, description="AddOnFixedAmount and AddOnNotionalFactor add-ons (outside product classes)."
    )
    records_used: int = Field(0, description="CRIF records that entered the calculation.")
    records_ignored: dict[str, int] = Field(default_factory=dict, description="Records left out, by reason.")

    @property
    def risk_classes_usd(self) -> dict[str, float]:
        """Each risk class summed over product classes."""
        out: dict[str, float] = {}
        for pc in self.product_classes.values():
            for rc, m in pc.risk_classes.items():
                out[rc] = out.get(rc, 0.0) + m.margin_usd
        return out

    @property
    def margin_types_usd(self) -> dict[str, float]:
        """Each margin type summed over product classes (after aggregation across risk classes)."""
        out: dict[str, float] = {}
        for pc in self.product_classes.values():
            for mt, v in pc.margin_types_usd.items():
                out[mt] = out.get(mt, 0.0) + v
        if self.add_ons_usd or any(pc.additional_usd for pc in self.product_classes.values()):
            out["AdditionalIM"] = sum(self.add_ons_usd.values()) + sum(
                pc.additional_usd for pc in self.product_classes.values()
            )
        return out

    def rows(self) -> list[tuple[str, str, str, str, float]]:
        """(product class, risk class, margin type, bucket, USD) at every level, "All" where aggregated."""
        rows: list[tuple[str, str, str, str, float]] = []
        for pc_name, pc in self.product_classes.items():
            for rc_name, rc in pc.risk_classes.items():
                for mt, value in rc.margin_types_usd.items():
                    rows.append((pc_name, rc_name, mt, ALL, value))
                    for bucket, bucket_value in rc.buckets_usd.get(mt, {}).items():
                        rows.append((pc_name, rc_name, mt, bucket, bucket_value))
                rows.append((pc_name, rc_name, ALL, ALL, rc.margin_usd))
            for mt, value in pc.margin_types_usd.items():
                rows.append((pc_name, ALL, mt, ALL, value))
            if pc.additional_usd:
                rows.append((pc_name, ALL, "AdditionalIM", ALL, pc.additional_usd))
            rows.append((pc_name, ALL, ALL, ALL, pc.margin_usd))
        for name, value in self.add_ons_usd.items():
            rows.append((name, ALL, "AdditionalIM", ALL, value))
            rows.append((name, ALL, ALL, ALL, value))
        for rc_name, value in self.risk_classes_usd.items():
            rows.append((ALL, rc_name, ALL, ALL, value))
            for mt in MARGIN_TYPES:
                parts = [pc.risk_classes[rc_name].margin_types_usd[mt] for pc in self.product_classes.values()
                         if rc_name in pc.risk_classes and mt in pc.risk_classes[rc_name].margin_types_usd]  # fmt: skip
                if parts:
                    rows.append((ALL, rc_name, mt, ALL, sum(parts)))
        for mt, value in self.margin_types_usd.items():
            rows.append((ALL, ALL, mt, ALL, value))
        rows.append((ALL, ALL, ALL, ALL, self.total_usd))
        return rows

    @staticmethod
    def empty(version: str, side: Side, calculation_currency: str) -> SimmResult:
        return SimmResult(version=version, side=side, calculation_currency=calculation_currency, total_usd=0.0)
