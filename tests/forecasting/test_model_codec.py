"""The model codec on real fits: what is stored predicts like Prophet's own reader, and no more."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from prophet import Prophet
from prophet.serialize import model_from_json, model_to_json

from salescast.demo import read_demo_csv
from salescast.forecasting.model_codec import ModelDecodeError, decode_model, encode_model
from salescast.forecasting.training import TrainingParams, fit_prophet
from tests.conftest import M5_CSV, require_shared_data

CODEC_LOGGER = "salescast.forecasting.model_codec"

# Two years of CA_1-FOODS_3, with the days the demo data is missing left as gaps.
MODEL_PARAMS = {
    "plain": TrainingParams(uncertainty_samples=200),
    "us-holidays": TrainingParams(holidays_country="US", uncertainty_samples=200),
    "no-uncertainty": TrainingParams(holidays_country="US", uncertainty_samples=0),
}


def read_series(
    rows: list[dict[str, str]], store: str, dept: str
) -> tuple[list[dt.date], list[float]]:
    points = sorted(
        (dt.date.fromisoformat(row["date"]), float(row["sales"]))
        for row in rows
        if (row["store_id"], row["dept_id"]) == (store, dept)
    )
    return [day for day, _ in points], [quantity for _, quantity in points]


@pytest.fixture(scope="module")
def demo_series() -> tuple[list[dt.date], list[float]]:
    rows = list(csv.DictReader(io.StringIO(read_demo_csv().decode())))
    days, quantities = read_series(rows, "CA_1", "FOODS_3")
    assert len(days) < (days[-1] - days[0]).days + 1  # the gaps are part of the point
    return days, quantities


@pytest.fixture(scope="module")
def models(demo_series: tuple[list[dt.date], list[float]]) -> dict[str, Prophet]:
    days, quantities = demo_series
    return {name: fit_prophet(days, quantities, params) for name, params in MODEL_PARAMS.items()}


def full_history_blob(model: Prophet) -> bytes:
    """What encode_model wrote before it kept only a prediction view."""
    return zstandard.ZstdCompressor(level=10).compress(model_to_json(model).encode())


def official_decode(blob: bytes) -> Prophet:
    return model_from_json(zstandard.ZstdDecompressor().decompress(blob).decode())


def forecast(model: Prophet, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
    if future is None:
        future = model.make_future_dataframe(periods=horizon, include_history=False)
    np.random.seed(7)  # Prophet samples its intervals from numpy's global generator
    return model.predict(future)


@pytest.mark.parametrize("name", MODEL_PARAMS)
@pytest.mark.parametrize("horizon", [1, 30])
def test_fast_decode_predicts_exactly_like_prophets_reader(
    models: dict[str, Prophet], name: str, horizon: int, caplog: pytest.LogCaptureFixture
) -> None:
    blob = encode_model(models[name])
    caplog.set_level(logging.DEBUG, logger=CODEC_LOGGER)
    fast = decode_model(blob)
    assert not caplog.records  # the fast path read it, no fallback
    official = official_decode(blob)
    pd.testing.assert_frame_equal(
        fast.make_future_dataframe(periods=horizon, include_history=False),
        official.make_future_dataframe(periods=horizon, include_history=False),
    )
    pd.testing.assert_frame_equal(forecast(fast, horizon), forecast(official, horizon))


@pytest.mark.parametrize("name", MODEL_PARAMS)
@pytest.mark.parametrize("horizon", [1, 30])
def test_the_prediction_view_forecasts_like_the_full_history(
    models: dict[str, Prophet], name: str, horizon: int
) -> None:
    # horizon 1 reads the mean step of history["t"]: one row would make it NaN, and a
    # tail would take the last step instead of the mean over the gaps
    stored = decode_model(encode_model(models[name]))
    full = official_decode(full_history_blob(models[name]))
    expected = forecast(full, horizon)
    pd.testing.assert_frame_equal(forecast(stored, horizon), expected)
    assert np.isfinite(expected.drop(columns="ds").to_numpy()).all()
    # the intervals are percentiles, which most sampled trend changes do not move;
    # the samples themselves show any change in the step
    future = full.make_future_dataframe(periods=horizon, include_history=False)
    samples = []
    for model in (stored, full):
        np.random.seed(7)
        samples.append(model.predictive_samples(future))
    for key in ("trend", "yhat"):
        np.testing.assert_array_equal(samples[0][key], samples[1][key])


def test_the_prediction_view_still_predicts_in_sample(models: dict[str, Prophet]) -> None:
    # predict() without a frame predicts the history's dates, observations not needed
    blob = encode_model(models["us-holidays"])
    stored, full = decode_model(blob), official_decode(full_history_blob(models["us-holidays"]))
    frames = []
    for model in (stored, full):
        np.random.seed(7)
        frames.append(model.predict())
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert len(frames[0]) == len(models["us-holidays"].history)


def test_a_decoded_model_forecasts_like_the_fitted_one(models: dict[str, Prophet]) -> None:
    model = models["us-holidays"]
    restored = decode_model(encode_model(model))
    # the same frame for both: a fit keeps the dates' resolution (s here), any JSON
    # reader gives us, and make_future_dataframe passes it on to the forecast
    future = model.make_future_dataframe(periods=30, include_history=False)
    pd.testing.assert_frame_equal(forecast(restored, 30, future), forecast(model, 30, future))


def test_encoding_leaves_the_callers_model_untouched(models: dict[str, Prophet]) -> None:
    model = models["us-holidays"]
    history, history_dates = model.history, model.history_dates
    history_before, dates_before = history.copy(), history_dates.copy()
    encode_model(model)
    assert model.history is history
    assert model.history_dates is history_dates
    pd.testing.assert_frame_equal(model.history, history_before)
    pd.testing.assert_series_equal(model.history_dates, dates_before)
    assert {"y", "y_scaled"} <= set(model.history.columns)


def test_the_stored_history_drops_the_observations_and_keeps_every_time_step(
    models: dict[str, Prophet],
) -> None:
    model = models["us-holidays"]
    stored = official_decode(encode_model(model))
    assert set(stored.history.columns) == set(model.history.columns) - {"y", "y_scaled"}
    assert len(stored.history) == len(model.history)
    pd.testing.assert_series_equal(
        stored.history_dates, model.history_dates.tail(5), check_dtype=False
    )


def test_a_full_history_blob_decodes_like_prophets_reader(
    models: dict[str, Prophet], caplog: pytest.LogCaptureFixture
) -> None:
    blob = full_history_blob(models["us-holidays"])
    caplog.set_level(logging.DEBUG, logger=CODEC_LOGGER)
    fast = decode_model(blob)
    assert not caplog.records
    assert_same_model(fast, official_decode(blob))


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_fast_decode_builds_every_attribute_like_prophets_reader(
    models: dict[str, Prophet], name: str
) -> None:
    blob = encode_model(models[name])
    assert_same_model(decode_model(blob), official_decode(blob))


def test_a_blob_the_fast_path_declines_is_read_by_prophet(
    models: dict[str, Prophet], caplog: pytest.LogCaptureFixture
) -> None:
    model_dict = json.loads(zstandard.ZstdDecompressor().decompress(encode_model(models["plain"])))
    dates = json.loads(model_dict["history_dates"])
    dates["data"] = [value.removesuffix(".000") for value in dates["data"]]  # not to_json's form
    model_dict["history_dates"] = json.dumps(dates)
    blob = zstandard.ZstdCompressor().compress(json.dumps(model_dict).encode())
    caplog.set_level(logging.DEBUG, logger=CODEC_LOGGER)
    decoded = decode_model(blob)
    assert "declined" in caplog.text
    assert_same_model(decoded, official_decode(blob))


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"garbage", id="garbage"),
        pytest.param(b"\x28\xb5\x2f\xfd" + b"\x00" * 20, id="zstd-magic-then-zeros"),
        pytest.param(zstandard.ZstdCompressor().compress(b"not json"), id="not-json"),
        pytest.param(zstandard.ZstdCompressor().compress(b"{}"), id="empty-object"),
        pytest.param(zstandard.ZstdCompressor().compress(b"[1, 2]"), id="a-list"),
        pytest.param(zstandard.ZstdCompressor().compress(b'{"history": null}'), id="one-field"),
    ],
)
def test_bytes_that_are_not_a_model_raise_model_decode_error(blob: bytes) -> None:
    with pytest.raises(ModelDecodeError):
        decode_model(blob)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_a_truncated_model_raises_model_decode_error(
    models: dict[str, Prophet], keep: float
) -> None:
    blob = encode_model(models["plain"])
    with pytest.raises(ModelDecodeError):
        decode_model(blob[: int(len(blob) * keep)])


def test_a_frame_claiming_a_huge_content_size_is_refused_before_decompressing() -> None:
    # magic, a descriptor for an 8-byte content size in one segment, the size, an empty
    # last raw block: a frame the decompressor would size its output from
    blob = b"\x28\xb5\x2f\xfd" + b"\xe0" + (1 << 40).to_bytes(8, "little") + b"\x01\x00\x00"
    assert zstandard.frame_content_size(blob) == 1 << 40
    with pytest.raises(ModelDecodeError, match="frame content size"):
        decode_model(blob)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256))
def test_arbitrary_bytes_raise_model_decode_error_only(blob: bytes) -> None:
    with pytest.raises(ModelDecodeError):
        decode_model(blob)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(JSON_VALUES)
def test_json_that_is_not_a_model_raises_model_decode_error(value: Any) -> None:
    blob = zstandard.ZstdCompressor().compress(json.dumps(value).encode())
    with pytest.raises(ModelDecodeError):
        decode_model(blob)


@pytest.mark.slow
def test_a_five_year_m5_model_is_stored_in_40_kb_at_most() -> None:
    with require_shared_data(M5_CSV).open(newline="") as file:
        days, quantities = read_series(list(csv.DictReader(file)), "CA_1", "FOODS_3")
    assert (days[-1] - days[0]).days > 5 * 365
    model = fit_prophet(days, quantities, TrainingParams(holidays_country="US"))
    blob = encode_model(model)
    assert len(blob) <= 40_000
    assert len(blob) < len(full_history_blob(model)) * 0.7


def assert_same_model(actual: Prophet, expected: Prophet) -> None:
    """Every attribute equal, pandas fields with their dtypes, index types and axis names."""
    assert vars(actual).keys() == vars(expected).keys()
    for name, value in vars(expected).items():
        got = getattr(actual, name)
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got, value, check_exact=True, check_column_type=True)
            assert (got.index.name, got.columns.name) == (value.index.name, value.columns.name)
        elif isinstance(value, pd.Series):
            pd.testing.assert_series_equal(got, value, check_exact=True, check_index_type=True)
        elif isinstance(value, np.ndarray):
            assert got.dtype == value.dtype
            np.testing.assert_array_equal(got, value)
        elif name == "params":
            assert got.keys() == value.keys()
            for key, array in value.items():
                assert got[key].dtype == array.dtype
                np.testing.assert_array_equal(got[key], array)
        else:
            assert got == value, name
            assert type(got) is type(value), name
