"""The OpenAPI document at /v1/openapi.json matches the router, route for route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from supervisor.http._app import ROUTES
from supervisor.http._auth import Access
from supervisor.settings import HttpConfig
from tests.http_harness import Harness, running


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with running() as harness:
        yield harness


async def document(h: Harness) -> dict[str, Any]:
    async with h.request("GET", "/v1/openapi.json", key=False) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


def router_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        assert route.resource is not None
        routes.add((route.method, route.resource.canonical))
    return routes


async def test_every_route_is_documented_and_every_documented_route_exists(h: Harness) -> None:
    doc = await document(h)
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == router_routes(h.server.app)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == "0.1.0-test"


async def test_documented_security_matches_who_may_call_each_route(h: Harness) -> None:
    doc = await document(h)
    for method, path, _handler, access in ROUTES:
        op = doc["paths"][path][method.lower()]
        assert op["x-wasup-access"] == access.value, (method, path)
        needs_key = access in (Access.CONTROL, Access.READ)  # the default config
        assert (op["security"] != [{}]) == needs_key, (method, path)
        if needs_key:
            assert "401" in op["responses"]


async def test_security_follows_the_config() -> None:
    cfg = HttpConfig(host="127.0.0.1", port=0, qr_requires_key=False, metrics_requires_key=True)
    async with running(cfg) as h:
        doc = await document(h)
    assert doc["paths"]["/v1/instances/{id}/qr"]["get"]["security"] == [{}]
    assert doc["paths"]["/metrics"]["get"]["security"] != [{}]


async def test_every_reference_resolves(h: Harness) -> None:
    doc = await document(h)
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(doc)
    assert refs
    for ref in refs:
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
    for op in (op for ops in doc["paths"].values() for op in ops.values()):
        for requirement in op["security"]:
            assert set(requirement) <= set(doc["components"]["securitySchemes"])


async def test_the_document_is_valid_openapi_3_1(h: Harness) -> None:
    validator = pytest.importorskip(
        "openapi_spec_validator", reason="openapi-spec-validator is not installed"
    )
    validator.validate(await document(h))


async def test_per_instance_routes_document_the_cluster_redirect(h: Harness) -> None:
    """Any node may answer 307 for an instance another node runs; PUT/DELETE never do."""
    doc = await document(h)
    redirecting: list[tuple[str, str, bool]] = []
    editing: list[tuple[str, str, bool]] = []
    for path, ops in doc["paths"].items():
        if not path.startswith("/v1/instances/{id}"):
            continue
        for method, op in ops.items():
            has = "307" in op["responses"]
            (editing if method in ("put", "delete") else redirecting).append((method, path, has))
    assert redirecting and editing
    assert all(has for _m, _p, has in redirecting), redirecting
    assert not any(has for _m, _p, has in editing), editing
