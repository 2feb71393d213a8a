"""Research for #16 point 2, not part of ``make bench``: cheap corrections of Prophet's
forecast, and how they score when every choice is made on earlier windows only.

Each series is fitted as training fits it (default settings, the numpy fit)
once per backtest window, with additive and with multiplicative seasonality;
the fits' in-sample and window predictions are kept, and every candidate is a
function of them (no further fit), so the whole table costs one Prophet fit per
series, window and mode. The candidates correct Prophet's points by its own
recent residuals (actual - fitted) on the training part:

- ``level K``: add the mean residual of the last K days;
- ``level+weekday``: add the mean residual of the last 28 days, plus per
  weekday the mean of the last 56 days' remaining residuals, shrunk toward 0
  by max(0, 1 - 2 se^2 / mean^2) (so a weekday's noise adds nothing).

Honest ways to choose, all using only the windows before the last one (with
``--windows 3``, the default, windows 1-2 score window 3, the one the quality
table reports; ``--windows 5`` chooses on four):

- one recipe for all: the (mode, candidate) with the best mean over the
  earlier windows of both sets pooled (weighted by series);
- per series: each series takes the (mode, candidate) with its own best mean
  over the earlier windows, or on the window just before the last only.

"mean of both" rows average the additive and the multiplicative candidate (two
Prophet fits per window and for the final model: twice today's training time).

Every row prints all three windows, so what a choice on windows 1-2 would have
picked can be read next to what window 3 then scored. MASE is
``score_holdout``'s (the stored one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from forecast_quality import Series, m5_series, store_item_series

from salescast.forecasting.backtest import score_holdout, window_cuts
from salescast.forecasting.training import TrainingParams, fit_prophet
from salescast.store.frequency import unit_of

MODES = ("additive", "multiplicative")
MEAN = "mean of both"  # the average of the additive and the multiplicative candidate
SCALED = "additive, seasonality x trend"  # the additive fit, its seasonality scaled by the trend


@dataclass(frozen=True)
class Window:
    days: list[object]
    y: np.ndarray
    fitted: np.ndarray  # Prophet's prediction over the training part and the window
    start: int  # the window's first index
    trend: np.ndarray | None = None  # Prophet's trend there (additive fits)

    def mase(self, predicted: np.ndarray, holdout: int) -> float | None:
        s = self.start
        return score_holdout(
            dict(zip(self.days[:s], self.y[:s], strict=True)),
            dict(zip(self.days[s:], self.y[s:], strict=True)),
            dict(zip(self.days[s:], predicted, strict=True)),
            holdout=holdout,
        ).mase


Candidate = Callable[[Window], np.ndarray]


def scaled(window: Window) -> Window:
    """The additive fit with its seasonal terms multiplied by trend / (mean training trend):
    a multiplicative-like candidate from the same fit."""
    assert window.trend is not None
    seasonal = window.fitted - window.trend
    ratio = window.trend / window.trend[: window.start].mean()
    return Window(window.days, window.y, window.trend + seasonal * ratio, window.start)


def prophet(window: Window) -> np.ndarray:
    return window.fitted[window.start :]


def level(days: int) -> Candidate:
    def correct(window: Window) -> np.ndarray:
        s = window.start
        residuals = window.y[:s] - window.fitted[:s]
        return window.fitted[s:] + residuals[-days:].mean()

    return correct


def level_and_weekday(window: Window) -> np.ndarray:
    s = window.start
    residuals = window.y[:s] - window.fitted[:s]
    shift = residuals[-28:].mean()
    recent = residuals[-56:] - shift
    weekdays = np.array([d.weekday() for d in window.days[:s][-56:]])  # type: ignore[attr-defined]
    by_weekday = {}
    for k in range(7):
        values = recent[weekdays == k]
        mean, se2 = values.mean(), values.var(ddof=1) / len(values)
        by_weekday[k] = max(0.0, 1 - 2 * se2 / max(mean * mean, 1e-12)) * mean
    ahead = [by_weekday[d.weekday()] for d in window.days[s:]]  # type: ignore[attr-defined]
    return window.fitted[s:] + shift + np.array(ahead)


CANDIDATES: dict[str, Candidate] = {
    "Prophet": prophet,
    "level 28": level(28),
    "level 56": level(56),
    "level+weekday": level_and_weekday,
}


def windows_of(series: list[Series], mode: str, count: int) -> list[list[Window]]:
    params = TrainingParams(seasonality_mode=mode)
    holdout, minimum = params.holdout("day"), params.min_history("day")
    out = []
    for _, days, quantities in series:
        wins = []
        for start, end in window_cuts(days, holdout, count, minimum - holdout, "D"):
            model = fit_prophet(days[:start], quantities[:start], params, uncertainty_samples=0)
            frame = model.predict(pd.DataFrame({"ds": pd.to_datetime(days[:end])}))
            wins.append(
                Window(
                    days[:end],
                    np.asarray(quantities[:end]),
                    frame["yhat"].values,
                    start,
                    frame["trend"].values,
                )
            )
        out.append(wins)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--windows", type=int, default=3, help="backtest windows (default 3)")
    parser.add_argument(
        "--store-item-from",
        type=int,
        default=0,
        help="the first of the 100 store-item series (default 0, the quality table's; "
        "100: series the research never looked at)",
    )
    args = parser.parse_args()
    count = args.windows
    holdout = TrainingParams().holdout(unit_of("D"))
    sets = {"M5 daily": m5_series(), "store-item daily": store_item_series(args.store_item_from)}
    fitted = {
        (name, mode): windows_of(s, mode, count) for name, s in sets.items() for mode in MODES
    }
    for name in sets:
        fitted[(name, SCALED)] = [[scaled(w) for w in wins] for wins in fitted[(name, MODES[0])]]
    shown = " / ".join(f"w{i}" for i in range(1, count + 1))
    inner = f"w1-{count - 1}" if count > 2 else "w1"

    def scores(name: str, mode: str, candidate: Candidate) -> list[list[float | None]]:
        if mode == MEAN:
            pairs = zip(fitted[(name, MODES[0])], fitted[(name, MODES[1])], strict=True)
            return [
                [
                    a.mase((candidate(a) + candidate(m)) / 2, holdout)
                    for a, m in zip(*pair, strict=True)
                ]
                for pair in pairs
            ]
        return [[w.mase(candidate(w), holdout) for w in wins] for wins in fitted[(name, mode)]]

    modes = (*MODES, MEAN, SCALED)
    table = {
        (name, mode, cand): scores(name, mode, fn)
        for name in sets
        for mode in modes
        for cand, fn in CANDIDATES.items()
    }

    def mean(values: list[float | None]) -> float:
        return statistics.mean(v for v in values if v is not None)

    print(
        "| mode | candidate | " + " | ".join(f"{n} {shown}" for n in sets) + f" | pooled {inner} |"
    )
    print("|---|---|" + "---:|" * (len(sets) + 1))
    pooled = {}
    for mode in modes:
        for cand in CANDIDATES:
            cells, total = [], 0.0
            for name in sets:
                rows = table[(name, mode, cand)]
                per_window = [mean([r[i] for r in rows]) for i in range(count)]
                cells.append(" / ".join(f"{v:.3f}" for v in per_window))
                total += len(rows) * statistics.mean(per_window[:-1])
            pooled[(mode, cand)] = total / sum(len(s) for s in sets.values())
            print(f"| {mode} | {cand} | " + " | ".join(cells) + f" | {pooled[(mode, cand)]:.4f} |")
    best = min(pooled, key=pooled.__getitem__)
    print(f"\nOne recipe chosen on {inner} pooled: {best[0]} {best[1]}; w{count}:")
    for name in sets:
        print(f"  {name}: {mean([r[-1] for r in table[(name, *best)]]):.4f}")
    pools = {
        "every mode": modes,
        "additive only": MODES[:1],
        "both modes, no mean": MODES,
        "additive and scaled": (MODES[0], SCALED),
    }
    for pool, pool_modes in pools.items():
        for label, chosen_on in ((inner, slice(None, -1)), (f"w{count - 1}", slice(-2, -1))):
            print(f"\nPer series ({pool}), (mode, candidate) chosen on its own {label}; w{count}:")
            for name in sets:
                picked = []
                for i in range(len(sets[name])):
                    options = [
                        (mean(rows[i][chosen_on]), rows[i][-1])
                        for rows in (
                            table[(name, mode, cand)] for mode in pool_modes for cand in CANDIDATES
                        )
                        if any(v is not None for v in rows[i][chosen_on])
                    ]
                    picked.append(min(options, key=lambda option: option[0])[1])
                print(f"  {name}: {mean(picked):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
