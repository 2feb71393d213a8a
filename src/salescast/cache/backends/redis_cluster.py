"""L2 on a Redis Cluster: keys routed by slot, deletes and health across every master."""

from __future__ import annotations

from typing import Any

import redis
from redis.exceptions import RedisClusterException

from salescast.cache._async.redis_cluster_commands import AsyncRedisClusterCommands
from salescast.cache._sync.redis_cluster_commands import RedisClusterCommands
from salescast.cache.health import NodeReport, TopologyReport


class RedisClusterBackend(RedisClusterCommands, AsyncRedisClusterCommands):
    """The shared tier on a Redis Cluster (sync and asyncio), through redis-py's cluster clients.

    ``startup_nodes`` are ``(host, port)`` pairs of any nodes; the client
    learns the rest (and every later change) from ``CLUSTER SLOTS``. ``url``
    carries only credentials and the scheme (``rediss://`` for TLS, with the
    certificate files as for ``RedisBackend``); clusters have one database.

    What differs from one server, and why it is right:

    - **Routing is not failure.** ``MOVED``/``ASK`` are followed inside the
      client (the slot map refreshed), so the breaker only counts a cluster
      that does not answer after its retries; its probe (``describe``, as on
      every topology) asks for the cluster's state and every master's, and
      ``ping`` PINGs every master, not the one node a single-server client knows.
    - **One product, one slot.** Entry keys, tag counters and leases of a
      product share its hash tag (``salescast.cache.keys``), so the lease's
      compare-and-delete and GET+PTTL are single-slot scripts.
    - **Clear and tag deletes reach every master**: SCAN runs on each
      master, UNLINK is split by slot.
    - **Invalidation reaches every worker**: PUBLISH on any node is carried
      to the subscribers of every node by the cluster bus; a subscriber
      whose node dies resubscribes on another and empties its L1.
    - ``/cache/status`` lists each node, its role and whether it answered.

    - **The hit goes straight to the slot's master** on a connection kept
      for that node (as ``RedisBackend`` keeps them for its server), not
      through the cluster client's routing; whatever that path cannot settle
      (no slot map yet, a redirection, a broken connection) goes through the
      cluster client, which re-routes and refreshes its map.
    """

    @property
    def topology(self) -> str:
        return "cluster"

    @property
    def calls(self) -> int:
        """Operations that went to the network since creation."""
        return self._calls

    @property
    def client(self) -> Any:
        """What the invalidation subscriber asks for a ``pubsub()`` (the cluster
        client, made when the subscriber first connects)."""
        return _PubSubSource(self)

    @property
    def address(self) -> str:
        """The startup nodes, without credentials."""
        nodes = ",".join(f"{host}:{port}" for host, port in self.startup_nodes)
        return f"cluster {nodes}"

    def describe(self) -> TopologyReport:
        """The cluster as its nodes see it (``CLUSTER NODES`` and ``CLUSTER INFO`` of one
        node, ``INFO server`` for the version): every node, its role (``master``,
        ``slave``, or ``failed`` for a node the cluster flags as failing), whether
        the cluster reaches it; writable while the state is ``ok`` and every
        master holding slots answers.

        The cluster's own view, not the client's slot map: redis-py leaves a
        replica out of its map until that replica has had data to replicate.
        """
        with self._io():
            client = self._sync_client
            view = client.cluster_nodes()
            state = client.cluster_info().get("cluster_state")
            version = client.info("server").get("redis_version")
        reports = []
        serving = []
        for address, node in view.items():
            flags = set(str(node.get("flags", "")).split(","))
            failed = bool(flags & {"fail", "fail?"})
            answers = bool(node.get("connected")) and not failed
            # A node the cluster flags as failing has no role it can act on: its
            # last known one is in CLUSTER NODES, but it serves nothing now.
            role = "failed" if failed else "master" if "master" in flags else "slave"
            report = NodeReport(address, role, answers)
            reports.append(report)
            if role == "master" and node.get("slots"):
                serving.append(report)
        writable = state == "ok" and bool(serving) and all(report.answers for report in serving)
        return TopologyReport(
            topology=self.topology,
            address=self.address,
            version=version,
            writable=writable,
            nodes=tuple(sorted(reports, key=lambda report: report.address)),
        )

    def close(self) -> None:
        """Disconnect the synchronous cluster client, if it was made."""
        self._close_sync()

    async def aclose(self) -> None:
        """Close the asyncio cluster client of the running event loop, if one was made."""
        await self._close_loop()


class _PubSubSource:
    """Makes the cluster client when the subscriber asks, a refusal as a ConnectionError
    (which the subscriber retries), not redis-py's cluster exception."""

    def __init__(self, backend: RedisClusterBackend) -> None:
        self._backend = backend

    def pubsub(self) -> Any:
        try:
            return self._backend._sync_client.pubsub()  # type: ignore[no-untyped-call]
        except RedisClusterException as exc:
            raise redis.ConnectionError(str(exc)) from exc
