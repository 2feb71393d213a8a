"""Pytest fixtures for the Redis topologies: Cluster, Sentinel, TLS.

A plugin: wire it in with ``pytest_plugins = ["tests.support.topology_fixtures"]``
in the root tests/conftest.py (pytest accepts ``pytest_plugins`` only there), or
import the fixtures by name into a sub-directory's conftest.py.

Each topology starts on first use and serves the whole session
(``*_session`` fixtures). ``redis_cluster`` and ``redis_sentinels`` hand a test
that session object and *heal* it afterwards (thaw frozen nodes, restart dead
ones, wait until healthy), so a test may kill or freeze nodes freely; after a
failover the topology stays failed over (ask ``masters()`` /
``current_master()``, never remember ports across tests). Data is not flushed
between tests: use a key prefix of your own, or ``flushall()``.

``redis_cluster_tls`` and ``redis_sentinels_tls`` are the same topologies on TLS
only (cluster bus, replication and sentinel links too), with client
certificates required; session fixtures handed out as they are (not healed
after each test: a test that kills or freezes their nodes heals them itself).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_cluster import RedisCluster
from tests.support.redis_sentinel import RedisSentinelSet
from tests.support.redis_tls import RedisTLSServer

SENTINEL_PASSWORD = "sentinel-secret"
DATA_PASSWORD = "data-secret"


@pytest.fixture(scope="session")
def redis_cluster_session() -> Iterator[RedisCluster]:
    """Three masters + three replicas, cluster-node-timeout 1000 ms, full coverage required."""
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture
def redis_cluster(redis_cluster_session: RedisCluster) -> Iterator[RedisCluster]:
    """The session's cluster, healthy at the start; healed after the test."""
    redis_cluster_session.wait_healthy()
    yield redis_cluster_session
    redis_cluster_session.heal()


@pytest.fixture(scope="session")
def redis_sentinels_session() -> Iterator[RedisSentinelSet]:
    """Master + replica + three sentinels, no passwords."""
    with RedisSentinelSet() as sentinels:
        yield sentinels


@pytest.fixture
def redis_sentinels(redis_sentinels_session: RedisSentinelSet) -> Iterator[RedisSentinelSet]:
    """The session's sentinel set, settled at the start; healed after the test."""
    redis_sentinels_session.wait_settled()
    yield redis_sentinels_session
    redis_sentinels_session.heal()


@pytest.fixture(scope="session")
def redis_sentinels_auth_session() -> Iterator[RedisSentinelSet]:
    """Like ``redis_sentinels_session`` with passwords: ``SENTINEL_PASSWORD`` on the
    sentinels, ``DATA_PASSWORD`` on master and replica."""
    with RedisSentinelSet(password=DATA_PASSWORD, sentinel_password=SENTINEL_PASSWORD) as sentinels:
        yield sentinels


@pytest.fixture
def redis_sentinels_auth(
    redis_sentinels_auth_session: RedisSentinelSet,
) -> Iterator[RedisSentinelSet]:
    redis_sentinels_auth_session.wait_settled()
    yield redis_sentinels_auth_session
    redis_sentinels_auth_session.heal()


@pytest.fixture(scope="session")
def redis_tls() -> Iterator[RedisTLSServer]:
    """A TLS-only redis-server requiring a client certificate (``--tls-auth-clients yes``)."""
    with RedisTLSServer(auth_clients="yes") as server:
        yield server


@pytest.fixture(scope="session")
def redis_tls_optional() -> Iterator[RedisTLSServer]:
    """A TLS-only redis-server verifying a client certificate only if one is sent."""
    with RedisTLSServer(auth_clients="optional") as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster_tls() -> Iterator[RedisCluster]:
    """``redis_cluster_session`` on TLS only: ``--port 0 --tls-port``, ``--tls-cluster yes``,
    ``--tls-replication yes``, a client certificate of its CA required."""
    with RedisCluster(tls=True) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinels_tls() -> Iterator[RedisSentinelSet]:
    """``redis_sentinels_session`` on TLS only: data nodes and sentinels on ``tls-port`` with
    ``port 0`` and ``tls-replication yes``, a client certificate of its CA required."""
    with RedisSentinelSet(tls=True) as sentinels:
        yield sentinels
