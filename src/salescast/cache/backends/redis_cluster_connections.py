"""The clients under RedisClusterBackend: redis-py's cluster clients, sync and one per event loop.

Both faces of the cluster commands (``_async/redis_cluster_commands.py`` and
the generated ``_sync/redis_cluster_commands.py``) stand on this base. The
cluster clients route each key to the master of its slot, follow ``MOVED``
and ``ASK`` redirections and refresh the slot map themselves, so a
redirection is routing, never an error the breaker sees; only a cluster that
does not answer (every retry used up, a slot without a master) is. It takes
the same timeout, pool and TLS parameters as ``RedisConnections`` (so the two
signatures read alike) and the same TLS rules (``tls_options``).

The hit path goes past the cluster client: the key's slot names its master
in the client's slot map, and GET (and PTTL) go on a connection kept for that
node (``HitConnections`` per node, ``_node_hits`` / ``_anode_hits``), as on one
server. Before the client has a slot map, and when the node answers a
redirection or its connection fails, the command goes through the cluster
client instead, which follows ``MOVED``/``ASK``, refreshes the map and
retries: the next hit then finds the new owner.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from salescast.cache.backends.redis_connections import (
    HitConnections,
    forget_connections_after_fork,
    idle_limit,
    tls_options,
    url_options,
)
from salescast.cache.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    PoolExhaustedError,
)

# Retries of one command after a connection error or a cluster-down reply,
# each after a refresh of the slot map: enough to step over a master that was
# just replaced, few enough that a dead cluster costs a request little.
_CLUSTER_RETRIES = 2
# How long a failure to make the sync client (no startup node answered) is
# repeated to later callers without trying again.
_REMAKE_AFTER_SECONDS = 1.0


class _NodePool:
    """An asyncio cluster node's connections behind the two calls the hit path makes of a
    pool (redis-py's asyncio ``ClusterNode`` has no pool: it hands out and takes back
    connections itself)."""

    __slots__ = ("node",)

    def __init__(self, node: redis.asyncio.cluster.ClusterNode) -> None:
        self.node = node

    async def get_connection(self) -> Any:
        return self.node.acquire_connection()

    async def release(self, connection: Any) -> None:
        self.node.release(connection)


@dataclass
class _LoopCluster:
    """The asyncio cluster client of one event loop and its hit connections per node."""

    client: redis.asyncio.cluster.RedisCluster
    hits: dict[str, HitConnections] = field(default_factory=dict)


# "No loop yet": a callable that answers no loop.
_NO_LOOP: tuple[Callable[[], object], Any] = (lambda: None, None)


class RedisClusterConnections:
    """The cluster clients of ``RedisClusterBackend``, error mapping, call counting.

    The keyword arguments repeat those of ``RedisConnections`` (timeouts, pool
    size, TLS files) so that the factory can pass one set of options to either
    topology; the two build different redis-py clients from them, so they are
    not shared through a base class.
    """

    def __init__(
        self,
        startup_nodes: Sequence[tuple[str, int]],
        *,
        url: str = "redis://",
        socket_timeout: float = 0.25,
        socket_connect_timeout: float = 0.25,
        max_connections: int = 50,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        if not startup_nodes:
            raise ValueError("a Redis Cluster needs at least one startup node")
        self.startup_nodes = [(host, int(port)) for host, port in startup_nodes]
        self.url = url
        self._max_connections = max_connections
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "max_connections": max_connections,
            "protocol": 2,
            **url_options(url, "username", "password"),  # a cluster has one database
        }
        tls = tls_options(url, ca_certs=ssl_ca_certs, certfile=ssl_certfile, keyfile=ssl_keyfile)
        if url.startswith("rediss://"):
            self._options.update(tls, ssl=True)
        # Made on first use: redis-py's cluster client asks for the slot map as
        # it is built, and a cluster that is down at start-up must cost misses,
        # not the service's start.
        self._made: redis.cluster.RedisCluster | None = None
        self._made_failure: tuple[float, str] | None = None
        self._made_lock = threading.Lock()
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopCluster] = (
            weakref.WeakKeyDictionary()
        )
        self._last_loop: tuple[Callable[[], object], Any] = _NO_LOOP  # (weakref, _LoopCluster)
        # The sync hit path's kept connections, per node name (as many of a
        # node's pool as on one server).
        self._hits: dict[str, HitConnections] = {}
        self._hits_lock = threading.Lock()
        self._idle_limit = idle_limit(max_connections)
        self._calls = 0
        self._calls_lock = threading.Lock()
        forget_connections_after_fork(self)

    @property
    def _sync_client(self) -> redis.cluster.RedisCluster:
        """The sync cluster client, made (and the slot map read) on first use."""
        client = self._made
        if client is None:
            with self._made_lock:
                client = self._made if self._made is not None else self._make_client()
        return client

    def _make_client(self) -> redis.cluster.RedisCluster:
        # Caller holds _made_lock. A failed attempt is remembered for a moment:
        # callers queued on the lock behind it (a frozen cluster at start-up)
        # then fail at once instead of each paying the startup nodes' timeouts.
        now = time.monotonic()
        failed = self._made_failure
        if failed is not None and now - failed[0] < _REMAKE_AFTER_SECONDS:
            raise RedisClusterException(failed[1])
        try:
            client = redis.cluster.RedisCluster(
                startup_nodes=[
                    redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
                    for h, p in self.startup_nodes
                ],
                retry=Retry(NoBackoff(), _CLUSTER_RETRIES),
                **self._options,
            )
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            self._made_failure = (now, str(exc))
            raise
        self._made = client
        self._made_failure = None
        return client

    def _aclient(self) -> redis.asyncio.cluster.RedisCluster:
        """The asyncio cluster client of the running event loop, made on first use."""
        return self._loop_cluster().client

    def _loop_cluster(self) -> _LoopCluster:
        loop = asyncio.get_running_loop()
        last_loop, last = self._last_loop
        if last_loop() is loop:
            # The hit path asks every time: a weak reference compared is cheaper
            # than a WeakKeyDictionary lookup, which makes a new weakref each call.
            return last  # type: ignore[no-any-return]
        loop_cluster = self._async.get(loop)
        if loop_cluster is None:
            nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in self.startup_nodes]
            client = redis.asyncio.cluster.RedisCluster(
                startup_nodes=nodes,
                retry=AsyncRetry(NoBackoff(), _CLUSTER_RETRIES),
                **self._options,
            )
            loop_cluster = self._async[loop] = _LoopCluster(client)
        self._last_loop = (weakref.ref(loop), loop_cluster)
        return loop_cluster

    # -- the hit path's connections per node ------------------------------------

    def _node_hits(self, key: str) -> HitConnections | None:
        """The kept connections of the master of ``key``'s slot, per the sync client's slot
        map; ``None`` when the cluster client must route (no client or map yet)."""
        client = self._made
        if client is None:
            return None
        try:
            node = client.nodes_manager.slots_cache[key_slot(key.encode())][0]
        except (KeyError, IndexError):
            return None
        if node.redis_connection is None:
            return None
        pool = node.redis_connection.connection_pool
        hits = self._hits.get(node.name)
        if hits is not None and hits.pool is pool:
            return hits
        with self._hits_lock:
            hits = self._hits.get(node.name)
            if hits is None or hits.pool is not pool:
                # The node was made again (a refreshed map): its old stack goes back.
                if hits is not None:
                    hits.release_all(hits.pool.release)
                hits = self._hits[node.name] = HitConnections(pool)
        return hits

    def _anode_hits(self, key: str) -> HitConnections | None:
        """As ``_node_hits``, on the running loop's cluster client (whose map is empty until
        its first command)."""
        loop_cluster = self._loop_cluster()
        try:
            node = loop_cluster.client.nodes_manager.slots_cache[key_slot(key.encode())][0]
        except (KeyError, IndexError):
            return None
        hits = loop_cluster.hits.get(node.name)
        if hits is None or hits.pool.node is not node:
            if hits is not None:
                hits.release_all(hits.pool.node.release)
            hits = loop_cluster.hits[node.name] = HitConnections(_NodePool(node))
        return hits

    async def _close_loop(self) -> None:
        self._last_loop = _NO_LOOP
        loop_cluster = self._async.pop(asyncio.get_running_loop(), None)
        if loop_cluster is not None:
            loop_cluster.hits.clear()  # the nodes close every connection they handed out
            await loop_cluster.client.aclose()

    def _close_sync(self) -> None:
        """Give the kept connections back to their pools, then close the sync client."""
        with self._hits_lock:
            stacks, self._hits = list(self._hits.values()), {}
        for hits in stacks:
            hits.release_all(hits.pool.release)
        if self._made is not None:
            self._made.close()

    def _forget_inherited_connections(self) -> None:
        # In a forked child: the stacked sockets are the parent's (redis-py's
        # own pools notice the new pid themselves), and another thread may
        # have held a lock at the fork.
        self._hits = {}
        self._hits_lock = threading.Lock()
        self._async = weakref.WeakKeyDictionary()
        self._last_loop = _NO_LOOP

    @contextmanager
    def _io(self) -> Iterator[None]:
        self._count_call()
        try:
            yield
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _count_call(self) -> None:
        with self._calls_lock:
            self._calls += 1

    def _unavailable(self, exc: Exception) -> BackendUnavailableError:
        if isinstance(exc, redis.ConnectionError) and "Too many connections" in str(exc):
            return PoolExhaustedError(f"all {self._max_connections} busy on a node")
        if isinstance(exc, redis.TimeoutError | TimeoutError) or (
            isinstance(exc, RedisClusterException) and "Timeout" in str(exc)
        ):
            # redis-py's "cannot be connected" wraps the nodes' own errors in
            # its message: a timeout there is a timeout (the breaker opens at once).
            return BackendTimeoutError(f"{type(exc).__name__}: {exc}")
        return BackendUnavailableError(f"{type(exc).__name__}: {exc}")
