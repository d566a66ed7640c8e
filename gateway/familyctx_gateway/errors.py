"""The gateway's one error tree, and the one place it is mapped to HTTP responses.

Every message here is shown to the caller, so none may carry personal data (names, dates of birth,
NHS numbers) or submitted values. 422 validation messages are built per field in
:func:`validation_messages` from what the field expects, never from what was sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "AuditUnavailable",
    "Forbidden",
    "GatewayError",
    "InvalidToken",
    "PayloadTooLarge",
    "SubjectNotFound",
    "UnknownCouncil",
    "install_error_handlers",
    "validation_messages",
]

log = logging.getLogger("familyctx_gateway.errors")


class GatewayError(Exception):
    """Root of the gateway's errors. ``status`` is the HTTP status; ``detail`` is safe to show."""

    status: int = 500
    detail: str = "Internal error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail:
            self.detail = detail

    def headers(self) -> dict[str, str]:
        return {}


class InvalidToken(GatewayError):
    """Missing, malformed, expired or untrusted bearer token (RFC 6750 section 3.1)."""

    status = 401
    detail = "A valid bearer access token is required"

    def headers(self) -> dict[str, str]:
        # The reason stays in the server log: telling the caller which check failed helps forgers.
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class Forbidden(GatewayError):
    status = 403
    detail = "Your role does not allow this request"


class UnknownCouncil(GatewayError):
    status = 404
    detail = "The subject's council (gss_code) is not part of this federation"


class SubjectNotFound(GatewayError):
    status = 404
    detail = "That council holds no person with that local_person_id; search again and choose a result"


class PayloadTooLarge(GatewayError):
    status = 413
    detail = "Request body too large"


class AuditUnavailable(GatewayError):
    """The audit record could not be committed: fail closed, return no data."""

    status = 503
    detail = "Audit store unavailable; no data returned"


# What each request field expects, in words a person can act on.
_FIELD_HINTS: dict[str, str] = {
    "purpose": "purpose must be one of: s17_assessment, s47_enquiry, cp_conference, cla_review, "
    "early_help_assessment",
    "case_reference": "case_reference must be 1-64 characters: letters, digits, spaces and / _ . : -, "
    "starting with a letter or digit",
    "nhs_number": "nhs_number must be 10 digits (spaces or dashes allowed) with a correct check digit",
    "given_name": "given_name must be text of 1-100 characters without control characters or <>{}[]\\;=",
    "family_name": "family_name must be text of 1-100 characters without control characters or <>{}[]\\;=",
    "date_of_birth": "date_of_birth must be a real date in the form YYYY-MM-DD, after 1900-01-01 and not "
    "in the future",
    "postcode": "postcode must be a UK postcode of at most 10 characters, for example SK1 3XE",
    "subject": "subject must be an object with gss_code and local_person_id",
    "subject.gss_code": "subject.gss_code must be a council's GSS code, for example E08000007",
    "subject.local_person_id": "subject.local_person_id must be 1-48 letters, digits and _ . : -",
}


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",) and not isinstance(p, int)]
    # pydantic adds the validator's function name for Annotated chains: keep only model fields.
    return ".".join(p for p in parts if not p.startswith("function-")) or "body"


def validation_messages(errors: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Turn pydantic errors into ``[{"field", "message"}]`` without echoing any submitted value."""
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for err in errors:
        kind = err.get("type", "")
        field = _field_name(err.get("loc", ()))
        if kind == "json_invalid":
            field, message = "body", "The request body is not valid JSON"
        elif kind == "missing":
            message = f"{field} is required" if field != "body" else "A JSON request body is required"
        elif kind == "extra_forbidden":
            message = f"{field} is not a recognised field; remove it"
        elif kind in ("model_type", "model_attributes_type", "dict_type") and field == "body":
            message = "The request body must be a JSON object"
        elif kind == "value_error" and field == "body":
            # Our own model-level rule (e.g. not enough identifiers): the message is ours, value-free.
            ctx_error = err.get("ctx", {}).get("error")
            message = f"{ctx_error}" if ctx_error else "The request is not valid"
            message = message[:1].upper() + message[1:]
        elif kind == "value_error" and err.get("ctx", {}).get("error") is not None:
            message = f"{field} {err['ctx']['error']}"
        else:
            message = _FIELD_HINTS.get(field, f"{field} has the wrong type or format")
        if (field, message) not in seen:
            seen.add((field, message))
            out.append({"field": field, "message": message})
    return out


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def install_error_handlers(app: FastAPI) -> None:
    """Map the error tree, validation errors and stray exceptions to JSON bodies (ErrorResponse)."""

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail, "errors": [], "request_id": _request_id(request)},
            status_code=exc.status,
            headers=exc.headers(),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {
                "detail": "The request is not valid; correct the fields listed in errors and try again",
                "errors": validation_messages(exc.errors()),
                "request_id": _request_id(request),
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
        return JSONResponse(
            {"detail": detail, "errors": [], "request_id": _request_id(request)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error request_id=%s error=%s", _request_id(request), type(exc).__name__)
        return JSONResponse(
            {"detail": "Internal error", "errors": [], "request_id": _request_id(request)}, status_code=500
        )
