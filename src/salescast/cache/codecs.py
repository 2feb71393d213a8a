"""Codecs turn one kind of value into bytes and back; a registry picks one per value."""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

import numpy as np
import orjson

from salescast.cache.errors import DecodeError

# Ids below this belong to salescast.cache itself; other packages register
# their codecs (the Prophet model codec, for one) at or above it.
FIRST_USER_CODEC_ID = 32


@runtime_checkable
class Codec(Protocol):
    """Turns values of one type into bytes and back. Data only, never code.

    - ``codec_id``: one byte (0-255) written into every frame; it must never be
      reused for another format, since old entries would decode wrongly. Ids
      below 32 are reserved for ``salescast.cache``.
    - ``python_type``: values that are instances of it are encoded by this
      codec (the most recently registered matching codec wins).
    - ``encode(value) -> bytes``: may raise ``TypeError``/``ValueError`` for a
      value it cannot represent; the cache then skips storing it.
    - ``decode(data) -> value``: must not execute code (no pickle, no eval);
      any exception it raises turns the read into a counted miss.
    - Both must be thread-safe (in practice: pure functions).
    """

    codec_id: int
    python_type: type[Any]

    def encode(self, value: Any) -> bytes:
        """Serialize ``value``."""
        ...

    def decode(self, data: bytes) -> Any:
        """Deserialize what :meth:`encode` produced."""
        ...


class BytesCodec:
    """Raw ``bytes`` as they are, so a ``bytes`` result comes back as ``bytes``."""

    codec_id = 1
    python_type: type[Any] = bytes

    def encode(self, value: Any) -> bytes:
        """Return the bytes unchanged."""
        return bytes(value)

    def decode(self, data: bytes) -> Any:
        """Return the bytes unchanged."""
        return data


class NdarrayCodec:
    """A numpy array of a plain dtype as its raw buffer plus dtype and shape.

    Object arrays are refused: their elements are Python objects, which only
    pickle could carry.
    """

    codec_id = 3
    python_type: type[Any] = np.ndarray

    def encode(self, value: Any) -> bytes:
        """Header (JSON: dtype, shape) + length + C-ordered buffer."""
        array = np.ascontiguousarray(value)
        if array.dtype.hasobject:
            raise TypeError("object arrays cannot be cached as data")
        header = orjson.dumps({"dtype": array.dtype.str, "shape": list(array.shape)})
        return len(header).to_bytes(4, "big") + header + array.tobytes()

    def decode(self, data: bytes) -> Any:
        """Rebuild the array (a writable copy)."""
        size = int.from_bytes(data[:4], "big")
        header = orjson.loads(data[4 : 4 + size])
        dtype = np.dtype(str(header["dtype"]))
        if dtype.hasobject:
            raise DecodeError("object dtype in a cached array")
        shape = tuple(int(n) for n in header["shape"])
        return np.frombuffer(data[4 + size :], dtype=dtype).reshape(shape).copy()


class CodecRegistry:
    """Codecs by id (for decoding) and by type (for encoding). Thread-safe.

    ``fallback`` encodes any value no registered type matches (the JSON codec
    by default); it still must be registered for its id to decode.
    """

    def __init__(self, fallback: Codec | None = None) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, Codec] = {}
        # Newest first, so a package can specialise a type registered earlier.
        self._by_type: list[Codec] = []
        self._fallback = fallback
        if fallback is not None:
            self.register(fallback)

    def register(self, codec: Codec, *, replace: bool = False) -> None:
        """Add ``codec``; an id already taken by another codec is an error unless ``replace``."""
        if not 0 < codec.codec_id < 256:
            raise ValueError(f"codec_id must be 1..255, got {codec.codec_id}")
        with self._lock:
            existing = self._by_id.get(codec.codec_id)
            if existing is not None and existing is not codec and not replace:
                raise ValueError(f"codec id {codec.codec_id} is taken by {type(existing).__name__}")
            if existing is not None:
                self._by_type = [c for c in self._by_type if c is not existing]
            self._by_id[codec.codec_id] = codec
            if codec is not self._fallback:
                self._by_type.insert(0, codec)

    def for_value(self, value: Any) -> Codec:
        """The codec that encodes ``value``; ``TypeError`` when none does."""
        for codec in self._by_type:
            if isinstance(value, codec.python_type):
                return codec
        if self._fallback is None:
            raise TypeError(f"no codec for {type(value).__name__}")
        return self._fallback

    def by_id(self, codec_id: int) -> Codec:
        """The codec that wrote ``codec_id``; ``DecodeError`` when unknown here."""
        codec = self._by_id.get(codec_id)
        if codec is None:
            raise DecodeError(f"unknown codec id {codec_id}")
        return codec

    def copy(self) -> CodecRegistry:
        """An independent registry with the same codecs (for tests and tenants)."""
        clone = CodecRegistry(self._fallback)
        with self._lock:
            for codec in reversed(self._by_type):
                clone.register(codec, replace=True)
        return clone


def _build_default_registry() -> CodecRegistry:
    from salescast.cache.json_codec import JsonCodec

    registry = CodecRegistry(fallback=JsonCodec())
    registry.register(NdarrayCodec())
    registry.register(BytesCodec())
    return registry


default_registry: CodecRegistry = _build_default_registry()


def register_codec(codec: Codec, *, replace: bool = False) -> None:
    """Register ``codec`` in the process-wide registry every cache uses by default.

    Example, from another package::

        class ProphetModelCodec:
            codec_id = 40
            python_type = Prophet
            def encode(self, model): return model_to_json(model).encode()
            def decode(self, data): return model_from_json(data.decode())

        register_codec(ProphetModelCodec())
    """
    default_registry.register(codec, replace=replace)
