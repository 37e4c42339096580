"""Building blocks of the OpenAPI document: operations with their security, refs, errors."""

from __future__ import annotations

from typing import Any

from supervisor.http._auth import Access, required
from supervisor.settings import HttpConfig

_ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}
_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_REDIRECT: dict[str, Any] = {
    "description": "cluster mode: another node runs the instance; send the same request to it",
    "headers": {
        "Location": {
            "description": "that node's advertise_url with the same path and query",
            "schema": {"type": "string"},
        }
    },
}
"""Per-instance routes answer this for an instance another node owns (docs/cluster.md)."""


def _op(
    summary: str,
    access: Access,
    cfg: HttpConfig,
    responses: dict[str, Any],
    *,
    instance: bool = False,
    redirects: bool = True,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "x-wasup-access": access.value}
    params = ([_ID_PARAM] if instance else []) + (parameters or [])
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    schemes: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKeyHeader": []}]
    if access in (Access.READ, Access.METRICS):
        schemes.append({"apiKeyQuery": []})
    if required(access, cfg):
        op["security"] = schemes
        responses = {
            **responses,
            "401": _error("no key, or a key that is not accepted"),
            "403": _error("no API key is configured on the server"),
        }
    else:
        op["security"] = [{}]
    if instance:
        responses = {**responses, "400": _error("invalid instance id or input")}
    if instance and redirects:
        responses = {**responses, "307": _REDIRECT}
    op["responses"] = responses
    return op


_EPOCH = {"type": ["number", "null"], "description": "Unix epoch seconds"}
