"""The gateway's one error tree, and the one place it is mapped to HTTP responses.

Every message here is shown to the caller, so none may carry personal data (names, dates of birth,
NHS numbers) or submitted content, keys included. 422 validation messages are built per field in
:func:`validation_messages` from what the field expects, never from what was sent; a body that cannot
be read as UTF-8 JSON at all is one 400 (:class:`UnreadableBody`), whatever the parser's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from familyctx.councils import GSS_CODE_RULE

__all__ = [
    "AuditUnavailable",
    "Forbidden",
    "GatewayConfigError",
    "GatewayError",
    "InvalidToken",
    "PayloadTooLarge",
    "SubjectNotFound",
    "TooManyInFlight",
    "UnknownCouncil",
    "UnreadableBody",
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


class GatewayConfigError(GatewayError):
    """The gateway's configuration is unusable (raised at startup, never mapped to a response).

    ``source``: the file (or "gateway settings"); ``problems``: one ``"field: message"`` line per bad
    field, e.g. ``"adapters[0].address: must be host:port ..."``, without pydantic's raw output.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source} is invalid: " + "; ".join(problems))
        self.source = source
        self.problems = problems


class InvalidToken(GatewayError):
    """Missing, malformed, expired or untrusted bearer token (RFC 6750 section 3.1)."""

    status = 401
    detail = "A valid bearer access token is required"

    def headers(self) -> dict[str, str]:
        # The reason stays in the server log: telling the caller which check failed helps forgers.
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class Forbidden(GatewayError):
    """403: authenticated, but the role may not make this request."""

    status = 403
    detail = "Your role does not allow this request"


class UnknownCouncil(GatewayError):
    """404: the subject's GSS code names no council configured in this federation."""

    status = 404
    detail = "The subject's council (gss_code) is not part of this federation"


class SubjectNotFound(GatewayError):
    """The subject's council answered that it holds no person with that local id (gRPC NOT_FOUND)."""

    status = 404
    detail = "That council holds no person with that local_person_id; search again and choose a result"

    def __init__(self, council: str | None = None) -> None:
        # ``council``: the configured name and GSS code, e.g. "Stockport (E08000007)"; never the id asked.
        super().__init__(
            f"No person with that local_person_id at {council}; search again and choose a result"
            if council
            else None
        )


class UnreadableBody(GatewayError):
    """The body is not UTF-8 JSON sent as ``application/json`` (bad bytes, broken syntax, nesting too
    deep, a compressed body, a form): one 400 for all, in the ErrorResponse shape (RFC 9110 15.5.1)."""

    status = 400

    def __init__(self, max_body_bytes: int) -> None:
        limit = f"{max_body_bytes // 1024} KiB" if max_body_bytes % 1024 == 0 else f"{max_body_bytes} bytes"
        super().__init__(
            "The request body must be UTF-8 JSON sent with Content-Type: application/json, not compressed, "
            f"at most {limit}"
        )


class PayloadTooLarge(GatewayError):
    """413: the request body is larger than the configured limit (64 KiB by default)."""

    status = 413
    detail = "Request body too large"


class TooManyInFlight(GatewayError):
    """429: too many searches and family-context requests in progress (``limits`` settings).

    ``scope``: ``"user"`` (this worker's own requests, ``limits.max_in_flight_per_user``) or ``"total"``
    (the whole gateway, ``limits.max_in_flight_total``); ``limit``: that limit; ``retry_after``: whole
    seconds sent as ``Retry-After`` (RFC 9110 section 10.2.3; RFC 6585 section 4 for 429).
    """

    status = 429

    def __init__(self, scope: str, limit: int, retry_after: int) -> None:
        if scope == "user":
            message = (
                f"You already have {limit} searches or family-context requests in progress, the most this "
                "gateway runs at once for one worker (limits.max_in_flight_per_user); wait for them to "
                f"finish, then try again in {retry_after} s"
            )
        else:
            message = (
                f"The gateway is already answering {limit} searches and family-context requests, the most "
                f"it runs at once (limits.max_in_flight_total); try again in {retry_after} s. If this "
                "keeps happening, tell your service desk"
            )
        super().__init__(message)
        self.scope = scope
        self.limit = limit
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


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
    "subject.gss_code": f"subject.gss_code {GSS_CODE_RULE}",
    "subject.local_person_id": "subject.local_person_id must be 1-48 letters, digits and _ . : -",
    "break_glass_id": "break_glass_id must be the id POST /v1/break-glass returned (a lower-case UUID)",
    "reason": "reason must be one line of 20-1000 characters (after trimming spaces) saying why you need "
    "access, without line breaks, tabs, control or invisible formatting characters",
    "minutes": "minutes must be a whole number (a JSON integer, not text) from 1 to the gateway's "
    "break_glass.max_minutes",
    "since": "since must be an ISO 8601 date-time such as 2026-05-01T09:00:00Z",
    "after": "after must be a whole number from 0 to 9223372036854775807 (the previous page's next_after)",
    "limit": "limit must be a whole number from 1 to 200",
    # The IG API (/v1/audit) query parameters.
    "from": "from must be an ISO 8601 date-time such as 2026-05-01T09:00:00Z (UTC when no offset is given)",
    "to": "to must be an ISO 8601 date-time such as 2026-05-08T00:00:00Z (UTC when no offset is given)",
    "user": "user must be the worker's token subject (sub): 1-200 characters",
    "council": f"council {GSS_CODE_RULE}",
    "outcome": "outcome must be one of: success, partial, denied, error",
    "record_class": "record_class must be one of: access, break_glass, ig_access",
    "break_glass": "break_glass must be true or false",
    "cursor": "cursor must be the next_cursor of the previous page",
    "status": "status must be unreviewed or reviewed",
    "seq": "seq must be a record's position in the log: a whole number of 0 or more",
    "note": "note must be 10-2000 characters (after trimming spaces) saying what you checked and concluded, "
    "without control characters other than line breaks and tabs",
}


def _model_at(model: type[BaseModel] | None, path: Sequence[str]) -> type[BaseModel] | None:
    """The request model found by following ``path`` (declared field names) down from ``model``."""
    for part in path:
        field = model.model_fields.get(part) if model is not None else None
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _field_path(loc: Sequence[Any], model: type[BaseModel] | None) -> list[str]:
    """Declared field names in ``loc`` (after "body"), stopping at the first name the request model does
    not declare: keys the caller made up are never named back to them."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if parts[:1] in (["body"], ["query"], ["path"]):
        parts = parts[1:]
    # pydantic adds the validator's function name for Annotated chains: keep only model fields.
    parts = [p for p in parts if not p.startswith("function-")]
    known: list[str] = []
    for part in parts:
        current = _model_at(model, known) if model is not None else None
        declared = (
            part in current.model_fields if current is not None else ".".join([*known, part]) in _FIELD_HINTS
        )
        if not declared:
            break
        known.append(part)
    return known


def _unexpected_fields(path: list[str], model: type[BaseModel] | None) -> str:
    where = f" in {'.'.join(path)}" if path else ""
    target = _model_at(model, path)
    allowed = f" (allowed: {', '.join(target.model_fields)})" if target is not None else ""
    return f"unexpected field(s){where}: remove fields that are not part of this request{allowed}"


def _json_body_message(kind: str, field: str, expects: str | None) -> str:
    """The message for a body refused by api/json_body.py: a key given twice, or a number too long to
    read (``field``: the declared field, or ``body`` when it is not one of the request's)."""
    if kind == "json_duplicate_key":
        if field == "body":
            return "A key is given more than once in one JSON object: send each key once"
        return f"{field} is given more than once: send each field once (duplicate keys are refused)"
    if field == "body":
        return "The body holds a number too long to read (thousands of digits): no field takes one"
    return f"{field} is a number too long to read (thousands of digits)" + (f"; {expects}" if expects else "")


def validation_messages(
    errors: Sequence[dict[str, Any]],
    model: type[BaseModel] | None = None,
    hints: dict[str, str] | None = None,
) -> list[dict[str, str]]:
    """Turn pydantic errors into ``[{"field", "message"}]`` without echoing any submitted value or key.

    ``model``: the request body's model, used to name only declared fields and to list the allowed
    ones when unknown keys were sent (``extra_forbidden``: reported on the enclosing object, e.g.
    ``{"field": "body", "message": "unexpected field(s): ... (allowed: purpose, ...)"}``).
    ``hints``: what a field expects, by field, in place of the fixed wording (e.g. with this gateway's
    configured limits).
    """
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for err in errors:
        kind = err.get("type", "")
        loc = err.get("loc", ())
        path = _field_path(loc, model)
        field = ".".join(path) or "body"
        if kind == "extra_forbidden":
            message = _unexpected_fields(path, model)
        elif kind == "missing":
            message = f"{field} is required" if field != "body" else "A JSON request body is required"
        elif kind in ("model_type", "model_attributes_type", "dict_type") and field == "body":
            message = "The request body must be a JSON object"
        elif kind == "value_error" and field == "body":
            # Our own model-level rule (e.g. not enough identifiers): the message is ours, value-free.
            ctx_error = err.get("ctx", {}).get("error")
            message = f"{ctx_error}" if ctx_error else "The request is not valid"
            message = message[:1].upper() + message[1:]
        elif kind == "value_error" and err.get("ctx", {}).get("error") is not None:
            message = f"{field} {err['ctx']['error']}"
        elif kind in ("json_duplicate_key", "json_number_too_long"):
            message = _json_body_message(kind, field, (hints or {}).get(field) or _FIELD_HINTS.get(field))
        else:
            message = (hints or {}).get(field) or _FIELD_HINTS.get(
                field, f"{field} has the wrong type or format"
            )
        if (field, message) not in seen:
            seen.add((field, message))
            out.append({"field": field, "message": message})
    return out


def _body_model(request: Request) -> type[BaseModel] | None:
    """The matched route's body model (FastAPI puts the route in ``scope["route"]``), if any."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    annotation = getattr(getattr(body_field, "field_info", None), "annotation", None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _unreadable(errors: Sequence[dict[str, Any]]) -> bool:
    """The body could not be parsed as JSON (``json_invalid``), or was not sent as JSON at all (FastAPI
    hands the model the raw bytes when the Content-Type is not application/json)."""
    return any(
        e.get("type") == "json_invalid"
        or (tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), (bytes, bytearray)))
        for e in errors
    )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _configured_hints(request: Request) -> dict[str, str]:
    """Field wording that quotes this gateway's settings (break_glass.max_minutes)."""
    gateway = getattr(request.app.state, "gateway", None)
    settings = getattr(gateway, "settings", None)
    if settings is None:
        return {}
    most = settings.break_glass.max_minutes
    return {
        "minutes": f"minutes must be a whole number (a JSON integer, not text) from 1 to {most} "
        "(this gateway's break_glass.max_minutes)"
    }


def install_error_handlers(app: FastAPI, *, max_body_bytes: int) -> None:
    """Map the error tree, validation errors and stray exceptions to JSON bodies (ErrorResponse).

    ``max_body_bytes`` is quoted in the 400 answer to a body that is not UTF-8 JSON.
    """

    def error_body(request: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail, "errors": [], "request_id": _request_id(request)},
            status_code=exc.status,
            headers=exc.headers(),
        )

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return error_body(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if _unreadable(exc.errors()):
            return error_body(request, UnreadableBody(max_body_bytes))
        return JSONResponse(
            {
                "detail": "The request is not valid; correct the fields listed in errors and try again",
                "errors": validation_messages(exc.errors(), _body_model(request), _configured_hints(request)),
                "request_id": _request_id(request),
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # Only FastAPI's body reader raises 400 here ("There was an error parsing the body": bytes
            # that are not UTF-8, e.g. a gzip body, or JSON nested past the parser's recursion limit).
            return error_body(request, UnreadableBody(max_body_bytes))
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
