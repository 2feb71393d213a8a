"""Security properties read off the OpenAPI schema and checked against the running app.

Every state-changing operation (POST, PUT, PATCH, DELETE) is found by walking the
schema, so an endpoint added later is covered without editing this file.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from salescast.api import auth
from salescast.config import load_settings
from tests.conftest import ADMIN_TOKEN
from tests.reliability.openapi_document import WRITE_METHODS, openapi_document, operations

DOCUMENT = openapi_document()
# Reads sent as POST only because their arguments are a JSON body: open, like every read.
READS_BY_POST = {("post", "/forecasts")}
WRITES = [
    (m, p) for m, p, _ in operations(DOCUMENT) if m in WRITE_METHODS and (m, p) not in READS_BY_POST
]
READS = [
    (m, p) for m, p, _ in operations(DOCUMENT) if m not in WRITE_METHODS or (m, p) in READS_BY_POST
]
# Values for path parameters that name something that exists in the demo store.
PATH_VALUES = {"product_id": "CA_1-FOODS_3", "version": "1"}
# A parameter named like this would invite a path, file name or cache key from a caller.
RISKY_NAME = re.compile(r"path|file|dir|key|redis|url", re.IGNORECASE)
REDIS_PASSWORD = "s3cret-Pa55"


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "x"), path)


def test_the_schema_walk_finds_the_state_changing_endpoints_the_readme_lists() -> None:
    # Guards the walk itself: if it found nothing, the tests below would pass vacuously.
    assert {
        ("post", "/sales"),
        ("post", "/train"),
        ("post", "/products/{product_id}/train"),
        ("post", "/products/{product_id}/models/{version}/activate"),
        ("post", "/products/{product_id}/models/unpin"),
        ("delete", "/products/{product_id}/models/{version}"),
    } <= set(WRITES)


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m.upper()} {p}" for m, p in WRITES])
def test_a_state_changing_endpoint_answers_401_without_a_token_and_403_with_a_wrong_one(
    client: TestClient, method: str, path: str
) -> None:
    url = concrete(path)
    missing = client.request(method, url)
    assert missing.status_code == 401, missing.text
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = client.request(method, url, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 403, wrong.text
    prefix = client.request(method, url, headers={"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"})
    assert prefix.status_code == 403, prefix.text


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m.upper()} {p}" for m, p in WRITES])
def test_a_state_changing_endpoint_declares_the_bearer_scheme_in_the_schema(
    method: str, path: str
) -> None:
    security = DOCUMENT["paths"][path][method].get("security", [])
    assert any("HTTPBearer" in requirement for requirement in security), security


def test_reads_sent_as_post_are_answered_without_a_token(client: TestClient) -> None:
    assert set(READS) >= READS_BY_POST
    for method, path in READS_BY_POST:
        response = client.request(method, concrete(path), json={"horizon": 1})
        assert response.status_code == 200, response.text


def test_read_endpoints_declare_no_security_requirement() -> None:
    guarded = [(m, p) for m, p in READS if DOCUMENT["paths"][p][m].get("security")]
    assert guarded == []


def test_the_admin_token_is_compared_in_constant_time(
    client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        calls.append((given, expected))
        return compare_digest(given, expected)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    wrong = client.post("/train", headers={"Authorization": "Bearer wrong"})
    right = client.post("/train", json={"product_ids": ["nope"]}, headers=admin)
    assert (wrong.status_code, right.status_code) == (403, 404)
    assert calls == [(b"wrong", ADMIN_TOKEN.encode()), (ADMIN_TOKEN.encode(),) * 2]


def test_a_token_with_bytes_outside_ascii_gets_403_not_500(client: TestClient) -> None:
    response = client.post("/train", headers=[(b"authorization", b"Bearer t\xe9st\xff")])
    assert response.status_code == 403


def parameter_names(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(operation, name) of every parameter and every JSON body property in the document."""
    names = []
    for method, path, operation in operations(document):
        label = f"{method.upper()} {path}"
        names += [(label, p["name"]) for p in operation.get("parameters", [])]
        for media in operation.get("requestBody", {}).get("content", {}).values():
            names += [(label, name) for name in _property_names(document, media.get("schema", {}))]
    return names


def _property_names(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        _, _, name = schema["$ref"].rpartition("/")
        schema = document["components"]["schemas"][name]
    names = list(schema.get("properties", {}))
    nested = [*schema.get("anyOf", []), *schema.get("allOf", [])]
    if isinstance(schema.get("items"), dict):
        nested.append(schema["items"])
    for part in nested:
        names += _property_names(document, part)
    return names


def test_no_endpoint_takes_a_parameter_that_could_name_a_file_path_or_cache_key() -> None:
    names = parameter_names(DOCUMENT)
    assert ("POST /sales", "product_cols") in names  # the walk reaches query parameters
    assert ("POST /train", "product_ids") in names  # and body properties
    assert [(op, name) for op, name in names if RISKY_NAME.search(name)] == []


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{REDIS_PASSWORD}@127.0.0.1:6390/0",
        f"rediss://salescast:{REDIS_PASSWORD}@cache.internal:6380/2",
    ],
)
def test_a_redis_url_with_a_password_is_accepted_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("SALESCAST_REDIS_URL", url)
    settings = load_settings()
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == url
    assert settings.redis_configured
    for shown in (repr(settings), str(settings), repr(settings.model_dump())):
        assert REDIS_PASSWORD not in shown
