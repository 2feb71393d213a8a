"""L2 on a Redis master found through Sentinel: the same commands, another way to connect."""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from collections.abc import Sequence
from typing import Any

import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from salescast.cache.backends.redis import RedisBackend
from salescast.cache.backends.redis_connections import url_options
from salescast.cache.health import TopologyReport


class RedisSentinelBackend(RedisBackend):
    """``RedisBackend`` whose connections go to the master Sentinel names now.

    Every new connection asks the sentinels (``SENTINEL
    get-master-addr-by-name``) for the current master of ``master_name``,
    so after a failover the next connection reaches the promoted replica. A
    connection still open to a demoted master turns its ``READONLY`` reply
    into a dropped connection (redis-py's ``SentinelManagedConnection``):
    a write to a master that became a replica is never "healthy", it is a
    failure the breaker counts, and the retry or the next connection finds
    the new master. A killed master fails the same way until the sentinels
    promote its replica.

    ``url`` carries what is not an address: credentials, database and the
    scheme (``rediss://`` for TLS, with the certificate files as for
    ``RedisBackend``); its host and port are ignored. ``sentinel_password``
    authenticates to the sentinels themselves. Sentinel connections use the
    same timeouts (and TLS) as data connections. The pools are redis-py's
    ``SentinelConnectionPool`` (not blocking: when ``max_connections`` are
    all in use a caller fails at once, counted as a busy pool, not an outage).
    """

    def __init__(
        self,
        sentinels: Sequence[tuple[str, int]],
        master_name: str,
        *,
        url: str = "redis://",
        sentinel_password: str | None = None,
        **options: Any,
    ) -> None:
        if not sentinels:
            raise ValueError("Sentinel needs at least one sentinel address")
        if not master_name:
            raise ValueError("Sentinel needs the name of the master it monitors")
        self.sentinels = [(host, int(port)) for host, port in sentinels]
        self.master_name = master_name
        self._sentinel_password = sentinel_password
        self._sentinel: redis.sentinel.Sentinel | None = None
        self._loop_managers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__(url, **options)

    def close(self) -> None:
        """Disconnect the data pool and the connections to the sentinels."""
        super().close()
        if self._sentinel is not None:
            for client in self._sentinel.sentinels:
                client.close()

    async def aclose(self) -> None:
        """As ``RedisBackend.aclose``, and the running loop's connections to the sentinels."""
        await super().aclose()
        manager = self._loop_managers.pop(asyncio.get_running_loop(), None)
        if manager is not None:
            for client in manager.sentinels:
                await client.aclose()

    @property
    def topology(self) -> str:
        return "sentinel"

    @property
    def address(self) -> str:
        """The master's name and the address it had at the last connection."""
        current = self._pool.master_address
        where = f" at {current[0]}:{current[1]}" if current else ""
        return f"sentinel master {self.master_name}{where}"

    def describe(self) -> TopologyReport:
        """The master Sentinel names now, and what that server says of itself."""
        host, port = self.current_master()
        report = super().describe()
        master = f"{host}:{port}"
        return dataclasses.replace(
            report,
            address=f"sentinel master {self.master_name} at {master}",
            nodes=tuple(dataclasses.replace(node, address=master) for node in report.nodes),
        )

    def current_master(self) -> tuple[str, int]:
        """Ask the sentinels now (raises ``BackendUnavailableError`` when none answers)."""
        with self._io():
            host, port = self._sentinel_manager().discover_master(self.master_name)  # type: ignore[no-untyped-call]
        return str(host), int(port)

    def _connection_kwargs(self) -> dict[str, Any]:
        kwargs = {**url_options(self.url, "username", "password", "db"), **self._options}
        if self.url.startswith("rediss://"):
            kwargs["ssl"] = True
        return kwargs

    def _sentinel_kwargs(self, retry: Retry | AsyncRetry) -> dict[str, Any]:
        # ``retry``: without one, redis-py retries a sentinel that refuses (or fails the
        # TLS handshake) 10 times with backoff, seconds per sentinel and lookup.
        kwargs: dict[str, Any] = {
            "socket_timeout": self._options["socket_timeout"],
            "socket_connect_timeout": self._options["socket_connect_timeout"],
            "protocol": 2,
            "retry": retry,
        }
        if self._sentinel_password:
            kwargs["password"] = self._sentinel_password
        for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"):
            if name in self._options:
                kwargs[name] = self._options[name]
        if self.url.startswith("rediss://"):
            kwargs["ssl"] = True
        return kwargs

    def _sentinel_manager(self) -> redis.sentinel.Sentinel:
        if self._sentinel is None:
            self._sentinel = _Sentinel(  # type: ignore[no-untyped-call]
                self.sentinels, sentinel_kwargs=self._sentinel_kwargs(Retry(NoBackoff(), 0))
            )
        return self._sentinel

    def _new_pool(self) -> Any:
        return redis.sentinel.SentinelConnectionPool(  # type: ignore[no-untyped-call]
            self.master_name,
            self._sentinel_manager(),
            retry=Retry(NoBackoff(), 0),
            **self._connection_kwargs(),
        )

    def _new_loop_pool(self) -> Any:
        manager = _AsyncSentinel(  # type: ignore[no-untyped-call]
            self.sentinels, sentinel_kwargs=self._sentinel_kwargs(AsyncRetry(NoBackoff(), 0))
        )
        self._loop_managers[asyncio.get_running_loop()] = manager
        return redis.asyncio.sentinel.SentinelConnectionPool(  # type: ignore[no-untyped-call]
            self.master_name, manager, retry=AsyncRetry(NoBackoff(), 0), **self._connection_kwargs()
        )


def _sentinel_name(client: Any) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host')}:{kwargs.get('port')}"


def _not_found(service_name: str, errors: list[str]) -> redis.sentinel.MasterNotFoundError:
    reasons = f": {'; '.join(errors)}" if errors else ""
    return redis.sentinel.MasterNotFoundError(f"No master found for {service_name!r}{reasons}")


class _Sentinel(redis.sentinel.Sentinel):
    """redis-py's ``Sentinel``, whose ``MasterNotFoundError`` says why each sentinel failed.

    redis-py's own names each sentinel by its client's repr and each error by its class
    only (``network:ConnectionError``): a wrong CA, a refused connection and a timeout
    read the same, and the reason (``CERTIFICATE_VERIFY_FAILED``) is lost.
    """

    def discover_master(self, service_name: str) -> tuple[str, int]:
        errors = []
        for index, sentinel in enumerate(self.sentinels):
            try:
                masters: Any = sentinel.sentinel_masters()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                errors.append(f"{_sentinel_name(sentinel)}: {type(exc).__name__}: {exc}")
                continue
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):  # type: ignore[no-untyped-call]
                self.sentinels[0], self.sentinels[index] = sentinel, self.sentinels[0]
                ip = self._force_master_ip if self._force_master_ip is not None else state["ip"]
                return ip, state["port"]
        raise _not_found(service_name, errors)


class _AsyncSentinel(redis.asyncio.sentinel.Sentinel):
    """As ``_Sentinel``, for asyncio."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        errors = []
        for index, sentinel in enumerate(self.sentinels):
            try:
                masters: Any = await sentinel.sentinel_masters()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                errors.append(f"{_sentinel_name(sentinel)}: {type(exc).__name__}: {exc}")
                continue
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):
                self.sentinels[0], self.sentinels[index] = sentinel, self.sentinels[0]
                ip = self._force_master_ip if self._force_master_ip is not None else state["ip"]
                return ip, state["port"]
        raise _not_found(service_name, errors)
