"""Scenario generation: the time grid, then joint paths of every market driver and of the counterparties' credit.

**Time grid.** A spec string lists tenors from the valuation date, each optionally followed by a step that
fills the dates up to the next item: ``"1D,1W:weekly,1M:monthly,1Y:quarterly,10Y:semiannual,30Y"`` gives
1D, 1W, 2W, 3W, 4W, 1M..11M monthly, 1Y..9Y9M quarterly, 10Y..29Y6M semiannually and 30Y (94 dates). Tenors
are ``<n>D|W|M|Y`` (months and years are calendar months from the valuation date, day clipped); steps are
daily, weekly, monthly, quarterly, semiannual, annual or a tenor such as ``2W``. The last item ends the grid.
The simulation dates add, for every margin period of risk of the book's CSAs, the date MPOR before each
exposure date (where collateral is called); all dates are whole days, so lags are exact.

**Model** (base currency USD, its bank account the numeraire). Per currency a Hull–White factor
x_c (`hullwhite`); under the USD measure a foreign factor carries the quanto drift −ρ(IR.c, FX.c) σ_c σ_X.
FX against USD is lognormal with drift r_USD − r_c, equities lognormal with drift r_c − q (plus their quanto
drift outside USD). Everything is Gaussian in the driftless states (x̃_c, ∫x̃_c, σ_X W_X, σ_S W_S), so each
step is simulated exactly: the joint covariance of the step's increments is integrated in closed form per
piece of σ (Gauss–Legendre on each piece, exact for these smooth integrands to rounding), and its square
root applied to independent normals. The deterministic parts (drifts, convexity terms) come from the same
integrals, which makes discounted bonds, foreign bonds and equities martingales exactly in expectation.

**Credit.** A name's intensity is λ(t) = h(t) + x_λ(t), h its bootstrapped hazard curve, x_λ a Gaussian
mean-reverting factor (rate κ, the name's vol σ_λ) fitted so that E[exp(−∫₀ᵗλ)] is the market survival
probability — Hull–White on the hazard curve. Its Brownian motion is ρ·W_d + √(1−ρ²)·W_⊥ for one market driver
d (wrong-way risk); the driver's part comes from filtered factors G_d = ∫e^{−κ(t−u)}dW_d and H_d = ∫G_d that are
simulated with the market (exactly, in the same joint step), the name's own part W_⊥ from a stream keyed by
the name. Credit paths are generated on demand for the names of a chunk.

**Random numbers.** Normals come in blocks of `PATH_BLOCK` paths, block b of the market from the stream
(seed, 0, b), a credit name's from (seed, 1, crc32(name), b) — so a chunk of netting sets, or a subset of
path blocks, regenerates exactly the same paths, and the first N paths of a larger run are the N-path run.
The normals are drawn on the host on every device; with a GPU (`cuda_kernels.selected_device`) the state is
propagated there (`cuda_kernels.propagate_states_cuda`), from the same normals and step matrices.
"""

from __future__ import annotations

import functools
import itertools
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from engines.xva.hullwhite import HullWhite, PiecewiseConstant, bond_b, hull_white
from engines.xva.kernels import ou_with_integral
from engines.xva.market import BASE_CURRENCY, CreditCurve, HazardCurve, Market, add_months, bootstrap_hazard

DEFAULT_GRID = "1D,1W:weekly,1M:monthly,1Y:quarterly,10Y:semiannual,30Y"
HORIZONS: tuple[str, ...] = ("1D", "1W", "2W", "1M", "3M", "6M", "1Y", "2Y", "3Y", "5Y", "7Y", "10Y")
PATH_BLOCK = 250
"""Paths per random-number block (a block is the unit of reproducible regeneration)."""
_STEP_NAMES = {"daily": "1D", "weekly": "1W", "monthly": "1M", "quarterly": "3M", "semiannual": "6M", "annual": "1Y"}
_TENOR = re.compile(r"^(\d+)([DWMY])$")
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(12)


# ---------------------------------------------------------------------------------------------
# Time grid
# ---------------------------------------------------------------------------------------------


def _parse_tenor(text: str, where: str) -> tuple[int, str]:
    m = _TENOR.match(text.strip().upper())
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"{where}: {text!r} is not a tenor such as 1D, 2W, 3M or 10Y")
    return int(m.group(1)), m.group(2)


def tenor_date(as_of: date, tenor: str, where: str = "tenor") -> date:
    """`as_of` moved by a tenor: days and weeks in days, months and years in calendar months."""
    n, unit = _parse_tenor(tenor, where)
    if unit == "D":
        return as_of + timedelta(days=n)
    if unit == "W":
        return as_of + timedelta(weeks=n)
    return add_months(as_of, n * (12 if unit == "Y" else 1))


def parse_grid(spec: str, as_of: date) -> list[date]:
    """Exposure dates (after `as_of`, increasing) of a grid spec; errors name the item at fault."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise ValueError("grid: give at least one tenor")
    out: list[date] = []
    anchors = []
    for i, item in enumerate(items):
        tenor, _, step = item.partition(":")
        where = f"grid[{i}] {item!r}"
        anchors.append((tenor_date(as_of, tenor, where), tenor.strip().upper(), step.strip().lower(), where))
    for i, (start, tenor, step, where) in enumerate(anchors):
        if i and start <= anchors[i - 1][0]:
            raise ValueError(f"{where}: tenors must increase ({tenor} is not after {anchors[i - 1][1]})")
        if not step:
            out.append(start)
            continue
        if i == len(anchors) - 1:
            raise ValueError(f"{where}: the last item ends the grid and takes no step")
        step_tenor = _STEP_NAMES.get(step, step.upper())
        n, unit = _parse_tenor(step_tenor, f"{where} step")
        end = anchors[i + 1][0]
        n0, u0 = _parse_tenor(tenor, where)
        k = 0
        while True:
            if unit in "MY" and u0 in "MY":  # calendar months counted from the valuation date: no day drift
                d = add_months(as_of, n0 * (12 if u0 == "Y" else 1) + k * n * (12 if unit == "Y" else 1))
            elif unit in "MY":
                d = add_months(start, k * n * (12 if unit == "Y" else 1))
            else:
                d = start + timedelta(days=k * n * (7 if unit == "W" else 1))
            if d >= end:
                break
            out.append(d)
            k += 1
    return out


@dataclass(frozen=True)
class TimeGrid:
    """Simulation dates (index 0 is the valuation date), which of them are exposure dates, and for each MPOR (in
    calendar days) the index of the date at which the collateral for each exposure date is called."""

    as_of: date
    spec: str
    dates: np.ndarray  # datetime64[D] [D]
    times: np.ndarray  # float64 [D], ACT/365F
    exposure: np.ndarray  # int64 [K] indices into dates; exposure[0] = 0
    lags: dict[int, np.ndarray] = field(default_factory=dict)  # MPOR days -> int64 [K]

    @property
    def exposure_times(self) -> np.ndarray:
        return self.times[self.exposure]

    @property
    def exposure_dates(self) -> np.ndarray:
        return self.dates[self.exposure]

    def index_on_or_before(self, t: np.ndarray | float) -> np.ndarray:
        """Index of the last simulation date at or before each time t (-1 if t < 0)."""
        return np.searchsorted(self.times, np.asarray(t, dtype=np.float64) + 1e-12, side="right") - 1

    def index_on_or_after(self, t: np.ndarray | float) -> np.ndarray:
        """Index of the first simulation date at or after each time t (len(dates) if none)."""
        return np.searchsorted(self.times, np.asarray(t, dtype=np.float64) - 1e-12, side="left")


def time_grid(spec: str, as_of: date, mpor_days: Iterable[int] = ()) -> TimeGrid:
    """The simulation grid of `spec`, with the lagged call dates of each margin period of risk (calendar days)."""
    exposure = [as_of, *parse_grid(spec, as_of)]
    base = np.datetime64(as_of, "D")
    exp_days = np.array([(d - as_of).days for d in exposure], dtype=np.int64)
    lags_days = sorted({int(m) for m in mpor_days if int(m) > 0})
    all_days = set(exp_days.tolist())
    for m in lags_days:
        all_days.update(np.maximum(exp_days - m, 0).tolist())
    days = np.array(sorted(all_days), dtype=np.int64)
    exp_idx = np.searchsorted(days, exp_days)
    lags = {0: exp_idx.copy()}
    for m in lags_days:
        lags[m] = np.searchsorted(days, np.maximum(exp_days - m, 0))
    return TimeGrid(as_of, spec, base + days.astype("timedelta64[D]"), days / 365.0, exp_idx, lags)


# ---------------------------------------------------------------------------------------------
# Driver components and their exact step covariance
# ---------------------------------------------------------------------------------------------

_OU, _INTEGRAL, _BROWNIAN = 0, 1, 2


@dataclass(frozen=True)
class _Component:
    driver: int  # index into the market's drivers
    kind: int  # _OU: ∫σ e^{−a(t−u)}dW, _INTEGRAL: ∫σ B_a(u,t) dW, _BROWNIAN: ∫σ dW
    a: float
    sigma: PiecewiseConstant

    def kernel(self, u: np.ndarray, t: float) -> np.ndarray:
        s = self.sigma(u)
        if self.kind == _OU:
            return s * np.exp(-self.a * (t - u))
        if self.kind == _INTEGRAL:
            return s * bond_b(self.a, u, t)
        return s


def _step_covariance(components: list[_Component], corr: np.ndarray, breaks: np.ndarray, s: float, t: float):
    """Covariance of the components' increments over (s, t], by Gauss–Legendre on each piece of constant σ."""
    cuts = np.concatenate([[s], breaks[(breaks > s) & (breaks < t)], [t]])
    nodes, weights = [], []
    for a, b in itertools.pairwise(cuts):
        nodes.append(0.5 * (b - a) * _GAUSS_NODES + 0.5 * (a + b))
        weights.append(0.5 * (b - a) * _GAUSS_WEIGHTS)
    u = np.concatenate(nodes)
    w = np.concatenate(weights)
    k = np.stack([c.kernel(u, t) for c in components])
    drivers = np.array([c.driver for c in components])
    return ((k * w) @ k.T) * corr[np.ix_(drivers, drivers)]


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    return vecs * np.sqrt(np.maximum(vals, 0.0))


# ---------------------------------------------------------------------------------------------
# Market scenarios
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ScenarioSet:
    """Paths of every market driver on every simulation date, and what pricing needs per path and date.

    Arrays are [driver, date, path] (paths innermost, for the kernels): `x[c]` the Hull–White state of currency
    `currencies[c]` (r = f(0,t) + x), `fx[c]` USD per unit of the currency (1 for USD), `equity[e]` the price of
    `equities[e]` in its currency, `numeraire[d, p]` the USD discount factor exp(−∫₀ᵗ r_USD), and `credit_g`,
    `credit_h` the credit factors of the `credit_drivers` (see `credit_paths`).
    """

    market: Market
    grid: TimeGrid
    seed: int
    paths: int
    models: dict[str, HullWhite]
    currencies: tuple[str, ...]
    equities: tuple[str, ...]
    x: np.ndarray
    fx: np.ndarray
    equity: np.ndarray
    numeraire: np.ndarray
    credit_drivers: tuple[str, ...]
    credit_g: np.ndarray
    credit_h: np.ndarray

    def currency_index(self, ccy: str) -> int:
        return self.currencies.index(ccy)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.x, self.fx, self.equity, self.numeraire, self.credit_g, self.credit_h))


def build_models(market: Market) -> dict[str, HullWhite]:
    """Each currency's Hull–White model (calibrated when its spec asks)."""
    return {
        c: hull_white(c, market.currencies[c].discount, market.currencies[c].hull_white, market.as_of)  # type: ignore[index]
        for c in market.currency_list
    }


@dataclass(frozen=True)
class _Layout:
    components: list[_Component]
    corr: np.ndarray
    breaks: np.ndarray
    ou_x: list[int]  # component of x̃_c per currency
    ou_i: list[int]  # component of ∫x̃_c per currency
    fx_w: dict[str, int]  # currency -> component of σ_X W_X
    eq_w: list[int]  # per equity
    credit_g: list[int]
    credit_h: list[int]


def _layout(market: Market, models: dict[str, HullWhite]) -> _Layout:
    drivers = market.driver_names
    comps: list[_Component] = []
    ou_x, ou_i, eq_w, cg, ch = [], [], [], [], []
    fx_w: dict[str, int] = {}
    for c in market.currency_list:
        m = models[c]
        d = drivers.index(f"IR.{c}")
        ou_x.append(len(comps))
        comps.append(_Component(d, _OU, m.a, m.sigma))
        ou_i.append(len(comps))
        comps.append(_Component(d, _INTEGRAL, m.a, m.sigma))
    for c in market.currency_list:
        if c != BASE_CURRENCY:
            fx_w[c] = len(comps)
            comps.append(
                _Component(
                    drivers.index(f"FX.{c}"), _BROWNIAN, 0.0, PiecewiseConstant.constant(market.fx[c].volatility)
                )
            )  # type: ignore[index]
    for e in market.equity_list:
        eq_w.append(len(comps))
        comps.append(
            _Component(
                drivers.index(f"EQ.{e}"), _BROWNIAN, 0.0, PiecewiseConstant.constant(market.equities[e].volatility)
            )
        )
    kappa = market.credit_model.mean_reversion
    unit = PiecewiseConstant.constant(1.0)
    for name in _credit_drivers(market):
        d = drivers.index(name)
        cg.append(len(comps))
        comps.append(_Component(d, _OU, kappa, unit))
        ch.append(len(comps))
        comps.append(_Component(d, _INTEGRAL, kappa, unit))
    breaks = np.unique(np.concatenate([np.zeros(0)] + [m.sigma.breaks for m in models.values()]))
    return _Layout(comps, market.correlation_matrix(), breaks, ou_x, ou_i, fx_w, eq_w, cg, ch)


def _credit_drivers(market: Market) -> tuple[str, ...]:
    wanted = market.credit_model.wwr_drivers
    return market.driver_names if wanted is None else tuple(d for d in market.driver_names if d in wanted)


def _quanto(market: Market, models: dict[str, HullWhite], c: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(drift of x_c, its time integral) added under the USD measure for currency c: −ρσ_X∫σ_c e^{−a(t−u)},
    −ρσ_X∫σ_c B(u, t)."""
    if c == BASE_CURRENCY:
        return np.zeros_like(t), np.zeros_like(t)
    drivers = market.driver_names
    rho = market.correlation_matrix()[drivers.index(f"IR.{c}"), drivers.index(f"FX.{c}")]
    vol_x = market.fx[c].volatility  # type: ignore[index]
    m = models[c]
    e1 = m.sigma.integral_exp(0.0, t, t, m.a)
    e0 = m.sigma.integral_exp(0.0, t, t, 0.0)
    return -rho * vol_x * e1, -rho * vol_x * (e0 - e1) / m.a


def _path_rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, *key])))


def _market_normals(seed: int, b0: int, b1: int, n_steps: int, n_c: int) -> np.ndarray:
    """Standard normals [path, step, component] of the market for paths b0..b1 (b0 a multiple of `PATH_BLOCK`),
    each random-number block drawn whole from its own stream (seed, 0, block) and cut at b1."""
    blocks = [
        _path_rng(seed, 0, k).standard_normal((PATH_BLOCK, n_steps, n_c))
        for k in range(b0 // PATH_BLOCK, (b1 + PATH_BLOCK - 1) // PATH_BLOCK)
    ]
    return (blocks[0] if len(blocks) == 1 else np.concatenate(blocks))[: b1 - b0]


def propagate_states(phi: np.ndarray, root: np.ndarray, z: np.ndarray) -> np.ndarray:
    """States [path, date, component] from 0 at date 0, one exact step per date: s_{k+1} = Φ_k s_k + L_k z_k, with
    Φ_k = phi[k] the transition, L_k = root[k] the root of the step covariance and z[path, k] standard normals."""
    state = np.zeros((z.shape[0], phi.shape[0] + 1, phi.shape[1]))
    for k in range(phi.shape[0]):
        state[:, k + 1] = state[:, k] @ phi[k].T + z[:, k] @ root[k].T
    return state


def _propagator(phi: np.ndarray, root: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """The state propagation of the selected device (`cuda_kernels.selected_device`: CUDA when a GPU is present and
    RISKLAB_XVA_DEVICE is not cpu), and how many paths to hand it at once (a multiple of `PATH_BLOCK`)."""
    from engines.xva import cuda_kernels

    if cuda_kernels.use_cuda():
        chunk = cuda_kernels.launch_paths(len(phi) + 1, phi.shape[1], PATH_BLOCK)
        return cuda_kernels.state_propagator(phi, root), chunk
    return functools.partial(propagate_states, phi, root), PATH_BLOCK


def simulate(
    market: Market,
    grid: TimeGrid,
    paths: int,
    seed: int,
    models: dict[str, HullWhite] | None = None,
) -> ScenarioSet:
    """Joint paths of all market drivers on `grid` (exact discretisation), reproducible from `seed`."""
    if paths < 1:
        raise ValueError(f"paths: at least 1, got {paths}")
    models = models or build_models(market)
    layout = _layout(market, models)
    comps = layout.components
    n_c = len(comps)
    t = grid.times
    n_d = len(t)
    # transition Φ_k and noise root L_k of every step
    phi = np.zeros((n_d - 1, n_c, n_c))
    root = np.zeros((n_d - 1, n_c, n_c))
    for k in range(n_d - 1):
        s, e = t[k], t[k + 1]
        f = np.eye(n_c)
        for i, c in enumerate(comps):
            if c.kind == _OU:
                f[i, i] = np.exp(-c.a * (e - s))
            elif c.kind == _INTEGRAL:
                f[i, i - 1] = float(bond_b(c.a, s, e))  # the OU value is the previous component
        phi[k] = f
        root[k] = _sqrt_psd(_step_covariance(comps, layout.corr, layout.breaks, s, e))
    # deterministic parts per currency
    ccys = market.currency_list
    drift = {}
    for c in ccys:
        m = models[c]
        q_m, q_big = _quanto(market, models, c, t)
        drift[c] = (m.drift(t) + q_m, m.drift_integral(t) + q_big, m.curve.log_discount(t))
    x = np.empty((len(ccys), n_d, paths))
    fx = np.ones((len(ccys), n_d, paths))
    eqs = market.equity_list
    equity = np.empty((len(eqs), n_d, paths))
    numeraire = np.empty((n_d, paths))
    n_k = len(layout.credit_g)
    g = np.empty((n_k, n_d, paths))
    h = np.empty((n_k, n_d, paths))
    usd = ccys.index(BASE_CURRENCY)
    _, big_usd, lnp_usd = drift[BASE_CURRENCY]
    propagate, chunk = _propagator(phi, root)
    for b0 in range(0, paths, chunk):
        b1 = min(paths, b0 + chunk)
        st = propagate(_market_normals(seed, b0, b1, n_d - 1, n_c)).transpose(2, 1, 0)  # [component, date, path]
        for ci, c in enumerate(ccys):
            m_c, big_c, lnp_c = drift[c]
            x[ci, :, b0:b1] = st[layout.ou_x[ci]] + m_c[:, None]
            if c != BASE_CURRENCY:
                ln_fx = (
                    np.log(market.fx_spot(c))
                    + lnp_c
                    - lnp_usd
                    + big_usd
                    - big_c
                    - 0.5 * market.fx[c].volatility ** 2 * t  # type: ignore[index]
                )
                fx[ci, :, b0:b1] = np.exp(
                    ln_fx[:, None] + st[layout.ou_i[usd]] - st[layout.ou_i[ci]] + st[layout.fx_w[c]]
                )
        numeraire[:, b0:b1] = np.exp((lnp_usd - big_usd)[:, None] - st[layout.ou_i[usd]])
        for ei, name in enumerate(eqs):
            spec = market.equities[name]
            ci = ccys.index(spec.currency)
            _, big_c, lnp_c = drift[spec.currency]
            quanto = 0.0
            if spec.currency != BASE_CURRENCY:
                drivers = market.driver_names
                rho = layout.corr[drivers.index(f"EQ.{name}"), drivers.index(f"FX.{spec.currency}")]
                quanto = rho * spec.volatility * market.fx[spec.currency].volatility  # type: ignore[index]
            ln_s = np.log(spec.spot) - lnp_c + big_c - (spec.dividend_yield + 0.5 * spec.volatility**2 + quanto) * t
            equity[ei, :, b0:b1] = np.exp(ln_s[:, None] + st[layout.ou_i[ci]] + st[layout.eq_w[ei]])
        for ki in range(n_k):
            g[ki, :, b0:b1] = st[layout.credit_g[ki]]
            h[ki, :, b0:b1] = st[layout.credit_h[ki]]
    return ScenarioSet(
        market=market,
        grid=grid,
        seed=seed,
        paths=paths,
        models=models,
        currencies=ccys,
        equities=eqs,
        x=x,
        fx=fx,
        equity=equity,
        numeraire=numeraire,
        credit_drivers=_credit_drivers(market),
        credit_g=g,
        credit_h=h,
    )


# ---------------------------------------------------------------------------------------------
# Credit paths
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditName:
    """What a name's intensity needs: its CDS curve, intensity vol, and optional wrong-way driver and correlation."""

    name: str
    curve: CreditCurve
    volatility: float
    driver: str | None = None
    correlation: float = 0.0


@dataclass(frozen=True, eq=False)
class CreditPaths:
    """Intensities λ and cumulative hazards Λ = ∫₀ᵗλ of `names` on the simulation dates `date_index`.

    Arrays are [name, date, path]. `hazard[n, d]` is the bootstrapped h(t); λ − h is the Hull–White-type state
    x_λ, so the survival from t to T on a path is S(0,T)/S(0,t)·exp(−B_κ(t,T)x_λ − ½B_κ²σ²(1−e^{−2κt})/(2κ)).
    E[exp(−Λ(t))] is the market survival probability.
    """

    names: tuple[str, ...]
    date_index: np.ndarray
    intensity: np.ndarray
    cumulative: np.ndarray
    hazard: np.ndarray
    curves: tuple[HazardCurve, ...]
    volatility: np.ndarray
    kappa: float


def credit_paths(scenarios: ScenarioSet, names: Sequence[CreditName], dates: str = "exposure") -> CreditPaths:
    """Intensity paths of `names` on the exposure dates (or on "all" simulation dates), reproducible per name.

    A name's own factor is stepped exactly from one requested date to the next, from its own stream: the same
    name, seed and dates give the same paths in any chunk."""
    market = scenarios.market
    grid = scenarios.grid
    kappa = market.credit_model.mean_reversion
    idx = grid.exposure if dates == "exposure" else np.arange(len(grid.times))
    t = grid.times[idx]
    n_paths = scenarios.paths
    dt = np.diff(t)
    decay = np.exp(-kappa * dt)
    b_step = bond_b(kappa, 0.0, dt)
    # exact covariance of (∫e^{−κ(t−u)}dW, ∫B_κ(u,t)dW) over each step, unit vol
    v11 = -np.expm1(-2 * kappa * dt) / (2 * kappa)
    v12 = (-np.expm1(-kappa * dt) / kappa - v11) / kappa
    v22 = (dt - 2 * (-np.expm1(-kappa * dt)) / kappa + v11) / kappa**2
    l11 = np.sqrt(v11)
    l21 = v12 / l11
    l22 = np.sqrt(np.maximum(v22 - l21**2, 0.0))
    big_var = (t - 2 * (-np.expm1(-kappa * t)) / kappa + (-np.expm1(-2 * kappa * t)) / (2 * kappa)) / kappa**2
    shift = bond_b(kappa, 0.0, t) ** 2 / 2  # m_λ / σ²: ½(1−e^{−κt})²/κ²
    discount = market.currencies[BASE_CURRENCY].discount  # type: ignore[index]
    n = len(names)
    lam = np.empty((n, len(idx), n_paths))
    cum = np.empty((n, len(idx), n_paths))
    haz = np.empty((n, len(idx)))
    curves = []
    for i, spec in enumerate(names):
        hz = bootstrap_hazard(spec.curve, market.as_of, discount)
        curves.append(hz)
        rho = spec.correlation if spec.driver is not None else 0.0
        if spec.driver is not None and spec.driver not in scenarios.credit_drivers:
            raise ValueError(f"{spec.name}.driver: {spec.driver!r} is not a stored credit driver of the scenarios")
        g_own = np.empty((len(t), n_paths))
        h_own = np.empty((len(t), n_paths))
        key = zlib.crc32(spec.name.encode())
        z = np.empty((len(dt), n_paths, 2))
        for b0 in range(0, n_paths, PATH_BLOCK):
            b1 = min(n_paths, b0 + PATH_BLOCK)
            rng = _path_rng(scenarios.seed, 1, key, b0 // PATH_BLOCK)
            z[:, b0:b1] = rng.standard_normal((len(dt), PATH_BLOCK, 2))[:, : b1 - b0]
        ou_with_integral(z, l11, l21, l22, decay, b_step, g_own, h_own, 0)
        g_sel, h_sel = g_own, h_own
        if rho != 0.0:
            d = scenarios.credit_drivers.index(spec.driver)  # type: ignore[arg-type]
            own = np.sqrt(1 - rho * rho)
            g_sel = rho * scenarios.credit_g[d][idx] + own * g_sel
            h_sel = rho * scenarios.credit_h[d][idx] + own * h_sel
        s = spec.volatility
        h_t = hz.hazard(t)
        haz[i] = h_t
        lam[i] = (h_t + s * s * shift)[:, None] + s * g_sel
        cum[i] = (hz.cumulative(t) + 0.5 * s * s * big_var)[:, None] + s * h_sel
    return CreditPaths(
        tuple(s.name for s in names),
        idx,
        lam,
        cum,
        haz,
        tuple(curves),
        np.array([s.volatility for s in names]),
        kappa,
    )
