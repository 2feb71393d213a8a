"""Tag generations and the L1 tag index of a TieredCache: the state, no I/O.

A tag (``product:p1``) has a generation counter in Redis
(``prefix:_tag:{prefix:product:p1}``). The generations of an entry's tags are
part of its key, so invalidating a tag (INCR) makes every entry of the tag
unreachable at once in every process, with no scan. Each process keeps the
generations it has read; they are trusted while the invalidation
subscription is live (every bump is published) and re-read after
``generation_ttl`` seconds otherwise. The reads, bumps and publishes
themselves are the control flow's (``_async/flow.py``, both faces); this
book only remembers what they learnt and applies other processes' messages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from salescast.cache.backends.memory import MemoryBackend
from salescast.cache.guard import Unavailable
from salescast.cache.invalidation import InvalidationSubscriber
from salescast.cache.keys import KeyBuilder


class TagBook:
    """Known generations and the L1 entries of each tag, for one cache. Thread-safe.

    ``shared``: there is an L2 (generations live in Redis); without one,
    this process is the only authority and every known generation is
    trusted. ``subscriber`` is set by the cache once it listens.
    """

    def __init__(
        self,
        *,
        keys: KeyBuilder,
        l1: MemoryBackend | None,
        shared: bool,
        instance_id: str,
        generation_ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self._keys = keys
        self._l1 = l1
        self._shared = shared
        self.instance_id = instance_id
        self._generation_ttl = generation_ttl
        self._clock = clock
        self.subscriber: InvalidationSubscriber | None = None
        self._lock = threading.Lock()
        # tag -> (generation, read at); see the module docstring for trust.
        self._generations: dict[str, tuple[int, float]] = {}
        # Bumped whenever known generations are forgotten (see after_read).
        self.epoch = 0
        # Bumped whenever a known generation changes or is forgotten, so a
        # key built from known generations stays valid while it is unchanged.
        self.changes = 0
        # tag -> L1 keys stored under it, so a bump frees their memory at once.
        self._l1_keys: dict[str, set[str]] = {}
        self._indexed = 0

    # -- generations --------------------------------------------------------

    def trusting(self) -> bool:
        """``True`` when known generations need no timestamp check: there is
        no Redis tier, or the invalidation subscription is live (every bump
        reaches this process)."""
        if not self._shared:
            return True
        subscriber = self.subscriber
        return subscriber is not None and subscriber.live  # listening(), minus a call

    def known_generations(self, tags: tuple[str, ...]) -> list[int] | None:
        """The known generations of ``tags``, ``None`` if one is unknown.

        Only meaningful while :meth:`trusting`. The hot path of a tagged
        lookup: no lock (a dict read is atomic), no clock, no I/O.
        """
        known = self._generations
        generations = []
        for tag in tags:
            item = known.get(tag)
            if item is None:
                return None
            generations.append(item[0])
        return generations

    def known(self, tag: str) -> int | None:
        """The generation of ``tag`` if it may be used without asking Redis."""
        with self._lock:
            item = self._generations.get(tag)
        if item is None:
            return None
        if not self._shared or self._subscribed():
            return item[0]
        if self._clock() - item[1] < self._generation_ttl:
            return item[0]
        return None

    def remember(self, tag: str, generation: int) -> int:
        """Note ``generation`` as ``tag``'s; return it."""
        with self._lock:
            self._set(tag, generation)
        return generation

    def after_read(self, tag: str, result: int | Unavailable, epoch: int) -> int:
        """The generation to use after reading ``tag``'s counter (``epoch`` as it
        was before the read), remembered unless an invalidation came meanwhile."""
        if isinstance(result, Unavailable):
            # Redis unknown: keep using what we last knew (L2 is skipped anyway).
            with self._lock:
                item = self._generations.get(tag)
            return item[0] if item is not None else 0
        with self._lock:
            # An invalidation heard while we were reading may have made our
            # answer old: use it for this call, but do not remember it.
            if self.epoch == epoch:
                self._set(tag, result)
        return result

    def local_bump(self, tag: str) -> int:
        """The next generation as this process alone knows it (no Redis)."""
        with self._lock:
            item = self._generations.get(tag)
            return (item[0] if item is not None else 0) + 1

    def _set(self, tag: str, generation: int) -> None:
        # Caller holds the lock.
        old = self._generations.get(tag)
        if old is not None and old[0] != generation:
            self.changes += 1
        self._generations[tag] = (generation, self._clock())

    def _subscribed(self) -> bool:
        subscriber = self.subscriber
        return subscriber is not None and subscriber.listening()

    def apply_tag(self, tag: str, generation: int | None) -> None:
        """Take ``generation`` as ``tag``'s and drop the tag's L1 entries.

        ``None``: forget the generation so the next lookup reads it from
        Redis. Used for other processes' messages: PUBLISHes of concurrent
        bumps can arrive out of INCR order, and Redis may have been reset,
        so the counter itself is the only authority.
        """
        with self._lock:
            if generation is None:
                self._generations.pop(tag, None)
                self.epoch += 1
                self.changes += 1
            else:
                self._set(tag, generation)
            keys = self._l1_keys.pop(tag, set())
        if self._l1 is not None and keys:
            self._l1.delete_many(list(keys))

    # -- L1 index -----------------------------------------------------------

    def remember_l1(self, entry_key: str, tags: tuple[str, ...]) -> None:
        """Note that ``entry_key`` sits in L1 under ``tags``."""
        if not tags:
            return
        with self._lock:
            for tag in tags:
                self._l1_keys.setdefault(tag, set()).add(entry_key)
            self._indexed += 1
            prune = self._l1 is not None and self._indexed > self._l1.max_entries
            if prune:
                self._indexed = 0
        if prune:
            self._prune()

    def _prune(self) -> None:
        # Evicted and expired L1 entries leave stale index entries behind;
        # sweeping once per max_entries inserts keeps the index bounded.
        l1 = self._l1
        assert l1 is not None
        with self._lock:
            snapshot = {tag: list(keys) for tag, keys in self._l1_keys.items()}
        live = {tag: {key for key in keys if l1.exists(key)} for tag, keys in snapshot.items()}
        with self._lock:
            for tag, keys in live.items():
                current = self._l1_keys.get(tag)
                if current is None:
                    continue
                # Only drop what we saw dead; keys added meanwhile stay.
                current.difference_update(set(snapshot[tag]) - keys)
                if not current:
                    del self._l1_keys[tag]

    # -- other processes' messages -------------------------------------------

    def on_message(self, message: dict[str, Any]) -> None:
        """Apply another process's invalidation to this process."""
        if message.get("origin") == self.instance_id:
            return
        op = message.get("op")
        l1 = self._l1
        if op == "tag":
            self.apply_tag(str(message["tag"]), None)
        elif op == "delete" and l1 is not None:
            l1.delete(str(message["key"]))
        elif op == "clear":
            namespace = message.get("namespace")
            if namespace and l1 is not None:
                l1.delete_prefix(self._keys.namespace_prefix(str(namespace)))
            elif not namespace:
                self.forget_everything()

    def forget_everything(self) -> None:
        """Empty L1 and the known generations (after a gap in the subscription)."""
        with self._lock:
            self._generations.clear()
            self.epoch += 1
            self.changes += 1
            self._l1_keys.clear()
        if self._l1 is not None:
            self._l1.clear()
