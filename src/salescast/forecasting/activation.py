"""When a training activates the version it stored: the backtest margin rule.

A version that a training stores is compared, on its holdout backtest, with
the version active now (`SALESCAST_ACTIVATION_MARGIN`, a fraction: 0.05 lets a
new version be up to 5 % worse):

1. No version active (the product's first): activate. A product must be able
   to forecast, and nothing better is there to keep serving; its metrics show
   how it compares with seasonal-naive.
2. Its MASE is above the active version's by more than the margin (new >
   active x (1 + margin)): keep the active one. MASE, since it is scale-free:
   the two holdouts are different weeks of history.
3. Its MAE is above seasonal-naive's on its own holdout by more than the
   margin, while the active version's was not: keep the active one. A bar the
   active version does not clear either is not held against the new one, so a
   new version that improves on a weak active version still replaces it.
4. Otherwise activate. A comparison a missing metric prevents (MASE is None
   when the training data has no weekly variation) does not block.

Pinning is not decided here: the registry never moves a pinned active
version, whatever this rule says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_MARGIN = 0.05


@dataclass(frozen=True)
class ActiveModel:
    """The version active when a new one is stored: its number and stored metrics."""

    version: int
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class ActivationRule:
    """The margin rule above; `refusal` is a pure function of the two versions' metrics."""

    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"the activation margin must be >= 0, got {self.margin}")

    def refusal(self, candidate: Mapping[str, Any], active: ActiveModel | None) -> str | None:
        """Why a version with `candidate` metrics must not replace `active`; None to activate."""
        if active is None:
            return None
        new_mase, old_mase = _metric(candidate, "mase"), _metric(active.metrics, "mase")
        if self._worse(new_mase, old_mase):
            return (
                f"backtest MASE {new_mase:.3f} is worse than active version {active.version}'s "
                f"{old_mase:.3f} by more than the activation margin ({self.margin:.0%})"
            )
        new_mae, new_naive = _metric(candidate, "mae"), _metric(candidate, "mae_seasonal_naive")
        if self._worse(new_mae, new_naive) and not self._worse(
            _metric(active.metrics, "mae"), _metric(active.metrics, "mae_seasonal_naive")
        ):
            return (
                f"backtest MAE {new_mae:.3f} is worse than seasonal-naive's {new_naive:.3f} "
                f"on the same holdout by more than the activation margin ({self.margin:.0%}), "
                f"and active version {active.version}'s is not"
            )
        return None

    def _worse(self, value: float | None, reference: float | None) -> bool:
        if value is None or reference is None:
            return False
        return value > reference * (1 + self.margin)


def _metric(metrics: Mapping[str, Any], name: str) -> float | None:
    value = metrics.get(name)
    # bool is an int: a metric can never be one, and must not compare as 0 or 1
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
