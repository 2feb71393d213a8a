"""Registers the Prophet model codec with salescast.cache, so models are cached as JSON data."""

from __future__ import annotations

import threading
from typing import Any

from salescast.cache import FIRST_USER_CODEC_ID, register_codec
from salescast.forecasting.model_codec import decode_model, encode_model

PROPHET_CODEC_ID = FIRST_USER_CODEC_ID + 8  # 40: never reuse for another format

_registered = threading.Event()
_lock = threading.Lock()


class ProphetModelCodec:
    """Prophet's own JSON model format, zstd-compressed (the registry's format too)."""

    codec_id = PROPHET_CODEC_ID

    def __init__(self, python_type: type[Any]) -> None:
        self.python_type = python_type

    def encode(self, value: Any) -> bytes:
        return encode_model(value)

    def decode(self, data: bytes) -> Any:
        return decode_model(data)


def register_prophet_codec() -> None:
    """Idempotent; imports Prophet (slow), so it runs when a service is built, not on import."""
    if _registered.is_set():
        return
    with _lock:
        if not _registered.is_set():
            from prophet import Prophet

            register_codec(ProphetModelCodec(Prophet))
            _registered.set()
