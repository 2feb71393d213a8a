"""JSON-like values (with numpy and pandas inside) through orjson."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pandas as pd

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
# First payload byte: whether the document holds revivable pandas objects.
# Decoding only walks the tree when it does, so plain values stay one C call.
_PLAIN = b"J"
_WITH_PANDAS = b"P"
_FRAME = "__frame__"
_SERIES = "__series__"


class JsonCodec:
    """Dicts, lists, str, int, float, bool, ``None``, numpy arrays/scalars, pandas.

    Round trips: numpy arrays nested in a structure come back as lists (a
    top-level array goes through ``NdarrayCodec`` and keeps its dtype);
    datetimes and ``pd.Timestamp`` come back as ISO strings; tuples as lists;
    ``DataFrame`` and ``Series`` come back as such, with column dtypes.
    """

    codec_id = 2
    python_type: type[Any] = object

    def encode(self, value: Any) -> bytes:
        """orjson with numpy support; pandas objects as tagged split dicts."""
        found_pandas = False

        def default(obj: Any) -> Any:
            nonlocal found_pandas
            # pandas is imported only by programs that use it: if it is not
            # loaded, ``obj`` cannot be a pandas object.
            pandas = sys.modules.get("pandas")
            if pandas is not None:
                if isinstance(obj, pandas.DataFrame):
                    found_pandas = True
                    return _frame_to_doc(obj)
                if isinstance(obj, pandas.Series):
                    found_pandas = True
                    return _series_to_doc(obj)
                if isinstance(obj, pandas.Timestamp):
                    return obj.isoformat()
            if isinstance(obj, set | frozenset):
                return sorted(obj)
            raise TypeError(f"{type(obj).__name__} is not cacheable as JSON")

        body = orjson.dumps(value, default=default, option=_OPTIONS)
        return (_WITH_PANDAS if found_pandas else _PLAIN) + body

    def decode(self, data: bytes) -> Any:
        """Parse; revive pandas objects when the encoder marked some."""
        value = orjson.loads(data[1:])
        if data[:1] == _WITH_PANDAS:
            return _revive(value)
        return value


def _frame_to_doc(frame: pd.DataFrame) -> dict[str, Any]:
    split = frame.to_dict(orient="split")
    return {
        _FRAME: split,
        "dtypes": [str(dtype) for dtype in frame.dtypes],
        "index_dtype": str(frame.index.dtype),
    }


def _series_to_doc(series: pd.Series) -> dict[str, Any]:
    return {
        _SERIES: {"name": series.name, "index": list(series.index), "data": list(series)},
        "dtype": str(series.dtype),
        "index_dtype": str(series.index.dtype),
    }


def _revive(value: Any) -> Any:
    if isinstance(value, list):
        return [_revive(item) for item in value]
    if not isinstance(value, dict):
        return value
    if _FRAME in value:
        return _doc_to_frame(value)
    if _SERIES in value:
        return _doc_to_series(value)
    return {name: _revive(item) for name, item in value.items()}


def _doc_to_frame(doc: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    split = doc[_FRAME]
    index = pd.Index(split["index"]).astype(doc["index_dtype"])
    frame = pd.DataFrame(split["data"], index=index, columns=split["columns"])
    columns = list(frame.columns)
    if len(set(columns)) == len(columns):
        frame = frame.astype(dict(zip(columns, doc["dtypes"], strict=True)))
    return frame


def _doc_to_series(doc: dict[str, Any]) -> pd.Series:
    import pandas as pd

    body = doc[_SERIES]
    index = pd.Index(body["index"]).astype(doc["index_dtype"])
    return pd.Series(body["data"], index=index, name=body["name"]).astype(doc["dtype"])
