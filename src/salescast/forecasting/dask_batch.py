"""Training many products on a Dask distributed cluster: one task per product, results back here.

Each product is one `client.submit` of the same function the local pool runs
(`batch.build_outcome`); its result (the encoded model and its metrics, a
`TrainingOutcome`) travels back to this process, which writes it to the
registry. So there is one writer path whatever the store (SQLite cannot be
written from other machines anyway), and the cache invalidation and the
write-through of a new active model happen once per product, here, as with
the local pool. The price is the model bytes crossing the network twice
(worker to client to store), tens of kilobytes per product.

Failures, and what Dask does about them:

- A product whose training fails (too little history, a Stan error) returns
  an outcome with its error, as in the local pool: it is never retried.
- A worker that dies (killed, out of memory, its machine gone) has the
  products it was running rescheduled on the others by the scheduler, up to
  its `distributed.scheduler.allowed-failures` (3) times per product; past
  that the product fails with `KilledWorker`. A worker that dies holding a
  finished result the client has not fetched yet makes the scheduler train
  that product again. Either way a product's future yields one result, and
  the registry stores at most one version per (product, batch) however many
  times it arrives (`ModelRegistry.store_batch_version`). Products that were
  rescheduled carry a note saying which worker died (`WorkerLossWatch`).

Submission is bounded: at most `in_flight` products (4 per worker thread
at the start, at least 64) are on the cluster at once, the next submitted as
one completes, so neither the scheduler nor this process holds the history
of every product of a large batch at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from salescast.forecasting.batch import TrainingOutcome, TrainingTask, build_outcome
from salescast.forecasting.errors import ForecastingError
from salescast.forecasting.training import TrainingParams

if TYPE_CHECKING:
    from distributed import Client, Future

MIN_IN_FLIGHT = 64
IN_FLIGHT_PER_THREAD = 4


@dataclass(frozen=True)
class DaskScheduler:
    """Where to train: a scheduler's address, and what named it (shown in every error)."""

    address: str
    named_by: str = "SALESCAST_DASK_SCHEDULER"
    connect_timeout_seconds: float = 10.0


class SchedulerUnavailableError(ForecastingError):
    """The Dask scheduler asked for cannot be used; nothing was trained (never a local fallback)."""

    def __init__(self, scheduler: DaskScheduler, reason: str) -> None:
        super().__init__(
            f"cannot train on the Dask scheduler at {scheduler.address} "
            f"(set by {scheduler.named_by}): {reason}; nothing was trained"
        )
        self.scheduler = scheduler


@contextmanager
def dask_client(scheduler: DaskScheduler) -> Iterator[Client]:
    """A client of `scheduler` with at least one worker, closed on exit.

    Raises SchedulerUnavailableError when `distributed` is not installed,
    the scheduler does not answer within the connect timeout, or no worker
    joins it within that time.
    """
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerUnavailableError(
            scheduler, "the 'distributed' package is not installed (pip install 'salescast[dask]')"
        ) from None
    timeout = scheduler.connect_timeout_seconds
    try:
        client = Client(scheduler.address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnavailableError(scheduler, f"no answer ({exc})") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise SchedulerUnavailableError(
                scheduler, f"no worker joined it within {timeout:g} s"
            ) from None
        yield client
    finally:
        client.close()


def train_on_dask(
    client: Client,
    tasks: Iterable[TrainingTask],
    params: TrainingParams,
    *,
    batch_id: str,
    on_outcome: Callable[[TrainingOutcome], None],
    in_flight: int | None = None,
) -> None:
    """Build a version for every task on the cluster, calling `on_outcome` here as each ends.

    Outcomes come in completion order (`as_completed`), failures included,
    each once. The task keys name the batch and the product, so the
    scheduler's dashboard and logs say what runs where.
    """
    from distributed import as_completed

    limit = in_flight or max(MIN_IN_FLIGHT, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
    pending = iter(tasks)
    products: dict[str, str] = {}

    def submit(task: TrainingTask) -> Future[TrainingOutcome]:
        key = f"salescast-train-{batch_id}-{task.product_id}"
        products[key] = task.product_id
        return client.submit(build_outcome, task, params, key=key, pure=False)

    with WorkerLossWatch(client) as losses:
        first = [submit(task) for _, task in zip(range(limit), pending, strict=False)]
        # with_results: each result is fetched from its worker as soon as it is
        # ready, not when this loop gets to it (writing to the store takes a
        # while), so a worker dying later does not lose it and train it again.
        completed = as_completed(first, loop=client.loop, with_results=True, raise_errors=False)
        for future, result in completed:
            outcome = _outcome_of(result, products[future.key])
            # Released at once: a worker that dies later must not make the
            # scheduler recompute a result this process already holds.
            future.release()
            note = losses.note_for(future.key)
            on_outcome(outcome if note is None else replace(outcome, note=note))
            following = next(pending, None)
            if following is not None:
                completed.add(submit(following))


def _outcome_of(result: object, product_id: str) -> TrainingOutcome:
    """The task's outcome, or the reason the cluster gives for having none."""
    from distributed import KilledWorker

    if isinstance(result, TrainingOutcome):
        return result
    if isinstance(result, KilledWorker):
        return TrainingOutcome(
            product_id,
            None,
            f"not trained: {result.allowed_failures + 1} Dask workers died while training it "
            f"(KilledWorker; the last was {result.last_worker.address})",
        )
    if isinstance(result, CancelledError):
        return TrainingOutcome(
            product_id, None, "not trained: the Dask scheduler cancelled it (did it restart?)"
        )
    # anything else the cluster hands back is this product's failure only
    return TrainingOutcome(product_id, None, f"not trained on the Dask cluster: {result!r}")


class WorkerLossWatch:
    """Which tasks lost a worker while they ran (or before their result was fetched).

    Listens to the scheduler's "remove-worker" events (topic "all") from the
    moment it is entered. A worker that left on purpose (`expected`, e.g. a
    graceful retirement, whose tasks move without losing work) is not noted.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._notes: dict[str, list[str]] = {}

    def __enter__(self) -> WorkerLossWatch:
        self._client.subscribe_topic("all", self._hear)
        return self

    def __exit__(self, *_: object) -> None:
        # Best effort: with the scheduler gone this fails too, and must not hide
        # the error the batch is already leaving with.
        with suppress(Exception):
            self._client.unsubscribe_topic("all")

    def _hear(self, event: tuple[float, Any]) -> None:
        _, message = event
        if not isinstance(message, dict) or message.get("action") != "remove-worker":
            return
        if message.get("expected"):
            return
        worker = message.get("worker", "a worker")
        with self._lock:
            for key in message.get("processing-tasks", ()):
                self._notes.setdefault(str(key), []).append(
                    f"rescheduled: Dask worker {worker} died while training it"
                )
            for key in message.get("lost-computed-tasks", ()):
                self._notes.setdefault(str(key), []).append(
                    f"trained again: Dask worker {worker} died holding its result"
                )

    def note_for(self, key: str) -> str | None:
        """What happened to the task `key` on the way, or None if nothing did."""
        with self._lock:
            notes = self._notes.pop(key, None)
        return None if not notes else "; ".join(notes)
