"""Signing keys of the trusted issuers (RFC 7517 JWK sets), cached per issuer.

Each issuer's keys come from its configured ``jwks_uri`` or by OpenID Connect Discovery 1.0
(``<issuer>/.well-known/openid-configuration`` -> ``jwks_uri``). Per issuer (times in seconds):

- keys older than ``jwks_cache_seconds`` are re-fetched by the next request; an unknown ``kid`` also
  triggers a fetch. Request-triggered fetches happen at most once per
  ``jwks_refresh_min_interval_seconds`` (once per second while the issuer has no usable keys), and
  concurrent requests wait on one ``asyncio.Lock`` and share that one fetch;
- when a fetch fails, the last good keys are kept until they are ``max_cached_key_age_seconds`` old;
  after that the issuer's tokens are refused (401) until a fetch succeeds.

Only asymmetric signing keys with a ``kid`` are kept (``kty`` RSA, EC or OKP; ``use`` absent or ``sig``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from familyctx_gateway.observability import current_request_id
from familyctx_gateway.settings import OidcSettings

__all__ = ["IssuerKeys", "NoUsableKey", "TrustedIssuers"]

log = logging.getLogger("familyctx_gateway.auth")

_SIGNING_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})
#: While an issuer has no usable keys, request-triggered fetches are spaced by this much at most.
_NO_KEYS_RETRY_SECONDS = 1.0


class NoUsableKey(Exception):
    """No key to check a token with. ``reason`` is fixed wording for the log: ``no_keys`` (none
    fetched yet, or the last good ones are older than ``max_cached_key_age_seconds``) or ``unknown_kid``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _signing_keys(document: Any) -> dict[str, Any]:
    """The usable keys of a JWKS document by ``kid``. Raises ValueError when there are none."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set")
    keys: dict[str, Any] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") not in _SIGNING_KEY_TYPES:
            continue
        kid = entry.get("kid")
        if entry.get("use", "sig") != "sig" or not isinstance(kid, str) or not kid or kid in keys:
            continue
        public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            keys[kid] = JWKRegistry.import_key(public)
        except (JoseError, ValueError, TypeError):
            continue  # one odd key must not make the whole set unusable
    if not keys:
        raise ValueError("no usable signing keys")
    return keys


class IssuerKeys:
    """One issuer's cached signing keys (see the module docstring for the refresh rules).

    ``http``: the shared httpx client; ``clock``: monotonic seconds (tests pass their own).
    """

    def __init__(
        self, settings: OidcSettings, *, http: httpx.AsyncClient, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._http = http
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._last_attempt = float("-inf")
        self._last_request_fetch = float("-inf")
        self._lock = asyncio.Lock()
        #: Requests currently waiting for another request's key fetch (observability, tests).
        self.waiting = 0

    @property
    def loaded(self) -> bool:
        """True while keys are held that are at most ``max_cached_key_age_seconds`` old."""
        return self._usable(self._clock())

    def _usable(self, now: float) -> bool:
        max_age = self.settings.max_cached_key_age_seconds
        return self._fetched_at is not None and now - self._fetched_at <= max_age

    def _due(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at > self.settings.jwks_cache_seconds

    def _lookup(self, kid: str, now: float) -> Any:
        return self._keys.get(kid) if self._usable(now) else None

    async def _discover_jwks_uri(self) -> str:
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        resp = await self._http.get(url, timeout=self.settings.http_timeout_seconds)
        resp.raise_for_status()
        document = resp.json()
        if not isinstance(document, dict) or document.get("issuer") != self.settings.issuer:
            # OIDC Discovery 1.0 section 4.3: the issuer in the document must match exactly.
            raise ValueError("discovery document issuer does not match the configured issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("discovery document has no jwks_uri")
        return jwks_uri

    async def _fetch_locked(self) -> None:
        """Fetch and store the key set; on failure log and keep the last good keys. Caller holds the lock."""
        self._last_attempt = self._clock()
        try:
            jwks_uri = self.settings.jwks_uri or await self._discover_jwks_uri()
            resp = await self._http.get(jwks_uri, timeout=self.settings.http_timeout_seconds)
            resp.raise_for_status()
            self._keys = _signing_keys(resp.json())
            self._fetched_at = self._clock()
            log.info("jwks loaded issuer=%s keys=%d", self.settings.issuer, len(self._keys))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "jwks refresh failed request_id=%s issuer=%s error=%s keeping_last_good=%s",
                current_request_id(),
                self.settings.issuer,
                type(exc).__name__,
                self._usable(self._clock()),
            )

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch now (startup, readiness). Returns :attr:`loaded` afterwards.

        Without ``force``, attempts are spaced by at least one second (the issuer may start after the
        gateway). Does not count against the request-triggered rate limit.
        """
        async with self._lock:
            if force or self._clock() - self._last_attempt >= _NO_KEYS_RETRY_SECONDS:
                await self._fetch_locked()
            return self.loaded

    def _may_fetch_for_request(self, now: float) -> bool:
        interval = self.settings.jwks_refresh_min_interval_seconds
        if not self._usable(now):
            interval = min(interval, _NO_KEYS_RETRY_SECONDS)
        return now - self._last_request_fetch >= interval

    async def key_for(self, kid: str) -> Any:
        """The public key with id ``kid``, fetching (rate-limited, shared) when it is unknown or old.

        Raises :class:`NoUsableKey` when there is no such key or no usable keys at all.
        """
        now = self._clock()
        key = self._lookup(kid, now)
        if key is not None and not self._due(now):
            return key
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
        try:
            now = self._clock()
            key = self._lookup(kid, now)  # another request may have fetched while this one waited
            if (key is None or self._due(now)) and self._may_fetch_for_request(now):
                self._last_request_fetch = now
                await self._fetch_locked()
                key = self._lookup(kid, self._clock())
        finally:
            self._lock.release()
        if key is None:
            raise NoUsableKey("unknown_kid" if self.loaded else "no_keys")
        return key


class TrustedIssuers:
    """The :class:`IssuerKeys` of every configured issuer, looked up by the exact ``iss`` string."""

    def __init__(
        self,
        settings: Sequence[OidcSettings],
        *,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._by_issuer = {s.issuer: IssuerKeys(s, http=http, clock=clock) for s in settings}

    def get(self, issuer: str) -> IssuerKeys | None:
        return self._by_issuer.get(issuer)

    def __iter__(self) -> Iterator[IssuerKeys]:
        return iter(self._by_issuer.values())

    @property
    def loaded(self) -> bool:
        """True when at least one issuer has usable keys (readiness: the gateway can serve someone).

        An issuer without keys is not fetched by the readiness probe, which must stay fast while a
        council's provider hangs; that issuer's own requests fetch (rate-limited) and recover it.
        """
        return any(keys.loaded for keys in self)

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch the keys of every issuer that has none usable (all of them with ``force``), concurrently.

        Returns :attr:`loaded` afterwards (one council's provider down must not take the gateway out of
        service).
        """
        await asyncio.gather(*(k.refresh(force=force) for k in self if force or not k.loaded))
        return self.loaded
