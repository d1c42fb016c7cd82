"""Property-based run of every operation in the OpenAPI schema (schemathesis): no input gives a 5xx.

Each operation gets a bounded number of generated requests (valid and invalid ones: schemathesis mixes
positive and negative data); the write routes are fuzzed with the API key so their bodies are reached.
Checks: no server error, responses match the documented schemas and status codes, and content types.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from serve_fakes import API_KEY, FakeSite, make_client
from test_serve_api import ROUTES

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (the 'serve' extra)")
from schemathesis import checks  # noqa: E402

EXAMPLES = 25  # per operation and run; 17 operations


@pytest.fixture(scope="module")
def fuzz_app(site: FakeSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import shutil

    from samestyle.catalog.store import read_catalog, write_catalog

    root = tmp_path_factory.mktemp("fuzz")  # writes are fuzzed too: on a private copy
    for name in ("catalog", "images", "index-joint"):
        shutil.copytree(site.root / name, root / name)
    write_catalog(root / "catalog", read_catalog(root / "catalog").products, image_root=root / "images")
    copy = FakeSite(root, root / "catalog", site.emb, root / "index-joint", root / "images")
    with make_client(copy, events_path=root / "events.jsonl", max_upload_bytes=256 * 1024) as client:
        yield client.app


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


OPERATIONS = sorted(f"{m.upper()} {p}" for m, p in ROUTES)


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_errors(api_schema: Any, label: str) -> None:
    """No 5xx, documented status codes and content types, responses that match their schemas."""
    from hypothesis import given, strategies
    from schemathesis import GenerationMode

    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the OpenAPI schema"
    headers = {"X-API-Key": API_KEY} if label.split()[0] in ("PUT", "DELETE") else None
    cases = strategies.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        case.validate_response(
            response,
            headers=headers,
            checks=[
                checks.not_a_server_error,
                checks.status_code_conformance,
                checks.content_type_conformance,
                checks.response_schema_conformance,
            ],
        )

    run()
