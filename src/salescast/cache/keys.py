"""How cache keys look, and a stable hash of call arguments.

An entry key::

    shop:prediction:{shop:product:p1}:v=7:g=3:1f0c...e2
    │    │          │                 │   │   └ blake2b-128 of the canonical arguments
    │    │          │                 │   └ generation(s) of the entry's tags
    │    │          │                 └ durable version(s) the value depends on
    │    │          └ Redis Cluster hash tag: the first tag, so one product's keys share a slot
    │    └ namespace
    └ prefix (every key of this service starts with it; clear() scans only it)

Parts without a value (no tags, no version) are left out. Internal keys use
namespaces starting with ``_``: ``shop:_tag:{shop:product:p1}`` (a tag's
generation counter), ``shop:_lease:...`` (computation leases); the pub/sub
channel is ``shop:_invalidate``.
"""

from __future__ import annotations

import decimal
import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from salescast.cache.errors import KeyArgumentError

Version = str | int | Iterable[str | int] | None
"""A durable version (model version, data version) or several, as given to ``version=``."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SEGMENT = re.compile(r"[A-Za-z0-9_.:@/=,-]{1,64}")
_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class KeyBuilder:
    """Builds every key and channel name under one ``prefix``. Thread-safe."""

    def __init__(self, prefix: str) -> None:
        if not _NAME.fullmatch(prefix):
            raise ValueError(f"prefix must match {_NAME.pattern!r}, got {prefix!r}")
        self.prefix = prefix
        self.channel = f"{prefix}:_invalidate"
        # Validated key heads (prefix, namespace, hash tag) and version
        # segments seen lately: every lookup builds a key, and the regular
        # expressions cost more than the rest of it. Bounded by emptying.
        self._heads: dict[tuple[str, str | None], str] = {}
        self._versions: dict[str, str] = {}

    def entry_key(
        self,
        namespace: str,
        digest: str,
        *,
        version: str | None = None,
        tags: Sequence[str] = (),
        generations: Sequence[int] = (),
    ) -> str:
        """The key of one cached value."""
        first_tag = tags[0] if tags else None
        head = self._heads.get((namespace, first_tag))
        if head is None:
            head = self._head(namespace, first_tag)
        key = head
        if version is not None:
            text = self._versions.get(version)
            if text is None:
                text = _remember(self._versions, version, ":v=" + segment(version))
            key += text
        if generations:
            if len(generations) == 1:
                key += ":g=" + str(generations[0])
            else:
                key += ":g=" + ".".join(map(str, generations))
        return key + ":" + digest

    def _head(self, namespace: str, first_tag: str | None) -> str:
        head = self.prefix + ":" + check_namespace(namespace)
        if first_tag is not None:
            head += ":" + self.hash_tag(first_tag)
        return _remember(self._heads, (namespace, first_tag), head)

    def hash_tag(self, tag: str) -> str:
        """``{prefix:tag}``: Redis Cluster hashes only this part of the key."""
        return "{" + self.prefix + ":" + segment(tag) + "}"

    def tag_counter_key(self, tag: str) -> str:
        """Where the generation counter of ``tag`` lives (same slot as its entries)."""
        return f"{self.prefix}:_tag:{self.hash_tag(tag)}"

    def lease_key(self, entry_key: str) -> str:
        """The computation lease guarding ``entry_key``."""
        return f"{self.prefix}:_lease:{entry_key[len(self.prefix) + 1 :]}"

    def namespace_prefix(self, namespace: str) -> str:
        """Every entry of ``namespace`` starts with this."""
        return f"{self.prefix}:{check_namespace(namespace)}:"

    def tag_pattern(self, tag: str, namespace: str | None = None) -> str:
        """A SCAN pattern for the entries whose first tag is ``tag``."""
        middle = escape_glob(check_namespace(namespace)) if namespace else "*"
        return f"{escape_glob(self.prefix)}:{middle}:{escape_glob(self.hash_tag(tag))}:*"

    def namespace_of(self, key: str) -> str | None:
        """The namespace part of one of our entry keys, ``None`` for others."""
        head = self.prefix + ":"
        if not key.startswith(head):
            return None
        return key[len(head) :].split(":", 1)[0]


_MEMO_LIMIT = 4096


def _remember(memo: dict[Any, str], key: Any, value: str) -> str:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is a plain name (names starting with ``_`` are ours)."""
    if not _NAME.fullmatch(namespace):
        raise ValueError(f"namespace must match {_NAME.pattern!r}, got {namespace!r}")
    return namespace


def segment(text: str) -> str:
    """``text`` if it is short and key-safe, else a short hash of it."""
    if _SEGMENT.fullmatch(text):
        return text
    return "h" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def hash_arguments(*parts: Any) -> str:
    """A stable hex digest of ``parts``: same values, same digest, in every process.

    The parts are encoded canonically with orjson (sorted keys, numpy as
    lists) and hashed with blake2b-128; Python's ``hash()`` is salted per
    process and would break sharing between workers and restarts.
    Supported: JSON types, tuples, bytes, sets, dates, enums, UUID, Decimal,
    dataclasses, numpy values, and any object with a ``__cache_key__()``
    method returning one of those. Anything else raises ``KeyArgumentError``.
    """
    try:
        encoded = orjson.dumps(list(parts), default=_key_default, option=_CANONICAL)
    except orjson.JSONEncodeError as exc:
        raise KeyArgumentError(f"cannot build a cache key: {exc}") from exc
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def _key_default(obj: Any) -> Any:
    cache_key = getattr(obj, "__cache_key__", None)
    if callable(cache_key):
        return cache_key()
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"__bytes__": bytes(obj).hex()}
    if isinstance(obj, set | frozenset):
        return {"__set__": sorted(orjson.dumps(item, default=_key_default) for item in obj)}
    if isinstance(obj, decimal.Decimal | uuid.UUID):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} has no stable cache key")


def version_text(version: Version) -> str | None:
    """The key text of a version: ``7``, ``7,2024-05-01``; ``None`` when there is none."""
    if version is None:
        return None
    if isinstance(version, str | int):
        return str(version)
    return ",".join(str(part) for part in version)


def escape_glob(text: str) -> str:
    """Escape ``text`` so a Redis ``MATCH`` pattern takes it literally."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
