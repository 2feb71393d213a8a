"""How many cases the schemathesis tests of this run sent, per API operation."""

from __future__ import annotations

import collections

FUZZ_CASES: collections.Counter[str] = collections.Counter()
# Cases `schemathesis run` generated against a live server, per run label.
CLI_CASES: collections.Counter[str] = collections.Counter()
