"""Schemathesis over every operation of the OpenAPI schema, in process against the ASGI app.

Each generated request carries the admin token and goes to an app over a private
copy of the trained demo store. Three checks hold for every response: no 5xx
(`not_a_server_error`), the body matches the schema documented for its status
(`response_schema_conformance`) and so does its content type
(`content_type_conformance`). Generation is derandomized, so a run is repeatable.

Training is fuzzed without fitting: the app's `min_history_days` is set far above
any product's history, so `POST /products/{id}/train` answers 422 and a
`POST /train` job ends at once with every product refused. A Prophet fit takes
about a second, and a few hundred of them would not fit in `make test`; the
training success path runs over HTTP in tests/api/test_writes.py and in the
crash tests of this suite.

The schema is read at import time from an app over an in-memory store (the schema
does not depend on the data); requests go to the app of the `fuzz_app` fixture.
pytest 9 breaks schemathesis' lazy `from_fixture` loader (it sets the removed
`Node._nodeid`), hence the eager schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from salescast.api.app import create_app
from salescast.service import SalescastService
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.reliability.figures import FUZZ_CASES
from tests.reliability.openapi_document import openapi_document

DEMO_PRODUCTS = ["CA_1-FOODS_3", "CA_1-HOBBIES_1", "CA_3-FOODS_3", "TX_2-FOODS_3", "WI_3-FOODS_3"]
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
QUICK_EXAMPLES = 25
CHAOS_EXAMPLES = 150
# A Stan fit never starts: every product has fewer days than this.
NO_TRAINING_DAYS = 100_000


SCHEMA = schemathesis.openapi.from_dict(openapi_document())


@SCHEMA.hook
def flatmap_path_parameters(_context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Half the time, point at a real product so 200 answers get checked too.

    The version is then 1 (which exists) or the generated one (404, 422 or, as
    `schemathesis run` once found, a number too big for the database).
    """
    if not isinstance(path_parameters, dict) or not isinstance(
        path_parameters.get("product_id"), str
    ):
        return st.just(path_parameters)

    def pointed(product_id: str, existing_version: bool) -> dict[str, Any]:
        real = {**path_parameters, "product_id": product_id}
        if "version" in real and existing_version:
            real["version"] = 1
        return real

    real = st.builds(pointed, st.sampled_from(DEMO_PRODUCTS), st.booleans())
    return st.one_of(st.just(path_parameters), real)


@pytest.fixture
def fuzz_app(demo_database_url: str) -> Iterator[FastAPI]:
    service = SalescastService(make_settings(demo_database_url, min_history_days=NO_TRAINING_DAYS))
    app = create_app(service.settings, service=service)
    try:
        yield app
    finally:
        # schemathesis keeps an app's lifespan running until the process ends; end it here.
        asgi.shutdown_lifespans()
        service.close()


def send_and_check(case: schemathesis.Case, app: FastAPI) -> None:
    FUZZ_CASES[case.operation.label] += 1
    case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, checks=CHECKS
    )


# `fuzz_app` is built once per operation, not per example: the examples of one
# operation share its store, as requests to a real server would.
_SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,
]


@SCHEMA.parametrize()
@settings(
    max_examples=QUICK_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=_SUPPRESSED
)
def test_every_operation_answers_generated_requests_as_documented(
    case: schemathesis.Case, fuzz_app: FastAPI
) -> None:
    send_and_check(case, fuzz_app)


@pytest.mark.chaos
@SCHEMA.parametrize()
@settings(
    max_examples=CHAOS_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=_SUPPRESSED
)
def test_every_operation_answers_many_generated_requests_as_documented(
    case: schemathesis.Case, fuzz_app: FastAPI
) -> None:
    send_and_check(case, fuzz_app)
