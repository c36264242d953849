"""JSON errors: every failure of the HTTP API is ``{"error": {"code", "message"}}``.

A wrong token, a malformed request or a bug gets a JSON body with the right status
code, never a traceback (bugs are logged on the server with theirs).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from routilux.exceptions import ConfigurationError, FlowStateError, RoutiluxError

logger = logging.getLogger("routilux.web")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    421: "misdirected",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """An HTTP error with a one-line message saying what was wrong and what to do."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error response for ``status``."""
    body = {"error": {"code": _CODES.get(status, "error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def from_library(exc: RoutiluxError) -> ApiError:
    """A library error as an API error: bad input 400, a state conflict 409, anything
    else (a store that cannot be written, ...) 503."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, ConfigurationError):
        return ApiError(400, message)
    if isinstance(exc, FlowStateError):
        return ApiError(409, message)
    return ApiError(503, message)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, getattr(exc, "headers", None))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "internal error in the routilux monitor; see the server log")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: _on_api_error,
    HTTPException: _on_http_exception,
    Exception: _on_unexpected,
}
