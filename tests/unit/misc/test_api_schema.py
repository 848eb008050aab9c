"""The history API's description: generated from one table, committed, and valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from homeport.server.api import Api
from homeport.server.api_schema import OPERATIONS, SCHEMAS, openapi, openapi_text
from homeport.server.auth import Authenticator
from homeport.server.workers import Workers
from homeport.services import Services
from homeport.wiring import open_store

ROOT = Path(__file__).resolve().parents[3]


def test_committed_openapi_is_current() -> None:
    assert (ROOT / "docs/openapi.json").read_text(encoding="utf-8") == openapi_text(), (
        "regenerate with: python -m homeport.server.api_schema > docs/openapi.json"
    )


def test_openapi_is_valid() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(openapi())


def test_operations_are_unique_and_referenced_schemas_exist() -> None:
    ids = [op.operation_id for op in OPERATIONS]
    assert len(ids) == len(set(ids))
    routes = [(op.method, op.path) for op in OPERATIONS]
    assert len(routes) == len(set(routes))
    for op in OPERATIONS:
        assert op.response is None or op.response in SCHEMAS
        assert set(re.findall(r"\{(\w+)\}", op.path)) == {p.name for p in op.path_params}
        assert op.path.startswith("/api/v1/")
    text = openapi_text()
    for ref in re.findall(r'"#/components/schemas/(\w+)"', text):
        assert ref in SCHEMAS


def test_every_operation_has_a_handler(tmp_path: Path) -> None:
    services = Services.build(open_store(tmp_path))
    try:
        api = Api(services, Authenticator(services.accounts), Workers(1))
        assert set(api.handlers) | {"openapi"} == {op.operation_id for op in OPERATIONS}
    finally:
        services.close()
