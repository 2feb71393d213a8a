"""What TieredCache needs of its shared tier: both faces of the L2 contract, plus its report.

``RedisBackend`` (one server), ``RedisSentinelBackend`` and
``RedisClusterBackend`` are the implementations; nothing above this protocol
knows which topology runs. The contract test suite
(tests/cache/test_backend_contract.py) runs every implementation.
"""

from __future__ import annotations

from typing import Any, Protocol

from salescast.cache._async.contract import AsyncSharedBackend
from salescast.cache._sync.contract import SharedBackend
from salescast.cache.health import TopologyReport


class SharedTier(SharedBackend, AsyncSharedBackend, Protocol):
    """A shared tier: the L2 contract on both faces, a client to subscribe with, a report."""

    @property
    def topology(self) -> str:
        """``single``, ``sentinel`` or ``cluster``."""
        ...

    @property
    def address(self) -> str:
        """Where it is, without credentials, for logs and health."""
        ...

    @property
    def client(self) -> Any:
        """A sync redis-py client whose ``pubsub()`` hears the invalidation channel."""
        ...

    def describe(self) -> TopologyReport:
        """What each server says of itself now (raises ``BackendUnavailableError``)."""
        ...

    def close(self) -> None:
        """Release the sync connections."""
        ...

    async def aclose(self) -> None:
        """Release the asyncio connections of the running event loop."""
        ...
