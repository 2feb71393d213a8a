"""Frames and codecs: data round-trips, and anything doubtful decodes to DecodeError."""

from __future__ import annotations

import contextlib
import pickle
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salescast.cache import CodecRegistry, DecodeError, FrameSerializer, JsonCodec, default_registry
from salescast.cache.frames import FLAG_ZSTD

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@given(value=json_values)
def test_json_like_values_round_trip(value: Any) -> None:
    serializer = FrameSerializer()
    assert serializer.loads("k", serializer.dumps("k", value)) == value


@given(value=st.binary(max_size=4000))
def test_bytes_round_trip_as_bytes(value: bytes) -> None:
    serializer = FrameSerializer()
    result = serializer.loads("k", serializer.dumps("k", value))
    assert type(result) is bytes
    assert result == value


@given(value=json_values, position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_a_flipped_byte_in_a_signed_frame_is_a_decode_error(
    value: Any, position: int, flip: int
) -> None:
    serializer = FrameSerializer(secret="s3cret")
    frame = bytearray(serializer.dumps("k", value))
    frame[position % len(frame)] ^= flip
    with pytest.raises(DecodeError):
        serializer.loads("k", bytes(frame))


@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(data: bytes) -> None:
    serializer = FrameSerializer()
    with contextlib.suppress(DecodeError):
        serializer.loads("k", data)


def test_none_is_a_value_not_a_miss() -> None:
    serializer = FrameSerializer()
    assert serializer.loads("k", serializer.dumps("k", None)) is None


def test_frame_written_for_another_key_is_refused() -> None:
    serializer = FrameSerializer()
    with pytest.raises(DecodeError, match="another key"):
        serializer.loads("other", serializer.dumps("k", {"a": 1}))


def test_remembered_key_digests_still_tell_keys_apart() -> None:
    serializer = FrameSerializer()
    frames = {key: serializer.dumps(key, key) for key in ("a", "b")}
    for _ in range(2):  # the second round reads remembered digests
        assert [serializer.loads(key, frames[key]) for key in ("a", "b")] == ["a", "b"]
        with pytest.raises(DecodeError, match="another key"):
            serializer.loads("b", frames["a"])


def test_a_signed_frame_is_refused_without_a_secret() -> None:
    frame = FrameSerializer(secret="one").dumps("k", b"raw bytes")
    with pytest.raises(DecodeError, match="signed frame but no secret"):
        FrameSerializer().loads("k", frame)


def test_a_frame_of_another_format_version_says_so() -> None:
    frame = bytearray(FrameSerializer().dumps("k", 1))
    frame[2] = 9
    with pytest.raises(DecodeError, match="frame format 9 is not 2"):
        FrameSerializer().loads("k", bytes(frame))


def test_signature_binds_the_key_and_the_secret() -> None:
    frame = FrameSerializer(secret="one").dumps("k", [1, 2])
    with pytest.raises(DecodeError):
        FrameSerializer(secret="two").loads("k", frame)
    with pytest.raises(DecodeError, match="unsigned"):
        FrameSerializer(secret="one").loads("k", FrameSerializer().dumps("k", [1, 2]))


def test_large_payloads_are_compressed_and_small_ones_are_not() -> None:
    serializer = FrameSerializer(compress_above=1024)
    big = serializer.dumps("k", "x" * 5000)
    small = serializer.dumps("k", "x" * 10)
    assert big[4] & FLAG_ZSTD
    assert not small[4] & FLAG_ZSTD
    assert len(big) < 1000
    assert serializer.loads("k", big) == "x" * 5000


def test_incompressible_payloads_are_stored_as_they_are() -> None:
    serializer = FrameSerializer(compress_above=1024)
    blob = random.Random(3).randbytes(50_000)  # like an already-compressed model
    frame = serializer.dumps("k", blob)
    assert not frame[4] & FLAG_ZSTD
    assert serializer.loads("k", frame) == blob
    assert serializer.dumps("k", b"ab" * 25_000)[4] & FLAG_ZSTD


def test_pickle_frames_are_not_decoded() -> None:
    with pytest.raises(DecodeError):
        FrameSerializer().loads("k", pickle.dumps({"a": 1}))


def test_numpy_values_are_cached_as_data() -> None:
    serializer = FrameSerializer()
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    restored = serializer.loads("k", serializer.dumps("k", array))
    assert restored.dtype == np.float32
    np.testing.assert_array_equal(restored, array)
    nested = serializer.loads("k", serializer.dumps("k", {"a": np.arange(3), "s": np.int64(4)}))
    assert nested == {"a": [0, 1, 2], "s": 4}


def test_object_arrays_are_refused() -> None:
    with pytest.raises(TypeError):
        FrameSerializer().dumps("k", np.array([object()], dtype=object))


def test_dataframes_round_trip_with_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "ds": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "yhat": [1.5, 2.5],
            "n": [1, 2],
            "name": ["a", "b"],
        }
    )
    serializer = FrameSerializer()
    restored = serializer.loads("k", serializer.dumps("k", {"frame": frame, "n": 1}))
    pd.testing.assert_frame_equal(restored["frame"], frame)
    series = pd.Series([1.0, 2.0], name="y")
    pd.testing.assert_series_equal(serializer.loads("k", serializer.dumps("k", series)), series)


def test_unknown_types_cannot_be_encoded() -> None:
    with pytest.raises(TypeError):
        FrameSerializer().dumps("k", object())


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


class PointCodec:
    codec_id = 200
    python_type = Point

    def encode(self, value: Any) -> bytes:
        return f"{value.x},{value.y}".encode()

    def decode(self, data: bytes) -> Any:
        x, y = data.decode().split(",")
        return Point(int(x), int(y))


def test_a_registered_codec_encodes_its_type() -> None:
    registry = default_registry.copy()
    registry.register(PointCodec())
    serializer = FrameSerializer(registry=registry)
    frame = serializer.dumps("k", Point(3, 4))
    assert frame[3] == 200
    restored = serializer.loads("k", frame)
    assert (restored.x, restored.y) == (3, 4)


def test_a_frame_of_an_unregistered_codec_is_a_decode_error() -> None:
    registry = default_registry.copy()
    registry.register(PointCodec())
    frame = FrameSerializer(registry=registry).dumps("k", Point(1, 2))
    with pytest.raises(DecodeError, match="unknown codec"):
        FrameSerializer().loads("k", frame)


def test_codec_ids_cannot_be_taken_twice() -> None:
    registry = CodecRegistry(fallback=JsonCodec())
    registry.register(PointCodec())

    class Other(PointCodec):
        pass

    with pytest.raises(ValueError, match="taken"):
        registry.register(Other())
