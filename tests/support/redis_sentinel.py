"""A real Sentinel-managed Redis for tests: a master, one replica and three sentinels.

All five are redis-server processes on free loopback ports, in one temp dir
(a sentinel is ``redis-server <conf> --sentinel``; Debian's separate
redis-sentinel package is not needed). Each sentinel's config file is written
there (sentinels rewrite it as they learn the topology):
``sentinel monitor <name> 127.0.0.1 <master port> 2``, down-after 1000 ms,
failover-timeout 3000 ms.

Optional passwords: ``password`` protects the data nodes (``requirepass`` and
``masterauth`` on both, since either may become the replica; ``sentinel
auth-pass`` on the sentinels); ``sentinel_password`` protects the sentinels
(``requirepass`` plus ``sentinel sentinel-pass``, so they can still talk to each
other). redis-py takes them apart: ``Sentinel(..., sentinel_kwargs={"password":
sentinel_password}, password=password)`` -- see ``sentinel_client``.

Timings seen here: ``start`` about 2.3 s (until the sentinels have found each
other through the master's hello channel); SIGKILL or SIGSTOP of the master to a
new master every sentinel reports, about 2.2-2.4 s; a returning old master is
reconfigured as a replica only after Sentinel's own delays (it must have been up
for 4 hello periods and is polled with INFO). Those periods are 2 s and 10 s by
default; the sentinels here are started with ``SENTINEL DEBUG`` periods of 0.5 s
and 1 s (see ``_tune_sentinel``), so ``restart_old_master`` takes about 3 s;
writes sent straight to it meanwhile still succeed (the split-brain window),
READONLY only after. ``heal`` does not wait for that: it sends the stale master
REPLICAOF itself.

A client on a frozen master times out (``socket_timeout``) rather than failing
fast; redis-py's sentinel-managed pool asks the sentinels for the master again
on each new connection, so a retry after the failover reaches the new master.

With ``tls=True`` all five listen on TLS only (``port 0``, ``tls-port``),
replication is TLS (``tls-replication yes`` on the data nodes) and so are the
sentinels' links to the data nodes and to each other (``tls-replication yes`` in
their config: a sentinel speaks TLS to every instance it monitors or meets);
clients must present a certificate of the set's CA (``tls-auth-clients yes``).
The certificates are ``make_certificates``'s, in the set's directory
(``files``, and ``ca_certs``/``certfile``/``keyfile``/``wrong_ca_certs``);
every check here and every client made here speaks TLS with the client
certificate.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
import redis.sentinel

from tests.support.redis_process import (
    HOST,
    RedisNode,
    no_retry,
    track_topology,
    untrack_topology,
    wait_until,
)
from tests.support.redis_server import free_port
from tests.support.redis_tls import (
    TlsFileProperties,
    TlsFiles,
    client_ssl_context,
    make_certificates,
    server_tls_args,
    server_tls_settings,
)

Address = tuple[str, int]


def _port(address: Address | int) -> int:
    return address if isinstance(address, int) else int(address[1])


class RedisSentinelSet(TlsFileProperties):
    """A master + replica watched by three sentinels (quorum 2).

    ``start`` / ``stop``; ``current_master()`` (what a sentinel says);
    ``kill_master`` / ``freeze_master`` / ``wait_for_failover`` /
    ``restart_old_master``; ``heal`` (thaw, restart the dead, wait until settled);
    ``sentinel_client`` builds a configured ``redis.sentinel.Sentinel``.
    ``data_nodes`` and ``sentinel_nodes`` give each port's ``RedisNode``.
    """

    def __init__(
        self,
        master_name: str = "salescast",
        *,
        password: str | None = None,
        sentinel_password: str | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        quorum: int = 2,
        tls: bool = False,
    ) -> None:
        self.host = HOST
        self.master_name = master_name
        self.password = password
        self.sentinel_password = sentinel_password
        self._dir = Path(tempfile.mkdtemp(prefix="salescast-redis-sentinel-"))
        self.files: TlsFiles | None = None
        if tls:
            try:
                self.files = make_certificates(self._dir / "certs")
            except BaseException:
                shutil.rmtree(self._dir, ignore_errors=True)
                raise
        context = None if self.files is None else client_ssl_context(self.files)
        ports: list[int] = []
        while len(ports) < 5:
            port = free_port()
            if port not in ports:
                ports.append(port)
        master_port, replica_port, *sentinel_ports = ports
        self._initial_master = master_port
        self._old_master: int | None = None

        data_args = ["--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]
        if password:
            data_args += ["--requirepass", password, "--masterauth", password]
        if self.files is not None:
            data_args += ["--tls-replication", "yes", *server_tls_args(self.files)]

        def listen(port: int) -> list[str]:
            if self.files is None:
                return ["--port", str(port)]
            return ["--port", "0", "--tls-port", str(port)]

        replica_of = [*listen(replica_port), "--replicaof", self.host, str(master_port)]
        self.data_nodes: dict[int, RedisNode] = {
            master_port: RedisNode(
                self._dir / f"data-{master_port}",
                master_port,
                [*listen(master_port), *data_args],
                password=password,
                tls=context,
            ),
            replica_port: RedisNode(
                self._dir / f"data-{replica_port}",
                replica_port,
                [*replica_of, *data_args],
                password=password,
                tls=context,
            ),
        }
        self.sentinel_nodes: dict[int, RedisNode] = {}
        for port in sentinel_ports:
            directory = self._dir / f"sentinel-{port}"
            directory.mkdir()
            if self.files is None:
                lines = [f"port {port}"]
            else:
                lines = ["port 0", f"tls-port {port}", "tls-replication yes"]
                lines += [f"{name} {value}" for name, value in server_tls_settings(self.files)]
            lines += [
                "sentinel resolve-hostnames no",
                "sentinel announce-hostnames no",
                f"sentinel monitor {master_name} {self.host} {master_port} {quorum}",
                f"sentinel down-after-milliseconds {master_name} {down_after_ms}",
                f"sentinel failover-timeout {master_name} {failover_timeout_ms}",
                f"sentinel parallel-syncs {master_name} 1",
            ]
            if password:
                lines.append(f"sentinel auth-pass {master_name} {password}")
            if sentinel_password:
                lines.append(f"requirepass {sentinel_password}")
                lines.append(f"sentinel sentinel-pass {sentinel_password}")
            config = directory / "sentinel.conf"
            config.write_text("\n".join(lines) + "\n")
            self.sentinel_nodes[port] = RedisNode(
                directory,
                port,
                ["--sentinel"],
                config_file=config,
                password=sentinel_password,
                tls=context,
            )
        self._started = False

    # -- addresses -------------------------------------------------------------------------

    @property
    def sentinels(self) -> list[Address]:
        """The three sentinels' (host, port)."""
        return [node.address for node in self.sentinel_nodes.values()]

    @property
    def sentinels_setting(self) -> str:
        """``"127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"``."""
        return ",".join(f"{host}:{port}" for host, port in self.sentinels)

    @property
    def old_master(self) -> Address | None:
        """The master last killed or frozen through this object, if any."""
        return None if self._old_master is None else (self.host, self._old_master)

    @property
    def directory(self) -> Path:
        return self._dir

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> RedisSentinelSet:
        """Start master, replica (wait until it has synced), the sentinels; wait until
        every sentinel knows the replica and the two other sentinels."""
        if self._started:
            raise RuntimeError("already started")
        self._started = True
        track_topology(self)
        try:
            for node in self.data_nodes.values():
                node.start()
            # The sentinels find the replica in the master's INFO: have it attached first.
            wait_until(self._replicas_synced, timeout, "replica synced")
            for port, node in self.sentinel_nodes.items():
                node.start()
                self._tune_sentinel(port)
            self.wait_settled(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _tune_sentinel(self, port: int) -> None:
        """Shorten a sentinel's fixed periods (``SENTINEL DEBUG``, Redis 7.0+; not kept in
        its config file, so applied again after a restart).

        INFO every 1 s instead of 10 s and hellos every 0.5 s instead of 2 s: a returning old
        master is demoted about 2-3 s after it is back instead of 10-20 s. TILT (the sentinel
        stops acting for ``tilt-period`` when its timer ran late by more than
        ``tilt-trigger``) triggers on a loaded CI machine and then froze the sentinels for
        30 s; here it needs a 10 s stall and lasts 5 s."""
        with self.sentinel_connection(port) as client:
            client.execute_command(
                "SENTINEL",
                "DEBUG",
                *("info-period", 1000, "publish-period", 500),
                *("tilt-trigger", 10000, "tilt-period", 5000),
            )

    def stop(self) -> None:
        """Stop the sentinels, then the data nodes (by pid); remove the directory."""
        for node in [*self.sentinel_nodes.values(), *self.data_nodes.values()]:
            node.stop()
        untrack_topology(self)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisSentinelSet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clients ---------------------------------------------------------------------------

    def data_client(self, address: Address | int, **kwargs: Any) -> redis.Redis:
        """A plain client on one data node: password, 1 s timeouts, no retries, decoded."""
        options: dict[str, Any] = {
            "socket_timeout": 1.0,
            "socket_connect_timeout": 1.0,
            "decode_responses": True,
            "password": self.password,
            "retry": no_retry(),
            **self.tls_options(),
            **kwargs,
        }
        return redis.Redis(host=self.host, port=_port(address), **options)

    def sentinel_connection(self, port: int) -> redis.Redis:
        """A plain client on one sentinel: sentinel password, 1 s timeouts, no retries."""
        return redis.Redis(
            host=self.host,
            port=port,
            password=self.sentinel_password,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            decode_responses=True,
            retry=no_retry(),
            **self.tls_options(),
        )

    def sentinel_client(self, **connection_kwargs: Any) -> redis.sentinel.Sentinel:
        """A ``redis.sentinel.Sentinel`` over the three sentinels: the sentinel password goes
        in ``sentinel_kwargs``, the data password in the connection kwargs (redis-py does not
        pass one for the other); 1 s socket timeouts on both. Queries to the sentinels do not
        retry (a dead sentinel is skipped at once); the master/replica connections keep
        redis-py's default retry policy unless ``retry=`` is given."""
        options: dict[str, Any] = {
            "socket_timeout": 1.0,
            "socket_connect_timeout": 1.0,
            "password": self.password,
            **self.tls_options(),
            **connection_kwargs,
        }
        sentinel_kwargs = {
            "socket_timeout": 1.0,
            "socket_connect_timeout": 1.0,
            "password": self.sentinel_password,
            "retry": no_retry(),
            **self.tls_options(),
        }
        return redis.sentinel.Sentinel(self.sentinels, sentinel_kwargs=sentinel_kwargs, **options)

    # -- views -----------------------------------------------------------------------------

    def live_sentinels(self) -> list[int]:
        return [p for p, n in self.sentinel_nodes.items() if n.running and not n.frozen]

    def master_seen_by(self, sentinel_port: int) -> Address | None:
        """SENTINEL get-master-addr-by-name on one sentinel; None if it does not answer."""
        try:
            with self.sentinel_connection(sentinel_port) as client:
                reply = client.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
                )
        except redis.RedisError:
            return None
        if not reply:
            return None
        host, port = reply
        return (str(host), int(port))

    def current_master(self) -> Address:
        """The master's (host, port) per the first sentinel that answers."""
        for port in self.live_sentinels():
            address = self.master_seen_by(port)
            if address is not None:
                return address
        raise RuntimeError("no sentinel answered get-master-addr-by-name")

    def role(self, address: Address | int) -> str | None:
        """ROLE's first field on a data node (``master``/``slave``), None if it does not answer."""
        info = self._role(address)
        return None if info is None else str(info[0])

    def _role(self, address: Address | int) -> list[Any] | None:
        port = _port(address)
        node = self.data_nodes[port]
        if not node.running or node.frozen:
            return None
        try:
            with self.data_client(port) as client:
                return list(client.execute_command("ROLE"))
        except redis.RedisError:
            return None

    # -- health ----------------------------------------------------------------------------

    def _replicas_synced(self) -> bool:
        masters = [p for p in self.data_nodes if self.role(p) == "master"]
        if len(masters) != 1:
            return False
        for port in self.data_nodes:
            if port == masters[0]:
                continue
            role = self._role(port)
            # ['slave', master_host, master_port, state, offset]
            if role is None or role[0] != "slave" or int(role[2]) != masters[0]:
                return False
            if role[3] != "connected":
                return False
        return True

    def _settled(self) -> bool:
        if any(not n.running or n.frozen for n in self.sentinel_nodes.values()):
            return False
        if not self._replicas_synced():
            return False
        if self._agreed_master() is None:
            return False
        try:
            for port in self.sentinel_nodes:
                with self.sentinel_connection(port) as client:
                    state = client.execute_command("SENTINEL", "MASTER", self.master_name)
                    replicas = client.execute_command("SENTINEL", "REPLICAS", self.master_name)
                if state["flags"] != "master" or int(state["num-other-sentinels"]) != 2:
                    return False
                # Not the replica's master-link-status as a sentinel shows it: that comes
                # from INFO, which a sentinel sends a replica only every 10 s. The replica's
                # own ROLE (checked above) is current; flags "slave" alone means reachable
                # and not subjectively down, which is what a promotion needs.
                up = [r for r in replicas if r["flags"] == "slave"]
                if len(up) != len(self.data_nodes) - 1 or len(replicas) != len(up):
                    return False
        except (redis.RedisError, KeyError, TypeError):
            return False
        return True

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Until all five run, one data node is master and the other its replica with its link
        up (per ROLE), and every sentinel agrees on the master, knows the other two and
        flags the replica plain ``slave`` (not down nor disconnected)."""
        wait_until(self._settled, timeout, "sentinels settled", interval=0.1)

    def heal(self, timeout: float = 40.0) -> None:
        """Thaw frozen nodes, restart dead ones, wait until settled.

        A data node that comes back believing it is a master (and is not the one the
        sentinels name) is sent ``REPLICAOF <current master>`` here, which is what the
        sentinels would do a few seconds later; ``restart_old_master`` leaves that to
        them, as a test of the demotion needs."""
        for node in [*self.data_nodes.values(), *self.sentinel_nodes.values()]:
            node.thaw()
            if not node.running:
                node.restart()
                if node.port in self.sentinel_nodes:
                    self._tune_sentinel(node.port)
        master = wait_until(self._agreed_master, timeout, "sentinels agreeing on a master")
        assert isinstance(master, tuple)
        for port in self.data_nodes:
            if port != master[1] and self.role(port) == "master":
                with self.data_client(port) as client:
                    client.execute_command("REPLICAOF", master[0], str(master[1]))
        self.wait_settled(timeout)

    def _agreed_master(self) -> Address | None:
        seen = {self.master_seen_by(p) for p in self.sentinel_nodes}
        if len(seen) != 1:
            return None
        (master,) = seen
        return master if master is not None and self.role(master) == "master" else None

    def flushall(self) -> None:
        with self.data_client(self.current_master()) as client:
            client.flushall()

    # -- faults ----------------------------------------------------------------------------

    def kill_master(self) -> Address:
        """SIGKILL the current master; return its address."""
        port = _port(self.current_master())
        self.data_nodes[port].kill()
        self._old_master = port
        return (self.host, port)

    def freeze_master(self) -> Address:
        """SIGSTOP the current master (its connections stay open, nothing answers)."""
        port = _port(self.current_master())
        self.data_nodes[port].freeze()
        self._old_master = port
        return (self.host, port)

    def wait_for_failover(self, old_master: Address | int, timeout: float = 30.0) -> Address:
        """Until every live sentinel reports the same master other than ``old_master`` and that
        node answers ROLE as master; return its address."""
        old_port = _port(old_master)

        def promoted() -> Address | None:
            seen = {self.master_seen_by(p) for p in self.live_sentinels()}
            if len(seen) != 1:
                return None
            (master,) = seen
            if master is None or master[1] == old_port or self.role(master) != "master":
                return None
            return master

        master = wait_until(promoted, timeout, f"sentinel failover away from {old_port}", 0.1)
        assert isinstance(master, tuple)
        return master

    def restart_old_master(self, timeout: float = 40.0, *, wait: bool = True) -> Address:
        """Bring back the master last killed (restart, empty data) or frozen (thaw).

        It comes back believing it is a master; with ``wait`` (the default) return only once
        the sentinels have reconfigured it as a replica of the current master (ROLE slave
        pointing there), when a write to it answers READONLY.
        """
        if self._old_master is None:
            raise RuntimeError("no master was killed or frozen")
        port = self._old_master
        node = self.data_nodes[port]
        if node.frozen:
            node.thaw()
        if not node.running:
            node.restart()
        if wait:

            def demoted() -> bool:
                role = self._role(port)
                if role is None or role[0] != "slave":
                    return False
                return int(role[2]) == _port(self.current_master())

            wait_until(demoted, timeout, f"old master {port} reconfigured as a replica", 0.1)
        return (self.host, port)
