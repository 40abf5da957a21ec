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

from trendflow.errors import AuthError, TrendflowError
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
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        problems.append({"field": loc, "problem": err.get("msg", "invalid")})
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
