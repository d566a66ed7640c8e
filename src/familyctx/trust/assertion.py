"""The requester assertion: a short-lived JWS the gateway signs per adapter call, saying who is asking.

Format: JWS compact serialisation (RFC 7515) of a JWT claims set (RFC 7519), ES256 only (RFC 7518
section 3.4; RFC 8725 best practice: one fixed algorithm, explicit type), protected header
``{"alg": "ES256", "typ": "familyctx-assertion+jwt", "kid": ...}``. Claims: ``iss``, ``aud`` (the
adapter council's GSS code), ``iat``, ``nbf``, ``exp`` (``iat`` + ttl, ttl at most 300 s), ``jti``,
``sub``, ``name``, ``org``, ``role``, ``client``, ``purpose``, ``case_ref``, ``break_glass``,
``break_glass_reason``, ``rid``. Carried in gRPC metadata under :data:`ASSERTION_METADATA_KEY`.

:class:`AssertionVerifier` refuses with :class:`AssertionRefused`, whose ``reason`` is one fixed code
(:data:`REFUSAL_REASONS`); messages never contain claim values. Given a :class:`ReplayCache`, it also
refuses an assertion whose ``jti`` it has already accepted (``replayed``): each assertion is good for one
call only (the gateway signs a fresh one, with a new ``jti``, for every call, retries included).
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

__all__ = [
    "ALGORITHM",
    "ASSERTION_METADATA_KEY",
    "ASSERTION_TYPE",
    "MAX_TTL_SECONDS",
    "REFUSAL_REASONS",
    "REPLAY_CACHE_MAX_ENTRIES",
    "AssertionKeyError",
    "AssertionRefused",
    "AssertionSigner",
    "AssertionVerifier",
    "ReplayCache",
    "Requester",
    "VerifiedAssertion",
]

ASSERTION_METADATA_KEY = "x-familyctx-assertion"
ASSERTION_TYPE = "familyctx-assertion+jwt"
ALGORITHM = "ES256"
MAX_TTL_SECONDS = 300
#: Longest token read at all: a real assertion is well under 2 KiB even with a long break-glass reason.
MAX_TOKEN_CHARS = 8 * 1024
#: Default bound of a :class:`ReplayCache`: ids of assertions still within their lifetime (at most
#: 300 s + leeway), i.e. room for over 300 calls a second with the longest lifetime allowed.
REPLAY_CACHE_MAX_ENTRIES = 100_000

log = logging.getLogger("familyctx.trust.assertion")

REFUSAL_REASONS = (
    "missing",
    "malformed",
    "bad_type",
    "bad_algorithm",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "missing_claim",
    "too_long_lived",
    "replayed",
)

#: Requester claims: claim name -> (Requester field, type). All are required in a token.
_REQUESTER_CLAIMS: dict[str, tuple[str, type]] = {
    "sub": ("sub", str),
    "name": ("name", str),
    "org": ("organisation", str),
    "role": ("role", str),
    "client": ("client", str),
    "purpose": ("purpose", str),
    "case_ref": ("case_reference", str),
    "break_glass": ("break_glass", bool),
    "break_glass_reason": ("break_glass_reason", str),
    "rid": ("request_id", str),
}
_NON_EMPTY = ("sub", "role", "jti")


class AssertionRefused(ValueError):
    """An assertion was refused; ``reason`` is one of :data:`REFUSAL_REASONS` (also the message)."""

    def __init__(self, reason: str) -> None:
        if reason not in REFUSAL_REASONS:  # pragma: no cover - programming error
            raise AssertionError(f"unknown refusal reason {reason!r}")
        super().__init__(reason)
        self.reason = reason


class AssertionKeyError(ValueError):
    """The signing key or the JWK Set cannot be used (message names the file or the problem)."""


@dataclass(frozen=True, slots=True)
class Requester:
    """Who is asking, as the gateway authorised them for this one request.

    ``organisation``: GSS code of the worker's council ("" for a service client); ``role``: the one role
    the gateway authorised this request under; ``purpose``: one of the fixed purposes ("" only on
    Describe); ``break_glass_reason`` is typed by the worker: never log it.
    """

    sub: str
    name: str
    organisation: str
    role: str
    client: str
    purpose: str
    case_reference: str
    break_glass: bool = False
    break_glass_reason: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """A verified assertion: the requester, its ``jti``, validity (UTC datetimes) and ``audience`` (GSS)."""

    requester: Requester
    jti: str
    issued_at: datetime
    expires_at: datetime
    audience: str


def _load_private_key(private_jwk: Mapping[str, Any] | str | Path) -> ECKey:
    where = "the signing key"
    if isinstance(private_jwk, str | Path):
        where = str(private_jwk)
        try:
            data = json.loads(Path(private_jwk).read_text(encoding="utf-8"))
        except OSError as exc:
            raise AssertionKeyError(f"cannot read {where}: {exc.strerror or type(exc).__name__}") from exc
        except ValueError as exc:
            raise AssertionKeyError(f"{where} is not JSON") from exc
    else:
        data = dict(private_jwk)
    try:
        key = ECKey.import_key(data)
    except (JoseError, ValueError, TypeError) as exc:
        raise AssertionKeyError(f"{where} is not an EC P-256 JWK ({type(exc).__name__})") from exc
    if not key.is_private:
        raise AssertionKeyError(f"{where} holds a public key only; the gateway needs the private key")
    if key.get("crv") != "P-256":
        raise AssertionKeyError(f"{where} is not on curve P-256 (ES256)")
    if key.get("alg") not in (None, ALGORITHM):
        raise AssertionKeyError(f"{where} is for another algorithm; ES256 is required")
    key.ensure_kid()
    return key


class AssertionSigner:
    """Signs requester assertions (gateway side).

    ``private_jwk``: a private EC P-256 JWK (dict, or path to its JSON file); ``issuer``: the ``iss``
    adapters expect; ``ttl_seconds``: lifetime, 1..300. ``clock`` returns seconds since the epoch (tests).
    Raises :class:`AssertionKeyError` for an unusable key, ``ValueError`` for a bad issuer or ttl.
    """

    def __init__(
        self,
        private_jwk: Mapping[str, Any] | str | Path,
        *,
        issuer: str,
        ttl_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer:
            raise ValueError("issuer must not be empty")
        if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
        self._key = _load_private_key(private_jwk)
        self._kid = str(self._key.kid)  # an RFC 7638 thumbprint is computed: once, not per assertion
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    @classmethod
    def from_file(
        cls, path: str | Path, *, issuer: str, ttl_seconds: int = 60, clock: Callable[[], float] = time.time
    ) -> AssertionSigner:
        """A signer with the private JWK stored as JSON in ``path`` (see the class for errors)."""
        return cls(Path(path), issuer=issuer, ttl_seconds=ttl_seconds, clock=clock)

    @property
    def kid(self) -> str:
        """The ``kid`` of the signing key (RFC 7638 thumbprint unless the JWK names one)."""
        return self._kid

    def sign(self, requester: Requester, *, audience: str) -> str:
        """A compact JWS for ``requester``, for the adapter of council ``audience`` (GSS code); fresh ``jti``.

        Raises ``ValueError`` for an empty audience.
        """
        if not audience:
            raise ValueError("audience must not be empty")
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        for claim, (field, _) in _REQUESTER_CLAIMS.items():
            claims[claim] = getattr(requester, field)
        header = {"alg": ALGORITHM, "typ": ASSERTION_TYPE, "kid": self._kid}
        payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
        return jws.serialize_compact(header, payload, self._key, algorithms=[ALGORITHM])

    def public_jwks(self) -> dict[str, Any]:
        """The RFC 7517 JWK Set with the public part of the signing key only."""
        return dict(KeySet([self._key]).as_dict(private=False))


def _import_jwks(jwks: Mapping[str, Any]) -> dict[str, ECKey]:
    """Usable ES256 verification keys by ``kid``; keys of other types/curves/algorithms are skipped."""
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(entries, list):
        raise AssertionKeyError("the JWK Set has no 'keys' list")
    keys: dict[str, ECKey] = {}
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("kty") != "EC" or entry.get("crv") != "P-256":
            continue
        if entry.get("alg") not in (None, ALGORITHM) or entry.get("use") not in (None, "sig"):
            continue
        public = {name: value for name, value in entry.items() if name != "d"}
        try:
            key = ECKey.import_key(public)
        except (JoseError, ValueError, TypeError):
            continue
        kid = entry.get("kid")
        if isinstance(kid, str) and kid:
            keys[kid] = key
    return keys


def _number(claims: dict[str, Any], name: str) -> float:
    """A NumericDate claim (RFC 7519 section 2) as a finite float; ``malformed`` otherwise (a bool, a
    string, or the NaN / Infinity that Python's JSON parser accepts)."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AssertionRefused("malformed")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        raise AssertionRefused("malformed") from None
    if not math.isfinite(number):
        raise AssertionRefused("malformed")
    return number


def _utc(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # beyond the years datetime can hold
        raise AssertionRefused("malformed") from None


class ReplayCache:
    """The ids (``jti``) of assertions already accepted, each kept until its ``exp`` plus the verifier's
    leeway, so that an assertion captured in transit cannot be used for a second call (RFC 7519
    section 4.1.7; refusal reason ``replayed``).

    In memory, per process (each adapter replica keeps its own), thread-safe. Bounded by
    ``max_entries``: expired ids are dropped first; when the cache is still full, the id closest to
    expiry is dropped (and a warning logged): a burst beyond the bound could then let a replay of that
    one assertion through in its last seconds, never make the adapter refuse valid calls.
    ``clock``: seconds since the epoch (tests).
    """

    def __init__(
        self, *, max_entries: int = REPLAY_CACHE_MAX_ENTRIES, clock: Callable[[], float] = time.time
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._until: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._until)

    def _purge(self, now: float) -> None:
        while self._heap and (self._heap[0][0] <= now or len(self._until) >= self.max_entries):
            until, jti = heapq.heappop(self._heap)
            if self._until.get(jti) != until:
                continue  # a stale heap entry
            del self._until[jti]
            if until > now:
                self.evicted += 1
                if self.evicted == 1 or self.evicted % 1000 == 0:
                    log.warning("replay cache full max_entries=%d evicted=%d", self.max_entries, self.evicted)

    def accept(self, jti: str, *, until: float) -> None:
        """Record ``jti`` as used until ``until`` (seconds since the epoch); raises
        :class:`AssertionRefused` ``replayed`` when it is already recorded and not yet past its time."""
        with self._lock:
            now = self._clock()
            seen = self._until.get(jti)
            if seen is not None and seen > now:
                raise AssertionRefused("replayed")
            self._purge(now)
            self._until[jti] = until
            heapq.heappush(self._heap, (until, jti))


class AssertionVerifier:
    """Verifies requester assertions (adapter side) against the gateway's JWK Set.

    ``jwks``: RFC 7517 JWK Set (only EC P-256 keys with a ``kid`` are used); ``issuer``: expected ``iss``;
    ``audience``: this adapter's council GSS code; ``leeway_seconds``: clock skew allowed on ``exp``,
    ``nbf`` and ``iat``. Checks in order: present, size and compact form, ``alg`` ES256, ``typ``,
    ``kid`` known, signature, required claims and their types (times finite numbers), ``iss``, ``aud``,
    ``exp``, ``nbf``/``iat``, lifetime at most 300 s, and last, with a ``replay_cache``, that the
    ``jti`` was not accepted before (kept until ``exp`` + leeway). Raises :class:`AssertionKeyError`
    for a JWK Set without ``keys``.
    """

    def __init__(
        self,
        jwks: Mapping[str, Any],
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 5,
        clock: Callable[[], float] = time.time,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("issuer and audience must not be empty")
        if not 0 <= leeway_seconds <= 60:
            raise ValueError("leeway_seconds must be between 0 and 60")
        self._keys = _import_jwks(jwks)
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self._clock = clock
        self.replay_cache = replay_cache

    @property
    def kids(self) -> frozenset[str]:
        """The ``kid`` values of the keys currently trusted."""
        return frozenset(self._keys)

    def replace_keys(self, jwks: Mapping[str, Any]) -> None:
        """Trust the keys of ``jwks`` instead (after a key rotation); AssertionKeyError when unusable."""
        self._keys = _import_jwks(jwks)

    def kid_of(self, token: str) -> str | None:
        """The ``kid`` of ``token``'s header, unverified (to decide whether to refresh keys), or None."""
        try:
            header = self._header(token)
        except AssertionRefused:
            return None
        kid = header.get("kid")
        return kid if isinstance(kid, str) else None

    def verify(self, token: str | None) -> VerifiedAssertion:
        """The :class:`VerifiedAssertion` in ``token``; raises :class:`AssertionRefused` (see the class)."""
        if not token:
            raise AssertionRefused("missing")
        header = self._header(token)
        if header.get("alg") != ALGORITHM:
            raise AssertionRefused("bad_algorithm")
        if header.get("typ") != ASSERTION_TYPE:
            raise AssertionRefused("bad_type")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise AssertionRefused("unknown_key")
        try:
            compact = jws.deserialize_compact(token, key, algorithms=[ALGORITHM])
        except JoseError as exc:
            raise AssertionRefused("bad_signature") from exc
        try:
            claims = json.loads(compact.payload)
        except (ValueError, RecursionError) as exc:
            raise AssertionRefused("malformed") from exc
        if not isinstance(claims, dict):
            raise AssertionRefused("malformed")
        return self._check_claims(claims)

    def _header(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise AssertionRefused("malformed")
        try:
            compact = jws.extract_compact(token.encode("ascii"))
            json.loads(compact.payload)  # the payload must at least be JSON
        except (JoseError, ValueError, UnicodeError, RecursionError) as exc:
            raise AssertionRefused("malformed") from exc
        return dict(compact.protected)

    def _check_claims(self, claims: dict[str, Any]) -> VerifiedAssertion:
        for name in ("iss", "aud", "iat", "nbf", "exp", "jti", *_REQUESTER_CLAIMS):
            if name not in claims:
                raise AssertionRefused("missing_claim")
        values: dict[str, Any] = {}
        for claim, (field, kind) in _REQUESTER_CLAIMS.items():
            if not isinstance(claims[claim], kind):
                raise AssertionRefused("malformed")
            values[field] = claims[claim]
        if not isinstance(claims["jti"], str) or not isinstance(claims["iss"], str):
            raise AssertionRefused("malformed")
        if any(not claims[name] for name in _NON_EMPTY):
            raise AssertionRefused("missing_claim")
        if claims["iss"] != self.issuer:
            raise AssertionRefused("wrong_issuer")
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) == 1:
            audience = audience[0]
        if audience != self.audience:
            raise AssertionRefused("wrong_audience")
        iat, nbf, exp = _number(claims, "iat"), _number(claims, "nbf"), _number(claims, "exp")
        now = self._clock()
        if exp <= now - self.leeway_seconds:
            raise AssertionRefused("expired")
        if nbf > now + self.leeway_seconds or iat > now + self.leeway_seconds:
            raise AssertionRefused("not_yet_valid")
        if exp - min(iat, nbf) > MAX_TTL_SECONDS:
            raise AssertionRefused("too_long_lived")
        verified = VerifiedAssertion(
            requester=Requester(**values),
            jti=claims["jti"],
            issued_at=_utc(iat),
            expires_at=_utc(exp),
            audience=self.audience,
        )
        if self.replay_cache is not None:  # last: only a valid assertion is remembered
            self.replay_cache.accept(claims["jti"], until=exp + self.leeway_seconds)
        return verified
