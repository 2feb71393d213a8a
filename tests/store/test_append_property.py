"""Append mode rejects exactly the (product, day) pairs already stored, on both stores."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salescast.store import Database, SalesStore
from salescast.store.ingest import ColumnSpec, IngestError, parse_csv

START = dt.date(2016, 1, 1)
TWO_COLUMNS = ColumnSpec(product=("item", "store"))


@pytest.fixture
def store(database_url: str) -> Iterator[SalesStore]:
    database = Database(database_url)
    yield SalesStore(database)
    database.dispose()


def stored_days(store: SalesStore, product_id: str) -> dict[dt.date, float]:
    return {point.date: point.quantity for point in store.get_history(product_id)}


def test_an_append_with_new_days_of_a_stored_product_and_a_new_product_is_accepted(
    store: SalesStore,
) -> None:
    # The case: P1-X holds Jan 1 and Jan 3; the upload adds a new
    # product on Jan 1 and P1-X on Jan 4. Nothing conflicts.
    store.ingest(
        parse_csv(b"item,store,date,quantity\nP1,X,2016-01-01,1\nP1,X,2016-01-03,3\n", TWO_COLUMNS)
    )

    result = store.ingest(
        parse_csv(b"item,store,date,quantity\nP6,X,2016-01-01,5\nP1,X,2016-01-04,6\n", TWO_COLUMNS),
        mode="append",
    )

    assert result.rows == 2
    assert result.data_versions == {"P1-X": 2, "P6-X": 1}
    assert stored_days(store, "P1-X") == {
        dt.date(2016, 1, 1): 1.0,
        dt.date(2016, 1, 3): 3.0,
        dt.date(2016, 1, 4): 6.0,
    }
    assert stored_days(store, "P6-X") == {dt.date(2016, 1, 1): 5.0}


def test_a_rejected_append_names_each_stored_day_with_its_line_and_stores_nothing(
    store: SalesStore,
) -> None:
    store.ingest(parse_csv(b"product_id,date,quantity\nA,2016-01-02,1\nA,2016-01-05,2\n"))
    upload = (
        b"product_id,date,quantity\n"
        b"A,2016-01-01,9\n"  # line 2: new day before
        b"A,2016-01-02,9\n"  # line 3: stored
        b"B,2016-01-03,9\n"  # line 4: new product
        b"A,2016-01-05,9\n"  # line 5: stored
    )

    with pytest.raises(IngestError) as rejected:
        store.ingest(parse_csv(upload), mode="append")

    assert rejected.value.total == 2
    assert [(p.line, p.unit) for p in rejected.value.problems] == [(3, "line"), (5, "line")]
    assert "'A' already has sales on 2016-01-02" in rejected.value.problems[0].reason
    assert "2 problems found" in str(rejected.value)
    assert stored_days(store, "A") == {dt.date(2016, 1, 2): 1.0, dt.date(2016, 1, 5): 2.0}
    assert store.get_data_version("A") == 1
    assert "B" not in store.list_product_ids()


# Each example works on products of its own, so examples share one store.
_example_numbers = itertools.count()
day_offsets = st.sets(st.integers(min_value=0, max_value=30), max_size=8)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    stored=day_offsets,
    upload_old=day_offsets,
    upload_new=st.sets(st.integers(min_value=0, max_value=30), min_size=1, max_size=5),
)
def test_append_rejects_exactly_the_stored_pairs_and_accepts_everything_else(
    store: SalesStore, stored: set[int], upload_old: set[int], upload_new: set[int]
) -> None:
    # Random days a week or more apart are not a daily series to frequency
    # detection: these uploads say they are daily (detection: test_frequencies).
    n = next(_example_numbers)
    old, new = f"OLD{n}", f"NEW{n}"
    if stored:
        store.ingest(parse_csv(csv_of([(old, d, 1.0) for d in sorted(stored)])), freq="D")
    rows = [(old, d, 2.0) for d in sorted(upload_old)] + [(new, d, 3.0) for d in sorted(upload_new)]
    before = stored_days(store, old) if stored else {}
    conflicts = sorted(upload_old & stored)

    if conflicts:
        with pytest.raises(IngestError) as rejected:
            store.ingest(parse_csv(csv_of(rows)), mode="append", freq="D")
        # CSV line of the i-th row is i + 2 (the header is line 1).
        expected_lines = [i + 2 for i, (p, d, _) in enumerate(rows) if p == old and d in stored]
        assert rejected.value.total == len(conflicts)
        assert [p.line for p in rejected.value.problems] == expected_lines[:20]
        assert stored_days(store, old) == before
        assert new not in store.list_product_ids()
    else:
        result = store.ingest(parse_csv(csv_of(rows)), mode="append", freq="D")
        assert result.rows == len(rows)
        expected = dict(before)
        expected.update({START + dt.timedelta(days=d): 2.0 for d in upload_old})
        if expected:
            assert stored_days(store, old) == expected
        assert stored_days(store, new) == {START + dt.timedelta(days=d): 3.0 for d in upload_new}


def csv_of(rows: list[tuple[str, int, float]]) -> bytes:
    lines = ["product_id,date,quantity"]
    lines += [f"{p},{(START + dt.timedelta(days=d)).isoformat()},{q}" for p, d, q in rows]
    return ("\n".join(lines) + "\n").encode()
