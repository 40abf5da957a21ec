"""Every error leaves the API as JSON ``{code, message, details}`` with a stable ``code``.

Domain errors carry their own status (:mod:`trendflow.errors`); FastAPI's request validation
becomes ``400 invalid_input`` (malformed JSON included) listing each problem; unknown routes are
``404 not_found``; anything unexpected is ``500 internal_error`` without internals in the body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from trendflow.errors import AuthError, TrendflowError, all_error_classes, field_problems
from trendflow.metrics import get_metrics

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "upload_too_large",
    415: "unsupported_media",
    503: "service_unavailable",
}


# Statuses that tell the client when to come back (``Retry-After``, whole seconds).
RETRY_AFTER_STATUSES = frozenset({429, 503})
_STATUS_TITLES = {
    400: "The request is invalid", 401: "No valid bearer token", 402: "Not enough credits",
    403: "Not allowed", 404: "Not found", 409: "Conflicts with the current state",
    410: "No longer kept",
    413: "Upload too large", 415: "Not a video", 422: "Cannot be processed",
    429: "Too many runs: retry after Retry-After seconds",
    500: "Internal error (details are in the operator's logs)",
    503: "Temporarily unavailable: retry after Retry-After seconds (overloaded)",
}


def codes_for_status(status: int) -> list[str]:
    """Every stable error code the API answers with ``status`` (from the error tree and the
    framework-level codes above)."""
    codes = {cls.code for cls in all_error_classes() if cls.status == status}
    codes |= {code for st, code in _HTTP_CODES.items() if st == status}
    if status == 400:
        codes.add("malformed_json")
    return sorted(codes)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route's error statuses: the error model (400: with its
    per-field problems), the codes each status carries, ``Retry-After`` on 429/503 and
    ``WWW-Authenticate`` on 401."""
    from trendflow.api.schemas import ErrorOut, InvalidInputOut

    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        doc: dict[str, Any] = {
            "model": InvalidInputOut if status == 400 else ErrorOut,
            "description": f"{_STATUS_TITLES.get(status, 'Error')}. Codes: "
                           + ", ".join(f"`{c}`" for c in codes_for_status(status)),
        }
        if status in RETRY_AFTER_STATUSES:
            doc["headers"] = {"Retry-After": {
                "description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
        if status == 401:
            doc["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[status] = doc
    return out


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON shape of every error response."""
    return {"code": code, "message": message, "details": details or {}}


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TrendflowError)
    if exc.status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.code)
    get_metrics().error(exc.code)
    headers: dict[str, str] = {}
    if isinstance(exc, AuthError) and exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry_after = exc.details.get("retry_after_s")
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = field_problems(exc.errors())
    malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
    code = "malformed_json" if malformed else "invalid_input"
    message = (
        "the request body is not valid JSON"
        if malformed
        else "invalid request: " + "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    )
    get_metrics().error("invalid_input")
    return JSONResponse(error_body(code, message, {"errors": problems}), status_code=400)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s: unexpected error", request.method, request.url.path)
    get_metrics().error("internal_error")
    return JSONResponse(
        error_body("internal_error", "internal error; the operator's logs have the details"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(TrendflowError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
