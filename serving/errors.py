"""One error shape for every 4xx/5xx: ``{"error": {code, message, details}, "request_id"}``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from serving.db import is_busy
from serving.schemas import ErrorResponse

log = logging.getLogger(__name__)
BUSY_RETRY_AFTER_S = 2
# answered outside every middleware (Starlette's ServerErrorMiddleware): the headers
# serving.middleware.SecurityHeaders would have added
_OUTERMOST = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
              "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))


def error_response(request: Request, status: int, code: str, message: str,
                   details: Any = None, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details},
            "request_id": request_id(request)}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def _validation_message(errors: list[Any]) -> tuple[str, str, list[dict[str, Any]]]:
    details = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        details.append({"location": ".".join(loc), "problem": err.get("msg", "invalid")})
    if any(err.get("type") == "json_invalid" for err in errors):
        return "malformed_json", "the request body is not valid JSON", details
    first = details[0] if details else {"location": "request", "problem": "invalid"}
    where = first["location"].replace("query.", "query parameter '").replace(
        "body.", "body field '").replace("path.", "path parameter '")
    if "'" in where:
        where += "'"
    return "invalid_request", f"{where}: {first['problem']}", details


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    code, message, details = _validation_message(list(exc.errors()))
    return error_response(request, 400 if code == "malformed_json" else 422, code, message,
                          details)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed",
            413: "payload_too_large"}.get(exc.status_code, "http_error")
    return error_response(request, exc.status_code, code, str(exc.detail),
                          headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> Response:
    if is_busy(exc):  # a lock not granted in time, a lost connection: not a bug, retry
        log.warning("case store busy", extra={"request_id": request_id(request),
                                              "path": request.url.path, "error": repr(exc)})
        return error_response(request, 503, "store_busy",
                              "the case store is busy; retry in a few seconds",
                              headers={"Retry-After": str(BUSY_RETRY_AFTER_S),
                                       "X-Request-ID": request_id(request), **_OUTERMOST})
    log.error("unhandled error", exc_info=exc, extra={
        "request_id": request_id(request), "path": request.url.path})
    # answered by the outermost middleware, outside RequestContext: add the id header here
    return error_response(request, 500, "internal_error",
                          "unexpected server error; quote the request id to the operators",
                          headers={"X-Request-ID": request_id(request), **_OUTERMOST})


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the listed error statuses."""
    text = {
        400: "Bad request: malformed JSON or an invalid cursor",
        401: "No API key, an unknown key or a revoked key",
        403: "The key's role may not do this",
        404: "Unknown account or case",
        409: "Illegal transition (details list the allowed ones) or conflicting case",
        422: "Invalid parameter or body field (details name each)",
        500: "Unexpected error (logged with the request id)",
        413: "The request body is larger than 64 KB",
        429: "Too many failed authentications from this address (see Retry-After)",
        503: "Database unreachable or busy (see Retry-After)",
    }
    return {s: {"model": ErrorResponse, "description": text[s]} for s in statuses}
