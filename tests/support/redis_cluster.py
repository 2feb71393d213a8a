"""A real Redis Cluster for tests: 3 masters + 3 replicas on free loopback ports.

Each node is a redis-server with ``--cluster-enabled yes``, its own directory
(holding its nodes.conf, which a restarted node reads to rejoin), a data port
and a cluster-bus port both taken from ``free_port()`` (``--cluster-port``: the
default bus port, data port + 10000, could be above 65535 or taken), and
persistence off. ``redis-cli --cluster create ... --cluster-replicas 1`` joins
them; ``start`` returns once every node reports ``cluster_state:ok`` with all
16384 slots served and every replica's link to its master up.

Failover settings, chosen so a failover test is fast and deterministic:

* ``--cluster-node-timeout`` 1000 ms: a silent master is suspected after 1 s and
  failed once a majority of masters agrees (gossip, about 1 s more); its replica
  is elected after 0.5-1 s. About 2-3 s here from SIGKILL to ``cluster_state:ok``
  on every survivor; creating the cluster takes about 2.2 s, a restarted node is
  back as a synced replica in about 0.2 s (``--repl-diskless-sync-delay 0``).
* ``--cluster-replica-validity-factor 0``: a replica always attempts the
  failover, however long its link to the master has been down.
* ``cluster-require-full-coverage`` stays at Redis's default (``yes``,
  parameter ``require_full_coverage``): between the kill and the promotion
  *every* node answers CLUSTERDOWN, for every slot, which is what production
  sees by default. With ``no``, only the dead master's slots are unavailable.
  ``wait_for_failover`` works either way: it waits until every surviving node
  sees all 16384 slots served by live masters and the dead node owning none.

With ``tls=True`` every node listens on TLS only (``--port 0 --tls-port <data
port>``), the cluster bus and replication are TLS too (``--tls-cluster yes
--tls-replication yes``), clients must present a certificate of the cluster's
CA (``--tls-auth-clients yes``); the certificates are ``make_certificates``'s,
in the cluster's directory (``files``, and ``ca_certs``/``certfile``/``keyfile``/
``wrong_ca_certs`` as on ``RedisTLSServer``). ``redis-cli --cluster create``,
every health check and ``client`` speak TLS with the client certificate.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import redis

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
)

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
SLOTS = 16384


@dataclass(frozen=True)
class ClusterNodeInfo:
    """One line of CLUSTER NODES."""

    node_id: str
    host: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    link_state: str
    slots: tuple[tuple[int, int], ...]

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        """Flagged ``fail`` (agreed dead) or ``fail?`` (suspected by the node asked)."""
        return "fail" in self.flags or "fail?" in self.flags

    @property
    def slot_count(self) -> int:
        return sum(end - start + 1 for start, end in self.slots)


def parse_cluster_nodes(text: str) -> list[ClusterNodeInfo]:
    """Parse CLUSTER NODES (``<id> <ip:port@cport> <flags> <master> ... <link> <slots>...``)."""
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@", 1)[0]
        host, _, port = address.rpartition(":")
        slots = []
        for item in fields[8:]:
            if item.startswith("["):  # a slot being migrated or imported
                continue
            start, _, end = item.partition("-")
            slots.append((int(start), int(end or start)))
        nodes.append(
            ClusterNodeInfo(
                node_id=fields[0],
                host=host or HOST,
                port=int(port),
                flags=frozenset(fields[2].split(",")),
                master_id=None if fields[3] == "-" else fields[3],
                link_state=fields[7],
                slots=tuple(slots),
            )
        )
    return nodes


class RedisCluster(TlsFileProperties):
    """Six redis-server nodes in cluster mode (``masters`` masters, one replica each).

    ``start`` / ``stop``; ``kill_master`` / ``wait_for_failover`` /
    ``restart_node``; ``heal`` (thaw, restart the dead, wait until healthy);
    ``masters()`` / ``replicas()`` as a live node sees them; ``nodes`` gives each
    port's ``RedisNode`` (for ``freeze``/``thaw`` or its log). Use as a context
    manager or call ``stop``.
    """

    def __init__(
        self,
        masters: int = 3,
        *,
        node_timeout_ms: int = 1000,
        require_full_coverage: bool = True,
        tls: bool = False,
    ) -> None:
        self.host = HOST
        self.node_timeout_ms = node_timeout_ms
        self._dir = Path(tempfile.mkdtemp(prefix="salescast-redis-cluster-"))
        self.files: TlsFiles | None = None
        if tls:
            try:
                self.files = make_certificates(self._dir / "certs")
            except BaseException:
                shutil.rmtree(self._dir, ignore_errors=True)
                raise
        count = masters * 2
        ports: list[int] = []
        while len(ports) < count * 2:  # a data port and a bus port per node, all distinct
            port = free_port()
            if port not in ports:
                ports.append(port)
        self.nodes: dict[int, RedisNode] = {}
        for data_port, bus_port in zip(ports[:count], ports[count:], strict=True):
            if self.files is None:
                listen = ["--port", str(data_port)]
            else:
                listen = [
                    "--port", "0",
                    "--tls-port", str(data_port),
                    "--tls-cluster", "yes",
                    "--tls-replication", "yes",
                    *server_tls_args(self.files),
                ]  # fmt: skip
            args = [
                *listen,
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(bus_port),
                "--cluster-node-timeout", str(node_timeout_ms),
                "--cluster-replica-validity-factor", "0",
                "--cluster-require-full-coverage", "yes" if require_full_coverage else "no",
                "--save", "",
                "--appendonly", "no",
                "--repl-diskless-sync-delay", "0",  # a replica syncs at once, not after 5 s
                "--loglevel", "notice",
            ]  # fmt: skip
            context = None if self.files is None else client_ssl_context(self.files)
            self.nodes[data_port] = RedisNode(
                self._dir / str(data_port), data_port, args, tls=context
            )
        self._slots_by_port: dict[int, tuple[tuple[int, int], ...]] = {}
        self._started = False

    # -- addresses -------------------------------------------------------------------------

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """Every node's (host, port), in port order of creation."""
        return [node.address for node in self.nodes.values()]

    @property
    def nodes_setting(self) -> str:
        """``"127.0.0.1:p1,127.0.0.1:p2,..."``: every node, as a comma-separated setting."""
        return ",".join(f"{host}:{port}" for host, port in self.startup_nodes)

    @property
    def directory(self) -> Path:
        return self._dir

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> RedisCluster:
        """Start the nodes, create the cluster, wait until it is healthy."""
        if self._started:
            raise RuntimeError("already started")
        self._started = True
        track_topology(self)
        try:
            for node in self.nodes.values():
                node.start()
            self._create()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node (by pid) and remove the cluster's directory."""
        for node in self.nodes.values():
            node.stop()
        untrack_topology(self)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _create(self) -> None:
        args = [REDIS_CLI]
        if self.files is not None:
            args += ["--tls", "--cacert", self.files.ca_certs]
            args += ["--cert", self.files.certfile, "--key", self.files.keyfile]
        args += ["--cluster", "create", *self.nodes_setting.split(",")]
        args += ["--cluster-replicas", "1", "--cluster-yes"]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        (self._dir / "cluster-create.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {result.stdout[-2000:]}")

    # -- views -----------------------------------------------------------------------------

    def client(self, port: int) -> redis.Redis:
        """A plain (non-cluster) client on one node: 1 s timeouts, no retries, replies decoded
        (over TLS with the client certificate on a TLS cluster)."""
        return redis.Redis(
            host=self.host,
            port=port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            decode_responses=True,
            protocol=2,
            retry=no_retry(),
            **self.tls_options(),
        )

    def live_ports(self) -> list[int]:
        """Nodes whose process runs and is not frozen."""
        return [port for port, node in self.nodes.items() if node.running and not node.frozen]

    def cluster_nodes(self, port: int | None = None) -> list[ClusterNodeInfo]:
        """CLUSTER NODES as node ``port`` (default: the first live node) sees it."""
        ports = [port] if port is not None else self.live_ports()
        error: Exception | None = None
        for candidate in ports:
            try:
                with self.client(candidate) as client:
                    return parse_cluster_nodes(self._raw(client, "CLUSTER", "NODES"))
            except redis.RedisError as exc:
                error = exc
        raise RuntimeError(f"no node answered CLUSTER NODES: {error}")

    def cluster_info(self, port: int) -> dict[str, str]:
        with self.client(port) as client:
            text = self._raw(client, "CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def masters(self) -> list[ClusterNodeInfo]:
        """Masters not flagged failed, as a live node sees them, by port."""
        nodes = self.cluster_nodes()
        return sorted((n for n in nodes if n.is_master and not n.failed), key=lambda n: n.port)

    def replicas(self) -> list[ClusterNodeInfo]:
        """Replicas not flagged failed, as a live node sees them, by port."""
        nodes = self.cluster_nodes()
        return sorted(
            (n for n in nodes if "slave" in n.flags and not n.failed), key=lambda n: n.port
        )

    def master_of_slot(self, slot: int, port: int | None = None) -> ClusterNodeInfo:
        for node in self.cluster_nodes(port):
            if node.is_master and any(start <= slot <= end for start, end in node.slots):
                return node
        raise LookupError(f"no master owns slot {slot}")

    @staticmethod
    def _raw(client: redis.Redis, *command: str) -> str:
        # Past redis-py's response callbacks, which turn some CLUSTER replies into dicts.
        connection = client.connection_pool.get_connection()
        try:
            connection.send_command(*command)
            reply = connection.read_response()
        finally:
            client.connection_pool.release(connection)
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    # -- health ----------------------------------------------------------------------------

    def _healthy(self) -> bool:
        expected = len(self.nodes)
        try:
            for port in self.nodes:
                info = self.cluster_info(port)
                if info.get("cluster_state") != "ok":
                    return False
                if info.get("cluster_slots_ok") != str(SLOTS):
                    return False
                if info.get("cluster_known_nodes") != str(expected):
                    return False
                view = self.cluster_nodes(port)
                if any(n.failed or "handshake" in n.flags or "noaddr" in n.flags for n in view):
                    return False
                if any(n.link_state != "connected" for n in view if "myself" not in n.flags):
                    return False
                if sum(n.slot_count for n in view if n.is_master) != SLOTS:
                    return False
                myself = next(n for n in view if "myself" in n.flags)
                if not myself.is_master:
                    with self.client(port) as client:
                        if client.info("replication").get("master_link_status") != "up":
                            return False
        except (redis.RedisError, RuntimeError, StopIteration):
            return False
        self._slots_by_port = {n.port: n.slots for n in self.cluster_nodes() if n.is_master}
        return True

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every node runs and reports cluster_state:ok, all slots served, no node
        failed or unconnected, and every replica's link to its master up."""
        wait_until(self._healthy, timeout, "cluster healthy", interval=0.1)

    def heal(self, timeout: float = 30.0) -> None:
        """Thaw frozen nodes, restart dead ones (they rejoin as replicas), wait until healthy."""
        for node in self.nodes.values():
            node.thaw()
            if not node.running:
                node.restart()
        self.wait_healthy(timeout)

    def flushall(self) -> None:
        """FLUSHALL on every master (replicas follow)."""
        for master in self.masters():
            with self.client(master.port) as client:
                client.flushall()

    # -- faults ----------------------------------------------------------------------------

    def kill_master(self, port: int | None = None) -> int:
        """SIGKILL one master (default: the lowest port among the masters that own slots: a
        node an earlier test revived may rejoin as a master of none); return its port."""
        masters = self.masters()
        if port is None:
            port = next(m.port for m in masters if m.slots)
        elif port not in {m.port for m in masters}:
            raise ValueError(f"{port} is not a live master")
        self._slots_by_port.update({m.port: m.slots for m in masters})
        self.nodes[port].kill()
        return port

    def wait_for_failover(self, dead_port: int, timeout: float = 20.0) -> int:
        """Until a replica has taken over ``dead_port``'s slots; return the new master's port.

        Done when every surviving node (running, not frozen) reports cluster_state:ok
        with all 16384 slots served, sees ``dead_port`` flagged ``fail`` and owning no
        slots, and agrees on who owns the dead master's first slot.
        """
        old_slots = self._slots_by_port.get(dead_port)
        if not old_slots:
            raise ValueError(f"no slots known for {dead_port}; kill it with kill_master")
        first_slot = old_slots[0][0]

        def promoted() -> int | None:
            owners = set()
            try:
                for port in self.live_ports():
                    if port == dead_port:
                        continue
                    info = self.cluster_info(port)
                    if info.get("cluster_state") != "ok":
                        return None
                    if info.get("cluster_slots_ok") != str(SLOTS):
                        return None
                    view = self.cluster_nodes(port)
                    dead = next(n for n in view if n.port == dead_port)
                    if "fail" not in dead.flags or dead.slots:
                        return None
                    owner = next(
                        n
                        for n in view
                        if n.is_master and any(s <= first_slot <= e for s, e in n.slots)
                    )
                    owners.add(owner.port)
            except (redis.RedisError, RuntimeError, StopIteration):
                return None
            return owners.pop() if len(owners) == 1 else None

        new_port = wait_until(promoted, timeout, f"failover of master {dead_port}", 0.1)
        assert isinstance(new_port, int)
        return new_port

    def move_slot(self, slot: int, to_port: int) -> int:
        """Reshard one slot and its keys to the master on ``to_port`` (what ``redis-cli
        --cluster reshard`` does: IMPORTING, MIGRATING, MIGRATE, SETSLOT NODE on every
        master); return the port of the master that had it. Clients that knew the old
        owner get MOVED for it from then on."""
        source = self.master_of_slot(slot)
        masters = {m.port: m for m in self.masters()}
        if to_port not in masters:
            raise ValueError(f"{to_port} is not a live master")
        target = masters[to_port]
        if source.port == to_port:
            return to_port
        with self.client(to_port) as t, self.client(source.port) as s:
            t.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
            s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
            while keys := s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                s.execute_command("MIGRATE", self.host, to_port, "", 0, 5000, "KEYS", *keys)
            for port in [
                to_port,
                source.port,
                *(p for p in masters if p not in (to_port, source.port)),
            ]:
                with self.client(port) as client:
                    client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        wait_until(
            lambda: all(self.master_of_slot(slot, port).port == to_port for port in masters),
            10.0,
            f"every master agreeing that {to_port} owns slot {slot}",
        )
        return source.port

    def restart_node(self, port: int, timeout: float = 30.0) -> None:
        """Start a killed node again on its port, with its nodes.conf: a former master whose
        slots were taken over rejoins as a replica. Returns once the cluster is healthy and,
        for such a former master, once every node sees it as a replica.

        Healthy alone is not enough: the node first comes back as a master of no slots and
        turns replica only when a ping from the new owner tells it its epoch is stale
        (Redis's clusterUpdateSlotsConfigWith), which can come a moment later."""
        node = self.nodes[port]
        was_master = bool(self._slots_by_port.get(port))
        node.restart()
        self.wait_healthy(timeout)
        if was_master:
            wait_until(
                lambda: self._seen_as_replica_by_all(port),
                timeout,
                f"node {port} rejoining as a replica",
                interval=0.1,
            )

    def _seen_as_replica_by_all(self, port: int) -> bool:
        try:
            for live in self.live_ports():
                view = self.cluster_nodes(live)
                node = next(n for n in view if n.port == port)
                if "slave" not in node.flags or node.failed:
                    return False
        except (redis.RedisError, RuntimeError, StopIteration):
            return False
        return True
