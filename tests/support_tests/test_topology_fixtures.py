"""Smoke tests of the Redis topology fixtures, with raw redis-py clients only.

Cluster: keys over many slots; a master killed, a replica promoted, the same
client still usable, the old master back as a replica. Sentinel: a failover
changes the master Sentinel hands out; the restarted old master answers
READONLY; passwords on sentinels and data nodes; a frozen master is failed over
too. TLS: a real handshake; the wrong CA, no client certificate or one of the
wrong CA fail at once. And nothing stays running.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import redis.cluster

from tests.support.redis_cluster import SLOTS, RedisCluster
from tests.support.redis_process import no_retry, wait_until
from tests.support.redis_sentinel import RedisSentinelSet
from tests.support.redis_tls import RedisTLSServer
from tests.support.topology_fixtures import DATA_PASSWORD, SENTINEL_PASSWORD

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


def cluster_client(cluster: RedisCluster) -> redis.cluster.RedisCluster:
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in cluster.startup_nodes]
    return redis.cluster.RedisCluster(
        startup_nodes=nodes, socket_timeout=1.0, socket_connect_timeout=1.0
    )


def writes(client: redis.Redis, key: str) -> bool:
    """One SET; False on a connection error or timeout (the client reconnects on the next)."""
    try:
        return bool(client.set(key, "v"))
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); a stopped server has been waited for, so it is not one.
    return True


# -- cluster -----------------------------------------------------------------------------


def test_cluster_spreads_keys_over_every_master(redis_cluster: RedisCluster) -> None:
    masters, replicas = redis_cluster.masters(), redis_cluster.replicas()
    assert len(masters) == 3
    assert len(replicas) == 3
    assert sum(m.slot_count for m in masters) == SLOTS
    assert {r.master_id for r in replicas} == {m.node_id for m in masters}
    assert redis_cluster.nodes_setting.count("127.0.0.1:") == 6

    client = cluster_client(redis_cluster)
    try:
        keys = [f"smoke:{i}" for i in range(300)]
        for key in keys:
            client.set(key, key.upper())
        assert [client.get(key) for key in keys] == [key.upper().encode() for key in keys]
        slots = {client.keyslot(key) for key in keys}
        owners = {redis_cluster.master_of_slot(slot).port for slot in slots}
        assert len(slots) > 250
        assert owners == {m.port for m in masters}
    finally:
        client.close()


def test_cluster_fails_over_a_killed_master(redis_cluster: RedisCluster) -> None:
    client = cluster_client(redis_cluster)
    try:
        client.set("before", "1")
        replica_ports = {r.port for r in redis_cluster.replicas()}

        started = time.monotonic()
        dead = redis_cluster.kill_master()
        promoted = redis_cluster.wait_for_failover(dead, timeout=20)
        took = time.monotonic() - started

        assert promoted in replica_ports
        assert dead not in {m.port for m in redis_cluster.masters()}
        assert took < 15
        # The client made before the failover finds the new slot map by itself.
        keys = [f"after:{i}" for i in range(100)]
        for key in keys:
            client.set(key, "v")
        assert all(client.get(key) == b"v" for key in keys)

        redis_cluster.restart_node(dead)
        assert dead in {r.port for r in redis_cluster.replicas()}
        assert len(redis_cluster.masters()) == 3
    finally:
        client.close()


# -- sentinel ----------------------------------------------------------------------------


def test_sentinel_failover_moves_the_master_and_the_old_one_is_readonly(
    redis_sentinels: RedisSentinelSet,
) -> None:
    assert redis_sentinels.sentinels_setting.count("127.0.0.1:") == 3
    sentinel = redis_sentinels.sentinel_client()
    master = sentinel.master_for(redis_sentinels.master_name)
    try:
        master.set("before", "1")
        old = redis_sentinels.current_master()
        assert master.connection_pool.get_master_address() == old

        killed = redis_sentinels.kill_master()
        assert killed == old
        new = redis_sentinels.wait_for_failover(old, timeout=30)
        assert new != old
        assert redis_sentinels.current_master() == new
        assert sentinel.discover_master(redis_sentinels.master_name) == new

        # The same client asks the sentinels again after its connection breaks.
        wait_until(lambda: writes(master, "after"), 10, "write through the new master")
        assert master.connection_pool.get_master_address() == new

        redis_sentinels.restart_old_master(timeout=40)
        assert redis_sentinels.role(old) == "slave"
        with redis_sentinels.data_client(old) as stale, pytest.raises(redis.ReadOnlyError):
            stale.set("split-brain", "x")
    finally:
        master.close()


def test_sentinel_with_passwords_fails_over_a_frozen_master(
    redis_sentinels_auth: RedisSentinelSet,
) -> None:
    host, port = redis_sentinels_auth.sentinels[0]
    with (
        redis.Redis(host=host, port=port, socket_timeout=1.0, retry=no_retry()) as anonymous,
        pytest.raises(redis.AuthenticationError),
    ):
        anonymous.ping()

    with redis.Redis(
        host=host, port=port, password=SENTINEL_PASSWORD, socket_timeout=1.0, retry=no_retry()
    ) as authenticated:
        assert authenticated.ping()

    sentinel = redis_sentinels_auth.sentinel_client()
    master = sentinel.master_for(redis_sentinels_auth.master_name)
    try:
        master.set("k", "v")
        with redis_sentinels_auth.data_client(redis_sentinels_auth.current_master()) as data:
            assert data.connection_pool.connection_kwargs["password"] == DATA_PASSWORD
        data_host, data_port = redis_sentinels_auth.current_master()
        with (
            redis.Redis(host=data_host, port=data_port, socket_timeout=1.0) as anonymous_data,
            pytest.raises(redis.AuthenticationError),
        ):
            anonymous_data.set("k", "v")
        old = redis_sentinels_auth.freeze_master()
        new = redis_sentinels_auth.wait_for_failover(old, timeout=30)
        assert new != old
        wait_until(lambda: writes(master, "k2"), 10, "write through the new master")
        # Thawed, the old master still believes it is one until the sentinels demote it.
        redis_sentinels_auth.restart_old_master(wait=False)
    finally:
        master.close()


# -- TLS ---------------------------------------------------------------------------------


def test_tls_handshake_and_ping(redis_tls: RedisTLSServer) -> None:
    assert redis_tls.url == f"rediss://127.0.0.1:{redis_tls.port}/0"
    with redis_tls.client() as client:
        assert client.ping()
        connection = client.connection_pool.get_connection()
        try:
            sock = connection._sock
            assert isinstance(sock, ssl.SSLSocket)
            assert sock.version() in {"TLSv1.2", "TLSv1.3"}
        finally:
            client.connection_pool.release(connection)
    by_url = redis.Redis.from_url(
        redis_tls.url,
        ssl_ca_certs=redis_tls.ca_certs,
        ssl_certfile=redis_tls.certfile,
        ssl_keyfile=redis_tls.keyfile,
        socket_timeout=1.0,
    )
    try:
        assert by_url.ping()
    finally:
        by_url.close()


def test_tls_wrong_ca_fails_fast(redis_tls: RedisTLSServer) -> None:
    started = time.monotonic()
    with (
        redis_tls.client(ssl_ca_certs=redis_tls.wrong_ca_certs) as client,
        pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED") as caught,
    ):
        client.ping()
    assert time.monotonic() - started < 2
    assert isinstance(caught.value.__context__, ssl.SSLError)


def test_tls_client_certificate(
    redis_tls: RedisTLSServer, redis_tls_optional: RedisTLSServer
) -> None:
    with (
        redis_tls.client(ssl_certfile=None, ssl_keyfile=None) as anonymous,
        pytest.raises(redis.ConnectionError),
    ):
        anonymous.ping()
    foreign = {"ssl_certfile": redis_tls.wrong_certfile, "ssl_keyfile": redis_tls.wrong_keyfile}
    with redis_tls.client(**foreign) as client, pytest.raises(redis.ConnectionError):
        client.ping()
    with redis_tls_optional.client(ssl_certfile=None, ssl_keyfile=None) as client:
        assert client.ping()


# -- cleanup -----------------------------------------------------------------------------


def test_stop_leaves_no_process_and_no_directory() -> None:
    server = RedisTLSServer().start()
    pid, directory = server.pid, server.node.directory.parent
    assert pid is not None
    assert pid_alive(pid)
    server.stop()
    assert not pid_alive(pid)
    assert not directory.exists()


def test_interpreter_exit_stops_forgotten_topologies() -> None:
    script = (
        "from tests.support.redis_tls import RedisTLSServer\n"
        "s = RedisTLSServer().start()\n"
        "print(s.pid, s.node.directory.parent, flush=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    pid, directory = result.stdout.split()
    assert not pid_alive(int(pid))
    assert not Path(directory).exists()
