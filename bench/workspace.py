"""The benchmarks' shared state: real data files, a trained M5 store, a Redis, a service.

The trained store lives in ``bench/.work/`` (ignored by git) and is built once
(ingest the M5 file, train a few products) and reused by every benchmark of
the run; delete the folder to rebuild it. Redis is always a fresh
``redis-server`` on a free loopback port (``tests/support/redis_server.py``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support.* (the real redis-server and uvicorn launchers)

from tests.support.redis_server import RedisServer, free_port  # noqa: E402
from tests.support.uvicorn_server import UvicornServer  # noqa: E402

from salescast.cache import TieredCache  # noqa: E402
from salescast.config import Settings  # noqa: E402
from salescast.service import SalescastService  # noqa: E402
from salescast.store.ingest import ColumnSpec  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
M5_CSV = DATA / "m5_store_dept_daily" / "m5_store_dept_daily.csv"
M5_COLUMNS = ColumnSpec(date="date", product=("store_id", "dept_id"), quantity="sales")
STORE_ITEM_CSV = DATA / "store_item_demand" / "train.csv"
STORE_ITEM_COLUMNS = ColumnSpec(date="date", product=("store", "item"), quantity="sales")
WORK = Path(__file__).resolve().parent / ".work"
M5_DB = WORK / "m5.db"
__all__ = ["RedisServer", "UvicornServer", "free_port"]  # re-exported for the scripts
# Three busy M5 series (about 5 years of daily sales each) are enough for per-call costs.
M5_PRODUCTS = ("CA_1-FOODS_3", "TX_2-HOUSEHOLD_1", "WI_3-HOBBIES_1")
# Ten trained series in all (every store of the three states, every department kind), for sizes.
M5_TRAINED = (
    *M5_PRODUCTS,
    "CA_2-FOODS_1",
    "CA_3-HOUSEHOLD_2",
    "CA_4-HOBBIES_2",
    "TX_1-FOODS_2",
    "TX_3-HOBBIES_1",
    "WI_1-FOODS_3",
    "WI_2-HOUSEHOLD_1",
)


def settings_for(database: Path, **overrides: object) -> Settings:
    """Settings that read no `.env` file and no warm-up, over the given SQLite file."""
    values: dict[str, object] = {
        "database_url": f"sqlite:///{database}",
        "warmup_on_startup": False,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def ensure_m5_store() -> Path:
    """The trained M5 store, built on first use (about 15 s on 2 cores)."""
    if M5_DB.exists():
        return M5_DB
    WORK.mkdir(exist_ok=True)
    partial = WORK / "m5.building.db"
    partial.unlink(missing_ok=True)
    service = SalescastService(settings_for(partial), cache=TieredCache(use_l1=False))
    started = time.perf_counter()
    service.ingest_csv(M5_CSV.read_bytes(), columns=M5_COLUMNS)
    service.train_products(list(M5_TRAINED), jobs=1)
    service.close()
    partial.rename(M5_DB)
    print(f"built {M5_DB} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return M5_DB


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port (never 6379), stopped on exit."""
    with RedisServer() as server:
        yield server


def cache_variant(kind: str, redis_url: str | None, *, prefix: str) -> TieredCache:
    """``computed`` (no tier), ``l2`` (Redis only) or ``l1`` (memory + Redis)."""
    from salescast.cache import RedisBackend

    if kind == "computed":
        return TieredCache(use_l1=False, prefix=prefix)
    l2 = RedisBackend(redis_url) if redis_url else None
    if kind == "l2":
        return TieredCache(l2=l2, use_l1=False, prefix=prefix)
    return TieredCache(l2=l2, prefix=prefix)


def service_with(kind: str, database: Path, redis_url: str | None) -> SalescastService:
    """A SalescastService over ``database`` whose cache is one of ``cache_variant``'s kinds."""
    settings = settings_for(database)
    return SalescastService(settings, cache=cache_variant(kind, redis_url, prefix=f"bench-{kind}"))


STORE_ITEM_DB = WORK / "store_item.db"


def ensure_store_item_store() -> Path:
    """The store-item demand file ingested (500 series x 5 years), no model trained."""
    if STORE_ITEM_DB.exists():
        return STORE_ITEM_DB
    WORK.mkdir(exist_ok=True)
    partial = WORK / "store_item.building.db"
    partial.unlink(missing_ok=True)
    service = SalescastService(settings_for(partial), cache=TieredCache(use_l1=False))
    service.ingest_csv(STORE_ITEM_CSV.read_bytes(), columns=STORE_ITEM_COLUMNS)
    service.close()
    partial.rename(STORE_ITEM_DB)
    return STORE_ITEM_DB
