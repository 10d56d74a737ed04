"""Every error answers ``{"code": ..., "message": ...}`` (what the Segment clients read)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadscore.services.errors import LeadscoreError, NoPublishedModel, NotFound
from leadscore.services.intake import IntakeUnavailable

RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable machine code, a sentence."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.headers)

    @app.exception_handler(IntakeUnavailable)
    async def unavailable(_request: Request, error: IntakeUnavailable) -> JSONResponse:
        return error_response(503, "unavailable", str(error), {"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(NoPublishedModel)
    async def no_model(_request: Request, error: NoPublishedModel) -> JSONResponse:
        return error_response(409, "no_model", str(error))

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, error: NotFound) -> JSONResponse:
        return error_response(404, "not_found", str(error))

    @app.exception_handler(LeadscoreError)
    async def domain_error(_request: Request, error: LeadscoreError) -> JSONResponse:
        return error_response(400, "invalid_request", str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', 'invalid')}" for item in error.errors()
        )
        return error_response(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail), getattr(error, "headers", None))
