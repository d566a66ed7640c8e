"""Who may call this adapter: mutual TLS material and the per-request gateway assertion check.

Two layers, both required on the data port (docs/access-control.md, "Gateway-to-adapter trust"):

1. mutual TLS: gRPC asks every caller for a client certificate chained to ``tls.client_ca_file``
   (:func:`load_server_tls`); a caller without one never reaches a handler;
2. the gateway's assertion (:mod:`familyctx.trust.assertion`) in metadata ``x-familyctx-assertion``,
   verified by :class:`CallerCheck` at the top of every handler, for audience = this council's GSS code.
   Optionally the client certificate's CN must equal ``gateway.client_cert_subject``. Each assertion is
   accepted once: its ``jti`` is remembered until it expires (:class:`~familyctx.trust.assertion.ReplayCache`,
   in memory per adapter process) and a second call with it is refused ``replayed``.

A refusal is ``UNAUTHENTICATED`` with one fixed message (the caller learns nothing about which check
failed) and one log line ``refused method=... reason=<code> peer=<ip:port> request_id=...``; never a
claim value. The check runs in the handler, not an interceptor: contextvars set in grpc.aio
interceptors do not reach the handler.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from familyctx.config_types import relative_path_note
from familyctx.trust.assertion import (
    ASSERTION_METADATA_KEY,
    AssertionKeyError,
    AssertionRefused,
    AssertionVerifier,
    ReplayCache,
    VerifiedAssertion,
)
from familyctx_adapter.errors import AdapterConfigError
from familyctx_adapter.policy import log_safe
from familyctx_adapter.settings import AdapterSettings, GatewayTrustSettings

__all__ = [
    "REFUSED_MESSAGE",
    "CallerCheck",
    "RemoteJwks",
    "ServerTls",
    "load_caller_check",
    "load_server_tls",
    "read_setting_file",
]

log = logging.getLogger("familyctx.adapter")

#: The one message every refused caller gets (which check failed is only in the adapter's log).
REFUSED_MESSAGE = (
    "the caller could not be authenticated: mutual TLS and a valid gateway assertion are required"
)
#: Reason logged when the client certificate's CN is not ``gateway.client_cert_subject``.
WRONG_CLIENT_REASON = "wrong_client_certificate"
#: Largest JWK Set read from a file or URL.
MAX_JWKS_BYTES = 64 * 1024
_META_LOG_LIMIT = 64


def read_setting_file(setting: str, path: Path, *, limit: int = 1024 * 1024) -> bytes:
    """The bytes of the file named by setting ``setting`` (e.g. ``tls.cert_file``), at most ``limit``.

    Raises :class:`AdapterConfigError` naming the setting and the path when it is missing, unreadable,
    empty or too large.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AdapterConfigError(
            f"{setting}: {path} does not exist{relative_path_note(path)} (for development run `make certs`)"
        ) from None
    except OSError as exc:
        raise AdapterConfigError(
            f"{setting}: cannot read {path}{relative_path_note(path)}: {exc.strerror or type(exc).__name__}"
        ) from None
    if not data.strip():
        raise AdapterConfigError(f"{setting}: {path} is empty")
    if len(data) > limit:
        raise AdapterConfigError(f"{setting}: {path} is larger than {limit} bytes")
    return data


@dataclass(frozen=True, slots=True)
class ServerTls:
    """PEM bytes for the data port: server ``certificate`` chain, its private ``key``, ``client_ca``."""

    certificate: bytes
    key: bytes
    client_ca: bytes

    def credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials requiring a client certificate chained to ``client_ca``."""
        return grpc.ssl_server_credentials(
            [(self.key, self.certificate)], root_certificates=self.client_ca, require_client_auth=True
        )


def _certificates(setting: str, path: Path, data: bytes) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise AdapterConfigError(f"{setting}: {path} is not PEM holding a certificate") from None
    return certificates


def load_server_tls(settings: AdapterSettings) -> ServerTls:
    """Read ``tls.cert_file`` (PEM chain, the adapter's certificate first), ``tls.key_file`` (PEM private
    key, unencrypted) and ``tls.client_ca_file`` (PEM, one or more CA certificates).

    Raises :class:`AdapterConfigError` naming the setting and path of a missing, unreadable or non-PEM
    file, or of a key that is not the certificate's.
    """
    tls = settings.tls
    cert = read_setting_file("tls.cert_file", tls.cert_file)
    key = read_setting_file("tls.key_file", tls.key_file)
    ca = read_setting_file("tls.client_ca_file", tls.client_ca_file)
    leaf = _certificates("tls.cert_file", tls.cert_file, cert)[0]
    _certificates("tls.client_ca_file", tls.client_ca_file, ca)
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        raise AdapterConfigError(
            f"tls.key_file: {tls.key_file} is not an unencrypted PEM private key"
        ) from None
    if private_key.public_key() != leaf.public_key():
        raise AdapterConfigError(
            f"tls.key_file: {tls.key_file} is not the private key of tls.cert_file {tls.cert_file}"
        )
    return ServerTls(certificate=cert, key=key, client_ca=ca)


class RemoteJwks:
    """The gateway's JWK Set fetched from ``url`` with httpx, refreshed at most every ``min_interval``
    seconds (so that tokens with an unknown ``kid`` cannot cause a fetch storm).

    ``ca_file``: PEM bundle to verify an https URL with (default: the system's CAs).
    """

    def __init__(
        self,
        url: str,
        *,
        ca_file: Path | None = None,
        min_interval: float = 60.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.min_interval = min_interval
        self._verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            read_setting_file("gateway.jwks_ca_file", ca_file)
            self._verify = ssl.create_default_context(cafile=str(ca_file))
        self._timeout = timeout
        self._clock = clock
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()

    def due(self) -> bool:
        """True when no fetch was attempted in the last ``min_interval`` seconds."""
        return self._last_attempt is None or self._clock() - self._last_attempt >= self.min_interval

    async def fetch(self, *, force: bool = False) -> dict[str, Any] | None:
        """The JWK Set, or None when not due (unless ``force``) or when the fetch failed (logged)."""
        async with self._lock:  # concurrent callers wait for one fetch, then find it not due
            if not force and not self.due():
                return None
            self._last_attempt = self._clock()
            try:
                async with httpx.AsyncClient(verify=self._verify, timeout=self._timeout) as client:
                    response = await client.get(self.url, headers={"Accept": "application/json"})
                if response.status_code != 200:
                    raise ValueError(f"status {response.status_code}")
                if len(response.content) > MAX_JWKS_BYTES:
                    raise ValueError("too large")
                jwks = json.loads(response.content)
                if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
                    raise ValueError("not a JWK Set")
            except (httpx.HTTPError, ValueError) as exc:
                problem = str(exc) if type(exc) is ValueError else type(exc).__name__
                log.warning("gateway keys not fetched url=%s problem=%s", self.url, problem)
                return None
            log.info("gateway keys fetched url=%s keys=%d", self.url, len(jwks["keys"]))
            return jwks


def _metadata(context: grpc.aio.ServicerContext, key: str, *, limit: int | None = None) -> str:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            text = v if isinstance(v, str) else v.decode("utf-8", "replace")
            return text if limit is None else "".join(c for c in text[:limit] if c.isprintable())
    return ""


def _peer(context: grpc.aio.ServicerContext) -> str:
    peer = context.peer() or "-"
    for prefix in ("ipv4:", "ipv6:"):
        if peer.startswith(prefix):
            return peer[len(prefix) :]
    return peer


class CallerCheck:
    """Verifies the caller of one AdapterService call: client certificate subject (optional) and the
    gateway's assertion for this council. Build with :func:`load_caller_check`.

    ``verifier``: an :class:`AssertionVerifier` with audience = this council's GSS code;
    ``client_cert_subject``: expected CN of the client certificate, or None to accept any certificate
    the CA issued; ``remote``: where to refresh keys from on an unknown ``kid`` (``jwks_url``), or None.
    """

    def __init__(
        self,
        verifier: AssertionVerifier,
        *,
        client_cert_subject: str | None = None,
        remote: RemoteJwks | None = None,
    ) -> None:
        self.verifier = verifier
        self.client_cert_subject = client_cert_subject
        self.remote = remote

    async def start(self) -> None:
        """Fetch the keys from ``jwks_url`` once at start-up (a failure is logged; every call is then
        refused with ``unknown_key`` until a later, rate-limited fetch succeeds)."""
        if self.remote is not None:
            jwks = await self.remote.fetch(force=True)
            if jwks is not None:
                self._replace(jwks)

    def _replace(self, jwks: Mapping[str, Any]) -> None:
        try:
            self.verifier.replace_keys(jwks)
        except AssertionKeyError as exc:
            log.warning("gateway keys not usable problem=%s", exc)

    async def _verify_token(self, token: str) -> VerifiedAssertion:
        try:
            return self.verifier.verify(token)
        except AssertionRefused as refused:
            if refused.reason != "unknown_key" or self.remote is None or not self.remote.due():
                raise
        jwks = await self.remote.fetch()  # key rotation: one refresh, rate-limited
        if jwks is not None:
            self._replace(jwks)
        return self.verifier.verify(token)

    def _client_subject_ok(self, context: grpc.aio.ServicerContext) -> bool:
        if self.client_cert_subject is None:
            return True
        names = context.auth_context().get("x509_common_name") or []
        return [bytes(n) for n in names] == [self.client_cert_subject.encode()]

    async def verify(self, context: grpc.aio.ServicerContext, method: str = "-") -> VerifiedAssertion:
        """The verified assertion of this call; otherwise logs the refusal and aborts the call with
        ``UNAUTHENTICATED`` and :data:`REFUSED_MESSAGE` (``context.abort`` raises)."""
        try:
            if not self._client_subject_ok(context):
                raise _Refusal(WRONG_CLIENT_REASON)
            return await self._verify_token(_metadata(context, ASSERTION_METADATA_KEY))
        except (AssertionRefused, _Refusal) as exc:
            reason = exc.reason
        log.warning(
            "refused method=%s reason=%s peer=%s request_id=%s",
            method,
            reason,
            _peer(context),
            log_safe(_metadata(context, "x-request-id", limit=_META_LOG_LIMIT)),
        )
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSED_MESSAGE)
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


class _Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _verifier(gateway: GatewayTrustSettings, audience: str, jwks: Mapping[str, Any]) -> AssertionVerifier:
    return AssertionVerifier(
        jwks,
        issuer=gateway.issuer,
        audience=audience,
        leeway_seconds=gateway.leeway_seconds,
        replay_cache=ReplayCache(),
    )


def load_caller_check(settings: AdapterSettings) -> CallerCheck:
    """The :class:`CallerCheck` for ``settings``: keys read from ``gateway.jwks_file`` now, or fetched
    from ``gateway.jwks_url`` when the server starts (:meth:`CallerCheck.start`).

    Raises :class:`AdapterConfigError` naming the setting and path of a missing or unusable JWKS file.
    """
    gateway = settings.gateway
    audience = settings.council.gss_code
    if gateway.jwks_file is not None:
        raw = read_setting_file("gateway.jwks_file", gateway.jwks_file, limit=MAX_JWKS_BYTES)
        try:
            jwks = json.loads(raw)
            verifier = _verifier(gateway, audience, jwks)
        except (ValueError, AssertionKeyError) as exc:
            problem = exc if isinstance(exc, AssertionKeyError) else "not JSON"
            raise AdapterConfigError(
                f"gateway.jwks_file: {gateway.jwks_file} is not a JWK Set ({problem})"
            ) from None
        if not verifier.kids:
            raise AdapterConfigError(
                f"gateway.jwks_file: {gateway.jwks_file} holds no EC P-256 (ES256) key with a kid"
            )
        return CallerCheck(verifier, client_cert_subject=gateway.client_cert_subject)
    assert gateway.jwks_url is not None  # settings validation: exactly one of the two
    remote = RemoteJwks(
        gateway.jwks_url, ca_file=gateway.jwks_ca_file, min_interval=gateway.jwks_refresh_seconds
    )
    verifier = _verifier(gateway, audience, {"keys": []})
    return CallerCheck(verifier, client_cert_subject=gateway.client_cert_subject, remote=remote)
