"""Tag generations, L1 tag index, clearing and pub/sub invalidation of a TieredCache.

A tag (``product:p1``) has a generation counter in Redis
(``prefix:_tag:{prefix:product:p1}``). The generations of an entry's tags are
part of its key, so ``invalidate_tag`` (INCR) makes every entry of the tag
unreachable at once in every process, with no scan. Each process keeps the
generations it has read; they are trusted while the invalidation
subscription is live (every bump is published) and re-read after
``generation_ttl`` seconds otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from salescast.cache.backends.redis import RedisBackend, escape_glob
from salescast.cache.guard import FAILED, Unavailable
from salescast.cache.invalidation import InvalidationSubscriber, encode_message

if TYPE_CHECKING:
    from salescast.cache.tiered import TieredCache

logger = logging.getLogger("salescast.cache")


class TagBook:
    """Generations and the L1 entries of each tag, for one ``TieredCache``. Thread-safe."""

    def __init__(self, cache: TieredCache, *, generation_ttl: float) -> None:
        self._cache = cache
        self._generation_ttl = generation_ttl
        self._lock = threading.Lock()
        # tag -> (generation, read at); see the module docstring for trust.
        self._generations: dict[str, tuple[int, float]] = {}
        # Bumped whenever known generations are forgotten (see _after_read).
        self._epoch = 0
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
        cache = self._cache
        if cache.l2 is None:
            return True
        subscriber = cache.subscriber
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

    def generation(self, tag: str) -> int:
        """The current generation of ``tag`` (0 when never bumped or unknown)."""
        return self.read_generation(tag)[0]

    def read_generation(self, tag: str) -> tuple[int, bool]:
        """``(generation, redis_failed)``: the flag tells the caller to spare Redis
        for the rest of its call (one timeout per call, not one per operation)."""
        known = self._known(tag)
        if known is not None:
            return known, False
        cache = self._cache
        if cache.l2 is None:
            return self._remember_generation(tag, 0), False
        l2 = cache.l2
        counter_key = cache.keys.tag_counter_key(tag)
        epoch = self._epoch
        result = cache.guard.call(lambda: l2.get_counter(counter_key))
        return self._after_read(tag, result, epoch), result is FAILED

    async def aread_generation(self, tag: str) -> tuple[int, bool]:
        """As :meth:`read_generation`, reading Redis with the asyncio client."""
        known = self._known(tag)
        if known is not None:
            return known, False
        cache = self._cache
        if cache.l2 is None:
            return self._remember_generation(tag, 0), False
        l2 = cache.l2
        counter_key = cache.keys.tag_counter_key(tag)
        epoch = self._epoch
        result = await cache.guard.acall(lambda: l2.aget_counter(counter_key))
        return self._after_read(tag, result, epoch), result is FAILED

    def _known(self, tag: str) -> int | None:
        with self._lock:
            item = self._generations.get(tag)
        if item is None:
            return None
        if self._cache.l2 is None or self._subscribed():
            return item[0]
        if self._cache.clock() - item[1] < self._generation_ttl:
            return item[0]
        return None

    def _after_read(self, tag: str, result: int | Unavailable, epoch: int) -> int:
        if isinstance(result, Unavailable):
            # Redis unknown: keep using what we last knew (L2 is skipped anyway).
            with self._lock:
                item = self._generations.get(tag)
            return item[0] if item is not None else 0
        with self._lock:
            # An invalidation heard while we were reading may have made our
            # answer old: use it for this call, but do not remember it.
            if self._epoch == epoch:
                self._set(tag, result)
        return result

    def _remember_generation(self, tag: str, generation: int) -> int:
        with self._lock:
            self._set(tag, generation)
        return generation

    def _set(self, tag: str, generation: int) -> None:
        # Caller holds the lock.
        old = self._generations.get(tag)
        if old is not None and old[0] != generation:
            self.changes += 1
        self._generations[tag] = (generation, self._cache.clock())

    def _subscribed(self) -> bool:
        subscriber = self._cache.subscriber
        return subscriber is not None and subscriber.listening()

    # -- invalidation -------------------------------------------------------

    def invalidate(self, tag: str) -> int:
        """Bump ``tag``'s generation, drop its L1 entries, tell every process."""
        cache = self._cache
        generation: int | Unavailable
        if cache.l2 is not None:
            l2 = cache.l2
            counter_key = cache.keys.tag_counter_key(tag)
            generation = cache.guard.call(lambda: l2.incr(counter_key))
        else:
            generation = self._local_bump(tag)
        if isinstance(generation, Unavailable):
            # Without Redis only this process can forget; others keep their L1
            # until they reconnect (which empties it) or the TTL ends.
            logger.warning("invalidate_tag(%r): Redis unavailable, invalidated locally only", tag)
            generation = self._local_bump(tag)
        self._apply_tag(tag, generation)
        self.publish({"op": "tag", "tag": tag, "gen": generation})
        return generation

    def _local_bump(self, tag: str) -> int:
        with self._lock:
            item = self._generations.get(tag)
            return (item[0] if item is not None else 0) + 1

    def _apply_tag(self, tag: str, generation: int | None) -> None:
        # ``None``: forget the generation so the next lookup reads it from
        # Redis. Used for other processes' messages: PUBLISHes of concurrent
        # bumps can arrive out of INCR order, and Redis may have been reset,
        # so the counter itself is the only authority.
        with self._lock:
            if generation is None:
                self._generations.pop(tag, None)
                self._epoch += 1
                self.changes += 1
            else:
                self._set(tag, generation)
            keys = self._l1_keys.pop(tag, set())
        if self._cache.l1 is not None and keys:
            self._cache.l1.delete_many(list(keys))

    def clear(self, *, namespace: str | None, tag: str | None) -> int:
        """See ``TieredCache.clear``."""
        cache = self._cache
        removed = 0
        if tag is not None:
            cache.invalidate_tag(tag)
            pattern = cache.keys.tag_pattern(tag, namespace)
            removed += self._l2_delete(lambda l2: l2.delete_matching(pattern))
            return removed
        prefix = cache.keys.namespace_prefix(namespace) if namespace else cache.keys.prefix + ":"
        if cache.l1 is not None:
            removed += cache.l1.delete_prefix(prefix)
        # Tag counters stay: resetting them could make old generations current again.
        counters = (cache.keys.prefix + ":_tag:").encode()
        removed += self._l2_delete(
            lambda l2: l2.delete_matching(
                _glob_prefix(prefix), keep=lambda key: key.startswith(counters)
            )
        )
        self.publish({"op": "clear", "namespace": namespace})
        return removed

    def _l2_delete(self, operation: Callable[[RedisBackend], int]) -> int:
        cache = self._cache
        if cache.l2 is None:
            return 0
        l2 = cache.l2
        result = cache.guard.call(lambda: operation(l2))
        return 0 if isinstance(result, Unavailable) else int(result)

    # -- L1 index -----------------------------------------------------------

    def remember_l1(self, entry_key: str, tags: tuple[str, ...]) -> None:
        """Note that ``entry_key`` sits in L1 under ``tags``."""
        if not tags:
            return
        with self._lock:
            for tag in tags:
                self._l1_keys.setdefault(tag, set()).add(entry_key)
            self._indexed += 1
            prune = self._cache.l1 is not None and self._indexed > self._cache.l1.max_entries
            if prune:
                self._indexed = 0
        if prune:
            self._prune()

    def _prune(self) -> None:
        # Evicted and expired L1 entries leave stale index entries behind;
        # sweeping once per max_entries inserts keeps the index bounded.
        l1 = self._cache.l1
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

    # -- pub/sub ------------------------------------------------------------

    def publish(self, message: dict[str, Any]) -> None:
        """Send an invalidation to every process (best effort, through the breaker)."""
        cache = self._cache
        if cache.l2 is None:
            return
        l2 = cache.l2
        payload = encode_message({**message, "origin": cache.instance_id})
        cache.guard.call(lambda: l2.publish(cache.keys.channel, payload))

    async def apublish(self, message: dict[str, Any]) -> None:
        """As :meth:`publish`, on the asyncio Redis client."""
        cache = self._cache
        if cache.l2 is None:
            return
        l2 = cache.l2
        payload = encode_message({**message, "origin": cache.instance_id})
        await cache.guard.acall(lambda: l2.apublish(cache.keys.channel, payload))

    def start_subscriber(self, l2: RedisBackend, *, ping_interval: float) -> InvalidationSubscriber:
        """Listen for other processes' invalidations in a daemon thread.

        A subscription whose PING goes unanswered opens the breaker at once
        (``CircuitBreaker.trip``): once the subscription is lost, lookups
        re-read tag generations, and against a frozen Redis each of the
        first ``failure_threshold`` reads would wait a socket timeout.
        """
        subscriber = InvalidationSubscriber(
            l2.client,
            self._cache.keys.channel,
            on_message=self.on_message,
            on_resubscribe=self.forget_everything,
            ping_interval=ping_interval,
            on_silence=self._cache.breaker.trip,
        )
        subscriber.start()
        return subscriber

    def on_message(self, message: dict[str, Any]) -> None:
        """Apply another process's invalidation to this process."""
        if message.get("origin") == self._cache.instance_id:
            return
        op = message.get("op")
        l1 = self._cache.l1
        if op == "tag":
            self._apply_tag(str(message["tag"]), None)
        elif op == "delete" and l1 is not None:
            l1.delete(str(message["key"]))
        elif op == "clear":
            namespace = message.get("namespace")
            if namespace and l1 is not None:
                l1.delete_prefix(self._cache.keys.namespace_prefix(str(namespace)))
            elif not namespace:
                self.forget_everything()

    def forget_everything(self) -> None:
        """Empty L1 and the known generations (after a gap in the subscription)."""
        with self._lock:
            self._generations.clear()
            self._epoch += 1
            self.changes += 1
            self._l1_keys.clear()
        if self._cache.l1 is not None:
            self._cache.l1.clear()


def _glob_prefix(prefix: str) -> str:
    return escape_glob(prefix) + "*"
