"""The asyncio source of the cache's I/O: the one place its control flow is written.

``salescast.cache._sync`` is generated from these files by
``scripts/unasync.py``; see docs/decisions/0009-one-control-flow-generated-for-sync.md.
"""
