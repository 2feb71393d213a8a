"""The margin rule: when a training's new version replaces the active one, on its backtest."""

from __future__ import annotations

import pytest

from salescast.forecasting import ActivationRule, ActiveModel

RULE = ActivationRule(margin=0.05)
# Metrics as training stores them; MAE below seasonal-naive's on the holdout.
GOOD = {"mae": 90.0, "mae_seasonal_naive": 100.0, "mase": 0.9, "mase_seasonal_naive": 1.0}


def active(**metrics: float | None) -> ActiveModel:
    return ActiveModel(3, {**GOOD, **metrics})


def test_a_first_version_is_activated_even_when_worse_than_seasonal_naive() -> None:
    assert RULE.refusal({**GOOD, "mae": 300.0, "mase": 3.0}, None) is None


def test_a_version_within_the_margin_of_the_active_one_is_activated() -> None:
    assert RULE.refusal({**GOOD, "mase": 0.945}, active(mase=0.9)) is None  # exactly 5 % worse


def test_a_version_worse_than_the_active_one_by_more_than_the_margin_is_refused() -> None:
    reason = RULE.refusal({**GOOD, "mase": 0.95}, active(mase=0.9))
    assert reason is not None
    assert "MASE 0.950 is worse than active version 3's 0.900" in reason
    assert "(5%)" in reason


def test_a_larger_margin_accepts_what_a_smaller_one_refuses() -> None:
    candidate, current = {**GOOD, "mase": 1.2}, active(mase=0.9)
    assert ActivationRule(margin=0.05).refusal(candidate, current) is not None
    assert ActivationRule(margin=0.5).refusal(candidate, current) is None


def test_a_version_worse_than_seasonal_naive_is_refused_while_the_active_one_is_not() -> None:
    reason = RULE.refusal({**GOOD, "mae": 110.0, "mase": 0.9}, active())
    assert reason is not None
    assert "worse than seasonal-naive's 100.000 on the same holdout" in reason


def test_a_version_improving_on_a_weak_active_one_is_activated_though_worse_than_naive() -> None:
    weak = active(mae=150.0, mase=1.5)  # itself 50 % worse than seasonal-naive
    assert RULE.refusal({**GOOD, "mae": 120.0, "mase": 1.2}, weak) is None


def test_a_comparison_a_missing_metric_prevents_does_not_block() -> None:
    no_scale = {**GOOD, "mase": None, "mase_seasonal_naive": None}
    assert RULE.refusal(no_scale, active()) is None
    assert RULE.refusal({**GOOD, "mase": 5.0}, ActiveModel(1, {})) is None


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        ActivationRule(margin=-0.1)
