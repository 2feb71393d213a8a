"""The clients under RedisClusterBackend: redis-py's cluster clients, sync and one per event loop.

Both faces of the cluster commands (``_async/redis_cluster_commands.py`` and
the generated ``_sync/redis_cluster_commands.py``) stand on this base. The
cluster clients route each key to the master of its slot, follow ``MOVED``
and ``ASK`` redirections and refresh the slot map themselves, so a
redirection is routing, never an error the breaker sees; only a cluster that
does not answer (every retry used up, a slot without a master) is. It takes
the same timeout, pool and TLS parameters as ``RedisConnections`` (so the two
signatures read alike) and the same TLS rules (``tls_options``).
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from salescast.cache.backends.redis_connections import tls_options, url_options
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
# "No loop yet": a callable that answers no loop.
_NO_LOOP: tuple[Callable[[], object], Any] = (lambda: None, None)


class RedisClusterConnections:
    """The cluster clients of ``RedisClusterBackend``, error mapping, call counting."""

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
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, redis.asyncio.cluster.RedisCluster
        ] = weakref.WeakKeyDictionary()
        self._last_loop: tuple[Callable[[], object], Any] = _NO_LOOP  # (weakref, client)
        self._calls = 0
        self._calls_lock = threading.Lock()

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
        loop = asyncio.get_running_loop()
        last_loop, last_client = self._last_loop
        if last_loop() is loop:
            # The hit path asks every time: a weak reference compared is cheaper
            # than a WeakKeyDictionary lookup, which makes a new weakref each call.
            return last_client  # type: ignore[no-any-return]
        client = self._async.get(loop)
        if client is None:
            nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in self.startup_nodes]
            client = redis.asyncio.cluster.RedisCluster(
                startup_nodes=nodes,
                retry=AsyncRetry(NoBackoff(), _CLUSTER_RETRIES),
                **self._options,
            )
            self._async[loop] = client
        self._last_loop = (weakref.ref(loop), client)
        return client

    async def _close_loop(self) -> None:
        self._last_loop = _NO_LOOP
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

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
