"""Request ids, structured log lines, and optional OpenTelemetry tracing.

Log lines are ``key=value`` with the request id, endpoint (the matched route's template, e.g.
``/v1/searches``, or ``<unmatched>``: never the raw path, which a caller may fill with anything), status
and latency; never names, dates of birth or NHS numbers. The request id of the request being served is
also in :func:`current_request_id` (a context variable) for log lines written deeper down.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
import uuid
from typing import Any

import fastapi.routing
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "UNMATCHED_ENDPOINT",
    "RequestContextMiddleware",
    "configure_logging",
    "current_request_id",
    "setup_tracing",
]

log = logging.getLogger("familyctx_gateway.access")

# FastAPI >= 0.137.2 nests included routers; iter_route_contexts yields each route with its full path
# template. Older FastAPI has flat app.routes with full templates already.
_route_contexts: Any = getattr(fastapi.routing, "iter_route_contexts", iter)

#: Logged as the endpoint of a request no route matched (its path is the caller's free text).
UNMATCHED_ENDPOINT = "<unmatched>"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str:
    """The request id of the request being served in this context, or ``-`` outside a request."""
    return _request_id.get() or "-"


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def _method(scope: Scope) -> str:
    """The request method when it is a standard one (RFC 9110 section 9); any other token is the
    caller's free text, logged as ``<other>``."""
    method = scope.get("method")
    return method if method in _METHODS else "<other>"


def _endpoint(scope: Scope) -> str:
    """The path template of the route this request matches (e.g. ``/v1/searches``; for a method the
    route does not allow, that route's), else :data:`UNMATCHED_ENDPOINT`. Matched afresh against the
    application's routes (``scope["app"]``), so a request refused before routing (413) is named too."""
    routes = getattr(scope.get("app"), "routes", None)
    if not routes:
        return UNMATCHED_ENDPOINT
    partial = None
    for route in _route_contexts(routes):
        match, _child_scope = route.matches(scope)
        if match is Match.FULL:
            return str(route.path)
        if match is Match.PARTIAL and partial is None:
            partial = str(route.path)
    return partial or UNMATCHED_ENDPOINT


_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def configure_logging(level: str = "INFO") -> None:
    """Send the gateway's log lines to stderr as ``ts level logger message`` (message is key=value)."""
    logger = logging.getLogger("familyctx_gateway")
    logger.setLevel(level.upper())
    if not any(getattr(h, "_familyctx", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
        )
        handler._familyctx = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


class RequestContextMiddleware:
    """Pure ASGI middleware: X-Request-ID in and out, one access log line per request, and the request
    body limit: a declared ``Content-Length`` over ``max_body_bytes`` is answered 413 at once; a body
    streamed without a length raises ``HTTPException(413)`` once it passes the limit, which FastAPI
    re-raises to the gateway's error handlers (a JSON body either way).

    An incoming ``X-Request-ID`` is kept when it is 1-64 characters of ``[A-Za-z0-9._:-]``, else a new
    one is made (UUID4 hex). It is put in ``request.state.request_id`` and, for the duration of the
    request, in :func:`current_request_id`.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        context_token = _request_id.set(request_id)
        try:
            if declared and (not declared.isdigit() or int(declared) > self.max_body_bytes):
                await _send_json(
                    send_with_id,
                    413,
                    {
                        "detail": f"Request body too large: the limit is {self.max_body_bytes} bytes",
                        "errors": [],
                        "request_id": request_id,
                    },
                )
            else:
                await self.app(scope, _limited(receive, self.max_body_bytes), send_with_id)
        finally:
            log.info(
                "request request_id=%s method=%s endpoint=%s status=%d latency_ms=%d",
                request_id,
                _method(scope),
                _endpoint(scope),  # the route template: never the raw path nor the query string
                status_holder["status"],
                round((time.perf_counter() - started) * 1000),
            )
            _request_id.reset(context_token)


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, f"Request body too large: the limit is {limit} bytes")
        return message

    return wrapped


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def setup_tracing(app: Any) -> bool:
    """Turn tracing on only when the standard ``OTEL_*`` variables ask for it. Returns True if on.

    ``OTEL_TRACES_EXPORTER=console`` prints spans; ``otlp`` needs the OTLP exporter package (not a
    dependency yet). ``OTEL_SDK_DISABLED=true`` or no exporter set: off. Span attributes are the
    instrumentations' own (HTTP route, status, gRPC method): no request bodies, so no personal data.
    """
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true" or exporter_name in ("", "none"):
        return False
    from opentelemetry import trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if exporter_name == "console":
        exporter: Any = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            logging.getLogger("familyctx_gateway").warning(
                "tracing off: exporter=%s not installed", exporter_name
            )
            return False
        exporter = OTLPSpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "familyctx-gateway")})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="healthz,readyz")
    GrpcAioInstrumentorClient().instrument(tracer_provider=provider)
    return True
