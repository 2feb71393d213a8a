"""Whether a product needs training: the data a bulk training skips a product on.

A product's data version rises by one with every ingest that touches it (in
the store, so it never goes back), and each model version records the data
version it was trained on, read before the history. A bulk training skips a
product when its newest version was trained on the data version the product
has now, with the training parameters in force now: the same data and
settings would fit the same model again (Prophet's fit is deterministic).

The newest version, not the active one: when a pinned version or the margin
rule keeps an older version active, the newest version already holds what a
retraining would give, and training again would only store a copy of it. For
an unpinned product whose trainings all activated, the two are the same.
An upload in `replace` mode that rewrites the same quantities still raises
the data version, and so counts as a change: a spurious retraining costs
time, a missed one would serve a stale model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from salescast.forecasting.registry import TrainingMark


def unchanged_reason(mark: TrainingMark, params: Mapping[str, Any]) -> str | None:
    """Why training `mark`'s product again would change nothing; None when it is needed."""
    if mark.latest_version is None:
        return None
    if mark.latest_data_version != mark.data_version:
        return None
    if mark.latest_params != dict(params):
        return None
    return (
        f"data unchanged since version {mark.latest_version} was trained "
        f"(data version {mark.data_version}, same training settings); force retrains it"
    )
