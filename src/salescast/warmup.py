"""Cache warm-up: load the busiest products' models and default forecasts in the background."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

logger = logging.getLogger("salescast.warmup")

WarmupState = Literal["idle", "running", "done", "failed"]


class WarmupTarget(Protocol):
    """What warm-up needs of the service: the busiest products and a cached forecast."""

    def list_warmup_products(self, limit: int) -> list[str]: ...

    def warm_product(self, product_id: str) -> bool: ...


@dataclass
class WarmupProgress:
    state: WarmupState = "idle"
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("started_at", "finished_at"):
            value = data[name]
            data[name] = value.isoformat() if value is not None else None
        return data


class Warmup:
    """Runs one warm-up at a time on a background thread, `concurrency` products at once.

    `start` returns at once, so `/healthz` never waits for it. Products
    without a trained model are skipped, not failures. Progress is readable
    at any time from any thread.
    """

    def __init__(self, target: WarmupTarget, *, max_products: int, concurrency: int = 2) -> None:
        self._target = target
        self._max_products = max_products
        self._concurrency = max(1, concurrency)
        self._lock = threading.Lock()
        self._progress = WarmupProgress()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Begin a warm-up; False (and nothing started) if one is already running."""
        with self._lock:
            if self._progress.state == "running":
                return False
            self._progress = WarmupProgress(state="running", started_at=_now())
            self._thread = threading.Thread(target=self._run, name="salescast-warmup", daemon=True)
            self._thread.start()
        return True

    def progress(self) -> dict[str, Any]:
        with self._lock:
            return self._progress.as_dict()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running warm-up (tests and the CLI use this)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            products = self._target.list_warmup_products(self._max_products)
            with self._lock:
                self._progress.total = len(products)
            with ThreadPoolExecutor(self._concurrency, thread_name_prefix="warmup") as pool:
                for product_id, outcome in zip(
                    products, pool.map(self._warm_one, products), strict=True
                ):
                    self._record(product_id, outcome)
            self._finish("done", None)
        except Exception as exc:  # warm-up is best effort; the server serves regardless
            logger.exception("cache warm-up failed")
            self._finish("failed", str(exc))

    def _warm_one(self, product_id: str) -> bool | Exception:
        try:
            return self._target.warm_product(product_id)
        except Exception as exc:  # one bad product must not stop the others
            return exc

    def _record(self, product_id: str, outcome: bool | Exception) -> None:
        with self._lock:
            if isinstance(outcome, Exception):
                self._progress.failed += 1
                self._progress.failures = [*self._progress.failures, product_id][-20:]
                logger.warning("warm-up of %s failed: %s", product_id, outcome)
            elif outcome:
                self._progress.done += 1
            else:
                self._progress.skipped += 1

    def _finish(self, state: WarmupState, error: str | None) -> None:
        with self._lock:
            self._progress.state = state
            self._progress.error = error
            self._progress.finished_at = _now()
        logger.info("cache warm-up %s: %s", state, self.progress())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
