"""The in-process MAP fit when every term is additive: exact blocks instead of L-BFGS-B.

Split from map_fit.py, which holds the model and the general case; see
`AdditiveSolver` for the method.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from salescast.forecasting.map_fit import (
    GRADIENT_TOLERANCE,
    TREND_PRIOR_SD,
    FloatArray,
    MapProblem,
)

# The additive solver: rounds of (quadratic in z, closed-form sigma_obs), and
# Newton steps per quadratic (each lands on the minimum once the bound set is
# right, so a handful is the norm).
_MAX_OUTER_ROUNDS = 500
_MAX_NEWTON_STEPS = 100
_VARIANCE_TOLERANCE = 1e-12


class AdditiveSolver:
    """The mode when every term is additive, by exact blocks instead of a generic optimiser.

    Then the mean is linear in z = (k, m, up, down, beta): ``mean = D z`` with a
    fixed design D = [t, 1, ramps, -ramps, X_a]. With sigma_obs fixed the
    negative log posterior is a convex quadratic in z with bounds, solved
    exactly by projected Newton on D'D (built once, so no step touches the T
    observations); with z fixed the best sigma_obs is closed-form. Alternating
    the two lowers the objective at every step and stops when sigma_obs no
    longer moves. A few dozen small (2 + 2S + K)-square solves: milliseconds.
    """

    def __init__(self, problem: MapProblem) -> None:
        t = problem.t
        design = np.column_stack(
            (t, np.ones_like(t), problem.ramps, -problem.ramps, problem.x_additive)
        )
        self.problem = problem
        self.gram = design.T @ design
        self.cross = design.T @ problem.y
        self.y_squared = float(problem.y @ problem.y)
        s = problem.changepoints
        self.bounded = problem.bounded()
        self.prior_precision = np.concatenate(
            ([TREND_PRIOR_SD**-2] * 2, np.zeros(2 * s), problem.beta_precision)
        )
        self.linear_prior = np.where(self.bounded, 1.0 / problem.tau, 0.0)
        # partner[i]: the other half of changepoint i's (up, down) pair.
        pairs = np.arange(len(self.bounded))
        pairs[2 : 2 + s], pairs[2 + s : 2 + 2 * s] = pairs[2 + s : 2 + 2 * s], pairs[2 : 2 + s]
        self.partner = pairs

    def rss(self, z: FloatArray) -> float:
        return max(self.y_squared - 2.0 * float(z @ self.cross) + float(z @ self.gram @ z), 0.0)

    def minimize(self, start: FloatArray) -> FloatArray:
        z = self._normalise(start)
        variance = self.problem.variance(self.rss(z))
        for _ in range(_MAX_OUTER_ROUNDS):
            z = self._minimize_quadratic(z, variance)
            updated = self.problem.variance(self.rss(z))
            settled = abs(updated - variance) <= _VARIANCE_TOLERANCE * variance
            variance = updated
            if settled:
                break
        return z

    def _normalise(self, z: FloatArray) -> FloatArray:
        # up - down is what the model sees; of the pairs with the same difference,
        # the one with a zero half has the smaller prior term.
        s = self.problem.changepoints
        delta = z[2 : 2 + s] - z[2 + s : 2 + 2 * s]
        out = z.copy()
        out[2 : 2 + s] = np.maximum(delta, 0.0)
        out[2 + s : 2 + 2 * s] = np.maximum(-delta, 0.0)
        return out

    def _minimize_quadratic(self, z: FloatArray, variance: float) -> FloatArray:
        """argmin of 1/2 z'Hz - b'z over z with the bounded entries >= 0 (projected Newton)."""
        hessian = self.gram / variance + np.diag(self.prior_precision)
        linear = self.cross / variance - self.linear_prior
        tolerance = GRADIENT_TOLERANCE * (1.0 + float(np.max(np.abs(linear))))

        def value(point: FloatArray) -> float:
            return 0.5 * float(point @ hessian @ point) - float(linear @ point)

        for _ in range(_MAX_NEWTON_STEPS):
            gradient = hessian @ z - linear
            at_bound = self.bounded & (z <= 0.0)
            # A half stays at 0 while its partner is positive: both free would make
            # the step singular (their columns are opposite), and moving the
            # positive half already moves delta both ways.
            held = at_bound & ((gradient >= 0.0) | (z[self.partner] > 0.0))
            if np.max(np.abs(np.where(held, 0.0, gradient))) <= tolerance:
                break
            step = self._newton_step(hessian, gradient, held, at_bound)
            current = value(z)
            alpha = 1.0
            while alpha > 1e-12:
                trial = z + alpha * step
                trial[self.bounded] = np.maximum(trial[self.bounded], 0.0)
                if value(trial) <= current + 1e-4 * float(gradient @ (trial - z)):
                    break
                alpha *= 0.5
            else:
                break  # no descent left at machine precision: z is the minimum
            z = self._normalise(trial)
        return z

    @staticmethod
    def _newton_step(
        hessian: FloatArray,
        gradient: FloatArray,
        held: npt.NDArray[np.bool_],
        at_bound: npt.NDArray[np.bool_],
    ) -> FloatArray:
        """Newton's step on the entries not held, holding also those it would push below 0.

        So the step is a descent direction of the free subspace (its Hessian block
        is positive definite) along which no entry at its bound moves outward.
        """
        held = held.copy()
        while True:
            free = ~held
            step = np.zeros_like(gradient)
            step[free] = _solve(hessian[np.ix_(free, free)], -gradient[free])
            outward = at_bound & ~held & (step < 0.0)
            if not outward.any():
                return step
            held |= outward


def _solve(matrix: FloatArray, rhs: FloatArray) -> FloatArray:
    try:
        return np.asarray(np.linalg.solve(matrix, rhs), dtype=np.float64)
    except np.linalg.LinAlgError:  # a singular free block: the least-norm step
        return np.asarray(np.linalg.lstsq(matrix, rhs, rcond=None)[0], dtype=np.float64)
