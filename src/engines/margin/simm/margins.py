"""SIMM's margin formulas for one risk class of one product class: delta, vega and curvature margins
from netted sensitivities, bucket by bucket, then across buckets.

Notation follows the ISDA SIMM Methodology (version 2.6, section B): weighted sensitivity
``WS_k = RW_k·s_k·CR_k``; bucket margin ``K_b = √(Σ_k Σ_l ρ_kl·f_kl·WS_k·WS_l)`` with ``f_kl =
min(CR_k, CR_l)/max(CR_k, CR_l)``; across buckets ``√(Σ_b K_b² + Σ_{b≠c} γ_bc·g_bc·S_b·S_c)`` with
``S_b = max(min(Σ_k WS_k, K_b), −K_b)``; the Residual bucket is added outside the square root.
Curvature uses ``CVR_k = SF(t)·σ·vega`` with squared correlations, ``θ = min(ΣCVR/Σ|CVR|, 0)``,
``λ = (Φ⁻¹(99.5%)² − 1)(1 + θ) − θ`` and ``max(ΣCVR + λ·√(...), 0)``; for interest rates it is
scaled by ``HVR_IR⁻²``. Where the document leaves a choice open, the choices are those of the Open
Source Risk Engine's SIMM calculator, so that the two agree to rounding on the same CRIF:
concentration factors of vega also enter ``f_kl``, the curvature θ of equity, commodity and FX
nets the CVRs of one qualifier before taking absolute values, and equity bucket 12 (volatility
indices) has no curvature.

Each function returns ``(margin, bucket_margins)``: the margin in USD and a breakdown by bucket
(by currency for interest rates and FX), as defined in `BucketMargins`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from engines.margin.simm.parameters import (
    CreditParameters,
    EquityCommodityParameters,
    SimmParameters,
)

MILLION: Final = 1e6
RESIDUAL: Final = "Residual"

BucketMargins = dict[str, float]
"""Per bucket: the bucket margin K_b (interest rates: per currency; curvature: before θ/λ and the
interest-rate scaling, except the Residual bucket which is after λ); for FX, |Σ WS| per currency or pair."""


class SimmInputError(ValueError):
    """A sensitivity SIMM cannot place (unknown tenor, bucket, currency).

    `where` is the record's origin (``trades.csv line 12``, ``crif[3]``), `column` the CRIF column at
    fault and `reason` why; the message is ``<where>: <column>: <reason>``.
    """

    def __init__(self, where: str, column: str, reason: str) -> None:
        self.where, self.column, self.reason = where, column, reason
        super().__init__(f"{where}: {column}: {reason}")


@dataclass(frozen=True, eq=False)
class Factors:
    """Netted sensitivities of one risk type: one entry per risk factor (qualifier, bucket, labels)."""

    qualifier: np.ndarray  # str [n]
    bucket: np.ndarray  # str [n]
    label1: np.ndarray  # str [n]
    label2: np.ndarray  # str [n]
    amount: np.ndarray  # float64 [n], USD for the shift of the risk type
    where: tuple[str, ...]  # where each factor's first record came from

    def __len__(self) -> int:
        return len(self.amount)

    @staticmethod
    def empty() -> Factors:
        e = np.array([], dtype=str)
        return Factors(e, e, e, e, np.zeros(0), ())


def _bad(factors: Factors, i: int, column: str, reason: str) -> SimmInputError:
    return SimmInputError(factors.where[i], column, reason)


def _quadratic(ws: np.ndarray, rho: np.ndarray) -> float:
    return math.sqrt(max(float(ws @ rho @ ws), 0.0))


def _across(k: np.ndarray, s: np.ndarray, gamma: np.ndarray) -> float:
    """√(Σ K_b² + Σ_{b≠c} γ_bc S_b S_c), γ with a zero diagonal."""
    return math.sqrt(max(float(k @ k + s @ gamma @ s), 0.0))


def _clip(total: float, k: float) -> float:
    return max(min(total, k), -k)


def _tenor_index(factors: Factors, tenors: tuple[str, ...], what: str) -> np.ndarray:
    index = {t: i for i, t in enumerate(tenors)}
    out = np.empty(len(factors), dtype=np.int64)
    for i, label in enumerate(factors.label1):
        j = index.get(str(label))
        if j is None:
            raise _bad(factors, i, "Label1", f"{str(label)!r} is not a {what} tenor ({', '.join(tenors)})")
        out[i] = j
    return out


def _check_currency(factors: Factors, length: int = 3) -> None:
    for i, q in enumerate(factors.qualifier):
        if len(q) != length or not str(q).isalpha():
            what = "a currency code such as EUR" if length == 3 else "a currency pair such as EURUSD"
            raise _bad(factors, i, "Qualifier", f"{str(q)!r} is not {what}")


def _currency_order(*sets: Factors) -> list[str]:
    return sorted({str(q) for f in sets for q in f.qualifier})


def _lambda(theta: float, base: float) -> float:
    return base * (1.0 + theta) - theta


# ---------------------------------------------------------------------------------------------
# Interest rate: one bucket per currency
# ---------------------------------------------------------------------------------------------


def ir_delta(curve: Factors, inflation: Factors, xccy: Factors, p: SimmParameters) -> tuple[float, BucketMargins]:
    """Interest-rate delta margin: IRCurve tenors and sub-curves, inflation and cross-currency basis per currency.

    Concentration: CR_b = max(1, √(|Σ s (IRCurve and inflation)| / T_b)); the basis is not scaled by it.
    """
    ir = p.interest_rate
    for f in (curve, inflation, xccy):
        _check_currency(f)
    tenor_idx = _tenor_index(curve, ir.tenors, "Risk_IRCurve")
    currencies = _currency_order(curve, inflation, xccy)
    k = np.zeros(len(currencies))
    s = np.zeros(len(currencies))
    cr = np.ones(len(currencies))
    for b, ccy in enumerate(currencies):
        on = curve.qualifier == ccy
        amounts, t, sub = curve.amount[on], tenor_idx[on], curve.label2[on]
        inf_on, x_on = inflation.qualifier == ccy, xccy.qualifier == ccy
        has_inf, has_x = bool(inf_on.any()), bool(x_on.any())
        inf_amount, x_amount = float(inflation.amount[inf_on].sum()), float(xccy.amount[x_on].sum())
        threshold = ir.delta_concentration_thresholds[ir.concentration_group(ccy)] * MILLION
        cr[b] = max(1.0, math.sqrt(abs(float(amounts.sum()) + inf_amount) / threshold))
        weights = np.asarray(ir.delta_risk_weights[ir.risk_weight_group(ccy)])[t]
        # the currency's factors: its IRCurve points, then inflation (scaled by CR), then the basis (not scaled)
        ws = list(weights * amounts * cr[b])
        kinds = ["curve"] * len(ws)
        if has_inf:
            ws.append(ir.inflation_risk_weight * inf_amount * cr[b])
            kinds.append("inflation")
        if has_x:
            ws.append(ir.xccy_basis_risk_weight * x_amount)
            kinds.append("basis")
        n = len(amounts)
        full = np.eye(len(ws))
        full[:n, :n] = ir.tenor_matrix[np.ix_(t, t)] * np.where(
            sub[:, None] == sub[None, :], 1.0, ir.sub_curve_correlation
        )
        for j in range(n, len(ws)):
            with_curve = ir.inflation_correlation if kinds[j] == "inflation" else ir.xccy_basis_correlation
            full[:n, j] = full[j, :n] = with_curve
        if has_inf and has_x:
            full[n, n + 1] = full[n + 1, n] = ir.xccy_basis_correlation
        vector = np.asarray(ws)
        k[b] = _quadratic(vector, full)
        s[b] = _clip(float(vector.sum()), k[b])
    g = np.minimum.outer(cr, cr) / np.maximum.outer(cr, cr)
    gamma = np.full((len(currencies),) * 2, ir.inter_currency_correlation) * g
    np.fill_diagonal(gamma, 0.0)
    return _across(k, s, gamma), dict(zip(currencies, k.tolist(), strict=True))


def _ir_vol_setup(vol: Factors, inflation_vol: Factors, p: SimmParameters) -> tuple[list[str], np.ndarray]:
    ir = p.interest_rate
    for f in (vol, inflation_vol):
        _check_currency(f)
    _tenor_index(inflation_vol, ir.tenors, "Risk_InflationVol")
    return _currency_order(vol, inflation_vol), _tenor_index(vol, ir.tenors, "Risk_IRVol")


def ir_vega(vol: Factors, inflation_vol: Factors, p: SimmParameters) -> tuple[float, BucketMargins]:
    """Interest-rate vega margin: VR = RW_vega·(vega·σ)·VCR per currency, tenor correlations,
    inflation volatility correlated with each IR volatility, currencies aggregated with γ·g."""
    ir = p.interest_rate
    currencies, tenor_idx = _ir_vol_setup(vol, inflation_vol, p)
    k = np.zeros(len(currencies))
    s = np.zeros(len(currencies))
    vcr = np.ones(len(currencies))
    for b, ccy in enumerate(currencies):
        on, inf_on = vol.qualifier == ccy, inflation_vol.qualifier == ccy
        amounts, t, inf_amounts = vol.amount[on], tenor_idx[on], inflation_vol.amount[inf_on]
        threshold = ir.vega_concentration_thresholds[ir.concentration_group(ccy)] * MILLION
        vcr[b] = max(1.0, math.sqrt(abs(float(amounts.sum() + inf_amounts.sum())) / threshold))
        vector = ir.vega_risk_weight * np.concatenate([amounts, inf_amounts]) * vcr[b]
        n, m = len(amounts), len(amounts) + len(inf_amounts)
        rho = np.ones((m, m))
        rho[:n, :n] = ir.tenor_matrix[np.ix_(t, t)]
        rho[:n, n:] = rho[n:, :n] = ir.inflation_correlation
        k[b] = _quadratic(vector, rho)
        s[b] = _clip(float(vector.sum()), k[b])
    g = np.minimum.outer(vcr, vcr) / np.maximum.outer(vcr, vcr)
    gamma = np.full((len(currencies),) * 2, ir.inter_currency_correlation) * g
    np.fill_diagonal(gamma, 0.0)
    return _across(k, s, gamma), dict(zip(currencies, k.tolist(), strict=True))


def ir_curvature(vol: Factors, inflation_vol: Factors, p: SimmParameters, side: float) -> tuple[float, BucketMargins]:
    """Interest-rate curvature margin from vega, scaled by HVR_IR⁻²; `side` is +1 (call) or −1 (post)."""
    ir = p.interest_rate
    currencies, tenor_idx = _ir_vol_setup(vol, inflation_vol, p)
    sf = np.array([p.curvature.scaling(t) for t in ir.tenors])
    inf_sf = sf[_tenor_index(inflation_vol, ir.tenors, "Risk_InflationVol")]
    k = np.zeros(len(currencies))
    s = np.zeros(len(currencies))
    total = total_abs = 0.0
    for b, ccy in enumerate(currencies):
        on, inf_on = vol.qualifier == ccy, inflation_vol.qualifier == ccy
        t = tenor_idx[on]
        cvr = sf[t] * (vol.amount[on] * side)
        inf_cvr = float((inf_sf[inf_on] * (inflation_vol.amount[inf_on] * side)).sum())
        rho2 = ir.tenor_matrix[np.ix_(t, t)] ** 2
        k2 = float(cvr @ rho2 @ cvr) + inf_cvr**2 + 2.0 * ir.inflation_correlation**2 * inf_cvr * float(cvr.sum())
        k[b] = math.sqrt(max(k2, 0.0))
        s[b] = _clip(float(cvr.sum()) + inf_cvr, k[b])
        total += float(cvr.sum()) + inf_cvr
        total_abs += float(np.abs(cvr).sum()) + abs(inf_cvr)
    buckets = dict(zip(currencies, k.tolist(), strict=True))
    if total_abs == 0.0:
        return 0.0, buckets
    theta = min(total / total_abs, 0.0)
    gamma = np.full((len(currencies),) * 2, ir.inter_currency_correlation**2)
    np.fill_diagonal(gamma, 0.0)
    margin = total + _lambda(theta, p.curvature_lambda_base) * _across(k, s, gamma)
    return p.ir_curvature_scaling * max(margin, 0.0), buckets


# ---------------------------------------------------------------------------------------------
# Bucketed risk classes: credit, equity, commodity, FX and base correlation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """How one risk type is weighted, concentrated and correlated."""

    risk_type: str
    risk_weight: np.ndarray  # [n]
    sigma: np.ndarray  # [n], 1 except equity/commodity/FX vega
    hvr: float
    threshold: np.ndarray  # [n] USD, inf without concentration
    intra: np.ndarray  # [n, n] correlations (diagonal 1)
    buckets: tuple[str, ...]  # the factors' buckets, in the order of `inter`
    inter: np.ndarray  # [B, B] inter-bucket correlations of the non-residual buckets present


_EQUITY_LIKE = {"Risk_Equity": "equity", "Risk_EquityVol": "equity", "Risk_Commodity": "commodity",
                "Risk_CommodityVol": "commodity"}  # fmt: skip
_CREDIT = {"Risk_CreditQ": "credit_qualifying", "Risk_CreditVol": "credit_qualifying",
           "Risk_CreditNonQ": "credit_non_qualifying", "Risk_CreditVolNonQ": "credit_non_qualifying"}  # fmt: skip
VEGA_TYPES = frozenset({"Risk_CreditVol", "Risk_CreditVolNonQ", "Risk_EquityVol", "Risk_CommodityVol", "Risk_FXVol"})


def _check_buckets(f: Factors, allowed: tuple[str, ...], risk_type: str, version: str) -> None:
    for i, b in enumerate(f.bucket):
        if b not in allowed:
            raise _bad(
                f, i, "Bucket", f"{str(b)!r} is not a {risk_type} bucket of SIMM {version} ({', '.join(allowed)})"
            )


def _spec(risk_type: str, f: Factors, p: SimmParameters, calculation_currency: str) -> _Spec:
    n = len(f)
    same_q = f.qualifier[:, None] == f.qualifier[None, :]
    ones = np.ones(n)
    if risk_type in _CREDIT:
        c: CreditParameters = getattr(p, _CREDIT[risk_type])
        _check_buckets(f, c.buckets, risk_type, p.version)
        _tenor_index(f, c.tenors, risk_type)
        vega = risk_type in VEGA_TYPES
        if vega:
            rw = np.full(n, c.vega_risk_weight)
            threshold = np.full(n, c.vega_concentration_threshold * MILLION)
        else:
            rw = np.array([c.delta_risk_weights[b] for b in f.bucket])
            threshold = np.array([c.delta_concentration_thresholds[b] for b in f.bucket]) * MILLION
        ic = c.intra_bucket_correlations
        same = same_q if risk_type in ("Risk_CreditQ", "Risk_CreditVol") else f.label2[:, None] == f.label2[None, :]
        residual = f.bucket == RESIDUAL
        rho = np.where(same, ic.same, ic.different)
        rho = np.where(residual[:, None], np.where(same_q, ic.residual_same, ic.residual_different), rho)
        buckets = c.regular_buckets
        inter = c.inter_matrix
        return _spec_done(risk_type, f, rw, ones, 1.0, threshold, rho, buckets, inter)
    if risk_type in _EQUITY_LIKE:
        e: EquityCommodityParameters = getattr(p, _EQUITY_LIKE[risk_type])
        _check_buckets(f, e.buckets, risk_type, p.version)
        delta_rw = np.array([e.delta_risk_weights[b] for b in f.bucket])
        if risk_type in VEGA_TYPES:
            _tenor_index(f, p.interest_rate.tenors, risk_type)
            rw = np.array([e.vega_weight(b) for b in f.bucket])
            sigma = delta_rw * p.sigma_multiplier
            hvr = e.historical_volatility_ratio
            threshold = np.array([e.vega_concentration_thresholds[b] for b in f.bucket]) * MILLION
        else:
            rw, sigma, hvr = delta_rw, ones, 1.0
            threshold = np.array([e.delta_concentration_thresholds[b] for b in f.bucket]) * MILLION
        rho = np.where(same_q, 1.0, np.array([e.intra_bucket_correlations[b] for b in f.bucket])[:, None])
        return _spec_done(risk_type, f, rw, sigma, hvr, threshold, rho, e.regular_buckets, e.inter_matrix)
    fx = p.fx
    if risk_type == "Risk_FX":
        _check_currency(f)
        g_calc = fx.volatility_group(calculation_currency)
        groups = [fx.volatility_group(str(q)) for q in f.qualifier]
        rw = np.array([fx.delta_risk_weights[g_calc][g] for g in groups])
        threshold = np.array([fx.delta_concentration_thresholds[fx.concentration_group(str(q))] for q in f.qualifier])
        corr = fx.correlations[g_calc]
        rho = np.array([[corr[a][b] for b in groups] for a in groups]).reshape(n, n)
        rho = np.where(same_q, 1.0, rho)
        return _spec_done(risk_type, f, rw, ones, 1.0, threshold * MILLION, rho, ("",), np.ones((1, 1)))
    if risk_type == "Risk_FXVol":
        _check_currency(f, 6)
        _tenor_index(f, p.interest_rate.tenors, risk_type)
        rw = np.full(n, fx.vega_risk_weight)
        sigma = p.sigma_multiplier * np.array(
            [
                fx.delta_risk_weights[fx.volatility_group(str(q)[3:])][fx.volatility_group(str(q)[:3])]
                for q in f.qualifier
            ]
        )
        threshold = np.array([fx.vega_threshold(str(q)) for q in f.qualifier]) * MILLION
        rho = np.where(same_q, 1.0, fx.vega_correlation)
        return _spec_done(
            risk_type, f, rw, sigma, fx.historical_volatility_ratio, threshold, rho, ("",), np.ones((1, 1))
        )
    if risk_type == "Risk_BaseCorr":
        cq = p.credit_qualifying
        rw = np.full(n, float(cq.base_correlation_risk_weight or 0.0))
        rho = np.where(same_q, 1.0, float(cq.base_correlation_correlation or 0.0))
        return _spec_done(risk_type, f, rw, ones, 1.0, np.full(n, np.inf), rho, ("",), np.ones((1, 1)))
    raise ValueError(f"RiskType: {risk_type} is not a bucketed SIMM risk type")


def _spec_done(risk_type: str, f: Factors, rw: np.ndarray, sigma: np.ndarray, hvr: float, threshold: np.ndarray,
               rho: np.ndarray, buckets: tuple[str, ...], inter: np.ndarray) -> _Spec:  # fmt: skip
    rho = rho.astype(np.float64, copy=True)
    np.fill_diagonal(rho, 1.0)
    return _Spec(risk_type, rw.astype(np.float64), sigma.astype(np.float64), hvr, threshold, rho, buckets, inter)


def _single_bucket(risk_type: str) -> bool:
    return risk_type in ("Risk_FX", "Risk_FXVol", "Risk_BaseCorr")


def normalise_buckets(risk_type: str, f: Factors) -> Factors:
    """FX, FX volatility and base correlation have no buckets: whatever the CRIF says, they form one."""
    if _single_bucket(risk_type):
        return Factors(f.qualifier, np.full(len(f), "", dtype=str), f.label1, f.label2, f.amount, f.where)
    return f


def _bucket_gamma(spec: _Spec, present: list[str]) -> np.ndarray:
    index = {b: i for i, b in enumerate(spec.buckets)}
    idx = np.array([index[b] for b in present], dtype=np.int64)
    gamma = spec.inter[np.ix_(idx, idx)].copy() if len(idx) else np.zeros((0, 0))
    np.fill_diagonal(gamma, 0.0)
    return gamma


def bucketed_margin(
    risk_type: str, f: Factors, p: SimmParameters, calculation_currency: str
) -> tuple[float, BucketMargins]:
    """Delta (or vega, or base-correlation) margin of a bucketed risk type.

    x_k = s_k·σ_k·HVR (σ and HVR are 1 except for equity, commodity and FX vega); CR per qualifier
    and bucket = max(1, √(|Σ x| / T)); WS_k = RW_k·x_k·CR_k.
    """
    f = normalise_buckets(risk_type, f)
    spec = _spec(risk_type, f, p, calculation_currency)
    x = f.amount * spec.sigma * spec.hvr
    cr = np.ones(len(f))
    keys = np.char.add(np.char.add(f.bucket.astype(str), "\x00"), f.qualifier.astype(str))
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=x, minlength=len(uniq))
    with np.errstate(divide="ignore", invalid="ignore"):
        cr = np.maximum(1.0, np.sqrt(np.abs(sums[inverse]) / spec.threshold))
    ws = spec.risk_weight * x * cr
    fkl = np.minimum.outer(cr, cr) / np.maximum.outer(cr, cr)
    breakdown: BucketMargins = {}
    present = sorted({str(b) for b in f.bucket if b != RESIDUAL}, key=_bucket_order)
    k = np.zeros(len(present))
    s = np.zeros(len(present))
    residual = 0.0
    for name in [*present, RESIDUAL]:
        on = np.flatnonzero(f.bucket == name)
        if not len(on):
            continue
        kb = _quadratic(ws[on], spec.intra[np.ix_(on, on)] * fkl[np.ix_(on, on)])
        if name == RESIDUAL:
            residual = kb
        else:
            i = present.index(name)
            k[i], s[i] = kb, _clip(float(ws[on].sum()), kb)
        breakdown[name] = kb
    margin = _across(k, s, _bucket_gamma(spec, present)) + residual
    if _single_bucket(risk_type) and risk_type != "Risk_BaseCorr":
        breakdown = _by_qualifier(f.qualifier, ws)
    elif risk_type == "Risk_BaseCorr":
        breakdown = {}
    return margin, breakdown


def _by_qualifier(qualifiers: np.ndarray, values: np.ndarray) -> BucketMargins:
    out: dict[str, float] = {}
    for q, v in zip(qualifiers.tolist(), values.tolist(), strict=True):
        out[q] = out.get(q, 0.0) + v
    return {q: abs(v) for q, v in sorted(out.items())}


def _bucket_order(bucket: str) -> tuple[int, str]:
    return (int(bucket), "") if bucket.isdigit() else (10**6, bucket)


def bucketed_curvature(risk_type: str, f: Factors, p: SimmParameters, calculation_currency: str,
                       side: float) -> tuple[float, BucketMargins]:  # fmt: skip
    """Curvature margin of a bucketed vega risk type: CVR_k = SF(t_k)·σ_k·vega_k (no risk weight,
    no concentration), squared correlations, θ and λ over the non-residual buckets, the Residual
    bucket on its own."""
    f = normalise_buckets(risk_type, f)
    spec = _spec(risk_type, f, p, calculation_currency)
    sf = np.array([p.curvature.scaling(str(t)) for t in f.label1])
    cvr = sf * ((f.amount * side) * spec.sigma)
    if risk_type == "Risk_EquityVol":
        cvr = np.where(np.isin(f.bucket, p.curvature.equity_buckets_without_curvature), 0.0, cvr)
    rho2 = spec.intra**2
    per_factor_abs = risk_type in ("Risk_CreditVol", "Risk_CreditVolNonQ")
    present = sorted({str(b) for b in f.bucket if b != RESIDUAL}, key=_bucket_order)
    k = np.zeros(len(present))
    s = np.zeros(len(present))
    total = total_abs = 0.0
    breakdown: BucketMargins = {}
    residual = 0.0
    for name in [*present, RESIDUAL]:
        on = np.flatnonzero(f.bucket == name)
        if not len(on):
            continue
        c = cvr[on]
        kb = _quadratic(c, rho2[np.ix_(on, on)])
        bucket_abs = float(np.abs(c).sum()) if per_factor_abs else sum(_signed_by_qualifier(f.qualifier[on], c))
        if name == RESIDUAL:
            if bucket_abs != 0.0:
                theta = min(float(c.sum()) / bucket_abs, 0.0)
                residual = max(float(c.sum()) + _lambda(theta, p.curvature_lambda_base) * kb, 0.0)
            breakdown[name] = residual
            continue
        i = present.index(name)
        k[i], s[i] = kb, _clip(float(c.sum()), kb)
        total += float(c.sum())
        total_abs += bucket_abs
        breakdown[name] = kb
    margin = 0.0
    if total_abs != 0.0:
        theta = min(total / total_abs, 0.0)
        gamma = _bucket_gamma(spec, present) ** 2
        margin = max(total + _lambda(theta, p.curvature_lambda_base) * _across(k, s, gamma), 0.0)
    if _single_bucket(risk_type):
        breakdown = _by_qualifier(f.qualifier, cvr)
    return margin + residual, breakdown


def _signed_by_qualifier(qualifiers: np.ndarray, values: np.ndarray) -> list[float]:
    """|Σ CVR| of each qualifier (equity, commodity and FX net a qualifier's tenors first)."""
    out: dict[str, float] = {}
    for q, v in zip(qualifiers.tolist(), values.tolist(), strict=True):
        out[q] = out.get(q, 0.0) + v
    return [abs(v) for v in out.values()]
