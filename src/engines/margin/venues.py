"""Where margin is called: CCPs with their margin-model parameters, bilateral counterparties with
their CSA terms, and the fund's own liquidity resources that pay the calls.

These are boundary models (published in schemas/ as documents); the kernels read them as given.
Money is USD, fractions are decimals, durations are in the unit their name says.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Money = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConcentrationAddOn(Frozen):
    """A charge for positions large against their market's depth, growing faster than linearly.

    For each factor the venue's net position notional ``n`` is compared with the factor's daily depth
    ``d``: above ``threshold_days`` of depth the add-on is
    ``coefficient · σ_f · n · ((n/d − threshold_days)⁺)^exponent`` (σ_f the factor's daily volatility),
    so a position twice as large pays more than twice the add-on.
    """

    threshold_days: float = Field(0.2, ge=0.0, description="Depth-days a position may hold before paying.")
    coefficient: float = Field(0.5, ge=0.0, description="Scale of the charge.")
    exponent: float = Field(1.5, ge=1.0, le=3.0, description="Growth with size beyond the threshold (>1: non-linear).")


class LiquidityAddOn(Frozen):
    """The cost of closing out the venue's portfolio: a bid-ask spread charge on gross notional by asset class."""

    spread_bp: dict[Literal["rates", "fx", "equity", "credit", "commodity"], float] = Field(
        default_factory=lambda: {"rates": 0.5, "fx": 1.0, "equity": 5.0, "credit": 5.0, "commodity": 8.0},
        description="Half bid-ask spread charged on gross notional, in basis points, by asset class.",
    )


class CcpMarginModel(Frozen):
    """A CCP's initial-margin model: filtered historical simulation with an anti-procyclicality tool.

    EMIR RTS Article 28(1) gives a CCP three anti-procyclicality options; `apc` selects one:
    ``buffer`` (a buffer of at least 25% on the margin, released in stress: (a)), ``stressed_weight``
    (at least 25% weight on stressed observations of the lookback: (b)), ``ten_year_floor`` (margin no
    lower than with a 10-year lookback: (c)), or ``none``.
    """

    measure: Literal["var", "es"] = "es"
    confidence: float = Field(0.99, gt=0.5, lt=1.0)
    mpor_days: int = Field(2, ge=1, le=10, description="Margin period of risk in business days.")
    lookback_days: int = Field(750, ge=250, le=2520, description="Historical observations used (business days).")
    ewma_decay: float = Field(0.97, gt=0.0, lt=1.0, description="Decay of the volatility filter of the FHS.")
    apc: Literal["buffer", "stressed_weight", "ten_year_floor", "none"] = "buffer"
    apc_buffer: Fraction = Field(0.25, description="Buffer for apc='buffer' (EMIR: at least 25%).")
    apc_stressed_weight: Fraction = Field(0.25, description="Weight for apc='stressed_weight' (EMIR: at least 25%).")
    concentration: ConcentrationAddOn = ConcentrationAddOn()
    liquidity: LiquidityAddOn = LiquidityAddOn()
    intraday_call_hours: tuple[int, ...] = Field(
        (11, 14), description="Hours of the business day (0-23, venue time) at which intraday calls may be made."
    )
    intraday_call_threshold: Fraction = Field(
        0.1, description="An intraday call is made when the requirement has risen by this fraction of it."
    )
    end_of_day_hour: int = Field(17, ge=0, le=23)
    payment_delay_hours: int = Field(1, ge=0, le=24, description="Hours the fund has to pay a call.")

    @model_validator(mode="after")
    def _hours(self) -> CcpMarginModel:
        for h in self.intraday_call_hours:
            if not 0 <= h <= 23 or h >= self.end_of_day_hour:
                raise ValueError(f"intraday_call_hours: {h} must be an hour of the day before end_of_day_hour")
        return self


class Ccp(Frozen):
    """A clearing house the fund clears through."""

    kind: Literal["ccp"] = "ccp"
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    region: str = Field(min_length=2, description="EU, US, UK, APAC, ...")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="Currency its calls are paid in.")
    margin_model: CcpMarginModel = CcpMarginModel()


class EligibleCollateral(Frozen):
    asset: str = Field(min_length=1, description="cash-USD, cash-EUR, govt-US, govt-DE, ...")
    haircut: Fraction


class CsaTerms(Frozen):
    """The credit support annex of a bilateral relationship."""

    threshold_usd: Money = 0.0
    minimum_transfer_amount_usd: Money = 500_000.0
    independent_amount_usd: Money = 0.0
    rounding_usd: Money = Field(10_000.0, description="Calls are rounded up to a multiple of this (0: none).")
    mpor_days: int = Field(10, ge=1, le=40)
    call_timing: Literal["same_day", "next_day"] = "next_day"
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    eligible_collateral: tuple[EligibleCollateral, ...] = (EligibleCollateral(asset="cash-USD", haircut=0.0),)
    initial_margin: Literal["simm", "none"] = Field("simm", description="Regulatory IM under SIMM, or none.")


class BilateralCounterparty(Frozen):
    """A dealer the fund trades uncleared derivatives with, under a CSA."""

    kind: Literal["bilateral"] = "bilateral"
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    region: str = Field(min_length=2)
    csa: CsaTerms = CsaTerms()


Venue = Annotated[Ccp | BilateralCounterparty, Field(discriminator="kind")]


class CreditFacility(Frozen):
    """A committed credit line the treasury may draw to pay margin."""

    limit_usd: Money
    notice_hours: int = Field(24, ge=0, le=240, description="Hours between a drawdown request and the cash.")
    max_draw_per_day_usd: Money = Field(description="Drawdown restriction: at most this much per business day.")


class LiquidityResources(Frozen):
    """What pays margin calls, in the waterfall's order: cash, then the facility, then forced sales."""

    cash_usd: dict[str, Money] = Field(description="Unencumbered cash by currency, in USD.")
    operational_buffer_usd: Money = Field(0.0, description="Cash kept back for operations, never used for margin.")
    facility: CreditFacility

    @property
    def usable_cash_usd(self) -> float:
        return max(sum(self.cash_usd.values()) - self.operational_buffer_usd, 0.0)
