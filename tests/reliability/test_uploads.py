"""Malformed sales uploads: each gets a 4xx naming where it is wrong, and the store is unchanged.

tests/api/test_writes.py already covers unparsable JSON, `{"rows": 5}`, `[]`, an
empty CSV, a `;` delimiter, a NUL-and-0xff body, XML (415) and a declared
Content-Length over the limit (413); the table here adds the rest, and checks
the store itself (rows of `sales`, every product's data version) after each.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from salescast.api.app import create_app
from salescast.service import SalescastService

CSV = "text/csv"
JSON = "application/json"
HEADER = "date,product_id,quantity\n"
LIMIT_BYTES = 4096


def csv_body(*lines: str) -> bytes:
    """The standard header, then `lines`."""
    return (HEADER + "".join(f"{line}\n" for line in lines)).encode()


def json_rows(*overrides: dict[str, object]) -> bytes:
    """A JSON list of valid rows, each with some fields replaced (None: key removed)."""
    rows = []
    for override in overrides:
        row = {"date": "2024-01-01", "product_id": "a", "quantity": 1, **override}
        rows.append({key: value for key, value in row.items() if value is not None})
    return orjson.dumps(rows)


LATIN1_LINE_3 = csv_body("2024-01-01,a,1") + "2024-01-02,caf\xe9,1\n".encode("latin-1")
WRAPPED_FEB_30 = b'{"rows": ' + json_rows({"date": "2024-02-30"}) + b"}"

# (id, content type, body, status, (line, unit, column) of the first problem or None)
Expected = tuple[int, str, str | None] | None
UPLOADS: list[tuple[str, str, bytes, int, Expected]] = [
    ("wrong-columns", CSV, b"day,item,units\n2024-01-01,a,1\n", 400, (1, "line", None)),
    ("missing-column", CSV, b"date,product_id\n2024-01-01,a\n", 400, (1, "line", None)),
    ("header-only", CSV, csv_body(), 400, None),
    ("bad-date", CSV, csv_body("2024-13-01,a,1"), 400, (2, "line", "date")),
    ("us-date", CSV, csv_body("01/02/2024,a,1"), 400, (2, "line", "date")),
    ("mixed-dates", CSV, csv_body("2024-01-01,a,1", "2024/01/02,a,1"), 400, (3, "line", "date")),
    ("time-of-day", CSV, csv_body("2024-01-01T12:00:00,a,1"), 400, (2, "line", "date")),
    ("not-a-number", CSV, csv_body("2024-01-01,a,lots"), 400, (2, "line", "quantity")),
    ("decimal-comma", CSV, csv_body('2024-01-01,a,"1,5"'), 400, (2, "line", "quantity")),
    ("nan", CSV, csv_body("2024-01-01,a,nan"), 400, (2, "line", "quantity")),
    ("empty-product", CSV, csv_body("2024-01-01,,1"), 400, (2, "line", "product_id")),
    ("slash-in-product", CSV, csv_body("2024-01-01,a/b,1"), 400, (2, "line", "product_id")),
    ("tab-delimiter", CSV, csv_body("2024-01-01,a,1").replace(b",", b"\t"), 400, (1, "line", None)),
    ("too-few-fields", CSV, csv_body("2024-01-01,a,1", "2024-01-02,a"), 400, (3, "line", None)),
    ("duplicate-rows", CSV, csv_body("2024-01-01,a,1", "2024-01-01,a,1"), 400, (3, "line", None)),
    ("unclosed-quote", CSV, csv_body('2024-01-01,"a,1', "2024-01-02,a,1"), 400, (2, "line", None)),
    ("huge-line", CSV, csv_body("2024-01-01,a," + "9" * 200_000), 400, (2, "line", None)),
    ("invalid-utf8", CSV, LATIN1_LINE_3, 400, (3, "line", None)),
    ("nul-bytes", CSV, csv_body("2024-01-01,a,1", "2024-01-02,a\x00,1"), 400, (3, "line", None)),
    ("binary-garbage", CSV, bytes(range(256)) * 8, 400, None),
    ("utf16", CSV, (HEADER + "2024-01-01,a,1\n").encode("utf-16"), 400, (1, "line", None)),
    ("json-object", JSON, json_rows({})[1:-1], 400, None),
    ("json-string", JSON, b'"2024-01-01,a,1"', 400, None),
    ("json-row-not-object", JSON, b'[["2024-01-01", "a", 1]]', 400, (1, "row", None)),
    ("json-second-row-a-number", JSON, json_rows({})[:-1] + b",7]", 400, (2, "row", None)),
    ("json-date-number", JSON, json_rows({"date": 20240101}), 400, (1, "row", "date")),
    ("json-product-list", JSON, json_rows({"product_id": ["a"]}), 400, (1, "row", "product_id")),
    ("json-quantity-object", JSON, json_rows({"quantity": {}}), 400, (1, "row", "quantity")),
    ("json-quantity-bool", JSON, json_rows({}, {"quantity": False}), 400, (2, "row", "quantity")),
    ("json-missing-key", JSON, json_rows({"quantity": None}), 400, (1, "row", "quantity")),
    ("json-huge-integer", JSON, json_rows({})[:-2] + b"0" * 400 + b"}]", 400, None),
    ("json-rows-bad-date", JSON, WRAPPED_FEB_30, 400, (1, "row", "date")),
    ("json-invalid-utf8", JSON, json_rows({"product_id": "X"}).replace(b"X", b"\xff"), 400, None),
    ("multipart", "multipart/form-data; boundary=x", b"--x--\r\n", 415, None),
    ("no-content-type", "", csv_body("2024-01-01,a,1"), 415, None),
]  # fmt: skip


def store_state(service: SalescastService) -> tuple[int, dict[str, int]]:
    """Rows of table `sales`, and every product's data version."""
    with service.database.session() as session:
        rows = session.execute(text("SELECT count(*) FROM sales")).scalar_one()
    return rows, {p.product_id: p.data_version for p in service.store.list_products()}


@pytest.fixture
def small_limit_client(demo_service: SalescastService) -> Iterator[TestClient]:
    settings = demo_service.settings.model_copy(update={"max_upload_bytes": LIMIT_BYTES})
    with TestClient(create_app(settings, service=demo_service)) as client:
        yield client


@pytest.mark.parametrize(
    ("content_type", "body", "status", "where"),
    [pytest.param(*case[1:], id=case[0]) for case in UPLOADS],
)
def test_a_malformed_upload_gets_a_4xx_naming_where_and_leaves_the_store_unchanged(
    small_limit_client: TestClient,
    demo_service: SalescastService,
    admin: dict[str, str],
    content_type: str,
    body: bytes,
    status: int,
    where: Expected,
) -> None:
    before = store_state(demo_service)
    headers = {**admin, "Content-Type": content_type} if content_type else admin
    response = small_limit_client.post("/sales", content=body, headers=headers)
    # Bodies over the limit are refused before they are read: 413, not their own 4xx
    # (the next test sends those to an app with the default limit).
    expected = 413 if len(body) > LIMIT_BYTES else status
    assert response.status_code == expected, response.text
    detail = response.json()["detail"]
    assert detail
    if where is not None and expected == 400:
        first = detail["problems"][0]
        assert (first["line"], first["unit"], first["column"]) == where, detail
    assert store_state(demo_service) == before


def test_a_huge_line_under_the_limit_gets_400_naming_its_line(
    client: TestClient, demo_service: SalescastService, admin: dict[str, str]
) -> None:
    [(_, content_type, body, status, where)] = [case for case in UPLOADS if case[0] == "huge-line"]
    before = store_state(demo_service)
    response = client.post("/sales", content=body, headers={**admin, "Content-Type": content_type})
    assert response.status_code == status, response.text
    first = response.json()["detail"]["problems"][0]
    assert (first["line"], first["unit"], first["column"]) == where
    assert "longer than" in first["reason"]
    assert store_state(demo_service) == before


def test_a_streamed_upload_without_content_length_over_the_limit_gets_413(
    small_limit_client: TestClient, demo_service: SalescastService, admin: dict[str, str]
) -> None:
    before = store_state(demo_service)

    def chunks() -> Iterator[bytes]:
        yield HEADER.encode()
        for day in range(1, 29):
            yield f"2024-02-{day:02d},streamed,{day}\n".encode() * 10

    response = small_limit_client.post(
        "/sales", content=chunks(), headers={**admin, "Content-Type": CSV}
    )
    assert response.status_code == 413
    assert str(LIMIT_BYTES) in response.json()["detail"]
    assert store_state(demo_service) == before


def test_a_utf8_bom_is_accepted_and_the_rows_are_stored(
    client: TestClient, demo_service: SalescastService, admin: dict[str, str]
) -> None:
    rows_before, versions_before = store_state(demo_service)
    body = "\ufeff" + HEADER + "2024-01-01,bom,1\n2024-01-02,bom,2\n"
    response = client.post("/sales", content=body.encode(), headers={**admin, "Content-Type": CSV})
    assert response.status_code == 201, response.text
    rows_after, versions_after = store_state(demo_service)
    assert rows_after == rows_before + 2
    assert versions_after == {**versions_before, "bom": 1}


def test_a_conflicting_append_is_refused_and_leaves_the_store_unchanged(
    client: TestClient, demo_service: SalescastService, admin: dict[str, str]
) -> None:
    before = store_state(demo_service)
    # A stored day of a demo product, plus a new product: neither may land.
    body = HEADER + "2016-04-24,CA_1-FOODS_3,1\n2024-01-01,brand-new,1\n"
    response = client.post("/sales", content=body.encode(), headers={**admin, "Content-Type": CSV})
    assert response.status_code == 400
    assert "already has sales" in response.json()["detail"]["problems"][0]["reason"]
    assert store_state(demo_service) == before
