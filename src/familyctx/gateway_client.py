"""A small HTTP client for the demo tools: get an access token, call the gateway.

Used by ``familyctx token``, ``familyctx query`` and ``familyctx demo``. Tokens come from the
provider's token endpoint (found by OpenID Connect Discovery 1.0) with the resource-owner password
grant (RFC 6749 section 4.3) and the public client ``familyctx-cli``; gateway calls send them as
RFC 6750 bearer tokens. Errors form one tree under :class:`ClientError`; their messages never carry
personal data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "ABOUT_BREAK_GLASS_GRANT",
    "CLI_CLIENT_ID",
    "DEFAULT_GATEWAY_URL",
    "DEFAULT_ISSUER",
    "ClientError",
    "GatewayClient",
    "GatewayHttpError",
    "ServiceUnreachable",
    "TokenRequestError",
    "fetch_token",
]

DEFAULT_ISSUER = "http://127.0.0.1:9000"
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
CLI_CLIENT_ID = "familyctx-cli"


class ClientError(Exception):
    """Root of the client's errors; ``str(error)`` is a message a person can act on."""


class ServiceUnreachable(ClientError):
    """Nothing answered at the URL (connection refused, DNS failure, timeout)."""


class TokenRequestError(ClientError):
    """The provider refused the token request (RFC 6749 section 5.2 error) or answered oddly."""


#: What a status usually means when nothing more specific applies (:meth:`GatewayHttpError.hint`).
_HINTS = {
    400: "the request body could not be read as JSON",
    401: "the access token was refused: get a fresh one with `familyctx token --user NAME`",
    403: "your role may not make this request",
    404: "nothing by that id: search again and choose a result",
    413: "the request is too large",
    422: "the request is not valid",
}
#: The hint for a 503 whose detail is the audit store's ("Audit store unavailable; no data returned").
_AUDIT_UNAVAILABLE_HINT = (
    "the gateway could not record the audit entry, so it returned no data; try again later"
)
#: What ``about`` is for a call about one break-glass grant (``GET /v1/break-glass/{id}``).
ABOUT_BREAK_GLASS_GRANT = "break_glass_grant"


@dataclass
class GatewayHttpError(ClientError):
    """The gateway answered with a 4xx/5xx. ``detail``: the gateway's message (ErrorResponse ``detail``);
    ``errors``: per-field problems of a 422; ``about``: what the call was about when that changes what an
    error means (:data:`ABOUT_BREAK_GLASS_GRANT`), "" otherwise."""

    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)
    request_id: str | None = None
    about: str = ""
    #: The ``Retry-After`` header in whole seconds (RFC 9110 section 10.2.3), when the gateway sent one.
    retry_after: int | None = None

    def stopping(self) -> str | None:
        """What a 503 from a gateway that is shutting down (docs/gateway-api.md, "Limits": graceful shutdown)
        means, told apart from the audit store's 503 by the gateway's detail: a new request refused
        ("shutting down and takes no new requests") or one cut off when the grace period ran out ("could
        not finish your request"). Neither was answered with any data; the cut-off one was audited.
        None for any other error."""
        text = self.detail.lower()
        if self.status != 503:
            return None
        wait = f"{self.retry_after} s" if self.retry_after is not None else "a few seconds"
        if "could not finish" in text:
            return (
                f"The gateway was stopping and could not finish your request; nothing was returned; "
                f"try again in {wait}"
            )
        if "shutting down" in text:
            return (
                "The gateway is stopping and takes no new requests; nothing was returned; "
                f"try again in {wait}"
            )
        return None

    def hint(self) -> str | None:
        """What to do, picked from the status, the call and the gateway's own message: a 404 for a
        break-glass grant means no grant of yours has that id; a 403 that refuses the break-glass grant
        sent (another case, purpose or worker, or expired: the message says which) is not about your
        role. None when there is nothing to add."""
        about_grant = "break-glass grant" in self.detail.lower()
        if self.status == 404 and (self.about == ABOUT_BREAK_GLASS_GRANT or about_grant):
            return (
                "no break-glass grant of yours has that id: check the id that `familyctx break-glass open` "
                "printed; another worker's grant is never shown"
            )
        if self.status == 403 and about_grant:
            return "it is the break-glass grant that was refused, not your role: the message says why"
        if self.status == 503:
            return _AUDIT_UNAVAILABLE_HINT if "audit store unavailable" in self.detail.lower() else None
        return _HINTS.get(self.status)

    def __str__(self) -> str:
        stopping = self.stopping()
        # A stopping gateway's own words are replaced, not explained: they are the whole story.
        lines = [f"gateway answered {self.status}: {stopping or self.detail}"]
        hint = None if stopping else self.hint()
        if hint:
            lines.append(f"({hint})")
        lines.extend(f"  - {item.get('field', '?')}: {item.get('message', '')}" for item in self.errors)
        if self.request_id:
            lines.append(f"request id: {self.request_id}")
        return "\n".join(lines)


def fetch_token(
    issuer: str,
    username: str,
    password: str,
    *,
    client_id: str = CLI_CLIENT_ID,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """Return an access token (compact JWT) for ``username`` from the provider at ``issuer``.

    Discovers the token endpoint from ``<issuer>/.well-known/openid-configuration``. Raises
    :class:`ServiceUnreachable` when the provider does not answer and :class:`TokenRequestError`
    when it refuses (e.g. ``invalid_grant`` for an unknown user or wrong password).
    """
    base = issuer.rstrip("/")
    with httpx.Client(timeout=timeout, transport=transport) as http:
        try:
            discovery = http.get(f"{base}/.well-known/openid-configuration")
            discovery.raise_for_status()
            token_endpoint = discovery.json()["token_endpoint"]
            response = http.post(
                token_endpoint,
                data={
                    "grant_type": "password",
                    "username": username,
                    "password": password,
                    "client_id": client_id,
                },
            )
        except httpx.TransportError as exc:
            raise ServiceUnreachable(
                f"the OIDC provider at {base} is not reachable ({type(exc).__name__}); is it running? "
                "(`familyctx oidc serve` or `familyctx demo`)"
            ) from exc
        except (httpx.HTTPStatusError, ValueError, KeyError) as exc:
            raise TokenRequestError(f"{base} has no usable OIDC discovery document") from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        error = body.get("error", f"HTTP {response.status_code}")
        description = body.get("error_description", "")
        raise TokenRequestError(f"token request refused: {error} {description}".strip())
    return str(body["access_token"])


class GatewayClient:
    """Calls the gateway's ``/v1`` API with a bearer token; returns the decoded JSON body.

    Every call sends an ``X-Request-ID`` (a new UUID unless given). Raises :class:`ServiceUnreachable`
    and :class:`GatewayHttpError`.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._base = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self._base, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def search(self, body: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        """``POST /v1/searches`` with ``body`` (SearchRequest shape)."""
        return self._post("/v1/searches", body, request_id)

    def family_context(self, body: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        """``POST /v1/family-context`` with ``body`` (FamilyContextRequest shape)."""
        return self._post("/v1/family-context", body, request_id)

    def open_break_glass(self, body: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        """``POST /v1/break-glass`` with ``body`` (``purpose``, ``case_reference``, ``reason``, optional
        ``minutes``); returns the grant (``break_glass_id``, ``expires_at``, ...)."""
        return self._post("/v1/break-glass", body, request_id)

    def break_glass(self, break_glass_id: str, *, request_id: str | None = None) -> dict[str, Any]:
        """``GET /v1/break-glass/{id}``: one of the caller's own grants (404, and a hint saying so, when
        the caller has no grant with that id)."""
        path = f"/v1/break-glass/{break_glass_id}"
        return self._request("GET", path, None, None, request_id, about=ABOUT_BREAK_GLASS_GRANT)

    def break_glass_notifications(
        self,
        *,
        since: str | None = None,
        after: int | None = None,
        limit: int | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """``GET /v1/break-glass/notifications`` (IG officers): ``since`` an ISO 8601 time, ``after`` the
        previous page's ``next_after``, ``limit`` 1-200."""
        params = {k: v for k, v in (("since", since), ("after", after), ("limit", limit)) if v is not None}
        return self._request("GET", "/v1/break-glass/notifications", None, params, request_id)

    def _post(self, path: str, body: dict[str, Any], request_id: str | None) -> dict[str, Any]:
        return self._request("POST", path, body, None, request_id)

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, Any] | None,
        request_id: str | None,
        *,
        about: str = "",
    ) -> dict[str, Any]:
        headers = {"X-Request-ID": request_id or str(uuid.uuid4())}
        try:
            response = self._http.request(method, path, json=body, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise ServiceUnreachable(
                f"the gateway at {self._base} is not reachable ({type(exc).__name__}); is it running? "
                "(`familyctx gateway serve` or `familyctx demo`)"
            ) from exc
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400 or not isinstance(payload, dict):
            info = payload if isinstance(payload, dict) else {}
            raise GatewayHttpError(
                status=response.status_code,
                detail=str(info.get("detail") or response.reason_phrase or "no detail"),
                errors=list(info.get("errors") or []),
                request_id=info.get("request_id") or response.headers.get("x-request-id"),
                about=about,
                retry_after=_retry_after_seconds(response.headers.get("retry-after")),
            )
        return payload


def _retry_after_seconds(value: str | None) -> int | None:
    """A ``Retry-After`` header given as delay-seconds (RFC 9110 section 10.2.3), else None (absent, or
    an HTTP-date, which this gateway never sends)."""
    text = (value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 6 else None
