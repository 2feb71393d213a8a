"""Training many products: one product's version built in a worker, many fanned out to a pool."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass

from salescast.forecasting.adjustment import POINT_ADJUSTMENT
from salescast.forecasting.calibration import INTERVAL_CALIBRATION
from salescast.forecasting.errors import ForecastingError
from salescast.forecasting.model_codec import MODEL_FORMAT, encode_model
from salescast.forecasting.registry import NewModelVersion
from salescast.forecasting.training import TrainedModel, TrainingParams, train_model


@dataclass(frozen=True)
class TrainingTask:
    product_id: str
    days: list[dt.date]
    quantities: list[float]
    data_version: int
    frequency: str = "D"


@dataclass(frozen=True)
class TrainingOutcome:
    """One product's result in a batch: the new version, or why there is none.

    `note` says what happened on the way when something did (on a Dask
    cluster: the product was rescheduled after its worker died).
    """

    product_id: str
    version: NewModelVersion | None
    error: str | None
    note: str | None = None


def build_version(task: TrainingTask, params: TrainingParams) -> NewModelVersion:
    """Train and encode one product's model; a plain function so a process pool can run it.

    The stored parameters are the settings' and the product's frequency
    (`version_params`): both shape the model.
    """
    import prophet

    trained = train_model(task.product_id, task.days, task.quantities, params, freq=task.frequency)
    return NewModelVersion(
        train_start=trained.train_start,
        train_end=trained.train_end,
        data_version=task.data_version,
        params=version_params(params, task.frequency),
        metrics=version_metrics(trained),
        prophet_version=prophet.__version__,
        model_format=MODEL_FORMAT,
        model_blob=encode_model(trained.model),
    )


def version_metrics(trained: TrainedModel) -> dict[str, object]:
    """What a version stores as its metrics: the backtest's scores, the days it was trained
    on and, when the intervals are calibrated, the band factors its forecasts use, and,
    when candidates are selected, the correction of Prophet's points they use."""
    metrics: dict[str, object] = {**trained.metrics.to_dict(), "sales_days": trained.sales_days}
    if trained.calibration is not None:
        metrics[INTERVAL_CALIBRATION] = trained.calibration.to_dict()
    if trained.adjustment is not None:
        metrics[POINT_ADJUSTMENT] = trained.adjustment.to_dict()
    return metrics


def version_params(params: TrainingParams, frequency: str) -> dict[str, object]:
    """What a version stores as its parameters, and what a bulk training compares them with."""
    return {**params.to_dict(), "frequency": frequency}


def build_outcome(task: TrainingTask, params: TrainingParams) -> TrainingOutcome:
    """`build_version` with any failure as the outcome's error: what a pool or cluster runs."""
    try:
        return TrainingOutcome(task.product_id, build_version(task, params), None)
    except ForecastingError as exc:
        return TrainingOutcome(task.product_id, None, str(exc))
    except Exception as exc:  # a Stan failure on one product must not sink the batch
        return TrainingOutcome(task.product_id, None, f"training failed: {exc!r}")


def train_many(
    tasks: Iterable[TrainingTask],
    params: TrainingParams,
    *,
    jobs: int = 1,
    on_outcome: Callable[[TrainingOutcome], None],
) -> None:
    """Build a version for every task, `jobs` at a time, calling `on_outcome` as each ends.

    `on_outcome` runs in the calling process (it is where versions are written
    to the registry), in completion order. With `jobs == 1` everything runs
    inline, which keeps tracebacks and profiles simple.
    """
    if jobs <= 1:
        for task in tasks:
            on_outcome(build_outcome(task, params))
        return
    with _process_pool(jobs) as pool:
        futures: list[Future[TrainingOutcome]] = [
            pool.submit(build_outcome, task, params) for task in tasks
        ]
        for future in as_completed(futures):
            on_outcome(future.result())


@contextmanager
def _process_pool(jobs: int) -> Iterator[Executor]:
    # spawn, not fork: the server has threads (and possibly open Redis or SQLite
    # connections) that a forked child would inherit in an undefined state.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
    try:
        yield pool
    except BaseException:
        # Stopped early (cancelled, or on_outcome failed): drop what has not started.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
