"""Prophet models as bytes: Prophet's own JSON model format, zstd-compressed. Never pickle."""

from __future__ import annotations

from typing import TYPE_CHECKING

import zstandard

if TYPE_CHECKING:
    from prophet import Prophet

MODEL_FORMAT = "prophet-json+zstd"

# Level 10 is the knee on 5-year daily models: ~8x smaller than the JSON at a
# few ms, where level 19 gains a few percent for ten times the time.
_ZSTD_LEVEL = 10


class ModelDecodeError(ValueError):
    """The bytes are not a model in MODEL_FORMAT."""


def encode_model(model: Prophet) -> bytes:
    """Serialize a fitted model with `prophet.serialize.model_to_json`, then zstd."""
    from prophet.serialize import model_to_json

    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(model_to_json(model).encode())


def decode_model(blob: bytes) -> Prophet:
    """Inverse of encode_model; raises ModelDecodeError for anything that is not a model.

    `model_from_json` only reads JSON data (no code is run), so bytes from an
    untrusted cache cannot do more than fail to decode.
    """
    from prophet.serialize import model_from_json

    try:
        text = zstandard.ZstdDecompressor().decompress(blob).decode()
        return model_from_json(text)
    except Exception as exc:  # any malformed input is the same failure to the caller
        raise ModelDecodeError(f"not a {MODEL_FORMAT} model: {exc}") from exc
