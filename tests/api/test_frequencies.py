"""Weekly and monthly products through the real ASGI app, on series summed from the M5 file.

One store (SQLite) for the module: a weekly series uploaded on its Fridays (frequency
detected) and a monthly one uploaded as daily rows with `freq=MS` (summed by the
service), each trained once. Stored MASE is checked against a computation written
here with pandas from the textbook definition, not with salescast's own functions.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from salescast.api.app import create_app
from salescast.service import SalescastService
from tests.conftest import ADMIN_TOKEN, M5_CSV, make_settings, require_shared_data

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SERIES = ("CA_1", "FOODS_3")
WEEKLY, MONTHLY = "CA_1-FOODS_3-W", "CA_1-FOODS_3-M"


def m5_daily() -> pd.Series:
    """The daily sales of one M5 store x department, indexed by date (with its real gaps)."""
    frame = pd.read_csv(
        require_shared_data(M5_CSV), usecols=["store_id", "dept_id", "date", "sales"]
    )
    one = frame[(frame.store_id == SERIES[0]) & (frame.dept_id == SERIES[1])]
    return one.set_index(pd.to_datetime(one.date)).sales.astype(float).sort_index()


def weekly_sums(daily: pd.Series) -> pd.Series:
    """Whole weeks ending on Friday (Saturday..Friday), the last partial week dropped."""
    return daily[:"2016-04-22"].resample("W-FRI").sum()


def csv_of(product_id: str, series: pd.Series) -> bytes:
    lines = ["product_id,date,quantity"]
    lines += [f"{product_id},{day.date().isoformat()},{value}" for day, value in series.items()]
    return ("\n".join(lines) + "\n").encode()


def upload(client: TestClient, body: bytes, **params: str) -> Any:
    return client.post(
        "/sales", content=body, params=params, headers={**ADMIN, "Content-Type": "text/csv"}
    )


@pytest.fixture(scope="module")
def daily() -> pd.Series:
    return m5_daily()


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory, daily: pd.Series) -> Path:
    """The weekly and the monthly product, uploaded and trained once (four small fits)."""
    path = tmp_path_factory.mktemp("frequencies") / "store.db"
    with TestClient(create_app(make_settings(path))) as client:
        assert upload(client, csv_of(WEEKLY, weekly_sums(daily))).status_code == 201
        months = daily["2011-03-01":"2016-03-31"]  # whole months only
        answer = upload(client, csv_of(MONTHLY, months), freq="MS")
        assert answer.status_code == 201, answer.text
        for product_id in (WEEKLY, MONTHLY):
            assert client.post(f"/products/{product_id}/train", headers=ADMIN).status_code == 201
    return path


@pytest.fixture
def client(store_file: Path, tmp_path: Path) -> Iterator[TestClient]:
    """The app over a private copy of the module's store."""
    path = tmp_path / "store.db"
    shutil.copy(store_file, path)
    with TestClient(create_app(make_settings(path))) as test_client:
        yield test_client


def products(client: TestClient) -> dict[str, dict[str, Any]]:
    return {p["product_id"]: p for p in client.get("/products").json()}


def metrics_of(client: TestClient, product_id: str) -> dict[str, Any]:
    [version] = client.get(f"/products/{product_id}/models").json()
    assert version["params"]["frequency"] == products(client)[product_id]["frequency"]
    return dict(version["metrics"])


def history(client: TestClient, product_id: str) -> pd.Series:
    points = client.get(f"/products/{product_id}/sales").json()["points"]
    return pd.Series(
        [p["quantity"] for p in points], index=pd.to_datetime([p["date"] for p in points])
    )


def test_the_listing_shows_each_products_frequency(client: TestClient) -> None:
    listed = products(client)
    assert (listed[WEEKLY]["frequency"], listed[MONTHLY]["frequency"]) == ("W-FRI", "MS")
    assert listed[WEEKLY]["sales_days"] == len(history(client, WEEKLY))
    weekly = client.get("/products", params={"freq": "w-fri"})  # any case, as --freq
    assert [p["product_id"] for p in weekly.json()] == [WEEKLY]
    assert weekly.headers["x-total-count"] == "1"
    assert [p["product_id"] for p in client.get("/products?freq=MS").json()] == [MONTHLY]
    refused = client.get("/products", params={"freq": "W"})
    assert refused.status_code == 422
    assert "W-MON ... W-SUN" in refused.text


def test_daily_rows_uploaded_with_freq_ms_are_stored_as_month_sums(
    client: TestClient, daily: pd.Series
) -> None:
    expected = daily["2011-03-01":"2016-03-31"].resample("MS").sum()
    assert history(client, MONTHLY).to_dict() == expected.to_dict()


def test_a_weekly_forecast_has_one_point_per_week_on_its_friday(client: TestClient) -> None:
    answer = client.get(f"/products/{WEEKLY}/forecast", params={"horizon": 5})
    assert answer.status_code == 200
    body = answer.json()
    days = [dt.date.fromisoformat(p["ds"]) for p in body["points"]]
    assert days == [dt.date(2016, 4, 22) + dt.timedelta(weeks=i) for i in range(1, 6)]
    assert (body["frequency"], body["horizon"]) == ("W-FRI", 5)
    recent = history(client, WEEKLY)[-8:].mean()
    assert 0.5 * recent < body["points"][0]["yhat"] < 1.5 * recent  # weekly magnitudes


def test_a_monthly_forecast_falls_on_month_starts(client: TestClient) -> None:
    points = client.get(f"/products/{MONTHLY}/forecast", params={"horizon": 3}).json()["points"]
    assert [p["ds"] for p in points] == ["2016-04-01", "2016-05-01", "2016-06-01"]


def test_without_a_horizon_a_monthly_product_forecasts_its_24_months_a_weekly_one_30_weeks(
    client: TestClient,
) -> None:
    monthly = client.get(f"/products/{MONTHLY}/forecast")
    assert monthly.status_code == 200, monthly.text
    assert (monthly.json()["horizon"], len(monthly.json()["points"])) == (24, 24)
    assert monthly.headers["etag"].endswith('.h24.i0.8"')
    weekly = client.get(f"/products/{WEEKLY}/forecast").json()
    assert (weekly["horizon"], weekly["points"][-1]["ds"]) == (30, "2016-11-18")


def test_post_forecasts_without_a_horizon_gives_each_product_its_own_default(
    client: TestClient,
) -> None:
    answer = client.post("/forecasts", json={"product_ids": [WEEKLY, MONTHLY]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["horizon"], body["errors"]) == (30, [])
    weekly, monthly = body["forecasts"]
    assert weekly == client.get(f"/products/{WEEKLY}/forecast").json()
    assert monthly == client.get(f"/products/{MONTHLY}/forecast").json()
    assert [len(f["points"]) for f in body["forecasts"]] == [30, 24]
    # A horizon asked explicitly is each product's, refused where past its limit.
    asked = client.post("/forecasts", json={"product_ids": [WEEKLY, MONTHLY], "horizon": 30})
    assert [f["product_id"] for f in asked.json()["forecasts"]] == [WEEKLY]
    [refused] = asked.json()["errors"]
    assert (refused["product_id"], refused["status"]) == (MONTHLY, 422)
    assert "between 1 and 24 months" in refused["detail"]


@pytest.mark.parametrize(
    ("product_id", "horizon", "limit"),
    [(WEEKLY, 105, "between 1 and 104 weeks"), (MONTHLY, 25, "between 1 and 24 months")],
)
def test_a_horizon_past_the_frequencys_limit_is_422_naming_the_unit(
    client: TestClient, product_id: str, horizon: int, limit: str
) -> None:
    answer = client.get(f"/products/{product_id}/forecast", params={"horizon": horizon})
    assert answer.status_code == 422
    assert limit in answer.json()["detail"]


def test_backtests_hold_out_13_weeks_and_6_months_with_their_seasons(client: TestClient) -> None:
    weekly, monthly = metrics_of(client, WEEKLY), metrics_of(client, MONTHLY)
    assert (weekly["holdout_periods"], weekly["holdout_points"], weekly["season"]) == (13, 13, 52)
    assert (weekly["holdout_start"], weekly["holdout_end"]) == ("2016-01-29", "2016-04-22")
    assert (monthly["holdout_periods"], monthly["season"]) == (6, 12)
    assert (monthly["holdout_start"], monthly["holdout_end"]) == ("2015-10-01", "2016-03-01")


def textbook_mase_parts(series: pd.Series, holdout: int, lag: pd.DateOffset) -> tuple[float, float]:
    """(scale, seasonal-naive MAE on the holdout) for a series without gaps, by the definition:
    the scale is the mean of |y_t - y_(t-m)| over the training part, the naive forecast of
    each holdout period the value one season (m) before it."""
    train, test = series[:-holdout], series[-holdout:]
    scale = (train - train.shift(freq=lag)).dropna().abs().mean()
    naive = train.reindex(test.index - lag).to_numpy()
    return float(scale), float(abs(test.to_numpy() - naive).mean())


@pytest.mark.parametrize(
    ("product_id", "holdout", "lag"),
    [(WEEKLY, 13, pd.DateOffset(weeks=52)), (MONTHLY, 6, pd.DateOffset(months=12))],
)
def test_stored_mase_is_the_textbook_one_with_the_frequencys_season(
    client: TestClient, product_id: str, holdout: int, lag: pd.DateOffset
) -> None:
    series = history(client, product_id)
    scale, naive_mae = textbook_mase_parts(series, holdout, lag)
    metrics = metrics_of(client, product_id)
    assert metrics["mae_seasonal_naive"] == pytest.approx(naive_mae)
    assert metrics["mase"] == pytest.approx(metrics["mae"] / scale)
    assert metrics["mase_seasonal_naive"] == pytest.approx(naive_mae / scale)


def test_stored_daily_mase_skips_the_pairs_a_gap_breaks(
    trained_demo_db: Path, tmp_path: Path
) -> None:
    """On the demo's M5 series, which miss their Christmas days: the scale averages the pairs
    of days a week apart that are both stored."""
    path = tmp_path / "demo.db"
    shutil.copy(trained_demo_db, path)
    service = SalescastService(make_settings(path))
    try:
        [version] = service.list_models("CA_1-FOODS_3")
        days, quantities = service.store.get_series("CA_1-FOODS_3")
    finally:
        service.close()
    series = pd.Series(quantities, index=pd.to_datetime(days))
    last = series.index[-1]
    train = series[: last - pd.Timedelta(days=28)]
    test = series[last - pd.Timedelta(days=27) :]
    assert len(test) == 28
    assert len(train) < (train.index[-1] - train.index[0]).days + 1  # it has gaps
    pairs = pd.concat([train, train.shift(freq="7D")], axis=1, join="inner")
    scale = (pairs[0] - pairs[1]).abs().mean()
    # y_(T+h-m(k+1)), k = floor((h-1)/m): the same weekday in the training part's last week
    # (its last 28 days are all stored, so no step back over a gap is needed here)
    horizon = [(day - train.index[-1]).days for day in test.index]
    naive = [
        train[day - pd.Timedelta(weeks=(h - 1) // 7 + 1)]
        for day, h in zip(test.index, horizon, strict=True)
    ]
    naive_mae = abs(test.to_numpy() - naive).mean()
    metrics = version.metrics
    assert (metrics["frequency"], metrics["season"], metrics["holdout_periods"]) == ("D", 7, 28)
    assert metrics["mae_seasonal_naive"] == pytest.approx(naive_mae)
    assert metrics["mase"] == pytest.approx(metrics["mae"] / scale)
    assert metrics["mase_seasonal_naive"] == pytest.approx(naive_mae / scale)


def test_irregular_dates_are_422_naming_the_product_the_dates_and_freq(
    client: TestClient, daily: pd.Series
) -> None:
    fridays = weekly_sums(daily)[-20:]
    stray = pd.Series([5.0], index=pd.to_datetime(["2016-03-15"]))  # a Tuesday
    answer = upload(client, csv_of("ODD", pd.concat([fridays, stray]).sort_index()))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "'ODD'" in detail
    assert "weekly on FRI (W-FRI), but 2016-03-15 is not" in detail
    assert "freq=) W-FRI" in detail
    assert "ODD" not in products(client)


def test_an_append_off_the_stored_weekday_is_refused_and_changes_nothing(
    client: TestClient,
) -> None:
    stored, data_version = history(client, WEEKLY), products(client)[WEEKLY]["data_version"]
    wednesday = b"product_id,date,quantity\nCA_1-FOODS_3-W,2016-04-27,100\nNEW,2016-04-27,1\n"
    answer = upload(client, wednesday)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "is stored as weekly on FRI (W-FRI), but the upload has 2016-04-27" in detail
    assert "--freq W-FRI (HTTP: freq=W-FRI)" in detail
    assert products(client)[WEEKLY]["data_version"] == data_version
    assert history(client, WEEKLY).equals(stored)
    assert "NEW" not in products(client)


def test_a_next_week_of_daily_rows_is_summed_into_the_stored_friday(client: TestClient) -> None:
    week = [dt.date(2016, 4, 23) + dt.timedelta(days=i) for i in range(7)]  # Saturday..Friday
    body = "product_id,date,quantity\n" + "".join(f"{WEEKLY},{d},10\n" for d in week)
    answer = upload(client, body.encode(), freq="W-FRI")
    assert answer.status_code == 201, answer.text
    assert answer.json()["rows"] == 1
    assert history(client, WEEKLY)[pd.Timestamp("2016-04-29")] == 70.0


def test_a_declared_frequency_other_than_the_stored_one_is_refused(client: TestClient) -> None:
    answer = upload(
        client, f"product_id,date,quantity\n{WEEKLY},2016-05-01,3\n".encode(), freq="MS"
    )
    assert answer.status_code == 422
    assert "freq MS cannot change that" in answer.json()["detail"]
    assert pd.Timestamp("2016-05-01") not in history(client, WEEKLY).index


@pytest.mark.parametrize(
    ("freq", "reason"), [("W", "name the weekday"), ("fortnightly", "use one of D, W-MON")]
)
def test_a_freq_that_is_not_a_frequency_is_422_saying_which_are(
    client: TestClient, freq: str, reason: str
) -> None:
    answer = upload(client, b"product_id,date,quantity\nX,2016-05-01,3\n", freq=freq)
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["query", "freq"]
    assert reason in error["msg"]
    assert "X" not in products(client)


def test_weekly_and_monthly_models_fit_a_yearly_seasonality_only(
    store_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "store.db"
    shutil.copy(store_file, path)
    service = SalescastService(make_settings(path))
    try:
        for product_id in (WEEKLY, MONTHLY):
            model = service.load_model(product_id).model
            assert set(model.seasonalities) == {"yearly"}
    finally:
        service.close()
