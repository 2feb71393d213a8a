"""The in-process MAP fit: Stan's log density, CmdStan's mode on real series, clear refusals."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prophet import Prophet

from salescast.forecasting.map_fit import MapFitBackend, MapFitUnsupportedError, MapProblem
from salescast.forecasting.training import TrainingParams, fit_prophet
from tests.conftest import M5_CSV, STORE_ITEM_CSV, require_shared_data

# (file, product columns, product, columns of the quantity and date)
REAL_SERIES = {
    "store-item 1-1": (STORE_ITEM_CSV, {"store": 1, "item": 1}),
    "store-item 7-33": (STORE_ITEM_CSV, {"store": 7, "item": 33}),
    "m5 CA_1-FOODS_3": (M5_CSV, {"store_id": "CA_1", "dept_id": "FOODS_3"}),
    "m5 WI_3-HOBBIES_1": (M5_CSV, {"store_id": "WI_3", "dept_id": "HOBBIES_1"}),
}


@pytest.fixture(scope="module")
def real_frames() -> dict[str, pd.DataFrame]:
    frames = {}
    tables: dict[Path, pd.DataFrame] = {}
    for name, (path, key) in REAL_SERIES.items():
        if path not in tables:
            tables[path] = pd.read_csv(require_shared_data(path), parse_dates=["date"])
        table = tables[path]
        rows = table[np.logical_and.reduce([table[c] == v for c, v in key.items()])]
        frames[name] = pd.DataFrame({"ds": rows["date"].to_numpy(), "y": rows["sales"] * 1.0})
    return frames


def prepared(frame: pd.DataFrame, mode: str = "additive") -> tuple[dict[str, Any], dict[str, Any]]:
    """Prophet's own (data, init) for `frame`, what Prophet.fit hands the backend."""
    model = Prophet(seasonality_mode=mode, daily_seasonality=False, uncertainty_samples=0)
    inputs = model.preprocess(frame)
    init = dataclasses.asdict(model.calculate_initial_params(inputs.K))
    return dataclasses.asdict(inputs), init


def stan_negative_log_density(data: dict[str, Any], params: dict[str, Any]) -> float:
    """prophet.stan's model block for linear growth, written out as Stan states it."""
    t = np.asarray(data["t"])
    y = np.asarray(data["y"])
    t_change = np.asarray(data["t_change"])
    x = np.asarray(data["X"])
    a = (t[:, None] >= t_change[None, :]).astype(float)  # get_changepoint_matrix
    k, m, sigma = (float(np.ravel(params[name])[0]) for name in ("k", "m", "sigma_obs"))
    delta, beta = np.ravel(params["delta"]), np.ravel(params["beta"])
    trend = (k + a @ delta) * t + (m + a @ (-t_change * delta))
    x_sa, x_sm = x * np.asarray(data["s_a"]), x * np.asarray(data["s_m"])
    mean = x_sa @ beta + trend * (1 + x_sm @ beta)
    sigmas = np.asarray(data["sigmas"])
    return float(
        k**2 / 50
        + m**2 / 50
        + np.sum(np.abs(delta)) / data["tau"]
        + sigma**2 / (2 * 0.25)
        + np.sum(beta**2 / (2 * sigmas**2))
        + len(y) * np.log(sigma)
        + np.sum((y - mean) ** 2) / (2 * sigma**2)
    )


def fitted(frame: pd.DataFrame, backend: str, mode: str = "additive") -> Prophet:
    days = [d.date() for d in pd.to_datetime(frame["ds"])]
    params = TrainingParams(uncertainty_samples=0, seasonality_mode=mode, fit_backend=backend)  # type: ignore[arg-type]
    return fit_prophet(days, list(frame["y"]), params)


def test_the_objective_is_stans_log_density_and_its_gradient_is_exact(
    real_frames: dict[str, pd.DataFrame],
) -> None:
    data, _ = prepared(real_frames["m5 WI_3-HOBBIES_1"].iloc[:400], mode="multiplicative")
    problem = MapProblem.from_stan_data(data)
    rng = np.random.default_rng(7)
    s, k_terms = problem.changepoints, problem.x_additive.shape[1]
    theta = np.concatenate(([0.3, 0.2], rng.uniform(0, 0.05, 2 * s), rng.normal(0, 0.05, k_terms)))
    value, gradient = problem.objective(theta)
    # The objective profiles sigma_obs out: it is Stan's density at the best sigma_obs.
    delta = theta[2 : 2 + s] - theta[2 + s : 2 + 2 * s]
    up_and_down = np.sum(theta[2 : 2 + 2 * s]) - np.sum(np.abs(delta))
    best = min(
        stan_negative_log_density(
            data, {"k": theta[0], "m": theta[1], "delta": delta, "beta": theta[2 + 2 * s :],
                   "sigma_obs": sigma}
        )
        for sigma in np.linspace(0.01, 1.0, 5000)
    )  # fmt: skip
    assert value - up_and_down / data["tau"] == pytest.approx(best, abs=1e-3)
    assert value - up_and_down / data["tau"] <= best + 1e-9
    step = 1e-6
    numeric = [
        (problem.objective(theta + step * e)[0] - problem.objective(theta - step * e)[0])
        / (2 * step)
        for e in np.eye(len(theta))
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", list(REAL_SERIES))
def test_the_numpy_fit_finds_cmdstans_mode_on_real_series(
    real_frames: dict[str, pd.DataFrame], name: str
) -> None:
    frame = real_frames[name]
    data, _ = prepared(frame)
    cmdstan, numpy = fitted(frame, "cmdstan"), fitted(frame, "numpy")
    # At least as high a posterior density as CmdStan's L-BFGS reaches (CmdStan
    # stops on its relative tolerances, often a little short of the mode).
    ours = stan_negative_log_density(data, numpy.params)
    theirs = stan_negative_log_density(data, cmdstan.params)
    assert ours <= theirs + 1e-6 * abs(theirs)
    assert float(numpy.params["lp__"][0, 0]) == pytest.approx(-ours, rel=1e-9)
    assert {p: v.shape for p, v in numpy.params.items()} == {
        p: v.shape for p, v in cmdstan.params.items()
    }
    # And the same forecast: in sample and 90 days ahead, within 2 % of the series' peak
    # at every point and 0.5 % on average.
    future = cmdstan.make_future_dataframe(periods=90)
    difference = np.abs(numpy.predict(future)["yhat"] - cmdstan.predict(future)["yhat"])
    peak = float(frame["y"].abs().max())
    assert difference.max() <= 0.02 * peak
    assert difference.mean() <= 0.005 * peak


def test_multiplicative_seasonality_matches_cmdstan_too(
    real_frames: dict[str, pd.DataFrame],
) -> None:
    frame = real_frames["store-item 7-33"].iloc[-800:]
    data, _ = prepared(frame, mode="multiplicative")
    cmdstan = fitted(frame, "cmdstan", "multiplicative")
    numpy = fitted(frame, "numpy", "multiplicative")
    theirs = stan_negative_log_density(data, cmdstan.params)
    assert stan_negative_log_density(data, numpy.params) <= theirs + 1e-6 * abs(theirs)
    difference = np.abs(numpy.predict()["yhat"] - cmdstan.predict()["yhat"])
    assert difference.max() <= 0.02 * float(frame["y"].max())


def test_a_fit_runs_no_cmdstan_process_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    start = dt.date(2024, 1, 1)
    days = [start + dt.timedelta(days=i) for i in range(120)]
    values = [10.0 + (5 if d.weekday() >= 5 else 0) + 0.01 * i for i, d in enumerate(days)]
    with caplog.at_level(logging.DEBUG, logger="cmdstanpy"):
        model = fit_prophet(days, values, TrainingParams(uncertainty_samples=0))
    assert model.stan_fit is None  # CmdStanPyBackend leaves its CmdStanMLE here
    assert not [r for r in caplog.records if r.name.startswith("cmdstanpy")]
    assert list(tmp_path.iterdir()) == []


def test_logistic_growth_is_refused_naming_the_cmdstan_backend() -> None:
    frame = pd.DataFrame(
        {"ds": pd.date_range("2024-01-01", periods=60), "y": np.arange(60.0) % 7, "cap": 10.0}
    )
    model = Prophet(growth="logistic", uncertainty_samples=0)
    model.stan_backend = MapFitBackend()
    with pytest.raises(MapFitUnsupportedError, match=r"linear growth only.*cmdstan"):
        model.fit(frame)


def test_mcmc_sampling_is_refused_naming_the_cmdstan_backend() -> None:
    frame = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=60), "y": np.arange(60.0) % 7})
    model = Prophet(mcmc_samples=10, uncertainty_samples=0)
    model.stan_backend = MapFitBackend()
    with pytest.raises(MapFitUnsupportedError, match=r"mcmc_samples=0.*cmdstan"):
        model.fit(frame)


def test_cmdstan_options_are_refused_rather_than_ignored() -> None:
    frame = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=60), "y": np.arange(60.0) % 7})
    model = Prophet(uncertainty_samples=0)
    model.stan_backend = MapFitBackend()
    with pytest.raises(MapFitUnsupportedError, match="algorithm"):
        model.fit(frame, algorithm="Newton")
