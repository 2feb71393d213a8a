"""Prophet models as bytes: Prophet's own JSON model format, zstd-compressed. Never pickle.

Two things here go beyond `prophet.serialize`, and both keep the format readable by
`prophet.serialize.model_from_json`:

- encode_model stores a *prediction view* of the model: a fitted model carries its
  whole training frame (`history`, `history_dates`), three quarters of the JSON, and
  forecasting future dates reads little of it (see `_prediction_view`).
- decode_model reads the pandas fields itself instead of through `pd.read_json`, which
  took most of the decode time. It accepts only input whose read_json result it
  reproduces (the tests compare every attribute with Prophet's reader) and hands
  anything else to `prophet.serialize.model_from_json`, which stays the reference.
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import zstandard

if TYPE_CHECKING:
    from prophet import Prophet

logger = logging.getLogger(__name__)

MODEL_FORMAT = "prophet-json+zstd"

# Level 3: decompression costs the same at every level, and compression runs on the
# request path (each model-cache fill re-encodes the model). On 5 years, level 10 is
# ~10% smaller for ~5x the time, level 19 ~40% smaller for ~100 ms.
_ZSTD_LEVEL = 3

# A model JSON is a few hundred KB even with a full history; a frame header claiming
# more is not a model, and must not make the decoder allocate what it claims.
_MAX_JSON_BYTES = 64 * 1024 * 1024

# The observations: read by fit, plots and cross-validation, never by predict.
_OBSERVATION_COLUMNS = ("y", "y_scaled")

# make_future_dataframe reads history_dates.max(), and history_dates.tail(5) to infer
# the step when called with freq=None.
_HISTORY_DATES_KEPT = 5


class ModelDecodeError(ValueError):
    """The bytes are not a model in MODEL_FORMAT."""


def encode_model(model: Prophet) -> bytes:
    """A fitted model's prediction view as Prophet JSON (`model_to_json`), then zstd.

    The caller's model is not modified. Raises ValueError for a model not yet fitted.
    """
    from prophet.serialize import model_to_json

    text = model_to_json(_prediction_view(model))
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(text.encode())


def decode_model(blob: bytes) -> Prophet:
    """Inverse of encode_model, also for blobs written with a full history.

    Raises ModelDecodeError for anything that is not a model. Only JSON data is
    read (no code is run), so bytes from an untrusted cache cannot do more than
    fail to decode. Thread-safe.
    """
    try:
        size = zstandard.frame_content_size(blob)
        if not 0 <= size <= _MAX_JSON_BYTES:  # -1: size not in the header; compress() writes it
            raise ValueError(f"frame content size {size} is not that of a model")
        raw = zstandard.ZstdDecompressor().decompress(blob)
    except Exception as exc:  # any malformed input is the same failure to the caller
        raise ModelDecodeError(f"not a {MODEL_FORMAT} model: {exc}") from exc
    try:
        return _read_model_fast(raw)
    except Exception as exc:  # the official reader decides; this path is only faster
        logger.debug("fast model decode declined (%r); using prophet.serialize", exc)
    from prophet.serialize import model_from_json

    try:
        return model_from_json(raw.decode())
    except Exception as exc:
        raise ModelDecodeError(f"not a {MODEL_FORMAT} model: {exc}") from exc


def _prediction_view(model: Prophet) -> Prophet:
    """A shallow copy whose history keeps what predicting future dates reads.

    In prophet 1.5.0 (forecaster.py), prediction reads of the training data only:
    - `history_dates.max()` and `.tail(5)` in make_future_dataframe (lines 2201, 2205);
    - `history["t"]`, every row: `np.diff(history["t"]).mean()` is the step of the
      simulated trend changes when exactly one predicted date lies past the history
      (line 1997; a horizon of 1 day). A tail would change it on a series with gaps
      (missing days) and one row makes it NaN, so no row is dropped;
    - `history["ds"].max()` in _prepare_regressors_for_predict (line 792);
    - the whole frame for `predict()` without a frame (in-sample, line 1477), which
      keeps working as the time, floor, cap and regressor columns stay.
    Dropped: `y` and `y_scaled`, and history_dates before the last 5, read by fit,
    plots, cross-validation and make_future_dataframe(include_history=True).
    """
    view = copy.copy(model)
    if model.history is not None:
        dropped = [name for name in _OBSERVATION_COLUMNS if name in model.history.columns]
        view.history = model.history.drop(columns=dropped)
    if model.history_dates is not None:
        view.history_dates = model.history_dates.tail(_HISTORY_DATES_KEPT)
    return view


# --- the fast reader: the same model as prophet.serialize.model_from_dict, which reads
# the pandas fields with pd.read_json (orient 'split' for PD_SERIES, 'table' for
# PD_DATAFRAME). Each reader below does what read_json does (pandas 3.1,
# pandas/io/json/_json.py and _table_schema.py) for the inputs it accepts, and raises
# _DeclinedError for any other, which sends the blob to the official reader.


class _DeclinedError(ValueError):
    """The fast reader does not reproduce read_json for this input."""


# read_json reads an all-integer 'split' index above this as epoch seconds.
_MIN_EPOCH_SECONDS = 31_536_000

# Dates as DataFrame.to_json(date_format="iso") writes them (milliseconds, no zone):
# the only form numpy's parser, which is ~10x faster than pandas', is trusted with.
_ISO_MS_TEMPLATE = "0000-00-00T00:00:00.000"
_ISO_MS_DIGIT = np.array([char == "0" for char in _ISO_MS_TEMPLATE])
_ISO_MS_CODES = np.array([ord(char) for char in _ISO_MS_TEMPLATE], dtype=np.uint32)


def _read_model_fast(raw: bytes) -> Prophet:
    # The embedded pandas JSON is parsed by the parser read_json itself imports: it
    # reads floats with precise_float=False, which differs from a correctly rounded
    # parse (orjson, json) in the last bit of about a quarter of history["t"].
    from pandas.io.json._json import ujson_loads  # type: ignore[attr-defined]  # private
    from prophet.serialize import PD_DATAFRAME, PD_SERIES, model_from_dict

    model_dict = orjson.loads(raw)
    embedded: dict[str, Any] = {name: model_dict[name] for name in (*PD_SERIES, *PD_DATAFRAME)}
    model = model_from_dict({**model_dict, **dict.fromkeys(embedded)})
    for name in PD_SERIES:
        text = embedded[name]
        setattr(model, name, None if text is None else _read_split_series(ujson_loads(text)))
    for name in PD_DATAFRAME:
        text = embedded[name]
        frame = None if text is None else _read_table(ujson_loads(text))
        if frame is not None and name == "train_component_cols":
            frame.columns.name = "component"  # as model_from_dict names them
            frame.index.name = "col"
        setattr(model, name, frame)
    return model


def _read_split_series(decoded: Any) -> pd.Series[Any]:
    """`model_from_dict`'s read_json(typ='series', orient='split') and 'ds' handling."""
    if not isinstance(decoded, dict) or set(decoded) != {"name", "index", "data"}:
        raise _DeclinedError("not a split series")
    name, index, data = decoded["name"], decoded["index"], decoded["data"]
    if not data or len(index) != len(data) or not all(type(i) is int for i in index):
        raise _DeclinedError("empty, or an index other than integers")
    if min(index) > _MIN_EPOCH_SECONDS:
        raise _DeclinedError("an index read_json would read as dates")
    if name == "ds":
        # read_json infers these as dates (its first attempt, format inferred); for
        # dates in to_json's own form, its later attempts give the same result
        dates = _parse_iso_ms(data, _read_json_date_dtype())
        return pd.Series(dates, index=index, name=name)
    series = pd.Series(data=data, index=index, name=name)
    # Labels (holiday names) stay strings unless all of them read as dates, or all as
    # numbers: one that reads as neither proves it.
    if series.dtype != "string" or not any(_is_plain_label(value) for value in data):
        raise _DeclinedError("labels that may read as dates or numbers")
    return series


@functools.cache
def _read_json_date_dtype() -> np.dtype[Any]:
    """The resolution read_json infers for dates in to_json's ISO form (us in pandas 3)."""
    return pd.to_datetime(pd.Series([_ISO_MS_TEMPLATE.replace("0", "1")])).to_numpy().dtype


def _parse_iso_ms(values: list[Any], dtype: np.dtype[Any] | str) -> np.ndarray[Any, Any]:
    text = np.array(values)
    if text.dtype != np.dtype(f"<U{len(_ISO_MS_TEMPLATE)}"):
        raise _DeclinedError("dates other than ISO strings")
    codes = text.view(np.uint32).reshape(len(values), len(_ISO_MS_TEMPLATE))
    digits = codes[:, _ISO_MS_DIGIT]
    if not (
        ((digits >= ord("0")) & (digits <= ord("9"))).all()
        and (codes[:, ~_ISO_MS_DIGIT] == _ISO_MS_CODES[~_ISO_MS_DIGIT]).all()
    ):
        raise _DeclinedError("dates other than to_json's ISO form")
    return np.array(values, dtype=dtype)


@functools.lru_cache(maxsize=4096)  # holiday names repeat across every model of a country
def _is_plain_label(value: str) -> bool:
    try:
        pd.Series([value]).astype("float64")
    except (TypeError, ValueError):
        pass
    else:
        return False
    try:
        pd.to_datetime(value, errors="raise")
    except (TypeError, ValueError, OverflowError):
        return True
    return False


def _read_table(decoded: Any) -> pd.DataFrame:
    """read_json(orient='table') of a frame written with index=False (parse_table_schema)."""
    if not isinstance(decoded, dict) or set(decoded) != {"schema", "data"}:
        raise _DeclinedError("not a table")
    fields, rows = decoded["schema"]["fields"], decoded["data"]
    if "primaryKey" in decoded["schema"] or not rows:
        raise _DeclinedError("an index, or no rows")
    names = [field["name"] for field in fields]
    if len(set(names)) != len(names) or not all(isinstance(name, str) for name in names):
        raise _DeclinedError("repeated or non-string column names")
    columns: dict[str, Any] = {}
    for field in fields:
        if set(field) != {"name", "type"}:  # extDtype, tz, freq, constraints
            raise _DeclinedError(f"field {field!r}")
        values = [row[field["name"]] for row in rows]
        if field["type"] == "number":
            columns[field["name"]] = np.array(values, dtype=np.float64)
        elif field["type"] == "integer" and all(type(value) is int for value in values):
            columns[field["name"]] = np.array(values, dtype=np.int64)
        elif field["type"] == "datetime":  # parse_table_schema: astype("datetime64[ns]")
            columns[field["name"]] = _parse_iso_ms(values, "datetime64[ns]")
        else:
            raise _DeclinedError(f"field {field!r}")
    return pd.DataFrame(columns, columns=names)
