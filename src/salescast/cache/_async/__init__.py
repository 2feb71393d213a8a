"""The cache's I/O, written once: the ``_async`` package by hand, ``_sync`` generated from it.

``scripts/unasync.py`` writes the files of ``src/salescast/cache/_sync/`` from
those of ``src/salescast/cache/_async/``; see
docs/decisions/0009-one-control-flow-generated-for-sync.md.
"""
