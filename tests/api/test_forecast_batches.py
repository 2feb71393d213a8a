"""POST /forecasts through the real ASGI app on the trained demo store: JSON, CSV, errors."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from salescast.api.app import create_app
from salescast.api.schemas import ForecastsResponse
from salescast.service import ForecastRead, SalescastService
from salescast.service.batch_output import CSV_COLUMNS
from salescast.service.forecast_batches import MAX_BATCH_PRODUCTS
from salescast.store.schema import ModelVersion

DEMO_PRODUCTS = [
    "CA_1-FOODS_3",
    "CA_1-HOBBIES_1",
    "CA_3-FOODS_3",
    "TX_2-HOUSEHOLD_1",
    "WI_3-FOODS_2",
]
A, B = "CA_1-FOODS_3", "TX_2-HOUSEHOLD_1"
ARGS = {"horizon": 5, "interval": 0.7}


def single(client: TestClient, product_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/products/{product_id}/forecast", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def prediction_stats(client: TestClient) -> tuple[int, int]:
    """(computations, L1 hits) of namespace `prediction`; (0, 0) before its first use."""
    stats = client.get("/cache/stats").json()["namespaces"].get("prediction")
    return (0, 0) if stats is None else (stats["computations"], stats["l1"]["hits"])


def add_untrained_product(client: TestClient, admin: dict[str, str]) -> None:
    rows = [{"date": "2024-01-01", "product_id": "fresh", "quantity": 1}]
    assert client.post("/sales", json=rows, headers=admin).status_code == 201


def test_the_json_answer_holds_each_products_single_route_body_in_the_order_asked(
    client: TestClient,
) -> None:
    response = client.post("/forecasts", json={"product_ids": [B, A], **ARGS})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == {
        "horizon": 5,
        "interval": 0.7,
        "forecasts": [single(client, B, **ARGS), single(client, A, **ARGS)],
        "errors": [],
    }
    ForecastsResponse.model_validate(body)  # the documented schema


def test_the_csv_answer_carries_exactly_the_single_routes_numbers(client: TestClient) -> None:
    response = client.post(
        "/forecasts", json={"product_ids": [A, B], **ARGS}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    reader = csv.DictReader(io.StringIO(response.text))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    rows = list(reader)
    expected = [
        {
            "product_id": forecast["product_id"],
            "ds": point["ds"],
            "yhat": point["yhat"],
            "yhat_lower": point["yhat_lower"],
            "yhat_upper": point["yhat_upper"],
            "model_version": forecast["model_version"],
        }
        for forecast in (single(client, A, **ARGS), single(client, B, **ARGS))
        for point in forecast["points"]
    ]
    parsed = [
        {
            **row,
            **{k: float(row[k]) for k in ("yhat", "yhat_lower", "yhat_upper")},
            "model_version": int(row["model_version"]),
        }
        for row in rows
    ]
    assert len(parsed) == 10
    assert parsed == expected  # float() of the text is the very float the JSON route sent


def test_the_format_query_wins_over_the_accept_header(client: TestClient) -> None:
    body = {"product_ids": [A], "horizon": 3}
    by_accept = client.post("/forecasts", json=body, headers={"Accept": "text/csv"})
    by_query = client.post("/forecasts?format=csv", json=body)
    assert by_query.content == by_accept.content
    assert by_query.content.startswith(b"product_id,ds,")
    as_json = client.post("/forecasts?format=json", json=body, headers={"Accept": "text/csv"})
    assert as_json.json()["forecasts"][0]["product_id"] == A
    weighted = client.post(
        "/forecasts", json=body, headers={"Accept": "application/json;q=0.5, text/csv"}
    )
    assert weighted.content == by_accept.content


def test_without_product_ids_every_product_with_a_model_is_answered_and_untrained_ones_skipped(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_untrained_product(client, admin)
    for kwargs in ({}, {"json": {"horizon": 2}}, {"json": {"product_ids": None, "horizon": 2}}):
        response = client.post("/forecasts", **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 200, (kwargs, response.text)
        ids = [f["product_id"] for f in response.json()["forecasts"]]
        assert ids == DEMO_PRODUCTS, kwargs
    defaults = client.post("/forecasts").json()
    assert (defaults["horizon"], defaults["interval"]) == (30, 0.8)  # as GET .../forecast
    assert defaults["forecasts"][0] == single(client, DEMO_PRODUCTS[0])


def test_a_listed_product_without_a_model_gets_409_before_anything_is_streamed(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_untrained_product(client, admin)
    response = client.post("/forecasts", json={"product_ids": [A, "fresh"]})
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "'fresh'" in detail
    assert "train" in detail
    assert A not in detail


def test_unknown_listed_products_get_one_404_naming_each_of_them(client: TestClient) -> None:
    response = client.post("/forecasts", json={"product_ids": ["nope", A, "gone"]})
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown products: 'nope', 'gone'"


def test_a_repeated_id_is_answered_once_where_first_named(client: TestClient) -> None:
    response = client.post("/forecasts", json={"product_ids": [B, A, B], "horizon": 2})
    assert [f["product_id"] for f in response.json()["forecasts"]] == [B, A]


def test_the_second_call_is_served_from_l1_without_computing(client: TestClient) -> None:
    body = {"product_ids": [A, B], "horizon": 6}
    before = prediction_stats(client)
    first = client.post("/forecasts", json=body)
    middle = prediction_stats(client)
    second = client.post("/forecasts", json=body)
    after = prediction_stats(client)
    assert first.content == second.content
    assert middle[0] - before[0] == 2  # computed once each
    assert after[0] == middle[0]  # not again
    assert after[1] - middle[1] == 2  # both read from L1
    # and the single route shares those entries
    assert client.get(f"/products/{A}/forecast?horizon=6").headers["x-cache"] == "HIT-L1"


TOO_MANY = [f"p{i}" for i in range(MAX_BATCH_PRODUCTS + 1)]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"{not json", "body"),
        (b'{"horizon": 0}', "horizon"),
        (b'{"horizon": 731}', "horizon"),
        (b'{"horizon": "30"}', "horizon"),
        (b'{"horizon": true}', "horizon"),
        (b'{"horizon": 3.5}', "horizon"),
        (b'{"interval": 0}', "interval"),
        (b'{"interval": 1}', "interval"),
        (b'{"interval": "wide"}', "interval"),
        (b'{"product_ids": []}', "product_ids"),
        (b'{"product_ids": "CA_1-FOODS_3"}', "product_ids"),
        (b'{"product_ids": [1, 2]}', "product_ids"),
        (json.dumps({"product_ids": TOO_MANY}).encode(), "product_ids"),
        (b'{"product_id": ["CA_1-FOODS_3"]}', "product_id"),
        (b"[1, 2]", "body"),
    ],
)
def test_a_bad_body_gets_422_naming_the_field(
    client: TestClient, content: bytes, where: str
) -> None:
    response = client.post(
        "/forecasts", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(where in error["loc"] for error in detail), detail


@pytest.mark.parametrize(
    ("query", "headers", "code"),
    [
        ("?format=xml", {}, 422),
        ("?format=", {}, 422),
        ("", {"Accept": "image/png"}, 406),
        ("", {"Accept": "text/csv;q=0, application/xml"}, 406),
        ("", {"Accept": "text/csv;q=bad"}, 406),
    ],
)
def test_a_format_neither_json_nor_csv_is_refused(
    client: TestClient, query: str, headers: dict[str, str], code: int
) -> None:
    response = client.post(f"/forecasts{query}", json={"horizon": 2}, headers=headers)
    assert response.status_code == code, response.text
    assert "detail" in response.json()
    if code == 406:
        assert "text/csv" in response.json()["detail"]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_body_not_sent_as_json_gets_415_saying_so(
    client: TestClient, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post("/forecasts", content=b'{"horizon": 7}', headers=headers)
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["detail"]


def corrupt_model(service: SalescastService, product_id: str) -> None:
    with service.database.session() as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.product_id == product_id)
            .values(model_blob=b"junk")
        )


def test_a_product_failing_after_the_stream_began_is_listed_in_errors_and_the_rest_answered(
    client: TestClient, demo_service: SalescastService
) -> None:
    corrupt_model(demo_service, A)
    response = client.post("/forecasts", json={"product_ids": [A, B], "horizon": 2})
    assert response.status_code == 200
    body = response.json()
    assert [f["product_id"] for f in body["forecasts"]] == [B]
    [error] = body["errors"]
    # as GET /products/{id}/forecast says it (what the decoder said goes to the log)
    assert error == {"product_id": A, "status": 503, "detail": "the stored model could not be read"}
    assert client.get(f"/products/{A}/forecast?horizon=2").json() == {"detail": error["detail"]}


def test_a_csv_answer_is_cut_short_rather_than_silently_missing_a_product(
    demo_service: SalescastService,
) -> None:
    corrupt_model(demo_service, B)
    app = create_app(demo_service.settings, service=demo_service)
    body = json.dumps({"product_ids": [A, B], "horizon": 2}).encode()
    messages = run_asgi(app, "/forecasts?format=csv", body)
    assert messages[0]["status"] == 200
    sent = b"".join(m.get("body", b"") for m in messages[1:])
    assert sent.startswith(b"product_id,ds,")
    assert sent.count(A.encode()) == 2
    assert all(m.get("more_body") for m in messages[1:])  # never completed


def run_asgi(app: Any, path: str, body: bytes, on_send: Any = None) -> list[dict[str, Any]]:
    """Drive the app as a server would, keeping every message it sends, in order."""
    import anyio

    messages: list[dict[str, Any]] = []
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"content-type", b"application/json"), (b"host", b"test")],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
        "root_path": "",
    }
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if on_send is not None:
            on_send(message)
        messages.append(message)

    anyio.run(app, scope, receive, send)
    return messages


def test_the_answer_is_streamed_one_product_at_a_time(
    demo_service: SalescastService, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    aread_forecast = SalescastService.aread_forecast

    async def counted(self: SalescastService, product_id: str, **kwargs: Any) -> ForecastRead:
        reads.append(product_id)
        return await aread_forecast(self, product_id, **kwargs)

    monkeypatch.setattr(SalescastService, "aread_forecast", counted)
    reads_when_sent: list[tuple[bytes, int]] = []

    def on_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            reads_when_sent.append((message.get("body", b""), len(reads)))

    app = create_app(demo_service.settings, service=demo_service)
    run_asgi(app, "/forecasts", json.dumps({"horizon": 2}).encode(), on_send)
    assert len(reads) == len(DEMO_PRODUCTS)
    chunks_with_products = [(n, body) for body, n in reads_when_sent if b'"product_id"' in body]
    # every product went out in its own chunk, right after its own read
    assert [n for n, _ in chunks_with_products] == list(range(1, len(DEMO_PRODUCTS) + 1))
    assert DEMO_PRODUCTS[0].encode() in chunks_with_products[0][1]
    document = b"".join(body for body, _ in reads_when_sent)
    assert [f["product_id"] for f in json.loads(document)["forecasts"]] == DEMO_PRODUCTS


def test_the_openapi_document_has_working_examples_and_the_error_answers(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/forecasts"]["post"]
    assert {"200", "404", "406", "409", "415", "422"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    [request_example] = schemas["ForecastsRequest"]["examples"]
    [response_example] = schemas["ForecastsResponse"]["examples"]
    ForecastsResponse.model_validate(response_example)
    # the request example, sent as it is, is answered with the response example's shape
    answer = client.post("/forecasts", json=request_example)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == set(response_example)
    csv_example = operation["responses"]["200"]["content"]["text/csv"]["example"]
    assert tuple(next(csv.reader(io.StringIO(csv_example)))) == CSV_COLUMNS
