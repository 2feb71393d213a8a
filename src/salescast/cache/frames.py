"""The framed byte format of a cached value: header, optional MAC, payload.

Layout (big-endian)::

    magic  b"SC"      2 bytes
    format 2          1 byte   bumped when this layout changes
    codec id          1 byte   which Codec wrote the payload
    flags             1 byte   bit 0: zstd-compressed, bit 1: HMAC present
    key digest        8 bytes  blake2b-64 of the cache key the value was written for
    stored at         4 bytes  when the value was computed: whole seconds of the Unix epoch
    compute time      4 bytes  how long computing it took, in milliseconds
    mac               32 bytes HMAC-SHA256(secret, key || header || payload), if flagged
    payload           the rest

The key digest makes a value copied or written under another key a miss even
without a secret; with a secret, the MAC makes forged or altered values a
miss. Either failure raises ``DecodeError``, which the cache counts as a miss.

The two times (format 2) let every process judge an entry's age the same way:
the maximum lifetime of an entry whose hits renew it, and the early refresh
of a hot one before that maximum, both count from ``stored at``; the refresh
starts earlier for values that take longer to compute (``FrameTimes``, see
docs/decisions/0011-ttl-is-a-memory-policy.md). Format-1 frames are refused
like any other foreign bytes: a miss, recomputed once.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import zstandard

from salescast.cache.codecs import CodecRegistry, default_registry
from salescast.cache.errors import DecodeError

MAGIC = b"SC"
FORMAT_VERSION = 2
FLAG_ZSTD = 0x01
FLAG_HMAC = 0x02
_DIGEST_END = 13
_HEADER_SIZE = 21
_MAX_U32 = 2**32 - 1
_MAC_SIZE = 32
# A compressed payload is kept only when at most this share of the original.
_WORTH_COMPRESSING = 0.9
_MAGIC_AND_FORMAT = MAGIC + bytes((FORMAT_VERSION,))
_KEY_DIGEST_MEMO_LIMIT = 16_384
# Refuse to inflate more than this: a corrupt or hostile frame must not be
# able to claim gigabytes of memory.
MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024


class FrameTimes(NamedTuple):
    """When a framed value was computed (Unix seconds) and how long that took (seconds)."""

    stored_at: float
    compute_seconds: float


def frame_times(data: bytes) -> FrameTimes:
    """The times in the header of a frame ``loads`` accepted (no checks of its own)."""
    return FrameTimes(
        float(int.from_bytes(data[_DIGEST_END : _DIGEST_END + 4], "big")),
        int.from_bytes(data[_DIGEST_END + 4 : _HEADER_SIZE], "big") / 1000,
    )


class FrameSerializer:
    """Values to framed bytes and back, for one key at a time. Thread-safe.

    ``compress_above``: payloads longer than this many bytes are zstd
    compressed (level ``compress_level``) when that saves at least a tenth.
    ``secret``: when set, every frame is signed and unsigned frames are refused.
    ``wall_clock`` (Unix seconds, injectable for simulations) stamps ``stored at``.
    """

    def __init__(
        self,
        *,
        registry: CodecRegistry | None = None,
        secret: bytes | str | None = None,
        compress_above: int = 16 * 1024,
        compress_level: int = 3,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.wall_clock = wall_clock
        self.registry = registry if registry is not None else default_registry
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self._compress_above = compress_above
        self._compress_level = compress_level
        # zstd (de)compressor objects must not be shared between threads.
        self._local = threading.local()
        # key -> key_digest(key), for keys read before (a blake2b per read
        # was a measurable part of an L2 hit); emptied when full.
        self._key_digests: dict[str, bytes] = {}

    def dumps(self, key: str, value: Any, *, compute_seconds: float = 0.0) -> bytes:
        """Frame ``value`` for ``key``, stamped now and with how long it took to compute.

        ``TypeError``/``ValueError`` if no codec can encode it.
        """
        codec = self.registry.for_value(value)
        payload = codec.encode(value)
        flags = 0
        if len(payload) > self._compress_above:
            compressed = self._compressor().compress(payload)
            # Already-compressed payloads (a Prophet model's codec zstd's its
            # JSON itself; random bytes) stay as they are: a second layer
            # would only cost every reader a decompression.
            if len(compressed) < len(payload) * _WORTH_COMPRESSING:
                payload = compressed
                flags |= FLAG_ZSTD
        if self._secret is not None:
            flags |= FLAG_HMAC
        header = (
            MAGIC
            + bytes((FORMAT_VERSION, codec.codec_id, flags))
            + key_digest(key)
            + _u32(self.wall_clock()).to_bytes(4, "big")
            + _u32(compute_seconds * 1000).to_bytes(4, "big")
        )
        if self._secret is None:
            return header + payload
        return header + self._mac(key, header, payload) + payload

    def loads(self, key: str, data: bytes) -> Any:
        """The value framed in ``data`` for ``key``; ``DecodeError`` on any doubt."""
        # Every check of the layout, in as few Python steps as they allow:
        # this runs on each L2 hit, in a process just woken from the socket,
        # where each step costs several times what it does in a loop.
        if len(data) < _HEADER_SIZE or not data.startswith(_MAGIC_AND_FORMAT):
            raise DecodeError(_not_a_frame(data))
        digest = self._key_digests.get(key)
        if digest is None:
            digest = self._remember_digest(key)
        # The digest only names the key, it is no secret: a plain comparison.
        if data[5:_DIGEST_END] != digest:
            raise DecodeError("frame was written for another key")
        flags = data[4]
        if flags == 0 and self._secret is None:
            payload = data[_HEADER_SIZE:]  # unsigned, uncompressed: the common case
        else:
            payload = self._verified_payload(key, data, flags)
            if flags & FLAG_ZSTD:
                payload = self._decompress(payload)
        codec = self.registry.by_id(data[3])
        try:
            return codec.decode(payload)
        except DecodeError:
            raise
        except Exception as exc:  # a codec's failure of any kind is a miss
            raise DecodeError(f"codec {data[3]} failed: {type(exc).__name__}: {exc}") from exc

    def _remember_digest(self, key: str) -> bytes:
        digest = key_digest(key)
        if len(self._key_digests) >= _KEY_DIGEST_MEMO_LIMIT:
            self._key_digests.clear()
        self._key_digests[key] = digest
        return digest

    def _verified_payload(self, key: str, data: bytes, flags: int) -> bytes:
        header = data[:_HEADER_SIZE]
        if self._secret is None:
            if flags & FLAG_HMAC:
                raise DecodeError("signed frame but no secret configured")
            return data[_HEADER_SIZE:]
        if not flags & FLAG_HMAC:
            raise DecodeError("unsigned frame while a secret is configured")
        mac = data[_HEADER_SIZE : _HEADER_SIZE + _MAC_SIZE]
        payload = data[_HEADER_SIZE + _MAC_SIZE :]
        if not hmac.compare_digest(mac, self._mac(key, header, payload)):
            raise DecodeError("frame signature does not match")
        return payload

    def _mac(self, key: str, header: bytes, payload: bytes) -> bytes:
        assert self._secret is not None
        encoded_key = key.encode()
        message = len(encoded_key).to_bytes(4, "big") + encoded_key + header + payload
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor: zstandard.ZstdCompressor | None = getattr(self._local, "cctx", None)
        if compressor is None:
            compressor = zstandard.ZstdCompressor(level=self._compress_level)
            self._local.cctx = compressor
        return compressor

    def _decompress(self, payload: bytes) -> bytes:
        try:
            size = zstandard.frame_content_size(payload)
            if size > MAX_DECOMPRESSED_BYTES:
                raise DecodeError(f"compressed frame claims {size} bytes")
            decompressor: zstandard.ZstdDecompressor | None = getattr(self._local, "dctx", None)
            if decompressor is None:
                decompressor = zstandard.ZstdDecompressor()
                self._local.dctx = decompressor
            return decompressor.decompress(payload, max_output_size=MAX_DECOMPRESSED_BYTES)
        except zstandard.ZstdError as exc:
            raise DecodeError(f"zstd: {exc}") from exc


def _not_a_frame(data: bytes) -> str:
    # Why ``data`` failed the first check of ``loads``.
    if len(data) >= _HEADER_SIZE and data[:2] == MAGIC:
        return f"frame format {data[2]} is not {FORMAT_VERSION}"
    return "not a salescast cache frame"


def _u32(number: float) -> int:
    return min(max(int(number), 0), _MAX_U32)


def key_digest(key: str) -> bytes:
    """Eight bytes identifying ``key`` inside a frame."""
    return hashlib.blake2b(key.encode(), digest_size=8).digest()
