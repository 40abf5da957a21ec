"""The OpenAPI document the app publishes (``/openapi.json``), made to tell the truth.

FastAPI documents a ``422`` validation error on every route with parameters, in its own body
shape; this API answers ``400 invalid_input`` with ``{code, message, details.errors}`` instead
(:mod:`trendflow.api.errors`). :func:`install_openapi` regenerates the document once with the
errors every route shares, in one place:

- ``400`` on every operation that takes parameters or a body (FastAPI's ``422`` removed; a
  route's own ``422`` — ``video_too_short`` … — stays);
- ``401`` on every operation behind the bearer scheme;
- ``503`` (``overloaded``, with ``Retry-After``) on every operation the load shedder guards;
- ``500 internal_error`` everywhere;
- an error status a route declares without a description (``{"model": ErrorOut}``) gets the
  codes and headers of :func:`~trendflow.api.errors.error_responses`.

Route-specific statuses (``402``, ``404``, ``409`` …) are declared on the routes with
:func:`trendflow.api.errors.error_responses`.
"""

from __future__ import annotations

import contextlib
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from trendflow.api.errors import error_responses
from trendflow.api.shedding import EXEMPT_PATHS

_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"
_METHODS = ("get", "put", "post", "delete", "patch")


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _FASTAPI_VALIDATION)


def _fastapi_default(status: str) -> tuple[str, ...]:
    """The descriptions FastAPI gives a response declared without one."""
    with contextlib.suppress(ValueError):
        return ("Additional Response", HTTPStatus(int(status)).phrase)
    return ("Additional Response",)


def _shared_responses(path: str, op: dict[str, Any]) -> list[int]:
    statuses = [500]
    if op.get("parameters") or op.get("requestBody"):
        statuses.append(400)
    if op.get("security"):
        statuses.append(401)
    if path not in EXEMPT_PATHS:
        statuses.append(503)
    return statuses


def _response_doc(status: int) -> dict[str, Any]:
    """One ``error_responses`` entry rendered as OpenAPI (the model as a component ref)."""
    doc = dict(error_responses(status)[status])
    model = doc.pop("model")
    doc["content"] = {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
    return doc


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document of ``app`` with the shared error responses (see the module docstring)."""
    from trendflow.api.schemas import ErrorOut, FieldProblem, InvalidInputDetails, InvalidInputOut

    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes, tags=app.openapi_tags, servers=app.servers)
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses: dict[str, Any] = op.setdefault("responses", {})
            if "422" in responses and _is_fastapi_422(responses["422"]):
                del responses["422"]
            for key, response in responses.items():
                # A bare ``{"model": ErrorOut}`` declaration gets the codes and headers too.
                if int(key) >= 400 and response.get("description") in _fastapi_default(key):
                    responses[key] = _response_doc(int(key))
            for status in _shared_responses(path, op):
                responses.setdefault(str(status), _response_doc(status))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for model in (ErrorOut, InvalidInputOut, InvalidInputDetails, FieldProblem):
        if model.__name__ not in schemas:
            generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(generated.pop("$defs", {}))
            schemas[model.__name__] = generated
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_openapi`'s document as ``app``'s OpenAPI (built on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
