"""Tests for parsing and validating sales uploads: every bad upload is one clear IngestError."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salescast.store.ingest import (
    ColumnSpec,
    IngestError,
    IngestProblem,
    ParsedSales,
    parse_csv,
    parse_json_rows,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
M5_CSV = DATA / "m5_store_dept_daily" / "m5_store_dept_daily.csv"
STORE_ITEM_CSV = DATA / "store_item_demand" / "train.csv"
STORE_DEPT = ColumnSpec(date="date", product=("store_id", "dept_id"), quantity="sales")
HEADER = "date,product_id,quantity\n"
DEFAULT = ColumnSpec()


def csv_problems(body: bytes | str, spec: ColumnSpec = DEFAULT, **kwargs: int) -> IngestError:
    data = body.encode() if isinstance(body, str) else body
    with pytest.raises(IngestError) as caught:
        parse_csv(data, spec, **kwargs)
    return caught.value


def json_problems(rows: object, spec: ColumnSpec = DEFAULT) -> IngestError:
    with pytest.raises(IngestError) as caught:
        parse_json_rows(rows, spec)
    return caught.value


def assert_only_problem(
    err: IngestError, line: int | None, column: str | None, reason: str
) -> None:
    assert err.total == 1, str(err)
    [problem] = err.problems
    assert (problem.line, problem.column) == (line, column), str(err)
    assert reason in problem.reason


# (body, line, column, words the reason must contain)
MALFORMED_CSV = {
    "empty file": (b"", None, None, "the upload is empty"),
    "only whitespace": (b" \r\n\n", None, None, "the upload is empty"),
    "header only": (HEADER, None, None, "no data rows"),
    "header only after a BOM": ("\ufeff" + HEADER, None, None, "no data rows"),
    "semicolon delimiter": (
        "date;product_id;quantity\n2020-01-01;a;1\n",
        1,
        None,
        "the file seems to use ';' as delimiter; salescast expects ','",
    ),
    "tab delimiter": ("date\tproduct_id\tquantity\n", 1, None, "seems to use '\\t' as delimiter"),
    "one missing column": (
        "date,product,quantity\n2020-01-01,a,1\n",
        1,
        None,
        "missing required column 'product_id'; found: 'date', 'product', 'quantity'",
    ),
    "several missing columns": (
        "day,sku\n2020-01-01,a\n",
        1,
        None,
        "missing required columns 'date', 'product_id', 'quantity'; found: 'day', 'sku'",
    ),
    "column in another case": (
        "Date,product_id,quantity\n2020-01-01,a,1\n",
        1,
        None,
        "missing required column 'date'; found: 'Date', 'product_id', 'quantity' (column names",
    ),
    "US date": (
        HEADER + "03/01/2020,a,1\n",
        2,
        "date",
        "not an ISO date (YYYY-MM-DD): '03/01/2020'",
    ),
    "month 13": (HEADER + "2020-13-01,a,1\n", 2, "date", "not a real calendar date: '2020-13-01'"),
    "February 30": (HEADER + "2020-02-30,a,1\n", 2, "date", "not a real calendar date"),
    "empty date": (HEADER + ",a,1\n", 2, "date", "is empty; expected a date as YYYY-MM-DD"),
    "compact ISO date": (HEADER + "20200101,a,1\n", 2, "date", "not an ISO date"),
    "afternoon timestamp": (HEADER + "2020-01-01T15:30:00,a,1\n", 2, "date", "time of day"),
    "word as quantity": (HEADER + "2020-01-01,a,abc\n", 2, "quantity", "not a number: 'abc'"),
    "empty quantity": (HEADER + "2020-01-01,a,\n", 2, "quantity", "is empty; expected a number"),
    "nan quantity": (HEADER + "2020-01-01,a,nan\n", 2, "quantity", "not a finite number: 'nan'"),
    "inf quantity": (HEADER + "2020-01-01,a,-inf\n", 2, "quantity", "not a finite number"),
    "overflowing quantity": (HEADER + "2020-01-01,a,1e999\n", 2, "quantity", "not a finite"),
    "thousands separator": (
        HEADER + '2020-01-01,a,"1,200"\n',
        2,
        "quantity",
        "no thousands separators",
    ),
    "underscore in number": (HEADER + "2020-01-01,a,1_000\n", 2, "quantity", "not a number"),
    "empty product": (HEADER + "2020-01-01,,1\n", 2, "product_id", "is empty"),
    "blank product": (HEADER + "2020-01-01,  ,1\n", 2, "product_id", "is empty"),
    "slash in product": (
        HEADER + "2020-01-01,a/b,1\n",
        2,
        "product_id",
        "'/' is not allowed in a product id",
    ),
    "brace in product": (HEADER + "2020-01-01,{x},1\n", 2, "product_id", "'{' is not allowed"),
    "control char in product": (HEADER + "2020-01-01,a\x07b,1\n", 2, "product_id", "'\\x07'"),
    "dot-dot product": (HEADER + "2020-01-01,..,1\n", 2, "product_id", "start with a letter"),
    "product id too long": (
        HEADER + f"2020-01-01,{'p' * 129},1\n",
        2,
        "product_id",
        "has 129 characters; the limit is 128",
    ),
    "too few fields": (HEADER + "2020-01-01,a\n", 2, None, "has 2 fields, the header has 3"),
    "too many fields": (HEADER + "2020-01-01,a,1,x\n", 2, None, "has 4 fields, the header has 3"),
    "quote never closed": (
        HEADER + '2020-01-01,a,1\n2020-01-02,"b,2\n2020-01-03,b,2\n',
        3,
        None,
        "a quoted field is never closed (the record runs from line 3 to 4",
    ),
    "quote closed a line late": (
        HEADER + '2020-01-01,"a,1\n2020-01-02",b,2\n',
        2,
        None,
        "has 4 fields, the header has 3 (a quoted field runs from line 2 to 3",
    ),
    "bare carriage returns as line ends": (
        HEADER.replace("\n", "\r") + "2020-01-01,a,1\r2020-01-02,a,x\r",
        3,
        "quantity",
        "not a number: 'x'",
    ),
    "text after a closing quote": (HEADER + '2020-01-01,"a"b,1\n', 2, None, "not valid CSV"),
    "huge field": (
        HEADER + "2020-01-01," + "x" * 5_000 + ",1\n",
        2,
        "product_id",
        "is 5,000 characters long; the limit for a field is 1,000",
    ),
    "huge line": (
        HEADER + "2020-01-01,a," + "9" * 200_000 + "\n",
        2,
        None,
        "a field is longer than 131,072 characters",
    ),
    "binary garbage": (
        HEADER.encode() + b"2020-01-01,a,1\n\x89PNG\xff\xfe\x00\x01",
        3,
        None,
        "not UTF-8 text: byte 0x89",
    ),
    "Latin-1 text": (
        HEADER.encode() + "2020-01-01,caf\xe9,1\n".encode("latin-1"),
        2,
        None,
        "UTF-8",
    ),
    "NUL bytes": (HEADER + "2020-01-01,a\x00,1\n", 2, None, "contains NUL bytes"),
    "duplicate product and date": (
        HEADER + "2020-01-01,a,1\n2020-01-02,a,1\n2020-01-01, a ,5\n",
        4,
        None,
        "duplicate of line 2: product 'a' on 2020-01-01",
    ),
}


@pytest.mark.parametrize(
    ("body", "line", "column", "reason"), MALFORMED_CSV.values(), ids=MALFORMED_CSV.keys()
)
def test_a_malformed_csv_is_rejected_with_the_line_column_and_reason(
    body: str | bytes, line: int | None, column: str | None, reason: str
) -> None:
    assert_only_problem(csv_problems(body), line, column, reason)


def test_a_bom_is_stripped_before_the_header_is_read() -> None:
    parsed = parse_csv(("\ufeff" + HEADER + "2020-01-01,a,1\n").encode())

    assert parsed.rows == [("a", datetime.date(2020, 1, 1), 1.0)]


def test_mixed_date_formats_report_every_row_that_is_not_iso() -> None:
    body = HEADER + "2020-01-01,a,1\n01/02/2020,a,1\n2020-01-03,a,1\n4 Jan 2020,a,1\n"

    err = csv_problems(body)

    assert [(p.line, p.column) for p in err.problems] == [(3, "date"), (5, "date")]
    assert "'01/02/2020'" in err.problems[0].reason
    assert "'4 Jan 2020'" in err.problems[1].reason


def test_every_bad_field_of_a_row_is_reported_in_column_order() -> None:
    err = csv_problems(HEADER + "yesterday,,lots\n")

    assert [(p.line, p.column) for p in err.problems] == [
        (2, "date"),
        (2, "product_id"),
        (2, "quantity"),
    ]


def test_a_column_named_twice_in_the_header_is_rejected() -> None:
    err = csv_problems("date,product_id,quantity,date\n2020-01-01,a,1,2020-01-02\n")

    assert_only_problem(err, 1, "date", "appears more than once in the header")


def test_lines_are_physical_lines_even_after_multi_line_quoted_fields() -> None:
    body = 'date,product_id,quantity,note\n2020-01-01,a,1,"two\nlines"\n2020-01-02,a,x,\n'

    assert_only_problem(csv_problems(body), 4, "quantity", "not a number: 'x'")


def test_listed_problems_stop_at_max_problems_but_the_total_counts_all() -> None:
    body = HEADER + "".join(f"2020-01-{day:02d},a,oops\n" for day in range(1, 31))

    err = csv_problems(body, max_problems=3)

    assert [p.line for p in err.problems] == [2, 3, 4]
    assert err.total == 30
    assert str(err).splitlines()[0] == "sales upload rejected, 30 problems found:"
    assert str(err).splitlines()[-1] == "  ... and 27 more"


def test_an_error_message_lists_each_problem_on_its_own_line() -> None:
    err = csv_problems(HEADER + "2020-01-01,a,x\n")

    assert str(err) == (
        "sales upload rejected, 1 problem found:\n  line 2, column 'quantity': not a number: 'x'"
    )


def test_a_problem_reads_as_where_then_why() -> None:
    assert str(IngestProblem(3, "date", "bad")) == "line 3, column 'date': bad"
    assert str(IngestProblem(4, None, "bad", "row")) == "row 4: bad"
    assert str(IngestProblem(None, None, "the upload is empty")) == "the upload is empty"


def test_product_values_that_collide_once_joined_are_rejected() -> None:
    spec = ColumnSpec(product=("store", "item"))
    body = "date,store,item,quantity\n2020-01-01,A-B,C,1\n2020-01-02,A,B-C,1\n"

    err = csv_problems(body, spec)

    assert_only_problem(err, 3, None, "give the id 'A-B-C', the same as ('A-B', 'C') on line 2")


def test_a_valid_csv_gives_rows_in_file_order_with_stripped_multi_column_ids() -> None:
    body = (
        "store,date,extra,dept,sales\r\n"
        "CA_1,2020-01-02,ignored,FOODS_3,12\r\n"
        "\r\n"
        " CA_1 ,2020-01-01, , FOODS_3 ,-3.5\r\n"
        "TX_2,2020-01-01T00:00:00,,HOBBIES_1,1e3\r\n"
        "TX_2,2020-01-02 00:00:00,,HOBBIES_1,+0\r\n"
        ",,,,\r\n"
    )

    parsed = parse_csv(body.encode(), ColumnSpec(product=("store", "dept"), quantity="sales"))

    assert parsed.rows == [
        ("CA_1-FOODS_3", datetime.date(2020, 1, 2), 12.0),
        ("CA_1-FOODS_3", datetime.date(2020, 1, 1), -3.5),
        ("TX_2-HOBBIES_1", datetime.date(2020, 1, 1), 1000.0),
        ("TX_2-HOBBIES_1", datetime.date(2020, 1, 2), 0.0),
    ]
    assert parsed.product_ids == ["CA_1-FOODS_3", "TX_2-HOBBIES_1"]


def test_quoted_fields_are_read_as_the_csv_module_reads_them() -> None:
    body = 'date,product_id,quantity\n"2020-01-01","sku.1","7"\n2020-01-02,"sku.1",".5"\n'

    assert parse_csv(body.encode()).rows == [
        ("sku.1", datetime.date(2020, 1, 1), 7.0),
        ("sku.1", datetime.date(2020, 1, 2), 0.5),
    ]


MALFORMED_JSON = {
    "not a list": ({"rows": []}, None, None, "expected a list of row objects, got an object"),
    "empty list": ([], None, None, "no data rows"),
    "item not an object": (["2020-01-01,a,1"], 1, None, "got a string"),
    "missing key": ([{"date": "2020-01-01", "quantity": 1}], 1, "product_id", "missing key"),
    "number as date": (
        [{"date": 20200101, "product_id": "a", "quantity": 1}],
        1,
        "date",
        "must be a string YYYY-MM-DD, got a number",
    ),
    "bad date string": (
        [{"date": "03/01/2020", "product_id": "a", "quantity": 1}],
        1,
        "date",
        "not an ISO date",
    ),
    "boolean quantity": (
        [{"date": "2020-01-01", "product_id": "a", "quantity": True}],
        1,
        "quantity",
        "must be a number or a numeric string, got a boolean",
    ),
    "null quantity": (
        [{"date": "2020-01-01", "product_id": "a", "quantity": None}],
        1,
        "quantity",
        "got null",
    ),
    "nan quantity": (
        [{"date": "2020-01-01", "product_id": "a", "quantity": float("nan")}],
        1,
        "quantity",
        "not a finite number",
    ),
    "huge integer quantity": (
        [{"date": "2020-01-01", "product_id": "a", "quantity": 10**400}],
        1,
        "quantity",
        "not a finite number",
    ),
    "list as product": (
        [{"date": "2020-01-01", "product_id": ["a"], "quantity": 1}],
        1,
        "product_id",
        "must be a string or an integer, got an array",
    ),
    "duplicate row": (
        [
            {"date": "2020-01-01", "product_id": "a", "quantity": 1},
            {"date": "2020-01-01", "product_id": "a", "quantity": 2},
        ],
        2,
        None,
        "duplicate of row 1: product 'a' on 2020-01-01",
    ),
}


@pytest.mark.parametrize(
    ("rows", "line", "column", "reason"), MALFORMED_JSON.values(), ids=MALFORMED_JSON.keys()
)
def test_malformed_json_rows_are_rejected_with_the_row_number_column_and_reason(
    rows: object, line: int | None, column: str | None, reason: str
) -> None:
    assert_only_problem(json_problems(rows), line, column, reason)


def test_json_problems_are_numbered_as_rows() -> None:
    err = json_problems([{"date": "2020-01-01", "product_id": "a", "quantity": 1}, 5])

    assert str(err.problems[0]).startswith("row 2: ")


def test_valid_json_rows_take_numbers_and_numeric_strings_and_integer_ids() -> None:
    rows = [
        {"day": "2020-01-01", "store": "CA_1", "item": 17, "units": 3, "note": None},
        {"day": "2020-01-02", "store": "CA_1", "item": 17, "units": "4.5"},
        {"day": "2020-01-01", "store": "CA_2", "item": "17", "units": -1.25},
    ]
    spec = ColumnSpec(date="day", product=("store", "item"), quantity="units")

    parsed = parse_json_rows(rows, spec)

    assert parsed == ParsedSales(
        [
            ("CA_1-17", datetime.date(2020, 1, 1), 3.0),
            ("CA_1-17", datetime.date(2020, 1, 2), 4.5),
            ("CA_2-17", datetime.date(2020, 1, 1), -1.25),
        ]
    )
    assert parsed.product_ids == ["CA_1-17", "CA_2-17"]


def test_a_column_spec_without_product_columns_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="non-empty tuple"):
        ColumnSpec(product=())


def parsed_or_error(parse: Callable[[], ParsedSales]) -> ParsedSales | IngestError:
    """What a parser gives back; any exception other than IngestError fails the test."""
    try:
        return parse()
    except IngestError as err:
        return err


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_bytes_either_parse_or_raise_ingest_error(data: bytes) -> None:
    outcome = parsed_or_error(lambda: parse_csv(data))

    if isinstance(outcome, IngestError):
        assert outcome.total >= len(outcome.problems) >= 1
    else:
        assert outcome.rows


csv_text = st.text(alphabet=st.sampled_from('0123456789-,"\n\r ab:/T.e'), max_size=200)


@given(csv_text)
@settings(max_examples=300, deadline=None)
def test_any_csv_like_text_under_a_valid_header_parses_or_raises_ingest_error(body: str) -> None:
    outcome = parsed_or_error(lambda: parse_csv((HEADER + body).encode()))

    if isinstance(outcome, IngestError):
        assert all(p.line is None or p.line >= 2 for p in outcome.problems)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
json_rows = st.fixed_dictionaries(
    {},
    optional={
        "date": st.dates().map(str) | json_values,
        "product_id": st.sampled_from(["a", "b", "a/b", ""]) | json_values,
        "quantity": json_values,
    },
)


@given(json_values | st.lists(json_rows | json_values, max_size=5))
@settings(max_examples=300, deadline=None)
def test_any_json_value_either_parses_or_raises_ingest_error(rows: object) -> None:
    outcome = parsed_or_error(lambda: parse_json_rows(rows))

    if isinstance(outcome, IngestError):
        assert all(p.unit == "row" for p in outcome.problems)
    else:
        assert isinstance(rows, list)
        assert len(outcome.rows) == len(rows)


def test_a_negative_max_problems_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_problems"):
        parse_csv(HEADER.encode(), max_problems=-1)


def test_an_ingest_error_is_a_value_error_that_survives_a_csv_read_error() -> None:
    body = HEADER + '2020-01-01,a,x\n2020-01-02,"b"c,1\n2020-01-03,a,y\n'

    err = csv_problems(body)

    assert isinstance(err, ValueError)
    assert [(p.line, p.column) for p in err.problems] == [(2, "quantity"), (3, None)]
    assert err.problems[1].reason.endswith("the rest of the file was not read")


def skip_without(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"real data file {path} is missing (../shared/data beside the checkout)")


@pytest.mark.slow
def test_the_real_m5_file_parses_into_70_store_department_products() -> None:
    skip_without(M5_CSV)

    parsed = parse_csv(M5_CSV.read_bytes(), STORE_DEPT)

    assert len(parsed.rows) == 132_567
    assert len(parsed.product_ids) == 70
    assert parsed.rows[0] == ("CA_1-FOODS_1", datetime.date(2011, 2, 12), 409.0)
    assert min(day for _, day, _ in parsed.rows) == datetime.date(2011, 2, 12)
    assert max(day for _, day, _ in parsed.rows) == datetime.date(2016, 4, 24)


@pytest.mark.slow
def test_the_real_store_item_file_parses_into_500_products() -> None:
    skip_without(STORE_ITEM_CSV)
    spec = ColumnSpec(product=("store", "item"), quantity="sales")

    parsed = parse_csv(STORE_ITEM_CSV.read_bytes(), spec)

    assert len(parsed.rows) == 913_000
    assert len(parsed.product_ids) == 500
