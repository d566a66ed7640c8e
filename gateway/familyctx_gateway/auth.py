"""Bearer access token validation (RFC 6750, RFC 7519, RFC 8725, RFC 9068) for several trusted issuers.

The token's ``iss`` is read unverified only to choose the issuer's configuration and keys
(:mod:`familyctx_gateway.jwks`); everything is then verified against that issuer alone. Policy and
reasons: docs/access-control.md, "Identity and tokens".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, NoReturn

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from familyctx.councils import check_gss_code
from familyctx_gateway.errors import Forbidden, InvalidToken
from familyctx_gateway.jwks import IssuerKeys, NoUsableKey, TrustedIssuers
from familyctx_gateway.observability import current_request_id
from familyctx_gateway.settings import ASYMMETRIC_ALGORITHMS, OidcSettings

__all__ = ["ROLES", "NoRoles", "Principal", "TokenValidator", "TrustedIssuers", "reject_token"]

log = logging.getLogger("familyctx_gateway.auth")

#: Longest token read at all (a Keycloak token with many roles is a few KiB).
MAX_TOKEN_CHARS = 16 * 1024
#: Longest identifier kept for the audit record (its columns are 200 characters).
_MAX_ID_CHARS = 200
#: The roles of this service (docs/access-control.md, "Roles"). A token's other roles (a provider's own,
#: such as Keycloak's ``offline_access``, or anything else) are dropped when the token is read: they never
#: reach the policy, the audit record, a response or a log line (only their count is logged).
ROLES = ("social_worker", "team_manager", "ig_officer", "administrator", "service_client")


class NoRoles(Forbidden):
    """A valid token that carries no roles (claim absent or empty): authenticated, allowed nothing.

    403 with the RFC 6750 section 3.1 ``insufficient_scope`` challenge.
    """

    detail = "Your access token carries no role for this service"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, from a validated access token (claims: docs/access-control.md, "Identity and tokens").

    ``sub``: subject; ``organisation``: GSS code of the user's council (empty for service clients);
    ``roles``: the token's roles that are roles of this service (:data:`ROLES`), in token order;
    ``client``: the OAuth client (``client_id``, or ``azp``); ``jti``: the token id; ``issuer``: ``iss``.
    """

    sub: str
    name: str
    organisation: str
    roles: tuple[str, ...]
    client: str
    jti: str
    issuer: str = ""

    def has_any_role(self, *roles: str) -> bool:
        """True when the principal holds at least one of ``roles``."""
        return any(role in self.roles for role in roles)


def reject_token(reason: str, issuer: str | None = None) -> NoReturn:
    """Log why a token was refused (our fixed wording or an exception class name: never a claim value)
    with the request id the caller was given, so a user's report can be traced; raise InvalidToken.

    ``issuer`` is only ever a *configured* issuer, never the unverified ``iss`` of a refused token.
    """
    log.info(
        "token rejected request_id=%s reason=%s issuer=%s",
        current_request_id(),
        reason.replace(" ", "_"),
        issuer or "-",
    )
    raise InvalidToken()


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` (``realm_access.roles``), or None when any step is missing."""
    value: Any = claims
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    return value


def _unverified(token: str) -> tuple[dict[str, Any], str]:
    """The protected header and the ``iss`` claim, unverified (only to choose the issuer).

    Raises ValueError (fixed wording), a JoseError/UnicodeError subclass, or RecursionError.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError("token too long")
    if token.count(".") != 2:
        raise ValueError("not a compact JWS")
    compact = extract_compact(token.encode("ascii"))
    payload = json.loads(compact.payload)
    iss = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(iss, str):
        raise ValueError("iss missing")
    return dict(compact.protected), iss


def _check_type(header: dict[str, Any], claims: dict[str, Any], settings: OidcSettings) -> str | None:
    """RFC 9068 section 4 / Keycloak token type checks; the reason when refused, else None."""
    typ = header.get("typ")
    if typ is not None and not isinstance(typ, str):
        return "typ_not_a_string"
    media = typ.lower().removeprefix("application/") if typ is not None else None
    if settings.rfc9068:
        return None if media == "at+jwt" else "typ_not_at+jwt"
    if media not in (None, "jwt", "at+jwt"):
        return "typ_not_an_access_token"
    if "typ" in claims and claims["typ"] != "Bearer":
        return "keycloak_typ_claim_not_bearer"  # Keycloak ID tokens say "ID", refresh tokens "Refresh"
    return None


def _client(claims: dict[str, Any], settings: OidcSettings) -> str | None:
    """The client id: RFC 9068 ``client_id`` (required), Keycloak ``azp`` (or ``client_id``).

    None when it is missing, not a string, or when ``azp`` and ``client_id`` disagree.
    """
    client_id, azp = claims.get("client_id"), claims.get("azp")
    if client_id is not None and azp is not None and client_id != azp:
        return None
    client = client_id if settings.rfc9068 else (azp or client_id)
    return client if isinstance(client, str) and client else None


class TokenValidator:
    """Validates a compact JWS access token and returns the :class:`Principal`.

    Checks, in order: size and compact JWS form; ``iss`` (unverified) names a configured issuer; ``alg``
    in that issuer's asymmetric allowlist (never ``none`` or ``HS*``); ``typ`` for the issuer's
    ``token_profile``; ``kid`` known to that issuer (one shared, rate-limited refresh when not);
    signature with that key only; ``iss``, ``aud``, ``exp``/``nbf``/``iat`` (leeway), ``sub``, ``jti``;
    the client (``client_id``/``azp``); roles at ``roles_claim`` (only :data:`ROLES` are kept; others
    are dropped and counted in the log); organisation (a GSS code; within ``organisations`` when set).
    Raises :class:`InvalidToken` (401; reason logged, never returned) or a valid token without any of
    :data:`ROLES` gives a Principal with no roles, refused with :class:`NoRoles` (403,
    ``insufficient_scope``) where the request is handled, so that personal-data requests audit the
    refusal.
    """

    def __init__(self, issuers: TrustedIssuers) -> None:
        self._issuers = issuers

    async def validate(self, token: str) -> Principal:
        """The :class:`Principal` of a compact JWS access token; the checks are in the class docstring.

        Raises :class:`~familyctx_gateway.errors.InvalidToken` (401) for any failed check.
        """
        try:
            header, iss = _unverified(token)
        except (ValueError, UnicodeError, JoseError, RecursionError) as exc:
            # Our own ValueErrors carry fixed wording; library errors (subclasses) are named by class only.
            # RecursionError: JSON nested thousands deep, which must be a 401, not a 500.
            reject_token(str(exc) if type(exc) is ValueError else type(exc).__name__)
        keys = self._issuers.get(iss)
        if keys is None:
            reject_token("unknown_issuer")
        settings = keys.settings
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in settings.algorithms or alg not in ASYMMETRIC_ALGORITHMS:
            reject_token("algorithm_not_allowed", iss)
        if not isinstance(kid, str) or not kid:
            reject_token("kid_missing", iss)
        claims = await self._verified_claims(token, keys, alg, kid)
        problem = _check_type(header, claims, settings)
        if problem:
            reject_token(problem, iss)
        return self._principal(claims, settings)

    async def _verified_claims(self, token: str, keys: IssuerKeys, alg: str, kid: str) -> dict[str, Any]:
        settings = keys.settings
        try:
            key = await keys.key_for(kid)
        except NoUsableKey as exc:
            reject_token(exc.reason, settings.issuer)
        if key.get("alg") not in (None, alg):
            reject_token("alg_differs_from_the_key", settings.issuer)  # RFC 8725 section 3.1
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
            jwt.JWTClaimsRegistry(
                leeway=settings.leeway_seconds,
                iss={"essential": True, "value": settings.issuer},
                aud={"essential": True, "value": settings.audience},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
                jti={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            reject_token(type(exc).__name__, settings.issuer)
        return dict(decoded.claims)

    def _principal(self, claims: dict[str, Any], settings: OidcSettings) -> Principal:
        iss = settings.issuer
        client = _client(claims, settings)
        if client is None:
            reject_token("client_missing_or_ambiguous", iss)
        roles = claim_at(claims, settings.roles_claim)
        if roles is not None and (not isinstance(roles, list) or not all(isinstance(r, str) for r in roles)):
            reject_token("roles_not_a_list_of_strings", iss)
        organisation = claim_at(claims, settings.organisation_claim) or ""
        if not isinstance(organisation, str) or (organisation and not _is_gss_code(organisation)):
            reject_token("organisation_not_a_gss_code", iss)
        if settings.organisations and organisation not in settings.organisations:
            reject_token("organisation_not_trusted_from_this_issuer", iss)
        name = claims.get("name") or claims.get("preferred_username") or ""
        values = (claims["sub"], claims["jti"], client, name)
        if not isinstance(name, str) or any(len(v) > _MAX_ID_CHARS for v in values):
            reject_token("claim_too_long", iss)
        given = list(dict.fromkeys(roles or ()))
        known = tuple(role for role in given if role in ROLES)
        unknown = len(given) - len(known)
        if not known:
            # Valid token, no role here: the caller is known, so the refusal (403) is made where it can be
            # audited (api/auditing.py for personal-data requests; require_role for the rest).
            log.info(
                "token without roles request_id=%s issuer=%s unknown_roles=%d",
                current_request_id(),
                iss,
                unknown,
            )
        elif unknown:
            log.debug(
                "token roles request_id=%s roles=%s unknown_roles=%d",
                current_request_id(),
                ",".join(known),
                unknown,
            )
        return Principal(
            sub=claims["sub"],
            name=name,
            organisation=organisation,
            roles=known,
            client=client,
            jti=claims["jti"],
            issuer=iss,
        )


def _is_gss_code(value: str) -> bool:
    try:
        check_gss_code(value)
    except ValueError:
        return False
    return True
