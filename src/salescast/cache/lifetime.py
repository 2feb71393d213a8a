"""How long an entry lives when its key cannot go stale: idle lifetime, maximum, early refresh.

A key that names every durable version its value depends on (a model
version, a data version) can never be served for another version: a new
version is a new key. For such entries a fixed TTL only throws away values
that are still right, so their TTL is a memory policy instead
(docs/decisions/0011-ttl-is-a-memory-policy.md):

- **Idle lifetime.** ``IdleTTL(seconds)`` passed as a ``ttl`` marks the entry
  *sliding*: a hit keeps it for another ``seconds`` (L1 renews itself when
  less than half is left; Redis gets a ``PEXPIRE`` in the background, so the
  hit path does no extra I/O). Memory stays bounded by L1's byte limit and
  Redis's ``maxmemory`` eviction.
- **Maximum lifetime.** No hit extends an entry past ``max_lifetime`` after it
  was computed (``stored at`` in its frame, so every process agrees).
- **Early refresh (XFetch).** Before that maximum, a read refreshes the entry
  early with the probability of Vattani, Chierichetti and Lowenstein's
  "optimal probabilistic cache stampede prevention" (VLDB 2015): it refreshes
  when ``now - compute_seconds * beta * ln(U) >= stored_at + max_lifetime``
  with ``U`` uniform in (0, 1], so values that take longer to compute start
  earlier. L1 draws once per entry it stores (a hit draws nothing); a read
  that reaches Redis draws again.
- **Stale while revalidate.** From the maximum on, for ``stale_window`` more
  seconds, the entry is still served while one process refreshes it in the
  background under the lease; only after that window is it a miss. A value
  refreshed this way is the same version's value computed again, so "never a
  superseded version" holds: staleness here is age, not version.

Entries without ``IdleTTL`` keep a fixed TTL and none of the above.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from salescast.cache.frames import FrameTimes

DEFAULT_MAX_LIFETIME = 7 * 86_400.0
DEFAULT_STALE_WINDOW = 3_600.0


class IdleTTL(float):
    """A TTL that a hit renews: seconds an entry lives after its last hit.

    For keys that carry every version their value depends on; see the module
    docstring. It is a ``float``, so it goes wherever a TTL goes, and only the
    places that store an entry look at its type.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"IdleTTL({float(self)!r})"


def is_sliding(ttl: float | None) -> bool:
    return type(ttl) is IdleTTL


class Verdict(Enum):
    """What a read does with an entry it found, by the entry's age."""

    FRESH = "fresh"  # serve it
    REFRESH = "refresh"  # serve it, and refresh it in the background
    EXPIRED = "expired"  # past the stale window: a miss


class Lifetime(NamedTuple):
    """The lifetime of one sliding L1 entry, on the L1 clock.

    ``idle`` renews the entry on a hit; ``refresh_at`` is where reads stop
    being plain hits and the entry is served while it is refreshed (drawn
    early by XFetch, or a grace period while a refresh runs); ``ends_at`` is
    the end of the stale window; ``times`` are the frame's.
    """

    idle: float
    refresh_at: float
    ends_at: float
    times: FrameTimes


@dataclass(frozen=True)
class LifetimePolicy:
    """The maximum lifetime, stale window and XFetch ``beta`` of one ``TieredCache``."""

    max_lifetime: float = DEFAULT_MAX_LIFETIME
    stale_window: float = DEFAULT_STALE_WINDOW
    beta: float = 1.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_lifetime <= 0 or self.stale_window < 0 or self.beta < 0:
            raise ValueError(
                "max_lifetime must be positive, stale_window and beta not negative; got "
                f"{self.max_lifetime}, {self.stale_window}, {self.beta}"
            )

    def early_by(self, times: FrameTimes) -> float:
        """One XFetch draw: how many seconds before the maximum this read refreshes."""
        # 1 - random() is in (0, 1]: log is defined and a draw of 1 means "not early".
        return -times.compute_seconds * self.beta * math.log(1.0 - self.rng.random())

    def verdict(self, times: FrameTimes, wall_now: float) -> Verdict:
        """What a read at ``wall_now`` does with an entry computed at ``times.stored_at``."""
        fresh_until = times.stored_at + self.max_lifetime
        if wall_now >= fresh_until + self.stale_window:
            return Verdict.EXPIRED
        if wall_now >= fresh_until - self.early_by(times):
            return Verdict.REFRESH
        return Verdict.FRESH

    def l2_ttl(self, idle: float, times: FrameTimes, wall_now: float) -> float:
        """The TTL to give Redis now: the idle lifetime, never past the stale window."""
        left = times.stored_at + self.max_lifetime + self.stale_window - wall_now
        return min(idle, left)

    def l1_lifetime(
        self,
        idle: float,
        times: FrameTimes,
        *,
        wall_now: float,
        l1_now: float,
        grace: float | None = None,
    ) -> Lifetime:
        """The L1 lifetime of an entry stored now; ``grace``: it is being refreshed.

        A refreshing entry is served as a plain hit for ``grace`` seconds (the
        refresh's lease); if no fresh value has replaced it by then, the next
        read starts another refresh.
        """
        to_l1 = l1_now - wall_now  # wall-clock instants to the L1 clock
        fresh_until = times.stored_at + self.max_lifetime + to_l1
        ends_at = fresh_until + self.stale_window
        if grace is not None:
            refresh_at = min(l1_now + grace, ends_at)
        else:
            refresh_at = fresh_until - self.early_by(times)
        return Lifetime(float(idle), refresh_at, ends_at, times)
