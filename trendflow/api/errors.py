"""Every error leaves the API as JSON ``{code, message, details}`` with a stable ``code``.

Domain errors carry their own status (:mod:`trendflow.errors`); FastAPI's request validation
becomes ``400 invalid_input`` listing each problem; a body that cannot be read as JSON at all
(not JSON, not UTF-8, empty, or sent without a JSON content type) is ``400 malformed_json``
whatever its bytes; unknown routes are ``404 not_found``; anything unexpected is ``500
internal_error`` without internals in the body, logged once at ERROR with its traceback as text
(:class:`CatchUnexpected`: the exception does not travel further, so the server does not log it
a second time).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trendflow.errors import AuthError, TrendflowError, all_error_classes, field_problems
from trendflow.metrics import get_metrics

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "malformed_json",  # the framework's only 400: a body it could not parse
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
    502: "A service the API relies on failed (YouTube after retries, the LLM)",
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


MALFORMED_MESSAGE = ("the request body is not a JSON document: send one JSON object with "
                     "Content-Type: application/json")


def _unreadable_body(exc: RequestValidationError) -> bool:
    """True when the body as a whole could not be read as JSON: invalid JSON, raw bytes (no
    JSON content type), or no body at all."""
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return True
        if tuple(err.get("loc", ())) == ("body",) and (
            err.get("type") == "missing" or isinstance(exc.body, bytes | str)
        ):
            return True
    return False


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if _unreadable_body(exc):
        get_metrics().error("malformed_json")
        return JSONResponse(error_body("malformed_json", MALFORMED_MESSAGE), status_code=400)
    problems = field_problems(exc.errors())
    message = "invalid request: " + "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    get_metrics().error("invalid_input")
    return JSONResponse(error_body("invalid_input", message, {"errors": problems}),
                        status_code=400)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = MALFORMED_MESSAGE if code == "malformed_json" else str(exc.detail)
    return JSONResponse(
        error_body(code, message), status_code=exc.status_code, headers=exc.headers
    )


class CatchUnexpected:
    """ASGI middleware: an exception no handler answered becomes ``500 internal_error``,
    logged once at ERROR with the method, path and traceback as text. Nothing is raised
    further (the server would log the same failure again, without the request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.error("%s %s: unexpected error %s: %s\n%s", scope.get("method"),
                      scope.get("path"), type(exc).__name__, exc,
                      "".join(traceback.format_exception(exc)).rstrip())
            get_metrics().error("internal_error")
            if not started:  # once the answer has begun, the connection just ends
                response = JSONResponse(
                    error_body("internal_error",
                               "internal error; the operator's logs have the details"),
                    status_code=500,
                )
                await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app`` (:class:`CatchUnexpected` is added by the app
    as its outermost middleware)."""
    app.add_exception_handler(TrendflowError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
