"""Entry-key resolution without I/O: the key of a lookup from known tag generations.

Shared by the sync and asyncio faces of the control flow (``_async/flow.py``):
when every tag's generation is known and trusted, the full key needs no
Redis round trip, and the key built from those generations is remembered
until one of them changes.
"""

from __future__ import annotations

from salescast.cache.keys import KeyBuilder, Version, version_text
from salescast.cache.tags import TagBook

# Tagged entry keys remembered (see EntryKeys.known); emptied when full.
_MEMO_LIMIT = 16_384


class EntryKeys:
    """Full entry keys (``salescast.cache.keys``) from digests, versions and generations."""

    def __init__(self, keys: KeyBuilder, tags: TagBook) -> None:
        self.keys = keys
        self.tags = tags
        self._memo: dict[tuple[str, str, str | None, tuple[str, ...]], tuple[str, int]] = {}

    def known(
        self, namespace: str, digest: str, version: Version, tags: tuple[str, ...]
    ) -> str | None:
        """The key when it needs no I/O: untagged, or every tag's generation
        known and trusted (see ``TagBook.trusting``); ``None`` otherwise."""
        text = None if version is None else version_text(version)
        if not tags:
            return self.keys.entry_key(namespace, digest, version=text)
        book = self.tags
        if not book.trusting():
            return None
        # Known generations are the answer until one changes, so the key
        # built from them is remembered with the change count it saw.
        changes = book.changes
        memo = (namespace, digest, text, tags)
        remembered = self._memo.get(memo)
        if remembered is not None and remembered[1] == changes:
            return remembered[0]
        generations = book.known_generations(tags)
        if generations is None:
            return None
        entry_key = self.keys.entry_key(
            namespace, digest, version=text, tags=tags, generations=generations
        )
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[memo] = (entry_key, changes)
        return entry_key

    def build(
        self,
        namespace: str,
        digest: str,
        version: Version,
        tags: tuple[str, ...],
        generations: list[int],
    ) -> str:
        """The key under ``generations`` (one per tag, as just read from Redis)."""
        text = None if version is None else version_text(version)
        return self.keys.entry_key(
            namespace, digest, version=text, tags=tags, generations=generations
        )
