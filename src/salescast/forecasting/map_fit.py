"""Prophet's MAP fit in-process: the same posterior mode CmdStan finds, without a process per fit.

Prophet's model (``prophet/stan_model/prophet.stan``) with linear growth is

    trend = (k + A delta) * t + (m + A (-t_change * delta))
    y     ~ normal(trend * (1 + X_sm beta) + X_sa beta, sigma_obs)
    k, m ~ normal(0, 5);  delta ~ laplace(0, tau);  beta ~ normal(0, sigmas);
    sigma_obs ~ half-normal(0, 0.5)

and a fit is CmdStan's ``optimize``: the mode of that log density on the
constrained scale (no Jacobian term), found by L-BFGS from Prophet's own
initial values. `MapFitBackend` finds the same mode with numpy and scipy's
L-BFGS-B, in the calling process: no data file, no ``prophet_model.bin``
process, no CSV to read back. Two choices make that exact rather than close:

- ``|delta|`` is not differentiable at 0, and the Laplace prior puts many
  changepoints there. Splitting ``delta = up - down`` with both bounded below
  by 0 makes the prior linear (``(up + down) / tau``) and smooth, and
  L-BFGS-B handles the bounds exactly; at the optimum one of the two is 0.
- ``sigma_obs`` is profiled out: for given trend and seasonality parameters
  its optimum solves ``4 s^2 + T s - RSS = 0`` (``s = sigma_obs^2``) in closed
  form, so the optimiser works on a smaller, better-scaled problem whose
  gradient (by the envelope theorem) is the full one's at that ``sigma_obs``.

Only what salescast fits is implemented: linear growth, MAP (``mcmc_samples
== 0``), additive and multiplicative terms (seasonality, holidays,
regressors). Anything else raises `MapFitUnsupportedError` naming the setting,
never a silently different fit; use the ``cmdstan`` backend for it.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt
from prophet.models import IStanBackend
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

FloatArray = npt.NDArray[np.float64]

# Prophet's trend_indicator values (prophet.models.TrendIndicator).
_LINEAR = 0

# Stan's priors on k and m (normal(0, 5)) and on sigma_obs (normal(0, 0.5)).
TREND_PRIOR_SD = 5.0
_SIGMA_PRIOR_SD = 0.5

# L-BFGS-B stops when the objective changes by less than this fraction of itself
# (CmdStan: tol_rel_obj 1e4 x machine epsilon, about 2e-12) or the largest
# projected gradient entry is below GRADIENT_TOLERANCE (CmdStan: tol_grad 1e-8).
_RELATIVE_TOLERANCE = 1e-13
GRADIENT_TOLERANCE = 1e-8
_MAX_ITERATIONS = 10_000  # CmdStan's iter as Prophet sets it


class MapFitUnsupportedError(ValueError):
    """The model asks for something the in-process fit does not implement."""


class MapFitBackend(IStanBackend):
    """A Prophet ``stan_backend`` whose ``fit`` runs in this process (see the module docstring).

    Plug it in after constructing the model: ``model.stan_backend =
    MapFitBackend()``. ``fit`` returns what CmdStanPyBackend.fit returns: a dict
    of ``k, m, delta, sigma_obs, beta, trend``, each a ``(1, n)`` array.
    Stateless between fits, so one instance may serve many models, though not
    from two threads at once (``stan_fit`` is per call).
    """

    def __init__(self) -> None:
        # IStanBackend.__init__ would load a compiled Stan model; there is none here.
        self.model = None
        self.stan_fit = None
        self.newton_fallback = False

    @staticmethod
    def get_type() -> str:
        return "NUMPY_MAP"

    def load_model(self) -> None:
        return None

    def fit(
        self,
        stan_init: dict[str, Any],
        stan_data: dict[str, Any],
        **kwargs: Any,
    ) -> OrderedDict[str, FloatArray]:
        if kwargs:
            raise MapFitUnsupportedError(
                f"the numpy fit takes no CmdStan options (got {', '.join(sorted(kwargs))}); "
                "use the cmdstan fit backend for them"
            )
        if stan_data["trend_indicator"] != _LINEAR:
            raise MapFitUnsupportedError(
                "the numpy fit implements linear growth only; "
                "use the cmdstan fit backend for logistic or flat growth"
            )
        problem = MapProblem.from_stan_data(stan_data)
        # OpenBLAS spreads even these small products over its threads, which then
        # wait on each other on a shared 2-core machine or in a pool of one process
        # per core: a fit's Gram matrix took 13 ms threaded against 1 ms on one
        # thread, 100 ms under load. One thread for the fit only; nothing else changes.
        with _blas_controller().limit(limits=1, user_api="blas"):
            params = problem.solve(stan_init)
        self.stan_fit = None
        return params

    def sampling(
        self,
        stan_init: dict[str, Any],
        stan_data: dict[str, Any],
        samples: int,
        **kwargs: Any,
    ) -> OrderedDict[str, FloatArray]:
        raise MapFitUnsupportedError(
            "the numpy fit finds the posterior mode only (mcmc_samples=0); "
            "use the cmdstan fit backend for MCMC sampling"
        )


@functools.cache
def _blas_controller() -> ThreadpoolController:
    # Made once per process (it scans the loaded libraries: ~15 ms), after scipy's import.
    return ThreadpoolController()


class MapProblem:
    """One fit's data, with the trend's changepoint matrix built once."""

    def __init__(
        self,
        *,
        y: FloatArray,
        t: FloatArray,
        ramps: FloatArray,
        x_additive: FloatArray,
        x_multiplicative: FloatArray,
        sigmas: FloatArray,
        tau: float,
    ) -> None:
        self.y = y
        self.t = t
        self.ramps = ramps
        self.x_additive = x_additive
        self.x_multiplicative = x_multiplicative
        self.has_multiplicative = bool(np.any(x_multiplicative))
        self.beta_precision = 1.0 / np.square(sigmas)
        self.tau = tau
        self.changepoints = ramps.shape[1]

    @classmethod
    def from_stan_data(cls, data: dict[str, Any]) -> MapProblem:
        t = np.asarray(data["t"], dtype=np.float64)
        t_change = np.asarray(data["t_change"], dtype=np.float64).reshape(-1)
        x = np.asarray(data["X"], dtype=np.float64).reshape(len(t), -1)
        s_a = np.asarray(data["s_a"], dtype=np.float64)
        s_m = np.asarray(data["s_m"], dtype=np.float64)
        # A[i, j] (t_i >= t_change_j) times (t_i - t_change_j): the linear trend is
        # k t + m + ramps @ delta, the Stan expression with A multiplied out.
        after = t[:, None] >= t_change[None, :]
        ramps = np.where(after, t[:, None] - t_change[None, :], 0.0)
        return cls(
            y=np.asarray(data["y"], dtype=np.float64),
            t=t,
            ramps=ramps,
            x_additive=x * s_a,
            x_multiplicative=x * s_m,
            sigmas=np.asarray(data["sigmas"], dtype=np.float64),
            tau=float(data["tau"]),
        )

    # The optimiser's vector: k, m, up (S), down (S), beta (K).

    def _split(self, theta: FloatArray) -> tuple[float, float, FloatArray, FloatArray, FloatArray]:
        s = self.changepoints
        return theta[0], theta[1], theta[2 : 2 + s], theta[2 + s : 2 + 2 * s], theta[2 + 2 * s :]

    def trend(self, k: float, m: float, delta: FloatArray) -> FloatArray:
        trend: FloatArray = k * self.t + m + self.ramps @ delta
        return trend

    def variance(self, rss: float) -> float:
        # argmin over s = sigma^2 of T/2 log s + RSS/(2 s) + s/(2 * 0.25): 4 s^2 + T s - RSS = 0.
        n = len(self.y)
        prior = 1.0 / (2.0 * _SIGMA_PRIOR_SD**2)  # the s^2 coefficient is 2 * prior = 4
        root = (-n + np.sqrt(n * n + 8.0 * prior * rss)) / (4.0 * prior)
        return max(float(root), 1e-300)

    def objective(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """Negative log posterior (sigma_obs at its optimum) and its gradient."""
        k, m, up, down, beta = self._split(theta)
        trend = self.trend(k, m, up - down)
        scale = 1.0 + self.x_multiplicative @ beta if self.has_multiplicative else None
        mean = self.x_additive @ beta + (trend if scale is None else trend * scale)
        residual = self.y - mean
        rss = float(residual @ residual)
        variance = self.variance(rss)
        value = (
            0.5 * len(self.y) * np.log(variance)
            + rss / (2.0 * variance)
            + variance / (2.0 * _SIGMA_PRIOR_SD**2)
            + (k * k + m * m) / (2.0 * TREND_PRIOR_SD**2)
            + float(np.sum(up) + np.sum(down)) / self.tau
            + 0.5 * float(beta @ (self.beta_precision * beta))
        )
        d_mean = -residual / variance  # d value / d mean
        d_trend = d_mean if scale is None else d_mean * scale
        d_delta = self.ramps.T @ d_trend
        d_beta = self.x_additive.T @ d_mean + self.beta_precision * beta
        if scale is not None:
            d_beta += self.x_multiplicative.T @ (d_mean * trend)
        gradient = np.concatenate(
            (
                [
                    float(d_trend @ self.t) + k / TREND_PRIOR_SD**2,
                    float(np.sum(d_trend)) + m / TREND_PRIOR_SD**2,
                ],
                d_delta + 1.0 / self.tau,
                -d_delta + 1.0 / self.tau,
                d_beta,
            )
        )
        return float(value), gradient

    def solve(self, init: dict[str, Any]) -> OrderedDict[str, FloatArray]:
        """The mode, starting from Prophet's initial values, as CmdStanPyBackend.fit returns it."""
        from salescast.forecasting.map_fit_additive import AdditiveSolver  # it imports this module

        delta0 = np.asarray(init["delta"], dtype=np.float64).reshape(-1)
        beta0 = np.asarray(init["beta"], dtype=np.float64).reshape(-1)
        start = np.concatenate(
            (
                [float(init["k"]), float(init["m"])],
                np.maximum(delta0, 0.0),
                np.maximum(-delta0, 0.0),
                beta0,
            )
        )
        theta = (
            self._minimize_lbfgsb(start)
            if self.has_multiplicative
            else AdditiveSolver(self).minimize(start)
        )
        k, m, up, down, beta = self._split(theta)
        delta = up - down
        trend = self.trend(k, m, delta)
        scale = 1.0 + self.x_multiplicative @ beta
        residual = self.y - (trend * scale + self.x_additive @ beta)
        sigma_obs = np.sqrt(self.variance(float(residual @ residual)))
        log_density = -self.objective(
            np.concatenate(([k, m], np.maximum(delta, 0), np.maximum(-delta, 0), beta))
        )[0]
        # CmdStanPyBackend.fit's shape: Stan's columns in its order, each (1, n); lp__ is
        # the log density without constants, as CmdStan's optimize reports it.
        return OrderedDict(
            (name, np.asarray(value, dtype=np.float64).reshape(1, -1))
            for name, value in (
                ("lp__", log_density),
                ("k", k),
                ("m", m),
                ("delta", delta),
                ("sigma_obs", sigma_obs),
                ("beta", beta),
                ("trend", trend),
            )
        )

    def bounded(self) -> npt.NDArray[np.bool_]:
        """Which entries of the optimiser's vector are bounded below by 0 (up and down)."""
        s = self.changepoints
        flags = np.zeros(2 + 2 * s + self.x_additive.shape[1], dtype=bool)
        flags[2 : 2 + 2 * s] = True
        return flags

    def _minimize_lbfgsb(self, start: FloatArray) -> FloatArray:
        # The general case (multiplicative terms make the mean bilinear in trend and beta).
        bounds = [(0.0, None) if flag else (None, None) for flag in self.bounded()]
        result = minimize(
            self.objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={
                "maxiter": _MAX_ITERATIONS,
                "maxfun": 2 * _MAX_ITERATIONS,
                "ftol": _RELATIVE_TOLERANCE,
                "gtol": GRADIENT_TOLERANCE,
            },
        )
        if not np.all(np.isfinite(result.x)):
            raise RuntimeError(f"numpy MAP fit diverged: {result.message}")
        theta: FloatArray = result.x
        return theta
