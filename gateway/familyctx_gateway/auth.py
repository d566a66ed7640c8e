"""Bearer access token validation (RFC 6750, RFC 7519, RFC 8725) against the issuer's JWKS.

Keys are found by OpenID Connect Discovery 1.0 (``<issuer>/.well-known/openid-configuration`` ->
``jwks_uri``). The key set is cached; a token with an unknown ``kid`` triggers one refresh, at most
once per ``jwks_refresh_min_interval_seconds``; when a refresh fails the last good keys are kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from familyctx_gateway.errors import GatewayError, InvalidToken
from familyctx_gateway.observability import current_request_id
from familyctx_gateway.settings import ASYMMETRIC_ALGORITHMS, OidcSettings

__all__ = ["JwksCache", "KeysUnavailable", "Principal", "TokenValidator", "reject_token"]

log = logging.getLogger("familyctx_gateway.auth")


class KeysUnavailable(GatewayError):
    """The issuer's discovery document or JWKS could not be fetched and no good keys are cached."""

    status = 503
    detail = "Token keys unavailable; try again shortly"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, from a validated access token (claims per interfaces.md).

    ``sub``: subject; ``organisation``: GSS code of the user's council; ``client``: ``azp``.
    """

    sub: str
    name: str
    organisation: str
    roles: tuple[str, ...]
    client: str
    jti: str

    def has_any_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


def reject_token(reason: str) -> NoReturn:
    """Log why a token was refused (our fixed wording or an exception class name: never a claim value)
    with the request id the caller was given, so a user's report can be traced; raise InvalidToken."""
    log.info("token rejected request_id=%s reason=%s", current_request_id(), reason.replace(" ", "_"))
    raise InvalidToken()


class JwksCache:
    """The issuer's signing keys, fetched by discovery and refreshed on an unknown ``kid``.

    ``http`` is the httpx client used for fetching (tests may pass one with a custom transport).
    Raises :class:`KeysUnavailable` from :meth:`key_set` when nothing good has ever been loaded.
    """

    def __init__(self, settings: OidcSettings, *, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self._keys: KeySet | None = None
        self._last_refresh = float("-inf")
        self._last_unknown_kid_refresh = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._keys is not None

    async def _fetch(self) -> KeySet:
        discovery_url = self._settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        resp = await self._http.get(discovery_url)
        resp.raise_for_status()
        document = resp.json()
        if document.get("issuer") != self._settings.issuer:
            # OIDC Discovery 1.0 section 4.3: the issuer in the document must match exactly.
            raise ValueError("discovery document issuer does not match the configured issuer")
        jwks_resp = await self._http.get(document["jwks_uri"])
        jwks_resp.raise_for_status()
        return KeySet.import_key_set(jwks_resp.json())

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch the key set now. Returns True when keys are loaded (new ones, or the last good ones).

        Without ``force``, while no keys were ever loaded, attempts are spaced by at least one second
        (the issuer may start after the gateway).
        """
        async with self._lock:
            now = time.monotonic()
            if not force and self._keys is None and now - self._last_refresh < 1.0:
                return False
            self._last_refresh = now
            try:
                self._keys = await self._fetch()
                log.info("jwks loaded keys=%d", len(self._keys.keys))
            except (httpx.HTTPError, ValueError, KeyError, JoseError, json.JSONDecodeError) as exc:
                log.warning(
                    "jwks refresh failed request_id=%s error=%s keeping_last_good=%s",
                    current_request_id(),
                    type(exc).__name__,
                    self._keys is not None,
                )
            return self._keys is not None

    async def _refresh_for_unknown_kid(self) -> bool:
        """One refresh per ``jwks_refresh_min_interval_seconds`` at most, however many unknown kids arrive."""
        now = time.monotonic()
        if now - self._last_unknown_kid_refresh < self._settings.jwks_refresh_min_interval_seconds:
            return False
        self._last_unknown_kid_refresh = now
        return await self.refresh(force=True)

    async def key_for(self, kid: str) -> Any:
        """The key with id ``kid``; refreshes once (rate-limited) when it is unknown.

        Raises :class:`InvalidToken` when no such key exists, :class:`KeysUnavailable` when no keys load.
        """
        if self._keys is None:
            await self.refresh()
        if self._keys is None:
            raise KeysUnavailable()
        key = self._find(kid)
        if key is None and await self._refresh_for_unknown_kid():
            key = self._find(kid)
        if key is None:
            reject_token("unknown_kid")
        return key

    def _find(self, kid: str) -> Any:
        assert self._keys is not None
        for key in self._keys.keys:
            if key.kid == kid:
                return key
        return None


class TokenValidator:
    """Validates a compact JWS access token and returns the :class:`Principal`.

    Checks, in order: three-part compact JWS, ``alg`` in the asymmetric allowlist (never ``none`` or
    ``HS*``), ``kid`` present and known, signature, ``iss``, ``aud``, ``exp``/``nbf``/``iat`` with leeway,
    ``sub`` and ``jti`` present. Every failure raises :class:`InvalidToken`; the reason is logged (no
    claims values), never returned to the caller.
    """

    def __init__(self, settings: OidcSettings, jwks: JwksCache) -> None:
        self._settings = settings
        self._jwks = jwks
        self._algorithms = [a for a in settings.algorithms if a in ASYMMETRIC_ALGORITHMS]

    async def validate(self, token: str) -> Principal:
        try:
            if token.count(".") != 2:
                raise ValueError("not a compact JWS")
            header = extract_compact(token.encode("ascii")).protected
            alg, kid = header.get("alg"), header.get("kid")
            if alg not in self._algorithms:
                raise ValueError("algorithm not allowed")
            if not isinstance(kid, str) or not kid:
                raise ValueError("kid missing")
        except (ValueError, UnicodeError, JoseError) as exc:
            # Our own ValueErrors carry fixed wording; library errors (subclasses) are named by class only.
            reject_token(str(exc) if type(exc) is ValueError else type(exc).__name__)
        key = await self._jwks.key_for(kid)
        try:
            decoded = jwt.decode(token, key, algorithms=self._algorithms)
            registry = jwt.JWTClaimsRegistry(
                leeway=self._settings.leeway_seconds,
                iss={"essential": True, "value": self._settings.issuer},
                aud={"essential": True, "value": self._settings.audience},
                exp={"essential": True},
                sub={"essential": True},
                jti={"essential": True},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            reject_token(type(exc).__name__)
        claims = decoded.claims
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            reject_token("roles_not_a_list")
        return Principal(
            sub=str(claims["sub"]),
            name=str(claims.get("name") or claims.get("preferred_username") or ""),
            organisation=str(claims.get("organisation") or ""),
            roles=tuple(roles),
            client=str(claims.get("azp") or claims.get("client_id") or ""),
            jti=str(claims["jti"]),
        )
