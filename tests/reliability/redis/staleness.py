"""What a stale forecast is: a version change's window, and the reads that broke it.

Each forecast's `model_version` is checked against the registry's active
version at the time the request was sent: the version set by the last change
whose HTTP response had returned by then, or one set by a change still in
flight while the request ran.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from tests.conftest import ADMIN_TOKEN
from tests.reliability.redis.load import Outcome
from tests.reliability.redis.workers import FRESH

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}", **FRESH}


@dataclass(frozen=True)
class Change:
    product: str
    began: float
    ended: float
    version: int  # the active version once the change's response returned


def activate(base: str, product: str, version: int) -> Change:
    began = time.monotonic()
    response = httpx.post(f"{base}/products/{product}/models/{version}/activate", headers=ADMIN)
    assert response.status_code == 200, response.text
    return Change(product, began, time.monotonic(), version)


def violations(outcomes: list[Outcome], changes: list[Change], initial: int) -> list[Outcome]:
    stale = []
    for outcome in outcomes:
        if outcome.status != 200 or outcome.body is None:
            continue
        product = str(outcome.body["product_id"])
        mine = [c for c in changes if c.product == product]
        done = [c for c in mine if c.ended <= outcome.started]
        allowed = {done[-1].version if done else initial}
        allowed |= {
            c.version for c in mine if c.began < outcome.ended and c.ended > outcome.started
        }
        if outcome.body["model_version"] not in allowed:
            stale.append(outcome)
    return stale
